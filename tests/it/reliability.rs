//! Promises kept when things go wrong around herald: a wall clock that
//! jumps, an outbox that cannot be written (a held lock, a full disk), a
//! second daemon on the same state directory, a rehearsal pointed at
//! production, and a permissive umask.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald::clock::{Clock, SteppingClock};
use herald::config::Environment;
use herald::daemon::{self, Control, Options};
use herald::outbox::{Outbox, SqliteOutbox, State};
use herald::systemd::{Notice, Notifier};
use jiff::{SignedDuration, Timestamp};
use tokio::sync::mpsc;

use crate::daemon::{expected_keys, message_ids, smtp_config};
use crate::harness::{ConfigDir, Daemon, FUTURE_ROADMAP, stderr, stdout};
use crate::support::aiosmtpd::Sink;

/// A stepping clock whose wall clock jumps forward by `by` once it reaches
/// `forward_at`, and back by as much once it then reaches `back_at`; its
/// monotonic clock never jumps. The jumps happen as the daemon sleeps, as
/// a real one would happen between two looks at the clock.
struct JumpingClock {
    inner: SteppingClock,
    forward_at: Timestamp,
    back_at: Timestamp,
    by: SignedDuration,
    jumps: Mutex<u8>,
}

impl Clock for JumpingClock {
    fn now(&self) -> Timestamp {
        self.inner.now()
    }

    fn monotonic(&self) -> Duration {
        self.inner.monotonic()
    }

    fn real_delay(&self, span: SignedDuration) -> Duration {
        let delay = self.inner.real_delay(span);
        let mut jumps = self.jumps.lock().unwrap();
        let now = self.inner.now();
        if *jumps == 0 && now >= self.forward_at {
            self.inner.step_wall(self.by);
            *jumps = 1;
        } else if *jumps == 1 && now >= self.back_at {
            self.inner.step_wall(-self.by);
            *jumps = 2;
        }
        delay
    }
}

/// Sends each Message-ID arrived more than once.
fn repeated(ids: &HashMap<String, usize>) -> Vec<(&String, &usize)> {
    ids.iter().filter(|(_, n)| **n > 1).collect()
}

/// The wall clock jumps a day ahead, then back: the sends of the day it
/// skipped over were recorded as too late, and are revived and sent at
/// their time once the clock is right again; nothing goes out twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_skipped_by_a_clock_jump_and_then_corrected_is_still_sent_once() {
    let sink = Sink::plain();
    let config = smtp_config(sink.port(), 2);
    let state = tempfile::tempdir().unwrap();
    let (from, until) = ("2017-10-01T00:00:00Z", "2017-10-06T00:00:00Z");
    let expected = expected_keys(&config, from, until);
    // Four instants: 10-01T19:00Z, 10-02T17:00Z, 10-04T14:00Z, 10-05T12:00Z.
    assert_eq!(expected.len(), 36);
    let clock = Arc::new(JumpingClock {
        inner: SteppingClock::new(from.parse().unwrap()),
        // At noon the clock jumps to noon the next day, so the 19:00 sends
        // of 1 October are 17 hours late; two hours on it comes back.
        forward_at: "2017-10-01T12:00:00Z".parse().unwrap(),
        back_at: "2017-10-02T14:00:00Z".parse().unwrap(),
        by: SignedDuration::from_hours(24),
        jumps: Mutex::new(0),
    });
    let mut options = Options::new(config.path(), Environment::default(), clock.clone());
    options.state_dir = Some(state.path().to_owned());
    options.until = Some(until.parse().unwrap());
    options.tick = SignedDuration::from_hours(1);
    let (_control, receiver) = mpsc::channel::<Control>(1);
    daemon::run(options, receiver).await.unwrap();
    assert_eq!(*clock.jumps.lock().unwrap(), 2, "both jumps happened");

    let outbox = SqliteOutbox::open(state.path()).unwrap();
    let entries = outbox.entries().unwrap();
    let received = sink.received();
    let ids = message_ids(received.iter().map(|r| r.bytes.clone()));
    assert!(repeated(&ids).is_empty(), "{:?}", repeated(&ids));
    for key in &expected {
        let entry = entries.iter().find(|e| e.spec.key.as_str() == key).unwrap();
        assert_eq!(entry.state, State::Sent, "{key}: {:?}", entry.reason);
    }
    assert_eq!(received.len(), expected.len(), "each send once");
    let first = entries
        .iter()
        .find(|e| e.spec.due == "2017-10-01T19:00:00Z".parse::<Timestamp>().unwrap())
        .unwrap();
    let attempts = outbox.attempts(first.spec.key.as_str()).unwrap();
    assert!(
        attempts.iter().any(|(_, outcome, _)| outcome == "skipped")
            && attempts.iter().any(|(_, outcome, _)| outcome == "revived"),
        "skipped as too late while the clock was ahead, then revived: {attempts:?}"
    );
}

