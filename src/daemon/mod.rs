//! `herald run`: wires the configuration, the outbox, the mailer and the
//! scheduler together, and keeps them running through reloads and signals.
//!
//! [`run`] is four steps, each a method of `Daemon`, the running state
//! (the scheduler, the notifier, the problems of a rejected configuration,
//! the last reconcile, the stop flag):
//!
//! 1. **start** (`Daemon::start`): load and check the configuration, lock
//!    the state directory (one daemon per directory), open the outbox and
//!    release the sends a crash left in flight, build the mailer, reconcile
//!    the outbox with the plan, and tell the service manager READY;
//! 2. **pass** (`Daemon::pass`): look for a jump of the wall clock (and
//!    log it, and reconcile at once: sends skipped as too late by a clock
//!    that was ahead are planned again), send what is due while listening
//!    for a reload or a stop (a reload pauses a burst once the sends in
//!    flight are done), then reload if asked,
//!    and reconcile again if the outbox needs more of the plan (or an hour
//!    has passed); the next pass sends the rest of a paused burst;
//! 3. **next wake-up** (`Daemon::look_ahead`, then `Daemon::sleep`): read
//!    when the next send is due and when the outbox needs more of the plan,
//!    decide how long to sleep or whether the rehearsal is over (a pure
//!    function, `next_wake`), and sleep, waking early for a reload or a
//!    stop; then the next pass;
//! 4. **stop** (`Daemon::stop`): release what is still in flight to the
//!    outbox for the next start, shut the mailer down, and log what is left.
//!
//! A reload validates the whole new configuration first; an invalid one is
//! logged, problem by problem, and the last good one keeps running. When
//! the outbox cannot be written ("database is locked", a full disk), the
//! daemon keeps running: the outcomes it could not record are kept and
//! recorded first when it can, nothing new is sent meanwhile, and the log
//! and the status say that the outbox is failing. On
//! stop, no new send is started, sends in flight get a deadline to finish,
//! and whatever is left is released to the outbox for the next start.
//!
//! Blocking work runs on tokio's blocking threads, not on the async workers
//! that carry the sends in flight, the signals and the file watch: loading
//! the configuration (which reads every file and renders every template),
//! and every outbox call made here (SQLite commits with `synchronous=FULL`,
//! which also wait up to 10 s for another herald process's lock); the
//! scheduler runs its claims there too, and says in `send_claimed` why it
//! commits a burst's outcomes where it is.
//!
//! The service manager hears of each step through a [`Notifier`]: ready
//! after the first reconcile, reloading and ready again around a reload, a
//! watchdog ping from this loop (never from a thread of its own, so a stuck
//! loop is restarted), the next send and the count pending as the status,
//! and stopping.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::clock::{Clock, Jump, JumpWatch};
use crate::config::Environment;
use crate::diagnostics::{Brief, Chain, Diagnostics};
use crate::metrics::Metrics;
use crate::outbox::{Claimant, Opener, Outbox, OutboxError, Planning};
use crate::scheduler::{Dispatched, Loaded, Scheduler, blocking, reconcile};
use crate::send::Mailer;
use crate::state::StateLock;
use crate::systemd::Notifier;
use crate::web::board::Board;

mod digest;
mod inbox;
mod leases;
mod rate;
mod wake;
mod web;

use inbox::InboxReader;
use wake::{Outlook, Wake, next_wake, reconcile_due};

/// How long the service waits, at its start, for its first look at the
/// inbox before it sends (a rehearsal waits for it whatever it takes).
const FIRST_LOOK_AT_MOST: Duration = Duration::from_secs(10);

/// How the daemon is run.
pub struct Options {
    pub config_dir: PathBuf,
    pub env: Environment,
    pub clock: Arc<dyn Clock>,
    /// Overrides the configured state directory.
    pub state_dir: Option<PathBuf>,
    /// Stop once the clock passes this instant and nothing before it is due
    /// (rehearsals and tests).
    pub until: Option<Timestamp>,
    /// The longest sleep between two looks at the outbox. Default: 60 s.
    pub tick: SignedDuration,
    /// How often the outbox is reconciled with the plan even without a
    /// reload (the tz database may have changed). Default: 1 hour.
    pub reconcile_every: SignedDuration,
    /// How long sends in flight may take to finish on stop. Default: 20 s.
    pub shutdown_deadline: std::time::Duration,
    /// Where READY, RELOADING, WATCHDOG, STATUS and STOPPING go, and the
    /// watchdog interval. Default: nowhere, no watchdog.
    pub notifier: Notifier,
    /// How long to wait, in real time, before trying a failing outbox
    /// again. Real time whatever the clock: a lock or a disk frees up in
    /// the real world, not in a rehearsal's. Default: 5 s.
    pub outbox_retry: std::time::Duration,
    /// A rehearsal (a clock that is not the real one): SMTP delivery is
    /// refused unless every message is redirected or `real_recipients`.
    pub rehearsal: bool,
    /// A rehearsal may send over SMTP to the real recipients
    /// (`--real-recipients`).
    pub real_recipients: bool,
}

