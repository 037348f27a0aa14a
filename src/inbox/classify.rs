//! What an incoming message is, from its bytes alone: a bounce, a delay
//! warning, an unsubscribe request, an automatic answer, or a letter for a
//! human (see [`classify`]).
//!
//! The checks run from the surest to the weakest, and the first that
//! recognises the message decides:
//! 1. an RFC 3464 report (`message/delivery-status` or
//!    `message/global-delivery-status` among the message's own parts: a
//!    report attached to a forwarded message is not read) — `dsn`; a read
//!    receipt (RFC 8098) is an automatic answer;
//! 2. a mail server's own bounce or delay format, only from a mail system
//!    (`formats`);
//! 3. an automatic answer (`autoreply`), after the bounces, since many
//!    bounces say `Auto-Submitted: auto-replied` too;
//! 4. an unsubscribe request (`unsubscribe`);
//! 5. anything else is [`Kind::Other`], for a human.
//!
//! Whatever the input, classification is bounded: only the first
//! [`MAX_READ`] bytes are parsed (every report puts its words first), the
//! MIME parser nests at most a few messages deep, and at most
//! [`MAX_ADDRESSES`] addresses and [`MAX_IDS`] Message-IDs are kept. A
//! report about a report (a bounce of a bounce) is read as the outer report
//! only: its parts are read, never those of the messages it returns.

mod autoreply;
mod dsn;
mod formats;
mod text;
mod unsubscribe;

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use super::{Classification, Clues, Kind, MAX_ADDRESSES};
use crate::key;

/// How much of a message is parsed. A report's own parts (its text and its
/// delivery-status fields) and the returned message's headers come first;
/// what follows is the returned message's body and attachments, which
/// say nothing about the delivery. A 50 MB message costs what 1 MiB does.
pub const MAX_READ: usize = 1024 * 1024;

/// How many Message-IDs of returned originals are kept.
pub const MAX_IDS: usize = 10;

/// The local parts of a mail system's own addresses.
const SYSTEM_SENDERS: &[&str] = &[
    "mailer-daemon",
    "mailer_daemon",
    "maildaemon",
    "mail-daemon",
    "postmaster",
    "mdaemon",
    "mail.delivery.subsystem",
    "mail-delivery-system",
    "mailerdaemon",
];

/// The headers that name a message's envelope recipient, in the order
/// their tag is trusted: what the receiving server wrote, then `To`.
const ENVELOPE_HEADERS: &[&str] = &[
    "X-Original-To",
    "Delivered-To",
    "Envelope-To",
    "X-Envelope-To",
    "X-Rcpt-To",
    "To",
];

/// What a report (standard or not) says about the delivery.
#[derive(Debug)]
struct Report {
    kind: Kind,
    addresses: Vec<String>,
    permanent: Option<bool>,
    status: Option<String>,
    diagnostic: Option<String>,
}

impl Report {
    /// An automatic notice that something was delivered or relayed: nothing
    /// failed, nothing to do.
    fn automatic() -> Report {
        Report {
            kind: Kind::AutoReply,
            addresses: Vec::new(),
            permanent: None,
            status: None,
            diagnostic: None,
        }
    }
}