/// The example config with `focal_points` focal points on member-states,
/// each with a 1d lead only: the first reading's reminders, all due at
/// 2017-10-01T19:00Z, one burst.
fn burst_config(port: u16, focal_points: usize) -> ConfigDir {
    let config = smtp_config(port, 4);
    config.write("lists/civil-society.toml", "");
    let mut csv = String::from("name,email,lists,leads\n");
    for i in 0..focal_points {
        csv.push_str(&format!(
            "Focal Point {i},fp{i}@mission{}.example.org,member-states,1d\n",
            i % 193
        ));
    }
    config.write("lists/permanent-missions.csv", &csv);
    config
}

const BURST_FROM: &str = "2017-10-01T18:00:00Z";
const BURST_UNTIL: &str = "2017-10-01T20:00:00Z";

/// Runs a daemon in this process on the burst of [`burst_config`] with its
/// outbox in `state`; `trouble` is called, on a thread of its own, once
/// `after` messages have arrived, and the daemon must go on through it.
/// Returns the statuses the daemon reported.
async fn burst_through(
    config: &ConfigDir,
    sink: &Sink,
    state: &Path,
    after: usize,
    trouble: impl FnOnce() + Send + 'static,
) -> Vec<String> {
    let clock: Arc<dyn Clock> = Arc::new(SteppingClock::new(BURST_FROM.parse().unwrap()));
    let mut options = Options::new(config.path(), Environment::default(), clock);
    options.state_dir = Some(state.to_owned());
    options.until = Some(BURST_UNTIL.parse().unwrap());
    options.tick = SignedDuration::from_mins(1);
    options.outbox_retry = Duration::from_millis(200);
    let (notifier, recording) = Notifier::recording(None);
    options.notifier = notifier;
    let (_control, receiver) = mpsc::channel::<Control>(1);
    // The daemon's future stays on this task; the watch runs beside it.
    let watch = async {
        let started = std::time::Instant::now();
        while sink.received().len() < after {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the trouble never came: {} received",
                sink.received().len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        std::thread::spawn(trouble)
    };
    let (ran, trouble) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(120), daemon::run(options, receiver)),
        watch
    );
    ran.expect("the daemon ends its rehearsal")
        .expect("the daemon runs on through the trouble");
    trouble.join().unwrap();
    let statuses: Vec<String> = recording
        .messages()
        .into_iter()
        .flatten()
        .filter_map(|notice| match notice {
            Notice::Status(status) => Some(status),
            _ => None,
        })
        .collect();
    eprintln!(
        "burst through trouble: {} received; statuses: {statuses:?}",
        sink.received().len()
    );
    statuses
}

/// After a burst with trouble: every planned send arrived once and is
/// recorded sent, and nothing is left in flight.
fn assert_every_send_once_and_recorded(config: &ConfigDir, sink: &Sink, state: &Path, focal_points: usize) {
    let expected = expected_keys(config, BURST_FROM, BURST_UNTIL);
    assert_eq!(expected.len(), focal_points);
    let received = sink.received();
    let ids = message_ids(received.iter().map(|r| r.bytes.clone()));
    assert!(repeated(&ids).is_empty(), "duplicates: {:?}", repeated(&ids));
    assert_eq!(ids.len(), focal_points, "every send arrived");
    let counts = SqliteOutbox::open(state).unwrap().counts().unwrap();
    assert_eq!(
        (counts.sent, counts.sending, counts.planned),
        (focal_points, 0, 0),
        "{counts:?}"
    );
}

