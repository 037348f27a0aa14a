//! Decides what to send when, and hands it to the mailer.
//!
//! The outbox holds the schedule; the scheduler keeps it in line with the
//! plan ([`reconcile`]), claims what is due, renders and sends it, and
//! records every outcome, so that no failure is lost and none stops the
//! daemon. It reads the time only through its `Clock`, and it does no I/O of
//! its own but through the outbox and the mailer.

pub mod notices;
pub mod overlay;
pub mod reconcile;
pub mod release;
pub mod retry;
pub mod row;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};

use jiff::{SignedDuration, Timestamp};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use std::path::Path;

use crate::clock::Clock;
use crate::config::{Config, Environment};
use crate::diagnostics::{Brief, Diagnostics};
use crate::key::{SendKey, SendKind};
use crate::metrics::{Metrics, SendState};
use crate::model::Model;
use crate::outbox::{Changes, Entry, Outbox, OutboxError, Override, Planning, Recorded, State};
use crate::plan::{PlannedSend, Planner, Slot, Window};
use crate::render::{Renderer, message};
use crate::resolve::{Calendars, resolve};
use crate::send::{Delivery, Mailer, Outcome, Transport};

pub use overlay::{Choice, Choices, Ignored};
pub use retry::RetryPolicy;

/// One consistent configuration: the model, how mail leaves, and the
/// compiled templates. The daemon swaps it whole on a reload; the commands
/// load it the same way.
#[derive(Clone)]
pub struct Loaded {
    /// The configuration's model, with readers' overrides laid over it
    /// (see [`Loaded::with_overrides`]).
    pub model: Model,
    pub delivery: Delivery,
    /// The process's mailbox, when herald reads one.
    pub inbox: Option<crate::inbox::InboxSettings>,
    /// The web listeners, when herald serves pages.
    pub http: Option<crate::web::HttpSettings>,
    /// Shared by the configuration with and without overrides: they
    /// change no template, only which language and zone a reader gets.
    pub renderer: Arc<Renderer>,
    /// What the configuration allows but should change (see `Config::warnings`).
    pub warnings: Diagnostics,
    /// The readers of this configuration's personal links, looked up by
    /// token (`web::readers::find`); built on first use, dropped with it.
    pub readers: crate::web::readers::Index,
    /// What readers' overrides changed in `model`.
    pub choices: Choices,
    /// The configuration's digest (`Config::fingerprint`).
    pub fingerprint: String,
}

impl Loaded {
    /// Loads the configuration directory and compiles and checks its
    /// templates against every event starting at or after `check_since`
    /// (every event when `None`; see [`crate::render::prepare_for`]).
    pub fn load(
        dir: &Path,
        env: &Environment,
        check_since: Option<Timestamp>,
    ) -> Result<Loaded, Diagnostics> {
        let Config {
            model,
            delivery,
            inbox,
            http,
            warnings,
            fingerprint,
        } = crate::config::load(dir, env)?;
        let renderer = Arc::new(crate::render::prepare_for(&model, check_since)?);
        Ok(Loaded {
            model,
            delivery,
            inbox,
            http,
            renderer,
            warnings,
            readers: crate::web::readers::Index::default(),
            choices: Choices::default(),
            fingerprint,
        })
    }

    /// The same configuration with `overrides` laid over it, in place of
    /// the ones it had; and the overrides (or parts) that were ignored.
    pub fn with_overrides(&self, overrides: &[Override]) -> (Loaded, Vec<Ignored>) {
        let mut model = self.model.clone();
        let (choices, ignored) =
            overlay::lay(&mut model, &self.choices, overrides, self.renderer.languages());
        let loaded = Loaded {
            model,
            choices,
            ..self.clone()
        };
        (loaded, ignored)
    }
}

/// `loaded` with the readers' overrides kept in `outbox` laid over it, each
/// one ignored said in the log. With `forget_gone` (after a configuration
/// was loaded), the overrides of addresses no longer in it are removed
/// from the outbox: a focal point who comes back starts from the
/// configuration. Overrides that cannot be read are not applied, with a
/// warning: the configuration alone is better than no sending.
pub fn lay_overrides(loaded: Loaded, outbox: &dyn Outbox, forget_gone: bool) -> Loaded {
    let overrides = match outbox.overrides() {
        Ok(overrides) => overrides,
        Err(err) => {
            warn!(error = %crate::diagnostics::Chain(&err), "readers' overrides cannot be read; the configuration's languages and zones are used");
            return loaded;
        }
    };
    if overrides.is_empty() && loaded.choices.is_empty() {
        return loaded;
    }
    let (loaded, ignored) = loaded.with_overrides(&overrides);
    let mut gone = Vec::new();
    for ignored in ignored {
        match ignored {
            Ignored::Gone(address) => gone.push(address),
            other => warn!(override = %other, "a reader's override is ignored"),
        }
    }
    if forget_gone && !gone.is_empty() {
        match outbox.remove_overrides(&gone) {
            Ok(removed) => {
                for address in &gone {
                    info!(%address, "the override of a focal point no longer in the configuration is removed");
                }
                info!(
                    removed,
                    "readers' overrides of focal points no longer in the configuration removed"
                );
            }
            Err(err) => {
                warn!(error = %crate::diagnostics::Chain(&err), "the overrides of focal points no longer in the configuration could not be removed; they are ignored")
            }
        }
    }
    if !loaded.choices.is_empty() {
        info!(readers = loaded.choices.len(), "readers' overrides applied");
    }
    loaded
}

