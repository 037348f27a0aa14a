//! The operator's daily digest: what happened since the last one and what
//! comes next, gathered from the outbox and the model, as the data its
//! templates (`digest.subject`, `digest.txt`, `digest.html`) see.
//!
//! A digest covers a period `[since, until)`: the sends that became sent,
//! failed, skipped or suppressed in it, every bounce, delay and unsubscribe
//! that came in, the incoming messages that wait for a human (with their
//! senders and subjects), and the next seven days of the plan from
//! `until`. Gathering is bounded: a burst can settle hundreds of thousands
//! of sends in a day, so each list keeps at most [`LISTED`] items and counts
//! the rest, and the sends that went out are counted by what they were
//! about rather than listed.
//!
//! Pure but for the outbox reads of [`gather`]: the daemon sends what it
//! gathers (`daemon/digest.rs`), `herald preview --digest` prints it.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp, ZonedDateTime};
use serde_json::{Value, json};

use crate::inbox::Kind;
use crate::key::SendKind;
use crate::model::{DigestSettings, Model};
use crate::outbox::{Entry, IncomingRow, Outbox, OutboxError, Request, State};
use crate::plan::{Planner, Source, Window};
use crate::render::{RenderError, Renderer};
use crate::send::Outgoing;

/// The most items a digest lists of each kind; the rest are counted.
pub const LISTED: usize = 50;

/// How far ahead a digest shows the plan.
pub const AHEAD: SignedDuration = SignedDuration::from_hours(7 * 24);

/// What the first digest covers when there was none before it: the day
/// before it.
pub const FIRST_PERIOD: SignedDuration = SignedDuration::from_hours(24);

/// The half-open span of time a digest covers: `[since, until)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub since: Timestamp,
    pub until: Timestamp,
}

/// At most [`LISTED`] items, and how many there were in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed<T> {
    pub total: usize,
    pub items: Vec<T>,
}

impl<T> Default for Listed<T> {
    fn default() -> Self {
        Listed {
            total: 0,
            items: Vec::new(),
        }
    }
}

impl<T> Listed<T> {
    fn push(&mut self, item: T) {
        self.total += 1;
        if self.items.len() < LISTED {
            self.items.push(item);
        }
    }

    /// How many were counted but not listed.
    pub fn more(&self) -> usize {
        self.total - self.items.len()
    }
}

/// The sends that went out about one thing: an event at one lead, a
/// letter, a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentGroup {
    pub kind: SendKind,
    /// The event's or letter's id.
    pub subject: String,
    pub lead: Option<String>,
    pub count: usize,
}

/// One slot of the plan ahead: an event at one lead, or a letter.
#[derive(Debug, Clone, PartialEq)]
pub struct Ahead {
    pub kind: SendKind,
    pub subject: String,
    /// The event's title (a letter's id).
    pub title: String,
    pub lead: Option<String>,
    /// When it is due, in the event's (or letter's) zone.
    pub due: ZonedDateTime,
    pub recipients: usize,
}

/// One digest's data.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest {
    pub period: Period,
    /// Sends that went out, by what they were about (most first).
    pub sent: Listed<SentGroup>,
    /// How many sends went out in all.
    pub sent_total: usize,
    pub failed: Listed<Entry>,
    pub suppressed: Listed<Entry>,
    pub skipped: Listed<Entry>,
    pub bounces: Listed<IncomingRow>,
    pub delays: Listed<IncomingRow>,
    pub unsubscribes: Listed<IncomingRow>,
    pub auto_replies: usize,
    /// Incoming messages of the period that a human should read.
    pub waiting: Listed<IncomingRow>,
    /// The slots with recipients due in `[until, until + AHEAD)`.
    pub ahead: Listed<Ahead>,
    /// Readers' requests still open (a successor named), whenever made:
    /// they wait for the operator until settled.
    pub requests: Listed<Request>,
}

/// The period of the next digest: from the end of the last one (or
/// [`FIRST_PERIOD`] before `now` when there was none) to `now`.
pub fn period_since(last_until: Option<Timestamp>, now: Timestamp) -> Period {
    let since = last_until
        .filter(|last| *last <= now)
        .unwrap_or_else(|| now.checked_sub(FIRST_PERIOD).unwrap_or(now));
    Period { since, until: now }
}

