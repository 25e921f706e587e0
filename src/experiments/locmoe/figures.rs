//! Figures of locmoe runs. Mode theory: each lemma and theorem, Monte Carlo against the
//! closed form, with the stated bounds. Trained modes: held-out loss, the loss-against-slots
//! Pareto front, load CV and drop rate (""), the load heatmaps (`.loads`), capacity and
//! affinity over training (`.capacity`), the cos(token, gate) histograms (`.affinity`).

use anyhow::Result;

use super::LocmoeExperiment;
use super::claims::{TheoryRow, key_text, runs, theory_rows};
use super::routing::{Capacity, RouterName, capacity_of};
use super::spec::Mode;
use super::theory::{ECR, LEMMA2, LEMMA3, TCR, THEOREM1};
use crate::contract::{Figures, RunData};
use crate::plot::{
    Colour, Figure, Heatmap, Marker, Panel, Pattern, Points, Series, Style, median_band,
};
use crate::table::Table;

/// A router's colour: its place in the list of every router, the same in every figure.
fn colour(router: &str) -> Colour {
    Colour::Palette(RouterName::from_name(router).map_or(9, |r| {
        RouterName::ALL.iter().position(|x| *x == r).unwrap_or(9)
    }))
}

fn panel(title: &str, x: &str, y: &str, logx: bool, logy: bool) -> Panel {
    Panel {
        title: title.into(),
        x_label: x.into(),
        y_label: y.into(),
        logx,
        logy,
        ..Default::default()
    }
}

fn line(label: String, points: Points, color: Colour, pattern: Pattern) -> Series {
    Series {
        label,
        points,
        style: Style::Line,
        color,
        pattern,
        ..Default::default()
    }
}

fn marks(label: String, points: Points, color: Colour, marker: Marker) -> Series {
    Series {
        label,
        points,
        style: Style::Markers,
        color,
        marker,
        ..Default::default()
    }
}

fn dashed(label: String, points: Points, color: Colour, pattern: Pattern) -> Series {
    Series {
        label,
        points,
        style: Style::Dashed,
        color,
        pattern,
        ..Default::default()
    }
}

impl Figures for LocmoeExperiment {
    /// One set of figures per run (runs of different modes or settings do not share panels);
    /// with several runs each set's files are named by the settings that tell it apart.
    fn figures(runs: &[RunData<LocmoeExperiment>]) -> Result<Vec<(String, Figure)>> {
        let mut out = Vec::new();
        for run in runs {
            let tag = run.file_tag(runs.len() == 1);
            let figures = match run.spec.mode {
                Mode::Theory => vec![(String::new(), theory(run)?)],
                Mode::Routing => vec![(String::new(), routing(run))],
                _ => training(run)?,
            };
            out.extend(
                figures
                    .into_iter()
                    .map(|(suffix, f)| (format!("{tag}{suffix}"), f)),
            );
        }
        Ok(out)
    }
}

