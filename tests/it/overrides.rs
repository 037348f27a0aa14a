//! Readers' choices: overrides of a focal point's language and time zone,
//! written to the outbox as the preferences page writes them, taking effect
//! in `herald plan`, `preview`, the daemon's mail and `history`; removed
//! with their focal point; and requests for the operator, listed, settled
//! and shown in the digest.

use std::path::Path;
use std::sync::Arc;

use herald::clock::{Clock, ManualClock};
use herald::config::Environment;
use herald::key::AddressKey;
use herald::outbox::{NewRequest, Outbox, Override, SqliteOutbox, State};
use herald::scheduler::{Loaded, Scheduler};
use herald::send::Mailer;
use jiff::Timestamp;
use mail_parser::MessageParser;

use crate::daemon::smtp_config;
use crate::harness::{BEFORE_THE_FUTURE_MEETING, ConfigDir, Daemon, FUTURE_ROADMAP, stderr, stdout};
use crate::support::aiosmtpd::Sink;

const KENJI: &str = "k.watanabe@japan-mission.example.org";

/// Kenji Watanabe alone (English, New York) on the list of the future
/// meeting: three reminders, 1d, 2h and 30m before 2099-03-01 15:00 New
/// York; the outbox in `state`.
fn future_config(config: ConfigDir, state: &Path) -> ConfigDir {
    config.with_one_focal_point(None);
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    config.edit(
        "config/herald.toml",
        "# state_dir = \"/var/lib/herald\"",
        &format!("state_dir = {:?}", state.display().to_string()),
    );
    config
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn choose(state: &Path, address: &str, language: Option<&str>, zone: Option<&str>) {
    SqliteOutbox::open(state)
        .unwrap()
        .set_override(&Override {
            address: AddressKey::of(address),
            language: language.map(str::to_owned),
            zone: zone.map(str::to_owned),
            since: at("2099-02-01T00:00:00Z"),
        })
        .unwrap();
}

const WINDOW: [&str; 5] = [
    "plan",
    "--from",
    "2099-02-28T00:00:00Z",
    "--until",
    "2099-03-02T00:00:00Z",
];

#[test]
fn plan_and_preview_use_and_mark_a_readers_language_and_zone() {
    let state = tempfile::tempdir().unwrap();
    let config = future_config(ConfigDir::example(), state.path());
    choose(state.path(), KENJI, Some("fr"), Some("Asia/Tokyo"));

    let plan = config.herald(&WINDOW);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let text = stdout(&plan);
    let rows: Vec<&str> = text.lines().filter(|line| line.contains(KENJI)).collect();
    assert_eq!(rows.len(), 3, "{text}");
    for row in rows {
        let (before, note) = row.split_once("(reader's choice: ").expect(row);
        assert_eq!(note, "language fr, zone Asia/Tokyo)", "{row}");
        assert!(before.trim_end().ends_with(&format!("{KENJI}  fr")), "{row}");
    }

    let json = config.herald(&[WINDOW.as_slice(), &["--json"]].concat());
    assert!(json.status.success(), "{}", stderr(&json));
    let rows: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        assert_eq!(row["language"], "fr", "{row}");
        assert_eq!(
            row["override"],
            serde_json::json!({"language": "fr", "zone": "Asia/Tokyo"}),
            "{row}"
        );
    }

    // The message itself: French, and the meeting's time in Tokyo too
    // (15:00 in New York on 1 March is 05:00 on 2 March in Tokyo).
    let message = config.preview(&["--event", "future-meeting", "--lead", "1d", "--to", KENJI]);
    let parsed = MessageParser::default().parse(&message).unwrap();
    let body = parsed.body_text(0).unwrap().into_owned();
    assert!(body.contains("mars"), "not French:\n{body}");
    assert!(body.contains("05:00"), "no time in Tokyo:\n{body}");

    // The same choice as the configuration's language changes only the zone.
    choose(state.path(), KENJI, Some("en"), Some("Asia/Tokyo"));
    let json = config.herald(&[WINDOW.as_slice(), &["--json"]].concat());
    let rows: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(rows[0]["language"], "en");
    assert_eq!(
        rows[0]["override"],
        serde_json::json!({"language": null, "zone": "Asia/Tokyo"})
    );
}