impl Options {
    pub fn new(config_dir: PathBuf, env: Environment, clock: Arc<dyn Clock>) -> Options {
        Options {
            config_dir,
            env,
            clock,
            state_dir: None,
            until: None,
            tick: SignedDuration::from_secs(60),
            reconcile_every: SignedDuration::from_hours(1),
            shutdown_deadline: std::time::Duration::from_secs(20),
            notifier: Notifier::silent(),
            outbox_retry: std::time::Duration::from_secs(5),
            rehearsal: false,
            real_recipients: false,
        }
    }
}

/// What wakes the daemon besides its timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Re-read the configuration (SIGHUP, or a change in the directory).
    Reload,
    /// Finish in-flight work and stop (SIGTERM, SIGINT).
    Stop,
}

/// How long after its start an event is still rendered when the daemon
/// checks the templates: reminders come before the start, notices only
/// about events to come, and retries give up within hours, so an event
/// that started a week ago can send nothing more. Roadmaps keep their past
/// events; checking them all made every start and reload slower for
/// nothing (`herald check` still renders every event).
const CHECKED_AFTER_START: SignedDuration = SignedDuration::from_hours(7 * 24);

/// Loads and checks the whole configuration. Blocks: it reads every file
/// and renders every template.
pub fn load(options: &Options) -> Result<Loaded, Diagnostics> {
    // `None` (check every event) only within a week of the earliest instant
    // jiff knows: slower, never wrong.
    let since = options.clock.now().checked_sub(CHECKED_AFTER_START).ok();
    let mut loaded = Loaded::load(&options.config_dir, &options.env, since)?;
    for warning in &loaded.warnings.0 {
        tracing::warn!(%warning, "the configuration loads, with a warning");
    }
    if let Some(dir) = &options.state_dir {
        loaded.delivery.state_dir = dir.clone();
    }
    if options.rehearsal && loaded.delivery.database.take().is_some() {
        // A rehearsal never touches the production outbox: it keeps its
        // own, the SQLite file in its --state-dir, even when the nodes
        // share a database.
        tracing::info!("a rehearsal keeps its outbox in its own state directory, not in [state]'s database");
    }
    Ok(loaded)
}

/// The mailer of `loaded`'s delivery settings; refused for a rehearsal
/// that would send real mail to real people without being told to.
fn mailer_for(options: &Options, loaded: &Loaded) -> anyhow::Result<Mailer> {
    if options.rehearsal
        && !options.real_recipients
        && loaded.delivery.redirect_to.is_none()
        && let crate::send::Transport::Smtp(smtp) = &loaded.delivery.transport
    {
        anyhow::bail!(
            "a rehearsal would send over SMTP (to {}) to the real recipients; add --redirect-to EMAIL to send every message to one address, use transport = \"maildir\", or add --real-recipients if real people are to receive the mail",
            smtp.host
        );
    }
    Mailer::from_settings_with_clock(&loaded.delivery, options.clock.clone())
        .context("cannot set up delivery")
}

/// Runs the daemon until a `Stop` arrives on `control` (or `until` passes).
pub async fn run(options: Options, mut control: mpsc::Receiver<Control>) -> anyhow::Result<()> {
    let mut daemon = Daemon::start(options).await?;
    let end = loop {
        if let ControlFlow::Break(end) = daemon.pass(&mut control).await {
            break end;
        }
        let wait = match daemon.look_ahead().await {
            Wake::After(wait) => wait,
            Wake::RehearsalOver => break End::RehearsalOver,
        };
        if let ControlFlow::Break(end) = daemon.sleep(wait, &mut control).await {
            break end;
        }
    };
    daemon.stop(end).await
}

/// What arrived while sending, to do once the dispatch is done.
#[derive(Debug, Clone, Copy, Default)]
struct Asked {
    /// A reload of the configuration.
    reload: bool,
    /// A reader's choice to lay over it (`web::Shared::replan`).
    replan: bool,
}

/// Why the daemon stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// A `Stop` arrived, or nobody can send one any more.
    Asked,
    /// The clock has passed `Options::until` with nothing due before it.
    RehearsalOver,
}