fn theory(run: &RunData<LocmoeExperiment>) -> Result<Figure> {
    let rows = &run.rows;
    let n = run.spec.experts;
    let mut lemma3 = panel(
        "Lemma 3: P(|cos(token, gate)| >= delta) on the sphere",
        "delta sqrt(d)",
        "p_delta",
        false,
        true,
    );
    let mut thm1 = panel(
        &format!("Theorem 1: tokens per discriminative token (n = {n})"),
        "delta sqrt(d)",
        "capacity (tokens)",
        false,
        true,
    );
    let l3 = theory_rows(rows, LEMMA3)?;
    let t1 = theory_rows(rows, THEOREM1)?;
    let mut dims: Vec<f64> = l3.iter().map(|r| r.0).collect();
    dims.dedup();
    let pattern = |k: usize| [Pattern::Solid, Pattern::Dotted, Pattern::DashDot][k % 3];
    for (k, &d) in dims.iter().enumerate() {
        let c = Colour::Palette(k);
        let at = |rows: &[TheoryRow], col: usize| -> Points {
            rows.iter()
                .filter(|r| r.0 == d)
                .map(|r| {
                    let v = [r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7][col];
                    (r.2 * d.sqrt(), v)
                })
                .collect()
        };
        lemma3
            .series
            .push(line(format!("d = {d}: exact"), at(&l3, 5), c, pattern(0)));
        lemma3.series.push(marks(
            format!("d = {d}: Monte Carlo"),
            at(&l3, 3),
            c,
            Marker::Circle,
        ));
        lemma3.series.push(dashed(
            format!("d = {d}: erfc form"),
            at(&l3, 6),
            c,
            Pattern::Dashed,
        ));
        if t1.iter().any(|r| r.0 == d) {
            thm1.series.push(line(
                format!("d = {d}: 1/(n p_delta)"),
                at(&t1, 5),
                c,
                pattern(0),
            ));
            thm1.series.push(marks(
                format!("d = {d}: measured (GrAP top-1)"),
                at(&t1, 3),
                c,
                Marker::Circle,
            ));
            thm1.series.push(dashed(
                format!("d = {d}: erfc form"),
                at(&t1, 7),
                c,
                Pattern::Dashed,
            ));
            thm1.series.push(dashed(
                format!("d = {d}: exp form"),
                at(&t1, 6),
                c,
                Pattern::LongDash,
            ));
        }
    }
    let mut lemma2 = panel(
        &format!("Lemma 2: load CV of isotropic tokens, GrAP top-1, E = {n}"),
        "tokens T",
        "sqrt(mean CV^2)",
        true,
        true,
    );
    let l2 = theory_rows(rows, LEMMA2)?;
    lemma2.series.push(line(
        "sqrt((E - 1) / T)".into(),
        l2.iter().map(|r| (r.2, r.5)).collect(),
        Colour::Palette(0),
        Pattern::Solid,
    ));
    lemma2.series.push(marks(
        "Monte Carlo".into(),
        l2.iter().map(|r| (r.2, r.3)).collect(),
        Colour::Palette(1),
        Marker::Circle,
    ));
    let spec = &run.spec;
    let mut tcr = panel(
        &format!(
            "Theorem 5, token choice (first come): s = {}, n = {n}, p = {}",
            spec.theory_tokens, spec.tcr_p
        ),
        "capacity C",
        "P(class token kept by its expert)",
        true,
        true,
    );
    let t5 = theory_rows(rows, TCR)?;
    tcr.series.push(line(
        "exact".into(),
        t5.iter().map(|r| (r.2, r.5)).collect(),
        Colour::Palette(0),
        Pattern::Solid,
    ));
    tcr.series.push(marks(
        "Monte Carlo (Switch router)".into(),
        t5.iter().map(|r| (r.2, r.3)).collect(),
        Colour::Palette(1),
        Marker::Circle,
    ));
    let bound = |rows: &[TheoryRow], col: usize| -> Points {
        rows.iter()
            .filter_map(|r| {
                let v = if col == 6 { r.6 } else { r.7 };
                v.is_finite().then_some((r.2, v))
            })
            .collect()
    };
    tcr.series.push(dashed(
        "stated lower bound C n p / (5 s), C >= 48".into(),
        bound(&t5, 6),
        Colour::Grey,
        Pattern::Dashed,
    ));
    tcr.series.push(dashed(
        "stated upper bound 10 C n p / s".into(),
        bound(&t5, 7),
        Colour::Grey,
        Pattern::LongDash,
    ));
    let mut ecr = panel(
        &format!("Theorem 5, expert choice: s = {}", spec.theory_tokens),
        "capacity C",
        "P(class token kept)",
        true,
        false,
    );
    let e5 = theory_rows(rows, ECR)?;
    let mut qs: Vec<f64> = e5.iter().map(|r| r.1).collect();
    qs.dedup();
    for (k, &q) in qs.iter().enumerate() {
        let c = Colour::Palette(2 + k);
        let of: Vec<_> = e5.iter().copied().filter(|r| r.1 == q).collect();
        ecr.series.push(line(
            format!("q = {q}: exact"),
            of.iter().map(|r| (r.2, r.5)).collect(),
            c,
            Pattern::Solid,
        ));
        ecr.series.push(marks(
            format!("q = {q}: Monte Carlo"),
            of.iter().map(|r| (r.2, r.3)).collect(),
            c,
            Marker::Circle,
        ));
        ecr.series.push(dashed(
            format!("q = {q}: stated bounds"),
            bound(&of, 6),
            c,
            Pattern::Dashed,
        ));
        ecr.series
            .push(dashed(String::new(), bound(&of, 7), c, Pattern::Dashed));
    }
    Ok(Figure {
        title: "LocMoE and LocMoE+ theory: Monte Carlo (points) against closed forms (lines) \
                and stated bounds (dashed)"
            .into(),
        panels: vec![lemma3, thm1, lemma2, tcr, ecr],
        columns: 2,
        panel_size: (760, 520),
    })
}

