//! Where incoming messages come from, and where they go once handled: the
//! one interface the processor uses, over a maildir or an IMAP account.
//!
//! The processor's loop is four calls: [`Source::fetch_new`] gives the
//! messages not yet handled; each is then either [`Source::done`] (flagged
//! seen and moved to the processed folder) or [`Source::set_aside`] (moved
//! to the unreadable folder); then [`Source::wait_for_mail`] until mail may
//! have come. Nothing here ever deletes a message. A message that was
//! fetched but neither done nor set aside (a crash, a failed outbox write)
//! is fetched again next time: the processor records each message once by
//! its Message-ID, so a second look changes nothing.
//!
//! An IMAP source that cannot reach its server keeps trying with a backoff
//! (1 s doubling to 5 min); while it waits, `fetch_new` returns the last
//! failure with the time of the next try ([`SourceError::status_line`]),
//! and `wait_for_mail` sleeps until then.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::inbox::imap::ImapSource;
use crate::inbox::maildir::MaildirSource;
use crate::inbox::settings::{InboxSettings, Mailbox};

/// The most of one message read into memory by default: a bigger one is
/// reported [`Fetched::too_big`] and not read. Bounces carry the original
/// message, so a few megabytes are common; 50 MB ones are not bounces.
pub const DEFAULT_FETCH_LIMIT: usize = 10 * 1024 * 1024;

/// The most messages one `fetch_new` gives, the oldest first, so that a
/// backlog is taken in parts: call it again while it gives this many.
pub const FETCH_BATCH: usize = 100;

/// One message not yet handled.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Which message it is, for `done` and `set_aside`.
    pub id: MessageRef,
    /// Its bytes, exactly as stored; empty when it is too big.
    pub bytes: Vec<u8>,
    /// Its size, when it is over the limit `fetch_new` was given: then it is
    /// not read at all, and can only be set aside.
    pub too_big: Option<u64>,
}

/// A message's place in its mailbox; opaque to the processor, good for
/// logs (its `Display`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageRef(pub(super) Place);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Place {
    /// A maildir file: in `new/` or `cur/`, by its name.
    Maildir { in_new: bool, name: String },
    /// An IMAP message: a UID is only valid with its folder's UIDVALIDITY.
    Imap { uid_validity: u32, uid: u32 },
}

impl fmt::Display for MessageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Place::Maildir { in_new, name } => {
                write!(f, "{}/{name}", if *in_new { "new" } else { "cur" })
            }
            Place::Imap { uid_validity, uid } => write!(f, "UID {uid} (UIDVALIDITY {uid_validity})"),
        }
    }
}

/// Why `wait_for_mail` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woke {
    /// The mailbox says something changed (inotify, IMAP IDLE).
    Mail,
    /// The wait ran out (the poll interval, or the caller's timeout).
    Timeout,
    /// A source that had failed may try again now.
    Retry,
}

/// A source failed; the processor logs it and puts [`Self::status_line`]
/// in the status. Nothing is lost: whatever was not handled is fetched
/// again.
#[derive(Debug)]
pub struct SourceError {
    /// What failed, in words ("login refused (…)", "cannot read the
    /// maildir /var/mail/herald: …").
    pub cause: String,
    /// For a source that retries by itself (IMAP): how long until it does.
    pub retry_in: Option<Duration>,
}

impl SourceError {
    pub(super) fn new(cause: impl Into<String>) -> SourceError {
        SourceError {
            cause: cause.into(),
            retry_in: None,
        }
    }

    /// For the status: "the inbox cannot be read: login refused (…), next
    /// try in 40s".
    pub fn status_line(&self) -> String {
        match self.retry_in {
            Some(wait) => format!(
                "the inbox cannot be read: {}, next try in {}",
                self.cause,
                brief_duration(wait)
            ),
            None => format!("the inbox cannot be read: {}", self.cause),
        }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.status_line())
    }
}

impl std::error::Error for SourceError {}

/// "40s", "2m30s", "5m": a wait, rounded up to the second.
pub(super) fn brief_duration(wait: Duration) -> String {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

/// The process's mailbox: a maildir or an IMAP account.
pub enum Source {
    Maildir(MaildirSource),
    Imap(Box<ImapSource>),
}

impl Source {
    /// The source `settings` describe. Nothing is opened yet: an IMAP
    /// source connects on its first fetch (and again after a failure).
    pub fn new(settings: &InboxSettings, clock: Arc<dyn Clock>) -> Source {
        match &settings.mailbox {
            Mailbox::Maildir(dir) => Source::Maildir(MaildirSource::new(
                dir.clone(),
                &settings.processed,
                &settings.unreadable,
                settings.poll,
            )),
            Mailbox::Imap(imap) => Source::Imap(Box::new(ImapSource::new(
                imap.clone(),
                &settings.processed,
                &settings.unreadable,
                settings.poll,
                clock,
            ))),
        }
    }

    /// The messages not yet handled (not flagged seen or deleted, still in
    /// the inbox), oldest first, at most [`FETCH_BATCH`] of them; one over
    /// `limit` bytes is not read, only reported with its size.
    pub async fn fetch_new(&mut self, limit: usize) -> Result<Vec<Fetched>, SourceError> {
        match self {
            Source::Maildir(source) => source.fetch_new(limit).await,
            Source::Imap(source) => source.fetch_new(limit).await,
        }
    }

    /// The message is handled: flagged seen and moved to the processed
    /// folder (created if missing).
    pub async fn done(&mut self, id: &MessageRef) -> Result<(), SourceError> {
        match self {
            Source::Maildir(source) => source.done(id).await,
            Source::Imap(source) => source.done(id).await,
        }
    }

    /// herald cannot read the message: it is moved, unseen, to the
    /// unreadable folder for a human, and `reason` is logged with it (the
    /// processor keeps it in the outbox too).
    pub async fn set_aside(&mut self, id: &MessageRef, reason: &str) -> Result<(), SourceError> {
        tracing::warn!(message = %id, reason, "an incoming message is set aside");
        match self {
            Source::Maildir(source) => source.set_aside(id).await,
            Source::Imap(source) => source.set_aside(id).await,
        }
    }

    /// Waits until mail may have come (then fetch again), at most
    /// `timeout` of real time, and at most the poll interval when the
    /// mailbox cannot say that mail came. A failed IMAP source waits until
    /// its next try instead (returning [`Woke::Retry`]).
    pub async fn wait_for_mail(&mut self, timeout: Duration) -> Result<Woke, SourceError> {
        match self {
            Source::Maildir(source) => Ok(source.wait_for_mail(timeout).await),
            Source::Imap(source) => source.wait_for_mail(timeout).await,
        }
    }

    /// Says goodbye to the server, if connected (IMAP LOGOUT); a maildir
    /// has nothing to close.
    pub async fn close(&mut self) {
        if let Source::Imap(source) = self {
            source.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_says_what_failed_and_when_herald_tries_again() {
        let error = SourceError {
            cause: "login refused (authentication failed)".to_owned(),
            retry_in: Some(Duration::from_millis(39_200)),
        };
        assert_eq!(
            error.status_line(),
            "the inbox cannot be read: login refused (authentication failed), next try in 40s"
        );
        assert_eq!(brief_duration(Duration::from_secs(150)), "2m30s");
        assert_eq!(brief_duration(Duration::from_secs(300)), "5m");
        assert_eq!(SourceError::new("x").status_line(), "the inbox cannot be read: x");
    }
}
