//! The mailers against servers: the fault server for each way a relay can
//! fail, aiosmtpd for a real conversation with STARTTLS and AUTH, and a
//! maildir on disk. Every mailer is built the way the daemon builds it, with
//! `Mailer::from_settings`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use herald::clock::{Clock, ManualClock};
use herald::send::{Delivery, Security, SmtpSettings, Transport};
use herald::send::{Mailer, Outcome};
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use mail_parser::{MessageParser, MimeHeaders};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::support::aiosmtpd::{self, Sink};
use crate::support::smtp_faults::{Fault, FaultServer};

// ---------------------------------------------------------------------------
// Messages and mailers

/// A reminder shaped like the ones `render::message` builds: one recipient,
/// a non-ASCII subject, text and HTML alternatives, list headers.
fn reminder(n: usize) -> Message {
    let to: Mailbox = format!("Focal Point {n} <fp{n}@mission.example.net>")
        .parse()
        .unwrap();
    Message::builder()
        .message_id(Some(message_id(n)))
        .from("Secrétariat GCM <gcm@example.org>".parse().unwrap())
        .to(to)
        .subject(format!("Rappel nº {n} : consultations du 5 décembre"))
        .raw_header(header("Auto-Submitted", "auto-generated"))
        .raw_header(header("List-Id", "\"Focal points\" <focal-points.example.org>"))
        .multipart(MultiPart::alternative_plain_html(
            format!("Excellence,\n\nla réunion nº {n} aura lieu à 15 h 00, heure de New York.\n"),
            format!("<p>Excellence,</p><p>la réunion nº {n} aura lieu à <b>15 h 00</b>.</p>"),
        ))
        .unwrap()
}

fn message_id(n: usize) -> String {
    format!("<reminder-{n}.herald@example.org>")
}

fn header(name: &str, value: &str) -> HeaderValue {
    HeaderValue::new(
        HeaderName::new_from_ascii(name.to_owned()).unwrap(),
        value.to_owned(),
    )
}

/// Plain SMTP to loopback, no AUTH, no limits to speak of.
fn smtp(port: u16) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        security: Security::None,
        username: None,
        password: None,
        allow_plaintext_auth: false,
        ca_file: None,
        timeout: Duration::from_secs(10),
        max_connections: 4,
        per_minute: None,
        per_hour: None,
        per_day: None,
        max_early: jiff::SignedDuration::from_mins(30),
    }
}

fn delivery(transport: Transport) -> Delivery {
    Delivery {
        transport,
        state_dir: "/nonexistent/state".into(),
        database: None,
        late_window: jiff::SignedDuration::from_hours(6),
        redirect_to: None,
        max_message_size: 10_000_000,
    }
}

fn mailer(settings: SmtpSettings) -> Mailer {
    Mailer::from_settings(&delivery(Transport::Smtp(settings))).expect("valid settings")
}

/// Sends `count` reminders at once through `mailer`; outcomes in order.
async fn send_all(mailer: &Arc<Mailer>, count: usize) -> Vec<Outcome> {
    let mut sends = JoinSet::new();
    for n in 0..count {
        let mailer = Arc::clone(mailer);
        sends.spawn(async move { (n, mailer.send(&reminder(n)).await) });
    }
    let mut outcomes: Vec<(usize, Outcome)> = sends.join_all().await;
    outcomes.sort_by_key(|(n, _)| *n);
    outcomes.into_iter().map(|(_, outcome)| outcome).collect()
}

// ---------------------------------------------------------------------------
// Each fault, and the outcome it must give

/// Sends one reminder to a server with `fault` and checks the outcome.
async fn check(fault: Fault, expected: Outcome) {
    let server = FaultServer::start(fault).await;
    let outcome = mailer(smtp(server.port())).send(&reminder(1)).await;
    assert_eq!(outcome, expected);
    assert!(server.accepted().is_empty(), "a refused message was kept");
}

fn transient(reply: &str) -> Outcome {
    Outcome::Transient { reply: reply.into() }
}