/// The scheduler's parts, shared with the tasks that send.
pub struct Scheduler {
    outbox: Arc<dyn Outbox>,
    mailer: RwLock<Arc<Mailer>>,
    clock: Arc<dyn Clock>,
    loaded: RwLock<Arc<Loaded>>,
    retry: RetryPolicy,
    /// Signalled each time outcomes are recorded, so the daemon can feed
    /// the watchdog during a long batch only while sends keep finishing.
    progress: tokio::sync::Notify,
    /// Outcomes the outbox could not record ("database is locked", a full
    /// disk), kept here and recorded first when it works again. Their sends
    /// stay `sending` meanwhile, so nobody sends them again; only a crash
    /// before they are recorded loses them (and then the next start sends
    /// them again, as for any send in flight at a crash).
    unrecorded: Arc<Kept>,
    /// Where outcomes and reconciles are counted (`/metrics`).
    metrics: Arc<Metrics>,
    /// Whether this node plans, as the outbox said at the last look (nodes
    /// sharing a database plan one at a time; see `Outbox::plan_as`);
    /// `None` before the first.
    planning: Mutex<Option<Planning>>,
}

/// How long before its leases expire a node stops starting sends, as a
/// share of the lease: half of it. Renewals go every sixth, so two renewals
/// in a row may fail before the node stops starting sends.
pub fn lease_margin(lease: std::time::Duration) -> std::time::Duration {
    lease / 2
}

/// How long before its leases expire a node abandons the sends it has in
/// flight (the SMTP conversation is dropped; a message whose data the
/// relay has not acknowledged is not delivered): before any other node
/// can take them over.
const ABANDON_BEFORE_EXPIRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Outcomes kept until the outbox can record them (see `Scheduler`), and
/// why the last try failed, while it fails.
#[derive(Default)]
struct Kept {
    outcomes: Mutex<Vec<(SendKey, Recorded)>>,
    failure: Mutex<Option<String>>,
}

impl Kept {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(SendKey, Recorded)>> {
        // A list of outcomes, whole after every push: a panic elsewhere
        // cannot leave it half-written.
        self.outcomes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_failure(&self, failure: Option<String>) {
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = failure;
    }

    fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records `outcomes` after the ones kept from before, in one
    /// transaction; if the outbox cannot take them, keeps them all for the
    /// next try. Returns how many were recorded. Blocks (a commit).
    fn record_or_keep(
        &self,
        outbox: &dyn Outbox,
        now: Timestamp,
        outcomes: Vec<(SendKey, Recorded)>,
    ) -> Result<usize, OutboxError> {
        let mut all = std::mem::take(&mut *self.lock());
        all.extend(outcomes);
        if all.is_empty() {
            return Ok(0);
        }
        match outbox.record(&all, now) {
            Ok(recorded) => {
                self.set_failure(None);
                if recorded < all.len() {
                    // Released by someone else in the meantime: planned
                    // again, so the outcome of this attempt is left out.
                    warn!(
                        outcomes = all.len(),
                        recorded, "some outcomes were for sends no longer in flight; not recorded"
                    );
                }
                Ok(recorded)
            }
            Err(err) => {
                self.set_failure(Some(Brief(&err).to_string()));
                let mut kept = self.lock();
                all.append(&mut kept);
                *kept = all;
                Err(err)
            }
        }
    }
}

/// What [`Scheduler::send_now`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SentNow {
    /// Recipients who already had it, and were not sent it again.
    pub already_sent: usize,
    /// Recipients suppressed (on every list, or on the one they get it
    /// through), who were not sent it.
    pub suppressed: usize,
    pub done: Dispatched,
}

/// What one dispatch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dispatched {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// How far ahead the outbox holds the plan.
///
/// A plan can hold millions of sends over years; keeping them all in the
/// outbox made each start and reload reconcile all of them. The outbox holds
/// the sends due in the next two days instead, and is reconciled again
/// (every hour, and before half of that is used up) to take in the next
/// ones. The planner is the source of truth for anything later.
pub const HORIZON: SignedDuration = SignedDuration::from_hours(48);

/// The due instants to plan at `now`: from where the last plan ended (so
/// that the sends due while herald was down are recorded, sent late or
/// skipped, never silently dropped) or `late_window` ago, whichever is
/// earlier, to `HORIZON` from now.
fn plan_window(planned_until: Option<Timestamp>, now: Timestamp, late_window: SignedDuration) -> Window {
    let recent = now.checked_sub(late_window).unwrap_or(Timestamp::MIN);
    Window {
        from: Some(planned_until.map_or(recent, |until| until.min(recent))),
        until: Some(now.checked_add(HORIZON).unwrap_or(Timestamp::MAX)),
    }
}

/// How far ahead the scheduler claims sends to wait for their turn at the
/// relay: only as many as the limits let through in this span. A send
/// waiting in the mailer for hours (a day's quota used) would hold its
/// claim, keep the loop from the watchdog, and, in a rehearsal, step the
/// clock past its end; instead nothing is claimed and the daemon sleeps
/// until the next turn. One second: under a per-minute limit of a few
/// dozen, that is one message at a time, so a cancellation that becomes
/// due mid-burst goes within one message (with 10 s, up to four reminders
/// already claimed went before it).
const HOLD_BACK: SignedDuration = SignedDuration::from_secs(1);

/// How many sends a claim takes at most when the relay has limits: what a
/// per-minute limit lets through in the next few seconds, and at least a
/// send per connection (the claim takes no more than the limits let
/// through soon, see `HOLD_BACK`). The fewer claimed ahead, the sooner a
/// send that becomes due, more urgent than those claimed, is claimed
/// itself.
fn urgent_batch(delivery: &Delivery) -> usize {
    let connections = parallelism(delivery);
    match &delivery.transport {
        Transport::Smtp(smtp) => match smtp.per_minute {
            Some(per_minute) => connections.max((per_minute as usize * 5).div_ceil(60)),
            // An hour's or a day's window lets a burst through at full
            // speed until it is used; a claim by urgency then reads and
            // sorts every due row, so batches stay those of no limit.
            None => connections * 64,
        },
        Transport::Maildir(_) => connections,
    }
}

/// How many sends are in flight at once: the relay's connection limit for
/// SMTP; a few for a maildir.
fn parallelism(delivery: &Delivery) -> usize {
    match &delivery.transport {
        Transport::Smtp(smtp) => smtp.max_connections.max(1),
        Transport::Maildir(_) => 4,
    }
}

