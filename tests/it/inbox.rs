//! The process's mailbox end to end: a rehearsal sends reminders to a real
//! SMTP server (aiosmtpd); what comes back (a delivery report for one
//! focal point, an unsubscribe from another) arrives in a maildir, or on a
//! real IMAP server (Dovecot); the next rehearsal takes it in at its start,
//! and that focal point's next reminders are suppressed while the others
//! go out; the operator's digest, the next morning, names both.

use herald::inbox::Kind;
use herald::key::{AddressKey, SendKey};
use herald::outbox::{Outbox, SqliteOutbox, State, Taken};
use mail_parser::MessageParser;

use crate::daemon::{run_between, smtp_config};
use crate::harness::{ConfigDir, FUTURE_ROADMAP, stdout};
use crate::support::aiosmtpd::{Received, Sink};
use crate::support::dovecot::{self, Dovecot};

/// The future meeting's first reminders (1d: 2099-02-28T20:00Z) go out
/// between these instants, its last two (2h and 30m) after.
const FROM: &str = "2099-02-28T15:00:00Z";
const BETWEEN: &str = "2099-02-28T21:00:00Z";
const UNTIL: &str = "2099-03-01T20:10:00Z";

/// Whose reminder bounces, and who asks to be taken off the list.
const BOUNCING: &str = "priya.raman@india-mission.example.org";
const LEAVING: &str = "k.watanabe@japan-mission.example.org";

const SECRET: &str = "c2VjcmV0IGZvciB0aGUgaW5ib3ggdGVzdHMsIGF0IGxlYXN0IDMyIGJ5dGVz\n";

/// The example configuration with the future meeting, over SMTP to `sink`,
/// with a bounce address, a link secret, and `inbox` as its `[inbox]`.
fn config(sink: &Sink, inbox: &str) -> ConfigDir {
    let config = smtp_config(sink.port(), 2);
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    config.write("link-secret", SECRET);
    config.edit(
        "config/herald.toml",
        "[sender]\n",
        "[sender]\nbounce_address = \"bounces@gcm.example.org\"\nlink_secret_file = \"link-secret\"\n",
    );
    let text = std::fs::read_to_string(config.path().join("herald.toml")).unwrap();
    config.write(
        "herald.toml",
        &format!(
            "{text}\n[inbox]\n{inbox}\n\n[digest]\nto = [\"{OPERATOR}\"]\nat = \"08:00\"\ntime_zone = \"UTC\"\n"
        ),
    );
    config
}

/// Who gets the digest (at 08:00 UTC: 2099-03-01T08:00Z, in the second run).
const OPERATOR: &str = "ops@gcm.example.org";

/// [`config`] with an empty maildir as its inbox.
fn with_maildir(sink: &Sink) -> (tempfile::TempDir, ConfigDir) {
    let mailbox = tempfile::tempdir().unwrap();
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(mailbox.path().join(sub)).unwrap();
    }
    let config = config(sink, &format!("maildir = \"{}\"", mailbox.path().display()));
    (mailbox, config)
}

/// The message `sink` received for `to` about the future meeting.
fn reminder_to<'a>(received: &'a [Received], to: &str) -> &'a Received {
    let found: Vec<&Received> = received
        .iter()
        .filter(|message| message.rcpt_tos.iter().any(|rcpt| rcpt == to))
        .collect();
    assert_eq!(found.len(), 1, "one reminder to {to}");
    found[0]
}

/// A delivery status notification (RFC 3464) as Postfix writes one, for
/// `message` returned to its envelope sender: the recipient's mailbox
/// does not exist.
fn bounce_of(message: &Received, recipient: &str) -> Vec<u8> {
    let parsed = MessageParser::default().parse(&message.bytes).unwrap();
    let message_id = parsed.message_id().unwrap();
    let envelope_sender = &message.mail_from;
    assert!(envelope_sender.starts_with("bounces+"), "{envelope_sender}");
    format!(
        "Return-Path: <>\r\n\
         X-Original-To: {envelope_sender}\r\n\
         Delivered-To: {envelope_sender}\r\n\
         From: MAILER-DAEMON@mx.india-mission.example.org (Mail Delivery System)\r\n\
         To: {envelope_sender}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Date: Sat, 28 Feb 2099 20:01:02 +0000\r\n\
         Message-ID: <20990228200102.4F2A1@mx.india-mission.example.org>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B1\"\r\n\
         \r\n\
         --B1\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n\
         I'm sorry to have to inform you that your message could not\r\n\
         be delivered to one or more recipients.\r\n\
         \r\n\
         <{recipient}>: host mx.india-mission.example.org said: 550 5.1.1 <{recipient}>:\r\n\
         \x20   Recipient address rejected: User unknown in local recipient table\r\n\
         \r\n\
         --B1\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mx.india-mission.example.org\r\n\
         Arrival-Date: Sat, 28 Feb 2099 20:01:01 +0000\r\n\
         \r\n\
         Final-Recipient: rfc822; {recipient}\r\n\
         Original-Recipient: rfc822;{recipient}\r\n\
         Action: failed\r\n\
         Status: 5.1.1\r\n\
         Remote-MTA: dns; mx.india-mission.example.org\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected:\r\n\
         \x20   User unknown in local recipient table\r\n\
         \r\n\
         --B1\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         Message-ID: <{message_id}>\r\n\
         To: {recipient}\r\n\
         Subject: Reminder\r\n\
         \r\n\
         --B1--\r\n"
    )
    .into_bytes()
}

