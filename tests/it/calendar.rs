//! Invitations, updates and cancellations, read back by the Python
//! `icalendar` package (a real iCalendar parser) as a calendar client would.

use std::io::Write;
use std::process::{Command, Stdio};

use herald::outbox::{Outbox, SqliteOutbox, State};
use serde_json::Value;

use crate::harness::{ConfigDir, Daemon, FUTURE_ROADMAP, repo, stdout};

/// What a calendar client sees in `message`, with times in `zone`.
fn ics_facts(message: &[u8], zone: &str) -> Value {
    let script = repo().join("tests/it/support/ics_facts.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(zone)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the calendar tests");
    child.stdin.take().unwrap().write_all(message).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "ics_facts.py failed (is the icalendar package installed? `pip install -r scripts/requirements-test.txt`): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn preview(config: &ConfigDir, args: &[&str]) -> Vec<u8> {
    config.preview(args)
}

#[test]
fn a_geneva_meeting_at_15_00_is_15_00_in_zurich_time() {
    let config = ConfigDir::example();
    config.edit(
        "config/roadmaps/2016-modalities-consultations.toml",
        "end_date = \"2016-12-02\"",
        "end_date = \"2016-12-02\"\nstart = \"15:00\"\nend = \"18:00\"",
    );
    let message = preview(
        &config,
        &[
            "--event",
            "geneva-consultations",
            "--lead",
            "14d",
            "--to",
            "jm.dubois@swiss-mission.example.org",
        ],
    );
    let facts = ics_facts(&message, "Europe/Zurich");
    assert_eq!(facts["calendar_parts"], 1);
    assert_eq!(facts["content_type_method"], "REQUEST");
    assert_eq!(facts["method"], "REQUEST");
    assert_eq!(facts["uid"], "geneva-consultations@gcm.example.org");
    assert_eq!(facts["sequence"], 0);
    assert_eq!(facts["status"], "CONFIRMED");
    assert_eq!(facts["dtstart"]["instant"], "2016-12-01T15:00:00+01:00");
    assert_eq!(facts["dtend"]["instant"], "2016-12-02T18:00:00+01:00");
    assert_eq!(facts["location"], "Palais des Nations, Geneva");
    assert_eq!(facts["organizer"], "mailto:secretariat@gcm.example.org");
    assert_eq!(facts["attendee"], "mailto:jm.dubois@swiss-mission.example.org");
    // The same meeting seen from New York.
    assert_eq!(
        ics_facts(&message, "America/New_York")["dtstart"]["instant"],
        "2016-12-01T09:00:00-05:00"
    );
}

#[test]
fn days_without_hours_are_all_day_and_deadlines_carry_no_invitation() {
    let config = ConfigDir::example();
    let message = preview(
        &config,
        &[
            "--event",
            "geneva-consultations",
            "--lead",
            "14d",
            "--to",
            "jm.dubois@swiss-mission.example.org",
        ],
    );
    let facts = ics_facts(&message, "Europe/Zurich");
    assert_eq!(facts["dtstart"], serde_json::json!({"date": "2016-12-01"}));
    assert_eq!(
        facts["dtend"],
        serde_json::json!({"date": "2016-12-03"}),
        "DTEND of all-day events is exclusive"
    );
    let message = preview(
        &config,
        &[
            "--event",
            "first-reading",
            "--lead",
            "1d",
            "--to",
            "k.watanabe@japan-mission.example.org",
        ],
    );
    assert_eq!(
        ics_facts(&message, "America/New_York")["dtstart"]["instant"],
        "2017-10-02T15:00:00-04:00"
    );
    let deadline = preview(
        &config,
        &[
            "--event",
            "conclusion-of-negotiations",
            "--lead",
            "1d",
            "--to",
            "k.watanabe@japan-mission.example.org",
        ],
    );
    assert_eq!(ics_facts(&deadline, "UTC")["calendar_parts"], 0);
    let letter = preview(
        &config,
        &[
            "--letter",
            "modalities-roadmap-2017",
            "--to",
            "k.watanabe@japan-mission.example.org",
        ],
    );
    assert_eq!(ics_facts(&letter, "UTC")["calendar_parts"], 0);
}

#[test]
fn a_cancellation_notice_cancels_the_same_uid() {
    let config = ConfigDir::example();
    let message = preview(
        &config,
        &[
            "--event",
            "first-reading",
            "--notice",
            "cancellation",
            "--to",
            "jm.dubois@swiss-mission.example.org",
        ],
    );
    let facts = ics_facts(&message, "Europe/Zurich");
    assert_eq!(
        (facts["method"].as_str(), facts["content_type_method"].as_str()),
        (Some("CANCEL"), Some("CANCEL"))
    );
    assert_eq!(facts["status"], "CANCELLED");
    assert_eq!(facts["uid"], "first-reading@gcm.example.org");
    let text = String::from_utf8_lossy(&message);
    assert!(text.contains("Subject: Annulation : 1st reading"), "{text}");
}

