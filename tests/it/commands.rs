//! The daemon's commands as an operator runs them: a rehearsal into a
//! maildir, signals, `history`, `retry` and `send --letter`.

use crate::daemon::smtp_config;
use crate::harness::{ConfigDir, Daemon, FUTURE_ROADMAP, NEW_FOCAL_POINT, stderr, stdout};
use crate::support::aiosmtpd::Sink;
use crate::support::smtp_faults::{Fault, FaultServer};

/// The README's first command: the 2017 roadmap replayed into a maildir.
#[test]
fn a_rehearsal_replays_the_2017_roadmap_into_a_maildir() {
    let config = ConfigDir::example();
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().display().to_string();
    let output = config.herald(&[
        "run",
        "--state-dir",
        &state_dir,
        "--rehearse-from",
        "2017-09-13",
        "--until",
        "2017-11-01",
        "--fast-forward",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the rehearsal has reached its end"),
        "{}",
        stderr(&output)
    );
    let files = std::fs::read_dir(state.path().join("maildir/new"))
        .unwrap()
        .count();
    assert_eq!(files, 117);
    let history = config.herald(&["history", "--state-dir", &state_dir]);
    assert!(
        // What was due before the rehearsal is not recorded: a first start
        // does not fill the history with the past.
        stdout(&history).contains("0 planned, 0 sending, 117 sent, 0 failed, 0 skipped, 0 cancelled"),
        "{}",
        stdout(&history)
    );
    let sent_to_amina = config.herald(&[
        "history",
        "--state-dir",
        &state_dir,
        "--state",
        "sent",
        "--to",
        "amina.diallo@senegal-mission.example.org",
        "--json",
    ]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&sent_to_amina)).unwrap();
    assert!(
        rows.iter()
            .all(|r| r["state"] == "sent" && r["to"] == "amina.diallo@senegal-mission.example.org")
    );
    assert!(rows.iter().any(|r| r["letter"] == "modalities-roadmap-2017"));
}

/// SIGHUP reloads a valid config and keeps the last good one on a bad
/// edit; SIGTERM stops the daemon cleanly.
#[test]
fn signals_reload_and_stop_the_daemon() {
    let config = ConfigDir::example();
    // A roadmap in the future, so the daemon has sends to plan.
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    let state = tempfile::tempdir().unwrap();
    // Without the watch, so that only the signals reload.
    let mut daemon = Daemon::spawn(
        config
            .run_before_the_future_meeting(state.path())
            .arg("--no-watch"),
    );
    let ready = daemon.wait_for("herald::daemon: ready");
    assert!(ready.contains("planned=27"), "{ready}");

    config.write("lists/new.toml", NEW_FOCAL_POINT);
    daemon.signal("HUP");
    let reloaded = daemon.wait_for("configuration reloaded");
    assert!(reloaded.contains("+3 planned"), "{reloaded}");

    config.edit(
        "config/roadmaps/future.toml",
        "date = \"2099-03-01\"",
        "date = \"2099-02-30\"",
    );
    daemon.signal("HUP");
    let problem = daemon.wait_for("future.toml");
    assert!(problem.contains("invalid date \"2099-02-30\""), "{problem}");
    daemon.wait_for("keeping the last good one running");

    daemon.signal("TERM");
    daemon.wait_for("stopped");
    let status = daemon.wait();
    assert!(status.success(), "{status:?}");
}

/// `send --letter`: a dry run lists the recipients; the real one delivers
/// one message each, and never twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_a_letter_now() {
    let sink = Sink::plain();
    let config = smtp_config(sink.port(), 2);
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().display().to_string();
    let dry = config.herald(&[
        "send",
        "--letter",
        "modalities-roadmap-2017",
        "--dry-run",
        "--state-dir",
        &state_dir,
    ]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(
        stdout(&dry).contains("dry run: 9 messages would be sent"),
        "{}",
        stdout(&dry)
    );
    assert!(
        stdout(&dry).contains("amina.diallo@senegal-mission.example.org  fr  "),
        "{}",
        stdout(&dry)
    );
    assert!(sink.received().is_empty());

    let sent = config.herald(&[
        "send",
        "--letter",
        "modalities-roadmap-2017",
        "--state-dir",
        &state_dir,
    ]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    assert!(stdout(&sent).contains("9 sent, 0 to retry"), "{}", stdout(&sent));
    assert_eq!(sink.received().len(), 9);
    assert!(sink.received().iter().all(|r| r.rcpt_tos.len() == 1));

    let again = config.herald(&[
        "send",
        "--letter",
        "modalities-roadmap-2017",
        "--state-dir",
        &state_dir,
    ]);
    assert!(
        stdout(&again).contains("9 recipients already had this letter"),
        "{}",
        stdout(&again)
    );
    assert_eq!(sink.received().len(), 9);
}

/// A rejected send is failed with the reply; `retry` plans it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_send_is_sent_again_on_the_operators_word() {
    let server = FaultServer::builder()
        .first(Fault::AfterData("554 5.7.1 Policy rejection"))
        .then(Fault::Accept)
        .start()
        .await;
    let config = smtp_config(server.port(), 1);
    config.with_one_focal_point(None);
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().display().to_string();
    let sent = config.herald(&[
        "send",
        "--letter",
        "modalities-roadmap-2017",
        "--state-dir",
        &state_dir,
    ]);
    assert_eq!(sent.status.code(), Some(1));
    let failed = config.herald(&["history", "--state-dir", &state_dir, "--state", "failed"]);
    assert!(
        stdout(&failed).contains("rejected by the server"),
        "{}",
        stdout(&failed)
    );
    let json = config.herald(&[
        "history",
        "--state-dir",
        &state_dir,
        "--state",
        "failed",
        "--json",
    ]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(rows[0]["last_reply"], "554 5.7.1 Policy rejection");
    let key = rows[0]["key"].as_str().unwrap();

    let retry = config.herald(&["retry", key, "--state-dir", &state_dir]);
    assert!(
        stdout(&retry).contains("1 failed send planned again"),
        "{}",
        stdout(&retry)
    );
    let again = config.herald(&[
        "send",
        "--letter",
        "modalities-roadmap-2017",
        "--state-dir",
        &state_dir,
    ]);
    assert!(stdout(&again).contains("1 sent"), "{}", stdout(&again));
    assert_eq!(server.accepted().len(), 1);
    let unknown = config.herald(&["retry", "no-such-key", "--state-dir", &state_dir]);
    assert!(
        stderr(&unknown).contains("no failed send with the key"),
        "{}",
        stderr(&unknown)
    );
}
