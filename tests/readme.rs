//! The docs stay true: the README documents every command and links every experiment's
//! page, each page (docs/EXP.md) documents its experiment's spec fields and spec files, every
//! relative link points to a file, and the README's test command is the one CI runs.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The reference page of an experiment.
fn page(exp: &str) -> String {
    let path = format!("docs/{exp}.md");
    assert!(root().join(&path).is_file(), "{path} is missing");
    read(&path)
}

#[test]
fn readme_documents_every_command_and_links_every_experiment() {
    let readme = read("README.md");
    for command in [
        "lab list",
        "lab show",
        "lab run",
        "lab sweep",
        "lab plot",
        "lab runs",
        "lab report",
        "lab verify",
    ] {
        assert!(readme.contains(command), "README lacks `{command}`");
    }
    for exp in lab::experiments::registry() {
        let link = format!("](docs/{}.md)", exp.name());
        assert!(
            readme.contains(&link),
            "README lacks a link to docs/{}.md",
            exp.name()
        );
        page(exp.name());
    }
}

#[test]
fn each_experiment_page_documents_its_spec_fields() {
    for exp in lab::experiments::registry() {
        let doc = page(exp.name());
        for field in exp.fields() {
            assert!(
                doc.contains(&format!("`{}`", field.key)),
                "docs/{}.md lacks the field `{}`",
                exp.name(),
                field.key
            );
        }
    }
}

#[test]
fn each_spec_file_is_on_its_experiments_page() {
    for spec in fs::read_dir(root().join("experiments")).unwrap() {
        let name = spec.unwrap().file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".toml") else {
            continue;
        };
        // experiments/pmd-chain.toml is documented in docs/pmd.md.
        let exp = stem.split('-').next().unwrap();
        assert!(
            page(exp).contains(&format!("experiments/{name}")),
            "docs/{exp}.md lacks experiments/{name}"
        );
    }
}

/// The targets of the links `](target)` of a Markdown text, outside fenced code blocks.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let end = rest.find(')').unwrap_or(rest.len());
            // A title after the target ("](path "title")") is not part of it.
            let target = rest[..end].split_whitespace().next().unwrap_or("");
            targets.push(target.to_string());
            rest = &rest[end..];
        }
    }
    targets
}

#[test]
fn every_relative_link_points_to_a_file() {
    let mut pages: Vec<PathBuf> = vec![root().join("README.md")];
    for entry in fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    let mut broken = Vec::new();
    for md in &pages {
        let text = fs::read_to_string(md).unwrap();
        let dir = md.parent().unwrap();
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let file = target.split('#').next().unwrap();
            if file.is_empty() {
                continue; // an anchor on the same page
            }
            if !dir.join(file).exists() {
                let from = md.strip_prefix(root()).unwrap_or(md).display();
                broken.push(format!("{from}: {target}"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to missing files:\n{}",
        broken.join("\n")
    );
}

#[test]
fn ci_runs_the_readme_test_command() {
    let readme = read("README.md");
    let ci = read(".ci/run");
    let command = "cargo test --release";
    assert!(readme.contains(command) && ci.contains(command));
    // lab verify gates CI after the tests.
    assert!(ci.contains("-- verify") && readme.contains("CI runs `lab verify`"));
}
