//! `herald import-roadmap`: the real letters, through the command line, into
//! a configuration that `check` accepts and `plan` reminds of; and the
//! property that every roadmap the importer writes loads.

use herald::config::Environment;
use herald_import::{ImportOptions, import_letter, strategies};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::Value;

use crate::harness::{ConfigDir, repo, stderr, stdout};

fn letter(name: &str) -> String {
    repo()
        .join("tests/fixtures/letters")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn both_letters_round_trip_into_the_example_config() {
    let config = ConfigDir::example();
    let imports = [
        (
            "2016-11-gcm-consultations-roadmap.txt",
            "gcm-consultations-2016",
            "2016-modalities-consultations.toml",
        ),
        (
            "2017-09-gcm-modalities-roadmap.txt",
            "gcm-modalities-2017",
            "2017-modalities-resolution.toml",
        ),
    ];
    for (file, id, replaces) in imports {
        let output = config.herald(&[
            "import-roadmap",
            &letter(file),
            "--venue",
            "new-york",
            "--id",
            id,
            "--list",
            "member-states",
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(stderr(&output).contains("events imported"), "{}", stderr(&output));
        // The imported roadmap takes the place of the hand-written one.
        std::fs::remove_file(config.path().join("roadmaps").join(replaces)).unwrap();
        config.write(&format!("roadmaps/{id}.toml"), &stdout(&output));
    }
    let check = config.herald(&["check"]);
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(
        stdout(&check).contains("2 roadmaps, 13 events"),
        "{}",
        stdout(&check)
    );

    let plan = config.herald(&["plan", "--from", "2016-01-01", "--json"]);
    let rows: Vec<Value> = serde_json::from_str(&stdout(&plan)).unwrap();
    let amina = "amina.diallo@senegal-mission.example.org";
    let due = |event: &str, lead: &str| {
        rows.iter()
            .find(|r| r["event"] == event && r["lead"] == lead && r["to"] == amina)
            .map(|r| r["due"].as_str().unwrap().to_owned())
    };
    // 2017: the afternoon of 2 October is 15:00 New York.
    assert_eq!(
        due("first-reading", "7d").as_deref(),
        Some("2017-09-25T15:00:00-04:00")
    );
    // 2016: "Consultations in Geneva" is in Geneva's time zone.
    let geneva = rows
        .iter()
        .find(|r| r["event"].as_str().is_some_and(|e| e.contains("geneva")) && r["lead"] == "7d")
        .expect("a reminder of the Geneva consultations");
    assert_eq!(geneva["due"], "2016-11-24T09:00:00+01:00");
    assert_eq!(geneva["time_zone"], "Europe/Zurich");
    // The past row is kept in the roadmap and, being past, reminded of before the letter.
    assert!(
        rows.iter()
            .any(|r| r["event"] == "submission-note-organization-work-prepared")
    );
}

#[test]
fn a_row_that_cannot_be_read_is_reported_with_its_line() {
    let config = ConfigDir::example();
    let text = "New York, 12 November 2016\n\nThe roadmap is as follows:\n\nNovember 22, from 15:00 to 18:00\tOpen exchange\nSometime soonish\tCirculation of a paper\n";
    config.write("letter.txt", text);
    let path = config.path().join("letter.txt").display().to_string();
    let output = config.herald(&["import-roadmap", &path]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains(&format!("{path}:6: ")), "{err}");
    assert!(err.contains("--skip-bad-rows"), "{err}");
    assert!(stdout(&output).is_empty());

    let output = config.herald(&["import-roadmap", &path, "--skip-bad-rows"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let toml = stdout(&output);
    assert!(
        toml.contains("date = \"2016-11-22\"") && toml.contains("start = \"15:00\""),
        "{toml}"
    );
    assert!(!toml.contains("Circulation of a paper\"\nkind"), "{toml}");
}

/// Every roadmap the importer writes loads through herald's own loader.
///
/// Letter-like text (the importer's own generators), imported with the
/// options `herald import-roadmap LETTER --venue new-york --list
/// member-states` passes on the example configuration, is written as
/// `roadmaps/imported.toml` into a copy of it and loaded. Whenever the
/// import reports no problem, or reports some under `--skip-bad-rows`
/// (when the command prints the TOML all the same), the roadmap must load.
/// With problems and without `--skip-bad-rows` the command prints nothing,
/// so there is nothing to load.
#[test]
fn every_imported_roadmap_loads() {
    let config = ConfigDir::example();
    // As cli/import.rs does: the configuration's venues, each known by its
    // city and its name, and its parts of the day.
    let model = config.load().expect("the example configuration loads");
    let (venues, parts_of_day) = herald::cli::import::venues_and_parts_of_day(&model);
    // Event ids are unique across all the roadmaps of a configuration, and
    // an imported roadmap may well have the example's ("first-reading"):
    // the imported roadmap is the only one. The example's letter names one
    // of the roadmaps removed, so it goes too.
    for file in [
        "roadmaps/2016-modalities-consultations.toml",
        "roadmaps/2017-modalities-resolution.toml",
        "letters/2017-09-14-modalities-roadmap.toml",
    ] {
        std::fs::remove_file(config.path().join(file)).expect("remove");
    }
    let loads = || herald::config::load(&config.path(), &Environment::default());
    assert!(
        loads().is_ok(),
        "the example without its roadmaps and letter loads"
    );

    let years = prop_oneof![any::<Option<i16>>(), proptest::option::of(1995i16..2035)];
    let cases = (strategies::letter_like_text(), years, any::<bool>());
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    // How many roadmaps with events loaded, so the test is seen not to pass
    // on empty roadmaps alone (about one case in five has some).
    let with_events = std::cell::Cell::new(0);
    let result = runner.run(&cases, |(text, year, skip_bad_rows)| {
        let options = ImportOptions {
            default_time_zone: "America/New_York".to_string(),
            default_venue: Some("new-york".to_string()),
            year,
            venues: venues.clone(),
            roadmap_id: None,
            skip_bad_rows,
            lists: vec!["member-states".to_string()],
            parts_of_day: parts_of_day.clone(),
        };
        let report = import_letter(&text, &options);
        if !report.problems.is_empty() && !skip_bad_rows {
            return Ok(());
        }
        config.write("roadmaps/imported.toml", &report.toml);
        match loads() {
            Ok(_) => {
                if !report.roadmap.events.is_empty() {
                    with_events.set(with_events.get() + 1);
                }
                Ok(())
            }
            Err(diagnostics) => Err(TestCaseError::fail(format!(
                "the imported roadmap does not load:\n{diagnostics}\n--- letter:\n{text}\n--- roadmap:\n{}",
                report.toml
            ))),
        }
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    let with_events = with_events.get();
    assert!(with_events >= 8, "only {with_events} of 128 roadmaps had events");
}
