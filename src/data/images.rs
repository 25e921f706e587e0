//! Image classification sets: MNIST and Fashion-MNIST from their IDX files (gzip or plain),
//! and a procedural set so a run needs no download. Pixels are scaled to [0, 1] in f32 (what
//! the networks train on).

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use rand::Rng;

use super::Dataset;
use crate::input_error;
use crate::random::{Streams, standard_normal};

/// Fashion-MNIST: Debian's `dataset-fashion-mnist` installs it; or `$LAB_DATA/fashion-mnist/`.
pub const FASHION_MNIST: Dataset = Dataset {
    name: "fashion-mnist",
    folder: "fashion-mnist",
    system: Some("/usr/share/datasets/fashion-mnist"),
    source: "Debian's package (apt-get install dataset-fashion-mnist) or \
             https://github.com/zalandoresearch/fashion-mnist",
};

/// MNIST: its 10,000-image test set is all lab needs (split into train and test).
pub const MNIST: Dataset = Dataset {
    name: "mnist",
    folder: "mnist",
    system: None,
    source: "the MNIST test set, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz \
             (http://yann.lecun.com/exdb/mnist/ or a mirror of it; this project's shared \
             data folder holds them in mnist/)",
};

/// Labelled images, channels first, pixels in [0, 1].
#[derive(Debug, Clone, Default)]
pub struct ImageSet {
    /// Channels, height, width.
    pub shape: [usize; 3],
    /// n x (c h w), row-major.
    pub pixels: Vec<f32>,
    pub labels: Vec<u8>,
    pub classes: usize,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per image.
    pub fn size(&self) -> usize {
        self.shape.iter().product()
    }

    /// The image i's pixels.
    pub fn image(&self, i: usize) -> &[f32] {
        &self.pixels[i * self.size()..(i + 1) * self.size()]
    }

    /// The images whose index satisfies `keep`, in order.
    pub fn select(&self, keep: impl Fn(usize) -> bool) -> ImageSet {
        let mut out = ImageSet {
            shape: self.shape,
            classes: self.classes,
            ..Default::default()
        };
        for i in (0..self.len()).filter(|&i| keep(i)) {
            out.pixels.extend_from_slice(self.image(i));
            out.labels.push(self.labels[i]);
        }
        out
    }

    /// The first `n` images (all if fewer).
    pub fn first(&self, n: usize) -> ImageSet {
        self.select(|i| i < n)
    }
}

/// A train/test pair and how it was made (for the manifest).
#[derive(Debug, Clone)]
pub struct Split {
    pub train: ImageSet,
    pub test: ImageSet,
    pub description: String,
}

/// The content of an IDX file: its dimensions and unsigned bytes.
#[derive(Debug)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub bytes: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes (type 0x08) with `ndims` dimensions, gzip or plain.
/// Every error names the file and what was wrong: the magic, the dimensions, a truncated or
/// overlong body, a corrupt gzip stream.
pub fn read_idx(path: &Path, ndims: usize) -> Result<Idx> {
    let name = path.display();
    let mut raw = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut raw))
        .map_err(|e| input_error!("{name}: cannot read: {e}"))?;
    let data = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| input_error!("{name}: not a valid gzip stream: {e}"))?;
        out
    } else {
        raw
    };
    parse_idx(&data, ndims).map_err(|why| input_error!("{name}: {why}"))
}

