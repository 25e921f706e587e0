//! The distributed finite-sum problem f(x) = (1/n) sum_i f_i(x), node 1 the master.
//!
//! f_i(x) = (1/m_i) sum_{r in node i} loss(a_r . x, b_r) + (lambda/2) ||x||^2 with
//! * ridge: loss = (a.x - b)^2 / 2, so H_i = A_i^T A_i / m_i + lambda I exactly;
//! * logistic: loss = log(1 + exp(-b a.x)), b = +-1.
//!
//! Nodes are views: node i is a slice of one shuffled row order over the single CSR matrix.

use anyhow::Result;
use faer::linalg::solvers::{Llt, Solve};
use faer::{Mat, Side};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::data::Dataset;
use crate::vector::{dot, norm2};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    Ridge,
    Logistic,
}

impl Loss {
    /// d loss / d (a.x) at margin t = a.x for label b.
    #[inline]
    fn derivative(self, t: f64, b: f64) -> f64 {
        match self {
            Loss::Ridge => t - b,
            // -b sigma(-b t), written to stay finite for large |t|.
            Loss::Logistic => -b * sigmoid(-b * t),
        }
    }

    /// d^2 loss / d (a.x)^2.
    #[inline]
    fn curvature(self, t: f64) -> f64 {
        match self {
            Loss::Ridge => 1.0,
            Loss::Logistic => {
                let s = sigmoid(t);
                s * (1.0 - s)
            }
        }
    }

    #[inline]
    fn value(self, t: f64, b: f64) -> f64 {
        match self {
            Loss::Ridge => 0.5 * (t - b) * (t - b),
            // log(1 + exp(-bt)) without overflow.
            Loss::Logistic => {
                let z = -b * t;
                if z > 0.0 {
                    z + (-z).exp().ln_1p()
                } else {
                    z.exp().ln_1p()
                }
            }
        }
    }
}

#[inline]
fn sigmoid(t: f64) -> f64 {
    if t >= 0.0 {
        1.0 / (1.0 + (-t).exp())
    } else {
        let e = t.exp();
        e / (1.0 + e)
    }
}

/// Nodes per block of a full gradient: node gradients are summed in blocks of this many, in
/// a fixed order, so the result does not depend on the thread count.
const BLOCK: usize = 8;

pub struct Problem {
    pub data: Dataset,
    pub loss: Loss,
    pub lambda: f64,
    /// The shuffled row order; node i holds order[bounds[i]..bounds[i+1]].
    order: Vec<u32>,
    bounds: Vec<usize>,
    /// Ridge with few features: each node's quadratic in closed form (see [`Quadratic`]),
    /// and their mean, the data part of f.
    quadratics: Option<(Vec<Quadratic>, Quadratic)>,
}

/// A ridge node as a quadratic: f_i(x) = x^T G x / 2 - c . x + k + (lambda/2)||x||^2 with
/// G = A_i^T A_i / m_i, c = A_i^T b_i / m_i, k = mean b^2 / 2. Used when a dense d x d
/// product is cheaper than a pass over the node's rows (see [`Problem::split`]); the values
/// are the same up to rounding.
struct Quadratic {
    gram: Mat<f64>,
    linear: Vec<f64>,
    constant: f64,
}

impl Quadratic {
    /// out += alpha G v (faer's SIMD matrix-vector product).
    fn apply(&self, v: &[f64], alpha: f64, out: &mut [f64]) {
        let d = v.len();
        faer::linalg::matmul::matmul(
            faer::MatMut::from_column_major_slice_mut(out, d, 1),
            faer::Accum::Add,
            self.gram.as_ref(),
            faer::MatRef::from_column_major_slice(v, d, 1),
            alpha,
            faer::Par::Seq,
        );
    }

