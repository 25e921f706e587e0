//! A small neural-network toolkit for the experiments that train networks on images (bpsvrg;
//! bnquant and locmoe build on it): dense, convolution (im2col + gemm), max and average
//! pooling, batch normalization, ReLU and softmax cross-entropy, with hand-written backward
//! passes checked against finite differences, over one flat parameter buffer so an optimizer
//! is a loop over a slice; per-sample gradient norms without per-sample backward passes.
//!
//! f32 for training, as the reference frameworks train; f64 in the tests of the backward
//! passes; metrics accumulate in f64 either way.

mod layers;
mod loss;
mod matmul;
mod network;
mod real;

pub use self::layers::{
    BN_EPS, BN_MOMENTUM, ConvGeometry, Shape, col2im, conv_forward, im2col, max_pool_forward,
};
pub use self::loss::softmax_cross_entropy;
pub use self::matmul::{Operand, matmul, single_threaded_products};
pub use self::network::{Builder, ConvNorm, DotScratch, Kind, Layer, Mode, Network, Workspace};
pub use self::real::{Real, dot, sum_squares};

#[cfg(test)]
mod tests;
