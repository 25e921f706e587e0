//! Softmax cross-entropy: the loss of every classifier here.

use super::Real;

/// The loss of a batch of logits (`n x classes`, row-major) against labels, and its gradient
/// in `delta`: scale * (softmax - onehot) per row (scale 1/n for a mean loss, 1 for
/// per-sample gradients). Returns the summed loss (f64) and the number of correct argmax
/// predictions; `losses`, if given, receives each sample's loss.
pub fn softmax_cross_entropy<T: Real>(
    logits: &[T],
    labels: &[u8],
    classes: usize,
    delta: &mut [T],
    scale: T,
    mut losses: Option<&mut [f64]>,
) -> (f64, usize) {
    let n = labels.len();
    let (mut total, mut correct) = (0.0, 0);
    for i in 0..n {
        let row = &logits[i * classes..(i + 1) * classes];
        let out = &mut delta[i * classes..(i + 1) * classes];
        // Shifted by the max so exp never overflows; the loss in f64 from the f64 log-sum.
        let (mut best, mut arg) = (row[0], 0);
        for (j, &z) in row.iter().enumerate() {
            if z > best {
                best = z;
                arg = j;
            }
        }
        let mut sum = 0.0f64;
        for (o, &z) in out.iter_mut().zip(row) {
            let e = (z - best).exp();
            *o = e;
            sum += e.to_f64();
        }
        let label = labels[i] as usize;
        let loss = sum.ln() - (row[label] - best).to_f64();
        let inv = T::from_f64(1.0 / sum);
        for (j, o) in out.iter_mut().enumerate() {
            let p = *o * inv;
            *o = scale * if j == label { p - T::ONE } else { p };
        }
        total += loss;
        correct += usize::from(arg == label);
        if let Some(l) = losses.as_deref_mut() {
            l[i] = loss;
        }
    }
    (total, correct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_is_log_sum_exp_minus_the_label_logit_and_delta_its_derivative() {
        let logits = [1.0, -2.0, 0.5, 3.0, 3.0, -1.0];
        let labels = [2u8, 0];
        let mut delta = [0.0; 6];
        let mut losses = [0.0; 2];
        let (total, correct) =
            softmax_cross_entropy(&logits, &labels, 3, &mut delta, 1.0, Some(&mut losses));
        let lse = |r: &[f64]| r.iter().map(|z: &f64| z.exp()).sum::<f64>().ln();
        assert!((losses[0] - (lse(&logits[..3]) - 0.5)).abs() < 1e-14);
        assert!((losses[1] - (lse(&logits[3..]) - 3.0)).abs() < 1e-14);
        assert!((total - losses[0] - losses[1]).abs() < 1e-14);
        // Sample 0 predicts class 0 (wrong); sample 1 ties 0 and 1, the first wins (right).
        assert_eq!(correct, 1);
        // Central differences of each sample's loss.
        for i in 0..2 {
            for j in 0..3 {
                let h = 1e-6;
                let mut up = logits;
                up[i * 3 + j] += h;
                let mut down = logits;
                down[i * 3 + j] -= h;
                let mut d = [0.0; 6];
                let mut lu = [0.0; 2];
                let mut ld = [0.0; 2];
                softmax_cross_entropy(&up, &labels, 3, &mut d, 1.0, Some(&mut lu));
                softmax_cross_entropy(&down, &labels, 3, &mut d, 1.0, Some(&mut ld));
                let fd = (lu[i] - ld[i]) / (2.0 * h);
                assert!((fd - delta[i * 3 + j]).abs() < 1e-8, "{i} {j}");
            }
        }
    }
}
