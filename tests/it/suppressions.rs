//! Suppressions as the operator sees them: made through the outbox's public
//! API as the inbox's processor makes them (`take_incoming` with
//! `Effect::Suppress`), then `herald suppressions` (and `remove`),
//! `history`, `plan`, `check`, the daemon's journal and its status line.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use herald::clock::{Clock, SteppingClock};
use herald::config::Environment;
use herald::daemon::{self, Control, Options};
use herald::key::AddressKey;
use herald::outbox::{Effect, IncomingRow, Outbox, SqliteOutbox, State, Taken};
use herald::systemd::Notice;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::harness::{BEFORE_THE_FUTURE_MEETING, ConfigDir, FUTURE_ROADMAP, herald_command, stderr, stdout};

const AMINA: &str = "amina.diallo@senegal-mission.example.org";
const CARLOS: &str = "cmendoza@mexico-mission.example.org";
const ANNA: &str = "anna.keller@swiss-mission.example.org";
const SOFIA: &str = "sofia.herrera@business-council.example.org";

/// When the suppressions were made.
const SUPPRESSED_AT: &str = "2026-12-01T09:00:00Z";
const BOUNCE: &str = "a permanent bounce: 550 5.1.1 no such user";

/// [`FUTURE_ROADMAP`] with a second meeting three months later, whose
/// reminders are beyond the outbox's horizon when a daemon starts at
/// [`BEFORE_THE_FUTURE_MEETING`].
fn config() -> ConfigDir {
    let config = ConfigDir::example();
    config.write(
        "roadmaps/future.toml",
        &format!(
            "{FUTURE_ROADMAP}\n[[events]]\nid = \"later-meeting\"\ntitle = \"A later meeting\"\nkind = \"meeting\"\ndate = \"2099-06-01\"\nstart = \"15:00\"\nleads = [\"1d\"]\n"
        ),
    );
    config
}

/// Records an incoming message in the outbox of `state` with its effect,
/// as the inbox's processor does: `address` suppressed on `list` (`None`:
/// every list).
fn suppress(state: &Path, message_id: &str, address: &str, list: Option<&str>, reason: &str) {
    let outbox = SqliteOutbox::open(state).unwrap();
    let row = IncomingRow {
        message_id: message_id.to_owned(),
        received_at: SUPPRESSED_AT.parse().unwrap(),
        source: "maildir".to_owned(),
        kind: if list.is_some() { "unsubscribe" } else { "bounce" }.to_owned(),
        addresses: vec![address.to_owned()],
        permanent: list.is_none().then_some(true),
        status: None,
        diagnostic: None,
        send: None,
        from: Some("mailer-daemon@example.net".to_owned()),
        subject: None,
        outcome: reason.to_owned(),
        needs_human: false,
    };
    let effect = Effect::Suppress {
        address: AddressKey::of(address),
        list: list.map(str::to_owned),
        reason: reason.to_owned(),
    };
    let taken = outbox
        .take_incoming(&row, &effect, SUPPRESSED_AT.parse().unwrap())
        .unwrap();
    assert!(
        matches!(
            taken,
            Taken::Recorded {
                suppressed: Some(_),
                ..
            }
        ),
        "{taken:?}"
    );
}

/// Amina suppressed on every list (a permanent bounce), Carlos on
/// member-states (an unsubscribe), Anna on geneva-experts only (she stays
/// on member-states, the future meeting's list).
fn suppress_three(state: &Path) {
    suppress(state, "bounce-1@mx.example.net", AMINA, None, BOUNCE);
    suppress(
        state,
        "unsub-1@mexico-mission.example.org",
        CARLOS,
        Some("member-states"),
        "unsubscribed by mail",
    );
    suppress(
        state,
        "unsub-2@swiss-mission.example.org",
        ANNA,
        Some("geneva-experts"),
        "unsubscribed by mail",
    );
}

