//! The layers of the code, checked on its sources: no module names one above it, so the
//! contract sits below the runner and the experiments, and the foundations below all.
//!
//! Lowest first: the foundations (`table`, `spec`, `claims`, `random`, `manifest`, `data`,
//! `memory`, `plot`, and the shared numerics `vector`, `flow`, `linear_net`, `nn`); `contract`;
//! `run` and `experiments` (beside each other, neither naming the other); `cli` and
//! `commands`.

use std::path::{Path, PathBuf};

/// The modules of each layer, lowest first.
const LAYERS: &[&[&str]] = &[
    &[
        "table",
        "spec",
        "claims",
        "random",
        "manifest",
        "data",
        "memory",
        "plot",
        "vector",
        "flow",
        "linear_net",
        "nn",
    ],
    &["contract"],
    &["run", "experiments"],
    &["sweep", "catalog"],
    &["cli", "commands", "report"],
];

/// The top-level modules a source file names through `crate::`.
fn named_modules(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a, b::{c, d}, e}`: the first segment of every top-level item.
            let mut depth = 0;
            let mut item_start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        names.push(
                            group[j..]
                                .chars()
                                .take_while(|c| c.is_alphanumeric() || *c == '_')
                                .collect(),
                        );
                    }
                    _ => {}
                }
            }
        } else {
            names.push(
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    names
}

fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            files.extend(rust_files(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            files.push(p);
        }
    }
    files
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

#[test]
fn no_module_names_a_layer_above_it_or_a_neighbour() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    let mut checked = 0;
    for (level, layer) in LAYERS.iter().enumerate() {
        for module in *layer {
            let dir = src.join(module);
            let path = if dir.is_dir() {
                dir
            } else {
                src.join(format!("{module}.rs"))
            };
            assert!(path.exists(), "{} is missing", path.display());
            for file in rust_files(&path) {
                checked += 1;
                let text = std::fs::read_to_string(&file).unwrap();
                for named in named_modules(&text) {
                    let Some(other) = layer_of(&named) else {
                        continue;
                    };
                    // A layer may name its own modules and the layers below; `run` and
                    // `experiments` share a layer but do not name each other.
                    let neighbours = level == 2 && other == level && named != *module;
                    if other > level || neighbours {
                        violations.push(format!(
                            "{} ({module}) names crate::{named}",
                            file.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(checked > 40, "only {checked} files read");
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn the_check_sees_imports_in_every_form() {
    let text = "use crate::experiments::pmd;\nuse crate::{plot, run::RunOptions};\n\
                // crate::commands in a comment\nlet x = crate::cli::command();\n\
                use crate::{table::{Cell, Table}, random};";
    assert_eq!(
        named_modules(text),
        vec!["experiments", "plot", "run", "cli", "table", "random"]
    );
}