    /// x^T G x / 2 - c . x + k.
    fn value(&self, x: &[f64]) -> f64 {
        let mut gx = vec![0.0; x.len()];
        self.apply(x, 1.0, &mut gx);
        0.5 * dot(&gx, x) - dot(&self.linear, x) + self.constant
    }
}

/// Most memory the node Gram matrices may take.
const GRAM_BYTES: usize = 128 << 20;

/// How a ridge node's gradient is computed: a product with its cached d x d Gram matrix, or
/// a pass over its rows of the CSR matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradientPath {
    Gram,
    Rows,
}

/// What the cost of a node's gradient depends on: a node of `rows` rows holding `nnz`
/// non-zeros over `features` columns, among `nodes` nodes visited in random order.
#[derive(Debug, Clone, Copy)]
pub struct NodeShape {
    pub features: usize,
    pub rows: usize,
    pub nnz: usize,
    pub nodes: usize,
}

impl NodeShape {
    /// The bytes a path reads over many random visits: every node's Gram matrix, or the
    /// whole CSR matrix (8-byte values, 4-byte indices, an 8-byte row pointer per row).
    pub fn working_set(&self, path: GradientPath) -> usize {
        match path {
            GradientPath::Gram => (self.nodes + 1)
                .saturating_mul(self.features)
                .saturating_mul(self.features)
                .saturating_mul(8),
            GradientPath::Rows => self
                .nodes
                .saturating_mul(self.nnz.saturating_mul(12) + self.rows.saturating_mul(8)),
        }
    }
}

impl GradientPath {
    /// Working sets up to this size are modelled as read from cache, larger ones from
    /// memory: where the measured costs jump on the machine the model was fitted on (half
    /// its 32 MiB L3 for the Gram matrices, read whole; a quarter for the rows, whose
    /// scattered reads slow down from about 8 MiB).
    pub fn cache_budget(self) -> usize {
        match self {
            GradientPath::Gram => 16 << 20,
            GradientPath::Rows => 8 << 20,
        }
    }

    /// Whether the model reads this path's working set from cache.
    pub fn cached(self, shape: &NodeShape) -> bool {
        shape.working_set(self) <= self.cache_budget()
    }

    /// Predicted nanoseconds of one node gradient difference (the SVRS step's kernel):
    /// Gram: 70 + c d^2; rows: a rows + b nnz (a, b, c depending on whether the path's
    /// working set fits [`GradientPath::cache_budget`]). Fitted by `cargo bench --bench svrs_paths` on this
    /// project's 2-core machine (AMD EPYC, 2 MiB L2, 32 MiB L3), which prints these
    /// predictions beside the measured times of both paths and the refitted coefficients;
    /// only the ratio of the two predictions is used.
    pub fn predicted_ns(self, shape: &NodeShape) -> f64 {
        let cached = self.cached(shape);
        match self {
            GradientPath::Gram => {
                let per_entry = if cached { 0.14 } else { 0.31 };
                70.0 + per_entry * (shape.features * shape.features) as f64
            }
            GradientPath::Rows => {
                // A row that misses the cache costs a memory latency.
                let (per_row, per_nnz) = if cached { (6.7, 1.6) } else { (83.0, 4.0) };
                per_row * shape.rows as f64 + per_nnz * shape.nnz as f64
            }
        }
    }

    /// The path the model predicts to be faster (ridge only; logistic always uses rows).
    pub fn cheaper(shape: &NodeShape) -> GradientPath {
        let gram = GradientPath::Gram.predicted_ns(shape);
        if gram < GradientPath::Rows.predicted_ns(shape) {
            GradientPath::Gram
        } else {
            GradientPath::Rows
        }
    }
}

impl Problem {
    /// Splits the rows into `nodes` iid shards of (almost) equal size by a random shuffle;
    /// ridge gradients take the path [`GradientPath::cheaper`] predicts.
    pub fn split(
        data: Dataset,
        loss: Loss,
        lambda: f64,
        nodes: usize,
        rng: &mut ChaCha8Rng,
    ) -> Problem {
        Problem::split_on(data, loss, lambda, nodes, rng, None)
    }

