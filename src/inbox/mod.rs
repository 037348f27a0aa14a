//! The process's mailbox: what comes back to herald's mail.
//!
//! Every answer to herald's mail arrives in one mailbox: delivery reports
//! (bounces and delays), requests to be taken off a list, out-of-office
//! replies, and real letters from delegations. This module reads that
//! mailbox and closes the loop:
//!
//! ```text
//! source (maildir or IMAP) ──bytes──► classify ──Classification──► process ──► outbox (incoming, suppressions)
//!                                                                     │
//!                                            the message moved to the processed folder (or aside, with why)
//! ```
//!
//! Classification is pure and says what a message is and what it points
//! back to ([`Clues`]); `process` ties it to a send herald made (by the
//! VERP token of its envelope recipient, then the original's Message-ID,
//! then the addresses the report names, if herald sent to them) and
//! records it and its effect in the outbox in one transaction, once per
//! Message-ID. When unsure, a message is [`Kind::Other`]: a human letter
//! must never be taken for a bounce.

pub mod classify;
pub mod process;

use std::fmt;

mod imap;
mod maildir;
pub mod settings;
pub mod source;

pub use settings::{ImapSettings, InboxSettings, Mailbox};
pub use source::{DEFAULT_FETCH_LIMIT, FETCH_BATCH, Fetched, MessageRef, Source, SourceError, Woke};

/// What an incoming message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A delivery failed: a delivery status notification (RFC 3464) or a
    /// mail server's own format.
    Bounce,
    /// A delivery is delayed and still being tried (a 4.x.x warning).
    Delay,
    /// A focal point asks to be taken off a list.
    Unsubscribe,
    /// An automatic answer (RFC 3834, out of office).
    AutoReply,
    /// Anything else: for a human to read.
    Other,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bounce => "bounce",
            Kind::Delay => "delay",
            Kind::Unsubscribe => "unsubscribe",
            Kind::AutoReply => "auto-reply",
            Kind::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Some(match text {
            "bounce" => Kind::Bounce,
            "delay" => Kind::Delay,
            "unsubscribe" => Kind::Unsubscribe,
            "auto-reply" => Kind::AutoReply,
            "other" => Kind::Other,
            _ => return None,
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one incoming message is, as read from its bytes alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub kind: Kind,
    /// The failed (bounce, delay) or requesting (unsubscribe) addresses,
    /// lower-cased, each once, at most [`MAX_ADDRESSES`].
    pub addresses: Vec<String>,
    /// For a bounce or a delay: whether the failure is permanent (a delay
    /// never is).
    pub permanent: Option<bool>,
    /// The RFC 3463 status (`5.1.1`), when the report gives one.
    pub status: Option<String>,
    /// The remote server's words, unfolded into one line.
    pub diagnostic: Option<String>,
    pub clues: Clues,
    /// The message's own Message-ID, without its angle brackets.
    pub message_id: Option<String>,
    /// Its From address.
    pub from: Option<String>,
    pub subject: Option<String>,
}

/// What in a message points back at something herald sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Clues {
    /// Send tokens (`key::is_token`) found as the tag of an envelope
    /// recipient (`bounces+TOKEN@…` in `X-Original-To`, `Delivered-To`,
    /// `Envelope-To`, `X-Envelope-To`, `X-Rcpt-To`, then `To`).
    pub verp_tokens: Vec<String>,
    /// The Message-IDs of the returned original, without angle brackets.
    pub original_message_ids: Vec<String>,
    /// For an unsubscribe: the token after "unsubscribe" in its subject.
    pub unsubscribe_token: Option<String>,
}

/// A report naming more addresses than this keeps the first ones: herald
/// sends one recipient per message, so a longer list is about someone
/// else's mail.
pub const MAX_ADDRESSES: usize = 100;