/// Another process holds the outbox's write lock for longer than herald's
/// busy timeout (10 s) in the middle of a burst: the outcomes it cannot
/// record are kept, the claimed sends not started are released, the status
/// says the outbox is failing, and once the lock is gone every send is
/// recorded, none sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_write_lock_mid_burst_loses_and_repeats_nothing() {
    const FOCAL_POINTS: usize = 1000;
    let sink = Sink::plain();
    let config = burst_config(sink.port(), FOCAL_POINTS);
    let state = tempfile::tempdir().unwrap();
    let database = state.path().join(SqliteOutbox::FILE);
    let statuses = burst_through(&config, &sink, state.path(), 20, move || {
        // Python's sqlite3 on the same file: another connection, another
        // process, holding BEGIN IMMEDIATE for 13 s.
        let mut holder = Command::new("python3")
            .args([
                "-c",
                "import sqlite3, sys, time\n\
                 c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n\
                 c.execute('BEGIN IMMEDIATE')\n\
                 print('locked', flush=True)\n\
                 time.sleep(13)\n\
                 c.execute('COMMIT')\n",
            ])
            .arg(&database)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
        assert!(holder.wait().unwrap().success());
    })
    .await;
    assert!(
        statuses
            .iter()
            .any(|s| s.starts_with("the outbox is failing (recording outcomes: database is locked)")),
        "{statuses:?}"
    );
    assert_every_send_once_and_recorded(&config, &sink, state.path(), FOCAL_POINTS);
    let put_back = put_back(state.path());
    eprintln!("held lock: {put_back} claimed sends put back");
    assert!(put_back > 0);
}

/// How many sends were claimed and put back, not started, because the
/// outbox could not record outcomes (rather than left in flight until a
/// restart).
fn put_back(state: &Path) -> usize {
    let outbox = SqliteOutbox::open(state).unwrap();
    outbox
        .entries()
        .unwrap()
        .iter()
        .filter(|entry| {
            outbox
                .attempts(entry.spec.key.as_str())
                .unwrap()
                .iter()
                .any(|(_, _, reply)| {
                    reply.as_deref() == Some("not sent: the outbox could not record outcomes")
                })
        })
        .count()
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it); `None`, with
    /// the reason printed, when not root.
    fn mount(size: &str) -> Option<Tmpfs> {
        let uid = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap();
        if uid.trim() != "0" {
            eprintln!("skipped: mounting a tmpfs needs root (CI runs as root)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount -t tmpfs failed as root");
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Fills the filesystem of `path` until it has no room left; the file is
/// `path`.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 * 1024];
    loop {
        if let Err(err) = file.write_all(&block).and_then(|()| file.sync_all()) {
            assert_eq!(err.raw_os_error(), Some(28), "{err}"); // ENOSPC
            break;
        }
    }
    // Small writes too, until not a byte fits.
    while file.write_all(&[0u8; 512]).and_then(|()| file.sync_all()).is_ok() {}
}

/// The disk of the state directory fills up in the middle of a burst
/// (a tmpfs mounted by the test: needs root, which CI is), then frees up:
/// every send is recorded in the end, none sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_mid_burst_loses_and_repeats_nothing() {
    const FOCAL_POINTS: usize = 1000;
    let Some(tmpfs) = Tmpfs::mount("32m") else {
        return;
    };
    let sink = Sink::plain();
    let config = burst_config(sink.port(), FOCAL_POINTS);
    let state = tmpfs.path().join("state");
    let filler = tmpfs.path().join("filler");
    let statuses = burst_through(&config, &sink, &state, 20, move || {
        fill(&filler);
        std::thread::sleep(Duration::from_secs(3));
        std::fs::remove_file(&filler).unwrap();
    })
    .await;
    assert!(
        statuses
            .iter()
            .any(|s| s.starts_with("the outbox is failing (recording outcomes: database or disk is full)")),
        "{statuses:?}"
    );
    assert_every_send_once_and_recorded(&config, &sink, &state, FOCAL_POINTS);
    let put_back = put_back(&state);
    eprintln!("full disk: {put_back} claimed sends put back");
    assert!(put_back > 0);
}

