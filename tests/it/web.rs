//! herald on the web: the listeners of `[http]`, the unsubscribe link, the
//! preferences page, the status page, `/metrics` and `/healthz`, through a
//! real HTTP client against a running daemon.

use std::net::TcpStream;

use crate::harness::{ConfigDir, Daemon, FUTURE_ROADMAP};
use crate::support::web::{SECRET, serve_pages};

/// Both listeners take connections once the daemon says it is ready, and
/// are gone once it has stopped.
#[test]
fn the_daemon_listens_from_ready_until_it_stops() {
    let config = ConfigDir::example();
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    let ports = serve_pages(&config, &[SECRET]);
    let state = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::spawn(
        config
            .run_before_the_future_meeting(state.path())
            .arg("--no-watch"),
    );
    daemon.wait_for("herald::daemon: ready");
    for port in [ports.public, ports.admin] {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_ok(),
            "nothing on {port}"
        );
    }
    daemon.signal("TERM");
    daemon.wait_for("stopped");
    assert!(daemon.wait().success());
    for port in [ports.public, ports.admin] {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "still listening on {port}"
        );
    }
}

/// `[http]`'s mistakes are refused at their line, saying what to write.
#[test]
fn bad_http_settings_are_refused_at_their_place() {
    let config = ConfigDir::example();
    let herald = std::fs::read_to_string(config.path().join("herald.toml")).unwrap();
    config.write(
        "herald.toml",
        &format!("{herald}\n[http]\npublic = \"127.0.0.1:8080\"\nadmin = \"localhost:9\"\n"),
    );
    let problems = config.problems().join("\n");
    assert!(
        problems.contains("the public pages need public_url"),
        "{problems}"
    );
    assert!(
        problems.contains("the public pages need the link secret"),
        "{problems}"
    );
    assert!(
        problems.contains("invalid listening address \"localhost:9\""),
        "{problems}"
    );
    assert!(problems.contains("herald.toml:"), "{problems}");
}

/// A port another program holds stops the daemon's start, naming the
/// address and what to do; nothing is sent.
#[test]
fn a_port_in_use_stops_the_start_with_what_to_do() {
    let config = ConfigDir::example();
    let ports = serve_pages(&config, &[SECRET]);
    let _holder = std::net::TcpListener::bind(("127.0.0.1", ports.admin)).unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::spawn(
        config
            .run_before_the_future_meeting(state.path())
            .arg("--no-watch"),
    );
    let line = daemon.wait_for("cannot listen on");
    assert!(line.contains(&format!("127.0.0.1:{}", ports.admin)), "{line}");
    assert!(line.contains("another program listens on this port"), "{line}");
    assert!(!daemon.wait().success());
}
