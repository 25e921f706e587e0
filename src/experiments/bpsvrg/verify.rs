//! `lab verify bpsvrg`: the claims on small instances. The tests call the same cases.

use super::BpsvrgExperiment;
use crate::contract::{Deviation, Finding, Verify, VerifyCase};

/// The cases: softmax regression (convex: the direction variances are exact there) and the
/// default MLP, both on the procedural images, 5 seeds.
pub const CASES: &[VerifyCase] = &[
    (
        SOFTMAX,
        &[
            "model=softmax",
            "epochs=4",
            "landscape_points=0",
            "train_size=1000",
            "test_size=500",
        ],
    ),
    (
        "mlp",
        &[
            "epochs=4",
            "landscape_points=0",
            "train_size=1000",
            "test_size=500",
        ],
    ),
];

/// The recorded findings (docs/bpsvrg.md): with the same step, the reconstructed BP-SVRG
/// ends below B-SVRG and SGD in test accuracy on both cases; SVRG with one sample per step
/// drifts so far from its snapshot within an epoch that its direction's variance exceeds
/// SGD's; and the average per-sample gradient norm does not order the methods as their gaps.
pub const DEVIATIONS: &[Deviation] = &[
    (SOFTMAX, "bpsvrg.bp_beats_b", BELOW),
    (SOFTMAX, "bpsvrg.bp_beats_sgd", BELOW),
    (SOFTMAX, "bpsvrg.svrg_reduces_variance", DRIFT),
    (SOFTMAX, "bpsvrg.flatness_orders_gap", ORDER),
    (MLP, "bpsvrg.bp_beats_b", BELOW),
    (MLP, "bpsvrg.bp_beats_sgd", BELOW),
    (MLP, "bpsvrg.svrg_reduces_variance", DRIFT),
    (MLP, "bpsvrg.flatness_orders_gap", ORDER),
];

const SOFTMAX: &str = "softmax regression";
const MLP: &str = "mlp";
const BELOW: &str = "the sign-switched direction, four times SGD's variance at the same step, \
                     trains slower and ends below (docs/bpsvrg.md)";
const DRIFT: &str = "one-sample steps move w far from the snapshot within an epoch, where \
                     Cov(g, g~) < Var(g~) / 2 (docs/bpsvrg.md)";
const ORDER: &str = "rho <= 0 here (the methods' gaps are close); it is 1 on the \
                     Fashion-MNIST spec files (docs/bpsvrg.md)";

/// The claims that fail on the spec files (docs/bpsvrg.md, "Claims and findings"): BP-SVRG
/// below B-SVRG and SGD in test accuracy except on the CNN; B-SVRG's direction above SGD's in
/// a few epochs far from the snapshot on real images; SVRG's nearly always; the per-sample
/// gradient norm not ordering the gaps on MNIST and softmax regression.
pub const FINDINGS: &[Finding] = &[
    ("bpsvrg-fashion-mlp", "bpsvrg.bp_beats_b", BELOW),
    ("bpsvrg-fashion-mlp", "bpsvrg.bp_beats_sgd", BELOW),
    ("bpsvrg-fashion-mlp", "bpsvrg.direction_variance", FAR),
    ("bpsvrg-fashion-mlp-decay", "bpsvrg.bp_beats_b", BELOW),
    ("bpsvrg-fashion-mlp-decay", "bpsvrg.bp_beats_sgd", BELOW),
    ("bpsvrg-fashion-mlp-decay", "bpsvrg.direction_variance", FAR),
    ("bpsvrg-fashion-cnn", "bpsvrg.direction_variance", FAR),
    ("bpsvrg-mnist-cnn", "bpsvrg.direction_variance", FAR),
    ("bpsvrg-mnist-cnn", "bpsvrg.flatness_orders_gap", ORDER),
    ("bpsvrg-mnist-mlp", "bpsvrg.bp_beats_b", BELOW),
    ("bpsvrg-mnist-mlp", "bpsvrg.bp_beats_sgd", BELOW),
    ("bpsvrg-mnist-mlp", "bpsvrg.direction_variance", FAR),
    ("bpsvrg-mnist-mlp", "bpsvrg.svrg_reduces_variance", DRIFT),
    ("bpsvrg-mnist-mlp", "bpsvrg.flatness_orders_gap", ORDER),
    ("bpsvrg-softmax", "bpsvrg.bp_beats_b", BELOW),
    ("bpsvrg-softmax", "bpsvrg.bp_beats_sgd", BELOW),
    ("bpsvrg-softmax", "bpsvrg.svrg_reduces_variance", DRIFT),
    ("bpsvrg-softmax", "bpsvrg.flatness_orders_gap", ORDER),
];

const FAR: &str = "B-SVRG's direction exceeds SGD's variance in some epochs far from the \
                   snapshot, where Cov(g, g~) < Var(g~) / 2";

impl Verify for BpsvrgExperiment {
    const CASES: &'static [VerifyCase] = CASES;
    const DEVIATIONS: &'static [Deviation] = DEVIATIONS;
    const FINDINGS: &'static [Finding] = FINDINGS;
}
