//! The relay's limits (`per_minute`, `per_day` in `[delivery.smtp]`), on a
//! stepping clock against aiosmtpd: a burst that starts early enough to end
//! on time, a cancellation that does not wait behind it, a restart that
//! keeps the day's count, and a rehearsal that steps through the waits and
//! records the sends spread as they would be.

use std::sync::Arc;

use herald::clock::{Clock, SteppingClock};
use herald::config::Environment;
use herald::daemon::{self, Control, Options};
use herald::key::SendKind;
use herald::outbox::{Outbox, SqliteOutbox, State};
use jiff::{SignedDuration, Timestamp};
use mail_parser::MessageParser;
use tokio::sync::mpsc;

use crate::daemon::smtp_config;
use crate::harness::ConfigDir;
use crate::support::aiosmtpd::Sink;

/// How many focal points the burst goes to.
const FOCAL_POINTS: usize = 600;

/// The big meeting starts at 12:00 in New York (17:00Z, winter time); its
/// "2h" reminders are due at 15:00Z.
const DUE: &str = "2099-03-01T15:00:00Z";

/// A meeting whose 600 reminders are due at [`DUE`], and a board meeting
/// the next day with one focal point; delivery over SMTP to `port` with
/// `limits` (lines of `[delivery.smtp]`) and `notice_delay`.
fn burst_config(port: u16, limits: &str, notice_delay: &str) -> ConfigDir {
    let config = smtp_config(port, 2);
    config.remove("roadmaps");
    config.remove("letters");
    config.write("lists/civil-society.toml", "");
    let mut csv = String::from("name,email,lists\n");
    for i in 0..FOCAL_POINTS {
        csv.push_str(&format!("Focal Point {i},fp{i:04}@example.org,member-states\n"));
    }
    csv.push_str("Board Member,board@example.org,board\n");
    config.write("lists/permanent-missions.csv", &csv);
    config.write("roadmaps/burst.toml", &roadmap(true));
    config.edit(
        "config/herald.toml",
        "notice_delay = \"10m\"",
        &format!("notice_delay = \"{notice_delay}\""),
    );
    let text = std::fs::read_to_string(config.path().join("herald.toml")).unwrap();
    config.write(
        "herald.toml",
        &format!("{text}{limits}\n\n[lists.board]\nname = \"The board\"\n"),
    );
    config
}

