//! `herald run`: the daemon, with signals, logging, the service manager,
//! the configuration watch and rehearsals.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::clock::{Clock, FastClock, SteppingClock, SystemClock, parse_instant};
use crate::config::Environment;
use crate::daemon::{self, Control, Options};
use crate::systemd::Notifier;

/// The options of `herald run`.
pub struct Args<'a> {
    pub state_dir: Option<&'a Path>,
    pub rehearse_from: Option<&'a str>,
    pub speed: f64,
    pub fast_forward: bool,
    pub until: Option<&'a str>,
    pub redirect_to: Option<&'a str>,
    /// A rehearsal may send over SMTP to the real recipients.
    pub real_recipients: bool,
    pub log_json: bool,
    /// Reload on a change in the configuration directory.
    pub watch: bool,
}

pub fn run(config: &Path, args: &Args) -> super::CommandResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // The outbox's reads and commits run on blocking threads, a few
        // each minute when idle and many in a burst: keep those threads
        // rather than start new ones after tokio's default 10 s.
        .thread_keep_alive(std::time::Duration::from_secs(600))
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_async(config, args))
}

async fn run_async(config: &Path, args: &Args<'_>) -> super::CommandResult {
    // Signals first: SIGHUP's default action would kill a daemon that is
    // still starting.
    let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    init_logging(args.log_json);

    if !(args.speed.is_finite() && args.speed > 0.0) {
        return Err(anyhow!("--speed must be a positive number"));
    }
    let start = match args.rehearse_from {
        Some(start) => Some(parse_instant(start, &SystemClock).map_err(|m| anyhow!("--rehearse-from: {m}"))?),
        None => None,
    };
    let clock: Arc<dyn Clock> = match (start, args.fast_forward) {
        (start, true) => Arc::new(SteppingClock::new(start.unwrap_or_else(|| SystemClock.now()))),
        (Some(start), false) => Arc::new(FastClock::new(start, args.speed)),
        (None, false) if args.speed != 1.0 => Arc::new(FastClock::new(SystemClock.now(), args.speed)),
        (None, false) => Arc::new(SystemClock),
    };
    // Any clock but the real one is a rehearsal: it must not share the
    // production outbox (it would mark real sends as sent, or skip them),
    // whatever herald.toml or the environment say the state directory is.
    let rehearsal = start.is_some() || args.fast_forward || args.speed != 1.0;
    if rehearsal && args.state_dir.is_none() {
        return Err(anyhow!(
            "a rehearsal (--rehearse-from, --speed or --fast-forward) needs a state directory of its own: add --state-dir DIR (a new, empty directory), so that it never uses the production outbox"
        ));
    }
    if args.real_recipients && !rehearsal {
        return Err(anyhow!(
            "--real-recipients is for rehearsals (--rehearse-from, --speed or --fast-forward); `herald run` without them always sends to the real recipients"
        ));
    }
    if args.fast_forward && args.until.is_none() {
        return Err(anyhow!(
            "--fast-forward needs --until, or it would run through the years at once"
        ));
    }
    let until = args
        .until
        .map(|t| parse_instant(t, clock.as_ref()).map_err(|m| anyhow!("--until: {m}")))
        .transpose()?;
    let mut env = Environment::from_process();
    if let Some(address) = args.redirect_to {
        env = env.with("HERALD_REDIRECT_TO", address);
    }
    let mut options = Options::new(config.to_owned(), env, clock);
    options.state_dir = args.state_dir.map(PathBuf::from);
    options.until = until;
    options.notifier = Notifier::from_env();
    options.rehearsal = rehearsal;
    options.real_recipients = args.real_recipients;
    if args.fast_forward {
        // Jump from one send to the next rather than by minutes.
        options.tick = jiff::SignedDuration::from_hours(24);
    }

    let (control, receiver) = mpsc::channel(8);
    // Kept until the daemon returns; dropping it stops the watch.
    let _watch = if args.watch {
        match crate::watch::start(config, control.clone()) {
            Ok(watch) => Some(watch),
            Err(err) => {
                tracing::warn!(
                    config = %config.display(),
                    error = %err,
                    "cannot watch the configuration directory; reload with SIGHUP (systemctl reload herald) after an edit"
                );
                None
            }
        }
    } else {
        None
    };
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                _ = hangup.recv() => Control::Reload,
                _ = terminate.recv() => Control::Stop,
                _ = interrupt.recv() => Control::Stop,
            };
            if control.send(message).await.is_err() {
                break;
            }
        }
    });
    match daemon::run(options, receiver).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err) => {
            // Logged, not also printed: under systemd both would reach the
            // journal.
            tracing::error!("{err:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Where the logs go: exactly one of the journal (under systemd, with
/// structured fields), JSON lines on stderr (`--log-json`, which wins), or
/// text on stderr. The level comes from `HERALD_LOG` (default `info`).
fn init_logging(json: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = EnvFilter::try_from_env("HERALD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let text = || {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
    };
    let result = if json {
        registry.with(text().json()).try_init()
    } else if let Some(journal) = journal() {
        registry.with(journal).try_init()
    } else {
        registry.with(text()).try_init()
    };
    // A second initialisation (tests) keeps the first subscriber.
    let _ = result;
}

/// The journal, when stderr is connected to it (systemd's `JOURNAL_STREAM`
/// names stderr's device and inode) and its socket answers; otherwise
/// `None`, and the logs go to stderr as text.
fn journal() -> Option<tracing_journald::Layer> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    // An inherited JOURNAL_STREAM (a shell started from a service) names a
    // stream that is not this stderr; then stderr is where logs belong.
    let stream = std::env::var("JOURNAL_STREAM").ok()?;
    let (device, inode) = stream.split_once(':')?;
    let (device, inode) = (device.parse::<u64>().ok()?, inode.parse::<u64>().ok()?);
    let stderr = std::fs::File::from(std::io::stderr().as_fd().try_clone_to_owned().ok()?);
    let metadata = stderr.metadata().ok()?;
    if metadata.dev() != device || metadata.ino() != inode {
        return None;
    }
    let layer = tracing_journald::layer().ok()?;
    // Fields keep their names (`journalctl -u herald SEND=…`); the journal
    // upper-cases them.
    Some(
        layer
            .with_syslog_identifier("herald".to_owned())
            .with_field_prefix(None),
    )
}
