//! `herald run`: every planned mail delivered once, over real SMTP, through
//! faults, restarts and a crash; notices held for `notice_delay` after a
//! change of the roadmap; reloads in the middle of a burst.

use std::collections::HashMap;
use std::sync::Arc;

use herald::clock::{Clock, ManualClock, SteppingClock};
use herald::config::Environment;
use herald::daemon::{self, Control, Options};
use herald::outbox::{Outbox, SqliteOutbox, State};
use herald::plan::{self, Window};
use jiff::{SignedDuration, Timestamp};
use mail_parser::MessageParser;
use tokio::sync::mpsc;

use crate::harness::ConfigDir;
use crate::support::aiosmtpd::Sink;
use crate::support::smtp_faults::{Fault, FaultServer};

/// The example config, delivering over plain SMTP to 127.0.0.1:`port`.
pub fn smtp_config(port: u16, max_connections: usize) -> ConfigDir {
    let config = ConfigDir::example();
    config.edit(
        "config/herald.toml",
        "transport = \"maildir\"",
        "transport = \"smtp\"",
    );
    let text = std::fs::read_to_string(config.path().join("herald.toml")).unwrap();
    config.write(
        "herald.toml",
        &format!(
            "{text}\n[delivery.smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\ntimeout = \"3s\"\nmax_connections = {max_connections}\n"
        ),
    );
    config
}

/// Runs the daemon in this process on a stepping clock from `from` until
/// `until`, and returns the outbox.
pub async fn run_between(
    config: &ConfigDir,
    state: &std::path::Path,
    from: &str,
    until: &str,
) -> SqliteOutbox {
    let clock: Arc<dyn Clock> = Arc::new(SteppingClock::new(from.parse().unwrap()));
    let mut options = Options::new(config.path(), Environment::default(), clock);
    options.state_dir = Some(state.to_owned());
    options.until = Some(until.parse().unwrap());
    options.tick = SignedDuration::from_hours(24);
    let (_control, receiver) = mpsc::channel::<Control>(1);
    daemon::run(options, receiver)
        .await
        .expect("the daemon runs to the end of the rehearsal");
    SqliteOutbox::open(state).unwrap()
}

pub fn expected_keys(config: &ConfigDir, from: &str, until: &str) -> Vec<String> {
    let model = config.load().unwrap();
    let window = Window {
        from: Some(from.parse().unwrap()),
        until: Some(until.parse().unwrap()),
    };
    plan::plan(&model, window)
        .into_iter()
        .map(|send| send.key.as_str().to_owned())
        .collect()
}

pub fn message_ids(messages: impl Iterator<Item = Vec<u8>>) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for bytes in messages {
        let message = MessageParser::default()
            .parse(&bytes)
            .expect("a parseable message");
        *counts
            .entry(message.message_id().expect("a Message-ID").to_owned())
            .or_insert(0) += 1;
    }
    counts
}

/// Asserts that every send of `expected` is in the outbox, sent, after one
/// attempt (a send held back by a paused relay is not an attempt), and
/// returns their entries, in `expected`'s order.
fn each_sent_after_one_attempt(outbox: &SqliteOutbox, expected: &[String]) -> Vec<herald::outbox::Entry> {
    let entries = outbox.entries().unwrap();
    expected
        .iter()
        .map(|key| {
            let entry = entries
                .iter()
                .find(|e| e.spec.key.as_str() == key)
                .expect("every planned send is in the outbox");
            assert_eq!(
                (entry.state, entry.attempts),
                (State::Sent, 1),
                "{key}: {entry:?}"
            );
            entry.clone()
        })
        .collect()
}

/// The attempts of `expected`'s sends that a paused relay held back, with
/// their replies.
fn paused_attempts(outbox: &SqliteOutbox, expected: &[String]) -> Vec<(Timestamp, String, Option<String>)> {
    expected
        .iter()
        .flat_map(|key| outbox.attempts(key).unwrap())
        .filter(|(_, outcome, _)| outcome == "paused")
        .collect()
}

const FROM: &str = "2017-09-13T00:00:00Z";
const UNTIL: &str = "2017-11-01T00:00:00Z";