/// The daemon's running state, carried from step to step.
struct Daemon {
    /// Shared with the steps that run on blocking threads.
    options: Arc<Options>,
    scheduler: Arc<Scheduler>,
    /// How many problems the configuration on disk has while the last good
    /// one runs; shown in the status until a valid one is loaded.
    problems: Option<usize>,
    /// When the outbox was last reconciled with the plan.
    last_reconcile: Timestamp,
    /// Set when a stop is asked for: the scheduler claims no new sends.
    stopping: Arc<AtomicBool>,
    /// The last dispatch could not update the outbox.
    dispatch_failed: bool,
    /// Half the watchdog interval: the loop comes round at least this often.
    watchdog_every: Option<Duration>,
    /// Why the outbox cannot be written, while it cannot.
    outbox_failing: Option<String>,
    /// The wall clock against the monotonic one, to see jumps.
    jumps: JumpWatch,
    /// The relay's daily quota was nearly used at the last look (said once
    /// when it becomes so, and once when it has room again).
    quota_noted: bool,
    /// The reader of the process's mailbox, when `[inbox]` names one.
    inbox: Option<InboxReader>,
    /// The operator's daily digest (`daemon/digest.rs`).
    digests: digest::Daily,
    /// The web listeners, when `[http]` asks for them (`daemon/web.rs`).
    web: web::WebSide,
    /// Where the loop beats for `/healthz`, and the configuration's state
    /// for the status page.
    board: Arc<Board>,
    /// Renews this node's leases, on a database several nodes share.
    _leases: Option<leases::LeaseKeeper>,
    /// Held until the daemon ends: no second daemon on this state directory.
    _lock: StateLock,
}

impl Daemon {
    /// Start: everything before READY. Any failure stops herald, with why:
    /// there is no last good configuration to fall back on yet.
    async fn start(options: Options) -> anyhow::Result<Daemon> {
        let options = Arc::new(options);
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let (scheduler, status, lock) = blocking({
            let (options, metrics) = (options.clone(), metrics.clone());
            move || set_up(&options, metrics)
        })
        .await?;
        let scheduler = Arc::new(scheduler);
        let board = Arc::new(Board::new(options.notifier.watchdog_interval()));
        board.loaded(options.clock.now());
        // Bound before READY: a unit ordered after herald finds its pages up.
        let mut web = web::WebSide::new(scheduler.clone(), metrics, board.clone());
        web.start().await?;
        let leases = leases::LeaseKeeper::start(scheduler.clone(), web.shared.replan.clone());
        options.notifier.ready(&status);
        let ready = scheduler.clone();
        blocking(move || log_status(&ready, "ready")).await;
        let mut inbox = InboxReader::start(scheduler.clone(), options.rehearsal);
        if let Some(inbox) = &mut inbox {
            // What came while herald was down takes effect before the first
            // sends: a rehearsal waits for it, the service a little while.
            let limit = (!options.rehearsal).then_some(FIRST_LOOK_AT_MOST);
            inbox.first_look(limit).await;
        }
        Ok(Daemon {
            last_reconcile: options.clock.now(),
            jumps: JumpWatch::new(options.clock.as_ref()),
            watchdog_every: options.notifier.watchdog_interval().map(|interval| interval / 2),
            options,
            inbox,
            scheduler,
            problems: None,
            stopping: Arc::new(AtomicBool::new(false)),
            dispatch_failed: false,
            outbox_failing: None,
            quota_noted: false,
            digests: digest::Daily::default(),
            web,
            board,
            _leases: leases,
            _lock: lock,
        })
    }

    /// One pass: send what is due while listening for a reload or a stop;
    /// then, unless stopping, reload if asked and reconcile if the outbox
    /// needs more of the plan.
    async fn pass(&mut self, control: &mut mpsc::Receiver<Control>) -> ControlFlow<End> {
        self.options.notifier.watchdog();
        self.board.beat(self.options.clock.monotonic());
        if let Some(jump) = self.jumps.look(self.options.clock.as_ref()) {
            self.clock_jumped(jump).await;
        }
        let (result, asked) = self.dispatch(control).await;
        log_dispatched(&result);
        self.dispatch_failed = result.is_err();
        self.note_outbox(&result);
        if self.stopping.load(Ordering::SeqCst) {
            return ControlFlow::Break(End::Asked);
        }
        if asked.reload {
            // A reload lays the overrides again too.
            self.reload().await;
        } else if asked.replan {
            self.replan().await;
        }
        self.reconcile_if_due().await;
        // The digest is the planner's: nodes sharing a database send one.
        if self.outbox_failing.is_none() && self.scheduler.planning() == Planning::Plans {
            self.digests.send_if_due(&self.scheduler).await;
        }
        ControlFlow::Continue(())
    }