/// Classifies one message. Pure and total: any bytes give a
/// classification, in time bounded by [`MAX_READ`].
pub fn classify(bytes: &[u8]) -> Classification {
    let bytes = &bytes[..bytes.len().min(MAX_READ)];
    let Some(message) = MessageParser::default().parse(bytes) else {
        return Classification {
            kind: Kind::Other,
            addresses: Vec::new(),
            permanent: None,
            status: None,
            diagnostic: None,
            clues: Clues::default(),
            message_id: None,
            from: None,
            subject: None,
        };
    };
    let mail = Mail::new(&message);
    let report = delivery_status(&message).or_else(|| formats::read(&mail));
    let mut clues = Clues {
        verp_tokens: mail.verp_tokens(),
        original_message_ids: returned_ids(&message),
        unsubscribe_token: None,
    };
    let (kind, addresses, permanent, status, diagnostic) = match report {
        Some(report) => {
            if matches!(report.kind, Kind::Bounce | Kind::Delay) && clues.original_message_ids.is_empty() {
                clues.original_message_ids = mail.message_id_lines();
            }
            (
                report.kind,
                report.addresses,
                report.permanent,
                report.status,
                report.diagnostic,
            )
        }
        None if autoreply::is_auto_reply(&mail) => (Kind::AutoReply, Vec::new(), None, None, None),
        None => match unsubscribe::request(&mail) {
            Some(token) => {
                clues.unsubscribe_token = token;
                let addresses = mail.from.iter().cloned().collect();
                (Kind::Unsubscribe, addresses, None, None, None)
            }
            None => (Kind::Other, Vec::new(), None, None, None),
        },
    };
    Classification {
        kind,
        addresses,
        permanent,
        status,
        diagnostic,
        clues,
        message_id: message
            .message_id()
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty()),
        from: mail.from,
        subject: mail.subject,
    }
}

/// The report of the first delivery-status part among the message's own
/// parts that names a recipient's action (or of a read receipt's part).
fn delivery_status(message: &Message) -> Option<Report> {
    message.parts.iter().find_map(|part| {
        let content_type = part.content_type()?;
        let subtype = content_type.subtype()?.to_ascii_lowercase();
        let is_status = match content_type.ctype().to_ascii_lowercase().as_str() {
            // A read receipt (RFC 8098): automatic, nothing failed.
            "message" if subtype == "disposition-notification" => return Some(Report::automatic()),
            "message" => matches!(subtype.as_str(), "delivery-status" | "global-delivery-status"),
            // Some generators mislabel the part.
            "text" => subtype == "delivery-status",
            _ => false,
        };
        if !is_status {
            return None;
        }
        dsn::read(part.contents())
    })
}

/// The Message-IDs of the originals a report returns: each
/// `message/rfc822` part's, and each header part's (`text/rfc822-headers`).
fn returned_ids(message: &Message) -> Vec<String> {
    let mut ids = Vec::new();
    for part in &message.parts {
        if ids.len() == MAX_IDS {
            break;
        }
        let id = match &part.body {
            PartType::Message(original) => original.message_id().map(str::to_owned),
            _ if part
                .content_type()
                .and_then(|ct| ct.subtype())
                .is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers")) =>
            {
                MessageParser::default()
                    .parse_headers(part.contents())
                    .and_then(|headers| headers.message_id().map(str::to_owned))
            }
            _ => None,
        };
        if let Some(id) = id.map(|id| id.trim().to_owned())
            && !id.is_empty()
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    }
    ids
}

/// The parts of a message the checks read, found once.
struct Mail<'a> {
    message: &'a Message<'a>,
    /// The From address, lower-cased.
    from: Option<String>,
    /// The From display name, lower-cased.
    from_name: String,
    subject: Option<String>,
    /// `X-Failed-Recipients` (Exim): the failed addresses, as the server
    /// lists them.
    failed_recipients: Vec<String>,
    /// The addresses the message was sent to (`To`, `Cc` and the envelope
    /// headers): herald's own, never a failed recipient.
    own_addresses: Vec<String>,
}