fn permanent(reply: &str) -> Outcome {
    Outcome::Permanent { reply: reply.into() }
}

#[tokio::test]
async fn a_421_greeting_is_transient() {
    let reply = "421 4.3.2 Service not available, closing transmission channel";
    check(Fault::OnConnect(reply), transient(reply)).await;
}

#[tokio::test]
async fn a_451_at_rcpt_is_transient() {
    let reply = "451 4.3.0 Try again later";
    check(Fault::AtRcpt(reply), transient(reply)).await;
}

#[tokio::test]
async fn a_452_at_rcpt_is_transient() {
    let reply = "452 4.5.3 Too many recipients";
    check(Fault::AtRcpt(reply), transient(reply)).await;
}

#[tokio::test]
async fn a_550_at_rcpt_is_permanent() {
    let reply = "550 5.1.1 <fp1@mission.example.net>: Recipient address rejected: User unknown";
    check(Fault::AtRcpt(reply), permanent(reply)).await;
}

#[tokio::test]
async fn a_451_after_data_is_transient() {
    let reply = "451 4.3.0 Error: queue file write error";
    check(Fault::AfterData(reply), transient(reply)).await;
}

#[tokio::test]
async fn a_452_after_data_is_transient() {
    let reply = "452 4.3.1 Insufficient system storage";
    check(Fault::AfterData(reply), transient(reply)).await;
}

#[tokio::test]
async fn a_554_after_data_is_permanent() {
    let reply = "554 5.7.1 Message rejected: policy violation";
    check(Fault::AfterData(reply), permanent(reply)).await;
}

#[tokio::test]
async fn a_connection_dropped_mid_data_is_transient() {
    let server = FaultServer::start(Fault::DropMidData).await;
    let outcome = mailer(smtp(server.port())).send(&reminder(1)).await;
    // A reset ("network error") or a plain close ("response error:
    // incomplete response"), depending on timing; never a reply code.
    assert!(
        matches!(&outcome, Outcome::Transient { reply }
            if reply.starts_with("network error") || reply.starts_with("response error")),
        "{outcome:?}"
    );
    assert!(server.accepted().is_empty());
}

#[tokio::test]
async fn a_relay_that_never_answers_the_final_dot_times_out_as_transient() {
    let server = FaultServer::start(Fault::StallAfterData).await;
    let mailer = mailer(SmtpSettings {
        timeout: Duration::from_secs(1),
        ..smtp(server.port())
    });
    let started = Instant::now();
    // The outer timeout only turns a regression into a failure, not a hang.
    let outcome = tokio::time::timeout(Duration::from_secs(10), mailer.send(&reminder(1)))
        .await
        .expect("the mailer's own timeout should have fired after 1 s");
    let elapsed = started.elapsed();
    assert!(
        matches!(&outcome, Outcome::Transient { reply } if reply.starts_with("timed out after 1s")),
        "{outcome:?}"
    );
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

/// No AUTH mechanism in common is the relay's fault, not the message's:
/// the relay is paused (not failed for good), the reply says why without
/// the password, and the next send does not even connect until the pause
/// is over.
#[tokio::test]
async fn no_auth_mechanism_in_common_pauses_the_relay() {
    let server = FaultServer::builder().extension("AUTH CRAM-MD5").start().await;
    let mailer = mailer(SmtpSettings {
        username: Some("secretariat".into()),
        password: Some("not-in-any-reply".into()),
        ..smtp(server.port())
    });
    let outcome = mailer.send(&reminder(1)).await;
    assert!(
        matches!(&outcome, Outcome::Paused { reply, tried: true, .. }
            if reply.contains("sending is paused") && reply.contains("PLAIN or LOGIN")),
        "{outcome:?}"
    );
    assert!(!outcome.reply().contains("not-in-any-reply"));
    let connections = server.connections();
    let next = mailer.send(&reminder(2)).await;
    assert!(matches!(&next, Outcome::Paused { tried: false, .. }), "{next:?}");
    assert_eq!(server.connections(), connections, "a paused relay is not tried");
    assert!(server.accepted().is_empty());
}

/// A relay that does not offer STARTTLS (a downgrade, as far as the client
/// can tell) gets nothing in clear, and is paused rather than every
/// message failed.
#[tokio::test]
async fn required_starttls_that_is_not_offered_sends_nothing() {
    let server = FaultServer::start(Fault::Accept).await;
    let outcome = mailer(SmtpSettings {
        security: Security::StartTls,
        ..smtp(server.port())
    })
    .send(&reminder(1))
    .await;
    assert!(
        matches!(&outcome, Outcome::Paused { reply, tried: true, .. }
            if reply.contains("sending is paused") && reply.contains("STARTTLS")),
        "{outcome:?}"
    );
    assert!(server.accepted().is_empty());
}

#[tokio::test]
async fn a_delivered_message_carries_the_final_reply_and_its_exact_bytes() {
    let server = FaultServer::start(Fault::Accept).await;
    let message = reminder(7);
    let outcome = mailer(smtp(server.port())).send(&message).await;
    assert_eq!(
        outcome,
        Outcome::Delivered {
            reply: "250 2.0.0 Ok: queued as F1".into()
        }
    );
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].rcpt_to, ["TO:<fp7@mission.example.net>"]);
    // What the relay got is what the message formats to: lettre adds no
    // header and regenerates none (a retry keeps its Message-ID).
    let mut expected = message.formatted();
    expected.extend_from_slice(b"\r\n");
    assert_eq!(
        String::from_utf8_lossy(&accepted[0].bytes),
        String::from_utf8_lossy(&expected)
    );
}

