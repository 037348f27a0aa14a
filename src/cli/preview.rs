//! `herald preview`: the exact message a recipient will get.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail};

use super::place::Place;
use crate::clock::Clock;
use crate::key::SendKind;
use crate::model::{FocalPoint, Lead, Model};
use crate::plan::{PlannedSend, Planner, Source, Window};
use crate::render::message;
use crate::resolve::{Calendars, resolve};

/// What to preview, as given on the command line.
pub struct Args<'a> {
    pub event: Option<&'a str>,
    pub lead: Option<&'a str>,
    pub letter: Option<&'a str>,
    pub notice: Option<&'a str>,
    pub to: &'a str,
}

pub fn run(config: &Path, clock: &dyn Clock, args: &Args) -> super::CommandResult {
    let loaded = match super::load(config) {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    // The message as it would go: in the language and zone the reader
    // chose, its invitation with the SEQUENCE calendars were told.
    let place = Place::of(&loaded.delivery);
    let outbox = super::existing_outbox(
        &place,
        "the reader's own choices are not applied, and invitations show SEQUENCE 0",
    );
    let loaded = super::with_overrides(loaded, outbox.as_deref());
    let model = &loaded.model;
    let to = args.to;
    let focal_point = model
        .focal_point(to)
        .ok_or_else(|| anyhow!("{to} is not a focal point in any list of {}", config.display()))?;
    let planner = Planner::new(model);
    let calendars = super::calendars(outbox.as_deref(), &place);
    drop(outbox);
    let send = match (args.event, args.notice) {
        (Some(event), Some(kind)) => {
            notice_send(&planner, &calendars, event, kind, focal_point, clock.now())?
        }
        _ => planned_send(&planner, args, focal_point, clock.now())?,
    };
    let date = send.due.timestamp();
    let resolved = resolve(model, &calendars, send)?;
    let rendered = loaded.renderer.render(model, &resolved, date)?;
    let message = message::build(model, &resolved, &rendered, date)?;
    std::io::stdout().write_all(&message.to_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `herald preview --digest --to EMAIL`: the operator's digest as the
/// daemon would send it now, covering what the outbox recorded since the
/// last digest (or the last day, when none went yet).
pub fn digest(config: &Path, clock: &dyn Clock, to: &str) -> super::CommandResult {
    let loaded = match super::load(config) {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let model = &loaded.model;
    let Some(settings) = &model.settings().digest else {
        bail!(
            "no digest is configured: add a [digest] table to {} with to = [\"ops@example.org\"] (and at = \"08:00\", time_zone = \"Europe/Zurich\" if wanted); see herald.toml(5)",
            config.join(crate::config::SETTINGS_FILE).display()
        );
    };
    let address = crate::key::AddressKey::of(to);
    let Some(recipient) = settings
        .to
        .iter()
        .find(|known| crate::key::AddressKey::of(known.as_ref()) == address)
    else {
        let known: Vec<&str> = settings.to.iter().map(AsRef::as_ref).collect();
        bail!(
            "{to} is not in [digest] `to`; the digest goes to: {}",
            known.join(", ")
        );
    };
    let place = Place::of(&loaded.delivery);
    let outbox = super::existing_outbox(&place, "the digest shows no sends and no incoming mail");
    if !place.exists() {
        eprintln!(
            "herald: warning: no outbox in {place} (herald has not run with this state directory); the digest shows no sends and no incoming mail"
        );
    }
    let now = clock.now();
    let outbox = outbox.as_deref();
    let last = match outbox {
        Some(outbox) => crate::digest::last_until(outbox)?,
        None => None,
    };
    let period = crate::digest::period_since(last, now);
    let gathered = crate::digest::gather(model, outbox, period)?;
    let message = crate::digest::message(model, &loaded.renderer, &gathered, recipient, now, None)?;
    std::io::stdout().write_all(&message.to_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The reminder of `--event` (at `--lead`, else the first) or the letter
/// of `--letter` that `focal_point` gets.
fn planned_send(
    planner: &Planner<'_>,
    args: &Args,
    focal_point: &FocalPoint,
    now: jiff::Timestamp,
) -> anyhow::Result<PlannedSend> {
    let model = planner.model();
    let to = args.to;
    // Only the slots of the wanted event or letter are expanded: a plan can
    // hold millions of sends.
    let candidates: Vec<PlannedSend> = planner
        .slots(Window::default())
        .iter()
        .filter(|slot| match (slot.source, args.event, args.letter) {
            (Source::Reminder { event: e, .. }, Some(wanted), _) => e.id == wanted,
            (Source::Letter(l), _, Some(wanted)) => l.id == wanted,
            _ => false,
        })
        .flat_map(|slot| planner.sends(slot))
        .filter(|send| send.to == focal_point.email.as_ref())
        .collect();
    if let Some(id) = args.event {
        if model.event(id).is_none() {
            bail!("no event {id:?} in the roadmaps; `herald plan` lists the events with sends");
        }
        if candidates.is_empty() {
            bail!(
                "{to} gets no reminder of {id:?}: the event is unscheduled or cancelled, or none of its lists has {to} on it"
            );
        }
    }
    if let Some(id) = args.letter {
        let Some(letter) = model.letter(id) else {
            bail!("no letter {id:?} in letters/");
        };
        if candidates.is_empty() {
            if letter.send_at.is_some() {
                bail!(
                    "{to} is on none of the lists of letter {id:?} ({})",
                    letter.lists.join(", ")
                );
            }
            // Sent only on demand: previewed as if sent now.
            return on_demand_letter(planner, model, id, focal_point, now);
        }
    }
    let Some(wanted) = args.lead else {
        return candidates
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("nothing to preview: name --event or --letter"));
    };
    let wanted = Lead::parse(wanted).map_err(|m| anyhow!("--lead: {m}"))?;
    let leads: Vec<&str> = candidates.iter().filter_map(|send| send.key.lead()).collect();
    let found = candidates
        .iter()
        .find(|send| send.key.lead() == Some(wanted.as_str()))
        .ok_or_else(|| {
            anyhow!(
                "{to} gets no {wanted} reminder of this event; the leads are: {}",
                leads.join(", ")
            )
        })?;
    Ok(found.clone())
}

/// A letter without `send_at`, as if it were sent now.
fn on_demand_letter(
    planner: &Planner<'_>,
    model: &Model,
    id: &str,
    focal_point: &FocalPoint,
    now: jiff::Timestamp,
) -> anyhow::Result<PlannedSend> {
    let letter = model.letter(id).ok_or_else(|| anyhow!("no letter {id:?}"))?;
    planner
        .letter_sends(letter, &now.to_zoned_datetime(jiff::tz::TimeZone::UTC))
        .into_iter()
        .find(|send| send.to == focal_point.email.as_ref())
        .ok_or_else(|| {
            anyhow!(
                "{} is on none of the lists of letter {id:?} ({})",
                focal_point.email,
                letter.lists.join(", ")
            )
        })
}

/// The update or cancellation notice about `event` that `focal_point`
/// would get if the roadmap changed now: the next notice about the event.
fn notice_send(
    planner: &Planner<'_>,
    calendars: &Calendars,
    event: &str,
    kind: &str,
    focal_point: &FocalPoint,
    now: jiff::Timestamp,
) -> anyhow::Result<PlannedSend> {
    let Some((_, found)) = planner.model().event(event) else {
        bail!("no event {event:?} in the roadmaps");
    };
    let kind = match kind.parse::<SendKind>() {
        Ok(kind) if kind.is_notice() => kind,
        _ => bail!("--notice {kind:?}: use update or cancellation"),
    };
    let number = calendars.row(event).map_or(0, |row| row.notices) + 1;
    let due = now.to_zoned_datetime(found.zone.tz.clone());
    planner
        .notices(found, kind, number, &due)
        .into_iter()
        .find(|send| send.to == focal_point.email.as_ref())
        .ok_or_else(|| {
            anyhow!(
                "{} is on none of the lists of {event:?}, so gets no notice of it",
                focal_point.email
            )
        })
}
