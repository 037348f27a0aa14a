//! One incoming message → what herald records and does about it.
//!
//! [`decide`] ties a [`Classification`] to herald's mail and chooses its
//! effect; the outbox records the message and applies the effect in one
//! transaction, once per Message-ID (`Outbox::take_incoming`).
//!
//! Attribution goes from the strongest clue to the weakest: the VERP token
//! of the envelope recipient (`bounces+TOKEN@…`: the relay returned the
//! message to exactly this send), then the Message-ID of the returned
//! original (`<TOKEN.herald@…>`), then the addresses the report names, but
//! only those herald has sent to. A report about an address herald never
//! sent to changes nothing, and one naming several addresses herald sent
//! to without saying which message it returns is kept for the operator:
//! herald sends one recipient per message, so guessing could suppress the
//! wrong focal point.

use jiff::{SignedDuration, Timestamp};

use crate::inbox::{Classification, InboxSettings, Kind, classify};
use crate::key::{self, AddressKey};
use crate::model::Model;
use crate::outbox::{Effect, Entry, IncomingRow, Outbox, OutboxError, Taken};

/// How temporary failures add up to a suppression (Mailman's bounce score:
/// so many within a period).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BouncePolicy {
    pub threshold: u32,
    pub period: SignedDuration,
}

impl Default for BouncePolicy {
    fn default() -> BouncePolicy {
        BouncePolicy {
            threshold: 3,
            period: SignedDuration::from_hours(14 * 24),
        }
    }
}

/// Checks an unsubscribe token: the list and the address it was made for,
/// if it is one of herald's (`tokens::LinkKeys::verify_unsubscribe` over
/// the list's focal points in the configuration).
pub type VerifyUnsubscribe<'a> = &'a dyn Fn(&str) -> Option<(String, AddressKey)>;

impl BouncePolicy {
    pub fn of(settings: &InboxSettings) -> BouncePolicy {
        BouncePolicy {
            threshold: settings.bounce_threshold,
            period: settings.bounce_period,
        }
    }
}

/// Taking in messages from one mailbox, with the running configuration:
/// classify, attribute, decide, record (the one path for the daemon and
/// for anything else that reads a mailbox).
pub struct Reading<'a> {
    pub model: &'a Model,
    pub outbox: &'a dyn Outbox,
    pub policy: BouncePolicy,
    /// Where the messages are read, for the record (`InboxSettings::describe`).
    pub source: &'a str,
}

/// What taking in one message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenIn {
    /// What was recorded (or would have been, for a message seen before).
    pub row: IncomingRow,
    pub taken: Taken,
}

impl Reading<'_> {
    /// Takes in one message: recorded once by its Message-ID, with its
    /// effect, in one transaction. A message seen before changes nothing.
    pub fn take_in(&self, bytes: &[u8], now: Timestamp) -> Result<TakenIn, OutboxError> {
        let classification = classify::classify(bytes);
        let id = record_id(&classification, bytes);
        let verify = |token: &str| verify_unsubscribe(self.model, token);
        let decision = decide(
            &classification,
            id,
            self.source,
            self.outbox,
            &verify,
            self.policy,
            now,
        )?;
        let taken = self.outbox.take_incoming(&decision.row, &decision.effect, now)?;
        Ok(TakenIn {
            row: decision.row,
            taken,
        })
    }

    /// Records a message herald cannot read (`why`), found at `place` in
    /// the mailbox, before it is moved aside for a human: it is in the
    /// digest's count of messages waiting for one.
    pub fn set_aside(&self, place: &str, why: &str, now: Timestamp) -> Result<TakenIn, OutboxError> {
        let row = IncomingRow {
            // Its place is all that is known of it, and it is not read twice.
            message_id: format!(
                "set-aside-{}",
                id_of(format!("{}\n{place}", self.source).as_bytes())
            ),
            received_at: now,
            source: self.source.to_owned(),
            kind: Kind::Other.as_str().to_owned(),
            addresses: Vec::new(),
            permanent: None,
            status: None,
            diagnostic: None,
            send: None,
            from: None,
            subject: None,
            outcome: format!("set aside unread ({why}): moved to the unreadable folder for a human"),
            needs_human: true,
        };
        let taken = self.outbox.take_incoming(&row, &Effect::Nothing, now)?;
        Ok(TakenIn { row, taken })
    }
}

