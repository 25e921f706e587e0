//! Noise in training: perturbed gradient descent escapes the spurious minimum of a two-layer
//! non-overlapping CNN.
//!
//! Paper: M. Zhou, T. Liu, Y. Li, D. Lin, E. Zhou, T. Zhao, "Towards Understanding the
//! Importance of Noise in Training Neural Networks", ICML 2019, arXiv:1909.03172, on the
//! model of Du et al. 2018 (arXiv:1712.00779). Notes: `../shared/papers/nn_theory.md` (d).
//! The closed forms, the spurious point and its minimum/saddle test are *derived* in the
//! notes (reconstructed); the schedule is the paper's reproducibility page's; how the noise
//! enters Algorithm 1 is unverified, so both readings are offered.

pub mod claims;
mod figures;
pub mod methods;
pub mod model;
pub mod spec;
pub mod verify;

use anyhow::Result;
use rand::Rng;
use rayon::prelude::*;

use self::methods::{StartPath, train};
use self::model::{Teacher, inner};
use self::spec::{Method, NoiseSpec};
use super::{ClaimDoc, Experiment, PreparedRun, RunData};
use crate::claims::ClaimResult;
use crate::input_error;
use crate::plot::Figure;
use crate::run::{Attachment, ColumnKind, ColumnSpec, RunContext, component_rng, standard_normal};
use crate::table::{Cell, Table};

pub struct NoiseExperiment;

pub fn parse_spec(spec: &toml::Table) -> Result<NoiseSpec> {
    crate::spec::typed("noise", spec)
}

fn check(spec: &NoiseSpec) -> Result<()> {
    let steps = spec.epochs as u64 * spec.iterations as u64;
    let work = steps * spec.starts as u64 * spec.method.len() as u64;
    if steps > 100_000_000 || work > 20_000_000_000 {
        return Err(input_error!(
            "epochs x iterations x starts x methods = {work} steps: expected at most 2e10 \
             (and 1e8 per start)"
        ));
    }
    if spec.record_every as u64 > steps {
        return Err(input_error!(
            "record_every = {} exceeds the {steps} steps of a start",
            spec.record_every
        ));
    }
    Ok(())
}

pub fn teacher(spec: &NoiseSpec) -> Teacher {
    Teacher::draw(spec.k, spec.p, &mut component_rng(spec.seed, "teacher"))
}

/// The start K: w ~ N(0, I_p), a uniform in [-init_a, init_a]^k (shared by every method).
pub fn start(spec: &NoiseSpec, k: usize) -> (Vec<f64>, Vec<f64>) {
    let mut rng = component_rng(spec.seed, &format!("init/{k}"));
    let w = (0..spec.p).map(|_| standard_normal(&mut rng)).collect();
    let a = (0..spec.k)
        .map(|_| rng.random_range(-spec.init_a..spec.init_a))
        .collect();
    (w, a)
}

/// The losses a final state is compared with: L(0) (the scale) and the spurious point's.
pub struct Landmarks {
    scale: f64,
    spurious: f64,
}

impl Landmarks {
    pub fn of(teacher: &Teacher) -> Landmarks {
        let (ws, as_) = teacher.spurious();
        Landmarks {
            scale: teacher.loss(&vec![0.0; teacher.p()], &vec![0.0; teacher.k()]),
            spurious: teacher.loss(&ws, &as_),
        }
    }

    /// Where a start ended: global (angle below 0.1 and loss below 1% of L(0)), spurious
    /// (angle above pi/2 and loss within 1% of L(0) of the spurious value) or other.
    pub fn outcome(&self, teacher: &Teacher, w: &[f64], a: &[f64]) -> &'static str {
        let (loss, phi) = (teacher.loss(w, a), teacher.angle(w));
        if phi < 0.1 && loss < 0.01 * self.scale {
            "global"
        } else if phi > std::f64::consts::FRAC_PI_2
            && (loss - self.spurious).abs() < 0.01 * self.scale
        {
            "spurious"
        } else {
            "other"
        }
    }
}

