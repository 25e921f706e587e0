//! BP-SVRG: variance-reduced training of small networks on images, SGD against SVRG, B-SVRG
//! and the sign-switched BP-SVRG, with the flatness metrics the paper proposes.
//!
//! Paper: H. Jin, D. Lin, Z. Zhang, "Towards Better Generalization: BP-SVRG in Training Deep
//! Neural Networks", arXiv:1908.06395. Notes: `../shared/papers/bnq_bpsvrg.md` section 2.
//! Only the abstract could be read: BP-SVRG's update (the sign of the snapshot correction
//! flipped), the metrics' formulas and every setting here are reconstructions.

pub mod claims;
mod figures;
pub mod landscape;
pub mod spec;
pub mod training;
pub mod verify;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use self::landscape::Landscape;
use self::spec::{BpsvrgSpec, DatasetName, Method};
use self::training::{MetricBuffers, Trainer, measure, network, step_size};
use crate::contract::{ColumnKind, ColumnSpec, Ctx, Experiment, Interrupted, Report, Valid};
use crate::data::images::{ImageSet, Split, blobs, fashion_mnist, mnist_test_split};
use crate::input_error;
use crate::table::Cell;

pub struct BpsvrgExperiment;

/// The train/test images of a spec, cut to its sizes.
pub fn load(spec: &BpsvrgSpec) -> Result<Split> {
    let mut split = match spec.dataset {
        DatasetName::Blobs => {
            let or = |n: usize, all: usize| if n == 0 { all } else { n };
            return Ok(blobs(
                or(spec.train_size, 10_000),
                or(spec.test_size, 2_000),
            ));
        }
        DatasetName::Mnist => mnist_test_split()?,
        DatasetName::Fashion => fashion_mnist()?,
    };
    let (full_train, full_test) = (split.train.len(), split.test.len());
    for (key, asked, has) in [
        ("train_size", spec.train_size, full_train),
        ("test_size", spec.test_size, full_test),
    ] {
        if asked > has {
            return Err(input_error!(
                "{key} = {asked} exceeds the {has} images of the set ({}); 0 takes them all",
                split.description
            ));
        }
    }
    if spec.train_size > 0 {
        split.train = split.train.first(spec.train_size);
    }
    if spec.test_size > 0 {
        split.test = split.test.first(spec.test_size);
    }
    if split.train.len() < full_train || split.test.len() < full_test {
        split.description = format!(
            "{}; used: the first {} train and {} test images",
            split.description,
            split.train.len(),
            split.test.len()
        );
    }
    Ok(split)
}

fn columns() -> Vec<ColumnSpec> {
    use ColumnKind::*;
    let mut c = vec![
        ColumnSpec::new("method", Key),
        ColumnSpec::new("seed", Axis),
        ColumnSpec::new("epoch", Axis),
        ColumnSpec::new("grad_evals", Axis),
    ];
    for (name, headline) in [
        ("lr", false),
        ("train_loss", false),
        ("train_acc", false),
        ("test_loss", false),
        ("test_acc", true),
        ("gap_loss", true),
        ("gap_acc", false),
        ("mean_norm", true),
        ("norm_mean", false),
        ("norm_ratio", false),
        ("grad_var", false),
        ("test_mean_norm", false),
        ("test_norm_mean", false),
        ("dir_var", false),
        ("dir_var_sgd", false),
    ] {
        let spec = ColumnSpec::new(name, Metric);
        c.push(if headline { spec.headline() } else { spec });
    }
    c
}

/// What a bpsvrg run reports besides its rows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BpsvrgSummary {
    /// The images used and how they were split.
    pub data: Option<String>,
    pub network: Option<String>,
    pub parameters: Option<usize>,
    /// How the update directions are defined here (the paper's could not be read).
    pub reconstructed: Option<String>,
    /// Seconds of training steps per epoch, mean over (method, seed) jobs (jobs run in
    /// parallel, so with several jobs each is slowed by the others).
    pub epoch_seconds: Option<f64>,
    /// Seconds of one metric pass over the training set's metric samples (loss, accuracy,
    /// per-sample gradient norms and the mean gradient), mean over passes.
    pub metric_pass_seconds: Option<f64>,
    pub metric_samples: Option<usize>,
    /// Images in the training set (gradient evaluations are plotted per image).
    pub train_images: Option<usize>,
    /// The loss landscape around the first seed's final weights, per method.
    pub landscapes: Option<Vec<Landscape>>,
}