    /// Sends what is due while listening on `control`. A reload pauses the
    /// burst: no new send is started, the sends in flight finish, the sends
    /// claimed and not started go back to planned, and the dispatch returns
    /// (the returned flag says a reload was asked for), so that the reload
    /// takes effect at once and the next pass sends the rest with the new
    /// configuration; a relay limited to 120 messages a minute would
    /// otherwise hold a reload for hours. A stop does not wait: no new send
    /// is claimed, and the sends already handed to the mailer get the
    /// shutdown deadline to finish.
    ///
    /// `Scheduler::dispatch_due` runs its claims on blocking threads itself
    /// (and says why it commits a burst's outcomes on its worker).
    async fn dispatch(
        &self,
        control: &mut mpsc::Receiver<Control>,
    ) -> (Result<Dispatched, OutboxError>, Asked) {
        let stop_flag = self.stopping.clone();
        let is_stopping = move || stop_flag.load(Ordering::SeqCst);
        // Stop signals arriving while sending must stop the claiming of new
        // work, so the dispatch runs alongside the control channel.
        let reload = AtomicBool::new(false);
        let mut replan = false;
        let reload_waits = || reload.load(Ordering::SeqCst);
        let dispatch = self.scheduler.dispatch_due(&is_stopping, &reload_waits);
        tokio::pin!(dispatch);
        let notifier = &self.options.notifier;
        let (board, clock) = (&self.board, &self.options.clock);
        let result = loop {
            tokio::select! {
                result = &mut dispatch => break result,
                // A long batch (a rate limit, a slow relay) keeps the
                // watchdog fed only while sends keep finishing; and the
                // status says at once when the outbox fails mid-batch.
                () = self.scheduler.progressed() => {
                    notifier.watchdog();
                    board.beat(clock.monotonic());
                    if let Some(why) = self.scheduler.outbox_failure() {
                        notifier.status(&failing_status(&why, self.scheduler.unrecorded(), None));
                    }
                }
                // A reader's choice does not pause the burst: the sends
                // already claimed keep their language, the rest follow it
                // once the dispatch is done.
                () = self.web.shared.replan.notified(), if !replan => replan = true,
                message = control.recv() => match message {
                    Some(Control::Reload) => {
                        if !reload.swap(true, Ordering::SeqCst) {
                            info!("reload asked while sending: pausing after the sends in flight");
                        }
                    }
                    Some(Control::Stop) | None => {
                        info!("stopping: no new sends; waiting for the sends in flight");
                        notifier.stopping("stopping: waiting for the sends in flight");
                        self.stopping.store(true, Ordering::SeqCst);
                        match tokio::time::timeout(self.options.shutdown_deadline, &mut dispatch).await {
                            Ok(result) => break result,
                            Err(_) => {
                                warn!("sends still in flight at the shutdown deadline; they will be sent again at the next start");
                                break Ok(Dispatched::default());
                            }
                        }
                    }
                },
            }
        };
        (
            result,
            Asked {
                reload: reload.load(Ordering::SeqCst),
                replan,
            },
        )
    }

    /// Logs a jump of the wall clock and reconciles at once. Forward, the
    /// sends due in the span it skipped are late: those within the late
    /// window go out now, the others are skipped as too late. Back, those
    /// skipped sends may be due again: the reconcile plans again every one
    /// now in the future or within the late window.
    async fn clock_jumped(&mut self, Jump(by): Jump) {
        let now = self.options.clock.now();
        if by.is_positive() {
            warn!(
                jump = %format!("{by:#}"),
                %now,
                "the wall clock jumped forward (NTP stepping it, a VM restored, a resume from suspend, or set by hand); sends due in the span are late: sent if within the late window, otherwise skipped as too late, and planned again if the clock comes back"
            );
        } else {
            warn!(
                jump = %format!("{:#}", by.abs()),
                %now,
                "the wall clock was set back; sends skipped as too late that are due again are planned again"
            );
        }
        self.last_reconcile = self
            .run_blocking(|_, scheduler| {
                reconcile_logged(scheduler, "the wall clock jumped");
                scheduler.clock().now()
            })
            .await;
    }

    /// Keeps track of whether the outbox can be written, and says so when
    /// that changes: an error when it starts failing (with how many
    /// outcomes are kept), a line when it works again.
    fn note_outbox(&mut self, result: &Result<Dispatched, OutboxError>) {
        let kept = self.scheduler.unrecorded();
        match (result, self.outbox_failing.is_some()) {
            (Ok(_), _) if kept > 0 => {
                // Cannot happen (kept outcomes make the dispatch fail); if
                // it did, the next pass records them.
                self.outbox_failing = self.scheduler.outbox_failure();
            }
            (Err(err), _) => {
                // The outbox is the source of truth; while it cannot be
                // written, sending more would risk repeats.
                if self.outbox_failing.is_none() {
                    error!(
                        error = %Chain(err),
                        kept,
                        "the outbox is failing: no new sends until it can be written; the outcomes it could not record are kept and recorded first"
                    );
                } else {
                    warn!(error = %Chain(err), kept, "the outbox is still failing");
                }
                self.outbox_failing = Some(Brief(err).to_string());
            }
            (Ok(_), true) => {
                info!("the outbox works again; every outcome kept meanwhile is recorded");
                self.outbox_failing = None;
            }
            (Ok(_), false) => {}
        }
    }