/// The outbox's record of where the last digest's period ended: the next
/// one starts there. Stored as an RFC 3339 instant.
pub const LAST_UNTIL: &str = "digest_until";

/// Where the last digest's period ended, if one went.
pub fn last_until(outbox: &dyn Outbox) -> Result<Option<Timestamp>, OutboxError> {
    let Some(text) = outbox.get_value(LAST_UNTIL)? else {
        return Ok(None);
    };
    text.parse::<Timestamp>().map(Some).map_err(|err| OutboxError {
        context: format!("reading when the last digest was sent ({LAST_UNTIL} = {text:?})"),
        source: Box::new(err),
    })
}

/// Records that the digest of a period ending at `until` went.
pub fn record_sent(outbox: &dyn Outbox, until: Timestamp) -> Result<(), OutboxError> {
    outbox.set_value(LAST_UNTIL, &until.to_string())
}

/// The digest as the message `to` gets, dated `date`, delivered to
/// `redirect` instead when set (rehearsals). Its Message-ID is the same
/// for every digest of the same day to the same address.
pub fn message(
    model: &Model,
    renderer: &Renderer,
    digest: &Digest,
    to: &lettre::Address,
    date: Timestamp,
    redirect: Option<&lettre::Address>,
) -> Result<Outgoing, RenderError> {
    let settings = settings_or_sample(model);
    let rendered = renderer.render_digest(&settings.language, digest.context(model, &settings))?;
    let day = digest
        .period
        .until
        .to_zoned_datetime(settings.zone.tz.clone())
        .date();
    let key = crate::key::digest_key(day, &crate::key::AddressKey::of(to.as_ref()));
    crate::render::message::build_digest(model, &rendered, to, &key, date, redirect)
}

/// Gathers the digest of `period`: what the outbox recorded in it (nothing
/// when there is no outbox) and the plan of the seven days from its end.
pub fn gather(model: &Model, outbox: Option<&dyn Outbox>, period: Period) -> Result<Digest, OutboxError> {
    let mut digest = Digest {
        period,
        sent: Listed::default(),
        sent_total: 0,
        failed: Listed::default(),
        suppressed: Listed::default(),
        skipped: Listed::default(),
        bounces: Listed::default(),
        delays: Listed::default(),
        unsubscribes: Listed::default(),
        auto_replies: 0,
        waiting: Listed::default(),
        ahead: ahead(model, period.until),
        requests: Listed::default(),
    };
    let Some(outbox) = outbox else {
        return Ok(digest);
    };
    for request in outbox.requests(true)? {
        digest.requests.push(request);
    }
    let in_period = |at: Timestamp| at >= period.since && at < period.until;
    // Counted by what they were about (listed most first below).
    let mut sent: BTreeMap<(SendKind, String, Option<String>), usize> = BTreeMap::new();
    for entry in outbox.settled_since(period.since)? {
        if !in_period(entry.updated_at) {
            continue;
        }
        match entry.state {
            State::Sent => {
                digest.sent_total += 1;
                let key = &entry.spec.key;
                *sent
                    .entry((
                        key.kind(),
                        key.subject().to_owned(),
                        key.lead().map(str::to_owned),
                    ))
                    .or_default() += 1;
            }
            State::Failed => digest.failed.push(entry),
            State::Suppressed => digest.suppressed.push(entry),
            State::Skipped => digest.skipped.push(entry),
            State::Planned | State::Sending | State::Cancelled => {}
        }
    }
    let mut groups: Vec<SentGroup> = sent
        .into_iter()
        .map(|((kind, subject, lead), count)| SentGroup {
            kind,
            subject,
            lead,
            count,
        })
        .collect();
    groups.sort_by_key(|group| std::cmp::Reverse(group.count));
    for group in groups {
        digest.sent.push(group);
    }
    for row in outbox.incoming_since(period.since)? {
        if !in_period(row.received_at) {
            continue;
        }
        if row.needs_human {
            digest.waiting.push(row.clone());
        }
        match Kind::parse(&row.kind) {
            Some(Kind::Bounce) => digest.bounces.push(row),
            Some(Kind::Delay) => digest.delays.push(row),
            Some(Kind::Unsubscribe) => digest.unsubscribes.push(row),
            Some(Kind::AutoReply) => digest.auto_replies += 1,
            Some(Kind::Other) | None => {}
        }
    }
    Ok(digest)
}