fn routing(run: &RunData<LocmoeExperiment>) -> Figure {
    let mut p = panel(
        "routing one group of tokens (median of repeats)",
        "router",
        "milliseconds",
        false,
        false,
    );
    if let (Some(r), Some(s)) = (key_text(&run.rows, "router"), run.rows.num("seconds")) {
        for (i, (name, sec)) in r.iter().zip(s).enumerate() {
            p.series.push(Series {
                label: name.clone(),
                points: vec![(i as f64, sec * 1e3)],
                style: Style::Bars,
                color: colour(name),
                ..Default::default()
            });
            p.x_names.push((i as f64, name.clone()));
        }
    }
    let spec = &run.spec;
    Figure {
        title: format!(
            "router time: T = {}, d = {}, E = {} (scores and dispatch)",
            spec.tokens, spec.d, spec.experts
        ),
        panels: vec![p],
        columns: 1,
        panel_size: (900, 520),
    }
}

/// Every (router, capacity) of the rows, in row order.
fn arms(rows: &Table) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    if let (Some(r), Some(c)) = (key_text(rows, "router"), key_text(rows, "capacity")) {
        for (a, b) in r.iter().zip(&c) {
            if !out.iter().any(|(x, y)| x == a && y == b) {
                out.push((a.clone(), b.clone()));
            }
        }
    }
    out
}

/// One path per seed of (router, capacity): (step, y).
fn paths(rows: &Table, router: &str, capacity: &str, y: &str) -> Vec<Points> {
    let (Some(r), Some(c), Some(seed), Some(step), Some(v)) = (
        key_text(rows, "router"),
        key_text(rows, "capacity"),
        rows.num("seed"),
        rows.num("step"),
        rows.num(y),
    ) else {
        return Vec::new();
    };
    let mut out: Vec<(f64, Points)> = Vec::new();
    for i in 0..r.len() {
        if r[i] != router || c[i] != capacity || !v[i].is_finite() {
            continue;
        }
        match out.iter_mut().find(|(s, _)| *s == seed[i]) {
            Some((_, p)) => p.push((step[i], v[i])),
            None => out.push((seed[i], vec![(step[i], v[i])])),
        }
    }
    out.into_iter().map(|(_, p)| p).collect()
}

/// The capacity every router is drawn at over steps: 1.1 if swept, else the first factor.
fn reference_capacity(arms: &[(String, String)]) -> String {
    if arms.iter().any(|(_, c)| c == "1.1") {
        return "1.1".into();
    }
    arms.iter()
        .find(|(_, c)| c.parse::<f64>().is_ok() || c == "dropless")
        .map_or_else(|| "balanced".into(), |(_, c)| c.clone())
}

/// The arms drawn over steps: every router at the reference capacity (BASE at its own), and
/// every dynamic or bound capacity.
fn drawn(arms: &[(String, String)]) -> Vec<(String, String)> {
    let reference = reference_capacity(arms);
    arms.iter()
        .filter(|(r, c)| {
            *c == reference
                || (r == "base")
                || matches!(c.as_str(), "bound" | "corollary6" | "remark7" | "schedule")
        })
        .cloned()
        .collect()
}