    /// Re-reads the configuration and swaps it in if it is valid (see
    /// [`reload_configuration`]).
    async fn reload(&mut self) {
        let board = self.board.clone();
        self.problems = self
            .run_blocking(move |options, scheduler| reload_configuration(options, scheduler, &board))
            .await;
        self.inbox = InboxReader::follow(self.inbox.take(), &self.scheduler);
        self.web.follow().await;
    }

    /// Lays the readers' overrides again (a page wrote one) and
    /// reconciles, without reloading the configuration.
    async fn replan(&mut self) {
        self.last_reconcile = self
            .run_blocking(|_, scheduler| {
                match scheduler.reapply_overrides() {
                    Ok(changes) => info!(
                        changes = %reconcile::summary(&changes),
                        "a reader's choice applied; outbox reconciled"
                    ),
                    Err(err) => {
                        error!(error = %Chain(&err), "a reader's choice could not be applied; it will be at the next reconcile or reload")
                    }
                }
                scheduler.clock().now()
            })
            .await;
    }

    /// Reconciles the outbox with the plan if it needs more of it, or if
    /// `reconcile_every` has passed since the last time.
    async fn reconcile_if_due(&mut self) {
        let (last, every) = (self.last_reconcile, self.options.reconcile_every);
        self.last_reconcile = self
            .run_blocking(move |_, scheduler| {
                let now = scheduler.clock().now();
                let refill_at = known(scheduler.refill_at(), "when the outbox needs more of the plan");
                if !reconcile_due(now, refill_at, last, every) {
                    return last;
                }
                reconcile_logged(scheduler, "periodic");
                now
            })
            .await;
    }

    /// The next wake-up: reads what it depends on from the outbox, decides
    /// with [`next_wake`], and shows the status if the daemon goes on.
    async fn look_ahead(&mut self) -> Wake {
        let (problems, dispatch_failed) = (self.problems, self.dispatch_failed);
        let failing = self.outbox_failing.clone();
        let quota = rate::quota_note(self.scheduler.mailer().day_used());
        if quota.is_some() != self.quota_noted {
            match &quota {
                Some(quota) => {
                    warn!("{quota}: the rest of the day's sends wait for the oldest of them to be a day old")
                }
                None => info!("the relay's daily quota has room again"),
            }
            self.quota_noted = quota.is_some();
        }
        let digest_retry = self.digests.retry_at;
        let (outlook, status) = self
            .run_blocking(move |_, scheduler| {
                let now = scheduler.clock().now();
                // Not before the relay's limits let the next message leave.
                let next_turn = scheduler
                    .mailer()
                    .next_turn_in()
                    .and_then(|wait| now.checked_add(wait).ok());
                let next_due = known(scheduler.next_due(), "when the next send is due");
                if let Ok(pending) = scheduler.outbox().pending() {
                    scheduler.metrics().outbox(pending, next_due);
                }
                let next_due = next_due.map(|due| next_turn.map_or(due, |turn| due.max(turn)));
                let outlook = Outlook {
                    now,
                    next_due,
                    refill_at: known(scheduler.refill_at(), "when the outbox needs more of the plan"),
                    dispatch_failed,
                    digest_at: digest::due_at(scheduler, digest_retry),
                };
                let mut status = status_line(scheduler, problems);
                if let Some(why) = failing {
                    status = failing_status(&why, scheduler.unrecorded(), Some(&status));
                }
                (outlook, status)
            })
            .await;
        let wake = next_wake(&outlook, self.options.until, self.options.tick);
        if let Wake::After(_) = wake {
            let trouble = self.inbox.as_ref().and_then(InboxReader::trouble);
            match trouble {
                Some(trouble) => self.options.notifier.status(&format!("{status}; {trouble}")),
                None => self.options.notifier.status(&status),
            }
        }
        wake
    }