/// The plan's slots due in the seven days from `from` that have
/// recipients, counted without making their sends.
fn ahead(model: &Model, from: Timestamp) -> Listed<Ahead> {
    let planner = Planner::new(model);
    let window = Window {
        from: Some(from),
        until: from.checked_add(AHEAD).ok(),
    };
    let mut ahead = Listed::default();
    for slot in planner.slots(window) {
        let recipients = planner.recipients(&slot).len();
        if recipients == 0 {
            continue;
        }
        let (subject, title, lead) = match slot.source {
            Source::Reminder { event, lead } => (
                event.id.clone(),
                event.title.clone(),
                Some(lead.as_str().to_owned()),
            ),
            Source::Letter(letter) => (letter.id.clone(), letter.id.clone(), None),
        };
        ahead.push(Ahead {
            kind: slot.kind(),
            subject,
            title,
            lead,
            due: slot.due.clone(),
            recipients,
        });
    }
    ahead
}

impl Digest {
    /// What the templates see. Every key is always there (the templates
    /// render in strict mode); an absent text is "". Instants are written
    /// in the digest's zone, a planned send's also in its event's.
    pub fn context(&self, model: &Model, settings: &DigestSettings) -> Value {
        let tz = &settings.zone.tz;
        let at = |instant: Timestamp| format_instant(&instant.to_zoned_datetime(tz.clone()));
        let title_of = |kind: SendKind, subject: &str| match kind {
            SendKind::Letter => subject.to_owned(),
            _ => model
                .event(subject)
                .map_or_else(|| subject.to_owned(), |(_, event)| event.title.clone()),
        };
        let settled = |listed: &Listed<Entry>| {
            let items: Vec<Value> = listed
                .items
                .iter()
                .map(|entry| {
                    let key = &entry.spec.key;
                    json!({
                        "to": entry.spec.recipient,
                        "list": entry.spec.list,
                        "kind": key.kind().as_str(),
                        "subject": key.subject(),
                        "title": title_of(key.kind(), key.subject()),
                        "lead": key.lead().unwrap_or_default(),
                        "key": key.as_str(),
                        "reason": entry.reason.clone().unwrap_or_default(),
                        "reply": entry.last_reply.clone().unwrap_or_default(),
                        "at": at(entry.updated_at),
                    })
                })
                .collect();
            counted(listed, items)
        };
        let incoming = |listed: &Listed<IncomingRow>| {
            let items: Vec<Value> = listed
                .items
                .iter()
                .map(|row| {
                    let send = row.send.as_ref();
                    json!({
                        "addresses": row.addresses.join(", "),
                        "permanent": row.permanent.unwrap_or(false),
                        "status": row.status.clone().unwrap_or_default(),
                        "diagnostic": row.diagnostic.clone().unwrap_or_default(),
                        "send": send.map(|key| key.as_str().to_owned()).unwrap_or_default(),
                        "send_title": send.map(|key| title_of(key.kind(), key.subject())).unwrap_or_default(),
                        "from": row.from.clone().unwrap_or_default(),
                        "subject": row.subject.clone().unwrap_or_default(),
                        "outcome": row.outcome,
                        "at": at(row.received_at),
                    })
                })
                .collect();
            counted(listed, items)
        };
        let sent: Vec<Value> = self
            .sent
            .items
            .iter()
            .map(|group| {
                json!({
                    "kind": group.kind.as_str(),
                    "subject": group.subject,
                    "title": title_of(group.kind, &group.subject),
                    "lead": group.lead.clone().unwrap_or_default(),
                    "count": group.count,
                })
            })
            .collect();
        let ahead: Vec<Value> = self
            .ahead
            .items
            .iter()
            .map(|slot| {
                json!({
                    "kind": slot.kind.as_str(),
                    "subject": slot.subject,
                    "title": slot.title,
                    "lead": slot.lead.clone().unwrap_or_default(),
                    "due": format_instant(&slot.due),
                    "due_here": at(slot.due.timestamp()),
                    "recipients": slot.recipients,
                })
            })
            .collect();
        let requests: Vec<Value> = self
            .requests
            .items
            .iter()
            .map(|request| request_context(request, at(request.asked)))
            .collect();
        let sender = &model.settings().sender;
        json!({
            "organization": sender.organization,
            "zone": settings.zone.name,
            "since": at(self.period.since),
            "until": at(self.period.until),
            "day": self.period.until.to_zoned_datetime(tz.clone()).date().to_string(),
            "sent": {
                "count": self.sent_total,
                "groups": sent,
                "more": self.sent.more(),
            },
            "failed": settled(&self.failed),
            "suppressed": settled(&self.suppressed),
            "skipped": settled(&self.skipped),
            "bounces": incoming(&self.bounces),
            "delays": incoming(&self.delays),
            "unsubscribes": incoming(&self.unsubscribes),
            "auto_replies": self.auto_replies,
            "waiting": incoming(&self.waiting),
            "requests": counted(&self.requests, requests),
            "ahead": {
                "days": AHEAD.as_hours() / 24,
                "count": self.ahead.total,
                "items": ahead,
                "more": self.ahead.more(),
            },
        })
    }
}