/// The roadmap of the burst, with the board's meeting or without it.
fn roadmap(with_board: bool) -> String {
    let mut text = String::from(
        "id = \"burst\"\ntitle = \"Burst\"\nvenue = \"new-york\"\nlists = [\"member-states\"]\n\n\
         [[events]]\nid = \"big-meeting\"\ntitle = \"A big meeting\"\nkind = \"meeting\"\n\
         date = \"2099-03-01\"\nstart = \"12:00\"\nleads = [\"2h\"]\n",
    );
    if with_board {
        text.push_str(
            "\n[[events]]\nid = \"board-meeting\"\ntitle = \"The board meets\"\nkind = \"meeting\"\n\
             date = \"2099-03-02\"\nstart = \"12:00\"\nleads = [\"1d\"]\nlists = [\"board\"]\n",
        );
    }
    text
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// Options for a daemon on a stepping clock from `from` until `until`.
fn stepping(config: &ConfigDir, state: &std::path::Path, from: &str, until: Timestamp) -> Options {
    let clock: Arc<dyn Clock> = Arc::new(SteppingClock::new(at(from)));
    let mut options = Options::new(config.path(), Environment::default(), clock);
    options.state_dir = Some(state.to_owned());
    options.until = Some(until);
    options.tick = SignedDuration::from_hours(24);
    options
}

async fn run(options: Options) {
    let (_control, receiver) = mpsc::channel::<Control>(1);
    daemon::run(options, receiver)
        .await
        .expect("the daemon runs to the end of the rehearsal");
}

/// When the relay took each send that was sent (its attempt), with its
/// key, in the order they left.
fn departures(state: &std::path::Path) -> Vec<(Timestamp, String)> {
    let outbox = SqliteOutbox::open(state).unwrap();
    let mut sent: Vec<(Timestamp, String)> = outbox
        .entries()
        .unwrap()
        .into_iter()
        .filter(|entry| entry.state == State::Sent)
        .map(|entry| {
            let key = entry.spec.key.as_str().to_owned();
            // A send put back unsent at a stop has a "retry" before it.
            let attempts = outbox.attempts(&key).unwrap();
            let sent: Vec<_> = attempts
                .iter()
                .filter(|(_, outcome, _)| outcome == "sent")
                .collect();
            assert_eq!(sent.len(), 1, "{key}: {attempts:?}");
            assert_eq!(Some(sent[0].0), entry.sent_at, "{key}");
            (sent[0].0, key)
        })
        .collect();
    sent.sort();
    sent
}

/// No 60-second window holds more than `per_minute` departures.
fn assert_within_the_minute_s_limit(times: &[Timestamp], per_minute: usize) {
    for (i, first) in times.iter().enumerate() {
        let end = *first + SignedDuration::from_secs(60);
        let in_window = times[i..].iter().take_while(|t| **t < end).count();
        assert!(
            in_window <= per_minute,
            "{in_window} sends in the minute from {first}"
        );
    }
}

/// 600 reminders due at 15:00 under 30 a minute start at 14:40 and the last
/// leaves at 15:00, two seconds apart, each dated 15:00; and the rehearsal
/// steps through the waits (it takes seconds, not the 20 minutes of real
/// time the limiter used to sleep).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_under_per_minute_starts_early_and_ends_on_time() {
    let sink = Sink::plain();
    let config = burst_config(sink.port(), "per_minute = 30", "10m");
    let state = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    run(stepping(
        &config,
        state.path(),
        "2099-03-01T14:00:00Z",
        at("2099-03-01T15:30:00Z"),
    ))
    .await;
    eprintln!("600 messages at 30 a minute rehearsed in {:?}", started.elapsed());

    let sent = departures(state.path());
    let reminders: Vec<Timestamp> = sent
        .iter()
        .filter(|(_, key)| key.starts_with("reminder/big-meeting/"))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(reminders.len(), FOCAL_POINTS);
    let (first, last) = (reminders[0], *reminders.last().unwrap());
    assert!(first >= at("2099-03-01T14:40:00Z"), "the first left at {first}");
    assert_eq!(last, at(DUE), "the last leaves at its due instant");
    // Spread at the limit's spacing, as they would leave: 2 s apart.
    for pair in reminders.windows(2) {
        assert_eq!(
            pair[1].duration_since(pair[0]),
            SignedDuration::from_secs(2),
            "{pair:?}"
        );
    }
    assert_within_the_minute_s_limit(&reminders, 30);

    // Leaving early changes nothing in the message: it is dated when due.
    let received = sink.received();
    assert_eq!(received.len(), FOCAL_POINTS);
    for r in received.iter().take(3).chain(received.iter().rev().take(3)) {
        let message = MessageParser::default().parse(&r.bytes).unwrap();
        let date = message.date().expect("a Date header").to_rfc3339();
        assert_eq!(at(&date), at(DUE), "{date}");
        assert!(
            message.body_text(0).unwrap().contains("A big meeting"),
            "{:?}",
            message.body_text(0)
        );
    }
}

/// A cancellation due at 14:50, in the middle of the burst, leaves within
/// one message of 14:50: it is claimed next, not after the reminders
/// claimed before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_due_during_a_burst_goes_within_one_message() {
    let sink = Sink::plain();
    let config = burst_config(sink.port(), "per_minute = 30", "20m");
    let state = tempfile::tempdir().unwrap();
    // Calendars are told of both meetings; nothing is sent yet.
    run(stepping(
        &config,
        state.path(),
        "2099-03-01T14:00:00Z",
        at("2099-03-01T14:30:00Z"),
    ))
    .await;
    assert_eq!(sink.received().len(), 0);
    // At 14:30 the board's meeting is called off: its cancellation is due
    // notice_delay (20 minutes) later, at 14:50, as the burst goes on.
    config.write("roadmaps/burst.toml", &roadmap(false));
    run(stepping(
        &config,
        state.path(),
        "2099-03-01T14:30:00Z",
        at("2099-03-01T15:30:00Z"),
    ))
    .await;

    let sent = departures(state.path());
    let cancellation: Vec<&(Timestamp, String)> = sent
        .iter()
        .filter(|(_, key)| key.starts_with("cancellation/board-meeting/"))
        .collect();
    assert_eq!(cancellation.len(), 1, "{cancellation:?}");
    let (left, _) = cancellation[0];
    let due = at("2099-03-01T14:50:00Z");
    let reminders: Vec<Timestamp> = sent
        .iter()
        .filter(|(_, key)| key.starts_with("reminder/big-meeting/"))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(reminders.len(), FOCAL_POINTS);
    assert!(
        reminders[0] < due,
        "the burst was under way at 14:50: {}",
        reminders[0]
    );
    assert!(*left >= due, "not before its due instant: {left}");
    let ahead = reminders.iter().filter(|t| **t >= due && *t < left).count();
    assert!(
        ahead <= 1,
        "{ahead} reminders left between 14:50 and the cancellation at {left}"
    );
    assert!(*left <= due + SignedDuration::from_secs(4), "{left}");
    // The burst took one message's time longer for it, and no more.
    assert!(*reminders.last().unwrap() <= at(DUE) + SignedDuration::from_secs(2));
}

