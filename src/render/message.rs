//! A rendered send -> an RFC 5322 message, built with lettre's builder.
//!
//! Headers follow the conventions of automated list mail: a Message-ID that
//! is the same for every attempt at the same send (so a retry or a repeat
//! after a crash can be recognised), `Auto-Submitted: auto-generated`
//! (RFC 3834) so that auto-responders stay quiet, `List-Id` (RFC 2919) and
//! `List-Unsubscribe` (RFC 2369), with RFC 8058's one-click
//! `List-Unsubscribe-Post` only when the reader has a personal https link
//! to it. lettre encodes every header value, so no name or subject can
//! inject a header.
//!
//! A message with attachments is `multipart/mixed`: the alternatives (text,
//! HTML and the invitation, where calendars look for it) first, then each
//! file. A file is encoded as base64 once per configuration
//! ([`EncodedAttachments`]), not once per message, and no message holds a
//! copy of it: the message is an [`Outgoing`], whose mailer writes the
//! shared base64 where the part's body goes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use jiff::Timestamp;
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::header::{ContentTransferEncoding, Header, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};

use crate::calendar::{self, Method};
use crate::key::AddressKey;
use crate::model::{Attachment, Model, Notes, PersonalLinks, Sender};
use crate::render::{RenderError, Rendered};
use crate::resolve::{About, Resolved};
use crate::send::Outgoing;
use crate::tokens;

/// Builds the message for `send` as it leaves at `date`.
pub fn build(
    model: &Model,
    send: &Resolved<'_>,
    rendered: &Rendered,
    date: Timestamp,
) -> Result<Outgoing, RenderError> {
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
) -> Result<Outgoing, RenderError> {
    let sender = &model.settings().sender;
    let focal_point = send.focal_point;
    let to = Mailbox::new(Some(focal_point.name.clone()), focal_point.email.clone());
    let date = SystemTime::try_from(date).map_err(|err| {
        RenderError::plain(format!(
            "the date {date} has no place on this system's clock: {err}"
        ))
    })?;
    let token = send.send.key.token();
    let mut builder = Message::builder()
        .message_id(Some(message_id(send.send.key.as_str(), &sender.domain)))
        .date(date)
        .from(sender.from.clone())
        .to(to)
        .subject(rendered.subject.clone())
        .raw_header(header("Auto-Submitted", "auto-generated")?)
        // Exchange's out-of-office and other automatic replies stay quiet;
        // never `All`, which also suppresses the delivery reports herald
        // reads (MS-OXCMAIL 2.1.3.2.20).
        .raw_header(header("X-Auto-Response-Suppress", "OOF, AutoReply")?);
    if let Some(reply_to) = &sender.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    // The envelope is given rather than left to lettre, which would parse
    // it back out of the From and To headers, for every message.
    let recipient = redirect.unwrap_or(&focal_point.email);
    let envelope =
        lettre::address::Envelope::new(Some(envelope_sender(sender, &token)?), vec![recipient.clone()])
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
    let address = AddressKey::of(focal_point.email.as_ref());
    let personal = send
        .list
        .and_then(|list| sender.personal_links(&list.id, &address));
    if let Some(value) = list_unsubscribe(
        sender,
        send.list.map(|list| list.id.as_str()),
        &address,
        personal.as_ref(),
    ) {
        builder = builder.raw_header(header("List-Unsubscribe", &value)?);
    }
    // RFC 8058: one click only on a link that says who leaves; a POST to an
    // address shared by every reader could not.
    if personal.is_some() {
        builder = builder.raw_header(header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")?);
    }
    let alternative = body(rendered);
    let body = if rendered.attachments.is_empty() {
        alternative
    } else {
        let mut mixed = MultiPart::mixed().multipart(alternative);
        for attachment in &rendered.attachments {
            mixed = mixed.singlepart(attachment.part()?);
        }
        mixed
    };
    let message = builder
        .multipart(body)
        .map_err(|err| RenderError::plain(format!("cannot build the message: {err}")))?;
    let shared = rendered
        .attachments
        .iter()
        .map(|attachment| attachment.base64.clone())
        .collect();
    Outgoing::with_shared(&message, SHARED, shared)
        .map_err(|err| RenderError::plain(format!("cannot build the message: {err}")))
}

/// Builds the operator's digest for `to`, leaving at `date`, delivered to
/// `redirect` instead when set (rehearsals). Its Message-ID comes from
/// `key` (`key::digest_key`: the day and the address), so a digest sent
/// again is recognisable; it is automatic mail like every other, and has
/// no List headers (it goes to the operator, not to a list).
pub fn build_digest(
    model: &Model,
    rendered: &Rendered,
    to: &lettre::Address,
    key: &str,
    date: Timestamp,
    redirect: Option<&lettre::Address>,
) -> Result<Outgoing, RenderError> {
    let sender = &model.settings().sender;
    let date = SystemTime::try_from(date).map_err(|err| {
        RenderError::plain(format!(
            "the date {date} has no place on this system's clock: {err}"
        ))
    })?;
    let recipient = redirect.unwrap_or(to);
    // The From address, never the VERP form: a digest is no send, so a
    // token would name nothing, and a bounce of it is for a human to read.
    let envelope = lettre::address::Envelope::new(Some(sender.from.email.clone()), vec![recipient.clone()])
        .map_err(|err| RenderError::plain(format!("cannot send to {recipient}: {err}")))?;
    let mut builder = Message::builder()
        .message_id(Some(message_id(key, &sender.domain)))
        .date(date)
        .from(sender.from.clone())
        .to(Mailbox::new(None, to.clone()))
        .subject(rendered.subject.clone())
        .raw_header(header("Auto-Submitted", "auto-generated")?)
        .raw_header(header("X-Auto-Response-Suppress", "OOF, AutoReply")?)
        .envelope(envelope);
    if redirect.is_some() {
        builder = builder.raw_header(header("X-Herald-Rehearsal", &format!("for {to}"))?);
    }
    let message = builder
        .multipart(body(rendered))
        .map_err(|err| RenderError::plain(format!("cannot build the message: {err}")))?;
    Ok(Outgoing::from(&message))
}

/// The body an attachment's part is built with, replaced by the file's
/// base64 only as the message is written (see [`Outgoing`]), so that no
/// message holds a copy of it. lettre encodes every other body and header
/// into printable ASCII, so a NUL byte can be nowhere else.
const SHARED: &[u8] = b"\0herald: an attachment's base64\0";

/// An attachment ready to go into messages: its name, type and base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub name: String,
    pub content_type: String,
    /// The file as base64 in lines of 76 characters, shared by every
    /// message that carries it.
    base64: Arc<[u8]>,
}

