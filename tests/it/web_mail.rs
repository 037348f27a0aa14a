//! The personal links in every message: `List-Unsubscribe` with the
//! reader's own https link and RFC 8058's `List-Unsubscribe-Post` when
//! herald serves pages, never otherwise; the footer's links; what `herald
//! check` says of a shared https unsubscribe address; and, end to end, a
//! link read from a delivered message that unsubscribes by POST, so that
//! the next reminder of that list is not sent to that reader.

use std::time::{Duration, Instant};

use herald::key::{AddressKey, SendKey};
use herald::outbox::{Outbox, SqliteOutbox, State};
use herald::tokens::LinkKeys;
use mail_parser::{Message, MessageParser};

use crate::daemon::smtp_config;
use crate::harness::{ConfigDir, FUTURE_ROADMAP, stderr, stdout};
use crate::support::aiosmtpd::{Received, Sink};
use crate::support::web::{Client, SECRET, serve_pages};

const KENJI: &str = "k.watanabe@japan-mission.example.org";
const LIST: &str = "member-states";
const LIST_NAME: &str = "Permanent Representatives and Permanent Observers";

/// The token the tests' secret signs for `address` on `list`.
fn token(list: &str, address: &str) -> String {
    LinkKeys::parse(SECRET.as_bytes())
        .expect("the tests' secret")
        .unsubscribe_token(list, &AddressKey::of(address))
}

fn parse(raw: &[u8]) -> Message<'_> {
    MessageParser::default().parse(raw).expect("an RFC 5322 message")
}