/// The 2017 roadmap, replayed against aiosmtpd: every planned message
/// arrives exactly once, with its headers and both parts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_planned_mail_arrives_once_at_a_real_smtp_server() {
    let sink = Sink::plain();
    let config = smtp_config(sink.port(), 4);
    let state = tempfile::tempdir().unwrap();
    let expected = expected_keys(&config, FROM, UNTIL);
    assert!(expected.len() > 100, "{}", expected.len());

    let outbox = run_between(&config, state.path(), FROM, UNTIL).await;

    let received = sink.received();
    assert_eq!(received.len(), expected.len(), "one message per planned send");
    let ids = message_ids(received.iter().map(|r| r.bytes.clone()));
    assert_eq!(ids.len(), expected.len(), "no Message-ID twice");
    for r in &received {
        assert_eq!(
            r.rcpt_tos.len(),
            1,
            "one recipient per message, never a Bcc fan-out"
        );
        let message = MessageParser::default().parse(&r.bytes).unwrap();
        assert!(message.body_text(0).is_some() && message.body_html(0).is_some());
        assert_eq!(
            message.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-generated")
        );
        let to = message
            .to()
            .and_then(|t| t.first())
            .and_then(|a| a.address())
            .unwrap()
            .to_lowercase();
        assert_eq!(to, r.rcpt_tos[0].to_lowercase());
    }
    let entries = outbox.entries().unwrap();
    for entry in each_sent_after_one_attempt(&outbox, &expected) {
        assert!(
            entry.last_reply.as_deref().is_some_and(|r| r.starts_with("250")),
            "{}: {:?}",
            entry.spec.key,
            entry.last_reply
        );
    }
    // A first start does not fill the history with the past: nothing due
    // before the late window (6 hours) before it is in the outbox.
    let first_start = FROM.parse::<Timestamp>().unwrap() - SignedDuration::from_hours(6);
    assert!(
        entries.iter().all(|e| e.spec.due >= first_start),
        "{:?}",
        entries.iter().map(|e| e.spec.due).min()
    );
}

/// One server misbehaviour per case: each message ends delivered, retried
/// then delivered, or failed with the server's reply, and the daemon runs on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_end_delivered_retried_or_failed_with_the_reply() {
    struct Case {
        fault: Fault,
        state: State,
        attempts: u32,
        reply: &'static str,
    }
    let cases = [
        Case {
            fault: Fault::OnConnect("421 4.3.2 Service not available"),
            state: State::Sent,
            attempts: 2,
            reply: "250",
        },
        Case {
            fault: Fault::AtRcpt("451 4.3.0 Try again later"),
            state: State::Sent,
            attempts: 2,
            reply: "250",
        },
        Case {
            fault: Fault::AtRcpt("452 4.2.2 Mailbox full"),
            state: State::Sent,
            attempts: 2,
            reply: "250",
        },
        Case {
            fault: Fault::AfterData("451 4.3.0 Queue busy"),
            state: State::Sent,
            attempts: 2,
            reply: "250",
        },
        Case {
            fault: Fault::DropMidData,
            state: State::Sent,
            attempts: 2,
            reply: "250",
        },
        Case {
            fault: Fault::StallAfterData,
            state: State::Sent,
            attempts: 2,
            reply: "250",
        },
        Case {
            fault: Fault::AfterData("554 5.7.1 Rejected as spam"),
            state: State::Failed,
            attempts: 1,
            reply: "554 5.7.1 Rejected as spam",
        },
        Case {
            fault: Fault::AtRcpt("550 5.1.1 No such user"),
            state: State::Failed,
            attempts: 1,
            reply: "550 5.1.1 No such user",
        },
    ];
    // One send: the first reading's 2h reminder to one focal point.
    let from = "2017-10-02T12:30:00Z";
    let until = "2017-10-02T18:00:00Z";
    for case in cases {
        let server = FaultServer::builder()
            .first(case.fault)
            .then(Fault::Accept)
            .start()
            .await;
        let config = smtp_config(server.port(), 1);
        config.with_one_focal_point(Some("2h"));
        let expected = expected_keys(&config, from, until);
        assert_eq!(expected.len(), 1, "{expected:?}");
        let state = tempfile::tempdir().unwrap();
        let outbox = run_between(&config, state.path(), from, until).await;
        let entry = outbox
            .entries()
            .unwrap()
            .into_iter()
            .find(|e| e.spec.key.as_str() == expected[0])
            .unwrap();
        assert_eq!(entry.state, case.state, "{:?}: {entry:?}", case.fault);
        assert_eq!(entry.attempts, case.attempts, "{:?}", case.fault);
        assert!(
            entry
                .last_reply
                .as_deref()
                .is_some_and(|r| r.starts_with(case.reply)),
            "{:?}: {:?}",
            case.fault,
            entry.last_reply
        );
        let delivered = server.accepted().len();
        assert_eq!(
            delivered,
            usize::from(case.state == State::Sent),
            "{:?}",
            case.fault
        );
        // A retried message keeps its Message-ID: the attempts log shows the failure, then the success.
        let attempts = outbox.attempts(&expected[0]).unwrap();
        assert_eq!(attempts.len() as u32, case.attempts, "{attempts:?}");
    }
}

