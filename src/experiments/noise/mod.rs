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

use std::collections::BTreeMap;

use anyhow::Result;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use self::methods::train;
use self::model::Teacher;
use self::spec::{Method, NoiseSpec};
use crate::contract::{
    Attachment, ColumnKind, ColumnSpec, Ctx, Experiment, Interrupted, Report, Valid,
};
use crate::random::{Streams, standard_normal};
use crate::table::Cell;
use crate::vector::dot;

pub struct NoiseExperiment;

/// The teacher of a spec (the `teacher` stream).
pub fn teacher(spec: &NoiseSpec, streams: Streams) -> Teacher {
    Teacher::draw(spec.k, spec.p, &mut streams.rng("teacher"))
}

/// The start K: w ~ N(0, I_p), a uniform in [-init_a, init_a]^k (shared by every method),
/// from the `init/K` stream.
pub fn start(spec: &NoiseSpec, mut rng: ChaCha8Rng) -> (Vec<f64>, Vec<f64>) {
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

/// What the two descent tests found at the spurious point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescentTests {
    /// The profile min_a L(phi, a) falls when phi leaves pi.
    pub profile: bool,
    /// Random points at the radius that are lower, of `samples`.
    pub lower_points: usize,
    pub samples: usize,
}

impl DescentTests {
    /// Whether either test found a lower point (a saddle).
    pub fn found(&self) -> bool {
        self.profile || self.lower_points > 0
    }

    /// Which test found a lower point: "the profile", "random points (3 of 4000)", ...
    pub fn found_by(&self) -> String {
        let points = format!("random points ({} of {})", self.lower_points, self.samples);
        match (self.profile, self.lower_points > 0) {
            (true, true) => format!("the profile and {points}"),
            (true, false) => format!("the profile (not random points: 0 of {})", self.samples),
            (false, true) => points,
            (false, false) => "neither the profile nor random points".into(),
        }
    }
}

/// Whether the spurious point has a descent path (a saddle), by two tests: the profile
/// min_a L(phi, a) falls when phi leaves pi (the Hessian is degenerate in the angle, where
/// the loss changes like |delta|^3, so the notes test with losses), and `samples` random
/// points at distance `radius` (lower about 38 times in a million where only the profile
/// falls: the descent directions are a thin set).
pub fn spurious_has_descent(
    teacher: &Teacher,
    samples: usize,
    radius: f64,
    mut rng: ChaCha8Rng,
) -> DescentTests {
    let (w, a) = teacher.spurious();
    let base = teacher.loss(&w, &a);
    let pi = std::f64::consts::PI;
    let profile = [1e-1, 1e-2, 1e-3]
        .iter()
        .any(|d| teacher.profile(pi - d) < teacher.profile(pi));
    let lower_points = (0..samples)
        .filter(|_| {
            let mut d: Vec<f64> = (0..w.len() + a.len())
                .map(|_| standard_normal(&mut rng))
                .collect();
            let n = dot(&d, &d).sqrt();
            d.iter_mut().for_each(|x| *x *= radius / n);
            let pw: Vec<f64> = w.iter().zip(&d).map(|(x, y)| x + y).collect();
            let pa: Vec<f64> = a.iter().zip(&d[w.len()..]).map(|(x, y)| x + y).collect();
            teacher.loss(&pw, &pa) < base - 1e-15
        })
        .count();
    DescentTests {
        profile,
        lower_points,
        samples,
    }
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
        ColumnSpec::new("loss", Metric).headline(),
        ColumnSpec::new("phi", Metric).headline(),
        ColumnSpec::new("a_dot", Metric).headline(),
    ]
}

/// A count of starts with its fraction and 95% Wilson interval.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Share {
    pub count: usize,
    pub fraction: f64,
    pub ci95: [f64; 2],
}

impl Share {
    fn of(count: usize, starts: usize) -> Share {
        let (lo, hi) = wilson(count, starts);
        Share {
            count,
            fraction: count as f64 / starts as f64,
            ci95: [lo, hi],
        }
    }
}

/// The sign rule checked along weight-normalized GD.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignRule {
    pub checked_steps: usize,
    pub violations: usize,
}

/// Where one method's starts ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcomes {
    pub starts: usize,
    pub global: Share,
    pub spurious: Share,
    pub other: Share,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sign_rule: Option<SignRule>,
}

/// The spurious point w = -w*, a_sp and what the tests say of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpuriousPoint {
    pub a: Vec<f64>,
    pub loss: f64,
    pub a_sp_dot_a_star: f64,
    pub minimum_by_sign_test: bool,
    /// Whether the profile or random points found a lower point.
    pub perturbation_finds_descent: bool,
    /// Which of the two tests found it (absent in manifests before it was recorded).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub descent_found_by: Option<String>,
    /// `minimum` or `saddle`.
    pub kind: String,
}

/// The teacher network (w*, a*).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeacherWeights {
    pub w: Vec<f64>,
    pub a: Vec<f64>,
}

/// What a noise run reports besides its rows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NoiseSummary {
    pub teacher: Option<TeacherWeights>,
    pub spurious_point: Option<SpuriousPoint>,
    pub train_seconds: Option<f64>,
    /// Per method.
    pub outcomes: Option<BTreeMap<String, Outcomes>>,
}

