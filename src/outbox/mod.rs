//! The durable outbox: every planned send, its state and its history.
//!
//! The outbox, not a timer, decides what is due. Each send has a stable key
//! ([`SendKey`]) and moves through these states:
//!
//! ```text
//! planned ──claim──► sending ──250──► sent
//!    ▲                  │  ──4xx/network──► planned (retry later) … ► failed (gave up)
//!    │                  │  ──5xx──► failed
//!    └──restart─────────┘  (in flight when the process died: sent again)
//! planned ──no longer in the plan──► cancelled      planned ──too late──► skipped ──clock set back, or event moved later──► planned
//! planned ──its recipient suppressed (bounces, unsubscribe)──► suppressed ──suppression lifted, still to come──► planned
//! sending ──unclaim (claimed, never started: a reload paused the burst)──► planned
//! ```
//!
//! Exactly once, as far as SMTP allows: a send is claimed (`sending`) in a
//! committed transaction before it is handed to the server, and its outcome
//! is committed as soon as the server answers (an outcome is only recorded
//! on a row still `sending`). Only a crash between the server's 250 and that
//! commit can repeat a message, and the repeat carries the same Message-ID.
//! Each claim names its [`Claimant`], so that sends in flight are released
//! only by the daemon that claimed them, or at the next daemon's start when
//! their claimant is gone. The outbox knows nothing of SMTP or templates.

mod export;
mod incoming;
mod overrides;
mod postgres;
mod sqlite;

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;

use crate::key::{AddressKey, KeyPrefix, SendKey};

pub use incoming::{Effect, IncomingRow, Lifted, Suppression, Taken};
pub use overrides::{Asked, NewRequest, Override, Request};

pub use crate::state::Claimant;
pub use export::{Export, Table, Value};
pub use postgres::{OPERATION_TIMEOUT, PostgresOutbox, PostgresSettings};
pub use sqlite::SqliteOutbox;

/// Who opens an outbox: the daemon, or a command (whose claims, on SQLite,
/// are released when it is gone; on PostgreSQL they carry a lease).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    Daemon,
    Command,
}

/// Opens the outbox: the PostgreSQL database `database` when `[state]`
/// names one, else the SQLite file in `state_dir` (created if need be).
pub fn open(
    state_dir: &std::path::Path,
    database: Option<&PostgresSettings>,
    opener: Opener,
) -> Result<Box<dyn Outbox>, OutboxError> {
    Ok(match (database, opener) {
        (Some(settings), Opener::Daemon) => Box::new(PostgresOutbox::open_daemon(settings)?),
        (Some(settings), Opener::Command) => Box::new(PostgresOutbox::open(settings)?),
        (None, Opener::Daemon) => Box::new(SqliteOutbox::open_as(state_dir, Claimant::daemon())?),
        (None, Opener::Command) => Box::new(SqliteOutbox::open(state_dir)?),
    })
}

/// Whether this node plans (reconciles the outbox with its configuration
/// and plans notices), as [`Outbox::plan_as`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planning {
    /// This node plans: alone on its outbox, or holding the planner's role.
    Plans,
    /// Another node plans; this one sends what is planned.
    Another { node: String },
    /// This node's configuration is not the one the outbox was planned
    /// with (by `node`): it does not plan until they agree, and sends
    /// what is planned.
    Differs { node: String, planned_with: String },
}