/// Stop before a due instant, start after it: inside the late window the
/// send goes out once, late; outside it, it is recorded as skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_missed_while_down_goes_out_late_or_is_skipped() {
    let server = FaultServer::start(Fault::Accept).await;
    let config = smtp_config(server.port(), 2);
    config.with_one_focal_point(Some("2h"));
    let state = tempfile::tempdir().unwrap();
    // Due 2017-10-02T17:00Z (13:00 New York). The daemon runs until 16:00, then is down.
    let outbox = run_between(
        &config,
        state.path(),
        "2017-10-02T12:00:00Z",
        "2017-10-02T16:00:00Z",
    )
    .await;
    let planned = outbox.entries().unwrap();
    assert!(
        planned
            .iter()
            .any(|e| e.spec.key.subject() == "first-reading" && e.state == State::Planned),
        "{planned:?}"
    );
    drop(outbox);
    // Restarted at 19:30, 2.5 hours late: inside the 6 hours.
    let outbox = run_between(
        &config,
        state.path(),
        "2017-10-02T19:30:00Z",
        "2017-10-02T20:00:00Z",
    )
    .await;
    let first = outbox
        .entries()
        .unwrap()
        .into_iter()
        .find(|e| e.spec.key.subject() == "first-reading")
        .unwrap();
    assert_eq!(first.state, State::Sent);
    assert_eq!(server.accepted().len(), 1);
    drop(outbox);
    // The informal consultations' 2h reminder was due 2017-10-05T12:00Z; restart 7 hours later.
    let outbox = run_between(
        &config,
        state.path(),
        "2017-10-05T19:00:00Z",
        "2017-10-05T20:00:00Z",
    )
    .await;
    let second = outbox
        .entries()
        .unwrap()
        .into_iter()
        .find(|e| e.spec.key.subject() == "informal-consultations-2017-10-05")
        .unwrap();
    // It was beyond the outbox's horizon when herald stopped, so the
    // restart finds it in the plan of the time it was down, too late.
    assert_eq!(second.state, State::Skipped);
    assert!(
        second.reason.as_deref().is_some_and(|r| r.starts_with(
            "due at 2017-10-05T12:00:00Z but planned only at 2017-10-05T19:00:00Z, more than the late window (6h) after"
        )),
        "{:?}",
        second.reason
    );
    assert_eq!(
        server.accepted().len(),
        1,
        "the late send went out once, the missed one never"
    );
}