/// Whether the spurious point has a descent path (a saddle): the profile min_a L(phi, a)
/// falls when phi leaves pi (the Hessian is degenerate in the angle, where the loss changes
/// like |delta|^3, so the notes test with losses), or one of `samples` random points at
/// distance `radius` is lower.
pub fn spurious_has_descent(teacher: &Teacher, samples: usize, radius: f64, seed: u64) -> bool {
    let (w, a) = teacher.spurious();
    let base = teacher.loss(&w, &a);
    let pi = std::f64::consts::PI;
    if [1e-1, 1e-2, 1e-3]
        .iter()
        .any(|d| teacher.profile(pi - d) < teacher.profile(pi))
    {
        return true;
    }
    let mut rng = component_rng(seed, "perturb");
    (0..samples).any(|_| {
        let mut d: Vec<f64> = (0..w.len() + a.len())
            .map(|_| standard_normal(&mut rng))
            .collect();
        let n = inner(&d, &d).sqrt();
        d.iter_mut().for_each(|x| *x *= radius / n);
        let pw: Vec<f64> = w.iter().zip(&d).map(|(x, y)| x + y).collect();
        let pa: Vec<f64> = a.iter().zip(&d[w.len()..]).map(|(x, y)| x + y).collect();
        teacher.loss(&pw, &pa) < base - 1e-15
    })
}

