//! The admin listener against a running daemon, through a real HTTP
//! client: `/metrics` read by Prometheus' own Python parser, `/healthz`
//! passing and stuck on the watchdog's terms, and the status page.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::daemon::smtp_config;
use crate::harness::{ConfigDir, FUTURE_ROADMAP};
use crate::support::aiosmtpd::Sink;
use crate::support::web::{Answer, Client, SECRET, serve_pages};

/// A few seconds before the first reminder of [`FUTURE_ROADMAP`]
/// (2099-02-28T20:00Z, to each of the list's focal points).
const JUST_BEFORE_THE_FIRST_REMINDER: &str = "2099-02-28T19:59:57Z";

/// The metrics' families as `prometheus_client.openmetrics.parser` reads
/// them: `[{name, type, samples: [{name, labels, value}]}]`. A text it
/// cannot parse fails the test with the parser's error.
fn parse_metrics(text: &str) -> Vec<Value> {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
families = []
for family in text_string_to_metric_families(sys.stdin.read()):
    families.append({
        "name": family.name,
        "type": family.type,
        "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in family.samples],
    })
print(json.dumps(families))
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (with `pip install -r scripts/requirements-test.txt`)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the parser refuses the metrics: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The value of the sample `name` whose labels include `labels`.
fn sample(families: &[Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families
        .iter()
        .flat_map(|family| family["samples"].as_array().unwrap())
        .find(|sample| {
            sample["name"] == name
                && labels
                    .iter()
                    .all(|(key, value)| sample["labels"][key].as_str() == Some(value))
        })
        .map(|sample| sample["value"].as_f64().unwrap())
}

/// The headers every answer of herald's carries.
#[track_caller]
fn assert_secure(answer: &Answer) {
    let policy = answer.header("content-security-policy").unwrap_or_default();
    assert!(policy.contains("default-src 'none'"), "{:?}", answer.headers);
    assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
}

/// Waits (up to `within`) until `check` holds.
#[track_caller]
fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "not in {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn metrics_parse_as_openmetrics_and_count_a_reminder_sent() {
    let sink = Sink::plain();
    let config = smtp_config(sink.port(), 2);
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    let ports = serve_pages(&config, &[SECRET]);
    let state = tempfile::tempdir().unwrap();
    let mut daemon = ports.start(
        config
            .run_command(state.path())
            .args(["--rehearse-from", JUST_BEFORE_THE_FIRST_REMINDER])
            .args(["--real-recipients", "--no-watch"]),
    );
    let client = Client::new();

    let health = client.get(&format!("{}/healthz", ports.admin_url()));
    assert_eq!((health.status, health.body.trim()), (200, "ok"));
    assert_secure(&health);

    // The first reminder goes to each focal point of the list.
    daemon.wait_for("herald::scheduler: sent");
    eventually(Duration::from_secs(20), "the reminders reach the sink", || {
        sink.received().len() >= 9
    });
    // The gauges are set when the loop looks ahead, after the burst.
    let metrics = format!("{}/metrics", ports.admin_url());
    eventually(Duration::from_secs(20), "the loop looks ahead", || {
        let families = parse_metrics(&client.get(&metrics).body);
        sample(&families, "herald_outbox_next_due_timestamp_seconds", &[]).is_some_and(|due| due > 0.0)
    });
    let answer = client.get(&metrics);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let families = parse_metrics(&answer.body);
    for family in &families {
        let name = family["name"].as_str().unwrap();
        assert!(name.starts_with("herald_"), "{name} is not herald's");
    }
    let sent = sample(
        &families,
        "herald_sends_total",
        &[("kind", "reminder"), ("state", "sent")],
    );
    assert!(sent.is_some_and(|sent| sent >= 9.0), "{sent:?}\n{}", answer.body);
    let late = sample(&families, "herald_send_lateness_seconds_count", &[]);
    assert!(late.is_some_and(|late| late >= 9.0), "{late:?}\n{}", answer.body);
    // On time: every reminder in the lowest buckets, none hours late.
    let within_a_minute = sample(
        &families,
        "herald_send_lateness_seconds_bucket",
        &[("le", "64.0")],
    );
    assert_eq!(within_a_minute, late, "{}", answer.body);
    let accepted = sample(&families, "herald_smtp_replies_total", &[("class", "2xx")]);
    assert!(accepted.is_some_and(|n| n >= 9.0), "{}", answer.body);
    let planned = sample(&families, "herald_outbox_rows", &[("state", "planned")]);
    assert!(planned.is_some_and(|n| n > 0.0), "{}", answer.body);
    assert!(
        sample(&families, "herald_outbox_next_due_timestamp_seconds", &[])
            .is_some_and(|due| due >= 4_075_905_600.0),
        "the next due instant is in 2099: {}",
        answer.body
    );
    let pending = sample(&families, "herald_outbox_pending", &[]);
    assert_eq!(pending, Some(18.0), "the 2h and 30m reminders: {}", answer.body);
    assert!(
        sample(&families, "herald_reconcile_duration_seconds_count", &[]).is_some_and(|n| n >= 1.0),
        "{}",
        answer.body
    );

    // The requests are counted by route pattern: the health check above,
    // and a link with a token in it under the pattern, never the token.
    let token_path = "/unsubscribe/a-token-nobody-should-see";
    client.get(&format!("{}{token_path}", ports.public_url()));
    let families = parse_metrics(&client.get(&metrics).body);
    let health = sample(
        &families,
        "herald_http_requests_total",
        &[("listener", "admin"), ("route", "/healthz"), ("status", "200")],
    );
    assert!(health.is_some_and(|n| n >= 1.0), "{health:?}");
    let refused = sample(
        &families,
        "herald_http_requests_total",
        &[
            ("listener", "public"),
            ("route", "/unsubscribe/{token}"),
            ("status", "404"),
        ],
    );
    assert_eq!(refused, Some(1.0));
    let text = client.get(&metrics).body;
    assert!(!text.contains("a-token-nobody-should-see"), "{text}");
}

/// A loop that does not come round within the watchdog interval (here a
/// relay that takes the connection and never answers, with an SMTP timeout
/// far longer than the watchdog's second) is stuck: `/healthz` says 503 as
/// systemd would restart herald, while the admin listener still answers.
#[test]
fn healthz_says_503_while_the_loop_is_stuck() {
    let relay = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = relay.local_addr().unwrap().port();
    // Takes connections and holds them, saying nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in relay.incoming() {
            held.push(stream);
        }
    });
    let config = smtp_config(port, 1);
    config.edit("config/herald.toml", "timeout = \"3s\"", "timeout = \"120s\"");
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    let ports = serve_pages(&config, &[SECRET]);
    let state = tempfile::tempdir().unwrap();
    let sockets = tempfile::tempdir().unwrap();
    let notify = sockets.path().join("notify");
    let _listening = std::os::unix::net::UnixDatagram::bind(&notify).unwrap();
    let _daemon = ports.start(
        config
            .run_command(state.path())
            .args(["--rehearse-from", JUST_BEFORE_THE_FIRST_REMINDER])
            .args(["--real-recipients", "--no-watch"])
            .env("NOTIFY_SOCKET", &notify)
            .env("WATCHDOG_USEC", "1000000"),
    );
    let client = Client::new();
    let health = format!("{}/healthz", ports.admin_url());
    assert_eq!(client.get(&health).status, 200);

    eventually(Duration::from_secs(15), "/healthz says 503", || {
        client.get(&health).status == 503
    });
    let stuck = client.get(&health);
    assert!(stuck.body.contains("stuck"), "{}", stuck.body);
    assert_secure(&stuck);
}

