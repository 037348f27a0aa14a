//! `herald send --letter ID`: a circular sent now, through the outbox, one
//! message per recipient (never a Bcc fan-out).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};

use super::place::Place;
use super::suppressions::{Lookup, suppressed_since};
use crate::clock::Clock;
use crate::config::Environment;
use crate::daemon::{self, Options};
use crate::key::AddressKey;
use crate::outbox::Outbox;
use crate::plan::{PlannedSend, Planner};
use crate::resolve::{Calendars, resolve};
use crate::scheduler::{Scheduler, SentNow};
use crate::send::Mailer;

/// What a dry run does when the outbox cannot be read for its suppressions.
const SUPPRESSIONS_UNREAD: &str =
    "the recipients suppressed (bounces, unsubscribes) are listed as if they would get it";

pub fn run(
    config: &Path,
    state_dir: Option<&Path>,
    letter_id: &str,
    dry_run: bool,
    clock: Arc<dyn Clock>,
) -> super::CommandResult {
    let mut options = Options::new(config.to_owned(), Environment::from_process(), clock.clone());
    options.state_dir = state_dir.map(Path::to_owned);
    let mut loaded = match daemon::load(&options) {
        Ok(loaded) => loaded,
        Err(problems) => return Ok(super::print_problems(config, &problems)),
    };
    if state_dir.is_some() {
        // `--state-dir` means its SQLite outbox, whatever `[state]` names.
        loaded.delivery.database = None;
    }
    let place = Place::of(&loaded.delivery);
    // Each reader's letter in the language they chose.
    let outbox = super::existing_outbox(&place, "the readers' own choices are not applied");
    let loaded = super::with_overrides(loaded, outbox.as_deref());
    drop(outbox);
    let model = &loaded.model;
    let letter = model
        .letter(letter_id)
        .ok_or_else(|| anyhow!("no letter {letter_id:?} in {}/letters", config.display()))?;
    let now = clock.now();
    let sends: Vec<PlannedSend> =
        Planner::new(model).letter_sends(letter, &now.to_zoned_datetime(jiff::tz::TimeZone::UTC));
    let mut out = std::io::stdout().lock();
    if sends.is_empty() {
        bail!(
            "letter {letter_id:?} goes to no one: its lists ({}) have no focal points",
            letter.lists.join(", ")
        );
    }
    if dry_run {
        let calendars = Calendars::default();
        let outbox = super::existing_outbox(&place, SUPPRESSIONS_UNREAD);
        let suppressions = Lookup::read(outbox.as_deref(), &place, SUPPRESSIONS_UNREAD);
        let mut suppressed = 0;
        for send in &sends {
            let resolved = resolve(model, &calendars, send.clone())?;
            let rendered = loaded.renderer.render(model, &resolved, now)?;
            write!(out, "{}  {}  {}", send.to, rendered.language, rendered.subject)?;
            if let Some(suppression) = suppressions.of(&AddressKey::of(send.key.address()), &send.list) {
                suppressed += 1;
                write!(out, "  (not sent: {})", suppressed_since(suppression))?;
            }
            writeln!(out)?;
        }
        writeln!(
            out,
            "dry run: {} messages would be sent, one per recipient{}; nothing was sent",
            sends.len() - suppressed,
            match suppressed {
                0 => String::new(),
                1 => " (1 recipient is suppressed)".to_owned(),
                n => format!(" ({n} recipients are suppressed)"),
            }
        )?;
        return Ok(ExitCode::SUCCESS);
    }

    let outbox: Arc<dyn Outbox> = Arc::from(place.open_or_explain()?);
    let mailer = Mailer::from_settings_with_clock(&loaded.delivery, clock.clone())
        .context("cannot set up delivery")?;
    // What the daemon sent counts against the relay's limits here too.
    crate::scheduler::seed_limits(&outbox, &mailer, clock.now());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let scheduler = Scheduler::new(loaded, outbox, mailer, clock);
    let SentNow {
        already_sent,
        suppressed,
        done,
    } = runtime.block_on(async {
        let sent = scheduler.send_now(&sends).await;
        scheduler.mailer().shutdown().await;
        sent
    })?;
    if already_sent > 0 {
        writeln!(
            out,
            "{already_sent} recipient{} already had this letter; not sent again",
            if already_sent == 1 { "" } else { "s" }
        )?;
    }
    if suppressed > 0 {
        writeln!(
            out,
            "{suppressed} recipient{} suppressed (bounces, unsubscribes); not sent; `herald suppressions` lists them",
            if suppressed == 1 { " is" } else { "s are" }
        )?;
    }
    writeln!(
        out,
        "letter {letter_id}: {} sent, {} to retry (the daemon retries them), {} failed, {} skipped; `herald history --event {letter_id}` has the details",
        done.sent, done.retried, done.failed, done.skipped
    )?;
    Ok(if done.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
