//! herald as a systemd service: what it tells the service manager (over a
//! fake `NOTIFY_SOCKET`), reloads on edits of the configuration directory,
//! and its logs (JSON, the journal or text, never a secret).

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::{ConfigDir, Daemon, FUTURE_ROADMAP, NEW_FOCAL_POINT, herald_command, stderr, stdout};
use crate::support::aiosmtpd::{self, Sink};

/// A unix datagram socket standing in for systemd's notify socket.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    _dir: tempfile::TempDir,
    /// Every message received so far, in order.
    seen: Vec<String>,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        NotifySocket {
            socket,
            path,
            _dir: dir,
            seen: Vec::new(),
        }
    }

    /// Waits (up to 20 s) for a message with the line `line` (or a line
    /// starting with it, for `STATUS=`), and returns the whole message.
    fn wait_for(&mut self, line: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buffer = vec![0; 4096];
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            self.socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let Ok(n) = self.socket.recv(&mut buffer) else {
                break;
            };
            let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
            self.seen.push(message.clone());
            if message.lines().any(|l| l.starts_with(line)) {
                return message;
            }
        }
        panic!("no message with {line:?}; the messages were: {:?}", self.seen);
    }
}

/// The value of `KEY=` in a message.
fn field<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    message
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn the_service_manager_hears_ready_reloads_watchdog_pings_and_stopping() {
    let config = ConfigDir::example();
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    let state = tempfile::tempdir().unwrap();
    let mut notify = NotifySocket::bind();
    let mut daemon = Daemon::spawn(
        config
            .run_before_the_future_meeting(state.path())
            .arg("--no-watch")
            .env("NOTIFY_SOCKET", &notify.path)
            .env("WATCHDOG_USEC", "1000000")
            .env_remove("WATCHDOG_PID"),
    );

    // READY comes first, once the outbox is reconciled, with the plan.
    let ready = notify.wait_for("READY=1");
    assert_eq!(notify.seen.len(), 1, "{:?}", notify.seen);
    assert_eq!(
        field(&ready, "STATUS"),
        Some("next send 2099-02-28T20:00Z, 27 pending")
    );
    // With WATCHDOG_USEC at 1 s the loop comes round at least every 0.5 s.
    let started = Instant::now();
    for _ in 0..3 {
        notify.wait_for("WATCHDOG=1");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // SIGHUP: RELOADING with MONOTONIC_USEC in one datagram, then READY.
    config.write("lists/new.toml", NEW_FOCAL_POINT);
    daemon.signal("HUP");
    let reloading = notify.wait_for("RELOADING=1");
    let monotonic: u64 = field(&reloading, "MONOTONIC_USEC")
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"))
        .parse()
        .unwrap();
    // CLOCK_MONOTONIC counts from boot, like /proc/uptime (less suspends).
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        monotonic > 0 && (monotonic as f64) < (uptime + 1.0) * 1e6,
        "{monotonic} µs, up {uptime} s"
    );
    let ready = notify.wait_for("READY=1");
    assert_eq!(
        field(&ready, "STATUS"),
        Some("next send 2099-02-28T20:00Z, 30 pending")
    );
    daemon.wait_for("+3 planned (3 for future-meeting)");

    // A bad edit: reloading, then ready again on the last good one, which
    // the status says.
    config.edit(
        "config/roadmaps/future.toml",
        "date = \"2099-03-01\"",
        "date = \"2099-02-30\"",
    );
    daemon.signal("HUP");
    notify.wait_for("RELOADING=1");
    let ready = notify.wait_for("READY=1");
    assert_eq!(
        field(&ready, "STATUS"),
        Some(
            "configuration has 1 problem; running the last good one; next send 2099-02-28T20:00Z, 30 pending"
        )
    );
    notify.wait_for("WATCHDOG=1");

    daemon.signal("TERM");
    let stopping = notify.wait_for("STOPPING=1");
    assert!(
        field(&stopping, "STATUS").is_some_and(|s| s.starts_with("stopping")),
        "{stopping:?}"
    );
    daemon.wait_for("stopped");
    assert!(daemon.wait().success());
    // Nothing after STOPPING but, at most, a last ping from the same pass.
    let after: Vec<_> = notify
        .seen
        .iter()
        .skip_while(|m| !m.contains("STOPPING=1"))
        .skip(1)
        .collect();
    assert!(after.iter().all(|m| m.as_str() == "WATCHDOG=1\n"), "{after:?}");
}

