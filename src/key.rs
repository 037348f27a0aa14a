//! What identifies a send: its kind, its key, and the one rule by which
//! an address becomes part of a key.
//!
//! A send's key is its identity across plans, restarts, reloads and nodes:
//! the outbox stores each send under it, the Message-ID is a digest of it,
//! and a bounce or an unsubscribe link leads back to it. It is spelt here
//! and nowhere else:
//!
//! ```text
//! reminder/<event>/<lead>/<address>
//! letter/<letter>/<address>
//! update/<event>/<notice number>/<address>
//! cancellation/<event>/<notice number>/<address>
//! ```
//!
//! Event and letter ids and leads never hold a `/` (`config` checks ids;
//! a lead's normalised text has none), so the address is whatever follows
//! the fixed segments, even an address with a `/` in its local part.

use std::fmt;
use std::str::FromStr;

/// What a send is: a reminder of an event, a letter (circular), or a
/// notice that an event changed or was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SendKind {
    Reminder,
    Letter,
    Update,
    Cancellation,
}

/// How urgent a send is, lower first: its kind's precedence, then the
/// instant that makes it urgent (when its event starts, or a letter's due
/// instant). The order the scheduler claims sends in when the relay's
/// limits hold them back, and the rank `check` foresees them with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Urgency {
    pub precedence: u8,
    pub by: jiff::Timestamp,
}

impl Urgency {
    pub fn new(kind: SendKind, by: jiff::Timestamp) -> Urgency {
        Urgency {
            precedence: kind.precedence(),
            by,
        }
    }
}

impl SendKind {
    pub const ALL: [SendKind; 4] = [
        SendKind::Reminder,
        SendKind::Letter,
        SendKind::Update,
        SendKind::Cancellation,
    ];

    /// The word keys, the outbox and `plan --json` use.
    pub fn as_str(self) -> &'static str {
        match self {
            SendKind::Reminder => "reminder",
            SendKind::Letter => "letter",
            SendKind::Update => "update",
            SendKind::Cancellation => "cancellation",
        }
    }

    /// Update and cancellation notices: sent when an event changes, about
    /// an event that may be gone from the configuration.
    pub fn is_notice(self) -> bool {
        matches!(self, SendKind::Update | SendKind::Cancellation)
    }

    /// Which goes first when more is due than the relay's limits let
    /// through (lower first): a cancellation never waits behind a burst of
    /// reminders, then updates, then reminders (by how soon their event
    /// starts, see [`Urgency`]), then letters.
    pub fn precedence(self) -> u8 {
        match self {
            SendKind::Cancellation => 0,
            SendKind::Update => 1,
            SendKind::Reminder => 2,
            SendKind::Letter => 3,
        }
    }

    /// What the send's subject id names: "event" or "letter".
    pub fn subject_noun(self) -> &'static str {
        match self {
            SendKind::Letter => "letter",
            SendKind::Reminder | SendKind::Update | SendKind::Cancellation => "event",
        }
    }

    /// How many segments a key of this kind has, the address included.
    fn segments(self) -> usize {
        match self {
            SendKind::Letter => 3,
            SendKind::Reminder | SendKind::Update | SendKind::Cancellation => 4,
        }
    }
}

impl fmt::Display for SendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SendKind {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<SendKind, KeyError> {
        SendKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| {
                KeyError::new(
                    text,
                    "unknown kind of send: use reminder, letter, update or cancellation",
                )
            })
    }
}

/// An address as keys hold it: trimmed and lower-cased (Unicode lower
/// case, the whole address).
///
/// This is the one rule for telling addresses apart. Domains are
/// case-insensitive (RFC 5321); local parts formally are not, but no
/// mailbox in practice tells `Amina.Diallo@` from `amina.diallo@`, and a
/// list that changes the case of an address must not make a new send or
/// a second focal point. `config` refuses two focal points with the same
/// address under this rule, and `Model::focal_point` looks them up by it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddressKey(String);