/// `herald run` as a rehearsal that starts and ends at
/// [`BEFORE_THE_FUTURE_MEETING`]: it reconciles (the future meeting's
/// reminders come into the outbox) and stops.
fn start_and_stop(config: &ConfigDir, state: &Path) -> Output {
    let output = herald_command(&config.path())
        .args(["run", "--no-watch", "--fast-forward", "--state-dir"])
        .arg(state)
        .args([
            "--rehearse-from",
            BEFORE_THE_FUTURE_MEETING,
            "--until",
            BEFORE_THE_FUTURE_MEETING,
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    output
}

/// `herald ARGS --state-dir STATE`.
fn herald_in(config: &ConfigDir, state: &Path, args: &[&str]) -> Output {
    herald_command(&config.path())
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap()
}

/// `herald ARGS` with the state directory `state` set as the environment
/// sets it (for the commands without --state-dir).
fn herald_with_state(config: &ConfigDir, state: &Path, args: &[&str]) -> Output {
    herald_command(&config.path())
        .args(args)
        .env("HERALD_STATE_DIR", state)
        .output()
        .unwrap()
}

fn states_of(state: &Path, address: &str) -> Vec<State> {
    SqliteOutbox::open(state)
        .unwrap()
        .entries()
        .unwrap()
        .into_iter()
        .filter(|e| e.spec.recipient == address)
        .map(|e| e.state)
        .collect()
}

#[test]
fn a_reconcile_suppresses_the_sends_to_suppressed_recipients_and_the_journal_says_so() {
    let config = config();
    let state = tempfile::tempdir().unwrap();
    suppress_three(state.path());
    let output = start_and_stop(&config, state.path());
    let log = stderr(&output);
    // Amina's three reminders and Carlos's three; not Anna's.
    assert!(
        log.lines()
            .any(|l| l.contains("sends just planned are suppressed") && l.contains("suppressed=6")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains(" ready") && l.contains("suppressed=6")),
        "{log}"
    );
    assert_eq!(states_of(state.path(), AMINA), vec![State::Suppressed; 3]);
    assert_eq!(states_of(state.path(), CARLOS), vec![State::Suppressed; 3]);
    assert_eq!(states_of(state.path(), ANNA), vec![State::Planned; 3]);
}

#[test]
fn suppressions_are_listed_as_a_table_and_as_json() {
    let config = config();
    let state = tempfile::tempdir().unwrap();
    suppress_three(state.path());
    let table = herald_in(&config, state.path(), &["suppressions"]);
    assert!(table.status.success(), "{}", stderr(&table));
    let table = stdout(&table);
    let amina = table.lines().find(|l| l.starts_with(AMINA)).expect(&table);
    for part in [
        "every list",
        "2026-12-01 09:00",
        "<bounce-1@mx.example.net>",
        BOUNCE,
    ] {
        assert!(amina.contains(part), "{part:?} not in {amina:?}");
    }
    let carlos = table.lines().find(|l| l.starts_with(CARLOS)).expect(&table);
    assert!(
        carlos.contains("member-states") && carlos.contains("unsubscribed by mail"),
        "{carlos}"
    );
    assert!(
        table.contains("3 addresses suppressed (3 suppressions)"),
        "{table}"
    );

    let json = herald_in(&config, state.path(), &["suppressions", "--json"]);
    assert!(json.status.success(), "{}", stderr(&json));
    let rows: Vec<Value> = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let amina = rows.iter().find(|r| r["address"] == AMINA).unwrap();
    assert_eq!(amina["list"], Value::Null);
    assert_eq!(amina["reason"], BOUNCE);
    assert_eq!(amina["since"], SUPPRESSED_AT);
    assert_eq!(amina["message_id"], "bounce-1@mx.example.net");
    let anna = rows.iter().find(|r| r["address"] == ANNA).unwrap();
    assert_eq!(anna["list"], "geneva-experts");

    // Without any, it says so.
    let empty = tempfile::tempdir().unwrap();
    SqliteOutbox::open(empty.path()).unwrap();
    let none = herald_in(&config, empty.path(), &["suppressions"]);
    assert!(none.status.success(), "{}", stderr(&none));
    assert!(stdout(&none).contains("no suppressions"), "{}", stdout(&none));
}

#[test]
fn history_shows_the_suppressed_sends_of_an_address_and_counts_them() {
    let config = config();
    let state = tempfile::tempdir().unwrap();
    suppress_three(state.path());
    start_and_stop(&config, state.path());
    let table = herald_in(
        &config,
        state.path(),
        &["history", "--state", "suppressed", "--to", AMINA],
    );
    assert!(table.status.success(), "{}", stderr(&table));
    let table = stdout(&table);
    let rows: Vec<&str> = table.lines().filter(|l| l.contains(AMINA)).collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(
        rows.iter().all(
            |r| r.contains("suppressed") && r.contains(&format!("suppressed since 2026-12-01: {BOUNCE}"))
        ),
        "{table}"
    );
    assert!(!table.contains(CARLOS), "{table}");
    assert!(table.contains(", 6 suppressed"), "{table}");

    let json = herald_in(
        &config,
        state.path(),
        &["history", "--state", "suppressed", "--to", AMINA, "--json"],
    );
    let rows: Vec<Value> = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r["state"] == "suppressed" && r["to"] == AMINA),
        "{rows:?}"
    );

    let unknown = herald_in(&config, state.path(), &["history", "--state", "supressed"]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("cancelled or suppressed"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn removing_a_suppression_plans_the_sends_still_to_come_again() {
    let config = config();
    let state = tempfile::tempdir().unwrap();
    suppress_three(state.path());
    start_and_stop(&config, state.path());
    let removed = herald_in(
        &config,
        state.path(),
        &[
            "suppressions",
            "remove",
            "Amina.Diallo@Senegal-Mission.example.org",
        ],
    );
    assert!(removed.status.success(), "{}", stderr(&removed));
    let said = stdout(&removed);
    assert!(
        said.contains(&format!("lifted 1 suppression of {AMINA} (every list)")),
        "{said}"
    );
    assert!(
        said.contains("3 suppressed sends still to come planned again"),
        "{said}"
    );
    assert_eq!(states_of(state.path(), AMINA), vec![State::Planned; 3]);
    assert_eq!(states_of(state.path(), CARLOS), vec![State::Suppressed; 3]);
    let left: Vec<Value> = serde_json::from_str(&stdout(&herald_in(
        &config,
        state.path(),
        &["suppressions", "--json"],
    )))
    .unwrap();
    assert!(left.iter().all(|r| r["address"] != AMINA), "{left:?}");

    // Again: nothing to lift, and it says what to do.
    let again = herald_in(&config, state.path(), &["suppressions", "remove", AMINA]);
    assert!(!again.status.success());
    let said = stderr(&again);
    assert!(
        said.contains(&format!("{AMINA} is not suppressed")) && said.contains("`herald suppressions` lists"),
        "{said}"
    );
}

#[test]
fn plan_marks_the_sends_to_suppressed_recipients_in_the_outbox_and_beyond_it() {
    let config = config();
    let state = tempfile::tempdir().unwrap();
    suppress_three(state.path());
    start_and_stop(&config, state.path());
    let args = ["plan", "--from", "2099-02-20", "--until", "2099-07-01"];
    let table = herald_with_state(&config, state.path(), &args);
    assert!(table.status.success(), "{}", stderr(&table));
    let table = stdout(&table);
    let marked = format!("suppressed since 2026-12-01: {BOUNCE}");
    // The later meeting is beyond the outbox's horizon: listed, marked.
    let listed: Vec<&str> = table
        .lines()
        .filter(|l| l.contains(AMINA) && !l.starts_with('('))
        .collect();
    assert_eq!(listed.len(), 1, "{table}");
    assert!(
        listed[0].contains("later-meeting") && listed[0].contains(&marked),
        "{table}"
    );
    // Those in the outbox are settled: left out, once each, saying why.
    let left_out: Vec<&str> = table
        .lines()
        .filter(|l| {
            l.starts_with("(not listed") && l.contains(&format!("`herald suppressions remove {AMINA}`"))
        })
        .collect();
    assert_eq!(left_out.len(), 3, "{table}");
    assert!(
        left_out
            .iter()
            .all(|l| l.contains("future-meeting") && l.contains(&marked)),
        "{table}"
    );
    // Unsubscribed from member-states: the later meeting (member-states) too.
    let carlos_later = table
        .lines()
        .find(|l| l.contains(CARLOS) && l.contains("later-meeting"))
        .expect(&table);
    assert!(
        carlos_later.contains("suppressed since 2026-12-01: unsubscribed by mail"),
        "{carlos_later}"
    );
    // Anna is suppressed on geneva-experts only: her member-states sends go.
    assert!(
        table
            .lines()
            .filter(|l| l.contains(ANNA))
            .all(|l| !l.contains("suppressed")),
        "{table}"
    );
    assert!(table.contains("of them suppressed"), "{table}");

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let json = herald_with_state(&config, state.path(), &json_args);
    let rows: Vec<Value> = serde_json::from_str(&stdout(&json)).unwrap();
    let amina: Vec<&Value> = rows.iter().filter(|r| r["to"] == AMINA).collect();
    assert_eq!(amina.len(), 1, "only the later meeting's: {amina:?}");
    assert_eq!(amina[0]["suppressed"]["reason"], BOUNCE);
    assert_eq!(amina[0]["suppressed"]["since"], SUPPRESSED_AT);
    assert_eq!(amina[0]["suppressed"]["list"], Value::Null);
    let anna: Vec<&Value> = rows.iter().filter(|r| r["to"] == ANNA).collect();
    assert!(
        !anna.is_empty() && anna.iter().all(|r| r["suppressed"].is_null()),
        "{anna:?}"
    );
}

#[test]
fn check_warns_of_each_suppressed_focal_point_at_its_line_and_still_passes() {
    let config = config();
    let state = tempfile::tempdir().unwrap();
    suppress_three(state.path());
    suppress(state.path(), "bounce-2@mx.example.net", SOFIA, None, BOUNCE);
    let output = herald_with_state(&config, state.path(), &["check"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let said = stdout(&output);
    let csv = config.path().join("lists/permanent-missions.csv");
    let warning = |address: &str| {
        said.lines()
            .find(|l| l.starts_with("warning: ") && l.contains(&format!(": {address} is suppressed")))
            .unwrap_or_else(|| panic!("no warning of {address} in:\n{said}"))
            .to_owned()
    };
    // Amina is on the CSV's second line (after its header).
    let amina = warning(AMINA);
    assert!(
        amina.starts_with(&format!("warning: {}:2: ", csv.display())),
        "{amina}"
    );
    assert!(amina.contains("on every list since 2026-12-01"), "{amina}");
    assert!(
        amina.contains(&format!("`herald suppressions remove {AMINA}`")),
        "{amina}"
    );
    let anna = warning(ANNA);
    assert!(anna.contains("on the list \"geneva-experts\""), "{anna}");
    assert!(
        anna.contains(&format!("take them off \"geneva-experts\" in {}", csv.display())),
        "{anna}"
    );
    // In a TOML list, the line of the address.
    let toml = config.path().join("lists/civil-society.toml");
    let line = std::fs::read_to_string(&toml)
        .unwrap()
        .lines()
        .position(|l| l.contains(SOFIA))
        .unwrap()
        + 1;
    assert!(
        warning(SOFIA).starts_with(&format!("warning: {}:{line}: ", toml.display())),
        "{said}"
    );
    // The future meetings' 4 reminders each to Amina and Carlos (Anna gets
    // them through member-states; Sofía is on no list of theirs).
    assert!(
        said.contains("still to come, 8 of those to suppressed recipients (not sent; see the warnings)"),
        "{said}"
    );
    // One warning each, though Anna and Amina are on two lists.
    assert_eq!(
        said.lines().filter(|l| l.contains(" is suppressed on ")).count(),
        4,
        "{said}"
    );

    // Without an outbox, nothing is said of suppressions.
    let none = tempfile::tempdir().unwrap();
    let output = herald_with_state(&config, none.path(), &["check"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stdout(&output).contains("suppressed"), "{}", stdout(&output));
}

#[test]
fn a_letter_sent_now_goes_to_no_suppressed_recipient() {
    let config = config();
    let state = tempfile::tempdir().unwrap();
    suppress_three(state.path());
    // Its list is member-states: Amina (every list) and Carlos (member-states) are out.
    let dry = herald_in(
        &config,
        state.path(),
        &["send", "--letter", "modalities-roadmap-2017", "--dry-run"],
    );
    assert!(dry.status.success(), "{}", stderr(&dry));
    let said = stdout(&dry);
    assert!(
        said.contains("dry run: 7 messages would be sent, one per recipient (2 recipients are suppressed)"),
        "{said}"
    );
    let amina = said.lines().find(|l| l.starts_with(AMINA)).expect(&said);
    assert!(
        amina.ends_with(&format!("(not sent: suppressed since 2026-12-01: {BOUNCE})")),
        "{amina}"
    );
    let sent = herald_in(
        &config,
        state.path(),
        &["send", "--letter", "modalities-roadmap-2017"],
    );
    assert!(sent.status.success(), "{}", stderr(&sent));
    let said = stdout(&sent);
    assert!(said.contains("2 recipients are suppressed"), "{said}");
    assert!(said.contains("7 sent, 0 to retry"), "{said}");
    let delivered: Vec<String> = std::fs::read_dir(state.path().join("maildir/new"))
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    assert_eq!(delivered.len(), 7);
    assert!(
        delivered
            .iter()
            .all(|m| !m.contains(AMINA) && !m.contains(CARLOS)),
        "a suppressed recipient got the letter"
    );
    assert_eq!(states_of(state.path(), AMINA), vec![State::Suppressed]);
}

#[test]
fn the_relay_s_limits_are_foreseen_without_the_sends_to_suppressed_recipients() {
    let config = crate::foresight::limited("per_day = 15");
    let state = tempfile::tempdir().unwrap();
    for (name, address) in [("amina", AMINA), ("carlos", CARLOS), ("anna", ANNA)] {
        suppress(
            state.path(),
            &format!("bounce-{name}@mx.example.net"),
            address,
            None,
            BOUNCE,
        );
    }
    let none = tempfile::tempdir().unwrap();
    for command in ["check", "plan"] {
        let foreseen = |state: &Path| {
            let output = herald_with_state(&config, state, &[command]);
            assert!(output.status.success(), "{}", stderr(&output));
            stdout(&output)
        };
        // 18 reminders on 1 March, 3 over the day's 15; without three
        // recipients, 12: none.
        let all = foreseen(none.path());
        assert!(
            all.contains("2099-03-01: 18 sends") && all.contains("(6 messages after their due instant"),
            "{command}:\n{all}"
        );
        let fewer = foreseen(state.path());
        assert!(
            !fewer.contains("more sends than per_day") && !fewer.contains("would leave late"),
            "{command}:\n{fewer}"
        );
    }
}

/// The daemon in this process on a stepping clock from and until
/// [`BEFORE_THE_FUTURE_MEETING`], telling a recording notifier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_s_status_counts_the_suppressed_sends_still_to_come() {
    let config = config();
    let state = tempfile::tempdir().unwrap();
    suppress_three(state.path());
    let at: Timestamp = BEFORE_THE_FUTURE_MEETING.parse().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SteppingClock::new(at));
    let mut options = Options::new(config.path(), Environment::default(), clock);
    options.state_dir = Some(state.path().to_owned());
    options.until = Some(at);
    options.tick = SignedDuration::from_hours(24);
    let (notifier, recording) = herald::systemd::Notifier::recording(None);
    options.notifier = notifier;
    let (_control, receiver) = mpsc::channel::<Control>(1);
    daemon::run(options, receiver).await.unwrap();
    let ready = recording
        .messages()
        .into_iter()
        .find(|m| m.contains(&Notice::Ready))
        .expect("READY");
    let status = ready
        .iter()
        .find_map(|notice| match notice {
            Notice::Status(status) => Some(status.clone()),
            _ => None,
        })
        .expect("a status with READY");
    // 9 focal points on member-states, 3 reminders each in the horizon:
    // Amina's and Carlos's suppressed.
    assert_eq!(status, "next send 2099-02-28T20:00Z, 21 pending, 6 suppressed");
}
