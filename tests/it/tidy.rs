//! Rules about the source tree, checked as tests so CI needs nothing else.

use std::path::{Path, PathBuf};

use crate::harness::repo;

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The source of herald (`src/`) and of the workspace's other crates
/// (`crates/`).
fn source_files() -> Vec<PathBuf> {
    let mut files = rust_files(&repo().join("src"));
    files.extend(rust_files(&repo().join("crates")));
    assert!(
        files.iter().any(|path| path.starts_with(repo().join("crates"))),
        "no source under crates/"
    );
    files
}

/// Every source file says what it is for, in a `//!` doc at its top.
#[test]
fn every_source_file_starts_with_a_module_doc() {
    let missing: Vec<_> = source_files()
        .into_iter()
        .filter(|path| !std::fs::read_to_string(path).unwrap().starts_with("//!"))
        .collect();
    assert!(missing.is_empty(), "files without a //! doc: {missing:?}");
}

/// Time goes through `clock::Clock`, so tests can run days in seconds.
#[test]
fn only_the_clock_reads_the_time() {
    let forbidden = [
        "Timestamp::now()",
        "SystemTime::now()",
        "ZonedDateTime::now()",
        "Instant::now()",
        "Zoned::now()",
    ];
    let allowed = [repo().join("src/clock.rs")];
    let mut offenders = Vec::new();
    for path in source_files() {
        if allowed.contains(&path) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            if forbidden.iter().any(|f| line.contains(f)) && !line.trim_start().starts_with("//") {
                offenders.push(format!("{}:{}: {}", path.display(), number + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "read the time through clock::Clock:\n{}",
        offenders.join("\n")
    );
}

/// Only the command line prints; the daemon logs through tracing, and the
/// crates under `crates/` return what they have to say.
#[test]
fn only_the_cli_prints() {
    let mut offenders = Vec::new();
    for path in source_files() {
        if path.starts_with(repo().join("src/cli")) || path.ends_with("main.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            if ["println!", "eprintln!", "print!(", "eprint!("]
                .iter()
                .any(|m| line.contains(m))
            {
                offenders.push(format!("{}:{}", path.display(), number + 1));
            }
        }
    }
    assert!(offenders.is_empty(), "printing outside src/cli: {offenders:?}");
}

/// The letters herald was built for are kept, as received, in the fixtures.
#[test]
fn the_real_letters_are_in_the_fixtures() {
    for name in [
        "2016-11-gcm-consultations-roadmap.txt",
        "2017-09-gcm-modalities-roadmap.txt",
    ] {
        let text = std::fs::read_to_string(repo().join("tests/fixtures/letters").join(name)).unwrap();
        assert!(text.contains("Excellency"), "{name}");
    }
}

/// The lines of `path` before its unit tests (`#[cfg(test)]`), numbered.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .enumerate()
        .take_while(|(_, line)| line.trim() != "#[cfg(test)]")
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .map(|(number, line)| (number + 1, line.to_owned()))
        .collect()
}

/// A model is made only by `config::load`, so every `Model` was validated.
#[test]
fn only_config_makes_a_model() {
    let mut offenders = Vec::new();
    for path in rust_files(&repo().join("src")) {
        if path.starts_with(repo().join("src/config")) || path.ends_with("src/model/mod.rs") {
            continue;
        }
        for (number, line) in code_lines(&path) {
            if line.contains("Model::new(") || line.contains("ModelParts {") {
                offenders.push(format!("{}:{number}: {}", path.display(), line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "only config makes a Model:\n{}",
        offenders.join("\n")
    );
}

/// A send's key is spelt in `src/key.rs` alone: everything else makes keys
/// through `SendKey`/`KeyPrefix` and reads them through their accessors.
#[test]
fn only_the_key_module_spells_keys() {
    let shapes = [
        "\"reminder/",
        "\"letter/",
        "\"update/",
        "\"cancellation/",
        "\"{kind}/",
    ];
    let mut offenders = Vec::new();
    for path in rust_files(&repo().join("src")) {
        if path.ends_with("src/key.rs") {
            continue;
        }
        for (number, line) in code_lines(&path) {
            if shapes.iter().any(|shape| line.contains(shape)) || line.contains(".split('/')") {
                offenders.push(format!("{}:{number}: {}", path.display(), line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "keys are made and read in src/key.rs:\n{}",
        offenders.join("\n")
    );
}
