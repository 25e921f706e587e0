//! Directional convergence under spherically symmetric data.
pub mod population;