impl Report for BpsvrgSummary {
    fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(d) = &self.data {
            lines.push(format!("data: {d}"));
        }
        if let (Some(n), Some(p)) = (&self.network, self.parameters) {
            lines.push(format!("network: {n}, {p} parameters (f32)"));
        }
        if let (Some(e), Some(m), Some(k)) = (
            self.epoch_seconds,
            self.metric_pass_seconds,
            self.metric_samples,
        ) {
            lines.push(format!(
                "training {e:.3} s per epoch; metric pass over {k} images {m:.3} s"
            ));
        }
        lines
    }
}

/// What one (method, seed) job returns.
struct JobEnd {
    /// Why the job's training diverged (it then stops; the others go on).
    diverged: Option<String>,
    landscape: Option<Landscape>,
    epoch_seconds: f64,
    metric_seconds: f64,
    metric_passes: usize,
}

impl Experiment for BpsvrgExperiment {
    type Spec = BpsvrgSpec;
    type Summary = BpsvrgSummary;
    type Inputs = Split;

    const NAME: &'static str = "bpsvrg";
    const TITLE: &'static str =
        "BP-SVRG: SGD, SVRG, B-SVRG and sign-switched BP-SVRG on images, with flatness metrics";
    const PAPER: &'static str = "H. Jin, D. Lin, Z. Zhang, Towards Better Generalization: \
                                 BP-SVRG in Training Deep Neural Networks, arXiv:1908.06395";

    fn prepare(spec: &Valid<Self>) -> Result<Split> {
        let split = load(spec)?;
        if spec.batch > split.train.len() {
            return Err(input_error!(
                "batch = {} is larger than the {} training images",
                spec.batch,
                split.train.len()
            ));
        }
        Ok(split)
    }