/// A second `herald run` on the state directory of a running one exits at
/// once, naming the first one's pid, and touches nothing; `send --letter`
/// and `retry` work alongside the running daemon.
#[test]
fn a_second_daemon_on_the_same_state_directory_is_refused() {
    let config = ConfigDir::example();
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    let state = tempfile::tempdir().unwrap();
    let mut first = Daemon::spawn(&mut config.run_before_the_future_meeting(state.path()));
    first.wait_for("herald::daemon: ready");

    let second = config
        .run_before_the_future_meeting(state.path())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let message = stderr(&second);
    assert!(
        message.contains(&format!(
            "another herald daemon (pid {}) is running on the state directory {}",
            first.id(),
            state.path().display()
        )),
        "{message}"
    );
    assert!(!message.contains("released"), "{message}");

    // Commands that write to the outbox go alongside it.
    let state_dir = state.path().display().to_string();
    let sent = config.herald(&[
        "send",
        "--letter",
        "modalities-roadmap-2017",
        "--state-dir",
        &state_dir,
    ]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    assert!(stdout(&sent).contains("9 sent"), "{}", stdout(&sent));
    let retry = config.herald(&["retry", "--all-failed", "--state-dir", &state_dir]);
    assert!(retry.status.success(), "{}", stderr(&retry));

    first.signal("TERM");
    first.wait_for("stopped");
    assert!(first.wait().success());
    // The first one's plan is whole: its 27 reminders, and the letter.
    let counts = SqliteOutbox::open(state.path()).unwrap().counts().unwrap();
    assert_eq!(
        (counts.planned, counts.sent, counts.sending),
        (27, 9, 0),
        "{counts:?}"
    );
}

/// A daemon's sends in flight belong to it: a command's start does not
/// release them, and neither does its own (it runs beside the daemon);
/// the next daemon's start releases what a dead daemon and dead commands
/// left, and nothing a live command holds.
#[test]
fn only_a_starting_daemon_releases_sends_left_in_flight_by_the_gone() {
    use herald::key::{AddressKey, SendKey};
    use herald::outbox::{Changes, Claimant, Recorded, SendSpec};
    let state = tempfile::tempdir().unwrap();
    let spec = |name: &str| SendSpec {
        key: SendKey::reminder("e", "1d", &AddressKey::of(&format!("{name}@example.org"))),
        recipient: format!("{name}@example.org"),
        list: "l".to_owned(),
        language: "en".to_owned(),
        template: "reminder".to_owned(),
        due: "2017-10-01T00:00:00Z".parse().unwrap(),
        zone: "UTC".to_owned(),
    };
    let now: Timestamp = "2017-10-01T00:00:00Z".parse().unwrap();
    let daemon = SqliteOutbox::open_as(state.path(), Claimant::daemon()).unwrap();
    let changes = Changes {
        insert: vec![spec("a"), spec("b")],
        ..Changes::default()
    };
    daemon.apply(&changes, now).unwrap();
    assert_eq!(daemon.claim_due(now, 1).unwrap().len(), 1);
    // This test process is a live command holding the other one.
    let command = SqliteOutbox::open(state.path()).unwrap();
    assert_eq!(command.claim_due(now, 1).unwrap().len(), 1);
    let mut claimants = command.claimants_in_flight().unwrap();
    claimants.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(claimants.len(), 2);
    let stale: Vec<Claimant> = claimants
        .into_iter()
        .filter(|c| c.is_daemon() || !c.is_running_command())
        .collect();
    assert_eq!(stale, vec![Claimant::daemon()]);
    assert_eq!(daemon.release_claims(&stale, "restart", now).unwrap(), 1);
    assert_eq!(
        daemon.counts().unwrap().sending,
        1,
        "the live command's send stays in flight"
    );
    let outcome = Recorded::Sent {
        reply: "250 ok".to_owned(),
        left_at: None,
    };
    assert_eq!(command.record(&[(spec("b").key, outcome)], now).unwrap(), 1);
}

/// A rehearsal needs a state directory of its own, and SMTP to real
/// recipients only when told so; each refusal says what to do.
#[test]
fn a_rehearsal_never_defaults_to_production() {
    let sink = Sink::plain();
    let config = smtp_config(sink.port(), 1);
    let state = tempfile::tempdir().unwrap();
    let rehearsal = [
        "run",
        "--rehearse-from",
        "2017-09-13",
        "--until",
        "2017-09-15",
        "--fast-forward",
    ];

    let output = config.herald(&rehearsal);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("a rehearsal (--rehearse-from, --speed or --fast-forward) needs a state directory of its own: add --state-dir DIR"),
        "{}",
        stderr(&output)
    );

    let state_dir = state.path().display().to_string();
    let mut with_state = rehearsal.to_vec();
    with_state.extend(["--state-dir", &state_dir]);
    let output = config.herald(&with_state);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains(
            "a rehearsal would send over SMTP (to 127.0.0.1) to the real recipients; add --redirect-to EMAIL"
        ),
        "{}",
        stderr(&output)
    );
    assert!(sink.received().is_empty());
    assert!(
        !state.path().join(SqliteOutbox::FILE).exists(),
        "refused before the outbox is made"
    );

    let mut redirected = with_state.clone();
    redirected.extend(["--redirect-to", "rehearsal@example.org"]);
    let output = config.herald(&redirected);
    assert!(output.status.success(), "{}", stderr(&output));
    let received = sink.received();
    assert_eq!(received.len(), 9);
    assert!(received.iter().all(|r| r.rcpt_tos == ["rehearsal@example.org"]));

    let real = tempfile::tempdir().unwrap();
    let real_dir = real.path().display().to_string();
    let mut real_recipients = rehearsal.to_vec();
    real_recipients.extend(["--state-dir", &real_dir, "--real-recipients"]);
    let output = config.herald(&real_recipients);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(sink.received().len(), 18);

    let output = config.herald(&["run", "--state-dir", &real_dir, "--real-recipients"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--real-recipients is for rehearsals"),
        "{}",
        stderr(&output)
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `command` run by a shell whose umask is 000: every file it creates would
/// be world-readable and writable unless it sets modes itself.
fn with_umask_000(command: &Command) -> Command {
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(command.get_program())
        .args(command.get_args());
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => shell.env(name, value),
            None => shell.env_remove(name),
        };
    }
    shell
}