/// Editing the config between runs: a new focal point gets the future
/// reminders, a removed one loses them, a moved event moves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_follows_the_config() {
    let config = ConfigDir::example();
    let state = tempfile::tempdir().unwrap();
    let maildir = tempfile::tempdir().unwrap();
    config.edit(
        "config/herald.toml",
        "maildir = \"maildir\"",
        &format!("maildir = {:?}", maildir.path().display().to_string()),
    );
    let outbox = run_between(
        &config,
        state.path(),
        "2017-09-13T00:00:00Z",
        "2017-09-25T00:00:00Z",
    )
    .await;
    let planned_before = outbox.counts().unwrap().planned;
    drop(outbox);
    // Remove Kenji, add a new focal point, move the first reading by a day.
    config.edit("config/lists/permanent-missions.csv", "Kenji Watanabe,k.watanabe@japan-mission.example.org,Permanent Mission of Japan,Excellency,en,America/New_York,member-states\n", "");
    config.write("lists/new.toml", "[[focal_points]]\nname = \"Nour Haddad\"\nemail = \"nour.haddad@example.org\"\nlists = [\"member-states\"]\n");
    config.edit(
        "config/roadmaps/2017-modalities-resolution.toml",
        "date = \"2017-10-02\"",
        "date = \"2017-10-03\"",
    );
    let outbox = run_between(
        &config,
        state.path(),
        "2017-09-25T00:00:00Z",
        "2017-09-25T00:00:01Z",
    )
    .await;
    let entries = outbox.entries().unwrap();
    let kenji: Vec<_> = entries
        .iter()
        .filter(|e| {
            e.spec.recipient.starts_with("k.watanabe")
                && e.spec.due >= "2017-09-25T00:00:00Z".parse::<Timestamp>().unwrap()
        })
        .collect();
    assert!(
        !kenji.is_empty() && kenji.iter().all(|e| e.state == State::Cancelled),
        "{kenji:?}"
    );
    assert!(
        kenji.iter().all(|e| e.reason.as_deref()
            == Some("k.watanabe@japan-mission.example.org is no longer a focal point"))
    );
    assert!(
        entries
            .iter()
            .any(|e| e.spec.recipient == "nour.haddad@example.org" && e.state == State::Planned)
    );
    let moved = entries
        .iter()
        .find(|e| e.spec.key.as_str() == "reminder/first-reading/7d/amina.diallo@senegal-mission.example.org")
        .unwrap();
    assert_eq!(moved.spec.due.to_string(), "2017-09-26T19:00:00Z");
    assert_eq!(moved.revision, 2);
    assert!(outbox.counts().unwrap().planned > 0 && planned_before > 0);
}

/// kill -9 in the middle of a large batch, then start again: no message is
/// lost, and no more are repeated than were in flight (at most the number
/// of connections).
#[test]
fn a_crash_in_the_middle_of_a_batch_loses_nothing() {
    const FOCAL_POINTS: usize = 1500;
    const CONNECTIONS: usize = 4;
    let sink = Sink::plain();
    let config = smtp_config(sink.port(), CONNECTIONS);
    config.write("lists/civil-society.toml", "");
    let mut csv = String::from("name,email,lists,leads\n");
    for i in 0..FOCAL_POINTS {
        csv.push_str(&format!(
            "Focal Point {i},fp{i}@mission{}.example.org,member-states,1d\n",
            i % 193
        ));
    }
    config.write("lists/permanent-missions.csv", &csv);
    // The first reading's 1d reminders: all due at 2017-10-01T19:00Z.
    let (from, until) = ("2017-10-01T18:00:00Z", "2017-10-01T20:00:00Z");
    let expected = expected_keys(&config, from, until);
    assert_eq!(expected.len(), FOCAL_POINTS);
    let state = tempfile::tempdir().unwrap();
    let run = || {
        crate::harness::herald_command(&config.path())
            .args(["run", "--fast-forward", "--rehearse-from", from, "--until", until])
            // The sink stands for the relay; nobody real is on the list.
            .arg("--real-recipients")
            .arg("--state-dir")
            .arg(state.path())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start herald run")
    };
    let mut daemon = run();
    let started = std::time::Instant::now();
    while sink.received().len() < FOCAL_POINTS / 3 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "too slow: {}",
            sink.received().len()
        );
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "herald stopped before the crash"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    daemon.kill().unwrap(); // SIGKILL
    daemon.wait().unwrap();
    let at_crash = sink.received().len();
    let outbox = SqliteOutbox::open(state.path()).unwrap();
    let counts = outbox.counts().unwrap();
    drop(outbox);
    assert!(
        counts.sent < FOCAL_POINTS,
        "the crash came in the middle: {counts:?}"
    );

    let status = run().wait().unwrap();
    assert!(status.success());
    let received = sink.received();
    let ids = message_ids(received.iter().map(|r| r.bytes.clone()));
    let model = config.load().unwrap();
    let lost: Vec<_> = expected
        .iter()
        .filter(|key| {
            let id = herald::render::message::message_id(key, &model.settings().sender.domain);
            !ids.contains_key(id.trim_start_matches('<').trim_end_matches('>'))
        })
        .collect();
    let duplicates = received.len() - ids.len();
    eprintln!(
        "crash test: {} messages, {at_crash} received before kill -9 ({} recorded sent, {} in flight), {} after restart; lost {}, duplicated {duplicates}",
        FOCAL_POINTS,
        counts.sent,
        counts.sending,
        received.len() - at_crash,
        lost.len()
    );
    assert!(lost.is_empty(), "lost: {lost:?}");
    // What a crash can repeat is what the relay accepted and the outbox
    // had not yet recorded: the outcomes of the send tasks alive at the
    // kill, at most twice the connections (the scheduler keeps that many
    // going, half of them rendering the next messages), never more.
    let bound = 2 * CONNECTIONS;
    assert!(
        duplicates <= bound,
        "{duplicates} duplicates; at most {bound} send tasks are alive at once"
    );
    let outbox = SqliteOutbox::open(state.path()).unwrap();
    assert_eq!(outbox.counts().unwrap().sent, FOCAL_POINTS);
}

