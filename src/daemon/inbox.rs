//! The daemon's reader of the process's mailbox: a task beside the send
//! loop that takes in what arrives (`inbox::process`), then waits for more
//! (inotify on a maildir, IDLE on IMAP, or the poll interval).
//!
//! A rehearsal reads the mailbox once, at its start, and moves nothing: the
//! mailbox is the service's, which must still find every message where it
//! was (the rehearsal records what it read in its own outbox only); it
//! reads the first [`FETCH_BATCH`] messages waiting.
//!
//! It shares the scheduler's outbox and current configuration (the lists
//! a token is checked against are always the running ones); a reload that
//! changes `[inbox]` replaces the reader. A failure of the mailbox is
//! logged and shown in the status; the source retries by itself, and
//! nothing is lost: a message is moved to the processed folder only after
//! the outbox has recorded it, and recorded once by its Message-ID.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::clock::SystemClock;
use crate::diagnostics::Brief;
use crate::inbox::process::{BouncePolicy, Reading, TakenIn};
use crate::inbox::{DEFAULT_FETCH_LIMIT, FETCH_BATCH, Fetched, InboxSettings, Source};
use crate::outbox::Taken;
use crate::scheduler::{Scheduler, blocking};

/// The longest wait for mail before looking again anyway: a maildir
/// without inotify, or an IMAP connection that went quiet, is looked at
/// this often at least (the source's own poll interval may be shorter).
const LOOK_AT_LEAST_EVERY: Duration = Duration::from_secs(5 * 60);

/// The running reader.
pub(super) struct InboxReader {
    task: JoinHandle<()>,
    /// Reads once and moves nothing (see the module doc).
    rehearsal: bool,
    /// The mailbox it reads.
    settings: InboxSettings,
    /// Why the mailbox cannot be read, while it cannot.
    trouble: Arc<Mutex<Option<String>>>,
    /// Fires once the first look at the mailbox is over.
    first_look: Option<oneshot::Receiver<()>>,
}

impl InboxReader {
    /// Starts reading the mailbox of the running configuration, if it has
    /// one.
    pub(super) fn start(scheduler: Arc<Scheduler>, rehearsal: bool) -> Option<InboxReader> {
        let settings = scheduler.loaded().inbox.clone()?;
        let trouble = Arc::new(Mutex::new(None));
        let (looked, first_look) = oneshot::channel();
        let reader = Reader {
            scheduler,
            settings: settings.clone(),
            trouble: trouble.clone(),
            moves: !rehearsal,
        };
        let task = tokio::spawn(reader.run(looked));
        Some(InboxReader {
            task,
            rehearsal,
            settings,
            trouble,
            first_look: Some(first_look),
        })
    }

    /// After a reload: the reader of the new configuration's mailbox (this
    /// one if it did not change, none if it has none).
    pub(super) fn follow(reader: Option<InboxReader>, scheduler: &Arc<Scheduler>) -> Option<InboxReader> {
        let wanted = scheduler.loaded().inbox.clone();
        let rehearsal = reader.as_ref().is_some_and(|reader| reader.rehearsal);
        match (reader, wanted) {
            (Some(reader), Some(wanted)) if reader.settings == wanted => Some(reader),
            (reader, wanted) => {
                if let Some(reader) = reader {
                    info!(inbox = %reader.settings.describe(), "the configuration changed the inbox: no longer reading this one");
                    reader.stop();
                }
                wanted.and_then(|_| InboxReader::start(scheduler.clone(), rehearsal))
            }
        }
    }

    /// Waits until the first look at the mailbox is over (at most `limit`),
    /// so that what arrived while herald was down takes effect before the
    /// first sends: a report of a dead address suppresses its next
    /// reminder, also in a rehearsal.
    pub(super) async fn first_look(&mut self, limit: Option<Duration>) {
        let Some(first_look) = self.first_look.take() else {
            return;
        };
        match limit {
            Some(limit) => {
                if tokio::time::timeout(limit, first_look).await.is_err() {
                    warn!(
                        waited = %format!("{limit:?}"),
                        "the first look at the inbox takes long; sending meanwhile"
                    );
                }
            }
            None => {
                let _ = first_look.await;
            }
        }
    }