/// Where a send stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Planned,
    Sending,
    Sent,
    Failed,
    Skipped,
    Cancelled,
    /// Not sent: its recipient is suppressed (a permanent bounce, too many
    /// temporary ones, an unsubscribe from its list).
    Suppressed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Planned => "planned",
            State::Sending => "sending",
            State::Sent => "sent",
            State::Failed => "failed",
            State::Skipped => "skipped",
            State::Cancelled => "cancelled",
            State::Suppressed => "suppressed",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        Some(match text {
            "planned" => State::Planned,
            "sending" => State::Sending,
            "sent" => State::Sent,
            "failed" => State::Failed,
            "skipped" => State::Skipped,
            "cancelled" => State::Cancelled,
            "suppressed" => State::Suppressed,
            _ => return None,
        })
    }

    /// Sent, failed, skipped and cancelled sends are history: reconciling
    /// with a new plan never touches them, except to revive a cancelled one
    /// or one skipped as too late that is due again.
    pub fn is_final(self) -> bool {
        !matches!(self, State::Planned | State::Sending)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a planned send is, as the outbox stores it. Its kind, event or
/// letter and lead are read from its key (and stored in columns of their
/// own too, for `herald history` to filter on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendSpec {
    pub key: SendKey,
    /// The recipient's address as the list has it.
    pub recipient: String,
    pub list: String,
    pub language: String,
    pub template: String,
    pub due: Timestamp,
    /// The IANA zone the due instant was planned in, for display.
    pub zone: String,
}

/// One row of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub spec: SendSpec,
    pub state: State,
    /// Raised each time the due instant changes (the event moved).
    pub revision: i64,
    pub attempts: u32,
    /// When a retry is due; `None` means at `spec.due`.
    pub next_attempt: Option<Timestamp>,
    /// The server's last reply, verbatim.
    pub last_reply: Option<String>,
    /// Why the send was skipped, cancelled or failed, in words.
    pub reason: Option<String>,
    pub updated_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    /// Skipped because it could only have been sent more than the late
    /// window after its due instant (see [`Recorded::TooLate`]): planned
    /// again if it becomes due again.
    pub too_late: bool,
}

impl Entry {
    /// When the send should next be attempted.
    pub fn effective_due(&self) -> Timestamp {
        self.next_attempt.unwrap_or(self.spec.due)
    }
}

/// Changes to apply in one transaction after reconciling with a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// New sends to plan.
    pub insert: Vec<SendSpec>,
    /// New sends that were due too long ago to be sent: recorded as skipped
    /// (as too late, so a clock set back can revive them).
    pub insert_skipped: Vec<(SendSpec, String)>,
    /// Planned sends whose due instant (or details) changed.
    pub reschedule: Vec<SendSpec>,
    /// Cancelled sends that are in the plan again, and sends skipped as
    /// too late that are due again (their event moved later).
    pub revive: Vec<SendSpec>,
    /// Planned sends that are no longer in the plan, with why.
    pub cancel: Vec<(SendKey, String)>,
    /// What calendars now know of events (inserted or replaced).
    pub calendar: Vec<CalendarRow>,
    /// The outbox now holds every send due before this instant: the end
    /// of the window just planned (see `Outbox::planned_until`).
    pub planned_until: Option<Timestamp>,
}

/// What herald has told calendars about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarRow {
    pub event: String,
    /// The invitation's SEQUENCE (RFC 5546): raised when start, end or
    /// status change.
    pub sequence: u32,
    /// Start, end and status, as last announced.
    pub signature: String,
    pub location: Option<String>,
    /// The event as last announced (`calendar::EventSnapshot`, as JSON).
    pub snapshot: String,
    /// The event as announced before the last change, for "what changed".
    pub previous: Option<String>,
    /// The event is gone from the configuration (and was cancelled).
    pub removed: bool,
    /// How many notices were sent about the event; part of their keys.
    pub notices: u32,
    /// The notices about the last change wait in the outbox until this
    /// instant (`notice_delay`); until then, undoing the change withdraws
    /// them. `None` when no notice is waiting.
    pub held_until: Option<Timestamp>,
    /// What calendars knew before the change whose notices wait
    /// (`scheduler::notices::Told`, as JSON); set with `held_until`.
    pub told: Option<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.insert.is_empty()
            && self.insert_skipped.is_empty()
            && self.reschedule.is_empty()
            && self.revive.is_empty()
            && self.cancel.is_empty()
            && self.calendar.is_empty()
    }
}