    /// Sleeps `wait` of the daemon's clock (less if the watchdog must hear
    /// from the loop sooner), waking early for a reload or a stop.
    async fn sleep(
        &mut self,
        wait: SignedDuration,
        control: &mut mpsc::Receiver<Control>,
    ) -> ControlFlow<End> {
        let mut delay = if self.outbox_failing.is_some() {
            // A failing outbox is tried again in real time, and the clock
            // is not moved meanwhile (a stepping clock would otherwise
            // race through the schedule while nothing can be sent).
            self.options.outbox_retry
        } else {
            self.options.clock.real_delay(wait)
        };
        if let Some(every) = self.watchdog_every {
            delay = delay.min(every);
        }
        if let Some(lease) = self.scheduler.outbox().lease() {
            // Another node may plan sends due before this one's wake-up
            // (nothing tells it): it looks at the outbox again as often as
            // it renews its leases.
            delay = delay.min(lease / 6);
        }
        self.board.sleeping(self.options.clock.monotonic(), delay);
        let message = tokio::select! {
            () = tokio::time::sleep(delay) => return ControlFlow::Continue(()),
            () = self.web.shared.replan.notified() => {
                self.replan().await;
                return ControlFlow::Continue(());
            }
            message = control.recv() => message,
        };
        match message {
            Some(Control::Reload) => {
                self.reload().await;
                ControlFlow::Continue(())
            }
            Some(Control::Stop) | None => {
                info!("stopping");
                self.stopping.store(true, Ordering::SeqCst);
                self.options.notifier.stopping("stopping");
                ControlFlow::Break(End::Asked)
            }
        }
    }

    /// Stop: the sends still marked in flight go back to the outbox for the
    /// next start, the mailer closes its connections, and what is left is
    /// logged.
    async fn stop(mut self, end: End) -> anyhow::Result<()> {
        if end == End::RehearsalOver {
            if let Some(until) = self.options.until {
                info!(%until, "the rehearsal has reached its end");
            }
            self.options
                .notifier
                .stopping("stopping: the rehearsal has reached its end");
        }
        if self.scheduler.unrecorded() > 0
            && let Err(err) = self.scheduler.record_kept().await
        {
            // Their sends stay in flight and go out again at the next start.
            error!(
                error = %Chain(&err),
                kept = self.scheduler.unrecorded(),
                "stopping with outcomes the outbox could not record; their sends go out again at the next start"
            );
        }
        let released = self
            .run_blocking(|options, scheduler| {
                scheduler.outbox().release_claims(
                    &[scheduler.outbox().claimant()],
                    "herald was stopped before the server answered",
                    options.clock.now(),
                )
            })
            .await?;
        if released > 0 {
            warn!(
                released,
                "released sends in flight at stop; they go out at the next start"
            );
        }
        if let Some(inbox) = self.inbox.take() {
            inbox.stop();
        }
        self.web.stop().await;
        self.scheduler.mailer().shutdown().await;
        self.run_blocking(|_, scheduler| log_status(scheduler, "stopped"))
            .await;
        Ok(())
    }

    /// Runs `work` with the options and the scheduler on a blocking thread
    /// (see [`blocking`]).
    async fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Options, &Scheduler) -> T + Send + 'static,
    ) -> T {
        let (options, scheduler) = (self.options.clone(), self.scheduler.clone());
        blocking(move || work(&options, &scheduler)).await
    }
}

/// The blocking part of the start: loads and checks the configuration,
/// locks the state directory, opens the outbox and releases the sends left
/// in flight, builds the mailer, and reconciles. Returns the scheduler, the
/// status for READY and the lock.
fn set_up(options: &Options, metrics: Arc<Metrics>) -> anyhow::Result<(Scheduler, String, StateLock)> {
    let clock = &options.clock;
    let loaded = load(options).map_err(|problems| {
        for problem in problems.iter() {
            error!("{problem}");
        }
        anyhow::anyhow!(
            "{} problem{} in {}; fix and start again (`herald check` lists them)",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            options.config_dir.display()
        )
    })?;
    // First: a rehearsal refused for its delivery leaves no trace.
    let mailer = mailer_for(options, &loaded)?;
    let state_dir = loaded.delivery.state_dir.clone();
    // Before the outbox is touched: a second daemon would release the
    // first one's sends in flight below, and both would send them.
    let lock = StateLock::acquire(&state_dir)?;
    let database = loaded.delivery.database.as_ref();
    let outbox: Arc<dyn Outbox> = Arc::from(
        crate::outbox::open(&state_dir, database, Opener::Daemon).with_context(|| match database {
            Some(settings) => format!(
                "cannot use the database {} ([state] in herald.toml); check that the server is up and the password is right",
                settings.url
            ),
            None => format!("cannot use the state directory {}", state_dir.display()),
        })?,
    );
    // Stale: the claims of the daemon before this one (there is one at a
    // time), and those of commands that are no longer running. On a
    // database several nodes share, only this node's own: the others'
    // claims end with their leases.
    let stale: Vec<Claimant> = if outbox.lease().is_some() {
        vec![outbox.claimant()]
    } else {
        outbox
            .claimants_in_flight()?
            .into_iter()
            .filter(|claimant| claimant.is_daemon() || !claimant.is_running_command())
            .collect()
    };
    let released = outbox.release_claims(
        &stale,
        "herald stopped while sending; sending again (the recipient may get it twice, with the same Message-ID)",
        clock.now(),
    )?;
    if released > 0 {
        warn!(
            released,
            "sends were in flight when herald last stopped; they will be sent again"
        );
    }
    check_watchdog(&loaded, &options.notifier);
    crate::scheduler::seed_limits(&outbox, &mailer, clock.now());
    match database {
        Some(settings) => info!(
            transport = %mailer.describe(),
            database = %settings.url,
            node = %settings.node,
            "delivery ready"
        ),
        None => info!(transport = %mailer.describe(), state = %state_dir.display(), "delivery ready"),
    }
    // Readers' choices over the configuration, before the first plan.
    let loaded = crate::scheduler::lay_overrides(loaded, outbox.as_ref(), true);
    let scheduler = Scheduler::new(loaded, outbox, mailer, clock.clone()).with_metrics(metrics);
    let changes = scheduler.reconcile()?;
    info!(changes = %reconcile::summary(&changes), "outbox reconciled with the plan");
    let status = status_line(&scheduler, None);
    Ok((scheduler, status, lock))
}

