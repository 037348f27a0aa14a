//! Bounces and delay warnings in the mail servers' own words, for the
//! servers that send no RFC 3464 report (or one without fields): Exchange
//! and Outlook, Exim, Postfix, qmail, Sendmail, Lotus Domino, GroupWise,
//! Yahoo, AOL, Gmail, MailEnable, Courier, MDaemon and the like.
//!
//! A message is read as one only if it comes from a mail system (a
//! MAILER-DAEMON or postmaster sender, an empty Return-Path, an
//! `X-Failed-Recipients` header) **and** its text carries one of the
//! phrases those servers write. A person who writes "delivery has failed"
//! in a letter, or forwards a bounce, is neither, so their letter stays
//! for a human.

use super::text::{self, Status};
use super::{Mail, Report};
use crate::inbox::{Kind, MAX_ADDRESSES};

/// The phrases that open a server's report of a failure, lower-case; the
/// failed addresses and the reason follow them.
const FAILURE_MARKERS: &[&str] = &[
    // Exim.
    "a message that you sent could not be delivered",
    "this message was created automatically by mail delivery software",
    // Postfix before it sent RFC 3464 reports.
    "i'm sorry to have to inform you that your message could not",
    "i'm sorry to have to inform you that the message returned",
    // qmail, and Yahoo's qmail-like notice.
    "hi. this is the qmail-send program",
    "i'm afraid i wasn't able to deliver your message",
    "sorry, we were unable to deliver your message",
    // Sendmail, and AOL's Sendmail-like notice.
    "the following addresses had permanent fatal errors",
    "the following addresses had transient non-fatal errors",
    "----- transcript of session follows -----",
    "your mail to the following recipients could not be delivered",
    // Exchange and Outlook, old and new.
    "delivery has failed to these recipients or groups",
    "delivery has failed to these recipients or distribution lists",
    "your message did not reach some or all of the intended recipients",
    "the following recipient(s) cannot be reached",
    "delivery to the following recipients failed",
    "your message couldn't be delivered",
    "your message wasn't delivered",
    // Lotus Domino.
    "was not delivered to:",
    "delivery failure report",
    // Novell GroupWise.
    "was undeliverable to the following",
    // Gmail's older notices.
    "delivery to the following recipient failed permanently",
    "technical details of permanent failure",
    // MailEnable.
    "message could not be delivered to some recipients",
    "the following recipient(s) could not be reached",
    // Courier, MDaemon and others.
    "your message was not delivered to the following recipients",
    "unable to deliver message to the following",
    "could not be delivered to the following recipients",
    "the following message could not be delivered",
    "message delivery has failed",
    // MDaemon.
    "had permanent fatal delivery errors",
    "your message was not delivered to one or more recipients",
];

/// The phrases of a warning that delivery is only delayed, lower-case.
/// They win over the failure phrases, which a warning often repeats
/// (Exim's "created automatically by mail delivery software").
const DELAY_MARKERS: &[&str] = &[
    "this is a warning message only",
    "still undelivered after",
    "has not yet been delivered",
    "has been delayed",
    "delivery is delayed",
    "delivery has been delayed",
    "will keep trying",
    "will continue trying",
    "will be retried",
    "technical details of temporary failure",
    "the following addresses had transient non-fatal errors",
];

/// Where the server's own report ends and the returned message (or its
/// headers) begins: addresses after this are the original's, not failed.
const COPY_MARKERS: &[&str] = &[
    "this is a copy of the message",
    "below this line is a copy of the message",
    "----- original message follows -----",
    "----- message header follows -----",
    "----- original message -----",
    "original message headers:",
    "----- the header of the original message is following. -----",
    "------ original message ------",
    "--- message headers ---",
    "original message header:",
];

/// What the server says when no code or reason decides: a permanent or a
/// temporary failure.
const PERMANENT_WORDS: &[&str] = &[
    "permanent fatal error",
    "failed permanently",
    "permanent failure",
    "permanent error",
];

/// At most this much text is searched for a report: the report comes
/// first, whatever follows it.
pub(super) const MAX_TEXT: usize = 64 * 1024;

