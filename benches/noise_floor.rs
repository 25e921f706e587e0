//! The floor of the noise experiment (issue 16): `lab run noise` as a whole process against
//! drawing the very normals its 800 (method, start) jobs draw, from the same ChaCha8 streams
//! by the same ziggurat, on the same rayon pool, and nothing else. Both are timed by
//! criterion; the best of each is printed with the ratio (the target is at most 1.5).
//!
//!     cargo bench --bench noise_floor

use criterion::Criterion;
use rayon::prelude::*;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lab::experiments::noise::methods::draw_only;
use lab::experiments::noise::spec::{Method, NoiseSpec};
use lab::experiments::noise::start;
use lab::random::Streams;

/// The normals of every job of the default run: each start's own (`init/K`, shared by the
/// methods, drawn once per job as the run does) and each method's noise and batches.
fn draw_every_job(spec: &NoiseSpec) -> f64 {
    let streams = Streams::new(spec.seed);
    let jobs: Vec<(Method, usize)> = spec
        .method
        .iter()
        .flat_map(|&m| (0..spec.starts).map(move |k| (m, k)))
        .collect();
    jobs.par_iter()
        .map(|&(method, k)| {
            let (w0, _) = start(spec, streams.rng(&format!("init/{k}")));
            let mut rng = streams.rng(&format!("{}/{k}", method.name()));
            w0[0] + draw_only(spec, method, spec.k, spec.p, &mut rng)
        })
        .sum()
}

/// Times `work` with criterion and returns the best per-call time in seconds.
fn best_of(c: &mut Criterion, id: &str, mut work: impl FnMut()) -> f64 {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let record = samples.clone();
    c.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                work();
            }
            let spent = start.elapsed();
            record
                .lock()
                .expect("one bench at a time")
                .push(spent.as_secs_f64() / iters as f64);
            spent
        })
    });
    let times = samples.lock().expect("done").clone();
    times.into_iter().fold(f64::INFINITY, f64::min)
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    let spec = NoiseSpec::default();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = dir.path().join("noise");
    let lab = env!("CARGO_BIN_EXE_lab");
    let whole = best_of(&mut c, "lab run noise (whole process)", || {
        let status = Command::new(lab)
            .args(["run", "noise", "-q", "--force", "--out"])
            .arg(&out)
            .status()
            .expect("lab runs");
        assert!(status.success(), "lab run noise failed");
    });
    let floor = best_of(&mut c, "the same normals alone", || {
        std::hint::black_box(draw_every_job(&spec));
    });
    c.final_summary();
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.with_extension("run.json")).expect("the manifest"),
    )
    .expect("a JSON manifest");
    let training = manifest["summary"]["train_seconds"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let threads = rayon::current_num_threads();
    println!(
        "lab run noise, whole process: {whole:.3} s (best); training alone in its last run: \
         {training:.3} s"
    );
    println!(
        "the same normals alone (same streams, ziggurat, {threads} threads): {floor:.3} s (best)"
    );
    println!(
        "ratio whole process / draws: {:.2}x (target <= 1.5); training / draws: {:.2}x",
        whole / floor,
        training / floor
    );
}