/// A daemon in this process on a clock that the test moves, looking at the
/// outbox every 20 ms of real time; reloads and the stop are the test's.
struct Live {
    clock: Arc<ManualClock>,
    control: mpsc::Sender<Control>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    notices: Arc<herald::systemd::Recording>,
}

impl Live {
    /// Starts the daemon at `at` and waits until it is ready.
    async fn start(config: &ConfigDir, state: &std::path::Path, at: &str) -> Live {
        let clock = Arc::new(ManualClock::new(at.parse().unwrap()));
        let mut options = Options::new(config.path(), Environment::default(), clock.clone());
        options.state_dir = Some(state.to_owned());
        options.tick = SignedDuration::from_millis(20);
        let (notifier, notices) = herald::systemd::Notifier::recording(None);
        options.notifier = notifier;
        let (control, receiver) = mpsc::channel(8);
        let task = tokio::spawn(daemon::run(options, receiver));
        let live = Live {
            clock,
            control,
            task,
            notices,
        };
        live.wait_ready(1).await;
        live
    }

    /// Waits until the daemon has said READY `times` times (once at the
    /// start, once after each reload).
    async fn wait_ready(&self, times: usize) {
        let ready = || {
            self.notices
                .messages()
                .iter()
                .filter(|m| m.contains(&herald::systemd::Notice::Ready))
                .count()
        };
        eventually(&format!("READY {times} times"), || ready() >= times).await;
    }

    /// Asks for a reload and waits until it is done.
    async fn reload(&self) {
        let before = self
            .notices
            .messages()
            .iter()
            .filter(|m| m.contains(&herald::systemd::Notice::Ready))
            .count();
        self.control.send(Control::Reload).await.unwrap();
        self.wait_ready(before + 1).await;
    }

    /// Moves the clock, then gives the daemon a few of its looks at the
    /// outbox (20 ms each) to act on it.
    async fn advance(&self, by: SignedDuration) {
        self.clock.advance(by);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }

    async fn stop(self) {
        self.control.send(Control::Stop).await.unwrap();
        self.task.await.unwrap().expect("the daemon stops cleanly");
    }
}

/// Waits (up to 60 s) until `check` holds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "still not so after 60 s: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

const ROADMAP_2017: &str = "roadmaps/2017-modalities-resolution.toml";
const A_WEEK_BEFORE_THE_FIRST_READING: &str = "2017-09-20T00:00:00Z";

/// The outbox's notices (updates and cancellations).
fn notice_entries(state: &std::path::Path) -> Vec<herald::outbox::Entry> {
    SqliteOutbox::open(state)
        .unwrap()
        .entries()
        .unwrap()
        .into_iter()
        .filter(|e| e.spec.key.kind().is_notice())
        .collect()
}

