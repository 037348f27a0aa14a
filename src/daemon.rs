//! `herald run`: wires the configuration, the outbox, the mailer and the
//! scheduler together, and keeps them running through reloads and signals.
//!
//! The loop sleeps until the next due send (never longer than a tick),
//! sends what is due, and wakes early for a reload or a stop. A reload
//! validates the whole new configuration first; an invalid one is logged,
//! problem by problem, and the last good one keeps running. On stop, no new
//! send is started, sends in flight get a deadline to finish, and whatever
//! is left is released to the outbox for the next start.
//!
//! The service manager hears of each step through a [`Notifier`]: ready
//! after the first reconcile, reloading and ready again around a reload, a
//! watchdog ping from this loop (never from a thread of its own, so a stuck
//! loop is restarted), the next send and the count pending as the status,
//! and stopping.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::config::Environment;
use crate::diagnostics::Diagnostics;
use crate::outbox::{Outbox, SqliteOutbox};
use crate::scheduler::{Loaded, Scheduler, reconcile};
use crate::send::Mailer;
use crate::systemd::Notifier;

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

/// Loads and checks the whole configuration.
pub fn load(options: &Options) -> Result<Loaded, Diagnostics> {
    let since = options.clock.now().checked_sub(CHECKED_AFTER_START).ok();
    let mut loaded = Loaded::load(&options.config_dir, &options.env, since)?;
    if let Some(dir) = &options.state_dir {
        loaded.delivery.state_dir = dir.clone();
    }
    Ok(loaded)
}

fn mailer_for(loaded: &Loaded, clock: &Arc<dyn Clock>) -> anyhow::Result<Mailer> {
    Mailer::from_settings_with_clock(&loaded.delivery, clock.clone())
        .map_err(|message| anyhow::anyhow!("cannot set up delivery: {message}"))
}

/// The name under which the rate limiter's state is kept in the outbox.
const RATE_STATE: &str = "rate_limit";