/// `{count, items, more}` for a listed kind.
fn counted<T>(listed: &Listed<T>, items: Vec<Value>) -> Value {
    json!({
        "count": listed.total,
        "items": items,
        "more": listed.more(),
    })
}

/// "2017-10-02 08:00 CEST (Europe/Zurich)": unambiguous for an operator
/// who reads zones from several continents.
fn format_instant(zoned: &ZonedDateTime) -> String {
    let zone = zoned.time_zone().iana_name().unwrap_or("UTC");
    format!("{} ({zone})", zoned.strftime("%Y-%m-%d %H:%M %Z"))
}

/// The configured digest settings, or for checking templates without a
/// `[digest]` table, a digest at 08:00 UTC in the default language.
pub fn settings_or_sample(model: &Model) -> DigestSettings {
    let settings = model.settings();
    settings.digest.clone().unwrap_or_else(|| DigestSettings {
        to: Vec::new(),
        at: jiff::civil::time(8, 0, 0, 0),
        zone: crate::model::Zone {
            name: "UTC".to_owned(),
            tz: jiff::tz::TimeZone::UTC,
        },
        language: settings.default_language.clone(),
    })
}

/// A digest with one item of every kind, for checking the templates at
/// load (strict mode only catches a missing variable when it renders), so
/// a broken digest template is found by `herald check`, not at 08:00.
pub fn sample_context(model: &Model, settings: &DigestSettings) -> Value {
    use crate::key::{AddressKey, SendKey};
    use crate::outbox::SendSpec;
    let until = Timestamp::UNIX_EPOCH
        .checked_add(SignedDuration::from_hours(24 * 365 * 47))
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let since = until.checked_sub(FIRST_PERIOD).unwrap_or(until);
    let address = AddressKey::of("sample.reader@example.org");
    let key = SendKey::letter("sample-letter", &address);
    let entry = |state: State, reason: &str| Entry {
        spec: SendSpec {
            key: key.clone(),
            recipient: "sample.reader@example.org".to_owned(),
            list: "sample-list".to_owned(),
            language: settings.language.clone(),
            template: "cover-letter".to_owned(),
            due: since,
            zone: "UTC".to_owned(),
        },
        state,
        revision: 0,
        attempts: 1,
        next_attempt: None,
        last_reply: Some("550 5.1.1 no such user".to_owned()),
        reason: Some(reason.to_owned()),
        updated_at: since,
        sent_at: None,
        too_late: false,
    };
    let row = |kind: Kind, needs_human: bool| IncomingRow {
        message_id: "sample@example.org".to_owned(),
        received_at: since,
        source: "maildir".to_owned(),
        kind: kind.as_str().to_owned(),
        addresses: vec!["sample.reader@example.org".to_owned()],
        permanent: Some(true),
        status: Some("5.1.1".to_owned()),
        diagnostic: Some("no such user".to_owned()),
        send: Some(key.clone()),
        from: Some("Sample Sender <sample.sender@example.org>".to_owned()),
        subject: Some("A sample subject".to_owned()),
        outcome: "recorded".to_owned(),
        needs_human,
    };
    fn one<T>(item: T) -> Listed<T> {
        Listed {
            total: LISTED + 1,
            items: vec![item],
        }
    }
    let digest = Digest {
        period: Period { since, until },
        sent: one(SentGroup {
            kind: SendKind::Reminder,
            subject: "sample-event".to_owned(),
            lead: Some("7d".to_owned()),
            count: 3,
        }),
        sent_total: 3,
        failed: one(entry(State::Failed, "the server refused it")),
        suppressed: one(entry(State::Suppressed, "a permanent bounce")),
        skipped: one(entry(State::Skipped, "too late")),
        bounces: one(row(Kind::Bounce, false)),
        delays: one(row(Kind::Delay, false)),
        unsubscribes: one(row(Kind::Unsubscribe, false)),
        auto_replies: 1,
        waiting: one(row(Kind::Other, true)),
        ahead: one(Ahead {
            kind: SendKind::Reminder,
            subject: "sample-event".to_owned(),
            title: "A sample event".to_owned(),
            lead: Some("1d".to_owned()),
            due: until.to_zoned_datetime(settings.zone.tz.clone()),
            recipients: 12,
        }),
        requests: one(Request {
            id: 1,
            from: address.clone(),
            list: Some("sample-list".to_owned()),
            successor_name: "Sample Successor".to_owned(),
            successor_email: "sample.successor@example.org".to_owned(),
            asked: since,
            settled: None,
        }),
    };
    digest.context(model, settings)
}