/// Re-reads the configuration and swaps it in only if it is valid,
/// between `RELOADING=1` and `READY=1`. Returns how many problems keep the
/// new configuration out (`None` when it is the one running now). Blocks:
/// it loads and checks the configuration and reconciles the outbox.
fn reload_configuration(options: &Options, scheduler: &Scheduler, board: &Board) -> Option<usize> {
    let notifier = &options.notifier;
    notifier.reloading();
    info!(config = %options.config_dir.display(), "reloading the configuration");
    // A refusal is recorded (the metrics, the status page's board) before
    // it is logged, as a reload is: a reader of the status page who saw
    // the line finds the refusal there.
    let record_refusal = |problems: Vec<String>| {
        scheduler.metrics().reload_refused();
        board.refused(options.clock.now(), problems);
    };
    let problems = match load(options) {
        Ok(loaded) => match mailer_for(options, &loaded) {
            Ok(mailer) => {
                check_watchdog(&loaded, notifier);
                if loaded.delivery.database != scheduler.loaded().delivery.database {
                    // The outbox is open, with its leases and its name held:
                    // a move to another one is a restart's.
                    warn!(
                        "[state] changed: the outbox stays where it is until herald restarts (systemctl restart herald)"
                    );
                }
                crate::scheduler::seed_limits(scheduler.outbox(), &mailer, options.clock.now());
                let loaded = crate::scheduler::lay_overrides(loaded, scheduler.outbox().as_ref(), true);
                let replaced = scheduler.replace(loaded, mailer);
                // Before the log says so: a reader of the status page who
                // saw the line finds the new state there.
                scheduler.metrics().reloaded();
                board.loaded(options.clock.now());
                match replaced {
                    Ok(changes) => info!(changes = %reconcile::summary(&changes), "configuration reloaded"),
                    Err(err) => {
                        error!(error = %Chain(&err), "the outbox could not be reconciled with the new plan")
                    }
                }
                log_status(scheduler, "reloaded");
                None
            }
            Err(err) => {
                record_refusal(vec![Chain(&*err).to_string()]);
                error!(error = %Chain(&*err), "the new configuration cannot deliver; keeping the last good one running");
                Some(1)
            }
        },
        Err(problems) => {
            record_refusal(problems.iter().map(ToString::to_string).collect());
            for problem in problems.iter() {
                error!("{problem}");
            }
            error!(
                problems = problems.len(),
                "the new configuration has problems; keeping the last good one running"
            );
            Some(problems.len())
        }
    };
    notifier.ready(&status_line(scheduler, problems));
    problems
}