/// Runs the daemon until a `Stop` arrives on `control` (or `until` passes).
pub async fn run(options: Options, mut control: mpsc::Receiver<Control>) -> anyhow::Result<()> {
    let clock = options.clock.clone();
    let notifier = options.notifier.clone();
    // The loop must come round at least twice per watchdog interval.
    let watchdog_every = notifier.watchdog_interval().map(|interval| interval / 2);
    let loaded = load(&options).map_err(|problems| {
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
    let mailer = mailer_for(&loaded, &clock)?;
    check_watchdog(&loaded, &notifier);
    restore_rate(outbox.as_ref(), &mailer);
    info!(transport = %mailer.describe(), state = %state_dir.display(), "delivery ready");
    let scheduler = Scheduler::new(loaded, outbox.clone(), mailer, clock.clone());
    let changes = scheduler.reconcile()?;
    info!(changes = %reconcile::summary(&changes), "outbox reconciled with the plan");
    log_status(&scheduler, "ready");
    // How many problems the configuration on disk has while the last good
    // one runs; shown in the status until a valid one is loaded.
    let mut problems: Option<usize> = None;
    notifier.ready(&status_line(&scheduler, problems));

    let stopping = Arc::new(AtomicBool::new(false));
    let mut last_reconcile = clock.now();
    loop {
        notifier.watchdog();
        let stop_flag = stopping.clone();
        let is_stopping = move || stop_flag.load(Ordering::SeqCst);
        // Stop signals arriving while sending must stop the claiming of new
        // work, so the dispatch runs alongside the control channel.
        let dispatch = scheduler.dispatch_due(&is_stopping);
        tokio::pin!(dispatch);
        // A reload waits for the batch in flight; a stop does not wait.
        let mut reload_pending = false;
        let result = loop {
            tokio::select! {
                result = &mut dispatch => break result,
                // A long batch (a rate limit, a slow relay) keeps the
                // watchdog fed only while sends keep finishing.
                () = scheduler.progressed() => notifier.watchdog(),
                message = control.recv() => match message {
                    Some(Control::Reload) => reload_pending = true,
                    Some(Control::Stop) | None => {
                        info!("stopping: no new sends; waiting for the sends in flight");
                        notifier.stopping("stopping: waiting for the sends in flight");
                        stopping.store(true, Ordering::SeqCst);
                        match tokio::time::timeout(options.shutdown_deadline, &mut dispatch).await {
                            Ok(result) => break result,
                            Err(_) => {
                                warn!("sends still in flight at the shutdown deadline; they will be sent again at the next start");
                                break Ok(Default::default());
                            }
                        }
                    }
                },
            }
        };
        match result {
            Ok(done) if done != Default::default() => {
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
            Err(err) => error!(error = %err, "the outbox could not be updated; retrying at the next tick"),
        }
        save_rate(outbox.as_ref(), &scheduler.mailer());
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        if reload_pending {
            problems = reload(&options, &scheduler);
        }
        let now = clock.now();
        // The outbox holds only the next part of the plan: take in more
        // before it runs out, and at least every `reconcile_every`.
        let refill_due = scheduler.refill_at().ok().flatten().is_none_or(|at| now >= at);
        if refill_due || now.duration_since(last_reconcile) >= options.reconcile_every {
            reconcile_logged(&scheduler, "periodic");
            last_reconcile = now;
        }
        let next_due = scheduler.next_due().unwrap_or(None);
        if let Some(until) = options.until
            && now >= until
            && next_due.is_none_or(|due| due >= until)
        {
            info!(%until, "the rehearsal has reached its end");
            break;
        }
        let mut wait = crate::scheduler::wait_for(next_due, now, options.tick);
        // Wake to take in more of the plan; not if that failed just now
        // (it is tried again at the next tick, not in a busy loop).
        if let Ok(Some(refill_at)) = scheduler.refill_at()
            && refill_at > now
        {
            wait = wait.min(now.duration_until(refill_at));
        }
        if let Some(until) = options.until {
            // A rehearsal ends at `until`, not at the first send after it.
            wait = wait.min(now.duration_until(until).max(SignedDuration::ZERO));
        }
        notifier.status(&status_line(&scheduler, problems));
        let mut delay = clock.real_delay(wait);
        if let Some(every) = watchdog_every {
            delay = delay.min(every);
        }
        let sleep = tokio::time::sleep(delay);
        tokio::select! {
            _ = sleep => {}
            message = control.recv() => match message {
                Some(Control::Reload) => problems = reload(&options, &scheduler),
                Some(Control::Stop) | None => {
                    info!("stopping");
                    stopping.store(true, Ordering::SeqCst);
                    notifier.stopping("stopping");
                    break;
                }
            },
        }
    }
    if !stopping.load(Ordering::SeqCst) {
        // The end of a rehearsal.
        notifier.stopping("stopping: the rehearsal has reached its end");
    }
    let released = outbox.release_in_flight("herald was stopped before the server answered", clock.now())?;
    if released > 0 {
        warn!(
            released,
            "released sends in flight at stop; they go out at the next start"
        );
    }
    scheduler.mailer().shutdown().await;
    log_status(&scheduler, "stopped");
    Ok(())
}

/// Re-reads the configuration and swaps it in only if it is valid,
/// between `RELOADING=1` and `READY=1`. Returns how many problems keep the
/// new configuration out (`None` when it is the one running now).
pub fn reload(options: &Options, scheduler: &Scheduler) -> Option<usize> {
    let notifier = &options.notifier;
    notifier.reloading();
    info!(config = %options.config_dir.display(), "reloading the configuration");
    let problems = match load(options) {
        Ok(loaded) => match mailer_for(&loaded, scheduler.clock()) {
            Ok(mailer) => {
                check_watchdog(&loaded, notifier);
                restore_rate(scheduler.outbox().as_ref(), &mailer);
                match scheduler.replace(loaded, mailer) {
                    Ok(changes) => info!(changes = %reconcile::summary(&changes), "configuration reloaded"),
                    Err(err) => error!(error = %err, "the outbox could not be reconciled with the new plan"),
                }
                log_status(scheduler, "reloaded");
                None
            }
            Err(err) => {
                error!(error = %err, "the new configuration cannot deliver; keeping the last good one running");
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
/// if any.
pub fn status_line(scheduler: &Scheduler, problems: Option<usize>) -> String {
    let pending = scheduler.outbox().pending();
    let next = scheduler.next_due();
    let plan = match (pending, next) {
        // The outbox holds only the next part of the plan.
        (Ok(0), _) => match scheduler.outbox().planned_until() {
            Ok(Some(until)) => format!("nothing due before {}", until.strftime("%Y-%m-%dT%H:%MZ")),
            _ => "nothing pending".to_owned(),
        },
        (Ok(pending), Ok(Some(due))) => {
            format!("next send {}, {pending} pending", due.strftime("%Y-%m-%dT%H:%MZ"))
        }
        (Ok(pending), _) => format!("{pending} pending"),
        (Err(_), _) => "the outbox cannot be read".to_owned(),
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

fn reconcile_logged(scheduler: &Scheduler, why: &str) {
    match scheduler.reconcile() {
        Ok(changes) if !changes.is_empty() => {
            info!(changes = %reconcile::summary(&changes), why, "outbox reconciled")
        }
        Ok(_) => {}
        Err(err) => error!(error = %err, "the outbox could not be reconciled"),
    }
}

/// Logs what is pending. Only the planned sends are counted: counting the
/// history too reads every row the outbox ever had, which grows for years
/// (`herald history` shows it).
fn log_status(scheduler: &Scheduler, what: &str) {
    let planned = scheduler.outbox().pending().unwrap_or_default();
    let next = scheduler.next_due().ok().flatten();
    info!(
        planned,
        next_due = next.map(|t| t.to_string()).unwrap_or_else(|| "none".to_owned()),
        "{what}"
    );
}

fn restore_rate(outbox: &dyn Outbox, mailer: &Mailer) {
    let Ok(Some(saved)) = outbox.get_value(RATE_STATE) else {
        return;
    };
    let Some((tokens, at)) = saved.split_once('@') else {
        return;
    };
    if let (Ok(tokens), Ok(at)) = (tokens.parse::<f64>(), at.parse::<Timestamp>()) {
        mailer.restore_rate_state(tokens, at);
    }
}

fn save_rate(outbox: &dyn Outbox, mailer: &Mailer) {
    if let Some((tokens, at)) = mailer.rate_state()
        && let Err(err) = outbox.set_value(RATE_STATE, &format!("{tokens}@{at}"))
    {
        warn!(error = %err, "could not save the rate limit's state");
    }
}