#[test]
fn the_status_page_shows_the_next_sends_and_a_refused_edit() {
    let config = ConfigDir::example();
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    let ports = serve_pages(&config, &[SECRET]);
    let state = tempfile::tempdir().unwrap();
    let mut daemon = ports.start(&mut config.run_before_the_future_meeting(state.path()));
    let client = Client::new();
    let page = client.get(&ports.admin_url());
    assert_eq!(page.status, 200, "{}", page.body);
    assert_secure(&page);
    assert!(
        page.header("content-type")
            .unwrap_or_default()
            .starts_with("text/html"),
        "{:?}",
        page.headers
    );
    // One row per event and lead, with how many focal points it goes to.
    for lead in ["1d", "2h", "30m"] {
        let row =
            format!("<tr><td>reminder</td><td>future-meeting</td><td>{lead}</td><td class=\"count\">9</td>");
        assert!(page.body.contains(&row), "no row for {lead}:\n{}", page.body);
    }
    assert!(page.body.contains("Next sends (27 planned)"), "{}", page.body);
    assert!(page.body.contains("2099-02-28T20:00:00Z"), "{}", page.body);
    assert!(
        page.body.contains("The configuration on disk is the one in use."),
        "{}",
        page.body
    );

    // A bad edit is refused; the page says so, with the problem, and the
    // plan is still the last good one's.
    config.edit(
        "config/roadmaps/future.toml",
        "venue = \"new-york\"",
        "venue = \"atlantis\"",
    );
    daemon.wait_for("keeping the last good one running");
    let page = client.get(&ports.admin_url());
    assert!(page.body.contains("was refused"), "{}", page.body);
    assert!(page.body.contains("future.toml"), "{}", page.body);
    assert!(page.body.contains("atlantis"), "{}", page.body);
    assert!(page.body.contains("Next sends (27 planned)"), "{}", page.body);

    // Fixed: the refusal is gone.
    config.edit(
        "config/roadmaps/future.toml",
        "venue = \"atlantis\"",
        "venue = \"new-york\"",
    );
    daemon.wait_for("configuration reloaded");
    let page = client.get(&ports.admin_url());
    assert!(!page.body.contains("was refused"), "{}", page.body);
}