/// Reads `mail` as a server's bounce or delay warning, if it is one.
pub fn read(mail: &Mail) -> Option<Report> {
    if !mail.sent_by_mail_system() {
        return None;
    }
    let body = mail.report_text();
    let body = cut(&body, MAX_TEXT);
    let lower = body.to_lowercase();
    let subject = mail.subject.as_deref().unwrap_or_default().to_lowercase();
    let is_delay = DELAY_MARKERS.iter().any(|m| lower.contains(m))
        || subject.contains("(delay)")
        || subject.contains("delayed mail")
        || (subject.starts_with("warning:") && subject.contains("delayed"));
    let start = FAILURE_MARKERS
        .iter()
        .chain(DELAY_MARKERS)
        .filter_map(|m| lower.find(m).map(|at| at + m.len()))
        .min();
    let start = match start {
        Some(start) => start,
        // A subject alone says it is a bounce, when the sender is a mail
        // system and it names the failed recipients in a header.
        None if !mail.failed_recipients.is_empty() => 0,
        None => return None,
    };
    let end = COPY_MARKERS
        .iter()
        .filter_map(|m| lower[start..].find(m).map(|at| start + at))
        .min()
        .unwrap_or(lower.len());
    // Lower-casing can change lengths outside ASCII; read the region from
    // the lower-cased text, which is all the search needs.
    let region = &lower[start..end];
    let lines: Vec<&str> = region.lines().filter(|l| !is_header_like(l)).collect();

    let mut addresses: Vec<String> = Vec::new();
    let found = mail
        .failed_recipients
        .iter()
        .cloned()
        .chain(lines.iter().flat_map(|l| text::addresses_in(l)));
    for address in found {
        if addresses.len() == MAX_ADDRESSES {
            break;
        }
        if !addresses.contains(&address) && !mail.is_own_address(&address) && !is_system_address(&address) {
            addresses.push(address);
        }
    }

    let diagnostic_line = lines
        .iter()
        .find(|l| text::enhanced_code(l).is_some() || text::reply_code(l).is_some())
        .or_else(|| lines.iter().find(|l| text::names_reason(l)))
        .copied();
    // The diagnostic in the server's own case: the same line of the
    // original text when the lengths allow, else the lower-cased one.
    let diagnostic = diagnostic_line.map(|l| original_case(body, &lower, l));
    let status = diagnostic_line
        .and_then(text::status_of)
        .or_else(|| text::enhanced_code(region))
        .or_else(|| text::reason_status(region));
    let kind = if is_delay { Kind::Delay } else { Kind::Bounce };
    let permanent = kind == Kind::Bounce
        && match &status {
            Some(status) => status.is_permanent(),
            None => PERMANENT_WORDS.iter().any(|w| region.contains(w)),
        };
    Some(Report {
        kind,
        addresses,
        permanent: Some(permanent),
        status: status.map(Status::into_string),
        diagnostic: diagnostic.as_deref().and_then(text::one_line),
    })
}

/// A line of a report that is a header of the returned message or of the
/// reporting server, whose addresses are not failed recipients.
fn is_header_like(lower_line: &str) -> bool {
    let line = lower_line.trim_start();
    const HEADERS: &[&str] = &[
        "from:",
        "sender:",
        "reply-to:",
        "return-path:",
        "received:",
        "date:",
        "subject:",
        "message-id:",
        "in-reply-to:",
        "references:",
        "reporting-mta:",
        "remote-mta:",
        "x-",
        "dkim-signature:",
        "sent by",
        "sent:",
    ];
    HEADERS.iter().any(|h| line.starts_with(h)) || line.contains("message-id") || line.contains("message id")
}

/// The reporting system's own addresses, never a failed recipient.
fn is_system_address(address: &str) -> bool {
    let local = address.split('@').next().unwrap_or_default();
    super::SYSTEM_SENDERS.contains(&local)
}

/// `line` (a slice of `lower`) as it is written in `original`, when
/// lower-casing kept every length; `line` itself otherwise.
fn original_case(original: &str, lower: &str, line: &str) -> String {
    let at = line.as_ptr() as usize - lower.as_ptr() as usize;
    if original.len() == lower.len()
        && let Some(text) = original.get(at..at + line.len())
    {
        return text.to_owned();
    }
    line.to_owned()
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