    /// For the status line.
    pub(super) fn trouble(&self) -> Option<String> {
        self.trouble.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn stop(self) {
        self.task.abort();
    }
}

/// The reader's task: what it reads, and whether it moves what it read.
struct Reader {
    scheduler: Arc<Scheduler>,
    settings: InboxSettings,
    trouble: Arc<Mutex<Option<String>>>,
    /// Whether messages are moved once taken in (not in a rehearsal).
    moves: bool,
}

impl Reader {
    async fn run(self, looked: oneshot::Sender<()>) {
        let mut looked = Some(looked);
        // The mailbox's retries wait in real time whatever the daemon's clock:
        // a server comes back in the real world, and a rehearsal's stepping
        // clock would otherwise be moved by each wait, and its sends with it.
        let mut source = Source::new(&self.settings, Arc::new(SystemClock));
        if self.moves {
            info!(inbox = %self.settings.describe(), "reading the inbox");
        } else {
            info!(inbox = %self.settings.describe(), "a rehearsal reads the inbox once and moves nothing in it");
        }
        loop {
            match self.take_in_all(&mut source).await {
                Ok(()) => set(&self.trouble, None),
                Err(why) => {
                    warn!(error = %why, "the inbox cannot be read; trying again");
                    set(&self.trouble, Some(why));
                }
            }
            if let Some(looked) = looked.take() {
                let _ = looked.send(());
            }
            if !self.moves {
                return;
            }
            if let Err(err) = source.wait_for_mail(LOOK_AT_LEAST_EVERY).await {
                warn!(error = %err, "waiting for mail failed");
                set(&self.trouble, Some(err.status_line()));
            }
        }
    }

    /// Takes in every message waiting, a batch at a time (a rehearsal,
    /// which moves nothing, one batch). Stops at the first failure of the
    /// mailbox or the outbox (said in the returned words); what was not
    /// done is fetched again next time.
    async fn take_in_all(&self, source: &mut Source) -> Result<(), String> {
        loop {
            let batch = source
                .fetch_new(DEFAULT_FETCH_LIMIT)
                .await
                .map_err(|err| err.status_line())?;
            let full = batch.len() >= FETCH_BATCH;
            for fetched in batch {
                self.take_in(source, fetched).await?;
            }
            if !full || !self.moves {
                return Ok(());
            }
        }
    }

    async fn take_in(&self, source: &mut Source, fetched: Fetched) -> Result<(), String> {
        let Fetched { id, bytes, too_big } = fetched;
        let place = id.to_string();
        let too_big =
            too_big.map(|size| format!("{size} bytes, over the {DEFAULT_FETCH_LIMIT} bytes herald reads"));
        let (scheduler, policy, described) = (
            self.scheduler.clone(),
            BouncePolicy::of(&self.settings),
            self.settings.describe(),
        );
        let why_aside = too_big.clone();
        let taken = blocking(move || {
            let loaded = scheduler.loaded();
            let reading = Reading {
                model: &loaded.model,
                outbox: scheduler.outbox().as_ref(),
                policy,
                source: &described,
            };
            let now = scheduler.clock().now();
            match &why_aside {
                Some(why) => reading.set_aside(&place, why, now),
                None => reading.take_in(&bytes, now),
            }
        })
        .await
        .map_err(|err| format!("the outbox cannot record what came in: {}", Brief(&err)))?;
        log_taken(&taken);
        if !self.moves {
            return Ok(());
        }
        match too_big {
            Some(why) => source.set_aside(&id, &why).await,
            None => source.done(&id).await,
        }
        .map_err(|err| err.status_line())
    }
}

fn set(trouble: &Mutex<Option<String>>, value: Option<String>) {
    *trouble.lock().unwrap_or_else(|p| p.into_inner()) = value;
}

/// One line per message taken in, and a warning for a new suppression.
fn log_taken(TakenIn { row, taken }: &TakenIn) {
    let Taken::Recorded {
        suppressed, sends, ..
    } = taken
    else {
        info!(message_id = %row.message_id, "an incoming message seen before: nothing to do");
        return;
    };
    info!(
        message_id = %row.message_id,
        kind = %row.kind,
        from = row.from.as_deref().unwrap_or(""),
        subject = row.subject.as_deref().unwrap_or(""),
        send = row.send.as_ref().map(|key| key.as_str()).unwrap_or(""),
        needs_human = row.needs_human,
        "incoming: {}",
        row.outcome
    );
    if let Some(suppression) = suppressed {
        warn!(
            address = suppression.address.as_str(),
            list = suppression.list.as_deref().unwrap_or("every list"),
            reason = %suppression.reason,
            sends_suppressed = sends,
            "an address is suppressed: herald sends it nothing more until `herald suppressions remove`"
        );
    }
}