/// What a template sees of a reader's request for the operator (the digest
/// and the status page): every key always there, `asked` as the caller
/// shows instants.
pub fn request_context(request: &crate::outbox::Request, asked: String) -> Value {
    json!({
        "id": request.id,
        "from": request.from.as_str(),
        "list": request.list.clone().unwrap_or_default(),
        "successor_name": request.successor_name,
        "successor_email": request.successor_email,
        "asked": asked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_keeps_at_most_its_share_and_counts_the_rest() {
        let mut listed = Listed::default();
        for i in 0..LISTED + 7 {
            listed.push(i);
        }
        assert_eq!(listed.items.len(), LISTED);
        assert_eq!(listed.total, LISTED + 7);
        assert_eq!(listed.more(), 7);
        assert_eq!(listed.items.last(), Some(&(LISTED - 1)));
    }

    #[test]
    fn the_first_digest_covers_the_day_before_and_the_next_from_the_last() {
        let now: Timestamp = "2017-10-02T06:00:00Z".parse().unwrap();
        assert_eq!(
            period_since(None, now),
            Period {
                since: "2017-10-01T06:00:00Z".parse().unwrap(),
                until: now
            }
        );
        let last: Timestamp = "2017-09-28T06:00:00Z".parse().unwrap();
        assert_eq!(period_since(Some(last), now).since, last);
        // A record from the future (a clock set back): a day, not nothing.
        let ahead: Timestamp = "2017-10-05T06:00:00Z".parse().unwrap();
        assert_eq!(
            period_since(Some(ahead), now).since,
            "2017-10-01T06:00:00Z".parse().unwrap()
        );
    }

    #[test]
    fn the_plan_ahead_counts_each_slot_s_recipients() {
        let model = crate::config::example_model();
        // The example's first reading of 2017: its reminders are due in
        // the week from 2017-09-25.
        let ahead = ahead(&model, "2017-09-25T00:00:00Z".parse().unwrap());
        assert!(ahead.total > 0, "{ahead:?}");
        for slot in &ahead.items {
            assert!(slot.recipients > 0);
            let due = slot.due.timestamp();
            assert!(
                due >= "2017-09-25T00:00:00Z".parse().unwrap()
                    && due < "2017-10-02T00:00:00Z".parse().unwrap()
            );
        }
    }
}