fn arm_label(router: &str, capacity: &str, reference: &str) -> String {
    if capacity == reference || router == "base" {
        router.into()
    } else {
        format!("{router} (C: {capacity})")
    }
}

fn arm_pattern(capacity: &str) -> Pattern {
    match capacity {
        // bound is locmoe's, corollary6 locmoe_plus's: told apart by colour.
        "bound" | "corollary6" => Pattern::Dotted,
        "remark7" => Pattern::Dashed,
        "schedule" => Pattern::DashDot,
        _ => Pattern::Solid,
    }
}

/// Median over seeds with the min-max band, per drawn arm.
fn over_steps(rows: &Table, panel: &mut Panel, y: &str) {
    let all = arms(rows);
    let reference = reference_capacity(&all);
    for (r, c) in drawn(&all) {
        let p = paths(rows, &r, &c, y);
        if p.is_empty() {
            continue;
        }
        let (median, band) = median_band(&p);
        if p.len() > 1 {
            panel.series.push(Series {
                points: band,
                style: Style::Band,
                color: colour(&r),
                ..Default::default()
            });
        }
        panel.series.push(line(
            arm_label(&r, &c, &reference),
            median,
            colour(&r),
            arm_pattern(&c),
        ));
    }
}

fn training(run: &RunData<LocmoeExperiment>) -> Result<Vec<(String, Figure)>> {
    let rows = &run.rows;
    let spec = &run.spec;
    let all = arms(rows);
    let reference = reference_capacity(&all);
    let seeds = spec.seeds;
    let band = if seeds > 1 {
        format!(", median of {seeds} seeds, min-max band")
    } else {
        String::new()
    };
    let loss_name = match spec.mode {
        Mode::Zipf => "mean squared error",
        _ => "cross-entropy (nats)",
    };
    // pmoe and zipf losses fall by orders of magnitude or from far above their end; charlm by
    // a fraction.
    let logy = spec.mode != Mode::Charlm;
    let mut loss = panel(
        &format!("held-out loss, train-mode routing (capacity {reference}{band})"),
        "step",
        loss_name,
        false,
        logy,
    );
    over_steps(rows, &mut loss, "eval_loss");
    // Pareto: final held-out loss against processed slots, each router across capacities.
    let r = runs(rows, &["eval_loss", "processed_slots", "padded_slots"])?;
    let mut pareto = panel(
        &format!(
            "final held-out loss against token slots processed per step ({})",
            if seeds > 1 {
                format!("mean of {seeds} seeds")
            } else {
                "one seed".into()
            }
        ),
        "processed token slots per step (sum over experts)",
        loss_name,
        false,
        logy,
    );
    let mut routers: Vec<String> = all.iter().map(|(r, _)| r.clone()).collect();
    routers.dedup();
    for router in &routers {
        let mut pts: Vec<(f64, f64)> = Vec::new();
        let mut dynamic: Vec<(String, (f64, f64))> = Vec::new();
        for (rr, cap) in all.iter().filter(|(x, _)| x == router) {
            let idx: Vec<usize> = (0..r.keys.len())
                .filter(|&i| &r.keys[i].0 == rr && &r.keys[i].1 == cap)
                .collect();
            let n = idx.len() as f64;
            let loss = idx.iter().map(|&i| r.last[i][0]).sum::<f64>() / n;
            let slots = idx.iter().map(|&i| r.last[i][1]).sum::<f64>() / n;
            if cap.parse::<f64>().is_ok() || cap == "dropless" || cap == "balanced" {
                pts.push((slots, loss));
            } else {
                dynamic.push((cap.clone(), (slots, loss)));
            }
        }
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        pareto.series.push(Series {
            label: router.clone(),
            points: pts,
            style: Style::LineWithMarkers,
            color: colour(router),
            ..Default::default()
        });
        for (cap, p) in dynamic {
            pareto.series.push(marks(
                format!("{router} (C: {cap})"),
                vec![p],
                colour(router),
                Marker::Triangle,
            ));
        }
    }
    let mut cv = panel(
        &format!("load CV over experts (tokens routed, before capacity; capacity {reference})"),
        "step",
        "std / mean",
        false,
        false,
    );
    over_steps(rows, &mut cv, "cv");
    let mut drops = panel(
        "drop rate (routed slots not processed)",
        "step",
        "fraction",
        false,
        false,
    );
    over_steps(rows, &mut drops, "drop_rate");
    let headline = headline_panel(run, &r, &routers);
    let mut panels = vec![loss, pareto, headline, cv, drops];
    match spec.mode {
        Mode::Pmoe => {
            let mut acc = panel("held-out accuracy", "step", "accuracy", false, false);
            over_steps(rows, &mut acc, "accuracy");
            let mut success = panel(
                "class tokens kept by their class's expert (held-out)",
                "step",
                "success rate",
                false,
                false,
            );
            over_steps(rows, &mut success, "success_rate");
            panels.extend([acc, success]);
        }
        Mode::Charlm => {
            let mut causal = panel(
                "held-out bits per character: causal-safe routing (top choices, no capacity)",
                "step",
                "bits per character",
                false,
                false,
            );
            over_steps(rows, &mut causal, "bpc_causal");
            if let Some(bits) = run.summary.oracle_bits {
                let steps = spec.steps as f64;
                causal.series.push(dashed(
                    "true chains with the topic known".into(),
                    vec![(0.0, bits), (steps, bits)],
                    Colour::Grey,
                    Pattern::Dashed,
                ));
            }
            let mut nmi = panel(
                "NMI(topic, first-choice expert)",
                "step",
                "NMI",
                false,
                false,
            );
            over_steps(rows, &mut nmi, "nmi");
            panels.push(causal);
            // A corpus file has one topic: no NMI to draw.
            if !nmi.series.is_empty() {
                panels.push(nmi);
            }
        }
        _ => {
            let mut nmi = panel(
                "NMI(cluster, first-choice expert)",
                "step",
                "NMI",
                false,
                false,
            );
            over_steps(rows, &mut nmi, "nmi");
            let mut dead = panel(
                "dead experts (load < 1% of the mean)",
                "step",
                "experts",
                false,
                false,
            );
            over_steps(rows, &mut dead, "dead_experts");
            panels.extend([nmi, dead]);
        }
    }
    let main = Figure {
        title: format!(
            "{}: d = {}, E = {}, T = {} tokens per step, {} steps (reconstructed settings)",
            format!("{:?}", spec.mode).to_lowercase(),
            spec.d,
            spec.experts,
            spec.tokens,
            spec.steps
        ),
        panels,
        columns: 2,
        panel_size: (760, 520),
    };
    let mut out = vec![
        (String::new(), main),
        (".loads".to_string(), loads(run, &reference)),
    ];
    if spec.mode == Mode::Pmoe || all.iter().any(|(r, _)| r.starts_with("locmoe")) {
        out.push((".capacity".into(), capacity(run)));
    }
    if let Some(h) = affinity(run) {
        out.push((".affinity".into(), h));
    }
    Ok(out)
}

