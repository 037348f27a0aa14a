//! What the outbox keeps of the process's mailbox: each incoming message
//! once, and the suppressions its reports and requests caused.
//!
//! These are storage types: the outbox knows nothing of how a message was
//! classified (that is `inbox`), only what to record and what to do.

use jiff::Timestamp;

use crate::key::{AddressKey, SendKey};

/// One incoming message, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRow {
    /// Its Message-ID without angle brackets (a digest of its bytes when it
    /// had none): what makes taking it in idempotent.
    pub message_id: String,
    pub received_at: Timestamp,
    /// Where it was read: `maildir` or `imap`, and the mailbox.
    pub source: String,
    /// `inbox::Kind`'s word.
    pub kind: String,
    /// The failed or requesting addresses it names.
    pub addresses: Vec<String>,
    pub permanent: Option<bool>,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    /// The send it is about, when attributed.
    pub send: Option<SendKey>,
    /// Its sender and subject, for the operator.
    pub from: Option<String>,
    pub subject: Option<String>,
    /// What herald did about it, in words ("suppressed … on every list",
    /// "recorded: an automatic reply", "kept for the operator: …").
    pub outcome: String,
    /// Whether a human should read it (a letter, an unverifiable request).
    pub needs_human: bool,
}

/// What taking in a message does besides recording it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Nothing,
    /// Suppresses the address on one list, or on every list (`None`).
    Suppress {
        address: AddressKey,
        list: Option<String>,
        reason: String,
    },
    /// Counts a temporary failure of the address; with `threshold` of them
    /// at or after `since` (the bounce period before now), suppresses it on
    /// every list.
    CountFailure {
        address: AddressKey,
        threshold: u32,
        since: Timestamp,
        reason: String,
    },
}

/// An address herald does not send to, on one list or on every list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub address: AddressKey,
    /// `None`: every list.
    pub list: Option<String>,
    pub reason: String,
    pub since: Timestamp,
    /// The incoming message that caused it.
    pub message_id: Option<String>,
}

impl Suppression {
    /// Whether it stops a send to its address on `list`.
    pub fn covers(&self, list: &str) -> bool {
        self.list.as_deref().is_none_or(|own| own == list)
    }
}

/// What taking in a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// A message with this Message-ID was already recorded: nothing done.
    Seen,
    Recorded {
        /// The suppression it caused, if any (a new one, or one widened
        /// from a list to every list).
        suppressed: Option<Suppression>,
        /// How many planned sends it suppressed.
        sends: usize,
        /// For a counted failure: how many the address has in the period.
        failures: Option<u32>,
    },
}

/// What lifting an address's suppressions did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifted {
    pub suppressions: usize,
    /// Suppressed sends still to come, planned again.
    pub revived: usize,
}
