//! Invitations, updates and cancellations, read back by the Python
//! `icalendar` package (a real iCalendar parser) as a calendar client would.

use std::io::Write;
use std::process::{Command, Stdio};

use herald::outbox::{Outbox, SqliteOutbox, State};
use serde_json::Value;

use crate::harness::{ConfigDir, Daemon, FUTURE_ROADMAP, repo, stdout};

/// What a calendar client sees in `message`, with times in `zone`.
pub fn ics_facts(message: &[u8], zone: &str) -> Value {
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

/// What the parser reads of each of `calendars` (iCalendar texts), in one
/// run of ics_facts.py.
fn ics_facts_batch(calendars: &[String]) -> Vec<Value> {
    let script = repo().join("tests/it/support/ics_facts.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg("--batch")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the calendar tests");
    let input = serde_json::to_vec(calendars).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "ics_facts.py cannot read the calendars: {}\n{calendars:#?}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A name that is all parameters, and a harmless one with a comma and
/// quotes (the parser dropped that attendee), are the attendee's CN and
/// nothing else; a long title gives no line longer than 75 octets.
#[test]
fn a_focal_points_name_is_one_parameter_value() {
    for name in [
        "\"Amina\";PARTSTAT=ACCEPTED;X-EVIL=\"1\"",
        "Diallo, Amina \"Mina\"",
    ] {
        let config = ConfigDir::example();
        let csv_field = format!("\"{}\"", name.replace('"', "\"\""));
        config.edit(
            "config/lists/permanent-missions.csv",
            "Amina Diallo,",
            &format!("{csv_field},"),
        );
        config.edit(
            "config/roadmaps/2016-modalities-consultations.toml",
            "title = \"Consultations in Geneva with Member States and I.O.\"",
            "title = \"Consultations in Geneva with Member States and I.O., the thirty-third of their kind\"",
        );
        let message = preview(
            &config,
            &[
                "--event",
                "geneva-consultations",
                "--lead",
                "7d",
                "--to",
                "amina.diallo@senegal-mission.example.org",
            ],
        );
        let facts = ics_facts(&message, "Europe/Zurich");
        assert_eq!(
            facts["attendee"],
            "mailto:amina.diallo@senegal-mission.example.org"
        );
        assert_eq!(
            facts["attendee_params"],
            serde_json::json!({"CN": name, "ROLE": "REQ-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION", "RSVP": "TRUE"}),
            "{name}"
        );
        assert_eq!(
            facts["summary"],
            "Consultations in Geneva with Member States and I.O., the thirty-third of their kind"
        );
        assert!(facts["longest_line"].as_u64().unwrap() <= 75, "{facts}");
    }
}

/// Any name a list accepts and any title a roadmap accepts give an
/// invitation that the real parser reads back with the same name (as the
/// attendee's CN, with no other parameter added) and the same title, in
/// lines of at most 75 octets that are each UTF-8. (A backslash in a name
/// is the one character written otherwise, as `＼`: see `calendar.rs`.)
#[test]
fn any_accepted_name_and_title_read_back_the_same() {
    use herald::calendar::{Invitation, Method, invitation};
    use herald::config::Environment;
    use proptest::prelude::*;
    use proptest::test_runner::TestRunner;

    let config = ConfigDir::example();
    for file in [
        "roadmaps/2016-modalities-consultations.toml",
        "roadmaps/2017-modalities-resolution.toml",
        "letters/2017-09-14-modalities-roadmap.toml",
    ] {
        config.remove(file);
    }
    // Characters that mean something in iCalendar or TOML, and wide ones
    // (folding must not split them), among any others.
    let special = prop::sample::select(vec![
        '"', '\'', ';', ':', ',', '^', '\\', '=', ' ', 'n', 'é', '老', '🦀', '\u{a0}',
    ]);
    let character = prop_oneof![
        special,
        any::<char>().prop_filter("a control", |c| !c.is_control())
    ];
    let text = |max| {
        prop::collection::vec(character.clone(), 1..max)
            .prop_map(String::from_iter)
            .prop_filter("blank", |s| !s.trim().is_empty())
    };
    // Few cases of many pairs: each case is one run of the parser.
    let pairs = prop::collection::vec((text(60), text(160)), 1..16);
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let toml = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let result = runner.run(&pairs, |pairs| {
        let mut list = String::new();
        let mut roadmap = String::from("id = \"prop\"\ntitle = \"Prop\"\nvenue = \"new-york\"\nlists = [\"member-states\"]\n");
        for (i, (name, title)) in pairs.iter().enumerate() {
            list.push_str(&format!(
                "[[focal_points]]\nname = {}\nemail = \"p{i}@example.org\"\nlists = [\"member-states\"]\n",
                toml(name)
            ));
            roadmap.push_str(&format!(
                "[[events]]\nid = \"e{i}\"\ntitle = {}\nkind = \"meeting\"\ndate = \"2099-03-01\"\nstart = \"15:00\"\n",
                toml(title)
            ));
        }
        config.write("lists/prop.toml", &list);
        config.write("roadmaps/prop.toml", &roadmap);
        let model = herald::config::load(&config.path(), &Environment::default())
            .unwrap_or_else(|problems| panic!("{problems}"))
            .model;
        let sender = &model.settings().sender;
        let calendars: Vec<String> = (0..pairs.len())
            .map(|i| {
                let event = model.roadmaps()[0]
                    .events
                    .iter()
                    .find(|e| e.id == format!("e{i}"))
                    .expect("the event");
                let attendee = model
                    .focal_points()
                    .iter()
                    .find(|f| f.email.to_string() == format!("p{i}@example.org"))
                    .expect("the focal point");
                invitation(&Invitation {
                    event,
                    method: Method::Request,
                    sequence: 0,
                    organizer: &sender.from,
                    attendee,
                    stamp: jiff::Timestamp::UNIX_EPOCH,
                    domain: &sender.domain,
                    description: None,
                    url: None,
                })
                .expect("a timed event has an invitation")
            })
            .collect();
        let facts = ics_facts_batch(&calendars);
        for (i, (name, title)) in pairs.iter().enumerate() {
            let facts = &facts[i];
            prop_assert_eq!(&facts["summary"], title.trim(), "{}", calendars[i]);
            prop_assert_eq!(
                &facts["attendees"],
                &serde_json::json!([{
                    "value": format!("mailto:p{i}@example.org"),
                    "params": {"CN": name.trim().replace('\\', "＼"), "ROLE": "REQ-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION", "RSVP": "TRUE"},
                }]),
                "{}",
                calendars[i]
            );
            prop_assert_eq!(
                &facts["organizer_params"],
                &serde_json::json!({"CN": sender.from.name.clone().unwrap_or_default()})
            );
            prop_assert!(facts["longest_line"].as_u64().unwrap() <= 75, "{}", calendars[i]);
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