    /// [`Problem::split`] with the ridge gradient path forced (`None`: the model's choice).
    /// Gram matrices are never built past [`GRAM_BYTES`] nor for logistic losses.
    pub fn split_on(
        data: Dataset,
        loss: Loss,
        lambda: f64,
        nodes: usize,
        rng: &mut ChaCha8Rng,
        path: Option<GradientPath>,
    ) -> Problem {
        let rows = data.features.rows();
        let mut order: Vec<u32> = (0..rows as u32).collect();
        order.shuffle(rng);
        let bounds: Vec<usize> = (0..=nodes).map(|i| i * rows / nodes).collect();
        // Within a node the rows are read in storage order (the shards are unchanged).
        for i in 0..nodes {
            order[bounds[i]..bounds[i + 1]].sort_unstable();
        }
        let mut problem = Problem {
            data,
            loss,
            lambda,
            order,
            bounds,
            quadratics: None,
        };
        let d = problem.dim();
        let shape = NodeShape {
            features: d,
            rows: rows / nodes,
            nnz: problem.data.features.nnz() / nodes,
            nodes,
        };
        let path = path.unwrap_or_else(|| GradientPath::cheaper(&shape));
        let gram_bytes = (nodes + 1).saturating_mul(d * d * 8);
        if loss == Loss::Ridge && path == GradientPath::Gram && gram_bytes <= GRAM_BYTES {
            let quadratics: Vec<Quadratic> = (0..nodes)
                .into_par_iter()
                .map(|i| problem.node_quadratic(i))
                .collect();
            let mut mean = Quadratic {
                gram: Mat::zeros(d, d),
                linear: vec![0.0; d],
                constant: 0.0,
            };
            for q in &quadratics {
                mean.gram += &q.gram;
                for (m, c) in mean.linear.iter_mut().zip(&q.linear) {
                    *m += c;
                }
                mean.constant += q.constant;
            }
            let inv_n = 1.0 / nodes as f64;
            mean.gram *= faer::Scale(inv_n);
            mean.linear.iter_mut().for_each(|c| *c *= inv_n);
            mean.constant *= inv_n;
            problem.quadratics = Some((quadratics, mean));
        }
        problem
    }

    fn node_quadratic(&self, i: usize) -> Quadratic {
        let d = self.dim();
        let mut h = Mat::<f64>::zeros(d, d);
        self.add_node_data_hessian(i, None, 1.0, &mut h);
        let rows = self.node_rows(i);
        let m = rows.len() as f64;
        let mut linear = vec![0.0; d];
        let mut constant = 0.0;
        for &r in rows {
            let b = self.data.labels[r as usize];
            self.data.features.axpy(r as usize, b / m, &mut linear);
            constant += 0.5 * b * b / m;
        }
        Quadratic {
            gram: h,
            linear,
            constant,
        }
    }

    /// Whether ridge gradients come from the cached Gram matrices.
    pub fn uses_gram(&self) -> bool {
        self.quadratics.is_some()
    }

    /// The path node gradients take.
    pub fn gradient_path(&self) -> GradientPath {
        if self.uses_gram() {
            GradientPath::Gram
        } else {
            GradientPath::Rows
        }
    }

    pub fn nodes(&self) -> usize {
        self.bounds.len() - 1
    }

    pub fn dim(&self) -> usize {
        self.data.features.cols
    }

    /// The rows of node i (0 is the master).
    #[inline]
    pub fn node_rows(&self, i: usize) -> &[u32] {
        &self.order[self.bounds[i]..self.bounds[i + 1]]
    }

