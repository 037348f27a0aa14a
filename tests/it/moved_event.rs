//! An event that moves after some of its reminders went out: each lead is
//! sent once, the leads not yet reached follow the new date, and `plan`
//! and `history` show no reminder as pending that went out already.
//!
//! Each test runs the daemon on a stepping clock against aiosmtpd, moves
//! an event between runs, runs on, and counts what reached the relay per
//! send key (a message's Message-ID is a digest of its key).

use std::collections::BTreeMap;

use herald::outbox::{Entry, Outbox, SqliteOutbox, State};
use jiff::Timestamp;
use mail_parser::MessageParser;

use crate::daemon::{run_between, smtp_config};
use crate::harness::{ConfigDir, stdout};
use crate::support::aiosmtpd::Sink;

const ROADMAP: &str = "config/roadmaps/2017-modalities-resolution.toml";
/// The first reading as the example roadmap has it: 2 October 2017, 15:00
/// in New York (19:00Z), with the meeting leads 7d, 1d and 2h.
const FIRST_READING: &str = "date = \"2017-10-02\"\npart_of_day = \"afternoon\"";
const KENJI: &str = "k.watanabe@japan-mission.example.org";

/// The example configuration over SMTP to `sink`, with one focal point
/// (Kenji Watanabe, on member-states), so every key names one message.
fn config(sink: &Sink) -> ConfigDir {
    let config = smtp_config(sink.port(), 2);
    config.with_one_focal_point(None);
    config
}

/// Moves the first reading from `from` to `to` (its date and part of the
/// day, as the roadmap writes them).
fn move_first_reading(config: &ConfigDir, from: &str, to: &str) {
    config.edit(ROADMAP, from, to);
}

fn first_reading_on(date: &str, part_of_day: &str) -> String {
    format!("date = \"{date}\"\npart_of_day = \"{part_of_day}\"")
}

/// What reached the relay: per send key (Kenji's address left out), the
/// Date header of each message, in order of arrival. Keys are found from
/// the Message-IDs of the outbox's entries.
fn received(sink: &Sink, config: &ConfigDir, outbox: &SqliteOutbox) -> BTreeMap<String, Vec<Timestamp>> {
    let domain = config.model().settings().sender.domain.clone();
    let by_id: BTreeMap<String, String> = outbox
        .entries()
        .unwrap()
        .iter()
        .map(|entry| {
            let key = entry.spec.key.as_str();
            (herald::render::message::message_id(key, &domain), key.to_owned())
        })
        .collect();
    let mut received: BTreeMap<String, Vec<Timestamp>> = BTreeMap::new();
    for message in sink.received() {
        let message = MessageParser::default().parse(&message.bytes).expect("a message");
        let id = format!("<{}>", message.message_id().expect("a Message-ID"));
        let key = by_id
            .get(&id)
            .unwrap_or_else(|| panic!("a message the outbox has no send for: {id}"));
        let date: Timestamp = message.date().expect("a Date").to_rfc3339().parse().unwrap();
        received
            .entry(key.trim_end_matches(KENJI).trim_end_matches('/').to_owned())
            .or_default()
            .push(date);
    }
    received
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// The first reading's sends that reached the relay, with when.
fn first_reading(received: &BTreeMap<String, Vec<Timestamp>>) -> Vec<(&str, Vec<String>)> {
    received
        .iter()
        .filter(|(key, _)| key.contains("/first-reading/"))
        .map(|(key, dates)| (key.as_str(), dates.iter().map(Timestamp::to_string).collect()))
        .collect()
}

fn entry<'a>(entries: &'a [Entry], key: &str) -> &'a Entry {
    let key = format!("{key}/{KENJI}");
    entries
        .iter()
        .find(|e| e.spec.key.as_str() == key)
        .unwrap_or_else(|| panic!("no entry {key}"))
}

