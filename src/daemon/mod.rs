//! `herald run`: wires the configuration, the outbox, the mailer and the
//! scheduler together, and keeps them running through reloads and signals.
//!
//! [`run`] is four steps, each a method of `Daemon`, the running state
//! (the scheduler, the notifier, the problems of a rejected configuration,
//! the last reconcile, the stop flag):
//!
//! 1. **start** (`Daemon::start`): load and check the configuration, open
//!    the outbox and release the sends a crash left in flight, build the
//!    mailer, reconcile the outbox with the plan, and tell the service
//!    manager READY;
//! 2. **pass** (`Daemon::pass`): send what is due while listening for a
//!    reload or a stop (a reload pauses a burst once the sends in flight
//!    are done), save the rate limit's state, then reload if asked, and
//!    reconcile again if the outbox needs more of the plan (or an hour has
//!    passed); the next pass sends the rest of a paused burst;
//! 3. **next wake-up** (`Daemon::look_ahead`, then `Daemon::sleep`): read
//!    when the next send is due and when the outbox needs more of the plan,
//!    decide how long to sleep or whether the rehearsal is over (a pure
//!    function, `next_wake`), and sleep, waking early for a reload or a
//!    stop; then the next pass;
//! 4. **stop** (`Daemon::stop`): release what is still in flight to the
//!    outbox for the next start, shut the mailer down, and log what is left.
//!
//! A reload validates the whole new configuration first; an invalid one is
//! logged, problem by problem, and the last good one keeps running. On
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

use crate::clock::Clock;
use crate::config::Environment;
use crate::diagnostics::Chain;
use crate::diagnostics::Diagnostics;
use crate::outbox::{Outbox, OutboxError, SqliteOutbox};
use crate::scheduler::{Dispatched, Loaded, Scheduler, blocking, reconcile};
use crate::send::Mailer;
use crate::systemd::Notifier;

mod rate;
mod wake;

use wake::{Outlook, Wake, next_wake, reconcile_due};

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
    if let Some(dir) = &options.state_dir {
        loaded.delivery.state_dir = dir.clone();
    }
    Ok(loaded)
}

fn mailer_for(loaded: &Loaded, clock: &Arc<dyn Clock>) -> anyhow::Result<Mailer> {
    Mailer::from_settings_with_clock(&loaded.delivery, clock.clone()).context("cannot set up delivery")
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
}

impl Daemon {
    /// Start: everything before READY. Any failure stops herald, with why:
    /// there is no last good configuration to fall back on yet.
    async fn start(options: Options) -> anyhow::Result<Daemon> {
        let options = Arc::new(options);
        let (scheduler, status) = blocking({
            let options = options.clone();
            move || set_up(&options)
        })
        .await?;
        options.notifier.ready(&status);
        Ok(Daemon {
            last_reconcile: options.clock.now(),
            watchdog_every: options.notifier.watchdog_interval().map(|interval| interval / 2),
            options,
            scheduler: Arc::new(scheduler),
            problems: None,
            stopping: Arc::new(AtomicBool::new(false)),
            dispatch_failed: false,
        })
    }

