//! A rendered send -> an RFC 5322 message, built with lettre's builder.
//!
//! Headers follow the conventions of automated list mail: a Message-ID that
//! is the same for every attempt at the same send (so a retry or a repeat
//! after a crash can be recognised), `Auto-Submitted: auto-generated`
//! (RFC 3834) so that auto-responders stay quiet, `List-Id` (RFC 2919) and
//! `List-Unsubscribe` (RFC 2369, and RFC 8058 one-click for https). lettre
//! encodes every header value, so no name or subject can inject a header.

use std::time::SystemTime;

use jiff::Timestamp;
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};

use crate::calendar::{self, Method};
use crate::model::{Model, Notes};
use crate::render::{RenderError, Rendered};
use crate::resolve::{About, Resolved};

/// Builds the message for `send` as it leaves at `date`.
pub fn build(
    model: &Model,
    send: &Resolved<'_>,
    rendered: &Rendered,
    date: Timestamp,
) -> Result<Message, RenderError> {
    build_for(model, send, rendered, date, None)
}

/// Builds the message, delivered to `redirect` instead of its recipient when
/// set (rehearsals): the headers still name the real recipient, so the
/// rehearsal shows who would have got what.
pub fn build_for(
    model: &Model,
    send: &Resolved<'_>,
    rendered: &Rendered,
    date: Timestamp,
    redirect: Option<&lettre::Address>,
) -> Result<Message, RenderError> {
    let sender = &model.settings().sender;
    let focal_point = send.focal_point;
    let to = Mailbox::new(Some(focal_point.name.clone()), focal_point.email.clone());
    let date = SystemTime::try_from(date).map_err(|err| {
        RenderError::plain(format!(
            "the date {date} has no place on this system's clock: {err}"
        ))
    })?;
    let mut builder = Message::builder()
        .message_id(Some(message_id(send.send.key.as_str(), &sender.domain)))
        .date(date)
        .from(sender.from.clone())
        .to(to)
        .subject(rendered.subject.clone())
        .raw_header(header("Auto-Submitted", "auto-generated")?);
    if let Some(reply_to) = &sender.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    // The envelope is given rather than left to lettre, which would parse
    // it back out of the From and To headers, for every message.
    let recipient = redirect.unwrap_or(&focal_point.email);
    let envelope = lettre::address::Envelope::new(Some(sender.from.email.clone()), vec![recipient.clone()])
        .map_err(|err| RenderError::plain(format!("cannot send to {recipient}: {err}")))?;
    builder = builder.envelope(envelope);
    if redirect.is_some() {
        builder = builder.raw_header(header(
            "X-Herald-Rehearsal",
            &format!("for {}", focal_point.email),
        )?);
    }
    if let Some(list) = send.list {
        // RFC 2919: a phrase, then the list's id under the sender's domain.
        let name = list.name.replace(['"', '\\'], "");
        builder = builder.raw_header(header(
            "List-Id",
            &format!("\"{name}\" <{}.{}>", list.id, sender.domain),
        )?);
    }
    if let Some(unsubscribe) = &sender.unsubscribe {
        builder = builder.raw_header(header("List-Unsubscribe", &format!("<{unsubscribe}>"))?);
        if unsubscribe.starts_with("https:") {
            builder = builder.raw_header(header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")?);
        }
    }
    builder
        .multipart(body(rendered))
        .map_err(|err| RenderError::plain(format!("cannot build the message: {err}")))
}

/// The same send always gets the same Message-ID: a digest of its key, so
/// the recipient's address does not show in it.
pub fn message_id(key: &str, domain: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let hex: String = digest.as_ref()[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("<{hex}.herald@{domain}>")
}

fn header(name: &str, value: &str) -> Result<HeaderValue, RenderError> {
    let name = HeaderName::new_from_ascii(name.to_owned())
        .map_err(|_| RenderError::plain(format!("invalid header name {name}")))?;
    Ok(HeaderValue::new(name, value.to_owned()))
}

/// Text and HTML as alternatives, and the invitation as a third alternative
/// `text/calendar; method=…`: the form Outlook, Gmail and Apple Mail all
/// turn into "accept / decline" (Outlook ignores invitations whose
/// Content-Type lacks the method).
fn body(rendered: &Rendered) -> MultiPart {
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(rendered.text.clone());
    let html = SinglePart::builder()
        .header(ContentType::TEXT_HTML)
        .body(rendered.html.clone());
    let mut alternative = MultiPart::alternative().singlepart(text).singlepart(html);
    if let Some((method, ics)) = &rendered.calendar {
        let content_type = format!("text/calendar; method={}; charset=utf-8", method.as_str());
        if let Ok(content_type) = ContentType::parse(&content_type) {
            alternative =
                alternative.singlepart(SinglePart::builder().header(content_type).body(ics.clone()));
        }
    }
    alternative
}

/// The invitation a send carries, if any: meeting reminders and updates ask
/// calendars to add or update the event (REQUEST), cancellations to remove
/// it (CANCEL); letters and deadlines carry none. The event's note, in the
/// default language, is its DESCRIPTION, and its first link its URL.
pub fn invitation(model: &Model, send: &Resolved<'_>, stamp: Timestamp) -> Option<(Method, String)> {
    let (event, method, sequence) = match &send.about {
        About::Reminder { event, sequence, .. } if event.kind == "meeting" => {
            (*event, Method::Request, *sequence)
        }
        About::Notice {
            event,
            cancel,
            sequence,
            ..
        } => (
            *event,
            if *cancel { Method::Cancel } else { Method::Request },
            *sequence,
        ),
        About::Reminder { .. } | About::Letter(_) => return None,
    };
    let roadmap = match &send.about {
        About::Reminder { roadmap, .. } => Some(*roadmap),
        _ => model.roadmap(&event.roadmap),
    };
    let notes = Notes::of(event, roadmap);
    let description = notes.text(std::slice::from_ref(&model.settings().default_language));
    let text = calendar::invitation(&calendar::Invitation {
        event,
        method,
        sequence,
        organizer: &model.settings().sender.from,
        attendee: send.focal_point,
        stamp,
        domain: &model.settings().sender.domain,
        description: description.as_deref(),
        url: notes.links.first().map(|link| link.url.as_str()),
    })?;
    Some((method, text))
}
