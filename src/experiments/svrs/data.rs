//! Sparse data: a CSR matrix with +-1 labels, read from LIBSVM files or generated.
//!
//! The reader makes two passes over the file (gzip or plain): the first checks every line
//! and counts rows and non-zeros, the second fills arrays allocated to their exact size, so
//! reading never holds more than the matrix itself.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::Result;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::input_error;
use crate::random::standard_normal;

/// A sparse matrix in compressed sparse row form.
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    pub cols: usize,
    /// Row r holds entries indptr[r]..indptr[r+1].
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f64>,
}

impl Csr {
    pub fn rows(&self) -> usize {
        self.indptr.len() - 1
    }

    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// Bytes held by the three arrays (the "size in CSR form" of the memory target).
    pub fn bytes(&self) -> usize {
        self.indptr.len() * size_of::<usize>()
            + self.indices.len() * size_of::<u32>()
            + self.values.len() * size_of::<f64>()
    }

    /// The column indices and values of row r.
    #[inline]
    pub fn row(&self, r: usize) -> (&[u32], &[f64]) {
        let range = self.indptr[r]..self.indptr[r + 1];
        (&self.indices[range.clone()], &self.values[range])
    }

    /// a_r . x, with four partial sums so the additions do not wait on each other (the
    /// summation order is fixed, so results stay bit-for-bit reproducible).
    #[inline]
    pub fn dot(&self, r: usize, x: &[f64]) -> f64 {
        let (idx, val) = self.row(r);
        let mut acc = [0.0f64; 4];
        let (i4, v4) = (idx.chunks_exact(4), val.chunks_exact(4));
        let tail: f64 = i4
            .remainder()
            .iter()
            .zip(v4.remainder())
            .map(|(&j, &v)| v * x[j as usize])
            .sum();
        for (i, v) in i4.zip(v4) {
            for k in 0..4 {
                acc[k] += v[k] * x[i[k] as usize];
            }
        }
        (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
    }

    /// out += alpha * a_r
    #[inline]
    pub fn axpy(&self, r: usize, alpha: f64, out: &mut [f64]) {
        let (idx, val) = self.row(r);
        for (&j, &v) in idx.iter().zip(val) {
            out[j as usize] += alpha * v;
        }
    }
}

/// Features and labels (+1 / -1), one row per sample.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub features: Csr,
    pub labels: Vec<f64>,
}

/// Opens a file for reading, decompressing it when it starts with the gzip magic bytes.
fn open(path: &Path) -> Result<Box<dyn BufRead>> {
    let mut file = File::open(path).map_err(|e| {
        input_error!(
            "cannot read data file {}: {e}: expected a LIBSVM file (plain or gzip)",
            path.display()
        )
    })?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic)?;
    let file = File::open(path)?;
    Ok(if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    })
}

/// One parsed line: the label and (0-based column, value) pairs.
fn parse_line(line: &str, mut entry: impl FnMut(u32, f64)) -> Result<f64, String> {
    // Anything after '#' is a comment (svmlight); "qid:" entries are not supported.
    let line = line.split('#').next().unwrap_or("");
    let mut parts = line.split_ascii_whitespace();
    let label_text = parts.next().ok_or("no label")?;
    let label: f64 = label_text
        .parse()
        .map_err(|_| format!("label '{label_text}' is not a number"))?;
    let mut previous = 0u64;
    for part in parts {
        let (index, value) = part
            .split_once(':')
            .ok_or_else(|| format!("'{part}' is not INDEX:VALUE"))?;
        let index: u64 = index
            .parse()
            .map_err(|_| format!("index '{index}' in '{part}' is not a positive integer"))?;
        if index == 0 {
            return Err(format!("index 0 in '{part}': LIBSVM indices start at 1"));
        }
        if index <= previous {
            return Err(format!(
                "index {index} after {previous}: indices must increase along a line"
            ));
        }
        if index > u32::MAX as u64 {
            return Err(format!("index {index} is too large"));
        }
        let value: f64 = value
            .parse()
            .map_err(|_| format!("value '{value}' in '{part}' is not a number"))?;
        if !value.is_finite() {
            return Err(format!("value '{value}' in '{part}' is not finite"));
        }
        previous = index;
        entry((index - 1) as u32, value);
    }
    Ok(label)
}