#[tokio::test]
async fn a_rehearsal_redirects_the_envelope_and_keeps_the_headers() {
    let server = FaultServer::start(Fault::Accept).await;
    let config = crate::harness::ConfigDir::example();
    let model = config.load().unwrap();
    let renderer = herald::render::prepare(&model).unwrap();
    let send = herald::plan::plan(&model, herald::plan::Window::default())
        .into_iter()
        .find(|s| s.to == "k.watanabe@japan-mission.example.org")
        .unwrap();
    let date = send.due.timestamp();
    let calendars = herald::resolve::Calendars::default();
    let send = herald::resolve::resolve(&model, &calendars, send).unwrap();
    let rendered = renderer.render(&model, &send, date).unwrap();
    let rehearsal: lettre::Address = "rehearsal@example.org".parse().unwrap();
    let message =
        herald::render::message::build_for(&model, &send, &rendered, date, Some(&rehearsal)).unwrap();
    let mailer = Mailer::from_settings(&delivery(Transport::Smtp(smtp(server.port())))).unwrap();
    assert!(mailer.send_timed(&message).await.0.is_delivered());
    let accepted = &server.accepted()[0];
    assert_eq!(accepted.mail_from, "FROM:<secretariat@gcm.example.org>");
    assert_eq!(accepted.rcpt_to, ["TO:<rehearsal@example.org>"]);
    let text = String::from_utf8_lossy(&accepted.bytes);
    assert!(
        text.contains("To: \"Kenji Watanabe\" <k.watanabe@japan-mission.example.org>"),
        "{text}"
    );
    assert!(
        text.contains("X-Herald-Rehearsal: for k.watanabe@japan-mission.example.org"),
        "{text}"
    );
}