/// The outcome of one attempt, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// `left_at`: when it left, if not about now (it waited for its turn
    /// at the relay); the attempt and `sent_at` say so.
    Sent {
        reply: String,
        left_at: Option<Timestamp>,
    },
    /// Try again at `retry_at`. `attempted`: the mailer tried it (it
    /// counts against the relay's limits), rather than it being put back
    /// unsent (herald stopping, the outbox failing).
    Retry {
        reply: String,
        retry_at: Timestamp,
        attempted: bool,
    },
    /// Not sent and not an attempt (the relay was paused): try again at
    /// `retry_at`, without counting the claim as one of the attempts.
    Paused {
        reply: String,
        retry_at: Timestamp,
    },
    Failed {
        reply: Option<String>,
        reason: String,
    },
    Skipped {
        reason: String,
    },
    /// Skipped because it could only be sent more than the late window
    /// after its due instant. Unlike other skips, revived if the clock
    /// turns out to have been wrong (`Outbox::revive_too_late`).
    TooLate {
        reason: String,
    },
}

impl Recorded {
    /// Whether this attempt went to the relay, so that it counts against
    /// the relay's limits (`Outbox::departures_since`): a message it took,
    /// refused or failed on; not one that never left (paused, skipped, not
    /// rendered, put back unsent).
    pub fn reached_relay(&self) -> bool {
        match self {
            Recorded::Sent { .. } => true,
            Recorded::Retry { attempted, .. } => *attempted,
            Recorded::Failed { reply, .. } => reply.is_some(),
            Recorded::Paused { .. } | Recorded::Skipped { .. } | Recorded::TooLate { .. } => false,
        }
    }
}

/// How an outcome is stored, whatever the storage: the send's new state and
/// columns, and the label of its attempt in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<'a> {
    pub state: State,
    /// The server's reply, kept on the row (`None` keeps the last one).
    pub reply: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub next_attempt: Option<Timestamp>,
    pub sent_at: Option<Timestamp>,
    /// When the attempt happened: when the message left, if it waited for
    /// its turn at the relay, else now.
    pub at: Timestamp,
    /// The attempt's outcome in the history: sent, retry, paused, failed, skipped.
    pub label: &'static str,
    pub too_late: bool,
}

impl Recorded {
    /// How this outcome, recorded at `now`, is stored.
    pub fn stored(&self, now: Timestamp) -> Stored<'_> {
        let at = match self {
            Recorded::Sent {
                left_at: Some(left_at),
                ..
            } => *left_at,
            _ => now,
        };
        let (state, reply, reason, next_attempt, sent_at, label) = match self {
            Recorded::Sent { reply, .. } => (State::Sent, Some(reply.as_str()), None, None, Some(at), "sent"),
            Recorded::Retry { reply, retry_at, .. } => (
                State::Planned,
                Some(reply.as_str()),
                None,
                Some(*retry_at),
                None,
                "retry",
            ),
            // The claim counted an attempt the relay never saw: the
            // storage gives it back.
            Recorded::Paused { reply, retry_at } => (
                State::Planned,
                Some(reply.as_str()),
                None,
                Some(*retry_at),
                None,
                "paused",
            ),
            Recorded::Failed { reply, reason } => (
                State::Failed,
                reply.as_deref(),
                Some(reason.as_str()),
                None,
                None,
                "failed",
            ),
            Recorded::Skipped { reason } | Recorded::TooLate { reason } => {
                (State::Skipped, None, Some(reason.as_str()), None, None, "skipped")
            }
        };
        Stored {
            state,
            reply,
            reason,
            next_attempt,
            sent_at,
            at,
            label,
            too_late: matches!(self, Recorded::TooLate { .. }),
        }
    }
}

/// When a planned send may leave before its due instant, and how urgent it
/// is, as the scheduler works it out from the relay's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pace {
    pub key: SendKey,
    /// Not before this instant; `None`: at its due instant.
    pub release_at: Option<Timestamp>,
    /// The instant that makes it urgent (`key::Urgency::by`): its event's
    /// start; `None`: its due instant.
    pub urgent_by: Option<Timestamp>,
}