/// What a mail client sends for the `mailto:` of `message`'s
/// List-Unsubscribe, from `from`.
fn unsubscribe_reply(message: &Received, from: &str) -> Vec<u8> {
    let parsed = MessageParser::default().parse(&message.bytes).unwrap();
    let header = parsed
        .header_raw("List-Unsubscribe")
        .expect("a List-Unsubscribe header")
        .replace("\r\n", "");
    let mailto = header
        .split(['<', '>'])
        .find(|part| part.starts_with("mailto:"))
        .expect("a mailto: unsubscribe");
    let (to, query) = mailto.trim_start_matches("mailto:").split_once('?').unwrap();
    let subject = query
        .strip_prefix("subject=")
        .expect("a subject")
        .replace("%20", " ");
    assert!(subject.starts_with("unsubscribe u1.member-states."), "{subject}");
    format!(
        "From: Kenji Watanabe <{from}>\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Sat, 28 Feb 2099 22:00:00 +0000\r\nMessage-ID: <unsubscribe-1@japan-mission.example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\r\n"
    )
    .into_bytes()
}

/// The first run's reminders went to everyone on the list; after what came
/// back, the second run's suppressed those of `BOUNCING` (every list) and
/// `LEAVING` (the list), and sent the others.
fn assert_suppressed_after(outbox: &SqliteOutbox, sink: &Sink, first_run: usize) {
    let received = sink.received();
    let (digests, later): (Vec<&Received>, Vec<&Received>) = received[first_run..]
        .iter()
        .partition(|message| message.rcpt_tos.iter().any(|rcpt| rcpt == OPERATOR));
    assert!(!later.is_empty(), "the second run sent the other reminders");
    for message in &later {
        for gone in [BOUNCING, LEAVING] {
            assert!(
                !message.rcpt_tos.iter().any(|rcpt| rcpt == gone),
                "{gone} got a message after what came back"
            );
        }
    }
    for (who, why) in [(BOUNCING, "5.1.1"), (LEAVING, "unsubscribed by mail")] {
        for lead in ["2h", "30m"] {
            let key = SendKey::reminder("future-meeting", lead, &AddressKey::of(who));
            let entry = &outbox.entries_for(&[&key]).unwrap()[0];
            assert_eq!(entry.state, State::Suppressed, "{entry:?}");
            let reason = entry.reason.as_deref().unwrap();
            assert!(reason.contains(why), "{reason}");
        }
    }
    let sent_later = outbox
        .entries_in(State::Sent)
        .unwrap()
        .into_iter()
        .filter(|entry| matches!(entry.spec.key.lead(), Some("2h" | "30m")))
        .count();
    assert_eq!(
        sent_later,
        later.len(),
        "every other focal point got the last two reminders"
    );

    // The morning's digest names the bounce and the unsubscribe, and who.
    assert_eq!(digests.len(), 1, "one digest, at 08:00");
    let digest = MessageParser::default().parse(&digests[0].bytes).unwrap();
    let text = digest.body_text(0).unwrap();
    for expected in [BOUNCING, "5.1.1", LEAVING, "unsubscribed"] {
        assert!(
            text.contains(expected),
            "the digest does not name {expected:?}:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_and_an_unsubscribe_in_the_maildir_suppress_the_next_reminders() {
    let sink = Sink::plain();
    let (mailbox, config) = with_maildir(&sink);
    let state = tempfile::tempdir().unwrap();

    run_between(&config, state.path(), FROM, BETWEEN).await;
    let received = sink.received();
    let first_run = received.len();
    let bounced = reminder_to(&received, BOUNCING);
    std::fs::write(
        mailbox.path().join("new/4102444862.M1P1.mx"),
        bounce_of(bounced, BOUNCING),
    )
    .unwrap();
    let unsubscribing = reminder_to(&received, LEAVING);
    std::fs::write(
        mailbox.path().join("new/4102448400.M2P1.mx"),
        unsubscribe_reply(unsubscribing, LEAVING),
    )
    .unwrap();

    let outbox = run_between(&config, state.path(), BETWEEN, UNTIL).await;
    assert_suppressed_after(&outbox, &sink, first_run);

    // Both are recorded, the bounce with the send it returned.
    let incoming = outbox.incoming_since(FROM.parse().unwrap()).unwrap();
    assert_eq!(incoming.len(), 2, "{incoming:?}");
    let bounce = incoming
        .iter()
        .find(|row| row.kind == Kind::Bounce.as_str())
        .unwrap();
    assert_eq!(
        bounce.send,
        Some(SendKey::reminder(
            "future-meeting",
            "1d",
            &AddressKey::of(BOUNCING)
        ))
    );
    // Both were moved to the processed folder, nothing left unread.
    assert_eq!(std::fs::read_dir(mailbox.path().join("new")).unwrap().count(), 0);
    let processed = std::fs::read_dir(mailbox.path().join(".Processed/cur"))
        .unwrap()
        .count();
    assert_eq!(processed, 2);

    // A second look at the same report changes nothing.
    let again = herald::inbox::process::Reading {
        model: &config.model(),
        outbox: &outbox,
        policy: Default::default(),
        source: "test",
    }
    .take_in(&bounce_of(bounced, BOUNCING), UNTIL.parse().unwrap())
    .unwrap();
    assert_eq!(again.taken, Taken::Seen);

    // The operator sees the suppressions.
    let listed = config.herald(&["suppressions", "--state-dir", &state.path().display().to_string()]);
    let listed = stdout(&listed);
    assert!(listed.contains(BOUNCING) && listed.contains(LEAVING), "{listed}");
}

/// The same through a real IMAP server: the report is delivered to the
/// account's INBOX, taken in at the rehearsal's start, and moved to the
/// processed folder, flagged seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_on_the_imap_server_suppresses_the_next_reminders() {
    let server = Dovecot::start();
    let sink = Sink::plain();
    let password = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(password.path(), format!("{}\n", dovecot::PASSWORD)).unwrap();
    let inbox = format!(
        "imap = {{ host = \"{}\", port = {}, security = \"tls\", username = \"{}\", password_file = \"{}\", ca_file = \"{}\" }}\nprocessed = \"herald.processed\"",
        server.host(),
        server.port(),
        dovecot::USER,
        password.path().display(),
        server.ca_file().display()
    );
    let config = config(&sink, &inbox);
    let state = tempfile::tempdir().unwrap();

    run_between(&config, state.path(), FROM, BETWEEN).await;
    let received = sink.received();
    let first_run = received.len();
    server.deliver(
        "1.bounce.mx",
        &bounce_of(reminder_to(&received, BOUNCING), BOUNCING),
    );
    server.deliver(
        "2.unsubscribe.mx",
        &unsubscribe_reply(reminder_to(&received, LEAVING), LEAVING),
    );

    let outbox = run_between(&config, state.path(), BETWEEN, UNTIL).await;
    assert_suppressed_after(&outbox, &sink, first_run);
    let processed = server.messages("herald.processed");
    assert_eq!(processed.len(), 2, "{processed:?}");
    assert!(server.messages("INBOX").is_empty());
}

/// A `--fast-forward` rehearsal reads the mailbox at its start, so it shows
/// what a report does, but moves nothing in it: the mailbox is the
/// service's, which must still find the report where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehearsal_takes_a_report_into_account_and_leaves_it_in_the_mailbox() {
    let sink = Sink::plain();
    let (mailbox, config) = with_maildir(&sink);
    let state = tempfile::tempdir().unwrap();
    run_between(&config, state.path(), FROM, BETWEEN).await;
    let received = sink.received();
    let report = mailbox.path().join("new/4102444862.M1P1.mx");
    std::fs::write(&report, bounce_of(reminder_to(&received, BOUNCING), BOUNCING)).unwrap();

    let state_dir = state.path().display().to_string();
    let rehearsal = config.herald(&[
        "run",
        "--fast-forward",
        "--real-recipients",
        "--rehearse-from",
        BETWEEN,
        "--until",
        UNTIL,
        "--state-dir",
        &state_dir,
    ]);
    assert!(
        rehearsal.status.success(),
        "{}",
        crate::harness::stderr(&rehearsal)
    );
    assert!(report.exists(), "the rehearsal moved the report");
    let outbox = SqliteOutbox::open(state.path()).unwrap();
    let key = SendKey::reminder("future-meeting", "2h", &AddressKey::of(BOUNCING));
    assert_eq!(outbox.entries_for(&[&key]).unwrap()[0].state, State::Suppressed);
    assert!(
        !sink.received()[received.len()..]
            .iter()
            .any(|message| message.rcpt_tos.iter().any(|rcpt| rcpt == BOUNCING)),
        "the rehearsal sent to the address that bounced"
    );
}