/// Moved one day later after its 7-day reminder went out: the update
/// notice goes out after notice_delay, the 7-day reminder is not sent
/// again, and the leads not yet reached follow the new date.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_sent_before_the_event_moved_later_is_not_sent_again() {
    let sink = Sink::plain();
    let config = config(&sink);
    let state = tempfile::tempdir().unwrap();
    // The 7-day reminder goes out on 25 September, 19:00Z.
    drop(
        run_between(
            &config,
            state.path(),
            "2017-09-24T00:00:00Z",
            "2017-09-26T00:00:00Z",
        )
        .await,
    );
    move_first_reading(
        &config,
        FIRST_READING,
        &first_reading_on("2017-10-03", "afternoon"),
    );
    let outbox = run_between(
        &config,
        state.path(),
        "2017-09-26T00:00:00Z",
        "2017-10-04T00:00:00Z",
    )
    .await;

    let received = received(&sink, &config, &outbox);
    assert_eq!(
        first_reading(&received),
        [
            (
                "reminder/first-reading/1d",
                vec!["2017-10-02T19:00:00Z".to_owned()]
            ),
            (
                "reminder/first-reading/2h",
                vec!["2017-10-03T17:00:00Z".to_owned()]
            ),
            (
                "reminder/first-reading/7d",
                vec!["2017-09-25T19:00:00Z".to_owned()]
            ),
            ("update/first-reading/1", vec!["2017-09-26T00:10:00Z".to_owned()]),
        ]
    );
    assert!(received.values().all(|dates| dates.len() == 1), "{received:?}");
    // The outbox keeps the 7-day reminder as it went: for the old date.
    let entries = outbox.entries().unwrap();
    let seven_days = entry(&entries, "reminder/first-reading/7d");
    assert_eq!(
        (seven_days.state, seven_days.spec.due),
        (State::Sent, at("2017-09-25T19:00:00Z"))
    );
}

/// Moved earlier, so that leads not yet reached are already past: one
/// past by less than the late window (6 hours) goes out at once, one past
/// by more is skipped as too late, with why; the rest follow the new date.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_made_past_by_a_move_earlier_follows_the_late_window() {
    let sink = Sink::plain();
    let config = config(&sink);
    let state = tempfile::tempdir().unwrap();
    // By 30 September, 22:00Z, the 7-day reminders of the first reading
    // (25 September) and of the informal consultations (28 September)
    // went out; the first reading's 1-day reminder (1 October, 19:00Z) is
    // planned in the outbox, the consultations' (4 October) not yet.
    drop(
        run_between(
            &config,
            state.path(),
            "2017-09-24T00:00:00Z",
            "2017-09-30T22:00:00Z",
        )
        .await,
    );
    // The first reading to 1 October, 10:00 New York: its 1-day reminder
    // was due 8 hours ago. The consultations to 1 October, 15:00: theirs
    // was due 3 hours ago.
    move_first_reading(&config, FIRST_READING, &first_reading_on("2017-10-01", "morning"));
    config.edit(
        ROADMAP,
        "date = \"2017-10-05\"\npart_of_day = \"morning\"",
        "date = \"2017-10-01\"\npart_of_day = \"afternoon\"",
    );
    let outbox = run_between(
        &config,
        state.path(),
        "2017-09-30T22:00:00Z",
        "2017-10-06T00:00:00Z",
    )
    .await;

    let received = received(&sink, &config, &outbox);
    let dates = |key: &str| received.get(key).cloned().unwrap_or_default();
    assert_eq!(dates("reminder/first-reading/7d"), [at("2017-09-25T19:00:00Z")]);
    assert_eq!(
        dates("reminder/first-reading/1d"),
        [],
        "past by more than the late window"
    );
    assert_eq!(dates("reminder/first-reading/2h"), [at("2017-10-01T12:00:00Z")]);
    assert_eq!(dates("update/first-reading/1"), [at("2017-09-30T22:10:00Z")]);
    let consultations = "informal-consultations-2017-10-05";
    assert_eq!(
        dates(&format!("reminder/{consultations}/7d")),
        [at("2017-09-28T14:00:00Z")]
    );
    assert_eq!(
        dates(&format!("reminder/{consultations}/1d")),
        [at("2017-09-30T22:00:00Z")],
        "past by less than the late window: sent at once"
    );
    assert_eq!(
        dates(&format!("reminder/{consultations}/2h")),
        [at("2017-10-01T17:00:00Z")]
    );
    assert!(received.values().all(|dates| dates.len() == 1), "{received:?}");
    let entries = outbox.entries().unwrap();
    let skipped = entry(&entries, "reminder/first-reading/1d");
    assert_eq!(skipped.state, State::Skipped, "{skipped:?}");
    assert!(
        skipped
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("more than the late window (6h)")),
        "{skipped:?}"
    );
}