/// Final held-out loss against the capacity C per expert, with the headline's reference:
/// switch at 1.1 (its loss plus the 1% margin) and the 40% and 60% cuts of its C.
fn headline_panel(
    run: &RunData<LocmoeExperiment>,
    r: &super::claims::Runs,
    routers: &[String],
) -> Panel {
    let spec = &run.spec;
    let mut p = panel(
        "final held-out loss against capacity per expert (mean over seeds); headline reference",
        "capacity C (token slots per expert)",
        "held-out loss",
        false,
        spec.mode == Mode::Pmoe,
    );
    for router in routers {
        let mut caps: Vec<String> = r
            .keys
            .iter()
            .filter(|k| &k.0 == router)
            .map(|k| k.1.clone())
            .collect();
        caps.dedup();
        let mut pts = Vec::new();
        for cap in caps.iter().filter(|c| c.parse::<f64>().is_ok()) {
            let idx: Vec<usize> = (0..r.keys.len())
                .filter(|&i| &r.keys[i].0 == router && &r.keys[i].1 == cap)
                .collect();
            let n = idx.len() as f64;
            let loss = idx.iter().map(|&i| r.last[i][0]).sum::<f64>() / n;
            let k = RouterName::from_name(router).map_or(1, |x| x.slots_per_token(spec.top_k));
            let cf = cap.parse::<f64>().unwrap_or(0.0);
            let Capacity::Slots(c) = capacity_of(cf, k, spec.tokens, spec.experts) else {
                continue;
            };
            let c = c as f64;
            pts.push((c, loss));
        }
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        if !pts.is_empty() {
            p.series.push(Series {
                label: router.clone(),
                points: pts,
                style: Style::LineWithMarkers,
                color: colour(router),
                ..Default::default()
            });
        }
    }
    let reference = super::claims::final_losses(r, "switch", "1.1");
    if !reference.is_empty() {
        let c_ref = (1.1 * spec.tokens as f64 / spec.experts as f64).ceil();
        let l = reference.iter().map(|x| x.1).sum::<f64>() / reference.len() as f64 * 1.01;
        p.series.push(dashed(
            "switch at 1.1: loss + 1% margin".into(),
            vec![(0.0, l), (c_ref, l)],
            Colour::Grey,
            Pattern::Dashed,
        ));
        let (lo, hi) = p
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|q| q.1))
            .filter(|v| *v > 0.0)
            .fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
        let (lo, hi) = if spec.mode == Mode::Pmoe {
            (lo / 2.0, hi * 2.0)
        } else {
            (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        };
        for (cut, pattern) in [(0.4, Pattern::LongDash), (0.6, Pattern::Dotted)] {
            let x = (1.0 - cut) * c_ref;
            p.series.push(dashed(
                format!(
                    "{:.0}% fewer slots than switch@1.1 (C <= {x:.1})",
                    100.0 * cut
                ),
                vec![(x, lo), (x, hi)],
                Colour::Grey,
                pattern,
            ));
        }
    }
    p
}