/// The same, in this process: a rehearsal with a recording notifier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehearsal_reports_ready_pings_and_stopping_in_process() {
    use herald::clock::{Clock, SteppingClock};
    use herald::daemon::{self, Control, Options};
    use herald::systemd::{Notice, Notifier};

    let config = ConfigDir::example();
    let state = tempfile::tempdir().unwrap();
    let clock: std::sync::Arc<dyn Clock> =
        std::sync::Arc::new(SteppingClock::new("2017-09-13T00:00:00Z".parse().unwrap()));
    let mut options = Options::new(config.path(), herald::config::Environment::default(), clock);
    options.state_dir = Some(state.path().to_owned());
    options.until = Some("2017-09-15T00:00:00Z".parse().unwrap());
    options.tick = jiff::SignedDuration::from_hours(24);
    let (notifier, recording) = Notifier::recording(Some(Duration::from_secs(60)));
    options.notifier = notifier;
    let (_control, receiver) = tokio::sync::mpsc::channel::<Control>(1);
    daemon::run(options, receiver).await.unwrap();

    let messages = recording.messages();
    assert_eq!(
        messages.first(),
        Some(&vec![
            Notice::Ready,
            Notice::Status("next send 2017-09-14T14:00Z, 9 pending".into())
        ])
    );
    assert!(messages.contains(&vec![Notice::Watchdog]), "{messages:?}");
    // The nine letters of 14 September went out.
    assert!(
        messages
            .iter()
            .any(|m| matches!(&m[..], [Notice::Status(s)] if s == "nothing due before 2017-09-16T14:00Z")),
        "{messages:?}"
    );
    assert_eq!(
        messages.last(),
        Some(&vec![
            Notice::Stopping,
            Notice::Status("stopping: the rehearsal has reached its end".into())
        ])
    );
}

/// The planned reminders in the outbox, as `herald history --json` gives
/// them (update notices about a moved event come and go on their own).
fn planned(config: &ConfigDir, state: &Path) -> Vec<serde_json::Value> {
    let state_dir = state.display().to_string();
    let output = config.herald(&[
        "history",
        "--state-dir",
        &state_dir,
        "--state",
        "planned",
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&output)).unwrap();
    rows.into_iter().filter(|row| row["kind"] == "reminder").collect()
}

#[test]
fn edits_saved_by_rename_in_the_configuration_directory_change_the_plan() {
    let config = ConfigDir::example();
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    let state = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::spawn(&mut config.run_before_the_future_meeting(state.path()));
    daemon.wait_for("herald::daemon: ready");
    assert_eq!(planned(&config, state.path()).len(), 27);

    // A new focal point: 3 more reminders. The editor's temporary file is
    // not what the log names.
    config.save_by_rename("lists/new.toml", NEW_FOCAL_POINT);
    let changed = daemon.wait_for("the configuration changed on disk");
    assert!(
        changed.contains("lists/new.toml") && !changed.contains(".tmp"),
        "{changed}"
    );
    let reloaded = daemon.wait_for("configuration reloaded");
    assert!(
        reloaded.contains("+3 planned (3 for future-meeting)"),
        "{reloaded}"
    );
    assert_eq!(planned(&config, state.path()).len(), 30);

    // The meeting moves a week: every reminder moves with it.
    config.edit_by_rename(
        "roadmaps/future.toml",
        "date = \"2099-03-01\"",
        "date = \"2099-03-08\"",
    );
    let reloaded = daemon.wait_for("configuration reloaded");
    assert!(
        reloaded.contains("30 rescheduled (30 for future-meeting)"),
        "{reloaded}"
    );
    let rows = planned(&config, state.path());
    assert_eq!(rows.len(), 30);
    assert!(
        rows.iter()
            .all(|row| row["due"].as_str().unwrap() >= "2099-03-01"),
        "{rows:?}"
    );

    // The focal point leaves: their reminders are cancelled.
    std::fs::remove_file(config.path().join("lists/new.toml")).unwrap();
    let reloaded = daemon.wait_for("configuration reloaded");
    assert!(
        reloaded.contains("3 cancelled (3 for future-meeting)"),
        "{reloaded}"
    );
    assert_eq!(planned(&config, state.path()).len(), 27);

    // The templates, outside the configuration directory, are watched too.
    config.edit_by_rename("../templates/en/reminder.subject.hbs", "{{", "Reminder: {{");
    let changed = daemon.wait_for("the configuration changed on disk");
    assert!(changed.contains("reminder.subject.hbs"), "{changed}");
    daemon.wait_for("configuration reloaded");

    daemon.signal("TERM");
    assert!(daemon.wait().success());
}