    /// f_i(x).
    pub fn node_value(&self, i: usize, x: &[f64]) -> f64 {
        if let Some((q, _)) = &self.quadratics {
            return q[i].value(x) + 0.5 * self.lambda * dot(x, x);
        }
        let a = &self.data.features;
        let rows = self.node_rows(i);
        let sum: f64 = rows
            .iter()
            .map(|&r| {
                let r = r as usize;
                self.loss.value(a.dot(r, x), self.data.labels[r])
            })
            .sum();
        sum / rows.len() as f64 + 0.5 * self.lambda * dot(x, x)
    }

    /// out = grad f_i(x).
    pub fn node_grad(&self, i: usize, x: &[f64], out: &mut [f64]) {
        for (o, xj) in out.iter_mut().zip(x) {
            *o = self.lambda * xj;
        }
        self.add_data_grad(i, x, out);
    }

    /// out += (1/m_i) sum_r loss'(a_r.x) a_r: the data part of grad f_i(x).
    fn add_data_grad(&self, i: usize, x: &[f64], out: &mut [f64]) {
        if let Some((q, _)) = &self.quadratics {
            q[i].apply(x, 1.0, out);
            for (o, c) in out.iter_mut().zip(&q[i].linear) {
                *o -= c;
            }
            return;
        }
        let a = &self.data.features;
        let rows = self.node_rows(i);
        let inv_m = 1.0 / rows.len() as f64;
        for &r in rows {
            let r = r as usize;
            let g = self.loss.derivative(a.dot(r, x), self.data.labels[r]);
            a.axpy(r, g * inv_m, out);
        }
    }

    /// out += grad f_i(x) - grad f_i(w), in one pass over node i's rows (the SVRG
    /// correction of a sampled node). For ridge it is the node Hessian times x - w.
    pub fn add_node_grad_difference(&self, i: usize, x: &[f64], w: &[f64], out: &mut [f64]) {
        let a = &self.data.features;
        let rows = self.node_rows(i);
        let inv_m = 1.0 / rows.len() as f64;
        let diff: Vec<f64> = x.iter().zip(w).map(|(xj, wj)| xj - wj).collect();
        for (o, dj) in out.iter_mut().zip(&diff) {
            *o += self.lambda * dj;
        }
        if let Some((q, _)) = &self.quadratics {
            q[i].apply(&diff, 1.0, out);
            return;
        }
        for &r in rows {
            let r = r as usize;
            let g = match self.loss {
                Loss::Ridge => a.dot(r, &diff),
                Loss::Logistic => {
                    let b = self.data.labels[r];
                    self.loss.derivative(a.dot(r, x), b) - self.loss.derivative(a.dot(r, w), b)
                }
            };
            a.axpy(r, g * inv_m, out);
        }
    }

    /// out = grad f(x) = (1/n) sum_i grad f_i(x), nodes in parallel, summed in a fixed order.
    /// With the Gram matrices, the mean quadratic gives the same sum in one product.
    pub fn full_grad(&self, x: &[f64], out: &mut [f64]) {
        if let Some((_, mean)) = &self.quadratics {
            for ((o, xj), c) in out.iter_mut().zip(x).zip(&mean.linear) {
                *o = self.lambda * xj - c;
            }
            mean.apply(x, 1.0, out);
            return;
        }
        let (n, d) = (self.nodes(), self.dim());
        let blocks: Vec<Vec<f64>> = (0..n.div_ceil(BLOCK))
            .into_par_iter()
            .map(|b| {
                let mut sum = vec![0.0; d];
                let mut node = vec![0.0; d];
                for i in b * BLOCK..((b + 1) * BLOCK).min(n) {
                    node.fill(0.0);
                    self.add_data_grad(i, x, &mut node);
                    for (s, g) in sum.iter_mut().zip(&node) {
                        *s += g;
                    }
                }
                sum
            })
            .collect();
        for (j, (o, xj)) in out.iter_mut().zip(x).enumerate() {
            let data: f64 = blocks.iter().map(|b| b[j]).sum();
            *o = data / n as f64 + self.lambda * xj;
        }
    }