/// Outside systemd, with a umask of 000: the state directory is 0700, and
/// the outbox (with SQLite's -wal and -shm), the lock and every maildir
/// file and directory herald makes are private.
#[test]
fn the_state_directory_is_private_whatever_the_umask() {
    let config = ConfigDir::example();
    let root = tempfile::tempdir().unwrap();
    let state: PathBuf = root.path().join("herald");
    let output = with_umask_000(config.run_command(&state).args([
        "--rehearse-from",
        "2017-09-13",
        "--until",
        "2017-09-15",
        "--fast-forward",
    ]))
    .output()
    .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(mode(&state), 0o700);
    for dir in ["maildir", "maildir/new", "maildir/tmp", "maildir/cur"] {
        assert_eq!(mode(&state.join(dir)), 0o700, "{dir}");
    }
    let messages: Vec<PathBuf> = std::fs::read_dir(state.join("maildir/new"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(messages.len(), 9);
    for message in &messages {
        assert_eq!(mode(message), 0o600, "{}", message.display());
    }

    // While a daemon runs, SQLite's -wal and -shm files exist too.
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    let mut daemon = Daemon::spawn(&mut with_umask_000(&config.run_before_the_future_meeting(&state)));
    daemon.wait_for("herald::daemon: ready");
    for name in [
        "outbox.sqlite3",
        "outbox.sqlite3-wal",
        "outbox.sqlite3-shm",
        "herald.lock",
    ] {
        assert_eq!(mode(&state.join(name)), 0o600, "{name}");
    }
    daemon.signal("TERM");
    assert!(daemon.wait().success());
}