#[tokio::test]
async fn a_message_for_several_recipients_is_refused_without_connecting() {
    let server = FaultServer::start(Fault::Accept).await;
    let message = Message::builder()
        .from("gcm@example.org".parse().unwrap())
        .to("a@example.net".parse().unwrap())
        .bcc("b@example.net".parse().unwrap())
        .subject("fan-out")
        .body("x".to_owned())
        .unwrap();
    let outcome = mailer(smtp(server.port())).send(&message).await;
    assert!(
        matches!(&outcome, Outcome::Permanent { reply } if reply.contains("this one has 2")),
        "{outcome:?}"
    );
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn after_shutdown_nothing_is_sent() {
    let server = FaultServer::start(Fault::Accept).await;
    let mailer = mailer(smtp(server.port()));
    mailer.shutdown().await;
    let outcome = mailer.send(&reminder(1)).await;
    assert!(
        matches!(&outcome, Outcome::Transient { reply } if reply.contains("shutting down")),
        "{outcome:?}"
    );
    assert_eq!(server.connections(), 0);
}

// ---------------------------------------------------------------------------
// Concurrency and cancellation

#[tokio::test]
async fn at_most_max_connections_are_open_at_once() {
    let server = FaultServer::builder()
        .hold_data_reply(Duration::from_millis(300))
        .start()
        .await;
    let mailer = Arc::new(mailer(SmtpSettings {
        max_connections: 2,
        ..smtp(server.port())
    }));
    let started = Instant::now();
    let outcomes = send_all(&mailer, 6).await;
    let elapsed = started.elapsed();
    assert!(outcomes.iter().all(Outcome::is_delivered), "{outcomes:?}");
    assert_eq!(server.accepted().len(), 6);
    // Each slot keeps its connection for its next message (RSET between).
    assert!(server.connections() <= 6, "{}", server.connections());
    assert_eq!(server.max_concurrent(), 2, "two connections, and both used");
    // Three rounds of two, each held 300 ms by the server.
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
}

#[tokio::test]
async fn a_send_cancelled_mid_data_leaves_the_mailer_usable() {
    // The first connection never answers the final dot; the next behave.
    let server = FaultServer::builder().first(Fault::StallAfterData).start().await;
    // One connection: the cancelled send must give its permit back too.
    let mailer = mailer(SmtpSettings {
        max_connections: 1,
        ..smtp(server.port())
    });
    let cancelled = tokio::time::timeout(Duration::from_millis(300), mailer.send(&reminder(1))).await;
    assert!(
        cancelled.is_err(),
        "the first send should still be waiting: {cancelled:?}"
    );

    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(5), mailer.send(&reminder(2)))
        .await
        .expect("the next send must not hang");
    let elapsed = started.elapsed();
    assert_eq!(
        outcome,
        Outcome::Delivered {
            reply: "250 2.0.0 Ok: queued as F1".into()
        }
    );
    assert!(elapsed < Duration::from_secs(1), "not prompt: {elapsed:?}");
    assert_eq!(server.connections(), 2);
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 1);
    assert!(String::from_utf8_lossy(&accepted[0].bytes).contains(&message_id(2)));
}

#[tokio::test]
async fn one_connection_carries_consecutive_sends_and_is_closed_when_idle() {
    let server = FaultServer::start(Fault::Accept).await;
    let mailer = mailer(SmtpSettings {
        max_connections: 1,
        ..smtp(server.port())
    });
    for n in 1..=5 {
        let outcome = mailer.send(&reminder(n)).await;
        assert!(outcome.is_delivered(), "{outcome:?}");
    }
    assert_eq!(server.accepted().len(), 5);
    assert_eq!(server.connections(), 1, "kept open between sends");
    mailer.release_idle().await;
    // And a send after that opens a new one.
    assert!(mailer.send(&reminder(6)).await.is_delivered());
    assert_eq!(server.connections(), 2);
}