/// Load heatmaps: tokens routed to each expert over steps, relative to T / E (seed 0).
fn loads(run: &RunData<LocmoeExperiment>, reference: &str) -> Figure {
    let rows = &run.rows;
    let spec = &run.spec;
    let e = spec.experts;
    let fair = spec.tokens as f64 / e as f64;
    let mut panels = Vec::new();
    for (r, c) in drawn(&arms(rows)) {
        let (Some(router), Some(cap), Some(seed), Some(step)) = (
            key_text(rows, "router"),
            key_text(rows, "capacity"),
            rows.num("seed"),
            rows.num("step"),
        ) else {
            continue;
        };
        let idx: Vec<usize> = (0..router.len())
            .filter(|&i| router[i] == r && cap[i] == c && seed[i] == 0.0)
            .collect();
        if idx.len() < 2 {
            continue;
        }
        let mut values = vec![0.0; idx.len() * e];
        for x in 0..e {
            let Some(col) = rows.num(&format!("load_{x}")) else {
                continue;
            };
            for (k, &i) in idx.iter().enumerate() {
                values[x * idx.len() + k] = col[i] / fair;
            }
        }
        let mut p = panel(
            &arm_label(&r, &c, reference),
            "step",
            "expert",
            false,
            false,
        );
        p.heatmap = Some(Heatmap {
            x_range: (step[idx[0]], step[idx[idx.len() - 1]]),
            y_range: (0.0, (e - 1) as f64),
            nx: idx.len(),
            ny: e,
            values,
            categories: None,
            log: false,
            label: "tokens routed / (T / E)".into(),
        });
        panels.push(p);
    }
    Figure {
        title: format!("load per expert over training, seed 0 (capacity {reference})"),
        panels,
        columns: 3,
        panel_size: (520, 400),
    }
}