    fn run(spec: &Valid<Self>, split: Split, ctx: &mut Ctx<Self>) -> Result<()> {
        let net = network(spec, split.train.shape, split.train.classes);
        // The metric sets: the whole sets (borrowed), or their first images.
        let metric_set = |set: &ImageSet| -> Option<ImageSet> {
            (spec.metric_samples > 0 && spec.metric_samples < set.len())
                .then(|| set.first(spec.metric_samples))
        };
        let (train_cut, test_cut) = (metric_set(&split.train), metric_set(&split.test));
        let train_m = train_cut.as_ref().unwrap_or(&split.train);
        let test_m = test_cut.as_ref().unwrap_or(&split.test);
        ctx.summary.data = Some(split.description.clone());
        ctx.summary.network = Some(format!("{:?}", spec.model).to_lowercase());
        ctx.summary.parameters = Some(net.params);
        ctx.summary.metric_samples = Some(train_m.len());
        ctx.summary.train_images = Some(split.train.len());
        ctx.summary.reconstructed = Some(
            "v = g_S(w) + c (g_S(w~) - mu~) with c = -1 (svrg, bsvrg), +1 (bpsvrg), c (csvrg); \
             the sign switch of BP-SVRG is our reading of the abstract"
                .into(),
        );
        ctx.begin(&columns())?;
        let jobs: Vec<(Method, usize)> = spec
            .method
            .iter()
            .flat_map(|&m| (0..spec.seeds).map(move |s| (m, s)))
            .collect();
        ctx.progress().set_total(jobs.len() as u64);
        let single = jobs.len() == 1;
        let ends = ctx.jobs(&jobs, |&(method, seed), job| {
            let work = || train_one(spec, &net, &split, train_m, test_m, method, seed, job);
            if single {
                work()
            } else {
                crate::nn::single_threaded_products(work)
            }
        })?;
        let diverged: Vec<&String> = ends.iter().filter_map(|e| e.diverged.as_ref()).collect();
        if let Some(first) = diverged.first() {
            let others = match diverged.len() {
                1 => String::new(),
                k => format!("; {} of {} jobs diverged", k, ends.len()),
            };
            anyhow::bail!("{first}{others}");
        }
        let n = ends.len() as f64;
        ctx.summary.epoch_seconds = Some(ends.iter().map(|e| e.epoch_seconds).sum::<f64>() / n);
        let passes: usize = ends.iter().map(|e| e.metric_passes).sum();
        ctx.summary.metric_pass_seconds =
            Some(ends.iter().map(|e| e.metric_seconds).sum::<f64>() / passes.max(1) as f64);
        let landscapes: Vec<Landscape> = ends.into_iter().filter_map(|e| e.landscape).collect();
        if !landscapes.is_empty() {
            ctx.summary.landscapes = Some(landscapes);
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn train_one(
    spec: &BpsvrgSpec,
    net: &crate::nn::Network,
    split: &Split,
    train_m: &ImageSet,
    test_m: &ImageSet,
    method: Method,
    seed: usize,
    job: &crate::contract::Job,
) -> Result<JobEnd> {
    let mut t = Trainer::new(
        net,
        spec,
        method,
        job.rng(&format!("init/{seed}")),
        job.rng(&format!("order/{seed}")),
        &split.train,
    );
    let mut buf = MetricBuffers::new(net);
    let b = Trainer::batch_of(spec, method);
    let c = method.coefficient(spec.c);
    let (mut metric_seconds, mut passes) = (0.0, 0);
    for epoch in 0..=spec.epochs {
        if epoch > 0 {
            // A diverged job ends here and is reported after every job is done, so which
            // jobs ran, and the rows kept, do not depend on the thread count.
            if let Err(why) = t.epoch(epoch - 1, &split.train, &|| job.cancel().is_set()) {
                return Ok(JobEnd {
                    diverged: Some(format!("{why:#} (seed {seed})")),
                    landscape: None,
                    epoch_seconds: 0.0,
                    metric_seconds,
                    metric_passes: passes,
                });
            }
            job.check_cancel()?;
        }
        let started = std::time::Instant::now();
        let snapshot = match (c, &t.snapshot) {
            (Some(_), Some((ws, _))) => Some(ws.as_slice()),
            _ => None,
        };
        let tr = measure(net, &t.w, &t.state, snapshot, train_m, &mut buf);
        metric_seconds += started.elapsed().as_secs_f64();
        passes += 1;
        let te = measure(net, &t.w, &t.state, None, test_m, &mut buf);
        if epoch == 0 {
            t.diverged_above = training::DIVERGENCE_FACTOR * tr.loss;
        }
        let n = train_m.len();
        let sgd_var = tr.direction_variance(0.0, b, n);
        let (dir, dir_sgd) = match (c, snapshot) {
            (None, _) => (Cell::Real(sgd_var), Cell::Real(sgd_var)),
            (Some(c), Some(_)) => (
                Cell::Real(tr.direction_variance(c, b, n)),
                Cell::Real(sgd_var),
            ),
            (Some(_), None) => (Cell::Missing, Cell::Missing),
        };
        let lr = if epoch == 0 {
            step_size(spec, 0)
        } else {
            step_size(spec, epoch - 1)
        };
        job.emit(vec![
            Cell::Text(method.name().into()),
            Cell::Int(seed as i64),
            Cell::Int(epoch as i64),
            Cell::Int(t.grad_evals as i64),
            Cell::Real(lr),
            Cell::Real(tr.loss),
            Cell::Real(tr.accuracy),
            Cell::Real(te.loss),
            Cell::Real(te.accuracy),
            Cell::Real(te.loss - tr.loss),
            Cell::Real(tr.accuracy - te.accuracy),
            Cell::Real(tr.mean_norm),
            Cell::Real(tr.norm_mean),
            Cell::Real(tr.mean_norm / tr.norm_mean),
            Cell::Real(tr.variance),
            Cell::Real(te.mean_norm),
            Cell::Real(te.norm_mean),
            dir,
            dir_sgd,
        ])?;
    }
    if job.cancel().is_set() {
        return Err(Interrupted.into());
    }
    let landscape = (seed == 0 && spec.landscape_points > 0).then(|| {
        landscape::around(
            net,
            spec,
            method,
            &t.w,
            &t.state,
            &split.train,
            &split.test,
            job.rng("landscape"),
        )
    });
    Ok(JobEnd {
        diverged: None,
        landscape,
        epoch_seconds: t.train_seconds / spec.epochs as f64,
        metric_seconds,
        metric_passes: passes,
    })
}