/// The 2017 roadmap saved in place with a pause (its last three events
/// missing for five minutes), then whole: the cancellations wait for
/// notice_delay, are withdrawn when the events come back, and nothing
/// reaches the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roadmap_cut_short_then_whole_again_within_notice_delay_sends_nothing() {
    let sink = Sink::plain();
    let config = smtp_config(sink.port(), 2);
    let state = tempfile::tempdir().unwrap();
    let path = config.path().join(ROADMAP_2017);
    let whole = std::fs::read_to_string(&path).unwrap();
    let cut_at = whole
        .find("[[events]]\nid = \"informal-consultations-2017-10-05\"")
        .unwrap();
    let live = Live::start(&config, state.path(), A_WEEK_BEFORE_THE_FIRST_READING).await;

    std::fs::write(&path, &whole[..cut_at]).unwrap();
    live.reload().await;
    let waiting = notice_entries(state.path());
    let held_until: Timestamp = "2017-09-20T00:10:00Z".parse().unwrap();
    // Three events to come, each to the nine focal points of member-states.
    assert_eq!(waiting.len(), 27, "{waiting:?}");
    assert!(
        waiting.iter().all(|e| e.state == State::Planned
            && e.spec.due == held_until
            && e.spec.key.kind() == herald::key::SendKind::Cancellation),
        "{waiting:?}"
    );

    live.advance(SignedDuration::from_mins(5)).await;
    std::fs::write(&path, &whole).unwrap();
    live.reload().await;
    live.advance(SignedDuration::from_mins(20)).await;
    live.stop().await;

    assert_eq!(sink.received().len(), 0, "nothing reaches the relay");
    let withdrawn = notice_entries(state.path());
    assert_eq!(withdrawn.len(), 27);
    for entry in &withdrawn {
        assert_eq!(entry.state, State::Cancelled, "{entry:?}");
        assert!(
            entry
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with("the change was undone within notice_delay (10m)")),
            "{entry:?}"
        );
    }
}

/// A change that stays: its update notices wait notice_delay, then go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_notice_goes_out_once_notice_delay_has_passed() {
    let sink = Sink::plain();
    let config = smtp_config(sink.port(), 2);
    let state = tempfile::tempdir().unwrap();
    let live = Live::start(&config, state.path(), A_WEEK_BEFORE_THE_FIRST_READING).await;

    config.edit(
        &format!("config/{ROADMAP_2017}"),
        "date = \"2017-10-02\"",
        "date = \"2017-10-03\"",
    );
    live.reload().await;
    live.advance(SignedDuration::from_mins(9)).await;
    assert_eq!(sink.received().len(), 0, "the notices wait");

    live.advance(SignedDuration::from_mins(1)).await;
    eventually("the nine update notices arrive", || sink.received().len() == 9).await;
    live.stop().await;
    let sent_at: Timestamp = "2017-09-20T00:10:00Z".parse().unwrap();
    let notices = notice_entries(state.path());
    assert_eq!(notices.len(), 9);
    assert!(
        notices.iter().all(|e| e.state == State::Sent
            && e.sent_at == Some(sent_at)
            && e.spec.key.as_str().starts_with("update/first-reading/1/")),
        "{notices:?}"
    );
    for received in sink.received() {
        let text = String::from_utf8_lossy(&received.bytes).into_owned();
        assert!(text.contains("method=REQUEST"), "{text}");
    }
}

/// Removing a roadmap whose notices are off sends no cancellation for its
/// events, though the roadmap is no longer there to say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_roadmap_with_notices_off_sends_no_cancellation() {
    let sink = Sink::plain();
    let config = smtp_config(sink.port(), 2);
    config.write(
        "roadmaps/future.toml",
        &crate::harness::FUTURE_ROADMAP.replacen("\n\n[[events]]", "\nnotices = false\n\n[[events]]", 1),
    );
    let state = tempfile::tempdir().unwrap();
    let live = Live::start(&config, state.path(), crate::harness::BEFORE_THE_FUTURE_MEETING).await;
    config.remove("roadmaps/future.toml");
    live.reload().await;
    live.advance(SignedDuration::from_mins(30)).await;
    live.stop().await;

    assert_eq!(sink.received().len(), 0);
    assert!(notice_entries(state.path()).is_empty());
    let rows = SqliteOutbox::open(state.path()).unwrap().calendar_rows().unwrap();
    let row = rows.iter().find(|r| r.event == "future-meeting").unwrap();
    assert!(row.removed, "{row:?}");
}