/// A relay that closes the connection after each message: the next send
/// sees it closed before it starts, and delivers on a new one, once.
#[tokio::test]
async fn a_connection_the_relay_closed_while_idle_is_not_used() {
    let server = FaultServer::start(Fault::HangUpAfterMessage).await;
    let mailer = mailer(SmtpSettings {
        max_connections: 1,
        ..smtp(server.port())
    });
    for n in 1..=3 {
        assert!(mailer.send(&reminder(n)).await.is_delivered());
        // Until the 421 and the hang-up have reached this side.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.accepted().len(), 3, "each message once");
    assert_eq!(server.connections(), 3, "a new connection for each");
}

#[tokio::test]
async fn a_connection_whose_send_failed_is_never_reused() {
    // The first connection refuses the recipient; the next ones accept.
    let server = FaultServer::builder()
        .first(Fault::AtRcpt("550 5.1.1 no such user"))
        .start()
        .await;
    let mailer = mailer(SmtpSettings {
        max_connections: 1,
        ..smtp(server.port())
    });
    assert!(matches!(
        mailer.send(&reminder(1)).await,
        Outcome::Permanent { .. }
    ));
    assert!(mailer.send(&reminder(2)).await.is_delivered());
    assert_eq!(server.connections(), 2, "a new connection after the failure");
    assert_eq!(server.accepted().len(), 1);
}

// ---------------------------------------------------------------------------
// Rate limit (its arithmetic is unit-tested in src/pace.rs and src/send/rate.rs)

#[tokio::test]
async fn sends_are_paced_to_the_rate_limit() {
    let server = FaultServer::start(Fault::Accept).await;
    // 600 a minute: one every 100 ms, so this test waits 0.4 s in all.
    let mailer = mailer(SmtpSettings {
        per_minute: Some(600),
        ..smtp(server.port())
    });
    let started = Instant::now();
    for n in 0..5 {
        assert!(mailer.send(&reminder(n)).await.is_delivered());
    }
    assert!(
        started.elapsed() >= Duration::from_millis(390),
        "{:?}",
        started.elapsed()
    );
    // No message reaches the relay before its turn: the k-th not before
    // k × 100 ms. (Gaps between arrivals would be flaky on a loaded
    // machine, where one conversation is slowed and the next is not; a
    // turn taken early is what the limit forbids.)
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 5);
    for (k, message) in accepted.iter().enumerate() {
        let turn = Duration::from_millis(100 * k as u64);
        assert!(
            message.at.duration_since(started) >= turn,
            "message {k} reached the relay {:?} after the start, before its turn at {turn:?}",
            message.at.duration_since(started)
        );
    }
}