    /// f(x).
    pub fn value(&self, x: &[f64]) -> f64 {
        if let Some((_, mean)) = &self.quadratics {
            return mean.value(x) + 0.5 * self.lambda * dot(x, x);
        }
        let n = self.nodes();
        let values: Vec<f64> = (0..n)
            .into_par_iter()
            .map(|i| self.node_value(i, x))
            .collect();
        values.iter().sum::<f64>() / n as f64
    }

    /// `scale` times the data part of the Hessian of f_i at x,
    /// (1/m_i) sum_r loss''(a_r.x) a_r a_r^T, added into the dense `h`; with `x = None` the
    /// Gram matrix A_i^T A_i / m_i (curvature 1).
    pub fn add_node_data_hessian(&self, i: usize, x: Option<&[f64]>, scale: f64, h: &mut Mat<f64>) {
        if let Some((q, _)) = &self.quadratics {
            // Ridge: the data Hessian is the cached Gram matrix.
            *h += faer::Scale(scale) * &q[i].gram;
            return;
        }
        let a = &self.data.features;
        let rows = self.node_rows(i);
        let w0 = scale / rows.len() as f64;
        for &r in rows {
            let r = r as usize;
            let c = match (self.loss, x) {
                (Loss::Logistic, Some(x)) => w0 * self.loss.curvature(a.dot(r, x)),
                _ => w0,
            };
            let (idx, val) = a.row(r);
            for (p, &j) in idx.iter().enumerate() {
                let cj = c * val[p];
                for (&k, &vk) in idx.iter().zip(val) {
                    h[(j as usize, k as usize)] += cj * vk;
                }
            }
        }
    }

    /// The Hessian of f_i at x, dense.
    pub fn node_hessian(&self, i: usize, x: &[f64]) -> Mat<f64> {
        let d = self.dim();
        let mut h = Mat::<f64>::zeros(d, d);
        self.add_node_data_hessian(i, Some(x), 1.0, &mut h);
        for j in 0..d {
            h[(j, j)] += self.lambda;
        }
        h
    }

    /// The Hessian of f at x, dense.
    pub fn hessian(&self, x: &[f64]) -> Mat<f64> {
        let mut h = self.data_hessian(Some(x));
        for j in 0..self.dim() {
            h[(j, j)] += self.lambda;
        }
        h
    }

    /// (1/n) sum_i of the data parts of the node Hessians at x (`None`: the Gram matrices).
    pub fn data_hessian(&self, x: Option<&[f64]>) -> Mat<f64> {
        let (n, d) = (self.nodes(), self.dim());
        let mut h = Mat::<f64>::zeros(d, d);
        for i in 0..n {
            self.add_node_data_hessian(i, x, 1.0 / n as f64, &mut h);
        }
        h
    }
}

/// ||a - b||^2.
pub fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Solves A x = rhs in place with a Cholesky factor.
pub fn solve_in_place(factor: &Llt<f64>, rhs: &mut [f64]) {
    let mut col = faer::MatMut::from_column_major_slice_mut(rhs, rhs.len(), 1);
    factor.solve_in_place(col.as_mut());
}

/// Cholesky of a symmetric positive definite matrix; an error names what it was for.
pub fn cholesky(h: &Mat<f64>, what: &str) -> Result<Llt<f64>> {
    h.llt(Side::Lower)
        .map_err(|e| anyhow::anyhow!("{what} is not positive definite ({e:?})"))
}

/// Eigenvalues of a symmetric matrix, ascending.
pub fn eigenvalues(h: &Mat<f64>) -> Result<Vec<f64>> {
    h.self_adjoint_eigenvalues(Side::Lower)
        .map_err(|e| anyhow::anyhow!("eigenvalue computation failed ({e:?})"))
}