#[test]
fn a_language_without_templates_or_an_unknown_zone_is_ignored_with_a_warning() {
    let state = tempfile::tempdir().unwrap();
    let config = future_config(ConfigDir::example(), state.path());
    choose(state.path(), KENJI, Some("tlh"), Some("Mars/Olympus_Mons"));
    let plan = config.herald(&[WINDOW.as_slice(), &["--json"]].concat());
    assert!(plan.status.success(), "{}", stderr(&plan));
    let warnings = stderr(&plan);
    assert!(
        warnings.contains("chose the language \"tlh\", which herald has no templates for"),
        "{warnings}"
    );
    assert!(
        warnings.contains("chose the time zone \"Mars/Olympus_Mons\""),
        "{warnings}"
    );
    let rows: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(rows[0]["language"], "en");
    assert_eq!(rows[0]["override"], serde_json::Value::Null);
}

#[test]
fn overrides_are_listed_as_text_and_json() {
    let state = tempfile::tempdir().unwrap();
    let config = future_config(ConfigDir::example(), state.path());
    let none = config.herald(&["overrides"]);
    assert!(!none.status.success(), "no outbox yet: {}", stdout(&none));
    assert!(
        stderr(&none).contains("herald has not run with this state directory"),
        "{}",
        stderr(&none)
    );

    choose(state.path(), KENJI, Some("fr"), None);
    choose(
        state.path(),
        "Amina.Diallo@senegal-mission.example.org",
        None,
        Some("Africa/Dakar"),
    );
    let listed = config.herald(&["overrides", "--json"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([
            {"address": "amina.diallo@senegal-mission.example.org", "language": null, "zone": "Africa/Dakar", "since": "2099-02-01T00:00:00Z"},
            {"address": KENJI, "language": "fr", "zone": null, "since": "2099-02-01T00:00:00Z"},
        ])
    );
    let table = config.herald(&["overrides"]);
    let text = stdout(&table);
    assert!(text.contains("ADDRESS"), "{text}");
    assert!(
        text.lines()
            .any(|line| line.starts_with(KENJI) && line.contains("fr") && line.contains("(configured)")),
        "{text}"
    );
    assert!(text.contains("2 readers chose for themselves"), "{text}");
}

#[test]
fn a_new_override_replans_the_pending_sends_but_not_those_claimed() {
    let state = tempfile::tempdir().unwrap();
    let config = future_config(ConfigDir::example(), state.path());
    let loaded = Loaded::load(&config.path(), &Environment::default(), None).unwrap();
    let mailer = Mailer::from_settings(&loaded.delivery).unwrap();
    let outbox: Arc<dyn Outbox> = Arc::new(SqliteOutbox::open(state.path()).unwrap());
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(at(BEFORE_THE_FUTURE_MEETING)));
    let scheduler = Scheduler::new(loaded, outbox.clone(), mailer, clock);
    scheduler.reconcile().unwrap();
    let languages = || {
        let mut entries = outbox.entries().unwrap();
        entries.sort_by_key(|e| e.spec.due);
        entries
            .into_iter()
            .map(|e| (e.spec.language, e.state))
            .collect::<Vec<_>>()
    };
    assert_eq!(languages().len(), 3);
    assert!(languages().iter().all(|(language, _)| language == "en"));

    outbox
        .set_override(&Override {
            address: AddressKey::of(KENJI),
            language: Some("ru".to_owned()),
            zone: Some("Europe/Moscow".to_owned()),
            since: at(BEFORE_THE_FUTURE_MEETING),
        })
        .unwrap();
    let changes = scheduler.reapply_overrides().unwrap();
    assert_eq!(changes.reschedule.len(), 3, "{changes:?}");
    assert!(languages().iter().all(|(language, _)| language == "ru"));
    let loaded = scheduler.loaded();
    let kenji = loaded.model.focal_point(KENJI).unwrap();
    assert_eq!(
        kenji.zone.as_ref().map(|z| z.name.as_str()),
        Some("Europe/Moscow")
    );
    assert!(loaded.choices.of(&AddressKey::of(KENJI)).is_some());

    // The first reminder is claimed (being sent): a new choice leaves it.
    let claimed = outbox.claim_due(at("2099-02-28T20:00:00Z"), 10).unwrap();
    assert_eq!(claimed.len(), 1);
    outbox
        .set_override(&Override {
            address: AddressKey::of(KENJI),
            language: None,
            zone: None,
            since: at(BEFORE_THE_FUTURE_MEETING),
        })
        .unwrap();
    scheduler.reapply_overrides().unwrap();
    assert_eq!(
        languages(),
        vec![
            ("ru".to_owned(), State::Sending),
            ("en".to_owned(), State::Planned),
            ("en".to_owned(), State::Planned),
        ]
    );
    // Back to the configuration: its zone too (this list names none), and
    // nothing marked.
    let loaded = scheduler.loaded();
    let kenji = loaded.model.focal_point(KENJI).unwrap();
    assert_eq!(kenji.zone, None);
    assert!(loaded.choices.is_empty());
}