#[test]
fn an_invalid_edit_keeps_the_last_good_plan_running_and_says_why() {
    let config = ConfigDir::example();
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    let state = tempfile::tempdir().unwrap();
    let mut notify = NotifySocket::bind();
    let mut daemon = Daemon::spawn(
        config
            .run_before_the_future_meeting(state.path())
            .env("NOTIFY_SOCKET", &notify.path),
    );
    notify.wait_for("READY=1");
    let before = planned(&config, state.path());
    assert_eq!(before.len(), 27);

    config.edit_by_rename(
        "roadmaps/future.toml",
        "date = \"2099-03-01\"",
        "date = \"2099-02-30\"",
    );
    // Every problem is logged with its place.
    let problem = daemon.wait_for("invalid date");
    assert!(problem.contains("roadmaps/future.toml:10:8:"), "{problem}");
    daemon.wait_for("the new configuration has problems; keeping the last good one running");
    let ready = notify.wait_for("READY=1");
    assert_eq!(
        field(&ready, "STATUS"),
        Some(
            "configuration has 1 problem; running the last good one; next send 2099-02-28T20:00Z, 27 pending"
        )
    );
    // The old plan, untouched.
    assert_eq!(planned(&config, state.path()), before);

    // Fixed: the new date is taken, and the status is clear again.
    config.edit_by_rename(
        "roadmaps/future.toml",
        "date = \"2099-02-30\"",
        "date = \"2099-03-02\"",
    );
    let reloaded = daemon.wait_for("configuration reloaded");
    assert!(reloaded.contains("27 rescheduled"), "{reloaded}");
    let ready = notify.wait_for("READY=1");
    // The 27 reminders, and the 9 update notices about the moved meeting,
    // which wait notice_delay.
    let status = field(&ready, "STATUS").unwrap_or_default();
    assert!(status.ends_with(", 36 pending"), "{status}");

    daemon.signal("TERM");
    notify.wait_for("STOPPING=1");
    assert!(daemon.wait().success());
}

