//! `herald import-roadmap`: the real letters, through the command line, into
//! a configuration that `check` accepts and `plan` reminds of.

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