#[test]
fn the_daemon_sends_in_the_chosen_language_and_history_marks_it() {
    let sink = Sink::plain();
    let state = tempfile::tempdir().unwrap();
    let config = future_config(smtp_config(sink.port(), 2), state.path());
    choose(state.path(), KENJI, Some("es"), Some("Asia/Tokyo"));
    let run = crate::harness::herald_command(&config.path())
        .args([
            "run",
            "--fast-forward",
            "--rehearse-from",
            BEFORE_THE_FUTURE_MEETING,
            "--until",
            "2099-03-02T00:00:00Z",
            "--real-recipients",
        ])
        .arg("--state-dir")
        .arg(state.path())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("readers' overrides applied"),
        "{}",
        stderr(&run)
    );
    let received = sink.received();
    assert_eq!(received.len(), 3);
    for message in &received {
        let parsed = MessageParser::default().parse(&message.bytes).unwrap();
        let subject = parsed.subject().unwrap_or_default().to_owned();
        let body = parsed.body_text(0).unwrap().into_owned();
        assert!(body.contains("marzo"), "not Spanish: {subject}\n{body}");
        assert!(body.contains("05:00"), "no time in Tokyo: {subject}\n{body}");
    }

    let history = config.herald(&["history"]);
    assert!(history.status.success(), "{}", stderr(&history));
    let text = stdout(&history);
    let sent: Vec<&str> = text.lines().filter(|line| line.contains(KENJI)).collect();
    assert_eq!(sent.len(), 3, "{text}");
    for line in sent {
        assert!(
            line.contains("(reader's choice: language es, zone Asia/Tokyo)"),
            "{line}"
        );
    }
    let json = config.herald(&["history", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        rows[0]["override"],
        serde_json::json!({"language": "es", "zone": "Asia/Tokyo"})
    );
}

#[test]
fn a_focal_point_gone_from_the_configuration_loses_its_override_at_the_next_load() {
    let state = tempfile::tempdir().unwrap();
    let config = future_config(ConfigDir::example(), state.path());
    choose(state.path(), KENJI, Some("fr"), None);
    // Amina is in the example's lists, but not in this configuration's.
    choose(
        state.path(),
        "amina.diallo@senegal-mission.example.org",
        Some("en"),
        None,
    );
    // A command only reads: nothing is removed.
    let plan = config.herald(&WINDOW);
    assert!(plan.status.success(), "{}", stderr(&plan));
    assert_eq!(
        SqliteOutbox::open(state.path())
            .unwrap()
            .overrides()
            .unwrap()
            .len(),
        2
    );

    let mut daemon = Daemon::spawn(config.run_before_the_future_meeting(state.path()).args([
        "--speed",
        "1",
        "--no-watch",
    ]));
    let line = daemon.wait_for("no longer in the configuration is removed");
    assert!(
        line.contains("amina.diallo@senegal-mission.example.org"),
        "{line}"
    );
    daemon.wait_for("ready");
    let left: Vec<String> = SqliteOutbox::open(state.path())
        .unwrap()
        .overrides()
        .unwrap()
        .into_iter()
        .map(|o| o.address.as_str().to_owned())
        .collect();
    assert_eq!(left, vec![KENJI.to_owned()]);

    // Kenji leaves the list; a reload removes his too.
    config.write(
        "lists/permanent-missions.csv",
        "name,email,lists\nPriya Raman,priya.raman@india-mission.example.org,member-states\n",
    );
    daemon.signal("HUP");
    let line = daemon.wait_for("no longer in the configuration is removed");
    assert!(line.contains(KENJI), "{line}");
    daemon.wait_for("configuration reloaded");
    assert!(
        SqliteOutbox::open(state.path())
            .unwrap()
            .overrides()
            .unwrap()
            .is_empty()
    );
    daemon.signal("TERM");
    assert!(daemon.wait().success());
}