impl Report for NoiseSummary {
    fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(sp) = &self.spurious_point {
            lines.push(format!(
                "spurious point w = -w*, a_sp: a {} (a_sp^T a* = {:.4}), loss {:.6}",
                sp.kind, sp.a_sp_dot_a_star, sp.loss
            ));
        }
        for (method, c) in self.outcomes.iter().flatten() {
            let part = |name: &str, s: &Share| {
                format!(
                    "{name} {}/{} [{:.2}, {:.2}]",
                    s.count, c.starts, s.ci95[0], s.ci95[1]
                )
            };
            lines.push(format!(
                "{method}: {}, {}, {}",
                part("global", &c.global),
                part("spurious", &c.spurious),
                part("other", &c.other)
            ));
        }
        lines
    }
}

/// How one start of one method ended.
struct StartEnd {
    kind: &'static str,
    loss: f64,
    phi: f64,
    a_dot: f64,
    sign_checks: usize,
    sign_violations: usize,
}

impl Experiment for NoiseExperiment {
    type Spec = NoiseSpec;
    type Summary = NoiseSummary;
    type Inputs = ();

    const NAME: &'static str = "noise";
    const TITLE: &'static str =
        "Noise in training: perturbed GD escapes the spurious minimum of a two-layer CNN";
    const PAPER: &'static str = "M. Zhou, T. Liu, Y. Li, D. Lin, E. Zhou, T. Zhao, Towards \
                                 Understanding the Importance of Noise in Training Neural \
                                 Networks, ICML 2019, arXiv:1909.03172";

    fn prepare(_: &Valid<Self>) -> Result<()> {
        Ok(())
    }

    /// Every (method, start) job in parallel, its rows streamed in job order; then the
    /// outcomes of each method.
    fn run(spec: &Valid<Self>, _: (), ctx: &mut Ctx<Self>) -> Result<()> {
        let teacher = teacher(spec, ctx.streams());
        let (ws, as_) = teacher.spurious();
        let minimum_by_sign = teacher.spurious_is_minimum();
        let descent = spurious_has_descent(&teacher, 4000, 1e-3, ctx.rng("perturb"));
        ctx.summary.teacher = Some(TeacherWeights {
            w: teacher.w.clone(),
            a: teacher.a.clone(),
        });
        ctx.summary.spurious_point = Some(SpuriousPoint {
            a: as_.clone(),
            loss: teacher.loss(&ws, &as_),
            a_sp_dot_a_star: dot(&as_, &teacher.a),
            minimum_by_sign_test: minimum_by_sign,
            perturbation_finds_descent: descent.found(),
            descent_found_by: Some(descent.found_by()),
            kind: if descent.found() { "saddle" } else { "minimum" }.into(),
        });
        ctx.begin(&columns())?;
        let jobs: Vec<(Method, usize)> = spec
            .method
            .iter()
            .flat_map(|&m| (0..spec.starts).map(move |k| (m, k)))
            .collect();
        ctx.progress().set_total(jobs.len() as u64);
        let started = std::time::Instant::now();
        let landmarks = Landmarks::of(&teacher);
        // Each (method, start) owns its streams: the start's, shared by the methods, and the
        // method's own for noise and batches.
        let ends = ctx.jobs(&jobs, |&(method, k), job| {
            let (w0, a0) = start(spec, job.rng(&format!("init/{k}")));
            let mut rng = job.rng(&format!("{}/{k}", method.name()));
            let path = train(&teacher, spec, method, &w0, &a0, &mut rng, job.cancel());
            for r in &path.records {
                job.emit(vec![
                    Cell::Text(method.name().into()),
                    Cell::Int(k as i64),
                    Cell::Int(r.iteration as i64),
                    Cell::Real(r.loss),
                    Cell::Real(r.phi),
                    Cell::Real(r.a_dot),
                ])?;
            }
            // A start stopped by Ctrl-C has not ended anywhere: its rows are kept, not it.
            if job.cancel().is_set() {
                return Err(Interrupted.into());
            }
            let end = path.records.last().expect("a record");
            Ok(StartEnd {
                kind: landmarks.outcome(&teacher, &path.w, &path.a),
                loss: end.loss,
                phi: end.phi,
                a_dot: end.a_dot,
                sign_checks: path.sign_checks,
                sign_violations: path.sign_violations,
            })
        })?;
        ctx.summary.train_seconds = Some(started.elapsed().as_secs_f64());
        let mut outcomes = Vec::new();
        let mut counts = BTreeMap::new();
        for &method in &spec.method {
            let mut tally = [0usize; 3];
            let (mut checks, mut violations) = (0, 0);
            for (&(m, k), end) in jobs.iter().zip(&ends) {
                if m != method {
                    continue;
                }
                tally[["global", "spurious", "other"]
                    .iter()
                    .position(|o| *o == end.kind)
                    .expect("a known outcome")] += 1;
                checks += end.sign_checks;
                violations += end.sign_violations;
                outcomes.push(vec![
                    Cell::Text(method.name().into()),
                    Cell::Int(k as i64),
                    Cell::Text(end.kind.into()),
                    Cell::Real(end.loss),
                    Cell::Real(end.phi),
                    Cell::Real(end.a_dot),
                ]);
            }
            let n = spec.starts;
            counts.insert(
                method.name().to_string(),
                Outcomes {
                    starts: n,
                    global: Share::of(tally[0], n),
                    spurious: Share::of(tally[1], n),
                    other: Share::of(tally[2], n),
                    sign_rule: (method == Method::WnGd).then_some(SignRule {
                        checked_steps: checks,
                        violations,
                    }),
                },
            );
        }
        ctx.summary.outcomes = Some(counts);
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