impl Encoded {
    /// The part of one message, its body left for the shared base64.
    fn part(&self) -> Result<SinglePart, RenderError> {
        let content_type = ContentType::parse(&self.content_type).map_err(|err| {
            RenderError::plain(format!("{:?} is not a content type: {err}", self.content_type))
        })?;
        Ok(SinglePart::builder()
            .header(content_type)
            .header(AttachmentDisposition::of(&self.name))
            .body(Body::dangerous_pre_encoded(
                SHARED.to_vec(),
                ContentTransferEncoding::Base64,
            )))
    }
}

/// Every attachment of a model, encoded once, by the address of the file's
/// bytes (`config` reads a file once, so a file listed by several letters
/// and events has one address).
#[derive(Debug, Default)]
pub struct EncodedAttachments(HashMap<usize, Encoded>);

impl EncodedAttachments {
    pub fn of(model: &Model) -> EncodedAttachments {
        let mut encoded = HashMap::new();
        let letters = model.letters().iter().flat_map(|letter| &letter.attachments);
        let events = model.events().flat_map(|event| &event.attachments);
        for attachment in letters.chain(events) {
            encoded
                .entry(key(attachment))
                .or_insert_with(|| encode(attachment));
        }
        EncodedAttachments(encoded)
    }

    /// The attachments `send` carries, encoded.
    pub fn carried_by(&self, send: &Resolved<'_>) -> Vec<Encoded> {
        send.attachments
            .iter()
            .map(|attachment| match self.0.get(&key(attachment)) {
                Some(encoded) => encoded.clone(),
                // Only a send resolved against another model than the
                // renderer's would miss; encoded here rather than lost.
                None => encode(attachment),
            })
            .collect()
    }
}

fn key(attachment: &Attachment) -> usize {
    attachment.bytes.as_ptr() as usize
}

fn encode(attachment: &Attachment) -> Encoded {
    // Always base64, even for a text file: its bytes arrive as they are,
    // line ends included.
    let body = Body::new_with_encoding(attachment.bytes.to_vec(), ContentTransferEncoding::Base64)
        .unwrap_or_else(|bytes| Body::dangerous_pre_encoded(bytes, ContentTransferEncoding::Base64));
    Encoded {
        name: attachment.name.clone(),
        content_type: attachment.content_type.clone(),
        base64: Arc::from(body.into_vec()),
    }
}

/// `Content-Disposition: attachment` with the file's name twice: RFC 2231's
/// `filename*=utf-8''…` (percent-encoded UTF-8, one parameter), then a plain
/// ASCII `filename` for readers that do not know RFC 2231.
///
/// Written here because lettre's `ContentDisposition::attachment` writes a
/// non-ASCII name only in RFC 2231's continued form (`filename*0*=`, which
/// Python's `email` and mail-parser do read) and no plain `filename`, so a
/// reader that knows no RFC 2231 shows no name at all. `filename*` comes
/// first: readers that know both forms prefer it (RFC 6266), and Python's
/// modern parser takes the first it finds.
#[derive(Debug, Clone)]
struct AttachmentDisposition(HeaderValue);

