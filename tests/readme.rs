//! The README stays true: it documents every command and every spec field, and its test
//! command is the one CI runs.

use std::fs;
use std::path::Path;

fn read(path: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

#[test]
fn readme_documents_every_command_and_field() {
    let readme = read("README.md");
    for command in ["lab list", "lab show", "lab run", "lab plot", "lab verify"] {
        assert!(readme.contains(command), "README lacks `{command}`");
    }
    for exp in lab::experiments::registry() {
        assert!(
            readme.contains(&format!("`{}`", exp.name())),
            "README lacks {}",
            exp.name()
        );
        for field in exp.fields() {
            assert!(
                readme.contains(&format!("`{}`", field.key)),
                "README lacks the {} field `{}`",
                exp.name(),
                field.key
            );
        }
    }
    for spec in fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments")).unwrap() {
        let name = spec.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            readme.contains(&format!("experiments/{name}")),
            "README lacks {name}"
        );
    }
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