/// Capacity over training: C and the mean top-1 affinity of every locmoe_plus and locmoe run;
/// pmoe adds the noise-beats-signal rate q and the capacity that keeps 99% of class tokens.
fn capacity(run: &RunData<LocmoeExperiment>) -> Figure {
    let rows = &run.rows;
    let all = arms(rows);
    let grap: Vec<(String, String)> = drawn(&all)
        .into_iter()
        .filter(|(r, _)| r.starts_with("locmoe"))
        .collect();
    let mut cap = panel(
        "capacity C per expert (median over seeds)",
        "step",
        "token slots",
        false,
        false,
    );
    let mut top1 = panel(
        "mean top-1 affinity cos(h, gate) (median over seeds)",
        "step",
        "cosine",
        false,
        false,
    );
    let curve = |panel: &mut Panel, r: &str, c: &str, y: &str| {
        let p = paths(rows, r, c, y);
        if !p.is_empty() {
            panel.series.push(line(
                format!("{r} (C: {c})"),
                median_band(&p).0,
                colour(r),
                arm_pattern(c),
            ));
        }
    };
    for (r, c) in &grap {
        curve(&mut cap, r, c, "capacity_slots");
        curve(&mut top1, r, c, "mean_top1_affinity");
    }
    let mut panels = vec![cap, top1];
    if run.spec.mode == Mode::Pmoe {
        let mut q = panel(
            "noise tokens outranking the class token at its expert (held-out)",
            "step",
            "q",
            false,
            false,
        );
        over_steps(rows, &mut q, "noise_beats_signal");
        let mut c99 = panel(
            "capacity keeping 99% of class tokens (held-out, the arm's queue order)",
            "step",
            "token slots",
            false,
            false,
        );
        over_steps(rows, &mut c99, "capacity_99");
        panels.extend([q, c99]);
    }
    Figure {
        title: "capacity and affinity over training (dynamic readings are ours)".into(),
        panels,
        columns: 2,
        panel_size: (760, 520),
    }
}

/// The cos(token, gate) histograms at the end of training (seed 0).
fn affinity(run: &RunData<LocmoeExperiment>) -> Option<Figure> {
    let hists = run.summary.histograms.as_ref()?;
    let shown = drawn(&arms(&run.rows));
    let mut panels = Vec::new();
    for h in hists.iter().filter(|h| {
        shown
            .iter()
            .any(|(r, c)| *r == h.router && *c == h.capacity)
    }) {
        let width = 2.0 / h.bins as f64;
        let total = |v: &[u64]| v.iter().sum::<u64>().max(1) as f64;
        let (ta, to) = (total(&h.assigned), total(&h.others));
        let centre = |i: usize| -1.0 + (i as f64 + 0.5) * width;
        let mut p = panel(
            &format!("{} (C: {})", h.router, h.capacity),
            "cos(h, gate)",
            "density",
            false,
            false,
        );
        p.series.push(line(
            "first-choice expert".into(),
            h.assigned
                .iter()
                .enumerate()
                .map(|(i, &c)| (centre(i), c as f64 / ta / width))
                .collect(),
            Colour::Palette(3),
            Pattern::Solid,
        ));
        p.series.push(line(
            "other experts".into(),
            h.others
                .iter()
                .enumerate()
                .map(|(i, &c)| (centre(i), c as f64 / to / width))
                .collect(),
            Colour::Palette(0),
            Pattern::Solid,
        ));
        panels.push(p);
    }
    (!panels.is_empty()).then(|| Figure {
        title: "cos(router input, gate vector) at the last step, seed 0 (GrAP vectors or W_g rows)"
            .into(),
        panels,
        columns: 3,
        panel_size: (520, 400),
    })
}