/// Moved later, then earlier (a lead skipped as too late), then back: no
/// lead is sent twice, and the lead skipped while the event was earlier
/// goes out at its time once the event is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_moved_back_and_forth_sends_each_lead_once() {
    let sink = Sink::plain();
    let config = config(&sink);
    let state = tempfile::tempdir().unwrap();
    drop(
        run_between(
            &config,
            state.path(),
            "2017-09-24T00:00:00Z",
            "2017-09-26T00:00:00Z",
        )
        .await,
    );
    let later = first_reading_on("2017-10-03", "afternoon");
    move_first_reading(&config, FIRST_READING, &later);
    drop(
        run_between(
            &config,
            state.path(),
            "2017-09-26T00:00:00Z",
            "2017-09-30T22:00:00Z",
        )
        .await,
    );
    // Earlier: the 1-day reminder was due 8 hours ago, and is skipped.
    let earlier = first_reading_on("2017-10-01", "morning");
    move_first_reading(&config, &later, &earlier);
    drop(
        run_between(
            &config,
            state.path(),
            "2017-09-30T22:00:00Z",
            "2017-09-30T23:00:00Z",
        )
        .await,
    );
    // Back where it was: the 1-day reminder is due tomorrow again.
    move_first_reading(&config, &earlier, FIRST_READING);
    let outbox = run_between(
        &config,
        state.path(),
        "2017-09-30T23:00:00Z",
        "2017-10-03T00:00:00Z",
    )
    .await;

    let received = received(&sink, &config, &outbox);
    assert_eq!(
        first_reading(&received),
        [
            (
                "reminder/first-reading/1d",
                vec!["2017-10-01T19:00:00Z".to_owned()]
            ),
            (
                "reminder/first-reading/2h",
                vec!["2017-10-02T17:00:00Z".to_owned()]
            ),
            (
                "reminder/first-reading/7d",
                vec!["2017-09-25T19:00:00Z".to_owned()]
            ),
            ("update/first-reading/1", vec!["2017-09-26T00:10:00Z".to_owned()]),
            ("update/first-reading/2", vec!["2017-09-30T22:10:00Z".to_owned()]),
            ("update/first-reading/3", vec!["2017-09-30T23:10:00Z".to_owned()]),
        ]
    );
    assert!(received.values().all(|dates| dates.len() == 1), "{received:?}");
}