impl<'a> Mail<'a> {
    fn new(message: &'a Message<'a>) -> Mail<'a> {
        let first_from = message.from().and_then(|from| from.first());
        let mut own_addresses: Vec<String> = Vec::new();
        for name in ENVELOPE_HEADERS.iter().chain(&["Cc"]) {
            for value in header_values(message, name) {
                own_addresses.extend(text::addresses_in(value));
            }
        }
        let failed_recipients = header_values(message, "X-Failed-Recipients")
            .flat_map(text::addresses_in)
            .take(MAX_ADDRESSES)
            .collect();
        Mail {
            message,
            from: first_from
                .and_then(|a| a.address())
                .map(|a| a.trim().to_lowercase())
                .filter(|a| !a.is_empty()),
            from_name: first_from
                .and_then(|a| a.name())
                .unwrap_or_default()
                .to_lowercase(),
            subject: message.subject().map(|s| s.trim().to_owned()),
            failed_recipients,
            own_addresses,
        }
    }

    /// The first value of the header `name`, raw (folded lines and all).
    fn header(&self, name: &str) -> Option<&str> {
        header_values(self.message, name).next()
    }

    /// Whether a mail system, not a person, sent the message: its sender is
    /// a MAILER-DAEMON or postmaster, its Return-Path is empty (RFC 5321
    /// §4.5.5), or it lists failed recipients.
    fn sent_by_mail_system(&self) -> bool {
        let local = self
            .from
            .as_deref()
            .map(|a| a.split('@').next().unwrap_or_default())
            .unwrap_or_default();
        SYSTEM_SENDERS.contains(&local)
            || ["mailer-daemon", "mail delivery", "postmaster"]
                .iter()
                .any(|n| self.from_name.contains(n))
            || self
                .header("Return-Path")
                .is_some_and(|p| p.trim().trim_matches(['<', '>']).trim().is_empty())
            || !self.failed_recipients.is_empty()
    }

    /// Whether `address` is one the message was sent to.
    fn is_own_address(&self, address: &str) -> bool {
        self.own_addresses.iter().any(|own| own == address)
    }

    /// The text of the message's own text parts (HTML read as text when
    /// there is no plain text), in order.
    fn report_text(&self) -> String {
        let has_plain = self
            .message
            .parts
            .iter()
            .any(|p| matches!(p.body, PartType::Text(_)));
        let mut text = String::new();
        for part in &self.message.parts {
            match &part.body {
                PartType::Text(body) => text.push_str(body),
                PartType::Html(body) if !has_plain => text.push_str(&text::strip_html(body)),
                _ => continue,
            }
            text.push('\n');
            if text.len() > formats::MAX_TEXT {
                break;
            }
        }
        text
    }

    /// The first non-empty line of the message's first text part.
    fn first_body_line(&self) -> Option<String> {
        let body = self.message.body_text(0)?;
        body.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_owned)
    }

    /// The VERP tokens of the envelope recipients (`local+TOKEN@domain`),
    /// each once, in the order of [`ENVELOPE_HEADERS`].
    fn verp_tokens(&self) -> Vec<String> {
        let mut tokens = Vec::new();
        for name in ENVELOPE_HEADERS {
            for value in header_values(self.message, name) {
                for address in text::addresses_in(value) {
                    let local = address.split('@').next().unwrap_or_default();
                    if let Some((_, tag)) = local.split_once('+')
                        && key::is_token(tag)
                        && !tokens.iter().any(|t| t == tag)
                    {
                        tokens.push(tag.to_owned());
                    }
                }
            }
        }
        tokens
    }

    /// The `Message-ID:` lines in the text of a server's own report, where
    /// it quotes the returned message's headers.
    fn message_id_lines(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for line in self.report_text().lines() {
            let line = line.trim_start();
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if !name.trim().eq_ignore_ascii_case("message-id") {
                continue;
            }
            let id = value.trim().trim_start_matches('<');
            let id = id.split('>').next().unwrap_or_default().trim();
            if !id.is_empty() && !id.contains(char::is_whitespace) && !ids.iter().any(|i| i == id) {
                ids.push(id.to_owned());
                if ids.len() == MAX_IDS {
                    break;
                }
            }
        }
        ids
    }
}

/// The raw values of every header `name` of the message, in order.
fn header_values<'m>(message: &'m Message<'_>, name: &str) -> impl Iterator<Item = &'m str> {
    message
        .root_part()
        .headers
        .iter()
        .filter(move |h| h.name().eq_ignore_ascii_case(name))
        .filter_map(|h| {
            // The parsed value of a structured header (To, Return-Path)
            // is not its text; read the raw bytes of the field.
            let raw = message
                .raw_message()
                .get(h.offset_start() as usize..h.offset_end() as usize)?;
            std::str::from_utf8(raw).ok()
        })
}