/// A running daemon sees an event moved: one update per recipient with
/// SEQUENCE 1, the reminders moved with it, none left at the old time; then
/// cancelled: one cancellation each, SEQUENCE 2, and no reminder left.
#[test]
fn moving_then_cancelling_an_event_in_a_running_daemon() {
    let config = ConfigDir::example();
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    // The daemon runs on the real clock here: the notices wait a second,
    // not ten minutes (daemon.rs tests the delay on a clock it moves).
    config.edit(
        "config/herald.toml",
        "notice_delay = \"10m\"",
        "notice_delay = \"1s\"",
    );
    let state = tempfile::tempdir().unwrap();
    // Without the watch, so that only the signals reload.
    let mut daemon = Daemon::spawn(
        config
            .run_before_the_future_meeting(state.path())
            .arg("--no-watch"),
    );
    daemon.wait_for("herald::daemon: ready");
    let maildir = state.path().join("maildir/new");
    let read_maildir = || -> Vec<Vec<u8>> {
        std::fs::read_dir(&maildir)
            .map(|d| d.map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect())
            .unwrap_or_default()
    };
    assert!(read_maildir().is_empty(), "nothing is due yet");

    config.edit(
        "config/roadmaps/future.toml",
        "start = \"15:00\"",
        "start = \"16:00\"",
    );
    // Before the daemon hears of it, `plan` shows the notices it will send.
    let plan = crate::harness::herald_command(&config.path())
        .env("HERALD_STATE_DIR", state.path())
        .args(["plan", "--json"])
        .output()
        .unwrap();
    let rows: Vec<Value> = serde_json::from_str(&String::from_utf8_lossy(&plan.stdout)).unwrap();
    let updates: Vec<_> = rows.iter().filter(|r| r["kind"] == "update").collect();
    assert_eq!(updates.len(), 9, "{rows:?}");
    assert!(
        updates
            .iter()
            .all(|r| r["event"] == "future-meeting" && r["template"] == "update")
    );
    // The table says how long they wait.
    let table = crate::harness::herald_command(&config.path())
        .env("HERALD_STATE_DIR", state.path())
        .arg("plan")
        .output()
        .unwrap();
    assert!(
        stdout(&table).contains("notices wait notice_delay (1s) after the change"),
        "{}",
        stdout(&table)
    );
    daemon.signal("HUP");
    let reloaded = daemon.wait_for("configuration reloaded");
    assert!(reloaded.contains("27 rescheduled"), "{reloaded}");
    daemon.wait_for("dispatched sent=9");
    let messages = read_maildir();
    assert_eq!(messages.len(), 9, "one update per focal point of member-states");
    for message in &messages {
        let facts = ics_facts(message, "America/New_York");
        assert_eq!(
            (facts["method"].as_str(), facts["sequence"].as_i64()),
            (Some("REQUEST"), Some(1))
        );
        assert_eq!(facts["dtstart"]["instant"], "2099-03-01T16:00:00-05:00");
        assert_eq!(
            facts["dtend"]["instant"], "2099-03-01T17:00:00-05:00",
            "an hour when no end is given"
        );
    }
    let outbox = SqliteOutbox::open(state.path()).unwrap();
    let reminders: Vec<_> = outbox
        .entries()
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.spec.key.subject() == "future-meeting" && e.spec.key.kind() == herald::key::SendKind::Reminder
        })
        .collect();
    assert_eq!(reminders.len(), 27);
    assert!(
        reminders
            .iter()
            .all(|e| e.state == State::Planned && e.revision == 2),
        "{reminders:?}"
    );
    let old_2h: jiff::Timestamp = "2099-03-01T18:00:00Z".parse().unwrap();
    assert!(
        reminders.iter().all(|e| e.spec.due != old_2h),
        "a reminder is left at the old time"
    );
    assert!(
        reminders
            .iter()
            .any(|e| e.spec.due == "2099-03-01T19:00:00Z".parse::<jiff::Timestamp>().unwrap())
    );
    drop(outbox);

    config.edit(
        "config/roadmaps/future.toml",
        "start = \"16:00\"",
        "start = \"16:00\"\nstatus = \"cancelled\"",
    );
    daemon.signal("HUP");
    let reloaded = daemon.wait_for("configuration reloaded");
    assert!(reloaded.contains("27 cancelled"), "{reloaded}");
    daemon.wait_for("dispatched sent=9");
    let messages = read_maildir();
    assert_eq!(messages.len(), 18);
    let cancellations: Vec<Value> = messages
        .iter()
        .map(|m| ics_facts(m, "UTC"))
        .filter(|f| f["method"] == "CANCEL")
        .collect();
    assert_eq!(cancellations.len(), 9);
    assert!(
        cancellations
            .iter()
            .all(|f| f["sequence"] == 2 && f["uid"] == "future-meeting@gcm.example.org")
    );
    let outbox = SqliteOutbox::open(state.path()).unwrap();
    let planned = outbox
        .entries()
        .unwrap()
        .into_iter()
        .filter(|e| e.spec.key.subject() == "future-meeting" && e.state == State::Planned)
        .count();
    assert_eq!(planned, 0, "no reminder of a cancelled event");
    let history = config.herald(&[
        "history",
        "--state-dir",
        &state.path().display().to_string(),
        "--event",
        "future-meeting",
        "--state",
        "cancelled",
    ]);
    assert!(
        stdout(&history).contains("the event \"future-meeting\" was cancelled"),
        "{}",
        stdout(&history)
    );
}