/// Standard base64, for the forms a password takes in SMTP AUTH.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn json_logs_at_trace_level_never_show_the_smtp_password() {
    assert_eq!(base64(b"Man"), "TWFu");
    assert_eq!(base64(b"Ma"), "TWE=");
    let sink = Sink::with_starttls_and_auth();
    let config = ConfigDir::example();
    config.edit(
        "config/herald.toml",
        "transport = \"maildir\"",
        "transport = \"smtp\"",
    );
    std::fs::copy(sink.ca_file(), config.path().join("relay-ca.pem")).unwrap();
    let settings = std::fs::read_to_string(config.path().join("herald.toml")).unwrap();
    config.write(
        "herald.toml",
        &format!(
            "{settings}\n[delivery.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"starttls\"\nusername = \"{}\"\nca_file = \"relay-ca.pem\"\ntimeout = \"10s\"\n",
            sink.port(),
            aiosmtpd::USER
        ),
    );
    // The password as systemd's LoadCredential= hands it over.
    let credentials = tempfile::tempdir().unwrap();
    std::fs::write(
        credentials.path().join("smtp-password"),
        format!("{}\n", aiosmtpd::PASSWORD),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let output = config
        .run_command(state.path())
        .args([
            "--rehearse-from",
            "2017-09-13",
            "--until",
            "2017-09-15",
            "--fast-forward",
            "--log-json",
            "--real-recipients",
        ])
        .env("CREDENTIALS_DIRECTORY", credentials.path())
        .env("HERALD_LOG", "trace")
        .output()
        .unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    let received = sink.received();
    assert_eq!(received.len(), 9);
    assert!(
        received
            .iter()
            .all(|r| r.login.as_deref() == Some(aiosmtpd::USER))
    );

    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() > 20, "{log}");
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
        assert!(value["fields"].is_object(), "{line}");
    }
    assert!(log.contains("\"message\":\"sent\""), "{log}");
    let password = aiosmtpd::PASSWORD;
    for secret in [
        password.to_owned(),
        base64(password.as_bytes()),
        base64(format!("\0{}\0{password}", aiosmtpd::USER).as_bytes()),
    ] {
        assert!(!log.contains(&secret), "the log shows {secret:?}");
    }
}

/// Under systemd (JOURNAL_STREAM names stderr) the logs go to the journal
/// and only there; where the journal cannot be reached they stay on
/// stderr, once.
#[test]
fn logs_go_to_the_journal_or_to_stderr_never_both() {
    use std::os::unix::fs::MetadataExt;
    let config = ConfigDir::example();
    let state = tempfile::tempdir().unwrap();
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("stderr");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let metadata = log_file.metadata().unwrap();
    let status = config
        .run_command(state.path())
        .args([
            "--rehearse-from",
            "2017-09-13",
            "--until",
            "2017-09-15",
            "--fast-forward",
        ])
        .env("JOURNAL_STREAM", format!("{}:{}", metadata.dev(), metadata.ino()))
        .stderr(log_file)
        .status()
        .unwrap();
    assert!(status.success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    let end = "the rehearsal has reached its end";
    if Path::new("/run/systemd/journal/socket").exists() {
        assert!(!log.contains(end), "logged to the journal and to stderr:\n{log}");
    } else {
        assert_eq!(log.matches(end).count(), 1, "{log}");
    }

    // A JOURNAL_STREAM inherited from elsewhere names another stream:
    // stderr keeps the logs.
    let output = herald_command(&config.path())
        .args(["run", "--state-dir"])
        .arg(state.path())
        .args([
            "--rehearse-from",
            "2017-09-13",
            "--until",
            "2017-09-15",
            "--fast-forward",
        ])
        .env("JOURNAL_STREAM", "1:1")
        .output()
        .unwrap();
    assert_eq!(stderr(&output).matches(end).count(), 1, "{}", stderr(&output));
}

/// What the unit must say for the rest to work; `scripts/check-package` (in
/// CI) has systemd itself verify the installed unit and rate its exposure,
/// and `scripts/check-package-systemd` runs it under systemd.
#[test]
fn the_unit_is_a_notify_service_with_a_watchdog_and_its_directories() {
    let root = crate::harness::repo().join("systemd");
    let unit = std::fs::read_to_string(root.join("herald.service")).unwrap();
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        // Not /bin/kill: a minimal Debian has no procps.
        "ExecReload=/bin/sh -c 'kill -HUP \"$MAINPID\"'",
        "WatchdogSec=3min",
        "StateDirectory=herald",
        "ConfigurationDirectory=herald",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=",
        "ExecStart=/usr/bin/herald --config /etc/herald run",
    ] {
        assert!(unit.lines().any(|l| l == line), "herald.service lacks {line:?}");
    }
    let credentials = std::fs::read_to_string(root.join("herald-credentials.conf.example")).unwrap();
    assert!(
        credentials.lines().any(|l| l
            == format!(
                "LoadCredential={}:/etc/herald/smtp-password",
                herald::config::PASSWORD_CREDENTIAL
            )),
        "{credentials}"
    );
}
