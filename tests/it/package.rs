//! What the Debian package is made of: `herald init` (the package's
//! /etc/herald is one), the manual pages and the completions `herald
//! generate` writes, and herald.toml(5) against the keys the loader accepts.
//! The package itself is built, installed and purged by
//! scripts/check-package, and run under systemd by
//! scripts/check-package-systemd.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::{herald_command, repo, stderr, stdout};

/// The letters of the fixtures, each with the roadmap id the import gives it.
const LETTERS: [&str; 2] = [
    "2016-11-gcm-consultations-roadmap.txt",
    "2017-09-gcm-modalities-roadmap.txt",
];

fn letter(name: &str) -> PathBuf {
    repo().join("tests/fixtures/letters").join(name)
}

/// `herald init DIR` with the repository's templates, and `extra` arguments.
fn init(dir: &Path, extra: &[&str]) -> Output {
    herald_command(Path::new("/nonexistent"))
        .arg("init")
        .arg(dir)
        .arg("--templates")
        .arg(repo().join("templates"))
        .args(extra)
        .output()
        .expect("run herald init")
}

fn check(dir: &Path) -> Output {
    herald_command(dir)
        .arg("check")
        .output()
        .expect("run herald check")
}

#[test]
fn init_writes_a_configuration_that_check_accepts_and_that_sends_nothing() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("herald");
    let output = init(&dir, &["--sender", "Secretariat <secretariat@example.org>"]);
    assert!(output.status.success(), "{}", stderr(&output));

    let settings = std::fs::read_to_string(dir.join("herald.toml")).unwrap();
    assert!(
        settings.contains("from = \"Secretariat <secretariat@example.org>\""),
        "{settings}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("lists/focal-points.csv")).unwrap(),
        "name,email,mission,honorific,language,time_zone,lists,leads\n"
    );
    let output = check(&dir);
    assert!(output.status.success(), "{}", stderr(&output));
    let report = stdout(&output);
    assert!(
        report.contains("0 roadmaps, 0 events; 0 focal points on 1 lists"),
        "{report}"
    );
    assert!(report.contains("0 sends planned in all"), "{report}");
}

#[test]
fn init_without_a_sender_still_gives_a_valid_configuration() {
    let root = tempfile::tempdir().unwrap();
    let output = init(root.path(), &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = check(root.path());
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn init_refuses_to_write_into_a_directory_that_has_anything_in_it() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("herald.toml"), "# the operator's own\n").unwrap();
    let output = init(root.path(), &[]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("is not empty"), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(root.path().join("herald.toml")).unwrap(),
        "# the operator's own\n"
    );
    assert!(!root.path().join("lists").exists());

    // Nor over its own work.
    let dir = root.path().join("new");
    assert!(init(&dir, &[]).status.success());
    let output = init(&dir, &["--sender", "other@example.org"]);
    assert!(!output.status.success());
    let settings = std::fs::read_to_string(dir.join("herald.toml")).unwrap();
    assert!(!settings.contains("other@example.org"));
}