/// A reload asked in the middle of a burst takes effect before the burst
/// ends: the later messages have the new subject, and the sends of focal
/// points the new lists no longer have are cancelled with why, not sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_in_the_middle_of_a_burst_takes_effect_before_it_ends() {
    const FOCAL_POINTS: usize = 1000;
    const REMOVED: usize = 100;
    let sink = Sink::plain();
    let config = smtp_config(sink.port(), 2);
    config.write("lists/civil-society.toml", "");
    let csv = |count: usize| {
        let mut csv = String::from("name,email,lists,leads\n");
        for i in 0..count {
            csv.push_str(&format!(
                "Focal Point {i},fp{i:04}@example.org,member-states,1d\n"
            ));
        }
        csv
    };
    config.write("lists/permanent-missions.csv", &csv(FOCAL_POINTS));
    let state = tempfile::tempdir().unwrap();
    // The first reading's 1d reminders, all due at 2017-10-01T19:00Z.
    let live = Live::start(&config, state.path(), "2017-10-01T19:00:00Z").await;
    eventually("the burst is under way", || sink.received().len() >= 50).await;
    config.edit("templates/en/reminder.subject.hbs", "{{", "[new] {{");
    config.write("lists/permanent-missions.csv", &csv(FOCAL_POINTS - REMOVED));
    let asked_at = sink.received().len();
    let asked = std::time::Instant::now();
    live.control.send(Control::Reload).await.unwrap();
    live.wait_ready(2).await;
    let took = asked.elapsed();
    let reloaded_at = sink.received().len();
    eventually("the burst is over", || {
        SqliteOutbox::open(state.path())
            .unwrap()
            .entries()
            .unwrap()
            .iter()
            .filter(|e| e.spec.key.subject() == "first-reading")
            .all(|e| e.state.is_final())
    })
    .await;
    live.stop().await;

    let received = sink.received();
    let subjects: Vec<String> = received
        .iter()
        .map(|r| {
            MessageParser::default()
                .parse(&r.bytes)
                .unwrap()
                .subject()
                .unwrap()
                .to_owned()
        })
        .collect();
    let new = subjects.iter().filter(|s| s.starts_with("[new] ")).count();
    eprintln!(
        "reload asked after {asked_at} messages, done after {reloaded_at} ({took:?} later); {} sent in all, {new} with the new subject",
        received.len()
    );
    assert!(
        reloaded_at < FOCAL_POINTS - REMOVED,
        "the reload waited for the burst: {reloaded_at} sent before it"
    );
    assert!(
        new > 0 && subjects.last().unwrap().starts_with("[new] "),
        "{subjects:?}"
    );
    // Once the new subject appears, every later message has it.
    let first_new = subjects.iter().position(|s| s.starts_with("[new] ")).unwrap();
    assert!(subjects[first_new..].iter().all(|s| s.starts_with("[new] ")));
    let ids = message_ids(received.iter().map(|r| r.bytes.clone()));
    assert_eq!(ids.len(), received.len(), "no message twice");
    let entries: Vec<_> = SqliteOutbox::open(state.path())
        .unwrap()
        .entries()
        .unwrap()
        .into_iter()
        .filter(|e| e.spec.key.subject() == "first-reading")
        .collect();
    assert_eq!(entries.len(), FOCAL_POINTS);
    let sent = entries.iter().filter(|e| e.state == State::Sent).count();
    assert_eq!(sent, received.len());
    let cancelled: Vec<_> = entries.iter().filter(|e| e.state == State::Cancelled).collect();
    assert_eq!(
        sent + cancelled.len(),
        FOCAL_POINTS,
        "sent or cancelled, nothing else"
    );
    assert!(!cancelled.is_empty());
    for entry in &cancelled {
        let number: usize = entry.spec.recipient[2..6].parse().unwrap();
        assert!(number >= FOCAL_POINTS - REMOVED, "{entry:?}");
        assert!(
            entry
                .reason
                .as_deref()
                .is_some_and(|r| r.ends_with("is no longer a focal point")),
            "{entry:?}"
        );
        assert_eq!(entry.attempts, 0, "put back unsent, its claim not counted");
    }
}