/// Reads a LIBSVM / svmlight file: `LABEL INDEX:VALUE ...` per line, indices 1-based and
/// increasing, labels +1/-1 or 0/1 (0 becomes -1). Blank lines at the end are ignored; any
/// other malformed line is an input error naming the file and line.
pub fn read_libsvm(path: &Path) -> Result<Dataset> {
    let bad = |line: usize, why: &str| {
        input_error!(
            "{}:{line}: {why}: expected LABEL INDEX:VALUE ... (LIBSVM format)",
            path.display()
        )
    };
    // Pass 1: check every line, count rows and entries, collect the label values.
    let (mut rows, mut nnz, mut cols) = (0usize, 0usize, 0usize);
    let mut labels_seen: Vec<f64> = Vec::new();
    let mut blank_since: Option<usize> = None;
    let mut line_no = 0;
    for line in open(path)?.lines() {
        line_no += 1;
        let line = line.map_err(|e| bad(line_no, &format!("unreadable ({e})")))?;
        if line.trim().is_empty() {
            blank_since.get_or_insert(line_no);
            continue;
        }
        if let Some(blank) = blank_since {
            return Err(bad(blank, "empty line inside the data"));
        }
        let label = parse_line(&line, |j, _| {
            nnz += 1;
            cols = cols.max(j as usize + 1);
        })
        .map_err(|why| bad(line_no, &why))?;
        if !labels_seen.contains(&label) {
            if labels_seen.len() == 3 {
                return Err(bad(line_no, "more than two label values"));
            }
            labels_seen.push(label);
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(input_error!(
            "{}: no data lines: expected LABEL INDEX:VALUE ... (LIBSVM format)",
            path.display()
        ));
    }
    let binary = labels_seen.iter().all(|&l| l == 1.0 || l == -1.0)
        || labels_seen.iter().all(|&l| l == 1.0 || l == 0.0);
    if !binary {
        return Err(input_error!(
            "{}: labels {:?}: expected a binary problem with labels +1/-1 or 0/1",
            path.display(),
            labels_seen
        ));
    }
    // Pass 2: fill arrays of the exact size.
    let mut features = Csr {
        cols,
        indptr: Vec::with_capacity(rows + 1),
        indices: Vec::with_capacity(nnz),
        values: Vec::with_capacity(nnz),
    };
    let mut labels = Vec::with_capacity(rows);
    features.indptr.push(0);
    for (i, line) in open(path)?.lines().enumerate() {
        let line = line.map_err(|e| bad(i + 1, &format!("unreadable ({e})")))?;
        if line.trim().is_empty() {
            continue;
        }
        if labels.len() == rows {
            return Err(bad(i + 1, "the file changed while it was read"));
        }
        let label = parse_line(&line, |j, v| {
            features.indices.push(j);
            features.values.push(v);
        })
        .map_err(|why| bad(i + 1, &why))?;
        labels.push(if label == 1.0 { 1.0 } else { -1.0 });
        features.indptr.push(features.values.len());
    }
    if labels.len() != rows || features.nnz() != nnz {
        return Err(input_error!(
            "{}: the file changed while it was read",
            path.display()
        ));
    }
    Ok(Dataset { features, labels })
}

/// How the synthetic data is drawn (see [`synthetic`]).
#[derive(Debug, Clone, Copy)]
pub struct SyntheticShape {
    pub rows: usize,
    pub features: usize,
    /// Feature j is scaled by (j+1)^-decay: the spectrum of the design.
    pub decay: f64,
    /// Per-node feature scales 1 + h u, u uniform on [-1, 1]: the similarity knob.
    pub heterogeneity: f64,
    pub noise: f64,
    pub nodes: usize,
    /// Labels sign(a . w + noise) instead of a . w + noise.
    pub classification: bool,
}

/// Synthetic regression or classification data, stored dense in CSR form. Rows come in node
/// order (the split shuffles them anyway): the rows of node i, i < nodes, have their feature
/// j multiplied by 1 + heterogeneity * u_ij, which makes the Hessians of the nodes differ
/// by about `heterogeneity` times the feature scale; at heterogeneity 0 the nodes differ only
/// by sampling.
pub fn synthetic(shape: &SyntheticShape, rng: &mut ChaCha8Rng) -> Dataset {
    let (rows, d) = (shape.rows, shape.features);
    let scale: Vec<f64> = (0..d)
        .map(|j| ((j + 1) as f64).powf(-shape.decay))
        .collect();
    let node_scale: Vec<Vec<f64>> = (0..shape.nodes)
        .map(|_| {
            (0..d)
                .map(|_| 1.0 + shape.heterogeneity * rng.random_range(-1.0..=1.0))
                .collect()
        })
        .collect();
    let truth: Vec<f64> = (0..d)
        .map(|_| standard_normal(rng) / (d as f64).sqrt())
        .collect();
    let mut features = Csr {
        cols: d,
        indptr: Vec::with_capacity(rows + 1),
        indices: Vec::with_capacity(rows * d),
        values: Vec::with_capacity(rows * d),
    };
    let mut labels = Vec::with_capacity(rows);
    features.indptr.push(0);
    for r in 0..rows {
        let node = r * shape.nodes / rows;
        let mut response = 0.0;
        for j in 0..d {
            let a = standard_normal(rng) * scale[j] * node_scale[node][j];
            response += a * truth[j];
            features.indices.push(j as u32);
            features.values.push(a);
        }
        response += shape.noise * standard_normal(rng);
        labels.push(if shape.classification {
            if response >= 0.0 { 1.0 } else { -1.0 }
        } else {
            response
        });
        features.indptr.push(features.values.len());
    }
    Dataset { features, labels }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(text: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text).unwrap();
        f
    }

    #[test]
    fn reads_plain_and_gzip_alike() {
        let text = b"+1 1:0.5 3:2\n-1 2:1\n\n\n";
        let plain = read_libsvm(write(text).path()).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text).unwrap();
        let zipped = read_libsvm(write(&gz.finish().unwrap()).path()).unwrap();
        for data in [&plain, &zipped] {
            assert_eq!(data.labels, vec![1.0, -1.0]);
            assert_eq!(data.features.cols, 3);
            assert_eq!(data.features.indptr, vec![0, 2, 3]);
            assert_eq!(data.features.indices, vec![0, 2, 1]);
            assert_eq!(data.features.values, vec![0.5, 2.0, 1.0]);
        }
    }

    #[test]
    fn zero_one_labels_become_minus_one_plus_one() {
        let data = read_libsvm(write(b"0 1:1\n1 1:2\n").path()).unwrap();
        assert_eq!(data.labels, vec![-1.0, 1.0]);
    }

    #[test]
    fn malformed_lines_are_named() {
        let cases: [(&[u8], &str); 8] = [
            (b"+1 1:1\n-1 0:1\n", ":2: index 0"),
            (b"+1 2:1 1:1\n", ":1: index 1 after 2"),
            (b"+1 1:x\n", "value 'x'"),
            (b"+1 1:1\nabc 1:1\n", ":2: label 'abc'"),
            (b"+1 1:1\n\n-1 1:1\n", ":2: empty line inside"),
            (b"+1 1;1\n", "not INDEX:VALUE"),
            (b"1 1:1\n2 1:1\n3 1:1\n", "expected a binary problem"),
            (b"\n\n", "no data lines"),
        ];
        for (text, expected) in cases {
            let err = read_libsvm(write(text).path()).unwrap_err();
            let message = format!("{err:#}");
            assert!(message.contains(expected), "{message} lacks {expected}");
            assert!(err.downcast_ref::<crate::InputError>().is_some());
        }
    }

    #[test]
    fn missing_file_is_an_input_error() {
        let err = read_libsvm(Path::new("/nonexistent/a9a")).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/a9a"));
        assert!(err.downcast_ref::<crate::InputError>().is_some());
    }
}
