//! Matrix products over row-major slices, through the `gemm` crate (faer's kernels).

use std::cell::Cell;

use gemm::Parallelism;

use super::Real;

thread_local! {
    /// Whether this thread's large products may be split between threads (see
    /// [`single_threaded_products`]).
    static SPLIT: Cell<bool> = const { Cell::new(true) };
}

/// Whether this thread's kernels may split large work between threads.
pub fn may_split() -> bool {
    SPLIT.with(Cell::get)
}

/// Runs `f` with every product on the calling thread: for jobs that already run in parallel
/// (methods x seeds), where splitting each product would only add synchronization.
pub fn single_threaded_products<R>(f: impl FnOnce() -> R) -> R {
    let before = SPLIT.with(|s| s.replace(false));
    let out = f();
    SPLIT.with(|s| s.set(before));
    out
}

/// A row-major operand of a product: `rows x cols` as stored, used as is or transposed.
#[derive(Clone, Copy)]
pub struct Operand<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub transposed: bool,
    /// Elements between the starts of two stored rows (`cols` when contiguous).
    pub stride: usize,
}

impl<'a, T> Operand<'a, T> {
    /// The matrix as stored.
    pub fn plain(data: &'a [T], rows: usize, cols: usize) -> Self {
        Operand {
            data,
            rows,
            cols,
            transposed: false,
            stride: cols,
        }
    }

    /// The transpose of the stored matrix.
    pub fn transposed(data: &'a [T], rows: usize, cols: usize) -> Self {
        Operand {
            data,
            rows,
            cols,
            transposed: true,
            stride: cols,
        }
    }

    /// The same matrix with stored rows `stride` elements apart (a block of a wider matrix).
    pub fn with_stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }

    /// Elements the stored matrix reaches (None if that overflows).
    fn extent(&self) -> Option<usize> {
        if self.rows == 0 {
            Some(0)
        } else {
            (self.rows - 1)
                .checked_mul(self.stride)?
                .checked_add(self.cols)
        }
    }

    /// Shape as used: (rows, cols) of op(A).
    fn shape(&self) -> (usize, usize) {
        if self.transposed {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }

    /// (row stride, column stride) of op(A) in the stored data.
    fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (1, self.stride as isize)
        } else {
            (self.stride as isize, 1)
        }
    }
}

/// `c = op(a) op(b)`, or `c += op(a) op(b)` when `accumulate`; c is row-major `m x n`.
///
/// The products of one output block never depend on the thread count (gemm splits the output,
/// not the inner dimension), so results are the same bits on 1 or 2 threads (tested).
pub fn matmul<T: Real>(c: &mut [T], a: Operand<T>, b: Operand<T>, accumulate: bool) {
    let (m, k) = a.shape();
    let (k2, n) = b.shape();
    assert_eq!(k, k2, "inner dimensions");
    assert!(a.stride >= a.cols && b.stride >= b.cols, "row strides");
    assert!(a.stride <= isize::MAX as usize && b.stride <= isize::MAX as usize);
    let within = |o: &Operand<T>| o.extent().is_some_and(|e| e <= o.data.len());
    assert!(
        within(&a) && within(&b),
        "an operand reaches past its slice"
    );
    assert!(
        m.checked_mul(n).is_some_and(|mn| mn <= c.len()),
        "output too small"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(T::ZERO);
        }
        return;
    }
    let (a_rs, a_cs) = a.strides();
    let (b_rs, b_cs) = b.strides();
    // Small products run on the calling thread; gemm's own threshold decides for the rest.
    let parallelism = if m * n * k < 1 << 18 || !SPLIT.with(Cell::get) {
        Parallelism::None
    } else {
        Parallelism::Rayon(0)
    };
    // SAFETY: the asserts above bound every index the strides reach: op(a) is m x k, op(b)
    // k x n, c m x n, all inside their slices; c does not alias a or b (a &mut borrow).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum();
            }
        }
        c
    }

    fn transpose(x: &[f64], rows: usize, cols: usize) -> Vec<f64> {
        let mut t = vec![0.0; x.len()];
        for i in 0..rows {
            for j in 0..cols {
                t[j * rows + i] = x[i * cols + j];
            }
        }
        t
    }

    #[test]
    fn every_transpose_combination_matches_the_triple_loop() {
        let (m, k, n) = (7, 5, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.91).cos()).collect();
        let want = naive(&a, &b, m, k, n);
        let at = transpose(&a, m, k);
        let bt = transpose(&b, k, n);
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let oa = if ta {
                Operand::transposed(&at, k, m)
            } else {
                Operand::plain(&a, m, k)
            };
            let ob = if tb {
                Operand::transposed(&bt, n, k)
            } else {
                Operand::plain(&b, k, n)
            };
            let mut c = vec![1.0; m * n];
            matmul(&mut c, oa, ob, false);
            for (x, y) in c.iter().zip(&want) {
                assert!((x - y).abs() < 1e-12, "{ta} {tb}");
            }
            matmul(&mut c, oa, ob, true);
            for (x, y) in c.iter().zip(&want) {
                assert!((x - 2.0 * y).abs() < 1e-12, "accumulate {ta} {tb}");
            }
        }
    }
}