impl Scheduler {
    pub fn new(loaded: Loaded, outbox: Arc<dyn Outbox>, mailer: Mailer, clock: Arc<dyn Clock>) -> Scheduler {
        Scheduler {
            outbox,
            mailer: RwLock::new(Arc::new(mailer)),
            clock,
            loaded: RwLock::new(Arc::new(loaded)),
            retry: RetryPolicy::default(),
            progress: tokio::sync::Notify::new(),
            planning: Mutex::new(None),
            unrecorded: Arc::new(Kept::default()),
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// Counts into `metrics` (the daemon's, which `/metrics` shows) rather
    /// than into a registry of its own that nobody reads.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Scheduler {
        self.metrics = metrics;
        self
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Scheduler {
        self.retry = retry;
        self
    }

    pub fn outbox(&self) -> &Arc<dyn Outbox> {
        &self.outbox
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The configuration in use.
    pub fn loaded(&self) -> Arc<Loaded> {
        self.loaded.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn mailer(&self) -> Arc<Mailer> {
        self.mailer.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Lays the readers' overrides the outbox holds now over the running
    /// configuration, in place of those it had, and reconciles: the
    /// planned sends follow the new languages (sends already claimed keep
    /// theirs), and the next ones are rendered in the new zones.
    pub fn reapply_overrides(&self) -> Result<Changes, OutboxError> {
        let overrides = self.outbox.overrides()?;
        let (loaded, ignored) = self.loaded().with_overrides(&overrides);
        for ignored in ignored {
            // A reader no longer in the configuration is removed at the
            // next load; until then, their override changes nothing.
            if !matches!(ignored, Ignored::Gone(_)) {
                warn!(override = %ignored, "a reader's override is ignored");
            }
        }
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
        self.reconcile()
    }

    /// Swaps in a new, valid configuration (and the mailer built from it)
    /// and reconciles the outbox with its plan.
    pub fn replace(&self, loaded: Loaded, mailer: Mailer) -> Result<Changes, OutboxError> {
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
        *self.mailer.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(mailer);
        self.reconcile()
    }

    /// Brings the outbox in line with the plan of the current
    /// configuration, for the sends due up to [`HORIZON`] from now.
    pub fn reconcile(&self) -> Result<Changes, OutboxError> {
        let started = self.clock.monotonic();
        let changes = self.reconcile_now();
        self.metrics
            .reconciled(self.clock.monotonic().saturating_sub(started));
        changes
    }

    fn reconcile_now(&self) -> Result<Changes, OutboxError> {
        let loaded = self.loaded();
        if self.take_planning(&loaded.fingerprint)? != Planning::Plans {
            // Another node plans (or this node's configuration is not the
            // one that planned): this one sends what is planned.
            return Ok(Changes::default());
        }
        let model = &loaded.model;
        let now = self.clock.now();
        let late_window = loaded.delivery.late_window;
        // Skipped as too late by a clock that was ahead, and due again now
        // that it is right (only a clock set back can make them so).
        let since = now.checked_sub(late_window).unwrap_or(Timestamp::MIN);
        let revived = self.outbox.revive_too_late(since, now)?;
        if revived > 0 {
            info!(
                revived,
                "sends skipped as too late are due again (the clock was set back); planned again"
            );
        }
        let window = plan_window(self.outbox.planned_until()?, now, late_window);
        let planner = Planner::new(model);
        let sends = planner.plan(window);
        // The planned entries (wherever they are due: the plan may have
        // moved them out of the window) and the history of the plan's keys.
        let mut entries = self.outbox.entries_in(State::Planned)?;
        let unseen: Vec<&SendKey> = {
            let planned: HashSet<&SendKey> = entries.iter().map(|e| &e.spec.key).collect();
            sends
                .iter()
                .map(|send| &send.key)
                .filter(|key| !planned.contains(key))
                .collect()
        };
        entries.extend(self.outbox.entries_for(&unseen)?);
        let mut changes = reconcile::reconcile(&sends, &entries, now, late_window, |entry| {
            let key = &entry.spec.key;
            let on_demand = key.kind() == SendKind::Letter
                && model
                    .letter(key.subject())
                    .is_some_and(|letter| letter.send_at.is_none());
            // Letters sent on demand and notices are in no plan; their
            // retries must go on.
            if on_demand || key.kind().is_notice() {
                return reconcile::Outside::Keep;
            }
            match planner.send_for(key, &entry.spec.recipient) {
                Ok(send) => reconcile::Outside::Moved(Box::new(send)),
                Err(gone) => reconcile::Outside::Gone(gone.0),
            }
        });
        let calendar_rows = self.outbox.calendar_rows()?;
        let planned_notices = planned_notices(&entries);
        let planned = |event: &str, number: u32| planned_notices.contains(&(event, number));
        let calendar = notices::calendar_changes(&planner, &calendar_rows, &planned, now);
        log_held(&calendar);
        changes.cancel.extend(withdrawn(&calendar.withdrawn, &entries));
        changes.calendar = calendar.rows;
        changes.insert.extend(calendar.notices.iter().map(row::spec_of));
        changes.planned_until = window.until;
        let suppressed = self.outbox.apply(&changes, now)?;
        if suppressed > 0 {
            // The reconcile's summary counts them as planned: this says
            // they will not go.
            info!(
                suppressed,
                "sends just planned are suppressed: their recipients are (`herald suppressions` lists them)"
            );
        }
        self.release(&loaded)?;
        Ok(changes)
    }

    /// Asks the outbox whether this node plans, with the configuration
    /// whose digest is `fingerprint`, keeps the answer, and says so in the
    /// log when it changed. Returns it.
    pub fn take_planning(&self, fingerprint: &str) -> Result<Planning, OutboxError> {
        let planning = self.outbox.plan_as(fingerprint)?;
        let mut kept = self.planning.lock().unwrap_or_else(|p| p.into_inner());
        // Said when it changes, and only where nodes share the outbox: a
        // node alone always plans.
        if kept.as_ref() != Some(&planning) && self.outbox.lease().is_some() {
            match &planning {
                Planning::Plans => info!("this node plans: it reconciles the outbox with its configuration"),
                Planning::Another { node } => {
                    info!(planner = %node, "another node plans; this node sends what is planned")
                }
                Planning::Differs { node, planned_with } => warn!(
                    planner = %node,
                    planned_with = %planned_with,
                    "this node's configuration is not the one the outbox was planned with; it does not plan until they are the same (give every node the same configuration directory), and sends what is planned"
                ),
            }
        }
        *kept = Some(planning.clone());
        Ok(planning)
    }

    /// Whether this node plans, as the outbox said at the last look
    /// (`Plans` before the first: the start reconciles, and so asks,
    /// before it says it is ready).
    pub fn planning(&self) -> Planning {
        self.planning
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or(Planning::Plans)
    }

    /// Writes when each planned send is released and how urgent it is,
    /// from the relay's limits (see [`release::pace`]); without limits,
    /// nothing is released early.
    fn release(&self, loaded: &Loaded) -> Result<(), OutboxError> {
        let Transport::Smtp(smtp) = &loaded.delivery.transport else {
            self.outbox.clear_releases()?;
            return Ok(());
        };
        let limits = smtp.limits();
        if limits.is_unlimited() {
            self.outbox.clear_releases()?;
            return Ok(());
        }
        let planned = self.outbox.entries_in(State::Planned)?;
        let pace = release::pace(&loaded.model, &limits, smtp.max_early, &planned);
        self.outbox.set_pace(&pace)
    }

    /// When the outbox should be reconciled again, at the latest, so that
    /// it always holds the sends of the next `HORIZON / 2`; `None` before
    /// the first reconcile.
    pub fn refill_at(&self) -> Result<Option<Timestamp>, OutboxError> {
        Ok(self
            .outbox
            .planned_until()?
            .and_then(|until| until.checked_sub(HORIZON / 2).ok()))
    }

    pub fn next_due(&self) -> Result<Option<Timestamp>, OutboxError> {
        self.outbox.next_due()
    }

    /// Completes when outcomes have been recorded since the last call
    /// completed (at once if they were recorded while nobody waited).
    pub async fn progressed(&self) {
        self.progress.notified().await
    }

    /// How many outcomes are waiting for the outbox to record them.
    pub fn unrecorded(&self) -> usize {
        self.kept().len()
    }

    /// Why the outbox could not record outcomes at the last try, if it
    /// could not ("recording outcomes: database is locked").
    pub fn outbox_failure(&self) -> Option<String> {
        self.unrecorded.failure()
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Vec<(SendKey, Recorded)>> {
        self.unrecorded.lock()
    }

    /// Records `outcomes` after those kept from before, or keeps them all
    /// (see `Kept::record_or_keep`), here on the async worker.
    fn record_or_keep(&self, outcomes: Vec<(SendKey, Recorded)>) -> Result<usize, OutboxError> {
        self.unrecorded
            .record_or_keep(self.outbox.as_ref(), self.clock.now(), outcomes)
    }

    /// The same on one of tokio's blocking threads.
    async fn record_or_keep_blocking(
        &self,
        outcomes: Vec<(SendKey, Recorded)>,
    ) -> Result<usize, OutboxError> {
        let (kept, outbox, now) = (self.unrecorded.clone(), self.outbox.clone(), self.clock.now());
        blocking(move || kept.record_or_keep(outbox.as_ref(), now, outcomes)).await
    }

    /// Records the outcomes kept while the outbox could not be written;
    /// returns how many there were.
    pub async fn record_kept(&self) -> Result<usize, OutboxError> {
        self.record_or_keep_blocking(Vec::new()).await
    }

    /// Sends everything due now, a batch at a time, until nothing is due or
    /// `stopping` says to stop taking new work; sends already handed to the
    /// mailer are finished, and every outcome is recorded, or kept until
    /// the outbox can record it: while outcomes are kept, nothing new is
    /// claimed, and the error says why.
    ///
    /// `pause` says to stop for a while (a reload is waiting): no new send
    /// is started, the sends in flight are finished, and those claimed but
    /// not started go back to planned as they were ([`Outbox::unclaim`]), so
    /// that the reload reconciles them with the new plan like any planned
    /// send and the next dispatch sends them with the new configuration.
    pub async fn dispatch_due(
        &self,
        stopping: &(dyn Fn() -> bool + Sync),
        pause: &(dyn Fn() -> bool + Sync),
    ) -> Result<Dispatched, OutboxError> {
        let mut total = Dispatched::default();
        loop {
            if stopping() || pause() {
                self.mailer().release_idle().await;
                return Ok(total);
            }
            if self.unrecorded() > 0 {
                // Before anything new: if the outbox still cannot record
                // what it owes, claiming more would only owe more.
                self.record_kept().await?;
            }
            let loaded = self.loaded();
            // Large batches: each claim reads and sorts every due send, and
            // each batch ends with its last sends in flight alone, so a
            // burst claimed 32 at a time spent a tenth of its time claiming.
            // Sends claimed and not started when herald stops go back to
            // planned (`send_claimed`); after a crash, the next start
            // releases them with the sends that were in flight.
            let mailer = self.mailer();
            let now = self.clock.now();
            let claimed = match mailer.turns_within(HOLD_BACK, urgent_batch(&loaded.delivery)) {
                // The relay's limits hold every send back for a while (a
                // day's quota is used): nothing is claimed to wait in the
                // mailer; the daemon sleeps until the next turn.
                Some(0) => {
                    mailer.release_idle().await;
                    return Ok(total);
                }
                // Small batches (what the limits let through in the next
                // few seconds), most urgent first, so that a cancellation
                // due in the middle of a burst is claimed next rather than
                // after every reminder claimed before it.
                Some(batch_size) => {
                    self.on_outbox(move |outbox| outbox.claim_most_urgent(now, batch_size))
                        .await?
                }
                None => {
                    let batch_size = parallelism(&loaded.delivery) * 64;
                    self.on_outbox(move |outbox| outbox.claim_due(now, batch_size))
                        .await?
                }
            };
            if claimed.is_empty() {
                // Nothing more due: no connection stays open while idle.
                self.mailer().release_idle().await;
                return Ok(total);
            }
            let (done, result) = self.send_claimed(&loaded, claimed, stopping, pause).await;
            total.sent += done.sent;
            total.retried += done.retried;
            total.failed += done.failed;
            total.skipped += done.skipped;
            result?;
        }
    }

    /// Sends `sends` now, whatever their due instant: a letter sent on
    /// demand. They go into the outbox through the same reconcile as the
    /// plan, so a recipient who already has the letter does not get it
    /// again; one whose send failed gets it again, on the operator's word.
    pub async fn send_now(&self, sends: &[PlannedSend]) -> Result<SentNow, OutboxError> {
        let now = self.clock.now();
        let keys: Vec<SendKey> = sends.iter().map(|send| send.key.clone()).collect();
        let late_window = self.loaded().delivery.late_window;
        let sends = sends.to_vec();
        let (already_sent, suppressed, keys) = self
            .on_outbox(move |outbox| {
                let entries = outbox.entries_for(&keys.iter().collect::<Vec<_>>())?;
                let changes =
                    reconcile::reconcile(&sends, &entries, now, late_window, |_| reconcile::Outside::Keep);
                for entry in entries.iter().filter(|entry| entry.state == State::Failed) {
                    outbox.retry_failed(Some(&entry.spec.key), now)?;
                }
                // Suppressed now, or when it was sent on demand before.
                let suppressed = outbox.apply(&changes, now)?
                    + entries
                        .iter()
                        .filter(|entry| entry.state == State::Suppressed)
                        .count();
                let already_sent = entries.iter().filter(|entry| entry.state == State::Sent).count();
                Ok::<_, OutboxError>((already_sent, suppressed, keys))
            })
            .await?;
        let loaded = self.loaded();
        let now = self.clock.now();
        let claimed = self
            .on_outbox(move |outbox| outbox.claim_keys(&keys, now))
            .await?;
        let (done, mut result) = self.send_claimed(&loaded, claimed, &|| false, &|| false).await;
        self.mailer().release_idle().await;
        // A command has no later pass to record what the outbox could not
        // take: it tries a few more times (each waits up to the busy
        // timeout for a lock) before it gives up and says so.
        for _ in 0..3 {
            if result.is_ok() || self.unrecorded() == 0 {
                break;
            }
            result = self.record_kept().await.map(|_| ());
        }
        result?;
        Ok(SentNow {
            already_sent,
            suppressed,
            done,
        })
    }

    /// Sends the given claimed entries, at most `parallelism` at once,
    /// starting none once `stopping` or `pause` says so.
    ///
    /// If the outbox cannot record an outcome, no new send is started: the
    /// claimed sends not yet started are released (planned again) and the
    /// sends in flight are finished, their outcomes kept with the others
    /// (see `unrecorded`); then the error is returned, with what was done.
    async fn send_claimed(
        &self,
        loaded: &Arc<Loaded>,
        claimed: Vec<Entry>,
        stopping: &(dyn Fn() -> bool + Sync),
        pause: &(dyn Fn() -> bool + Sync),
    ) -> (Dispatched, Result<(), OutboxError>) {
        let mut done = Dispatched::default();
        // Twice the connections: the extra tasks render their messages while
        // the others talk to the relay, then wait for a connection (the
        // mailer's semaphore still caps those at `parallelism`).
        let limit = parallelism(&loaded.delivery) * 2;
        let mailer = self.mailer();
        let mut tasks: JoinSet<(SendKey, Recorded)> = JoinSet::new();
        let mut queue = claimed.into_iter();
        let mut unstarted: Vec<SendKey> = Vec::new();
        let calendars = match self.on_outbox(|outbox| outbox.calendar_rows()).await {
            Ok(rows) => Arc::new(Calendars::new(rows)),
            Err(err) => {
                // Nothing started: every claimed send goes back to planned.
                let keys = queue.map(|entry| entry.spec.key).collect();
                self.release_unstarted(keys, "not sent: the outbox could not be read")
                    .await;
                return (done, Err(err));
            }
        };
        let mut failure: Option<OutboxError> = None;
        let lease = self.outbox.lease();
        loop {
            while tasks.len() < limit && failure.is_none() {
                let Some(entry) = queue.next() else { break };
                if stopping() || pause() {
                    unstarted.push(entry.spec.key.clone());
                    unstarted.extend(queue.by_ref().map(|e| e.spec.key));
                    break;
                }
                if let Some(lease) = lease
                    && !self.outbox.may_send(lease_margin(lease))
                {
                    // The leases could not be renewed for half their time:
                    // another node may take these sends over soon, so this
                    // one starts none (they are released once the
                    // database answers, or taken over when their leases end).
                    warn!(
                        "the leases of this node's sends could not be renewed (the database does not answer); no new send starts until they are"
                    );
                    unstarted.push(entry.spec.key.clone());
                    unstarted.extend(queue.by_ref().map(|e| e.spec.key));
                    failure = Some(OutboxError {
                        context: "renewing the leases of the sends in flight".to_owned(),
                        source: "the database did not confirm them in time".into(),
                    });
                    break;
                }
                let mailer = mailer.clone();
                let clock = self.clock.clone();
                let retry = self.retry;
                let loaded = loaded.clone();
                let calendars = calendars.clone();
                let metrics = self.metrics.clone();
                let outbox = self.outbox.clone();
                // Rendering runs in the task too, so that it uses every core
                // and overlaps the other sends' network waits.
                tasks.spawn(async move {
                    let prepared = prepare(clock.as_ref(), &loaded, &entry, &calendars);
                    let send = attempt(prepared, &entry, &mailer, clock.as_ref(), retry);
                    let outcome = match lease {
                        None => send.await,
                        Some(_) => tokio::select! {
                            outcome = send => outcome,
                            () = lease_ends(outbox.as_ref()) => abandoned(&entry, clock.now()),
                        },
                    };
                    count(&metrics, &entry, &mailer, &outcome.1, clock.now());
                    outcome
                });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            // Commit together every outcome that is already in: one
            // transaction for many, without holding any outcome back.
            let mut outcomes = Vec::new();
            let mut push = |joined: Result<(SendKey, Recorded), tokio::task::JoinError>| match joined {
                Ok(outcome) => outcomes.push(outcome),
                Err(err) => {
                    warn!(error = %err, "a send task failed; its send stays in flight and is retried after a restart")
                }
            };
            push(joined);
            while let Some(joined) = tasks.try_join_next() {
                push(joined);
            }
            for (_, recorded) in &outcomes {
                match recorded {
                    Recorded::Sent { .. } => done.sent += 1,
                    Recorded::Retry { .. } | Recorded::Paused { .. } => done.retried += 1,
                    Recorded::Failed { .. } => done.failed += 1,
                    Recorded::Skipped { .. } | Recorded::TooLate { .. } => done.skipped += 1,
                }
            }
            if failure.is_some() {
                // The outbox failed a moment ago: these wait with the others
                // for the end of the batch, without a commit that would wait
                // for a lock (or a disk) after every send.
                self.kept().extend(outcomes);
                continue;
            }
            // Recorded here, on the async worker, not on a blocking thread:
            // a burst commits a group of outcomes every few sends, each a
            // short update by key, and handing each commit to another
            // thread cost 15 % of the throughput (measured: 2,264 against
            // 2,659 msg/s, median of five bursts of 10,000 to smtp-sink).
            // The other worker goes on driving the sends meanwhile.
            // With leases the outbox is a database across the network,
            // which may hang for its whole timeout: not on the worker that
            // drives the sends in flight (and watches their leases).
            let recorded = if lease.is_some() {
                self.record_or_keep_blocking(outcomes).await
            } else {
                self.record_or_keep(outcomes)
            };
            match recorded {
                Ok(_) => self.progress.notify_one(),
                Err(err) => {
                    warn!(
                        error = %crate::diagnostics::Chain(&err),
                        kept = self.unrecorded(),
                        "the outbox cannot record outcomes; they are kept until it can, and no new send starts"
                    );
                    // Wakes the daemon's loop, which puts it in the status.
                    self.progress.notify_one();
                    // Claimed and not started: released at once (below),
                    // not left in flight until a restart.
                    unstarted.extend(queue.by_ref().map(|e| e.spec.key));
                    failure = Some(err);
                }
            }
        }
        if !unstarted.is_empty() && failure.is_none() && !stopping() {
            // Paused for a reload: back to planned as if never claimed, for
            // the reload to reconcile and the next dispatch to send.
            let (keys, now) = (unstarted.clone(), self.clock.now());
            match self.on_outbox(move |outbox| outbox.unclaim(&keys, now)).await {
                Ok(_) => unstarted.clear(),
                // Released below instead, and kept until the outbox works.
                Err(err) => failure = Some(err),
            }
        }
        if !unstarted.is_empty() {
            let why = if failure.is_some() {
                "not sent: the outbox could not record outcomes"
            } else {
                "not sent: herald was stopping"
            };
            self.release_unstarted(unstarted, why).await;
        }
        if failure.is_some() && self.unrecorded() > 0 {
            // One more try now that the sends in flight are over: a lock
            // held a moment may be gone.
            let _ = self.record_kept().await;
        }
        if failure.is_some() && self.unrecorded() == 0 {
            // Recorded in the end (with the releases, or just above).
            info!("the outbox works again; the outcomes kept meanwhile are recorded");
            self.progress.notify_one();
            failure = None;
        }
        (done, failure.map_or(Ok(()), Err))
    }

    /// Puts claimed sends that were never handed to the mailer back to
    /// planned, due now; kept with the outcomes if the outbox cannot take
    /// it yet.
    async fn release_unstarted(&self, keys: Vec<SendKey>, why: &str) {
        let retry_at = self.clock.now();
        let outcomes: Vec<(SendKey, Recorded)> = keys
            .into_iter()
            .map(|key| {
                let reply = why.to_owned();
                (
                    key,
                    Recorded::Retry {
                        reply,
                        retry_at,
                        attempted: false,
                    },
                )
            })
            .collect();
        // The error is the caller's to report; the releases are kept.
        let _ = self.record_or_keep_blocking(outcomes).await;
    }

    /// Runs `work` on the outbox on one of tokio's blocking threads: an
    /// SQLite commit waits for the disk (`synchronous=FULL`) and, at worst,
    /// for another process's lock, and must not hold up the async workers
    /// that drive the sends in flight.
    async fn on_outbox<T: Send + 'static>(&self, work: impl FnOnce(&dyn Outbox) -> T + Send + 'static) -> T {
        let outbox = self.outbox.clone();
        blocking(move || work(outbox.as_ref())).await
    }
}

/// How far back the relay's limits look: the longest window, a day.
const LIMITS_LOOK_BACK: SignedDuration = SignedDuration::from_hours(24);

/// Counts what the relay took in the last day (the outbox's attempts that
/// reached it) in a new `mailer`'s limits, if it has any, so that a restart,
/// a reload or a command sending beside the daemon keeps the minute's
/// spacing and the day's count. Blocks (a read). An outbox that cannot be
/// read is reported, and the limits count from now: the relay still
/// refuses what is over its quota, and those sends are retried.
pub fn seed_limits(outbox: &Arc<dyn Outbox>, mailer: &Mailer, now: Timestamp) {
    if !mailer.is_limited() {
        return;
    }
    if outbox.lease().is_some() {
        // Several nodes: one budget, in their database.
        mailer.share_budget(Arc::new(SharedRelayBudget(outbox.clone())));
    }
    let since = now.checked_sub(LIMITS_LOOK_BACK).unwrap_or(Timestamp::MIN);
    match outbox.departures_since(since) {
        Ok(departures) => mailer.seed_departures(departures),
        Err(err) => warn!(
            error = %crate::diagnostics::Chain(&err),
            "cannot read what the relay took in the last day; its limits count from now"
        ),
    }
}

/// The relay's budget kept by an outbox several nodes share.
struct SharedRelayBudget(Arc<dyn Outbox>);

impl crate::pace::SharedBudget for SharedRelayBudget {
    fn take_turn(&self, limits: &crate::pace::Limits, now: Timestamp) -> Result<Option<Timestamp>, String> {
        self.0
            .take_turn(limits, now)
            .map_err(|err| crate::diagnostics::Chain(&err).to_string())
    }
}

/// Runs `work` on tokio's blocking threads and waits for it, so that it
/// holds up no async worker. A panic in `work` goes on in the caller, as if
/// `work` had run there.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(err) => match err.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // Only when the runtime shuts down, which drops this future first.
            Err(err) => panic!("blocking work did not run: {err}"),
        },
    }
}

/// Renders a claimed send into its message, or says why it will not go.
fn prepare(clock: &dyn Clock, loaded: &Loaded, entry: &Entry, calendars: &Calendars) -> Prepared {
    let now = clock.now();
    let model = &loaded.model;
    let late_window = loaded.delivery.late_window;
    // A first attempt long after its due instant (the daemon was down)
    // is not sent late; a retry is not late, it is the policy.
    if entry.next_attempt.is_none() && now.duration_since(entry.spec.due) > late_window {
        return Prepared::TooLate(format!(
            "missed: due at {}, and herald could only send it at {now}, more than the late window ({late_window:#}) after",
            entry.spec.due
        ));
    }
    let resolved = match resolve(model, calendars, row::planned_of(&entry.spec)) {
        Ok(resolved) => resolved,
        Err(gone) => return Prepared::Skip(gone.0),
    };
    // A send released early for the relay's limits is dated as if it left
    // when due: its Date and its invitation's DTSTAMP say the same whether
    // it left at its due instant or a few minutes before. (Its text counts
    // from the due instant anyway: "in 2 hours" is the lead.)
    let date = now.max(entry.spec.due);
    let rendered = match loaded.renderer.render(model, &resolved, date) {
        Ok(rendered) => rendered,
        Err(err) => return Prepared::Fail(format!("cannot render: {err}")),
    };
    let redirect = loaded.delivery.redirect_to.as_ref();
    match message::build_for(model, &resolved, &rendered, date, redirect) {
        Ok(message) => Prepared::Send(Box::new(message)),
        Err(err) => Prepared::Fail(format!("cannot build the message: {err}")),
    }
}

/// A claimed send, ready or not.
enum Prepared {
    Send(Box<crate::send::Outgoing>),
    Skip(String),
    /// Skipped as too late (revived if the clock turns out to be wrong).
    TooLate(String),
    Fail(String),
}

/// One send's outcome in the metrics: its state, the relay's reply, and
/// how late the relay took it.
fn count(metrics: &Metrics, entry: &Entry, mailer: &Mailer, recorded: &Recorded, now: Timestamp) {
    let kind = entry.spec.template.as_str();
    // Only a relay's replies have a class; and a send held back by a
    // pause, or never started, had no reply at all.
    let smtp = matches!(mailer, Mailer::Smtp(_)) && recorded.reached_relay();
    let (state, reply) = match recorded {
        Recorded::Sent { reply, left_at } => {
            metrics.accepted(entry.spec.due, left_at.unwrap_or(now));
            (SendState::Sent, Some(reply))
        }
        Recorded::Retry { reply, .. } => (SendState::Retry, Some(reply)),
        Recorded::Paused { reply, .. } => (SendState::Paused, Some(reply)),
        Recorded::Failed { reply, .. } => (SendState::Failed, reply.as_ref()),
        Recorded::Skipped { .. } => (SendState::Skipped, None),
        Recorded::TooLate { .. } => (SendState::TooLate, None),
    };
    metrics.send(kind, state);
    if smtp && let Some(reply) = reply {
        metrics.smtp_reply(reply);
    }
}

/// Completes shortly before this node's leases could expire: its sends in
/// flight must end before another node may take them over.
async fn lease_ends(outbox: &dyn Outbox) {
    while outbox.may_send(ABANDON_BEFORE_EXPIRY) {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// What a send abandoned as its lease ran out records, if the outbox can
/// still take it: tried again (by this node, or by another that took it over).
fn abandoned(entry: &Entry, now: Timestamp) -> (SendKey, Recorded) {
    warn!(
        send = %entry.spec.key,
        "abandoned in flight: this node's lease on it was about to expire (the database does not answer); another node may send it"
    );
    (
        entry.spec.key.clone(),
        Recorded::Retry {
            reply: "abandoned in flight: the node's lease was about to expire".to_owned(),
            retry_at: now,
            attempted: true,
        },
    )
}

/// One attempt at one send, turned into what the outbox records.
async fn attempt(
    prepared: Prepared,
    entry: &Entry,
    mailer: &Mailer,
    clock: &dyn Clock,
    retry: RetryPolicy,
) -> (SendKey, Recorded) {
    let key = entry.spec.key.clone();
    let message = match prepared {
        Prepared::Send(message) => message,
        Prepared::Skip(reason) => {
            info!(send = %key, %reason, "skipped");
            return (key, Recorded::Skipped { reason });
        }
        Prepared::TooLate(reason) => {
            info!(send = %key, %reason, "skipped as too late");
            return (key, Recorded::TooLate { reason });
        }
        Prepared::Fail(reason) => {
            warn!(send = %key, %reason, "failed");
            return (key, Recorded::Failed { reply: None, reason });
        }
    };
    let (outcome, left_at) = mailer.send_timed(&message).await;
    let recorded = match outcome {
        Outcome::Delivered { reply } => {
            info!(send = %key, attempt = entry.attempts, %reply, "sent");
            Recorded::Sent { reply, left_at }
        }
        Outcome::Transient { reply } => match retry.next_attempt(key.as_str(), entry.attempts, clock.now()) {
            Some(retry_at) => {
                warn!(send = %key, attempt = entry.attempts, %reply, %retry_at, "temporary failure; will retry");
                Recorded::Retry {
                    reply,
                    retry_at,
                    attempted: true,
                }
            }
            None => {
                warn!(send = %key, attempts = entry.attempts, %reply, "temporary failures; giving up");
                let reason = format!("gave up after {} attempts", entry.attempts);
                Recorded::Failed {
                    reply: Some(reply),
                    reason,
                }
            }
        },
        Outcome::Paused { reply, until, tried } => {
            // Said once for each time the relay is found at fault, not for
            // every send the pause holds back.
            if tried {
                warn!(send = %key, %reply, %until, "relay fault: sending paused; nothing is failed for it");
            } else {
                debug!(send = %key, %until, "relay paused; not sent");
            }
            Recorded::Paused {
                reply,
                retry_at: until,
            }
        }
        Outcome::Permanent { reply } => {
            warn!(send = %key, %reply, "rejected by the server");
            Recorded::Failed {
                reply: Some(reply),
                reason: "rejected by the server".to_owned(),
            }
        }
    };
    (key, recorded)
}

/// The update and cancellation notices waiting in the outbox for their
/// `notice_delay`, and those a reconcile at `now` would add because the
/// roadmap changed since calendars were last told, less those it would
/// withdraw (`herald plan` shows them).
pub fn pending_notices(
    planner: &Planner<'_>,
    outbox: &dyn Outbox,
    now: Timestamp,
) -> Result<Vec<PlannedSend>, OutboxError> {
    let rows = outbox.calendar_rows()?;
    let entries = outbox.entries_in(State::Planned)?;
    let planned_notices = planned_notices(&entries);
    let planned = |event: &str, number: u32| planned_notices.contains(&(event, number));
    let changes = notices::calendar_changes(planner, &rows, &planned, now);
    let mut pending: Vec<PlannedSend> = entries
        .iter()
        .filter(|entry| {
            let key = &entry.spec.key;
            key.kind().is_notice() && !changes.withdrawn.iter().any(|w| w.covers(key))
        })
        .map(|entry| row::planned_of(&entry.spec))
        .collect();
    pending.extend(changes.notices);
    Ok(pending)
}

/// The sends of `slot` that the outbox already has and that no reconcile
/// will send (again) at `now`, with their entries: sent, in flight, failed,
/// or skipped or cancelled for good ([`reconcile::standing`]). `herald
/// plan` leaves them out and says why; after an event moved, they are the
/// leads reached for its previous date.
pub fn settled_sends(
    outbox: &dyn Outbox,
    slot: &Slot<'_>,
    now: Timestamp,
    late_window: SignedDuration,
) -> Result<Vec<Entry>, OutboxError> {
    let due = slot.due.timestamp();
    Ok(outbox
        .entries_under(&slot.key_prefix())?
        .into_iter()
        .filter(|entry| reconcile::standing(entry, due, now, late_window) == reconcile::Standing::Settled)
        .collect())
}

/// The events and numbers of the notices planned among `entries`.
fn planned_notices(entries: &[Entry]) -> HashSet<(&str, u32)> {
    entries
        .iter()
        .filter(|entry| entry.state == State::Planned)
        .filter_map(|entry| {
            let key = &entry.spec.key;
            Some((key.subject(), key.notice_number()?))
        })
        .collect()
}

/// The planned notices among `entries` that `withdrawn` covers, to cancel
/// with why.
fn withdrawn(withdrawn: &[notices::Withdrawn], entries: &[Entry]) -> Vec<(SendKey, String)> {
    if withdrawn.is_empty() {
        return Vec::new();
    }
    let mut cancel = Vec::new();
    for entry in entries.iter().filter(|e| e.state == State::Planned) {
        if let Some(w) = withdrawn.iter().find(|w| w.covers(&entry.spec.key)) {
            cancel.push((entry.spec.key.clone(), w.why.clone()));
        }
    }
    for w in withdrawn {
        let count = cancel.iter().filter(|(key, _)| w.covers(key)).count();
        info!(event = %w.event, notice = w.number, withdrawn = count, "notices withdrawn before they went: {}", w.why);
    }
    cancel
}

/// Says which notices wait, until when, and why.
fn log_held(changes: &notices::CalendarChanges) {
    for held in &changes.held {
        info!(
            event = %held.event,
            count = held.count,
            until = %held.until,
            "{} notice for event {} waits until {} (notice_delay): {}",
            held.kind,
            held.event,
            held.until,
            held.why
        );
    }
}

/// How long to wait before looking at the outbox again: until the next due
/// send, but never longer than `tick`, so a changed wall clock or a send
/// planned by another process (`herald send`, `herald retry`) is noticed.
pub fn wait_for(next_due: Option<Timestamp>, now: Timestamp, tick: SignedDuration) -> SignedDuration {
    match next_due {
        Some(due) => now.duration_until(due).clamp(SignedDuration::ZERO, tick),
        None => tick,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn the_plan_window_starts_where_the_last_one_ended_or_at_the_late_window() {
        let late = SignedDuration::from_hours(6);
        let now = at("2017-10-05T19:00:00Z");
        let until = Some(at("2017-10-07T19:00:00Z"));
        // A first start: the late window back, the horizon ahead.
        let first = plan_window(None, now, late);
        assert_eq!(
            (first.from, first.until),
            (Some(at("2017-10-05T13:00:00Z")), until)
        );
        // After three days down: from where the last plan ended.
        let after_downtime = plan_window(Some(at("2017-10-02T19:30:00Z")), now, late);
        assert_eq!(after_downtime.from, Some(at("2017-10-02T19:30:00Z")));
        // Running: the late window, so a send new to the plan and due a
        // moment ago still goes out.
        let running = plan_window(Some(at("2017-10-07T10:00:00Z")), now, late);
        assert_eq!(
            (running.from, running.until),
            (Some(at("2017-10-05T13:00:00Z")), until)
        );
    }
}