/// The list and focal point an unsubscribe token was made for, if it
/// verifies with the configuration's link secrets against that list's
/// focal points now.
fn verify_unsubscribe(model: &Model, token: &str) -> Option<(String, AddressKey)> {
    let links = model.settings().sender.links.as_ref()?;
    let list = crate::tokens::unsubscribe_list(token)?;
    let members: Vec<AddressKey> = model
        .focal_points()
        .iter()
        .filter(|focal_point| focal_point.lists.iter().any(|own| own == list))
        .map(|focal_point| AddressKey::of(focal_point.email.as_ref()))
        .collect();
    links.verify_unsubscribe(token, &members)
}

/// What to record of one message and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub row: IncomingRow,
    pub effect: Effect,
}

/// The Message-ID a message is recorded under: its own, or, when it has
/// none, a digest of its bytes (so that a second look still finds it).
pub fn record_id(classification: &Classification, bytes: &[u8]) -> String {
    match &classification.message_id {
        Some(id) if !id.trim().is_empty() => id.trim().to_owned(),
        _ => id_of(bytes),
    }
}

/// A Message-ID for what has none: the SHA-256 of `bytes` in hex, under
/// a domain that can never be real (RFC 2606).
fn id_of(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}@herald.invalid")
}

/// Decides what `classification` (of a message recorded as `message_id`,
/// read from `source`) means for herald's mail.
pub fn decide(
    classification: &Classification,
    message_id: String,
    source: &str,
    outbox: &dyn Outbox,
    verify_unsubscribe: VerifyUnsubscribe<'_>,
    policy: BouncePolicy,
    now: Timestamp,
) -> Result<Decision, OutboxError> {
    let mut row = IncomingRow {
        message_id,
        received_at: now,
        source: source.to_owned(),
        kind: classification.kind.as_str().to_owned(),
        addresses: classification.addresses.clone(),
        permanent: classification.permanent,
        status: classification.status.clone(),
        diagnostic: classification.diagnostic.clone(),
        send: None,
        from: classification.from.clone(),
        subject: classification.subject.clone(),
        outcome: String::new(),
        needs_human: false,
    };
    let (outcome, effect, needs_human) = match classification.kind {
        Kind::Bounce | Kind::Delay => {
            let about = attribute(classification, outbox)?;
            if let Attributed::Send(entry) = &about {
                row.send = Some(entry.spec.key.clone());
            }
            about_report(classification, &about, policy, now)
        }
        Kind::Unsubscribe => unsubscribe(classification, verify_unsubscribe),
        Kind::AutoReply => ("recorded: an automatic reply".to_owned(), Effect::Nothing, false),
        Kind::Other => ("kept for the operator".to_owned(), Effect::Nothing, true),
    };
    row.outcome = outcome;
    row.needs_human = needs_human;
    Ok(Decision { row, effect })
}

/// What a delivery report is about.
#[derive(Debug)]
enum Attributed {
    /// One of herald's sends (by its token).
    Send(Box<Entry>),
    /// An address herald has sent to, named by the report.
    Address(AddressKey),
    /// Several such addresses, and no clue which message it returns.
    Ambiguous(Vec<AddressKey>),
    /// Nothing herald sent.
    Nothing,
}

/// The send a message names by its clues: the VERP token of its envelope
/// recipient first, then a returned Message-ID of herald's. `None` when it
/// names none the outbox has (the addresses a report names are not clues:
/// see [`decide`]).
pub fn named_send(
    classification: &Classification,
    outbox: &dyn Outbox,
) -> Result<Option<Entry>, OutboxError> {
    let clues = &classification.clues;
    let tokens = clues.verp_tokens.iter().map(String::as_str).chain(
        clues
            .original_message_ids
            .iter()
            .filter_map(|id| message_id_token(id)),
    );
    for token in tokens {
        if let Some(entry) = outbox.entry_by_token(token)? {
            return Ok(Some(entry));
        }
    }
    Ok(None)
}

fn attribute(classification: &Classification, outbox: &dyn Outbox) -> Result<Attributed, OutboxError> {
    if let Some(entry) = named_send(classification, outbox)? {
        return Ok(Attributed::Send(Box::new(entry)));
    }
    let mut sent_to = Vec::new();
    for address in &classification.addresses {
        let address = AddressKey::of(address);
        if !sent_to.contains(&address) && outbox.has_sent_to(&address)? {
            sent_to.push(address);
        }
    }
    Ok(match sent_to.len() {
        0 => Attributed::Nothing,
        1 => Attributed::Address(sent_to.remove(0)),
        _ => Attributed::Ambiguous(sent_to),
    })
}

/// The token in one of herald's Message-IDs (`TOKEN.herald@domain`).
fn message_id_token(message_id: &str) -> Option<&str> {
    let id = message_id.trim().trim_start_matches('<').trim_end_matches('>');
    let (token, _) = id.split_once(".herald@")?;
    key::is_token(token).then_some(token)
}