fn successor(from: &str, list: Option<&str>, name: &str, email: &str) -> NewRequest {
    NewRequest {
        from: AddressKey::of(from),
        list: list.map(str::to_owned),
        successor_name: name.to_owned(),
        successor_email: email.to_owned(),
    }
}

#[test]
fn requests_are_listed_settled_and_shown_in_the_digest() {
    let state = tempfile::tempdir().unwrap();
    let config = future_config(ConfigDir::example(), state.path());
    config.write(
        "herald.toml",
        &format!(
            "{}\n[digest]\nto = [\"ops@gcm.example.org\"]\nat = \"08:00\"\n",
            std::fs::read_to_string(config.path().join("herald.toml")).unwrap()
        ),
    );
    let outbox = SqliteOutbox::open(state.path()).unwrap();
    let first = outbox
        .add_request(
            &successor(
                KENJI,
                Some("member-states"),
                "Haruto Sato",
                "h.sato@japan-mission.example.org",
            ),
            at("2099-02-01T09:00:00Z"),
        )
        .unwrap();
    let second = outbox
        .add_request(
            &successor(
                "priya.raman@india-mission.example.org",
                None,
                "Arjun Mehta",
                "a.mehta@india-mission.example.org",
            ),
            at("2099-02-02T09:00:00Z"),
        )
        .unwrap();
    drop(outbox);

    let listed = config.herald(&["requests"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let text = stdout(&listed);
    assert!(
        text.contains("Haruto Sato <h.sato@japan-mission.example.org>"),
        "{text}"
    );
    assert!(text.contains("every list"), "{text}");
    assert!(text.contains("2 open requests"), "{text}");

    let digest = config.preview(&["--digest", "--to", "ops@gcm.example.org"]);
    let parsed = MessageParser::default().parse(&digest).unwrap();
    let body = parsed.body_text(0).unwrap().into_owned();
    assert!(body.contains("REQUESTS WAITING: 2"), "{body}");
    assert!(
        body.contains(&format!("#{} {KENJI} (member-states)", first.id)),
        "{body}"
    );
    assert!(
        body.contains("successor: Arjun Mehta <a.mehta@india-mission.example.org>"),
        "{body}"
    );

    let settle = config.herald(&["requests", "settle", &first.id.to_string()]);
    assert!(settle.status.success(), "{}", stderr(&settle));
    assert!(stdout(&settle).contains(&format!("request {} settled", first.id)));
    let again = config.herald(&["requests", "settle", &first.id.to_string()]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("was settled already"),
        "{}",
        stderr(&again)
    );
    let unknown = config.herald(&["requests", "settle", "999"]);
    assert!(
        stderr(&unknown).contains("no request 999"),
        "{}",
        stderr(&unknown)
    );

    let open = config.herald(&["requests", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&open.stdout).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([{
            "id": second.id,
            "from": "priya.raman@india-mission.example.org",
            "list": null,
            "successor_name": "Arjun Mehta",
            "successor_email": "a.mehta@india-mission.example.org",
            "asked": "2099-02-02T09:00:00Z",
            "settled": null,
        }])
    );
    let all = config.herald(&["requests", "--all", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert_eq!(rows[0]["id"], first.id);
    assert!(rows[0]["settled"].is_string(), "{rows}");

    let digest = config.preview(&["--digest", "--to", "ops@gcm.example.org"]);
    let parsed = MessageParser::default().parse(&digest).unwrap();
    let body = parsed.body_text(0).unwrap().into_owned();
    assert!(body.contains("REQUESTS WAITING: 1"), "{body}");
    assert!(!body.contains("Haruto Sato"), "{body}");
}