impl AttachmentDisposition {
    fn of(name: &str) -> AttachmentDisposition {
        let fallback = ascii_fallback(name);
        let encoded = if name.is_ascii() && fallback == name {
            format!("attachment; filename=\"{fallback}\"")
        } else {
            // Folded before each parameter, so a long name keeps lines short.
            format!(
                "attachment;\r\n filename*=utf-8''{};\r\n filename=\"{fallback}\"",
                percent_encode(name)
            )
        };
        AttachmentDisposition(HeaderValue::dangerous_new_pre_encoded(
            Self::name(),
            format!("attachment; filename=\"{fallback}\""),
            encoded,
        ))
    }
}

impl Header for AttachmentDisposition {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Content-Disposition")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        // Never read back: herald only writes messages.
        Err("herald does not parse Content-Disposition".into())
    }

    fn display(&self) -> HeaderValue {
        self.0.clone()
    }
}

/// RFC 5987's attr-char kept, every other byte of the UTF-8 as `%XX`.
fn percent_encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len() * 3);
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The name in printable ASCII for the quoted `filename`: accented Latin
/// letters lose their accents ("Président" -> "President"), other
/// characters that ASCII lacks, quotes and backslashes become `_`.
fn ascii_fallback(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => 'A',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'È' | 'É' | 'Ê' | 'Ë' => 'E',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'Ì' | 'Í' | 'Î' | 'Ï' => 'I',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' => 'o',
            'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' => 'O',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'Ù' | 'Ú' | 'Û' | 'Ü' => 'U',
            'ç' => 'c',
            'Ç' => 'C',
            'ñ' => 'n',
            'Ñ' => 'N',
            'ý' | 'ÿ' => 'y',
            _ => '_',
        })
        .collect()
}

/// The same send always gets the same Message-ID: a digest of its key, so
/// the recipient's address does not show in it.
pub fn message_id(key: &str, domain: &str) -> String {
    format!("<{}.herald@{domain}>", crate::key::token_of(key))
}

/// Who the message is from as SMTP sees it, where bounces go: the bounce
/// address tagged with the send's token (VERP) when there is one, else the
/// From address.
fn envelope_sender(sender: &Sender, token: &str) -> Result<lettre::Address, RenderError> {
    match &sender.bounce_address {
        Some(bounce) => tokens::verp_address(bounce, token).map_err(|err| {
            RenderError::plain(format!(
                "cannot tag the bounce address {bounce} with {token}: {err}"
            ))
        }),
        None => Ok(sender.from.email.clone()),
    }
}

/// The `List-Unsubscribe` value (RFC 2369): the reader's own https link
/// first when there is one (RFC 8058 wants an https URI; a client takes the
/// first it can use), then the `[sender] unsubscribe` mailto:, personal
/// with a link secret. A shared https address is given only when there is
/// no personal link: it cannot say who leaves. Each URI in angle brackets,
/// comma-separated; lettre folds the header at the space after a comma.
fn list_unsubscribe(
    sender: &Sender,
    list: Option<&str>,
    address: &AddressKey,
    personal: Option<&PersonalLinks>,
) -> Option<String> {
    let mut uris = Vec::new();
    if let Some(links) = personal {
        uris.push(links.unsubscribe.clone());
    }
    match (&sender.unsubscribe, &sender.links, list) {
        (Some(configured), Some(links), Some(list)) if configured.starts_with("mailto:") => {
            let mailto = &configured["mailto:".len()..];
            uris.push(personal_mailto(mailto, &links.unsubscribe_token(list, address)));
        }
        (Some(configured), _, _) if configured.starts_with("mailto:") || personal.is_none() => {
            uris.push(configured.clone());
        }
        _ => {}
    }
    if uris.is_empty() {
        return None;
    }
    let uris: Vec<String> = uris.into_iter().map(|uri| format!("<{uri}>")).collect();
    Some(uris.join(", "))
}