fn about_report(
    classification: &Classification,
    about: &Attributed,
    policy: BouncePolicy,
    now: Timestamp,
) -> (String, Effect, bool) {
    let address = match about {
        Attributed::Send(entry) => AddressKey::of(entry.spec.key.address()),
        Attributed::Address(address) => address.clone(),
        Attributed::Ambiguous(addresses) => {
            let named: Vec<&str> = addresses.iter().map(AddressKey::as_str).collect();
            let outcome = format!(
                "kept for the operator: the report names {} addresses herald sent to ({}) and not which message it returns",
                named.len(),
                named.join(", ")
            );
            return (outcome, Effect::Nothing, true);
        }
        Attributed::Nothing => {
            // Likely about mail a person sent from the process's address.
            return (
                "kept for the operator: not about anything herald sent".to_owned(),
                Effect::Nothing,
                true,
            );
        }
    };
    let why = report_words(classification);
    let of_send = match about {
        Attributed::Send(entry) => format!(" of {}", entry.spec.key),
        _ => String::new(),
    };
    let permanent = classification.permanent == Some(true);
    match classification.kind {
        Kind::Bounce if permanent && the_address_failed(classification.status.as_deref()) => (
            format!(
                "suppressed {} on every list: a permanent failure{of_send} ({why})",
                address.as_str()
            ),
            Effect::Suppress {
                address,
                list: None,
                reason: format!("a permanent failure{of_send} ({why})"),
            },
            false,
        ),
        Kind::Bounce => {
            // A refusal of this message (its content, a policy, a block
            // list) says nothing for sure of the address: it counts, as a
            // temporary failure does, rather than suppressing at once.
            let what = if permanent {
                "a refusal of the message"
            } else {
                "a temporary failure"
            };
            (
                format!(
                    "counted {what}{of_send} to {} ({why}); {} failures within {} suppress the address",
                    address.as_str(),
                    policy.threshold,
                    days(policy.period)
                ),
                Effect::CountFailure {
                    address,
                    threshold: policy.threshold,
                    since: now - policy.period,
                    reason: format!("{what}{of_send} ({why})"),
                },
                false,
            )
        }
        _ => (
            format!(
                "recorded: delivery to {} delayed{of_send} ({why})",
                address.as_str()
            ),
            Effect::Nothing,
            false,
        ),
    }
}

/// Whether a permanent failure with this RFC 3463 status is about the
/// address itself, so that no later message can reach it: a bad address or
/// mailbox (`5.1.x`), a disabled mailbox (`5.2.1`), a domain that does not
/// receive mail (`5.4.4`), Exchange Online's "recipient address rejected"
/// (`5.4.1`: no such recipient in its directory), or a failure that names
/// no cause (no status,
/// `5.0.0`). Not a full mailbox (`5.2.2`, which empties), nor a refusal of
/// the message (its size, content, or a policy: `5.3.x`, `5.6.x`,
/// `5.7.x`, often a block list that a later message passes), which count.
fn the_address_failed(status: Option<&str>) -> bool {
    let Some(status) = status else {
        return true;
    };
    let mut parts = status.split('.').skip(1);
    match (parts.next(), parts.next()) {
        (Some("1"), _) | (Some("0"), Some("0")) => true,
        (Some("2"), Some(detail)) => detail == "1",
        (Some("4"), Some(detail)) => detail == "4" || detail == "1",
        _ => false,
    }
}

/// A report's status and the server's words, for reasons and the digest.
fn report_words(classification: &Classification) -> String {
    match (&classification.status, &classification.diagnostic) {
        (Some(status), Some(diagnostic)) if diagnostic.contains(status.as_str()) => diagnostic.clone(),
        (Some(status), Some(diagnostic)) => format!("{status} {diagnostic}"),
        (Some(status), None) => status.clone(),
        (None, Some(diagnostic)) => diagnostic.clone(),
        (None, None) => "no status given".to_owned(),
    }
}

/// A period in words: "14 days", or "36h" when not whole days.
fn days(period: SignedDuration) -> String {
    let days = period.as_secs() / 86_400;
    if days * 86_400 == period.as_secs() {
        format!("{days} days")
    } else {
        format!("{period:#}")
    }
}