/// The one line `systemctl status` shows: "next send 2017-09-25T19:00Z,
/// 12 pending" (the pending sends are those of the outbox's horizon) or
/// "nothing due before …", then ", 3 suppressed" when sends still to come
/// are not sent because their recipients are suppressed, after the
/// problems of a rejected configuration
/// if any, and with "relay quota: 9,200 of 10,000 a day used" once 90 % of
/// the relay's daily quota is used. Reads the outbox.
fn status_line(scheduler: &Scheduler, problems: Option<usize>) -> String {
    const UNREADABLE: &str = "the outbox cannot be read";
    let pending = scheduler.outbox().pending();
    let readable = pending.is_ok();
    let next = scheduler.next_due();
    let plan = match (pending, next) {
        // The outbox holds only the next part of the plan.
        (Ok(0), _) => match scheduler.outbox().planned_until() {
            Ok(Some(until)) => format!("nothing due before {}", until.strftime("%Y-%m-%dT%H:%MZ")),
            Ok(None) => "nothing pending".to_owned(),
            Err(_) => UNREADABLE.to_owned(),
        },
        (Ok(pending), Ok(Some(due))) => {
            format!("next send {}, {pending} pending", due.strftime("%Y-%m-%dT%H:%MZ"))
        }
        (Ok(pending), _) => format!("{pending} pending"),
        (Err(_), _) => UNREADABLE.to_owned(),
    };
    // Said only when there are some, after what is pending; a count that
    // cannot be read is left out, as the outbox's failure is said by the
    // rest of the line (or by `failing_status`).
    let suppressed = readable
        .then(|| scheduler.outbox().suppressed_from(scheduler.clock().now()))
        .and_then(Result::ok)
        .filter(|&n| n > 0);
    let plan = match suppressed {
        Some(suppressed) => format!("{plan}, {suppressed} suppressed"),
        None => plan,
    };
    let plan = match rate::quota_note(scheduler.mailer().day_used()) {
        Some(quota) => format!("{plan}; {quota}"),
        None => plan,
    };
    // With several nodes on one database: who plans.
    let plan = match (scheduler.outbox().lease(), scheduler.planning()) {
        (None, _) => plan,
        (Some(_), Planning::Plans) => format!("{plan}; this node plans"),
        (Some(_), Planning::Another { node }) => format!("{plan}; node {node} plans, this one sends"),
        (Some(_), Planning::Differs { node, .. }) => format!(
            "{plan}; NOT PLANNING: this configuration differs from the one node {node} planned with; sending what is planned"
        ),
    };
    match problems {
        None => plan,
        Some(n) => format!(
            "configuration has {n} problem{}; running the last good one; {plan}",
            if n == 1 { "" } else { "s" }
        ),
    }
}

/// The status while the outbox is failing: why, how many updates are kept
/// in memory (outcomes, and claimed sends not started, to put back), and
/// the plan's status if it could be read.
fn failing_status(why: &str, kept: usize, plan: Option<&str>) -> String {
    let mut status = format!(
        "the outbox is failing ({why}); {kept} update{} (outcomes, and claimed sends to put back) kept in memory until it can be written; no new sends meanwhile",
        if kept == 1 { "" } else { "s" }
    );
    if let Some(plan) = plan {
        status.push_str("; ");
        status.push_str(plan);
    }
    status
}

/// Warns when the watchdog could fire on a healthy daemon: the loop only
/// comes round between sends, and one send may take the whole SMTP timeout.
fn check_watchdog(loaded: &Loaded, notifier: &Notifier) {
    if let (Some(interval), crate::send::Transport::Smtp(smtp)) =
        (notifier.watchdog_interval(), &loaded.delivery.transport)
        && smtp.timeout >= interval
    {
        warn!(
            watchdog = ?interval,
            smtp_timeout = ?smtp.timeout,
            "the watchdog interval (WatchdogSec=) is not longer than the SMTP timeout; a slow send could get herald restarted"
        );
    }
}

/// Logs what a dispatch did.
fn log_dispatched(result: &Result<Dispatched, OutboxError>) {
    match result {
        Ok(done) if *done != Dispatched::default() => {
            info!(
                sent = done.sent,
                retried = done.retried,
                failed = done.failed,
                skipped = done.skipped,
                "dispatched"
            );
        }
        Ok(_) => {}
        // Said by `Daemon::note_outbox`, which knows whether it is news.
        Err(_) => {}
    }
}

fn reconcile_logged(scheduler: &Scheduler, why: &str) {
    match scheduler.reconcile() {
        Ok(changes) if !changes.is_empty() => {
            info!(changes = %reconcile::summary(&changes), why, "outbox reconciled")
        }
        Ok(_) => {}
        Err(err) => error!(error = %Chain(&err), "the outbox could not be reconciled"),
    }
}

/// The value read from the outbox, or `None`, with a warning, when it
/// cannot be read: the loop then goes on as if nothing were known.
fn known<T>(read: Result<Option<T>, OutboxError>, what: &str) -> Option<T> {
    read.unwrap_or_else(|err| {
        warn!(error = %Chain(&err), "cannot read {what}");
        None
    })
}

/// Logs what is pending, and how many sends still to come are suppressed.
/// Only those are counted: counting the history too reads every row the
/// outbox ever had, which grows for years (`herald history` shows it).
fn log_status(scheduler: &Scheduler, what: &str) {
    let outbox = scheduler.outbox();
    let suppressed = outbox.suppressed_from(scheduler.clock().now());
    match (outbox.pending(), scheduler.next_due(), suppressed) {
        (Ok(planned), Ok(next), Ok(suppressed)) => info!(
            planned,
            suppressed,
            next_due = next.map(|t| t.to_string()).unwrap_or_else(|| "none".to_owned()),
            "{what}"
        ),
        (Err(err), _, _) | (_, Err(err), _) | (_, _, Err(err)) => {
            warn!(error = %Chain(&err), "{what}; what is pending cannot be read")
        }
    }
}
