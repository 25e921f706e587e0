//! Where real datasets are found. They are never in the repository: a named dataset is looked
//! for under `$LAB_DATA/<folder>/`, then where a system package installs it (Debian puts
//! Fashion-MNIST in `/usr/share/datasets/fashion-mnist/`). A missing one is one input error
//! listing every place tried and how to get it.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::input_error;

pub mod images;

/// A dataset lab knows by name.
#[derive(Debug, Clone, Copy)]
pub struct Dataset {
    pub name: &'static str,
    /// Its folder under `$LAB_DATA`.
    pub folder: &'static str,
    /// Where a system package installs it, if one does.
    pub system: Option<&'static str>,
    /// How to get it, for the error message.
    pub source: &'static str,
}

const LIBSVM_SOURCE: &str = "the LIBSVM binary data sets page, \
                             https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary.html";

/// The LIBSVM binary sets `svrs` reads by name (one file each, plain or gzip).
pub const LIBSVM: &[Dataset] = &[libsvm("a8a"), libsvm("a9a"), libsvm("a9a.t"), libsvm("w8a")];

const fn libsvm(name: &'static str) -> Dataset {
    Dataset {
        name,
        folder: "libsvm",
        system: None,
        source: LIBSVM_SOURCE,
    }
}

impl Dataset {
    /// The places `file` of this dataset is looked for, in order (each plain, then `.gz`).
    fn places(&self, file: &str) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(root) = std::env::var_os("LAB_DATA") {
            dirs.push(Path::new(&root).join(self.folder));
        }
        if let Some(system) = self.system {
            dirs.push(PathBuf::from(system));
        }
        let gz = format!("{file}.gz");
        dirs.iter()
            .flat_map(|d| {
                if file.ends_with(".gz") {
                    vec![d.join(file)]
                } else {
                    vec![d.join(file), d.join(&gz)]
                }
            })
            .collect()
    }

    /// The path of one file of the dataset (plain or gzip).
    pub fn locate(&self, file: &str) -> Result<PathBuf> {
        let places = self.places(file);
        if let Some(found) = places.iter().find(|p| p.is_file()) {
            return Ok(found.clone());
        }
        let mut why = Vec::new();
        if !places.is_empty() {
            let tried: Vec<String> = places.iter().map(|p| p.display().to_string()).collect();
            why.push(format!("tried {}", tried.join(", ")));
        }
        if std::env::var_os("LAB_DATA").is_none() {
            why.push(format!(
                "LAB_DATA is not set: set LAB_DATA=DIR with the file at DIR/{}/{file} (plain \
                 or .gz)",
                self.folder
            ));
        }
        let what = if file == self.name {
            format!("dataset {file}")
        } else {
            format!("dataset {} ({file})", self.name)
        };
        Err(input_error!(
            "{what} not found: {}. Get it from {}",
            why.join("; "),
            self.source
        ))
    }
}

/// A LIBSVM set by name (`a8a`, ...).
pub fn libsvm_set(name: &str) -> Option<&'static Dataset> {
    LIBSVM.iter().find(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_dataset_names_every_place_and_the_source() {
        let set = Dataset {
            name: "nowhere-set",
            folder: "nowhere",
            system: Some("/nonexistent/lab/datasets"),
            source: "the moon",
        };
        let msg = set.locate("x.idx").unwrap_err().to_string();
        assert!(msg.contains("/nonexistent/lab/datasets/x.idx.gz"), "{msg}");
        assert!(msg.contains("the moon"), "{msg}");
        assert!(
            set.locate("x.idx")
                .unwrap_err()
                .downcast_ref::<crate::InputError>()
                .is_some()
        );
    }

    #[test]
    fn the_system_place_is_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.gz"), b"x").unwrap();
        let system: &'static str = Box::leak(dir.path().to_string_lossy().into_owned().into());
        let set = Dataset {
            name: "s",
            folder: "s-not-under-lab-data",
            system: Some(system),
            source: "",
        };
        assert_eq!(set.locate("f").unwrap(), dir.path().join("f.gz"));
    }
}