/// Spectral norm of a symmetric matrix.
pub fn spectral_norm(h: &Mat<f64>) -> Result<f64> {
    let ev = eigenvalues(h)?;
    Ok(ev
        .first()
        .map_or(0.0, |l| l.abs())
        .max(ev.last().map_or(0.0, |l| l.abs())))
}

/// The exact constants of a problem at a point (for ridge the point does not matter).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Constants {
    /// lambda_min of the Hessian of f.
    pub mu: f64,
    /// lambda_max of the Hessian of f (at x* for logistic).
    pub l: f64,
    /// sqrt((1/n) sum_i ||H_i - H||_2^2): average second-order similarity.
    pub delta_avg: f64,
    /// max_i ||H_i - H||_2.
    pub delta_max: f64,
    /// ||H_1 - H||_2 for the master (the constant of AccEG and the composite gradient method).
    pub delta_master: f64,
}

/// mu, L and the similarity constants from the Hessians at x: every H_i - H is formed
/// densely, one at a time in one reused buffer, and ||H_i - H||_2 comes from its eigenvalues
/// (exact, O(n d^3)). One thread on purpose: the dense eigensolver keeps a few MB of packing
/// buffers per thread that calls it, and this keeps the peak memory near the data size.
pub fn constants(problem: &Problem, x: &[f64]) -> Result<Constants> {
    let h = problem.hessian(x);
    let ev = eigenvalues(&h)?;
    let d = problem.dim();
    let mut diff = Mat::<f64>::zeros(d, d);
    let mut norms = Vec::with_capacity(problem.nodes());
    for i in 0..problem.nodes() {
        // H_i - H = data Hessian of node i - data Hessian of f (the lambda I terms cancel).
        for j in 0..d {
            for k in 0..d {
                diff[(j, k)] = problem.lambda * f64::from(u8::from(j == k)) - h[(j, k)];
            }
        }
        problem.add_node_data_hessian(i, Some(x), 1.0, &mut diff);
        norms.push(spectral_norm(&diff)?);
    }
    let n = norms.len() as f64;
    Ok(Constants {
        mu: ev[0],
        l: *ev.last().expect("d >= 1"),
        delta_avg: (norms.iter().map(|v| v * v).sum::<f64>() / n).sqrt(),
        delta_max: norms.iter().copied().fold(0.0, f64::max),
        delta_master: norms[0],
    })
}

/// x* and f*: for ridge a Cholesky solve of H x = (1/n) sum_i A_i^T b_i / m_i refined by one
/// Newton step on the gradient as the methods compute it; for logistic Newton's method from
/// 0 until the gradient stops shrinking. Returns (x*, Newton steps).
pub fn solve_optimum(problem: &Problem) -> Result<(Vec<f64>, usize)> {
    let d = problem.dim();
    let mut x = vec![0.0; d];
    let mut g = vec![0.0; d];
    let mut steps = 0;
    let mut best = f64::INFINITY;
    // Ridge: a Newton step from 0 is the direct solve; the second one refines it. Logistic:
    // quadratic convergence, then rounding; stop when the gradient no longer decreases.
    for _ in 0..100 {
        problem.full_grad(&x, &mut g);
        let size = norm2(&g).sqrt();
        if size >= best || size == 0.0 {
            break;
        }
        best = size;
        let factor = cholesky(&problem.hessian(&x), "the Hessian of f")?;
        solve_in_place(&factor, &mut g);
        // Damped only if a full step would increase f (far from x* in the logistic case).
        let f0 = problem.value(&x);
        let mut t = 1.0;
        loop {
            let trial: Vec<f64> = x.iter().zip(&g).map(|(xi, gi)| xi - t * gi).collect();
            if problem.value(&trial) <= f0 || t < 1e-8 {
                x = trial;
                break;
            }
            t *= 0.5;
        }
        steps += 1;
        if problem.loss == Loss::Ridge && steps == 2 {
            break;
        }
    }
    Ok((x, steps))
}