/// Counts by state, for status lines and summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub planned: usize,
    pub sending: usize,
    pub sent: usize,
    pub failed: usize,
    pub skipped: usize,
    pub cancelled: usize,
    pub suppressed: usize,
}

/// The storage interface: an SQLite file for one node, or a PostgreSQL
/// database several nodes share (claims with leases, one planner).
pub trait Outbox: Send + Sync {
    /// Every entry, in due order.
    fn entries(&self) -> Result<Vec<Entry>, OutboxError>;
    /// The entries with these keys (those that exist), in no order.
    fn entries_for(&self, keys: &[&SendKey]) -> Result<Vec<Entry>, OutboxError>;
    /// The entries in `state`, in due order.
    fn entries_in(&self, state: State) -> Result<Vec<Entry>, OutboxError>;
    /// The entries whose keys start with `prefix` (the sends of one slot
    /// of the plan), in key order.
    fn entries_under(&self, prefix: &KeyPrefix) -> Result<Vec<Entry>, OutboxError>;
    /// Up to when the plan is in the outbox: every send due before this
    /// instant has an entry, later ones may not have one yet. `None` for an
    /// outbox never reconciled.
    fn planned_until(&self) -> Result<Option<Timestamp>, OutboxError>;
    /// Applies the changes of a reconcile at once. Returns how many of the
    /// sends it planned (new, moved or revived) were suppressed at once,
    /// their recipients being suppressed.
    fn apply(&self, changes: &Changes, now: Timestamp) -> Result<usize, OutboxError>;
    /// Claims up to `limit` planned sends that may go at `now` (a retry at
    /// its next attempt, else at its release or its due instant), the
    /// earliest first, marking them sending in the name of this outbox's
    /// claimant.
    fn claim_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Entry>, OutboxError>;
    /// The same, the most urgent first (`key::Urgency`: precedence of the
    /// kind, then the event's start), for a relay whose limits hold sends
    /// back.
    fn claim_most_urgent(&self, now: Timestamp, limit: usize) -> Result<Vec<Entry>, OutboxError>;
    /// Claims the given planned sends whatever their due instant (a letter
    /// sent on demand), marking them sending.
    fn claim_keys(&self, keys: &[SendKey], now: Timestamp) -> Result<Vec<Entry>, OutboxError>;
    /// Records outcomes of attempts, in one transaction. Only a send still
    /// `sending` takes its outcome (one released meanwhile is planned
    /// again, and its new attempt will say how it went); returns how many
    /// did.
    fn record(&self, outcomes: &[(SendKey, Recorded)], now: Timestamp) -> Result<usize, OutboxError>;
    /// The earliest instant at which a planned send may go (as `claim_due`
    /// reads it); with leases, or at which a lease in flight ends (its send
    /// may then be taken over).
    fn next_due(&self) -> Result<Option<Timestamp>, OutboxError>;
    /// When the relay took (or refused, or failed on) each message sent at
    /// or after `since`, oldest first: what counts against its limits.
    fn departures_since(&self, since: Timestamp) -> Result<Vec<Timestamp>, OutboxError>;
    /// Writes when planned sends are released and how urgent they are (a
    /// row no longer planned is left alone).
    fn set_pace(&self, pace: &[Pace]) -> Result<(), OutboxError>;
    /// Releases no planned send early any more (the relay's limits are
    /// gone); returns how many were.
    fn clear_releases(&self) -> Result<usize, OutboxError>;
    /// Who has sends in flight (`sending`), each once.
    fn claimants_in_flight(&self) -> Result<Vec<Claimant>, OutboxError>;
    /// Puts the sends in flight of these claimants (left by a crash, a
    /// shutdown deadline, or a command that died) back to planned; returns
    /// how many.
    fn release_claims(
        &self,
        claimants: &[Claimant],
        reason: &str,
        now: Timestamp,
    ) -> Result<usize, OutboxError>;
    /// Plans again the sends skipped as too late that are due at or after
    /// `since` (the late window before now): the clock that made them late
    /// was wrong. Returns how many.
    fn revive_too_late(&self, since: Timestamp, now: Timestamp) -> Result<usize, OutboxError>;
    /// Plans failed sends again on the operator's word; `key` `None` means all.
    fn retry_failed(&self, key: Option<&SendKey>, now: Timestamp) -> Result<usize, OutboxError>;
    fn counts(&self) -> Result<Counts, OutboxError>;
    /// How many sends are planned (cheaper than `counts`, which reads
    /// the whole history).
    fn pending(&self) -> Result<usize, OutboxError>;
    /// How many suppressed sends are due at or after `now`: those lifting
    /// their recipients' suppressions would plan again (indexed, like
    /// `pending`).
    fn suppressed_from(&self, now: Timestamp) -> Result<usize, OutboxError>;
    /// What calendars know of each event.
    fn calendar_rows(&self) -> Result<Vec<CalendarRow>, OutboxError>;
    /// Puts sends claimed (`sending`) but never handed to the mailer back
    /// to planned, as they were before the claim: their attempt is not
    /// counted and none is logged. Returns how many.
    fn unclaim(&self, keys: &[SendKey], now: Timestamp) -> Result<usize, OutboxError>;
    /// The send whose token (`SendKey::token`) this is: what a VERP
    /// envelope recipient or a returned Message-ID names.
    fn entry_by_token(&self, token: &str) -> Result<Option<Entry>, OutboxError>;
    /// Whether herald ever handed a message for this address to the relay
    /// (sent, or failed at it): only then can a report about the address
    /// be about herald's mail.
    fn has_sent_to(&self, address: &AddressKey) -> Result<bool, OutboxError>;
    /// Whether an incoming message with this Message-ID is recorded.
    fn incoming_seen(&self, message_id: &str) -> Result<bool, OutboxError>;
    /// Records an incoming message and applies its effect in one
    /// transaction, once per Message-ID: a message already recorded
    /// changes nothing ([`Taken::Seen`]).
    fn take_incoming(&self, row: &IncomingRow, effect: &Effect, now: Timestamp)
    -> Result<Taken, OutboxError>;
    /// The incoming messages recorded at or after `since`, oldest first.
    fn incoming_since(&self, since: Timestamp) -> Result<Vec<IncomingRow>, OutboxError>;
    /// Every suppression in force, by address then list.
    fn suppressions(&self) -> Result<Vec<Suppression>, OutboxError>;
    /// Lifts every suppression of `address` (the operator fixed it, or the
    /// focal point asked to come back) and plans again its suppressed sends
    /// still to come (due at or after `now`).
    fn lift_suppressions(&self, address: &AddressKey, now: Timestamp) -> Result<Lifted, OutboxError>;
    /// Suppresses `address` on `list` (a reader unsubscribed through their
    /// link), with `reason`, and suppresses its planned sends on that list
    /// at once, in one transaction; the request is recorded among the
    /// incoming messages (source `web`, kind `unsubscribe`), which the
    /// suppression names, for the digest. Only reads when the address is already
    /// suppressed on that list or on every list, so that a repeated request
    /// costs no write; `true` when the suppression is new.
    fn suppress(
        &self,
        address: &AddressKey,
        list: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<bool, OutboxError>;
    /// Lifts the suppression of `address` on `list` alone (the reader chose
    /// the list again), never one of every list (a bounce's, which the
    /// operator lifts), and plans again its suppressed sends on that list
    /// still to come (due at or after `now`) that no other suppression
    /// covers; `true` when there was one to lift.
    fn lift_list_suppression(
        &self,
        address: &AddressKey,
        list: &str,
        now: Timestamp,
    ) -> Result<bool, OutboxError>;
    /// The sends that became sent, failed, skipped or suppressed at or
    /// after `since`, in the order they did (for the operator's digest).
    fn settled_since(&self, since: Timestamp) -> Result<Vec<Entry>, OutboxError>;
    /// Small named values that must survive a restart.
    fn get_value(&self, name: &str) -> Result<Option<String>, OutboxError>;
    fn set_value(&self, name: &str, value: &str) -> Result<(), OutboxError>;
    /// Every reader's override, by address.
    fn overrides(&self) -> Result<Vec<Override>, OutboxError>;
    /// The override of one address, if it has one.
    fn override_of(&self, address: &AddressKey) -> Result<Option<Override>, OutboxError>;
    /// Records a reader's override, replacing theirs; one that overrides
    /// nothing (both `None`) removes it.
    fn set_override(&self, choice: &Override) -> Result<(), OutboxError>;
    /// Removes the overrides of these addresses (focal points gone from the
    /// configuration); returns how many there were.
    fn remove_overrides(&self, addresses: &[AddressKey]) -> Result<usize, OutboxError>;
    /// Records a request for the operator, unless the same request (same
    /// reader, list and successor) is still open: then it is that one.
    fn add_request(&self, request: &NewRequest, now: Timestamp) -> Result<Asked, OutboxError>;
    /// The requests, oldest first; only those not settled if `open_only`.
    fn requests(&self, open_only: bool) -> Result<Vec<Request>, OutboxError>;
    /// Marks a request settled; false if there is no open request `id`.
    fn settle_request(&self, id: i64, now: Timestamp) -> Result<bool, OutboxError>;

    // Several nodes on one outbox. An outbox of one node (SQLite) has no
    // leases, always plans, and keeps the relay's limits in the mailer.

    /// Whose name this outbox claims sends in.
    fn claimant(&self) -> Claimant;

    /// How long a claim lasts unless renewed; `None` when claims have no
    /// lease (one node: its sends in flight are released at its restart).
    fn lease(&self) -> Option<Duration> {
        None
    }
    /// Renews the leases of this node's sends in flight; returns how many.
    fn renew_leases(&self) -> Result<usize, OutboxError> {
        Ok(0)
    }
    /// Whether this node's leases are surely valid for `margin` more: a
    /// send may start only then, so that it ends before another node could
    /// take it over. Always true without leases.
    fn may_send(&self, margin: Duration) -> bool {
        let _ = margin;
        true
    }
    /// Takes (or keeps) the planner's role for a configuration whose hash
    /// is `config_hash`, and says whether this node plans.
    fn plan_as(&self, config_hash: &str) -> Result<Planning, OutboxError> {
        let _ = config_hash;
        Ok(Planning::Plans)
    }
    /// Takes the earliest moment at or after `now` that the relay's
    /// `limits` allow, counting the moments every node sharing the outbox
    /// took: the relay's limits as one budget. `None` when the outbox keeps
    /// no such budget (one node: the mailer's own limiter counts).
    fn take_turn(
        &self,
        limits: &crate::pace::Limits,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, OutboxError> {
        let _ = (limits, now);
        Ok(None)
    }
}

/// A storage failure, with what herald was doing.
///
/// `Display` shows only what herald was doing ("claiming due sends"); the
/// storage's own error is the [`source`](std::error::Error::source). Show
/// both with anyhow's `{:#}`, or walk the sources when logging.
#[derive(Debug)]
pub struct OutboxError {
    pub context: String,
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl fmt::Display for OutboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.context)
    }
}

impl std::error::Error for OutboxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.source.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_names_the_cause_once() {
        let err = OutboxError {
            context: "claiming due sends".into(),
            source: Box::new(std::io::Error::other("disk I/O error")),
        };
        assert_eq!(err.to_string(), "claiming due sends");
        let shown = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(shown, "claiming due sends: disk I/O error");
    }
}