    /// One pass: send what is due while listening for a reload or a stop,
    /// and save the rate limit's state; then, unless stopping, reload if
    /// asked and reconcile if the outbox needs more of the plan.
    async fn pass(&mut self, control: &mut mpsc::Receiver<Control>) -> ControlFlow<End> {
        self.options.notifier.watchdog();
        let (result, reload_asked) = self.dispatch(control).await;
        log_dispatched(&result);
        self.dispatch_failed = result.is_err();
        self.save_rate().await;
        if self.stopping.load(Ordering::SeqCst) {
            return ControlFlow::Break(End::Asked);
        }
        if reload_asked {
            self.reload().await;
        }
        self.reconcile_if_due().await;
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
    ) -> (Result<Dispatched, OutboxError>, bool) {
        let stop_flag = self.stopping.clone();
        let is_stopping = move || stop_flag.load(Ordering::SeqCst);
        // Stop signals arriving while sending must stop the claiming of new
        // work, so the dispatch runs alongside the control channel.
        let reload = AtomicBool::new(false);
        let reload_waits = || reload.load(Ordering::SeqCst);
        let dispatch = self.scheduler.dispatch_due(&is_stopping, &reload_waits);
        tokio::pin!(dispatch);
        let notifier = &self.options.notifier;
        let result = loop {
            tokio::select! {
                result = &mut dispatch => break result,
                // A long batch (a rate limit, a slow relay) keeps the
                // watchdog fed only while sends keep finishing.
                () = self.scheduler.progressed() => notifier.watchdog(),
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
        (result, reload.load(Ordering::SeqCst))
    }

    /// Saves the rate limit's state, so that a restart resumes it rather
    /// than starting it full.
    async fn save_rate(&self) {
        self.run_blocking(|_, scheduler| rate::save_rate(scheduler.outbox().as_ref(), &scheduler.mailer()))
            .await;
    }

    /// Re-reads the configuration and swaps it in if it is valid (see
    /// [`reload_configuration`]).
    async fn reload(&mut self) {
        self.problems = self.run_blocking(reload_configuration).await;
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
    async fn look_ahead(&self) -> Wake {
        let (problems, dispatch_failed) = (self.problems, self.dispatch_failed);
        let (outlook, status) = self
            .run_blocking(move |_, scheduler| {
                let outlook = Outlook {
                    now: scheduler.clock().now(),
                    next_due: known(scheduler.next_due(), "when the next send is due"),
                    refill_at: known(scheduler.refill_at(), "when the outbox needs more of the plan"),
                    dispatch_failed,
                };
                (outlook, status_line(scheduler, problems))
            })
            .await;
        let wake = next_wake(&outlook, self.options.until, self.options.tick);
        if let Wake::After(_) = wake {
            self.options.notifier.status(&status);
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
        let mut delay = self.options.clock.real_delay(wait);
        if let Some(every) = self.watchdog_every {
            delay = delay.min(every);
        }
        let message = tokio::select! {
            () = tokio::time::sleep(delay) => return ControlFlow::Continue(()),
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
    async fn stop(self, end: End) -> anyhow::Result<()> {
        if end == End::RehearsalOver {
            if let Some(until) = self.options.until {
                info!(%until, "the rehearsal has reached its end");
            }
            self.options
                .notifier
                .stopping("stopping: the rehearsal has reached its end");
        }
        let released = self
            .run_blocking(|options, scheduler| {
                scheduler.outbox().release_in_flight(
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
/// opens the outbox and releases the sends left in flight, builds the
/// mailer, and reconciles. Returns the scheduler and the status for READY.
fn set_up(options: &Options) -> anyhow::Result<(Scheduler, String)> {
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
    let state_dir = loaded.delivery.state_dir.clone();
    let outbox: Arc<dyn Outbox> = Arc::new(
        SqliteOutbox::open(&state_dir)
            .with_context(|| format!("cannot use the state directory {}", state_dir.display()))?,
    );
    let released = outbox.release_in_flight(
        "herald stopped while sending; sending again (the recipient may get it twice, with the same Message-ID)",
        clock.now(),
    )?;
    if released > 0 {
        warn!(
            released,
            "sends were in flight when herald last stopped; they will be sent again"
        );
    }
    let mailer = mailer_for(&loaded, clock)?;
    check_watchdog(&loaded, &options.notifier);
    rate::restore_rate(outbox.as_ref(), &mailer);
    info!(transport = %mailer.describe(), state = %state_dir.display(), "delivery ready");
    let scheduler = Scheduler::new(loaded, outbox, mailer, clock.clone());
    let changes = scheduler.reconcile()?;
    info!(changes = %reconcile::summary(&changes), "outbox reconciled with the plan");
    log_status(&scheduler, "ready");
    let status = status_line(&scheduler, None);
    Ok((scheduler, status))
}

/// Re-reads the configuration and swaps it in only if it is valid,
/// between `RELOADING=1` and `READY=1`. Returns how many problems keep the
/// new configuration out (`None` when it is the one running now). Blocks:
/// it loads and checks the configuration and reconciles the outbox.
fn reload_configuration(options: &Options, scheduler: &Scheduler) -> Option<usize> {
    let notifier = &options.notifier;
    notifier.reloading();
    info!(config = %options.config_dir.display(), "reloading the configuration");
    let problems = match load(options) {
        Ok(loaded) => match mailer_for(&loaded, scheduler.clock()) {
            Ok(mailer) => {
                check_watchdog(&loaded, notifier);
                rate::restore_rate(scheduler.outbox().as_ref(), &mailer);
                match scheduler.replace(loaded, mailer) {
                    Ok(changes) => info!(changes = %reconcile::summary(&changes), "configuration reloaded"),
                    Err(err) => {
                        error!(error = %Chain(&err), "the outbox could not be reconciled with the new plan")
                    }
                }
                log_status(scheduler, "reloaded");
                None
            }
            Err(err) => {
                error!(error = %Chain(&*err), "the new configuration cannot deliver; keeping the last good one running");
                Some(1)
            }
        },
        Err(problems) => {
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
/// "nothing due before …", after the problems of a rejected configuration
/// if any. Reads the outbox.
fn status_line(scheduler: &Scheduler, problems: Option<usize>) -> String {
    const UNREADABLE: &str = "the outbox cannot be read";
    let pending = scheduler.outbox().pending();
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
    match problems {
        None => plan,
        Some(n) => format!(
            "configuration has {n} problem{}; running the last good one; {plan}",
            if n == 1 { "" } else { "s" }
        ),
    }
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

/// Logs what a dispatch did, or why it could not update the outbox.
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
        // The outbox is the source of truth; if it cannot be written,
        // sending more would risk repeats, so wait and try again.
        Err(err) => error!(
            error = %Chain(err),
            "the outbox could not be updated; retrying at the next tick at the latest"
        ),
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

/// Logs what is pending. Only the planned sends are counted: counting the
/// history too reads every row the outbox ever had, which grows for years
/// (`herald history` shows it).
fn log_status(scheduler: &Scheduler, what: &str) {
    match (scheduler.outbox().pending(), scheduler.next_due()) {
        (Ok(planned), Ok(next)) => info!(
            planned,
            next_due = next.map(|t| t.to_string()).unwrap_or_else(|| "none".to_owned()),
            "{what}"
        ),
        (Err(err), _) | (_, Err(err)) => {
            warn!(error = %Chain(&err), "{what}; what is pending cannot be read")
        }
    }
}
