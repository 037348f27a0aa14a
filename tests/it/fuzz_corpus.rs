//! The fuzz targets' corpora (`fuzz/corpus/<target>/`), replayed through
//! the very checks the targets run (`fuzz/src/lib.rs`, included here), so
//! that every input the fuzzers kept is checked by `cargo test`, without
//! cargo-fuzz or a nightly toolchain: herald's code returns on each, a value
//! or a proper error, and never panics.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use crate::harness::repo;

#[path = "../../fuzz/src/lib.rs"]
mod checks;

use checks::Example;

/// Runs `check` on every input of the target's corpus; fails naming each
/// input that panics.
fn replay(target: &str, check: fn(&Example, &[u8])) {
    let example = Example::read(&repo());
    let dir = repo().join("fuzz/corpus").join(target);
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{} has no inputs", dir.display());
    let panicked: Vec<String> = inputs
        .iter()
        .filter(|input| {
            let data = std::fs::read(input).unwrap();
            catch_unwind(AssertUnwindSafe(|| check(&example, &data))).is_err()
        })
        .map(|input| input.display().to_string())
        .collect();
    assert!(
        panicked.is_empty(),
        "{} of {} inputs panicked:\n{}",
        panicked.len(),
        inputs.len(),
        panicked.join("\n")
    );
}

#[test]
fn import_roadmap_corpus() {
    replay("import_roadmap", Example::import_roadmap);
}

#[test]
fn config_toml_corpus() {
    replay("config_toml", Example::config_toml);
}

#[test]
fn config_csv_corpus() {
    replay("config_csv", Example::config_csv);
}

#[test]
fn templates_corpus() {
    replay("templates", Example::templates);
}

#[test]
fn classify_corpus() {
    replay("classify", Example::classify);
}