/// The 95% Wilson score interval of a proportion.
pub fn wilson(successes: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (z, n) = (1.959964, n as f64);
    let p = successes as f64 / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

fn columns() -> Vec<ColumnSpec> {
    use ColumnKind::*;
    vec![
        ColumnSpec::new("method", Key),
        ColumnSpec::new("start", Axis),
        ColumnSpec::new("iteration", Axis),
        ColumnSpec::new("loss", Metric),
        ColumnSpec::new("phi", Metric),
        ColumnSpec::new("a_dot", Metric),
    ]
}

struct NoiseRun {
    spec: NoiseSpec,
}

impl PreparedRun for NoiseRun {
    fn run(self: Box<Self>, ctx: &mut RunContext) -> Result<()> {
        let spec = &self.spec;
        let teacher = teacher(spec);
        let (ws, as_) = teacher.spurious();
        let minimum_by_sign = teacher.spurious_is_minimum();
        let descent = spurious_has_descent(&teacher, 4000, 1e-3, spec.seed);
        ctx.summarize(
            "teacher",
            serde_json::json!({"w": teacher.w, "a": teacher.a}),
        );
        ctx.summarize(
            "spurious_point",
            serde_json::json!({
                "a": as_,
                "loss": teacher.loss(&ws, &as_),
                "a_sp_dot_a_star": inner(&as_, &teacher.a),
                "minimum_by_sign_test": minimum_by_sign,
                "perturbation_finds_descent": descent,
                "kind": if descent { "saddle" } else { "minimum" },
            }),
        );
        ctx.begin(&columns())?;
        let jobs: Vec<(Method, usize)> = spec
            .method
            .iter()
            .flat_map(|&m| (0..spec.starts).map(move |k| (m, k)))
            .collect();
        ctx.progress().set_total(jobs.len() as u64);
        let cancel = ctx.cancel_flag();
        let started = std::time::Instant::now();
        // Each (method, start) owns its streams; results come back in job order.
        let paths: Vec<StartPath> = jobs
            .par_iter()
            .map(|&(method, k)| {
                let (w0, a0) = start(spec, k);
                let mut rng = component_rng(spec.seed, &format!("{}/{k}", method.name()));
                train(&teacher, spec, method, &w0, &a0, &mut rng, cancel)
            })
            .collect();
        ctx.check_cancel()?;
        ctx.summarize("train_seconds", started.elapsed().as_secs_f64());
        let landmarks = Landmarks::of(&teacher);
        let mut outcomes = Vec::new();
        let mut counts = serde_json::Map::new();
        for &method in &spec.method {
            let mut tally = [0usize; 3];
            let (mut checks, mut violations) = (0, 0);
            for (&(m, k), path) in jobs.iter().zip(&paths) {
                if m != method {
                    continue;
                }
                for r in &path.records {
                    ctx.emit(vec![
                        Cell::Text(method.name().into()),
                        Cell::Int(k as i64),
                        Cell::Int(r.iteration as i64),
                        Cell::Real(r.loss),
                        Cell::Real(r.phi),
                        Cell::Real(r.a_dot),
                    ])?;
                }
                let end = path.records.last().expect("a record");
                let kind = landmarks.outcome(&teacher, &path.w, &path.a);
                tally[["global", "spurious", "other"]
                    .iter()
                    .position(|o| *o == kind)
                    .expect("a known outcome")] += 1;
                checks += path.sign_checks;
                violations += path.sign_violations;
                outcomes.push(vec![
                    Cell::Text(method.name().into()),
                    Cell::Int(k as i64),
                    Cell::Text(kind.into()),
                    Cell::Real(end.loss),
                    Cell::Real(end.phi),
                    Cell::Real(end.a_dot),
                ]);
                ctx.progress().advance(1);
            }
            let n = spec.starts;
            let ci = |x: usize| {
                let (lo, hi) = wilson(x, n);
                serde_json::json!({"count": x, "fraction": x as f64 / n as f64,
                                   "ci95": [lo, hi]})
            };
            let mut entry = serde_json::json!({
                "starts": n,
                "global": ci(tally[0]),
                "spurious": ci(tally[1]),
                "other": ci(tally[2]),
            });
            if method == Method::WnGd {
                entry["sign_rule"] = serde_json::json!({"checked_steps": checks,
                                                        "violations": violations});
            }
            counts.insert(method.name().into(), entry);
        }
        ctx.summarize("outcomes", &counts);
        ctx.attach(Attachment {
            suffix: ".outcomes".into(),
            header: ["method", "start", "outcome", "final_loss", "phi", "a_dot"]
                .map(String::from)
                .to_vec(),
            rows: outcomes,
        });
        Ok(())
    }
}

impl Experiment for NoiseExperiment {
    fn name(&self) -> &'static str {
        "noise"
    }

    fn title(&self) -> &'static str {
        "Noise in training: perturbed GD escapes the spurious minimum of a two-layer CNN"
    }

    fn paper(&self) -> &'static str {
        "M. Zhou, T. Liu, Y. Li, D. Lin, E. Zhou, T. Zhao, Towards Understanding the \
         Importance of Noise in Training Neural Networks, ICML 2019, arXiv:1909.03172"
    }

    fn fields(&self) -> &'static [crate::spec::Field] {
        spec::FIELDS
    }

    fn default_spec(&self) -> toml::Table {
        toml::Table::try_from(NoiseSpec::default()).expect("the default spec serializes")
    }

    fn prepare(&self, spec: &toml::Table) -> Result<Box<dyn PreparedRun>> {
        let spec = parse_spec(spec)?;
        check(&spec)?;
        Ok(Box::new(NoiseRun { spec }))
    }

    fn claim_docs(&self) -> Vec<ClaimDoc> {
        claims::docs()
    }

    fn check_claims(
        &self,
        spec: &toml::Table,
        _rows: &Table,
        summary: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<ClaimResult> {
        match parse_spec(spec) {
            Ok(spec) => claims::check_run(&spec, summary),
            Err(_) => Vec::new(),
        }
    }

    fn figures(&self, runs: &[RunData]) -> Result<Vec<(String, Figure)>> {
        figures::figures(runs)
    }

    fn verify(&self) -> Result<Vec<ClaimResult>> {
        verify::verify()
    }

    fn headline_columns(&self) -> &'static [&'static str] {
        &["loss", "phi", "a_dot"]
    }

    fn describe_summary(
        &self,
        summary: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(sp) = summary.get("spurious_point") {
            lines.push(format!(
                "spurious point w = -w*, a_sp: a {} (a_sp^T a* = {:.4}), loss {:.6}",
                sp["kind"].as_str().unwrap_or("?"),
                sp["a_sp_dot_a_star"].as_f64().unwrap_or(f64::NAN),
                sp["loss"].as_f64().unwrap_or(f64::NAN)
            ));
        }
        if let Some(serde_json::Value::Object(counts)) = summary.get("outcomes") {
            for (method, c) in counts {
                let part = |o: &str| {
                    format!(
                        "{o} {}/{} [{:.2}, {:.2}]",
                        c[o]["count"],
                        c["starts"],
                        c[o]["ci95"][0].as_f64().unwrap_or(f64::NAN),
                        c[o]["ci95"][1].as_f64().unwrap_or(f64::NAN)
                    )
                };
                lines.push(format!(
                    "{method}: {}, {}, {}",
                    part("global"),
                    part("spurious"),
                    part("other")
                ));
            }
        }
        lines
    }
}