#[tokio::test]
async fn a_mailer_seeded_with_the_relay_s_last_departures_makes_the_first_send_wait() {
    let server = FaultServer::start(Fault::Accept).await;
    let clock: Arc<ManualClock> = Arc::new(ManualClock::new("2017-09-14T10:00:00Z".parse().unwrap()));
    let build = || {
        Mailer::from_settings_with_clock(
            &delivery(Transport::Smtp(SmtpSettings {
                per_minute: Some(600),
                per_day: Some(1000),
                ..smtp(server.port())
            })),
            Arc::clone(&clock) as Arc<dyn Clock>,
        )
        .unwrap()
    };

    // With nothing sent before, the first message goes at once.
    let started = Instant::now();
    assert!(build().send(&reminder(1)).await.is_delivered());
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );

    // After a restart, with a message sent just now by the daemon before
    // it (the outbox's attempts say so), the first waits its turn: 100 ms
    // at 600 a minute; and the day's count goes on from there.
    let restarted = build();
    restarted.seed_departures(vec![clock.now()]);
    assert_eq!(restarted.day_used(), Some((1, 1000)));
    let started = Instant::now();
    assert!(restarted.send(&reminder(2)).await.is_delivered());
    assert!(
        started.elapsed() >= Duration::from_millis(90),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// A real SMTP server: aiosmtpd

#[tokio::test]
async fn twenty_messages_reach_a_real_server_once_each_and_intact() {
    let sink = Sink::plain();
    let mailer = Arc::new(mailer(smtp(sink.port())));
    let outcomes = send_all(&mailer, 20).await;
    for outcome in &outcomes {
        assert!(
            matches!(outcome, Outcome::Delivered { reply } if reply.starts_with("250 2.0.0 Ok: queued as sink-")),
            "{outcome:?}"
        );
    }

    let received = sink.received();
    assert_eq!(received.len(), 20);
    let mut seen = BTreeMap::new();
    for message in &received {
        let parsed = MessageParser::default()
            .parse(&message.bytes)
            .expect("a parsable message");
        let id = parsed.message_id().expect("a Message-ID").to_owned();
        let n: usize = id
            .strip_prefix("reminder-")
            .and_then(|rest| rest.strip_suffix(".herald@example.org"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected Message-ID {id}"));
        *seen.entry(n).or_insert(0) += 1;

        assert_eq!(message.rcpt_tos, [format!("fp{n}@mission.example.net")]);
        assert_eq!(
            parsed.subject(),
            Some(format!("Rappel nº {n} : consultations du 5 décembre").as_str())
        );
        let to = parsed.to().and_then(|to| to.first()).expect("a To address");
        assert_eq!(to.address(), Some(format!("fp{n}@mission.example.net").as_str()));
        assert_eq!(to.name(), Some(format!("Focal Point {n}").as_str()));
        assert_eq!(
            parsed
                .from()
                .and_then(|from| from.first())
                .and_then(|from| from.name()),
            Some("Secrétariat GCM")
        );
        assert_eq!(
            parsed.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-generated")
        );
        assert_eq!(
            parsed.header_raw("List-Id").map(str::trim),
            Some("\"Focal points\" <focal-points.example.org>")
        );

        // Both alternatives, each with its own content type and text.
        let types: Vec<String> = parsed
            .parts
            .iter()
            .filter_map(|part| part.content_type())
            .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")))
            .collect();
        assert_eq!(types, ["multipart/alternative", "text/plain", "text/html"]);
        let text = parsed.body_text(0).expect("a text part");
        assert!(
            text.contains(&format!("la réunion nº {n} aura lieu à 15 h 00")),
            "{text}"
        );
        let html = parsed.body_html(0).expect("an HTML part");
        assert!(html.contains("<b>15 h 00</b>"), "{html}");
    }
    let expected: BTreeMap<usize, i32> = (0..20).map(|n| (n, 1)).collect();
    assert_eq!(seen, expected, "each message exactly once");
}

fn starttls(sink: &Sink, password: &str) -> SmtpSettings {
    SmtpSettings {
        security: Security::StartTls,
        username: Some(aiosmtpd::USER.into()),
        password: Some(password.into()),
        ca_file: Some(sink.ca_file()),
        ..smtp(sink.port())
    }
}

#[tokio::test]
async fn starttls_and_auth_deliver_to_a_real_server() {
    let sink = Sink::with_starttls_and_auth();
    let mailer = mailer(starttls(&sink, aiosmtpd::PASSWORD));
    assert_eq!(
        mailer.describe(),
        format!("smtp://127.0.0.1:{} (starttls)", sink.port())
    );
    let outcome = mailer.send(&reminder(1)).await;
    assert_eq!(
        outcome,
        Outcome::Delivered {
            reply: "250 2.0.0 Ok: queued as sink-1".into()
        }
    );
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].tls, "the message must have come over TLS");
    assert_eq!(received[0].login.as_deref(), Some(aiosmtpd::USER));
}

#[tokio::test]
async fn a_wrong_password_is_permanent_with_535() {
    let sink = Sink::with_starttls_and_auth();
    let outcome = mailer(starttls(&sink, "wrong password")).send(&reminder(1)).await;
    assert_eq!(outcome, permanent("535 5.7.8 Authentication credentials invalid"));
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    // Without ca_file the sink's certificate is signed by nobody we trust:
    // the handshake fails before the password or the message go out.
    let sink = Sink::with_starttls_and_auth();
    let outcome = mailer(SmtpSettings {
        ca_file: None,
        ..starttls(&sink, aiosmtpd::PASSWORD)
    })
    .send(&reminder(1))
    .await;
    assert!(
        matches!(&outcome, Outcome::Transient { reply }
            if reply.contains("invalid peer certificate") && reply.contains("set ca_file")),
        "{outcome:?}"
    );
    assert!(sink.received().is_empty());
}

/// Copies the example configuration and its templates into `root`.
fn example_config(root: &Path) -> std::path::PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &to.join(entry.file_name()));
            } else {
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR"));
    copy(&source.join("config"), &root.join("config"));
    copy(&source.join("templates"), &root.join("templates"));
    root.join("config")
}