impl AddressKey {
    pub fn of(address: &str) -> AddressKey {
        AddressKey(address.trim().to_lowercase())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AddressKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What every key of a slot (the sends of one event at one lead, or of one
/// letter) starts with: `reminder/<event>/<lead>/` or `letter/<letter>/`.
///
/// No prefix starts another (ids and leads hold no `/`), so ordering slots
/// by prefix, then their recipients by address, orders sends by key; and a
/// plan of millions of sends makes each key from its slot's prefix without
/// formatting the rest again.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyPrefix {
    text: String,
    kind: SendKind,
}

impl KeyPrefix {
    /// `lead` is a lead's normalised text (`Lead::as_str`).
    pub fn reminder(event: &str, lead: &str) -> KeyPrefix {
        KeyPrefix::new(SendKind::Reminder, format!("reminder/{event}/{lead}/"))
    }

    pub fn letter(letter: &str) -> KeyPrefix {
        KeyPrefix::new(SendKind::Letter, format!("letter/{letter}/"))
    }

    /// `kind` is [`SendKind::Update`] or [`SendKind::Cancellation`];
    /// `number` counts the notices sent about the event, so a second change
    /// makes new sends.
    pub fn notice(kind: SendKind, event: &str, number: u32) -> KeyPrefix {
        debug_assert!(kind.is_notice(), "{kind} is not a notice");
        KeyPrefix::new(kind, format!("{kind}/{event}/{number}/"))
    }

    fn new(kind: SendKind, text: String) -> KeyPrefix {
        debug_assert!(text.starts_with(kind.as_str()));
        KeyPrefix { text, kind }
    }

    /// The text of [`KeyPrefix::key`], written into `out` (cleared first):
    /// `plan --json` writes millions of keys through one buffer.
    pub fn write_key(&self, address: &AddressKey, out: &mut String) {
        out.clear();
        out.push_str(&self.text);
        out.push_str(&address.0);
    }

    /// The key of the send of this slot to `address`.
    pub fn key(&self, address: &AddressKey) -> SendKey {
        SendKey {
            text: format!("{}{}", self.text, address.0),
            kind: self.kind,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// The identity of one send, stable across plans, restarts and reloads.
/// Made by [`KeyPrefix::key`] or checked by [`SendKey::parse`], so its
/// parts can always be read back.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SendKey {
    // First, so that keys order by their text.
    text: String,
    kind: SendKind,
}

impl SendKey {
    pub fn reminder(event: &str, lead: &str, address: &AddressKey) -> SendKey {
        KeyPrefix::reminder(event, lead).key(address)
    }

    pub fn letter(letter: &str, address: &AddressKey) -> SendKey {
        KeyPrefix::letter(letter).key(address)
    }

    pub fn notice(kind: SendKind, event: &str, number: u32, address: &AddressKey) -> SendKey {
        KeyPrefix::notice(kind, event, number).key(address)
    }

    /// Reads a key back (from the outbox, or typed by an operator).
    pub fn parse(text: &str) -> Result<SendKey, KeyError> {
        let (kind, _) = text
            .split_once('/')
            .ok_or_else(|| KeyError::new(text, "a key reads kind/subject/…/address"))?;
        let kind: SendKind = kind.parse().map_err(|_| {
            KeyError::new(
                text,
                "a key starts with reminder/, letter/, update/ or cancellation/",
            )
        })?;
        let parts: Vec<&str> = text.splitn(kind.segments(), '/').collect();
        if parts.len() != kind.segments() || parts.iter().any(|part| part.is_empty()) {
            let shape = match kind {
                SendKind::Reminder => "reminder/<event>/<lead>/<address>",
                SendKind::Letter => "letter/<letter>/<address>",
                SendKind::Update | SendKind::Cancellation => "<kind>/<event>/<number>/<address>",
            };
            return Err(KeyError::new(text, &format!("a {kind} key reads {shape}")));
        }
        if kind.is_notice() && parts[2].parse::<u32>().is_err() {
            return Err(KeyError::new(
                text,
                "a notice's key has its number after the event",
            ));
        }
        Ok(SendKey {
            text: text.to_owned(),
            kind,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parts between the slashes; every key has its kind's number of
    /// them (made by a prefix, or checked by `parse`).
    fn parts(&self) -> impl Iterator<Item = &str> {
        self.text.splitn(self.kind.segments(), '/')
    }

    pub fn kind(&self) -> SendKind {
        self.kind
    }

    /// The event's id (reminders and notices) or the letter's.
    pub fn subject(&self) -> &str {
        self.parts().nth(1).unwrap_or_default()
    }

    /// A reminder's lead, as its normalised text ("7d").
    pub fn lead(&self) -> Option<&str> {
        (self.kind() == SendKind::Reminder).then(|| self.parts().nth(2).unwrap_or_default())
    }

    /// A notice's number (see [`KeyPrefix::notice`]).
    pub fn notice_number(&self) -> Option<u32> {
        if !self.kind().is_notice() {
            return None;
        }
        self.parts().nth(2)?.parse().ok()
    }

    /// The recipient's address, as [`AddressKey`] has it.
    pub fn address(&self) -> &str {
        self.parts().last().unwrap_or_default()
    }

    /// What mail that comes back names this send by: the first 12 bytes
    /// of the key's SHA-256, as 24 lower-case hex digits. It is the
    /// Message-ID's left part (`<TOKEN.herald@domain>`) and the VERP
    /// envelope sender's tag (`bounces+TOKEN@domain`), and the outbox
    /// finds a send by it. A digest rather than the key, so that neither
    /// shows the recipient's address.
    pub fn token(&self) -> String {
        token_of(&self.text)
    }
}

/// What names one day's operator digest to one address,
/// `digest/<date>/<address>`: not a send's key (the outbox has no row for
/// a digest), but spelt here with them; its Message-ID is made from it as
/// a send's is from its key, so a digest sent again is recognisable.
pub fn digest_key(date: jiff::civil::Date, address: &AddressKey) -> String {
    format!("digest/{date}/{}", address.as_str())
}

/// A send's token (see [`SendKey::token`]) from its key's text.
pub fn token_of(key: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    digest.as_ref()[..TOKEN_BYTES]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How many bytes of the key's digest a token keeps: 96 bits, so that no
/// two sends of any plan share one.
const TOKEN_BYTES: usize = 12;

/// How long a token is: two hex digits a byte.
pub const TOKEN_LEN: usize = 2 * TOKEN_BYTES;

/// Whether `text` has the shape of a send's token (24 lower-case hex
/// digits), before the outbox is asked for it.
pub fn is_token(text: &str) -> bool {
    text.len() == TOKEN_LEN && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl fmt::Display for SendKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for SendKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<SendKey, KeyError> {
        SendKey::parse(text)
    }
}

/// A text that is not a send's key, or not a kind of send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    text: String,
    why: String,
}

impl KeyError {
    fn new(text: &str, why: &str) -> KeyError {
        KeyError {
            text: text.to_owned(),
            why: why.to_owned(),
        }
    }
}

impl KeyError {
    /// Why the text is not a key, without the text.
    pub fn reason(&self) -> &str {
        &self.why
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a send's key: {}", self.text, self.why)
    }
}

impl std::error::Error for KeyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_the_digest_the_message_id_carries() {
        let key = SendKey::letter("circular", &AddressKey::of("a@b.example"));
        let token = key.token();
        assert!(is_token(&token), "{token}");
        assert_ne!(
            token,
            SendKey::letter("circular", &AddressKey::of("c@b.example")).token()
        );
        assert_eq!(
            crate::render::message::message_id(key.as_str(), "x.example"),
            format!("<{token}.herald@x.example>")
        );
        assert!(!is_token("0123456789abcdef0123456"));
        assert!(!is_token("0123456789ABCDEF01234567"));
    }

    #[test]
    fn keys_are_made_and_read_back() {
        let amina = AddressKey::of(" Amina.Diallo@Senegal-Mission.example.org ");
        assert_eq!(amina.as_str(), "amina.diallo@senegal-mission.example.org");
        let reminder = SendKey::reminder("first-reading", "7d", &amina);
        assert_eq!(
            reminder.as_str(),
            "reminder/first-reading/7d/amina.diallo@senegal-mission.example.org"
        );
        assert_eq!(SendKey::parse(reminder.as_str()), Ok(reminder.clone()));
        assert_eq!(
            (
                reminder.kind(),
                reminder.subject(),
                reminder.lead(),
                reminder.address()
            ),
            (
                SendKind::Reminder,
                "first-reading",
                Some("7d"),
                "amina.diallo@senegal-mission.example.org"
            )
        );
        let letter = SendKey::letter("modalities-roadmap-2017", &amina);
        assert_eq!(
            (letter.kind(), letter.lead(), letter.notice_number()),
            (SendKind::Letter, None, None)
        );
        assert_eq!(letter.subject(), "modalities-roadmap-2017");
        let notice = SendKey::notice(SendKind::Cancellation, "first-reading", 2, &amina);
        assert_eq!(
            notice.as_str(),
            "cancellation/first-reading/2/amina.diallo@senegal-mission.example.org"
        );
        assert_eq!(
            (notice.kind(), notice.notice_number()),
            (SendKind::Cancellation, Some(2))
        );
        assert_eq!(SendKey::parse(notice.as_str()), Ok(notice));
    }

    #[test]
    fn an_address_with_a_slash_stays_whole() {
        let key = SendKey::reminder("e", "1d", &AddressKey::of("a/b@example.org"));
        let parsed = SendKey::parse(key.as_str()).unwrap();
        assert_eq!((parsed.subject(), parsed.address()), ("e", "a/b@example.org"));
    }

    #[test]
    fn a_prefix_orders_its_keys() {
        let prefix = KeyPrefix::reminder("e", "1d");
        let a = prefix.key(&AddressKey::of("a@example.org"));
        let b = prefix.key(&AddressKey::of("b@example.org"));
        assert!(a < b && a.as_str().starts_with(prefix.as_str()));
    }

    #[test]
    fn malformed_keys_are_refused_with_the_reason() {
        for (text, why) in [
            ("", "reads kind/subject"),
            ("reminders/e/1d/a@x", "starts with reminder/"),
            ("reminder/e/a@x", "reminder/<event>/<lead>/<address>"),
            ("letter//a@x", "letter/<letter>/<address>"),
            ("update/e/first/a@x", "its number after the event"),
        ] {
            let err = SendKey::parse(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
        assert_eq!("update".parse::<SendKind>(), Ok(SendKind::Update));
        assert!("updates".parse::<SendKind>().is_err());
    }

    #[test]
    fn a_cancellation_goes_before_everything_and_a_sooner_event_before_a_later_one() {
        let (soon, later): (jiff::Timestamp, jiff::Timestamp) = (
            "2017-10-02T15:00:00Z".parse().unwrap(),
            "2017-10-09T15:00:00Z".parse().unwrap(),
        );
        let mut sends = [
            Urgency::new(SendKind::Letter, soon),
            Urgency::new(SendKind::Reminder, later),
            Urgency::new(SendKind::Reminder, soon),
            Urgency::new(SendKind::Update, later),
            Urgency::new(SendKind::Cancellation, later),
        ];
        sends.sort();
        let order: Vec<(u8, jiff::Timestamp)> = sends.iter().map(|u| (u.precedence, u.by)).collect();
        assert_eq!(order, [(0, later), (1, later), (2, soon), (2, later), (3, soon)],);
    }
}