#[test]
fn init_imports_the_roadmap_of_a_letter_as_import_roadmap_does() {
    for name in LETTERS {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("herald");
        let output = init(&dir, &["--from-letter", letter(name).to_str().unwrap()]);
        assert!(output.status.success(), "{name}: {}", stderr(&output));

        let roadmaps: Vec<PathBuf> = std::fs::read_dir(dir.join("roadmaps"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert_eq!(roadmaps.len(), 1, "{name}: {roadmaps:?}");
        let written = std::fs::read_to_string(&roadmaps[0]).unwrap();
        // The same roadmap as `import-roadmap` prints for the new configuration.
        let imported = herald_command(&dir)
            .arg("import-roadmap")
            .arg(letter(name))
            .args(["--list", "focal-points"])
            .output()
            .unwrap();
        assert!(imported.status.success(), "{name}: {}", stderr(&imported));
        assert_eq!(written, stdout(&imported), "{name}");

        let output = check(&dir);
        assert!(output.status.success(), "{name}: {}", stderr(&output));
        let report = stdout(&output);
        assert!(report.contains("1 roadmap, "), "{name}: {report}");
        assert!(!report.contains(", 0 events"), "{name}: {report}");
        // Nobody is on the list yet.
        assert!(report.contains("0 sends planned in all"), "{name}: {report}");
    }
}

#[test]
fn init_writes_nothing_when_the_letter_has_a_row_it_cannot_read() {
    let root = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(letter(LETTERS[1])).unwrap();
    let (first_row, _) = text
        .lines()
        .enumerate()
        .find(|(_, line)| line.contains('\t'))
        .expect("a table row");
    let mut lines: Vec<&str> = text.lines().collect();
    // A part of the day the new configuration does not define.
    lines.insert(first_row + 1, "2 October (evening)\tAn evening session");
    let bad = root.path().join("letter.txt");
    std::fs::write(&bad, lines.join("\n")).unwrap();

    let dir = root.path().join("herald");
    let output = init(&dir, &["--from-letter", bad.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("evening"), "{}", stderr(&output));
    assert!(!dir.exists(), "a failed init left {}", dir.display());
}

fn generate(what: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let output = herald_command(Path::new("/nonexistent"))
        .args(["generate", what])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    dir
}

/// The visible subcommands, from `herald --help`.
fn subcommands() -> Vec<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("--help")
        .output()
        .unwrap();
    let help = stdout(&output);
    help.lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_manual_pages_cover_every_command_and_the_configuration() {
    let dir = generate("man");
    // roff writes a hyphen as `\-`.
    let main = std::fs::read_to_string(dir.path().join("man1/herald.1"))
        .unwrap()
        .replace("\\-", "-");
    let commands = subcommands();
    assert!(commands.contains(&"init".to_owned()), "{commands:?}");
    for command in &commands {
        assert!(
            main.contains(command.as_str()),
            "herald.1 does not name {command}"
        );
        let page = dir.path().join(format!("man1/herald-{command}.1"));
        let text = std::fs::read_to_string(&page).unwrap_or_else(|_| panic!("no {}", page.display()));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{}",
            page.display()
        );
    }
    // The packaging command is not the operator's.
    assert!(!main.contains("generate"), "herald.1 shows the hidden generate");
    assert!(!dir.path().join("man1/herald-generate.1").exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("man5/herald.toml.5")).unwrap(),
        std::fs::read_to_string(repo().join("doc/herald.toml.5")).unwrap()
    );
}

#[test]
fn the_completions_know_every_command() {
    let dir = generate("completions");
    for file in ["herald.bash", "_herald", "herald.fish"] {
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
        for command in subcommands() {
            assert!(text.contains(&command), "{file} does not complete {command}");
        }
        assert!(
            text.contains("from-letter"),
            "{file} does not complete --from-letter"
        );
    }
}

/// The keys herald.toml(5) documents, by the `.SS` heading of their table:
/// each `.B key` right after a `.TP`.
fn documented_keys() -> BTreeMap<String, BTreeSet<String>> {
    let page = std::fs::read_to_string(repo().join("doc/herald.toml.5")).unwrap();
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let (mut section, mut after_tp) = (None::<String>, false);
    for line in page.lines() {
        if let Some(heading) = line.strip_prefix(".SS ") {
            let heading = heading.trim_matches('"').to_owned();
            keys.entry(heading.clone()).or_default();
            section = Some(heading);
        } else if line.starts_with(".SH ") {
            section = None;
        } else if let (Some(section), true, Some(key)) = (&section, after_tp, line.strip_prefix(".B ")) {
            keys.get_mut(section).unwrap().insert(key.to_owned());
        }
        after_tp = line == ".TP";
    }
    keys
}

/// The keys the loader accepts in a table: it refuses an unknown key with
/// "unknown field `…`, expected one of `a`, `b`, …".
fn accepted_keys(dir: &Path, file: &str, text: &str) -> BTreeSet<String> {
    std::fs::write(dir.join(file), text).unwrap();
    let output = check(dir);
    let problems = stderr(&output);
    let line = problems
        .lines()
        .find(|line| line.contains("unknown field `herald_probe`"))
        .unwrap_or_else(|| panic!("{file} with {text:?}: no unknown-field problem in {problems}"));
    let expected = line.split_once("expected").expect("what the loader expected").1;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_configuration_page_documents_every_key_the_loader_accepts() {
    const PROBE: &str = "herald_probe = 1\n";
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("herald");
    assert!(init(&dir, &[]).status.success());
    let settings = std::fs::read_to_string(dir.join("herald.toml")).unwrap();
    let table = |header: &str| format!("{header}\n{PROBE}");

    // Each table of the page, and a file that puts an unknown key in it.
    let herald_toml: [(&str, String); 12] = [
        ("herald.toml", PROBE.to_owned()),
        ("[sender]", table("[sender]")),
        ("[reminders]", table("[reminders]")),
        ("[venues.ID]", table("[venues.probe]")),
        ("[lists.ID]", table("[lists.probe]")),
        ("[delivery]", table("[delivery]")),
        ("[delivery.smtp]", table("[delivery.smtp]")),
        ("[inbox]", table("[inbox]")),
        ("[inbox.imap]", table("[inbox.imap]")),
        ("[digest]", table("[digest]")),
        ("[http]", table("[http]")),
        ("[state]", table("[state]")),
    ];
    let mut accepted = BTreeMap::new();
    for (section, text) in herald_toml {
        accepted.insert(section, accepted_keys(&dir, "herald.toml", &text));
    }
    std::fs::write(dir.join("herald.toml"), &settings).unwrap();
    let other_files = [
        ("roadmaps/*.toml", "roadmaps/probe.toml", PROBE.to_owned()),
        ("[[events]]", "roadmaps/probe.toml", table("[[events]]")),
        ("[[links]]", "roadmaps/probe.toml", table("[[links]]")),
        ("lists/*.toml", "lists/probe.toml", PROBE.to_owned()),
        ("[[focal_points]]", "lists/probe.toml", table("[[focal_points]]")),
        ("letters/*.toml", "letters/probe.toml", PROBE.to_owned()),
    ];
    for (_, file, _) in &other_files {
        std::fs::create_dir_all(dir.join(file).parent().unwrap()).unwrap();
    }
    for (section, file, text) in &other_files {
        accepted.insert(section, accepted_keys(&dir, file, text));
        std::fs::remove_file(dir.join(file)).unwrap();
    }

    let documented = documented_keys();
    for (section, keys) in &accepted {
        let page = documented
            .get(*section)
            .unwrap_or_else(|| panic!("herald.toml(5) has no section {section}"));
        assert_eq!(
            page, keys,
            "herald.toml(5), {section}: documented (left) vs accepted (right)"
        );
    }
    // The page's other sections are tables of free keys, which the loader
    // takes whatever their names.
    let free: BTreeSet<&str> = documented
        .keys()
        .map(String::as_str)
        .filter(|section| !accepted.contains_key(section))
        .collect();
    assert_eq!(free, BTreeSet::from(["[parts_of_day]"]));
}