/// With `per_day = 100`, a daemon stopped after about half of them and a new
/// one on the same state directory send 100 in all within the day: the
/// outbox's record of what the relay took keeps the day's count. The
/// status then says the quota is used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_burst_keeps_the_day_s_count() {
    const PER_DAY: usize = 100;
    let sink = Sink::plain();
    let config = burst_config(
        sink.port(),
        &format!("per_minute = 30\nper_day = {PER_DAY}"),
        "10m",
    );
    let state = tempfile::tempdir().unwrap();

    let options = stepping(
        &config,
        state.path(),
        "2099-03-01T14:00:00Z",
        at("2099-03-02T14:00:00Z"),
    );
    let (control, receiver) = mpsc::channel::<Control>(1);
    let first = tokio::spawn(daemon::run(options, receiver));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while sink.received().len() < PER_DAY / 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the burst never got under way"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    control.send(Control::Stop).await.unwrap();
    first.await.unwrap().expect("the first daemon stops cleanly");
    let before = departures(state.path());
    assert!(
        before.len() >= PER_DAY / 2 && before.len() < PER_DAY,
        "{} sent before the restart",
        before.len()
    );

    eprintln!(
        "{} sent before the restart, the last at {}",
        before.len(),
        before.last().unwrap().0
    );
    // The new daemon starts where the first stopped, and runs for 20 hours.
    let restart = before.last().unwrap().0 + SignedDuration::from_secs(1);
    let until = restart + SignedDuration::from_hours(20);
    let mut options = stepping(&config, state.path(), &restart.to_string(), until);
    let (notifier, notices) = herald::systemd::Notifier::recording(None);
    options.notifier = notifier;
    run(options).await;

    let sent = departures(state.path());
    assert_eq!(
        sent.len(),
        PER_DAY,
        "the remainder of the day's quota, and no more"
    );
    assert_eq!(sink.received().len(), PER_DAY);
    let times: Vec<Timestamp> = sent.iter().map(|(t, _)| *t).collect();
    assert_within_the_minute_s_limit(&times, 30);
    let statuses: Vec<String> = notices
        .messages()
        .into_iter()
        .flatten()
        .filter_map(|notice| match notice {
            herald::systemd::Notice::Status(status) => Some(status),
            _ => None,
        })
        .collect();
    assert!(
        statuses
            .iter()
            .any(|s| s.ends_with("relay quota: 100 of 100 a day used")),
        "{statuses:?}"
    );
    // The rest waits for the next day, still planned.
    let big = |key: &str| key.starts_with("reminder/big-meeting/");
    let sent_big = sent.iter().filter(|(_, key)| big(key)).count();
    let outbox = SqliteOutbox::open(state.path()).unwrap();
    let planned = outbox
        .entries_in(State::Planned)
        .unwrap()
        .into_iter()
        .filter(|e| e.spec.key.kind() == SendKind::Reminder && big(e.spec.key.as_str()))
        .count();
    assert_eq!(planned, FOCAL_POINTS - sent_big);
}

/// `herald run --fast-forward` with a limit steps its clock through the
/// limiter's waits, so 600 messages at 30 a minute rehearse in seconds
/// (they used to take 20 minutes of real time, 2 s a message), and `herald
/// history` shows them spread as they would be, 2 s apart, not all at the
/// instant they were due.
#[test]
fn a_fast_forward_rehearsal_records_the_sends_spread_at_the_limit() {
    let sink = Sink::plain();
    let config = burst_config(sink.port(), "per_minute = 30", "10m");
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().display().to_string();
    let started = std::time::Instant::now();
    let output = config.herald(&[
        "run",
        "--state-dir",
        &state_dir,
        "--rehearse-from",
        "2099-03-01T14:00:00Z",
        "--until",
        "2099-03-01T15:30:00Z",
        "--fast-forward",
        // The sink stands for the relay.
        "--real-recipients",
    ]);
    assert!(output.status.success(), "{}", crate::harness::stderr(&output));
    eprintln!("rehearsed in {:?}", started.elapsed());
    assert_eq!(sink.received().len(), FOCAL_POINTS);

    let history = config.herald(&["history", "--state-dir", &state_dir, "--state", "sent", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&crate::harness::stdout(&history)).unwrap();
    let mut sent: Vec<Timestamp> = rows
        .iter()
        .filter(|row| row["event"] == "big-meeting")
        .map(|row| at(row["sent_at"].as_str().expect("a sent_at")))
        .collect();
    sent.sort();
    assert_eq!(sent.len(), FOCAL_POINTS);
    for pair in sent.windows(2) {
        assert_eq!(
            pair[1].duration_since(pair[0]),
            SignedDuration::from_secs(2),
            "{pair:?}"
        );
    }
    assert_eq!(*sent.last().unwrap(), at(DUE));
}
