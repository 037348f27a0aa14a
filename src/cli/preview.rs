//! `herald preview`: the exact message a recipient will get.

use std::path::Path;
use std::process::ExitCode;

use std::collections::HashMap;

use anyhow::{anyhow, bail};

use crate::clock::Clock;
use crate::outbox::{CalendarRow, Outbox, SqliteOutbox};
use crate::plan::{self, SendSubject, Source, Window};
use crate::render::message;

pub fn run(
    config: &Path,
    clock: &dyn Clock,
    event: Option<&str>,
    lead: Option<&str>,
    letter: Option<&str>,
    notice: Option<&str>,
    to: &str,
) -> super::CommandResult {
    let loaded = match super::load(config) {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let model = &loaded.model;
    let focal_point = model
        .focal_point(to)
        .ok_or_else(|| anyhow!("{to} is not a focal point in any list of {}", config.display()))?;
    if let (Some(event), Some(kind)) = (event, notice) {
        let send = notice_send(model, event, kind, focal_point, clock.now())?;
        let calendar = calendar_rows(&loaded);
        let rendered = crate::scheduler::render_send(&loaded, &send, &calendar, send.due.timestamp())?;
        let message = message::build(&loaded.model, &send, &rendered, send.due.timestamp())?;
        use std::io::Write;
        std::io::stdout().write_all(&message.formatted())?;
        return Ok(ExitCode::SUCCESS);
    }
    // Only the slots of the wanted event or letter are expanded: a plan can
    // hold millions of sends.
    let planner = plan::Planner::new(model);
    let to_key = focal_point.email.to_string();
    let candidates: Vec<_> = planner
        .slots(Window::default())
        .iter()
        .filter(|slot| match (slot.source, event, letter) {
            (Source::Reminder { event: e, .. }, Some(wanted), _) => e.id == wanted,
            (Source::Letter(l), _, Some(wanted)) => l.id == wanted,
            _ => false,
        })
        .flat_map(|slot| planner.sends(slot))
        .filter(|send| send.to == to_key)
        .collect();
    if let Some(id) = event {
        if model.event(id).is_none() {
            bail!("no event {id:?} in the roadmaps; `herald plan` lists the events with sends");
        }
        if candidates.is_empty() {
            bail!(
                "{to} gets no reminder of {id:?}: the event is unscheduled or cancelled, or none of its lists has {to} on it"
            );
        }
    }
    if let Some(id) = letter {
        let Some(found) = model.letter(id) else {
            bail!("no letter {id:?} in letters/");
        };
        if candidates.is_empty() && found.send_at.is_some() {
            bail!(
                "{to} is on none of the lists of letter {id:?} ({})",
                found.lists.join(", ")
            );
        }
    }
    let send = match lead {
        Some(wanted) => {
            let wanted = crate::model::Lead::parse(wanted).map_err(|m| anyhow!("--lead: {m}"))?;
            candidates
                .iter()
                .find(|send| matches!(&send.subject, SendSubject::Reminder { lead, .. } if *lead == wanted.as_str()))
                .ok_or_else(|| {
                    let leads: Vec<String> = candidates
                        .iter()
                        .filter_map(|s| match &s.subject {
                            SendSubject::Reminder { lead, .. } => Some(lead.clone()),
                            SendSubject::Letter { .. } | SendSubject::Notice { .. } => None,
                        })
                        .collect();
                    anyhow!("{to} gets no {wanted} reminder of this event; the leads are: {}", leads.join(", "))
                })?
                .clone()
        }
        None => match candidates.first() {
            Some(send) => send.clone(),
            None => on_demand_letter(model, letter, focal_point, clock.now())?,
        },
    };
    let calendar = calendar_rows(&loaded);
    let rendered = crate::scheduler::render_send(&loaded, &send, &calendar, send.due.timestamp())?;
    let message = message::build(&loaded.model, &send, &rendered, send.due.timestamp())?;
    let bytes = message.formatted();
    use std::io::Write;
    std::io::stdout().write_all(&bytes)?;
    Ok(ExitCode::SUCCESS)
}

/// A letter without `send_at` goes out only on demand; preview it as if sent now.
fn on_demand_letter(
    model: &crate::model::Model,
    letter: Option<&str>,
    focal_point: &crate::model::FocalPoint,
    now: jiff::Timestamp,
) -> anyhow::Result<plan::PlannedSend> {
    let Some(id) = letter else {
        bail!("nothing to preview")
    };
    let Some(letter) = model.letter(id) else {
        bail!("no letter {id:?}")
    };
    let Some(list) = letter.lists.iter().find(|l| focal_point.lists.contains(l)) else {
        bail!(
            "{} is on none of the lists of letter {id:?} ({})",
            focal_point.email,
            letter.lists.join(", ")
        );
    };
    Ok(plan::letter_send(
        letter,
        focal_point,
        list,
        now.to_zoned_datetime(jiff::tz::TimeZone::UTC),
    ))
}

/// What calendars were told of each event, from the outbox when herald has
/// run with this configuration; empty (SEQUENCE 0) otherwise.
fn calendar_rows(loaded: &crate::scheduler::Loaded) -> HashMap<String, CalendarRow> {
    let dir = &loaded.delivery.state_dir;
    if !dir.join(SqliteOutbox::FILE).exists() {
        return HashMap::new();
    }
    SqliteOutbox::open(dir)
        .and_then(|outbox| outbox.calendar_rows())
        .map(|rows| rows.into_iter().map(|row| (row.event.clone(), row)).collect())
        .unwrap_or_default()
}

/// An update or cancellation notice about `event`, as it would go out now.
pub fn notice_send(
    model: &crate::model::Model,
    event: &str,
    kind: &str,
    focal_point: &crate::model::FocalPoint,
    now: jiff::Timestamp,
) -> anyhow::Result<plan::PlannedSend> {
    let Some((_, found)) = model.event(event) else {
        bail!("no event {event:?} in the roadmaps");
    };
    let cancel = match kind {
        "update" => false,
        "cancellation" => true,
        other => bail!("--notice {other:?}: use update or cancellation"),
    };
    let Some(list) = found.lists.iter().find(|l| focal_point.lists.contains(l)) else {
        bail!(
            "{} is on none of the lists of {event:?}, so gets no notice of it",
            focal_point.email
        );
    };
    Ok(plan::PlannedSend {
        due: now.to_zoned_datetime(found.zone.tz.clone()),
        subject: SendSubject::Notice {
            event: event.to_owned(),
            cancel,
        },
        to: focal_point.email.to_string(),
        list: list.clone(),
        language: focal_point.language.clone(),
        template: kind.to_owned(),
        key: plan::SendKey(format!(
            "{kind}/{event}/preview/{}",
            focal_point.email.to_string().to_lowercase()
        )),
    })
}
