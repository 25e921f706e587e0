//! Noise in training: perturbed gradient descent on a two-layer CNN.
pub mod model;