/// The mailto: address (without `mailto:`) with `subject=unsubscribe TOKEN`
/// in place of any subject it had; its other fields (a body) are kept.
fn personal_mailto(mailto: &str, token: &str) -> String {
    let (address, query) = mailto.split_once('?').unwrap_or((mailto, ""));
    let mut fields = vec![format!("subject=unsubscribe%20{token}")];
    fields.extend(
        query
            .split('&')
            .filter(|field| {
                let name = field.split('=').next().unwrap_or_default();
                !field.is_empty() && !name.eq_ignore_ascii_case("subject")
            })
            .map(str::to_owned),
    );
    format!("mailto:{address}?{}", fields.join("&"))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The header's value as it is written in a message.
    fn disposition(name: &str) -> String {
        let mut headers = lettre::message::header::Headers::new();
        headers.set(AttachmentDisposition::of(name));
        let line = headers.to_string();
        line.strip_prefix("Content-Disposition: ")
            .and_then(|value| value.strip_suffix("\r\n"))
            .unwrap_or(&line)
            .to_owned()
    }

    /// A sender with `unsubscribe`, and link secrets and a public URL when
    /// `pages`.
    fn sender(unsubscribe: Option<&str>, pages: bool) -> Sender {
        let keys = crate::tokens::LinkKeys::parse(b"0123456789abcdefghijklmnopqrstuvwxyz").unwrap();
        Sender {
            from: "Secretariat <secretariat@gcm.example.org>".parse().unwrap(),
            reply_to: None,
            organization: String::new(),
            domain: "gcm.example.org".to_owned(),
            unsubscribe: unsubscribe.map(str::to_owned),
            bounce_address: None,
            links: pages.then(|| Arc::new(keys)),
            public_url: pages.then(|| url::Url::parse("https://herald.example.org").unwrap()),
        }
    }

    /// Which URIs List-Unsubscribe has: the reader's own https link first
    /// when there is one, a mailto: after it, a shared https address only
    /// without a personal link; nothing when there is nothing to give.
    #[test]
    fn list_unsubscribe_puts_the_personal_link_first_and_drops_a_shared_one() {
        let address = AddressKey::of("k.watanabe@japan-mission.example.org");
        let value = |sender: &Sender, list: Option<&str>| {
            let personal = list.and_then(|list| sender.personal_links(list, &address));
            list_unsubscribe(sender, list, &address, personal.as_ref())
        };
        let mailto = "mailto:gcm@gcm.example.org?subject=unsubscribe";
        let shared = "https://gcm.example.org/unsubscribe";

        let with_pages = sender(Some(mailto), true);
        let token = with_pages
            .links
            .as_ref()
            .unwrap()
            .unsubscribe_token("member-states", &address);
        assert_eq!(
            value(&with_pages, Some("member-states")).unwrap(),
            format!(
                "<https://herald.example.org/unsubscribe/{token}>, <mailto:gcm@gcm.example.org?subject=unsubscribe%20{token}>"
            )
        );
        assert_eq!(
            value(&sender(Some(shared), true), Some("member-states")).unwrap(),
            format!("<https://herald.example.org/unsubscribe/{token}>")
        );
        assert_eq!(
            value(&sender(None, true), Some("member-states")).unwrap(),
            format!("<https://herald.example.org/unsubscribe/{token}>")
        );
        // No list to leave: the configured address as written.
        assert_eq!(value(&with_pages, None).unwrap(), format!("<{mailto}>"));
        assert_eq!(
            value(&sender(Some(shared), true), None).unwrap(),
            format!("<{shared}>")
        );
        // No pages: as before them.
        assert_eq!(
            value(&sender(Some(shared), false), Some("member-states")).unwrap(),
            format!("<{shared}>")
        );
        assert_eq!(
            value(&sender(Some(mailto), false), Some("member-states")).unwrap(),
            format!("<{mailto}>")
        );
        assert_eq!(value(&sender(None, false), Some("member-states")), None);
    }

    #[test]
    fn a_personal_mailto_replaces_the_subject_and_keeps_the_rest() {
        let token = "u1.member-states.AAAAAAAAAAAAAAAAAAAAAA";
        let subject = format!("subject=unsubscribe%20{token}");
        assert_eq!(
            personal_mailto("gcm@example.org?subject=unsubscribe", token),
            format!("mailto:gcm@example.org?{subject}")
        );
        assert_eq!(
            personal_mailto("gcm@example.org", token),
            format!("mailto:gcm@example.org?{subject}")
        );
        assert_eq!(
            personal_mailto("gcm@example.org?body=please&Subject=x", token),
            format!("mailto:gcm@example.org?{subject}&body=please")
        );
    }

    #[test]
    fn a_non_ascii_name_is_written_per_rfc_2231_with_an_ascii_fallback() {
        assert_eq!(
            disposition("Lettre du Président.pdf"),
            "attachment;\r\n filename*=utf-8''Lettre%20du%20Pr%C3%A9sident.pdf;\r\n filename=\"Lettre du President.pdf\""
        );
        assert_eq!(disposition("draft.pdf"), "attachment; filename=\"draft.pdf\"");
        // Quotes and backslashes cannot end the quoted fallback early.
        assert_eq!(
            disposition("a\"b\\c.pdf"),
            "attachment;\r\n filename*=utf-8''a%22b%5Cc.pdf;\r\n filename=\"a_b_c.pdf\""
        );
        assert_eq!(ascii_fallback("Проект.pdf"), "______.pdf");
    }
}