/// The URIs of `List-Unsubscribe`, as a real parser reads them (each in
/// angle brackets, comma-separated, RFC 2369).
fn unsubscribe_uris(message: &Message) -> Vec<String> {
    message
        .list_unsubscribe()
        .as_address()
        .map(|list| {
            list.iter()
                .filter_map(|uri| uri.address())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A header's value with its folding undone (RFC 5322, 2.2.3).
fn unfolded(message: &Message, name: &str) -> Option<String> {
    message
        .header_raw(name)
        .map(|value| value.replace("\r\n", "").trim().to_owned())
}

/// The physical lines of header `name` in `raw`: its first line and its
/// continuation lines.
fn header_lines(raw: &str, name: &str) -> Vec<String> {
    let head = &raw[..raw.find("\r\n\r\n").expect("a header block")];
    let mut lines = Vec::new();
    let mut inside = false;
    for line in head.split("\r\n") {
        if !line.starts_with([' ', '\t']) {
            inside = line.starts_with(&format!("{name}:"));
        }
        if inside {
            lines.push(line.to_owned());
        }
    }
    lines
}

fn reminder(config: &ConfigDir) -> String {
    let raw = config.preview(&["--event", "first-reading", "--lead", "7d", "--to", KENJI]);
    String::from_utf8(raw).expect("a message is ASCII")
}

/// With `[http]` and a link secret, a previewed reminder carries the
/// reader's own https link first and the personal mailto: after it, the
/// one-click header, and both links in the footer of the text and HTML.
#[test]
fn preview_shows_the_readers_own_links_in_the_headers_and_the_footer() {
    let config = ConfigDir::example();
    let ports = serve_pages(&config, &[SECRET]);
    let raw = reminder(&config);
    let message = parse(raw.as_bytes());
    let token = token(LIST, KENJI);
    let unsubscribe = format!("{}/unsubscribe/{token}", ports.public_url());
    let preferences = format!("{}/preferences/{token}", ports.public_url());
    let mailto = format!("mailto:gcmigration@gcm.example.org?subject=unsubscribe%20{token}");
    assert_eq!(unsubscribe_uris(&message), [unsubscribe.clone(), mailto.clone()]);
    assert_eq!(
        unfolded(&message, "List-Unsubscribe").as_deref(),
        Some(format!("<{unsubscribe}>, <{mailto}>").as_str())
    );
    assert_eq!(
        unfolded(&message, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    // Folded by lettre where a header may be folded: after the comma,
    // never inside a URI, each line within RFC 5322's 998 characters.
    let lines = header_lines(&raw, "List-Unsubscribe");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], format!("List-Unsubscribe: <{unsubscribe}>,"));
    assert_eq!(lines[1], format!(" <{mailto}>"));
    assert!(lines.iter().all(|line| line.len() <= 998));

    let text = message.body_text(0).expect("a text part");
    assert!(
        text.contains(&format!("Set your language, time zone and lists: {preferences}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("Unsubscribe from \"{LIST_NAME}\": {unsubscribe}")),
        "{text}"
    );
    let html = message.body_html(0).expect("an HTML part");
    assert!(
        html.contains(&format!(
            "<a href=\"{preferences}\">Set your language, time zone and lists</a>"
        )),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "<a href=\"{unsubscribe}\">Unsubscribe from &ldquo;{LIST_NAME}&rdquo;</a>"
        )),
        "{html}"
    );
    // The token names no address; the links carry no address either.
    assert!(!unsubscribe.contains("watanabe") && !preferences.contains("watanabe"));
}

/// A letter and the notices carry the same links: every message to a
/// reader has them, each on the list it comes through.
#[test]
fn letters_and_notices_carry_the_links_of_their_list() {
    let config = ConfigDir::example();
    let ports = serve_pages(&config, &[SECRET]);
    let token = token(LIST, KENJI);
    let unsubscribe = format!("{}/unsubscribe/{token}", ports.public_url());
    let letter = config.preview(&["--letter", "modalities-roadmap-2017", "--to", KENJI]);
    let update = config.preview(&["--event", "first-reading", "--notice", "update", "--to", KENJI]);
    for raw in [&letter, &update] {
        let message = parse(raw);
        assert_eq!(unsubscribe_uris(&message)[0], unsubscribe);
        assert_eq!(
            unfolded(&message, "List-Unsubscribe-Post").as_deref(),
            Some("List-Unsubscribe=One-Click")
        );
        let text = message.body_text(0).unwrap();
        assert!(text.contains(&format!(": {unsubscribe}")), "{text}");
    }
}

/// Without `[http]` there are no personal https links: the mailto: alone,
/// no one-click header, no links in the footer.
#[test]
fn without_pages_there_is_no_one_click_and_no_footer_link() {
    let config = ConfigDir::example();
    let raw = reminder(&config);
    let message = parse(raw.as_bytes());
    assert_eq!(
        unsubscribe_uris(&message),
        ["mailto:gcmigration@gcm.example.org?subject=unsubscribe"]
    );
    assert_eq!(message.header_raw("List-Unsubscribe-Post"), None);
    let text = message.body_text(0).unwrap();
    assert!(!text.contains("Unsubscribe from"), "{text}");
    assert!(!text.contains("Set your language"), "{text}");
}

/// A shared https unsubscribe address stays as it is without pages, with
/// no one-click header, and `herald check` warns at its place that it
/// cannot be one-click, suggesting `[http]`. With pages, each reader's own
/// link replaces it, and check says it is not used.
#[test]
fn a_shared_https_address_is_not_one_click_and_check_says_so() {
    let config = ConfigDir::example();
    let shared = "https://gcm.example.org/unsubscribe";
    config.edit(
        "config/herald.toml",
        "unsubscribe = \"mailto:gcmigration@gcm.example.org?subject=unsubscribe\"",
        &format!("unsubscribe = \"{shared}\""),
    );
    let raw = reminder(&config);
    let message = parse(raw.as_bytes());
    assert_eq!(unsubscribe_uris(&message), [shared]);
    assert_eq!(message.header_raw("List-Unsubscribe-Post"), None);

    let output = config.herald(&["check"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    let warning = format!(
        "warning: {}:30:15: this https: address is the same for every reader, so a click on it cannot say who leaves: it cannot be one-click (RFC 8058)",
        config.path().join("herald.toml").display()
    );
    assert_eq!(out.matches(&warning).count(), 1, "{out}");
    assert!(out.contains("[http] public, public_url"), "{out}");

    let ports = serve_pages(&config, &[SECRET]);
    let raw = reminder(&config);
    let message = parse(raw.as_bytes());
    let own = format!("{}/unsubscribe/{}", ports.public_url(), token(LIST, KENJI));
    assert_eq!(unsubscribe_uris(&message), [own]);
    assert_eq!(
        unfolded(&message, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let output = config.herald(&["check"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(!out.contains("cannot be one-click"), "{out}");
    assert!(
        out.contains(&format!(
            "warning: {}:30:15: this https: address is not used: every message carries its reader's own unsubscribe link",
            config.path().join("herald.toml").display()
        )),
        "{out}"
    );
}

/// Who leaves the list in the end-to-end test, and someone who stays.
const LEAVING: &str = KENJI;
const STAYING: &str = "priya.raman@india-mission.example.org";

/// The rehearsal's clock: it starts an hour before the future meeting's
/// first reminders (1d, 2099-02-28T20:00Z) and runs 1800 times faster than
/// the real one, so the next ones (2h and 30m before 15:00 in New York,
/// 2099-03-01T18:00Z and 19:30Z) come 44 and 47 seconds later: time to
/// read the first, follow its link and unsubscribe, well before the next.
const FROM: &str = "2099-02-28T19:00:00Z";
const UNTIL: &str = "2099-03-01T20:10:00Z";
const SPEED: &str = "1800";

/// What `sink` has received for `to`.
fn received_by<'a>(received: &'a [Received], to: &str) -> Vec<&'a Received> {
    received
        .iter()
        .filter(|message| message.rcpt_tos.iter().any(|rcpt| rcpt == to))
        .collect()
}

/// A running daemon that serves pages delivers a reminder to a real SMTP
/// server; the https link of its `List-Unsubscribe`, POSTed to as a mailbox
/// provider does (RFC 8058: `List-Unsubscribe=One-Click`, no Origin),
/// takes its reader off the list at once: the next reminders of that list
/// are not sent to them, and the other readers still get them.
#[test]
fn the_link_of_a_delivered_message_unsubscribes_by_post_and_the_next_reminder_is_not_sent() {
    let sink = Sink::plain();
    let config = smtp_config(sink.port(), 2);
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    let ports = serve_pages(&config, &[SECRET]);
    let state = tempfile::tempdir().unwrap();
    let mut command = crate::harness::herald_command(&config.path());
    command.arg("run").arg("--state-dir").arg(state.path()).args([
        "--rehearse-from",
        FROM,
        "--speed",
        SPEED,
        "--until",
        UNTIL,
        "--real-recipients",
        "--no-watch",
    ]);
    let mut daemon = ports.start(&mut command);

    // The first reminder, as delivered.
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        let received = sink.received();
        if let Some(message) = received_by(&received, LEAVING).first() {
            break message.bytes.clone();
        }
        assert!(Instant::now() < deadline, "no reminder reached {LEAVING}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let message = parse(&first);
    assert_eq!(
        unfolded(&message, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let link = unsubscribe_uris(&message)
        .into_iter()
        .find(|uri| uri.starts_with("http"))
        .expect("an https link in List-Unsubscribe");
    assert_eq!(
        link,
        format!("{}/unsubscribe/{}", ports.public_url(), token(LIST, LEAVING))
    );

    // What a mailbox provider sends on the reader's click.
    let answer = Client::new().post_form(&link, &[("List-Unsubscribe", "One-Click")], &[]);
    assert_eq!(answer.status, 200, "{answer:?}");

    assert!(daemon.wait().success(), "the rehearsal ends at {UNTIL}");
    let received = sink.received();
    assert_eq!(
        received_by(&received, LEAVING).len(),
        1,
        "{LEAVING} got only the reminder sent before the click"
    );
    assert_eq!(
        received_by(&received, STAYING).len(),
        3,
        "{STAYING} got every reminder"
    );
    let outbox = SqliteOutbox::open(state.path()).unwrap();
    for lead in ["2h", "30m"] {
        let gone = SendKey::reminder("future-meeting", lead, &AddressKey::of(LEAVING));
        let entry = &outbox.entries_for(&[&gone]).unwrap()[0];
        assert_eq!(entry.state, State::Suppressed, "{entry:?}");
        let stays = SendKey::reminder("future-meeting", lead, &AddressKey::of(STAYING));
        assert_eq!(outbox.entries_for(&[&stays]).unwrap()[0].state, State::Sent);
    }
}