/// A relay that stops offering AUTH (or STARTTLS) is a fault of the relay,
/// not of each message: herald pauses sending to it with a backoff, probes
/// it one send at a time, marks nothing failed, and sends everything once
/// the relay offers AUTH again. (Every due send used to fail for good.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_stops_offering_auth_pauses_sending_until_it_is_back() {
    let server = FaultServer::builder()
        .first(Fault::WithoutExtensions)
        .first(Fault::WithoutExtensions)
        .first(Fault::WithoutExtensions)
        .then(Fault::Accept)
        .extension("AUTH PLAIN")
        .start()
        .await;
    let config = smtp_config(server.port(), 2);
    config.write("smtp-password", "not checked by the fault server\n");
    let text = std::fs::read_to_string(config.path().join("herald.toml")).unwrap();
    config.write(
        "herald.toml",
        &format!("{text}username = \"herald\"\npassword_file = \"smtp-password\"\n"),
    );
    let (from, until) = ("2017-10-02T12:30:00Z", "2017-10-03T00:00:00Z");
    let expected = expected_keys(&config, from, until);
    assert!(expected.len() > 5, "{expected:?}");
    let state = tempfile::tempdir().unwrap();
    let outbox = run_between(&config, state.path(), from, until).await;

    // A paused send is not an attempt: each was tried once, and sent.
    each_sent_after_one_attempt(&outbox, &expected);
    assert_eq!(server.accepted().len(), expected.len());
    let paused = paused_attempts(&outbox, &expected);
    assert!(!paused.is_empty(), "the sends were paused");
    assert!(
        paused.iter().all(|(_, _, reply)| reply
            .as_deref()
            .is_some_and(|r| r.contains("sending is paused") && r.contains("AUTH"))),
        "{paused:?}"
    );
    // The relay was probed, not hammered: the connections without AUTH are
    // the first send's and its two connections' worth, then one probe each
    // pause, and every one after is a success.
    assert!(
        server.connections() <= 3 + expected.len(),
        "{}",
        server.connections()
    );
}

/// Forwards the first `first` connections to 127.0.0.1:`before` and every
/// later one to 127.0.0.1:`after`: one relay address whose server changes,
/// as a relay does when it is reconfigured. Stops when dropped.
struct Switch {
    port: u16,
    accept: tokio::task::JoinHandle<()>,
}

impl Switch {
    async fn start(first: usize, before: u16, after: u16) -> Switch {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accept = tokio::spawn(async move {
            let mut served = 0;
            while let Ok((mut client, _)) = listener.accept().await {
                let target = if served < first { before } else { after };
                served += 1;
                tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Switch { port, accept }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A relay that stops offering STARTTLS (required) gets nothing in clear
/// and fails no message: sending pauses, and once the relay offers
/// STARTTLS again (aiosmtpd, with its certificate and AUTH) every send goes
/// out over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_stops_offering_starttls_pauses_sending_until_it_is_back() {
    let without_tls = FaultServer::start(Fault::Accept).await;
    let sink = Sink::with_starttls_and_auth();
    let relay = Switch::start(2, without_tls.port(), sink.port()).await;
    let config = ConfigDir::example();
    config.edit(
        "config/herald.toml",
        "transport = \"maildir\"",
        "transport = \"smtp\"",
    );
    std::fs::copy(sink.ca_file(), config.path().join("relay-ca.pem")).unwrap();
    config.write(
        "smtp-password",
        &format!("{}\n", crate::support::aiosmtpd::PASSWORD),
    );
    let text = std::fs::read_to_string(config.path().join("herald.toml")).unwrap();
    config.write(
        "herald.toml",
        &format!(
            "{text}\n[delivery.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"starttls\"\nusername = \"{}\"\npassword_file = \"smtp-password\"\nca_file = \"relay-ca.pem\"\ntimeout = \"5s\"\nmax_connections = 2\n",
            relay.port,
            crate::support::aiosmtpd::USER,
        ),
    );
    let (from, until) = ("2017-10-02T12:30:00Z", "2017-10-03T00:00:00Z");
    let expected = expected_keys(&config, from, until);
    assert!(expected.len() > 5, "{expected:?}");
    let state = tempfile::tempdir().unwrap();
    let outbox = run_between(&config, state.path(), from, until).await;

    each_sent_after_one_attempt(&outbox, &expected);
    let paused = paused_attempts(&outbox, &expected);
    assert!(!paused.is_empty(), "the sends were paused");
    assert!(
        paused
            .iter()
            .all(|(_, _, reply)| reply.as_deref().is_some_and(|r| r.contains("STARTTLS"))),
        "{paused:?}"
    );
    assert!(without_tls.connections() >= 1);
    assert!(without_tls.accepted().is_empty(), "nothing went out in clear");
    let received = sink.received();
    assert_eq!(received.len(), expected.len());
    assert!(received.iter().all(|r| r.tls), "every message over TLS");
}
