//! Value-convergence bounds of PMD with exact evaluation (notes, section 4), as functions of the
//! iteration k, for the run's bound columns.
//!
//! Notation: delta_k = V*_rho - V^{pi_k}_rho (rho uniform), e_k = ||V* - V^{pi_k}||_inf,
//! D*_0 = E_{s ~ d_rho(pi*)} D(pi*(.|s), pi_0(.|s)), theta_rho = ||d_rho(pi*)/rho||_inf / (1 - gamma).

/// Xiao (2022) Theorem 8, constant step eta (prose verified; the formula is reconstructed in
/// the notes, with k rather than k + 1 as the safe side):
/// delta_k <= (1/k) (D*_0 / ((1 - gamma) eta) + R / (1 - gamma)^2), k >= 1.
///
/// Xiao states it for rewards in [0, 1] (R = 1). For rewards spanning a range R the same
/// bound holds with R / (1 - gamma)^2: scaling rewards by R is the same as scaling eta by R
/// and values by R (our derivation).
pub fn xiao_theorem8(
    k: usize,
    eta: f64,
    d_star0: f64,
    gamma: f64,
    reward_range: f64,
) -> Option<f64> {
    if k == 0 || !d_star0.is_finite() {
        return None;
    }
    let one_minus = 1.0 - gamma;
    Some((d_star0 / (one_minus * eta) + reward_range / (one_minus * one_minus)) / k as f64)
}

/// Xiao (2022) Theorem 10, geometric steps eta_k = eta_0 / gamma^k, which satisfy its condition
/// eta_{k+1} >= eta_k theta/(theta - 1) because theta >= 1/(1 - gamma) (form reconstructed,
/// conditions verified): delta_k <= (1 - 1/theta)^k (delta_0 + D*_0 / ((theta - 1) eta_0)).
/// `eta0 = inf` is the policy-iteration limit of Xiao section 4.4.
pub fn xiao_theorem10(k: usize, eta0: f64, d_star0: f64, delta0: f64, theta: f64) -> Option<f64> {
    let extra = if eta0.is_infinite() {
        0.0
    } else {
        d_star0 / ((theta - 1.0) * eta0)
    };
    let bound = (1.0 - 1.0 / theta).powi(k as i32) * (delta0 + extra);
    bound.is_finite().then_some(bound)
}

/// Johnson, Pike-Burke & Rebeschini (2023), adaptive steps with c_t = c0 gamma^{2(t+1)}
/// (verified via Protopapas & Barakat 2024, Thm 4.1 with h = 1):
/// e_k <= gamma^k (e_0 + (1/(1 - gamma)) sum_{t=1}^k c_{t-1} / gamma^t)
///      = gamma^k (e_0 + c0 gamma (1 - gamma^k) / (1 - gamma)^2).
pub fn johnson_adaptive(k: usize, c0: f64, e0: f64, gamma: f64) -> f64 {
    let gk = gamma.powi(k as i32);
    gk * (e0 + c0 * gamma * (1.0 - gk) / ((1.0 - gamma) * (1.0 - gamma)))
}

/// The adaptive step's c_k = c0 gamma^{2(k+1)} (the choice recommended by Johnson et al.).
pub fn adaptive_c(k: usize, c0: f64, gamma: f64) -> f64 {
    c0 * gamma.powi(2 * (k as i32 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn johnson_closed_form_equals_the_sum() {
        let (c0, e0, gamma) = (0.3, 2.0, 0.9);
        for k in 0..30 {
            let sum: f64 = (1..=k)
                .map(|t| adaptive_c(t - 1, c0, gamma) / gamma.powi(t as i32))
                .sum();
            let direct = gamma.powi(k as i32) * (e0 + sum / (1.0 - gamma));
            assert!((johnson_adaptive(k, c0, e0, gamma) - direct).abs() < 1e-12);
        }
    }
}