fn parse_idx(data: &[u8], ndims: usize) -> std::result::Result<Idx, String> {
    let header = 4 + 4 * ndims;
    if data.len() < 4 {
        return Err(format!("{} bytes: too short for an IDX header", data.len()));
    }
    let want = [0, 0, 0x08, ndims as u8];
    if data[..4] != want {
        return Err(format!(
            "IDX magic {:02x} {:02x} {:02x} {:02x}: expected 00 00 08 {:02x} (unsigned bytes, \
             {ndims} dimension{})",
            data[0],
            data[1],
            data[2],
            data[3],
            ndims,
            if ndims == 1 { "" } else { "s" }
        ));
    }
    if data.len() < header {
        return Err(format!(
            "truncated header: {} of {header} bytes",
            data.len()
        ));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|d| {
            u32::from_be_bytes(data[4 + 4 * d..8 + 4 * d].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("dimensions {dims:?} overflow"))?;
    let body = data.len() - header;
    if body != count {
        return Err(format!(
            "dimensions {dims:?} need {count} bytes after the {header}-byte header, found {body} \
             ({})",
            if body < count {
                "truncated"
            } else {
                "trailing bytes"
            }
        ));
    }
    Ok(Idx {
        dims,
        bytes: data[header..].to_vec(),
    })
}

/// Reads an images file and its labels file into a set of `classes` classes.
pub fn read_idx_pair(images: &Path, labels: &Path, classes: usize) -> Result<ImageSet> {
    let img = read_idx(images, 3)?;
    let lab = read_idx(labels, 1)?;
    let (n, h, w) = (img.dims[0], img.dims[1], img.dims[2]);
    if lab.dims[0] != n {
        return Err(input_error!(
            "{} has {} labels for the {n} images of {}",
            labels.display(),
            lab.dims[0],
            images.display()
        ));
    }
    if let Some(i) = lab.bytes.iter().position(|&l| l as usize >= classes) {
        return Err(input_error!(
            "{}: label {} of item {i} is out of range: expected 0 to {}",
            labels.display(),
            lab.bytes[i],
            classes - 1
        ));
    }
    Ok(ImageSet {
        shape: [1, h, w],
        pixels: img.bytes.iter().map(|&b| f32::from(b) / 255.0).collect(),
        labels: lab.bytes,
        classes,
    })
}

fn pair(set: &Dataset, images: &str, labels: &str) -> Result<ImageSet> {
    read_idx_pair(&set.locate(images)?, &set.locate(labels)?, 10)
}

/// Fashion-MNIST's own 60,000 / 10,000 split.
pub fn fashion_mnist() -> Result<Split> {
    let set = &FASHION_MNIST;
    let train = pair(set, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")?;
    let test = pair(set, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")?;
    let place = set.locate("t10k-images-idx3-ubyte")?;
    if train.shape != test.shape {
        return Err(input_error!(
            "{}: test images are {:?}, training images {:?}: expected the same shape",
            place.display(),
            test.shape,
            train.shape
        ));
    }
    Ok(Split {
        description: format!(
            "Fashion-MNIST ({}): its own split, {} train / {} test",
            place.parent().unwrap_or(Path::new(".")).display(),
            train.len(),
            test.len()
        ),
        train,
        test,
    })
}

/// MNIST's 10,000-image test set split 8,000 / 2,000: every fifth image (index 4, 9, ...)
/// is a test image, so both halves of the set (its two writer populations) are in both.
pub fn mnist_test_split() -> Result<Split> {
    let set = &MNIST;
    let all = pair(set, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")?;
    let place = set.locate("t10k-images-idx3-ubyte")?;
    let train = all.select(|i| i % 5 != 4);
    let test = all.select(|i| i % 5 == 4);
    Ok(Split {
        description: format!(
            "MNIST test set ({}) split {} train / {} test: every fifth image (index 4, 9, ...) \
             is a test image",
            place.display(),
            train.len(),
            test.len()
        ),
        train,
        test,
    })
}

/// Bumps of the procedural set: a shared pool of Gaussian blobs, each class drawing three.
const POOL: usize = 8;
const BUMPS_PER_CLASS: usize = 3;

/// A procedural 28 x 28 set of 10 classes (`train` + `test` images), the same whatever the
/// run's seed (stream `blobs` of seed 0): each class is three Gaussian bumps drawn from a
/// shared pool of eight (so classes share parts), each image its class's bumps shifted by up
/// to 3 pixels, scaled in brightness by U(0.6, 1) and with N(0, 0.3^2) pixel noise, clipped
/// to [0, 1].
pub fn blobs(train: usize, test: usize) -> Split {
    let mut rng = Streams::new(0).rng("blobs");
    let side = 28usize;
    let pool: Vec<(f64, f64, f64)> = (0..POOL)
        .map(|_| {
            (
                rng.random_range(6.0..22.0),
                rng.random_range(6.0..22.0),
                rng.random_range(1.5..3.5),
            )
        })
        .collect();
    let classes: Vec<Vec<usize>> = (0..10)
        .map(|_| {
            let mut picks = Vec::new();
            while picks.len() < BUMPS_PER_CLASS {
                let b = rng.random_range(0..POOL);
                if !picks.contains(&b) {
                    picks.push(b);
                }
            }
            picks
        })
        .collect();
    let mut draw = |n: usize| {
        let mut set = ImageSet {
            shape: [1, side, side],
            classes: 10,
            ..Default::default()
        };
        for _ in 0..n {
            let label = rng.random_range(0..10usize);
            let (dx, dy) = (rng.random_range(-3.0..=3.0), rng.random_range(-3.0..=3.0));
            let bright = rng.random_range(0.6..1.0);
            for y in 0..side {
                for x in 0..side {
                    let v: f64 = classes[label]
                        .iter()
                        .map(|&b| {
                            let (cx, cy, s) = pool[b];
                            let r2 = (x as f64 - cx - dx).powi(2) + (y as f64 - cy - dy).powi(2);
                            (-r2 / (2.0 * s * s)).exp()
                        })
                        .sum();
                    let noisy = bright * v + 0.3 * standard_normal(&mut rng);
                    set.pixels.push(noisy.clamp(0.0, 1.0) as f32);
                }
            }
            set.labels.push(label as u8);
        }
        set
    };
    let train_set = draw(train);
    let test_set = draw(test);
    Split {
        description: format!(
            "procedural blobs (10 classes of Gaussian bumps, stream `blobs` of seed 0): {train} \
             train / {test} test"
        ),
        train: train_set,
        test: test_set,
    }
}

/// Writes an IDX file of unsigned bytes (tests and fixtures).
pub fn write_idx(path: &Path, dims: &[usize], bytes: &[u8]) -> Result<()> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&(*d as u32).to_be_bytes());
    }
    out.extend_from_slice(bytes);
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Result<Idx>) -> String {
        let e = r.unwrap_err();
        assert!(e.downcast_ref::<crate::InputError>().is_some(), "{e}");
        e.to_string()
    }

    #[test]
    fn idx_round_trips_plain_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.idx");
        let bytes: Vec<u8> = (0..24).collect();
        write_idx(&p, &[2, 3, 4], &bytes).unwrap();
        let idx = read_idx(&p, 3).unwrap();
        assert_eq!(idx.dims, vec![2, 3, 4]);
        assert_eq!(idx.bytes, bytes);
        let gz = dir.path().join("x.idx.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &std::fs::read(&p).unwrap()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(read_idx(&gz, 3).unwrap().bytes, bytes);
    }

    #[test]
    fn bad_idx_files_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.idx");
        write_idx(&p, &[2, 3, 4], &[0; 20]).unwrap();
        let m = message(read_idx(&p, 3));
        assert!(
            m.contains("bad.idx") && m.contains("truncated") && m.contains("24"),
            "{m}"
        );
        write_idx(&p, &[2, 3, 4], &[0; 25]).unwrap();
        assert!(message(read_idx(&p, 3)).contains("trailing"));
        assert!(message(read_idx(&p, 1)).contains("magic"));
        std::fs::write(&p, [0x1f, 0x8b, 1, 2, 3]).unwrap();
        assert!(message(read_idx(&p, 3)).contains("gzip"));
        let m = message(read_idx(&dir.path().join("none.idx"), 3));
        assert!(m.contains("none.idx") && m.contains("cannot read"), "{m}");
    }

    #[test]
    fn labels_out_of_range_and_count_mismatches_are_input_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (i, l) = (dir.path().join("i"), dir.path().join("l"));
        write_idx(&i, &[2, 2, 2], &[0; 8]).unwrap();
        write_idx(&l, &[2], &[3, 12]).unwrap();
        let m = read_idx_pair(&i, &l, 10).unwrap_err().to_string();
        assert!(
            m.contains("label 12 of item 1") && m.contains("0 to 9"),
            "{m}"
        );
        write_idx(&l, &[3], &[1, 2, 3]).unwrap();
        let m = read_idx_pair(&i, &l, 10).unwrap_err().to_string();
        assert!(m.contains("3 labels for the 2 images"), "{m}");
    }

    #[test]
    fn the_shared_mnist_test_set_reads_and_splits_8000_2000() {
        let Some(dir) = std::env::var_os("LAB_DATA") else {
            eprintln!("LAB_DATA not set: the MNIST check is skipped");
            return;
        };
        if !Path::new(&dir).join("mnist").is_dir() {
            eprintln!("no mnist under LAB_DATA: skipped");
            return;
        }
        let split = mnist_test_split().unwrap();
        assert_eq!((split.train.len(), split.test.len()), (8000, 2000));
        assert_eq!(split.train.shape, [1, 28, 28]);
        // Every class occurs in both halves (MNIST's test set has 892 to 1135 per class).
        for set in [&split.train, &split.test] {
            let mut counts = [0usize; 10];
            set.labels.iter().for_each(|&l| counts[l as usize] += 1);
            assert!(counts.iter().all(|&c| c > set.len() / 20), "{counts:?}");
        }
        let mean: f64 = split
            .train
            .pixels
            .iter()
            .map(|&p| f64::from(p))
            .sum::<f64>()
            / split.train.pixels.len() as f64;
        // MNIST's mean pixel is about 0.13.
        assert!((0.11..0.15).contains(&mean), "{mean}");
    }

    #[test]
    fn the_procedural_set_is_fixed_and_balanced_enough() {
        let a = blobs(500, 100);
        let b = blobs(500, 100);
        assert_eq!(a.train.pixels, b.train.pixels);
        assert_eq!(a.train.len(), 500);
        assert!(a.train.pixels.iter().all(|p| (0.0..=1.0).contains(p)));
        let mut counts = [0usize; 10];
        a.train.labels.iter().for_each(|&l| counts[l as usize] += 1);
        assert!(counts.iter().all(|&c| c > 25), "{counts:?}");
    }
}