fn unsubscribe(classification: &Classification, verify: VerifyUnsubscribe<'_>) -> (String, Effect, bool) {
    let Some(token) = &classification.clues.unsubscribe_token else {
        return (
            "kept for the operator: an unsubscribe request without herald's token (which list, and is it theirs?)"
                .to_owned(),
            Effect::Nothing,
            true,
        );
    };
    match verify(token) {
        Some((list, address)) => (
            format!("unsubscribed {} from the list {list}", address.as_str()),
            Effect::Suppress {
                address,
                list: Some(list),
                reason: "unsubscribed by mail".to_owned(),
            },
            false,
        ),
        None => (
            "kept for the operator: the unsubscribe token does not verify (forged, mangled, or for a focal point no longer on the list)"
                .to_owned(),
            Effect::Nothing,
            true,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::Clues;
    use crate::key::SendKey;
    use crate::outbox::{Changes, Recorded, SendSpec, SqliteOutbox};

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn key(name: &str) -> SendKey {
        SendKey::reminder("e", "1d", &AddressKey::of(&format!("{name}@example.org")))
    }

    /// An outbox that sent a reminder to a@ and b@, and plans one to c@.
    fn outbox() -> (tempfile::TempDir, SqliteOutbox) {
        let dir = tempfile::tempdir().unwrap();
        let outbox = SqliteOutbox::open(dir.path()).unwrap();
        let spec = |name: &str, due: i64| SendSpec {
            key: key(name),
            recipient: format!("{name}@example.org"),
            list: "l".to_owned(),
            language: "en".to_owned(),
            template: "reminder".to_owned(),
            due: at(due),
            zone: "UTC".to_owned(),
        };
        let changes = Changes {
            insert: vec![spec("a", 10), spec("b", 10), spec("c", 1_000)],
            ..Changes::default()
        };
        outbox.apply(&changes, at(0)).unwrap();
        let claimed = outbox.claim_due(at(10), 10).unwrap();
        assert_eq!(claimed.len(), 2);
        let sent: Vec<_> = claimed
            .iter()
            .map(|e| {
                let outcome = Recorded::Sent {
                    reply: "250 ok".to_owned(),
                    left_at: None,
                };
                (e.spec.key.clone(), outcome)
            })
            .collect();
        outbox.record(&sent, at(11)).unwrap();
        (dir, outbox)
    }

    fn report(kind: Kind, permanent: Option<bool>, addresses: &[&str], clues: Clues) -> Classification {
        Classification {
            kind,
            addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
            permanent,
            status: permanent.map(|p| if p { "5.1.1" } else { "4.2.2" }.to_owned()),
            diagnostic: Some("smtp; 550 5.1.1 <a@example.org>: user unknown".to_owned()),
            clues,
            message_id: Some("report@mx.example.net".to_owned()),
            from: Some("mailer-daemon@mx.example.net".to_owned()),
            subject: Some("Undelivered Mail Returned to Sender".to_owned()),
        }
    }

    fn no_token(_: &str) -> Option<(String, AddressKey)> {
        None
    }

    fn decide_now(classification: &Classification, outbox: &SqliteOutbox) -> Decision {
        decide(
            classification,
            "m".to_owned(),
            "maildir",
            outbox,
            &no_token,
            BouncePolicy::default(),
            at(100),
        )
        .unwrap()
    }

    #[test]
    fn a_permanent_bounce_is_attributed_by_verp_first_then_by_message_id() {
        let (_dir, outbox) = outbox();
        // The report names b@ (forwarded?), the VERP token says a@'s send.
        let by_verp = Clues {
            verp_tokens: vec![key("a").token()],
            ..Clues::default()
        };
        let decision = decide_now(
            &report(Kind::Bounce, Some(true), &["b@example.org"], by_verp),
            &outbox,
        );
        assert_eq!(decision.row.send, Some(key("a")));
        let Effect::Suppress {
            address,
            list: None,
            reason,
        } = &decision.effect
        else {
            panic!("{decision:?}")
        };
        assert_eq!(address.as_str(), "a@example.org");
        assert!(reason.contains("user unknown"), "{reason}");
        let by_id = Clues {
            verp_tokens: vec!["0123456789abcdef01234567".to_owned()],
            original_message_ids: vec![format!("<{}.herald@gcm.example.org>", key("b").token())],
            ..Clues::default()
        };
        let decision = decide_now(&report(Kind::Bounce, Some(true), &[], by_id), &outbox);
        assert_eq!(decision.row.send, Some(key("b")));
        assert!(!decision.row.needs_human);
    }

    #[test]
    fn without_a_clue_only_an_address_herald_sent_to_counts() {
        let (_dir, outbox) = outbox();
        let named = |addresses: &[&str]| {
            decide_now(
                &report(Kind::Bounce, Some(true), addresses, Clues::default()),
                &outbox,
            )
        };
        // c@ has a send planned but never sent: not herald's mail yet.
        let never = named(&["c@example.org", "x@example.org"]);
        assert_eq!(never.effect, Effect::Nothing);
        assert!(never.row.needs_human);
        let one = named(&["A@Example.org", "x@example.org"]);
        assert!(
            matches!(&one.effect, Effect::Suppress { address, .. } if address.as_str() == "a@example.org")
        );
        assert_eq!(one.row.send, None);
        let two = named(&["a@example.org", "b@example.org"]);
        assert_eq!(two.effect, Effect::Nothing);
        assert!(
            two.row.needs_human && two.row.outcome.contains("2 addresses"),
            "{:?}",
            two.row
        );
    }

    #[test]
    fn a_permanent_refusal_of_the_message_counts_rather_than_suppresses() {
        let (_dir, outbox) = outbox();
        let clues = Clues {
            verp_tokens: vec![key("a").token()],
            ..Clues::default()
        };
        let with_status = |status: Option<&str>| {
            let mut message = report(Kind::Bounce, Some(true), &[], clues.clone());
            message.status = status.map(str::to_owned);
            decide_now(&message, &outbox).effect
        };
        for suppressing in [
            Some("5.1.1"),
            Some("5.1.10"),
            Some("5.2.1"),
            Some("5.4.4"),
            Some("5.4.1"),
            Some("5.0.0"),
            None,
        ] {
            assert!(
                matches!(with_status(suppressing), Effect::Suppress { .. }),
                "{suppressing:?}"
            );
        }
        for counting in ["5.7.1", "5.7.26", "5.2.2", "5.3.4", "5.6.0", "5.4.6"] {
            assert!(
                matches!(with_status(Some(counting)), Effect::CountFailure { .. }),
                "{counting}"
            );
        }
    }

    #[test]
    fn a_temporary_failure_counts_and_a_delay_is_only_recorded() {
        let (_dir, outbox) = outbox();
        let clues = Clues {
            verp_tokens: vec![key("a").token()],
            ..Clues::default()
        };
        let temporary = decide_now(&report(Kind::Bounce, Some(false), &[], clues.clone()), &outbox);
        assert!(
            matches!(&temporary.effect, Effect::CountFailure { threshold: 3, since, .. } if *since == at(100) - SignedDuration::from_hours(14 * 24)),
            "{temporary:?}"
        );
        let delay = decide_now(&report(Kind::Delay, Some(false), &[], clues), &outbox);
        assert_eq!(delay.effect, Effect::Nothing);
        assert!(
            delay
                .row
                .outcome
                .starts_with("recorded: delivery to a@example.org delayed")
        );
    }

    #[test]
    fn an_unsubscribe_takes_effect_only_with_a_token_that_verifies() {
        let (_dir, outbox) = outbox();
        let verify =
            |token: &str| (token == "good").then(|| ("l".to_owned(), AddressKey::of("a@example.org")));
        let asking = |token: Option<&str>| {
            let mut message = report(Kind::Unsubscribe, None, &["a@example.org"], Clues::default());
            message.clues.unsubscribe_token = token.map(str::to_owned);
            decide(
                &message,
                "u".to_owned(),
                "imap",
                &outbox,
                &verify,
                BouncePolicy::default(),
                at(100),
            )
            .unwrap()
        };
        let good = asking(Some("good"));
        assert!(matches!(&good.effect, Effect::Suppress { list: Some(list), .. } if list == "l"));
        assert!(!good.row.needs_human);
        for bad in [Some("forged"), None] {
            let decision = asking(bad);
            assert_eq!(decision.effect, Effect::Nothing);
            assert!(decision.row.needs_human, "{decision:?}");
        }
    }

    #[test]
    fn auto_replies_change_nothing_and_letters_wait_for_a_human() {
        let (_dir, outbox) = outbox();
        let auto = decide_now(&report(Kind::AutoReply, None, &[], Clues::default()), &outbox);
        assert_eq!((auto.effect, auto.row.needs_human), (Effect::Nothing, false));
        let letter = decide_now(&report(Kind::Other, None, &[], Clues::default()), &outbox);
        assert_eq!((letter.effect, letter.row.needs_human), (Effect::Nothing, true));
    }

    #[test]
    fn a_message_without_a_message_id_is_recorded_by_its_bytes() {
        let mut message = report(Kind::Other, None, &[], Clues::default());
        message.message_id = None;
        let id = record_id(&message, b"Subject: hello\r\n\r\nbody");
        assert!(id.ends_with("@herald.invalid"));
        assert_eq!(id, record_id(&message, b"Subject: hello\r\n\r\nbody"));
        assert_ne!(id, record_id(&message, b"Subject: hello\r\n\r\nother"));
    }
}