/// Reminders planned in the outbox but not yet sent when the event moves
/// follow the new date, and so do those not yet planned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leads_not_yet_sent_follow_the_new_date() {
    let sink = Sink::plain();
    let config = config(&sink);
    let state = tempfile::tempdir().unwrap();
    // The outbox holds the next 48 hours: the 7-day reminder (25
    // September, 19:00Z) is planned, not sent.
    let outbox = run_between(
        &config,
        state.path(),
        "2017-09-22T00:00:00Z",
        "2017-09-24T00:00:00Z",
    )
    .await;
    let entries = outbox.entries().unwrap();
    assert_eq!(entry(&entries, "reminder/first-reading/7d").state, State::Planned);
    drop(outbox);
    move_first_reading(
        &config,
        FIRST_READING,
        &first_reading_on("2017-10-03", "afternoon"),
    );
    let outbox = run_between(
        &config,
        state.path(),
        "2017-09-24T00:00:00Z",
        "2017-10-04T00:00:00Z",
    )
    .await;

    let received = received(&sink, &config, &outbox);
    assert_eq!(
        first_reading(&received),
        [
            (
                "reminder/first-reading/1d",
                vec!["2017-10-02T19:00:00Z".to_owned()]
            ),
            (
                "reminder/first-reading/2h",
                vec!["2017-10-03T17:00:00Z".to_owned()]
            ),
            (
                "reminder/first-reading/7d",
                vec!["2017-09-26T19:00:00Z".to_owned()]
            ),
            ("update/first-reading/1", vec!["2017-09-24T00:10:00Z".to_owned()]),
        ]
    );
    let entries = outbox.entries().unwrap();
    let moved = entry(&entries, "reminder/first-reading/7d");
    assert_eq!((moved.spec.due, moved.revision), (at("2017-09-26T19:00:00Z"), 2));
}

/// After the move of the first test, `herald plan` does not list the
/// 7-day reminder at the new date as if it were to be sent, and says
/// why; `herald history` has it once, sent, for the old date.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_history_show_no_pending_reminder_for_a_lead_already_sent() {
    let sink = Sink::plain();
    let config = config(&sink);
    let state = tempfile::tempdir().unwrap();
    drop(
        run_between(
            &config,
            state.path(),
            "2017-09-24T00:00:00Z",
            "2017-09-26T00:00:00Z",
        )
        .await,
    );
    move_first_reading(
        &config,
        FIRST_READING,
        &first_reading_on("2017-10-03", "afternoon"),
    );
    drop(
        run_between(
            &config,
            state.path(),
            "2017-09-26T00:00:00Z",
            "2017-09-26T12:00:00Z",
        )
        .await,
    );
    let herald = |args: &[&str]| {
        let output = crate::harness::herald_command(&config.path())
            .env("HERALD_STATE_DIR", state.path())
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", crate::harness::stderr(&output));
        stdout(&output)
    };

    let plan = herald(&["plan", "--from", "2017-09-26T12:00:00Z", "--until", "2017-10-04"]);
    // The table's rows, not the lines that say what was left out.
    let first_reading: Vec<&str> = plan
        .lines()
        .filter(|line| line.starts_with("2017-") && line.contains("first-reading"))
        .collect();
    assert!(
        first_reading.iter().all(|line| !line.contains(" 7d ")),
        "the 7-day reminder listed as pending:\n{plan}"
    );
    assert_eq!(
        first_reading.len(),
        2,
        "the 1-day and 2-hour reminders are pending:\n{plan}"
    );
    assert!(
        plan.contains(
            "(not listed, already in the outbox: reminder first-reading 7d to 1 recipient, sent for the event's previous date, due 2017-09-25 19:00 UTC; a lead already reached is not sent again when the event moves)"
        ),
        "{plan}"
    );
    let json = herald(&[
        "plan",
        "--json",
        "--from",
        "2017-09-26T12:00:00Z",
        "--until",
        "2017-10-04",
    ]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert!(
        rows.iter()
            .all(|row| row["key"] != format!("reminder/first-reading/7d/{KENJI}").as_str()),
        "{json}"
    );
    assert!(
        rows.iter()
            .any(|row| row["key"] == format!("reminder/first-reading/1d/{KENJI}").as_str())
    );

    let history = herald(&["history", "--event", "first-reading"]);
    let seven_days: Vec<&str> = history.lines().filter(|l| l.contains(" 7d ")).collect();
    assert_eq!(seven_days.len(), 1, "{history}");
    assert!(
        seven_days[0].starts_with("2017-09-25 19:00") && seven_days[0].contains("sent"),
        "{history}"
    );
}