#[tokio::test]
async fn a_relay_with_a_private_ca_works_from_herald_toml_to_delivery() {
    let sink = Sink::with_starttls_and_auth();
    let root = tempfile::tempdir().unwrap();
    let config = example_config(root.path());
    std::fs::copy(sink.ca_file(), config.join("relay-ca.pem")).unwrap();
    std::fs::write(config.join("smtp-password"), format!("{}\n", aiosmtpd::PASSWORD)).unwrap();
    let smtp_table = |ca_file: &str| {
        format!(
            r#"
[delivery.smtp]
host = "127.0.0.1"
port = {port}
security = "starttls"
username = "{user}"
password_file = "smtp-password"
ca_file = "{ca_file}"
timeout = "10s"
"#,
            port = sink.port(),
            user = aiosmtpd::USER,
        )
    };
    let settings = std::fs::read_to_string(config.join("herald.toml")).unwrap();
    let env = herald::config::Environment::default()
        .with("HERALD_TRANSPORT", "smtp")
        .with(
            "HERALD_STATE_DIR",
            &root.path().join("state").display().to_string(),
        );

    // A ca_file that is not there is a config error, with its place.
    std::fs::write(
        config.join("herald.toml"),
        format!("{settings}{}", smtp_table("missing.pem")),
    )
    .unwrap();
    let problems = herald::config::load(&config, &env)
        .expect_err("a missing ca_file")
        .to_string();
    assert!(
        problems.contains("missing.pem is not a readable file"),
        "{problems}"
    );

    std::fs::write(
        config.join("herald.toml"),
        format!("{settings}{}", smtp_table("relay-ca.pem")),
    )
    .unwrap();
    let loaded = herald::config::load(&config, &env).unwrap_or_else(|problems| panic!("{problems}"));
    let mailer = Mailer::from_settings(&loaded.delivery).unwrap();
    assert_eq!(
        mailer.describe(),
        format!("smtp://127.0.0.1:{} (starttls)", sink.port())
    );
    let outcome = mailer.send(&reminder(1)).await;
    assert!(outcome.is_delivered(), "{outcome:?}");
    let received = sink.received();
    assert!(received[0].tls);
    assert_eq!(received[0].login.as_deref(), Some(aiosmtpd::USER));
}

// ---------------------------------------------------------------------------
// Maildir

fn files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn the_maildir_gets_one_file_per_send_and_nothing_left_in_tmp() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("state/maildir");
    let mailer = Mailer::from_settings(&delivery(Transport::Maildir(dir.clone()))).unwrap();
    assert_eq!(mailer.describe(), format!("maildir {}", dir.display()));
    assert!(!mailer.is_limited());
    assert_eq!(mailer.day_used(), None);

    let first = reminder(1);
    let second = reminder(2);
    for message in [&first, &second, &first] {
        let outcome = mailer.send(message).await;
        assert!(
            matches!(&outcome, Outcome::Delivered { reply } if reply.starts_with("written to ")),
            "{outcome:?}"
        );
    }

    let new = files_in(&dir.join("new"));
    assert_eq!(new.len(), 3, "the same message twice is two files: {new:?}");
    assert!(files_in(&dir.join("tmp")).is_empty());
    assert!(files_in(&dir.join("cur")).is_empty());
    let mut contents: Vec<Vec<u8>> = new.iter().map(|path| std::fs::read(path).unwrap()).collect();
    contents.sort();
    let mut expected = vec![first.formatted(), first.formatted(), second.formatted()];
    expected.sort();
    assert_eq!(contents, expected);
}

#[tokio::test]
async fn a_maildir_that_cannot_be_written_is_transient() {
    let root = tempfile::tempdir().unwrap();
    let blocker = root.path().join("not-a-directory");
    std::fs::write(&blocker, "a file where the maildir should be").unwrap();
    let mailer = Mailer::from_settings(&delivery(Transport::Maildir(blocker.join("maildir")))).unwrap();
    let outcome = mailer.send(&reminder(1)).await;
    assert!(
        matches!(&outcome, Outcome::Transient { reply }
            if reply.starts_with("cannot write to the maildir") && reply.contains("not-a-directory")),
        "{outcome:?}"
    );
}
