//! `herald plan`: what will be sent, when, to whom.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use serde::Serialize;

use crate::clock::{Clock, parse_instant};
use crate::plan::{self, PlannedSend, SendSubject, Window};

/// One row of `plan --json`; its own type, so that the model can change
/// without breaking scripts that read this.
#[derive(Serialize)]
struct JsonSend<'a> {
    due: String,
    due_utc: String,
    time_zone: &'a str,
    kind: &'static str,
    roadmap: Option<&'a str>,
    event: Option<&'a str>,
    letter: Option<&'a str>,
    lead: Option<&'a str>,
    to: &'a str,
    list: &'a str,
    language: &'a str,
    template: &'a str,
    key: &'a str,
}

pub fn run(
    config: &Path,
    clock: &dyn Clock,
    from: Option<&str>,
    until: Option<&str>,
    json: bool,
) -> super::CommandResult {
    let (model, _renderer) = match super::load(config) {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let window = Window {
        from: Some(parse_instant(from.unwrap_or("now"), clock).map_err(|m| anyhow!("--from: {m}"))?),
        until: until
            .map(|u| parse_instant(u, clock).map_err(|m| anyhow!("--until: {m}")))
            .transpose()?,
    };
    let mut sends = pending_notices(&model, clock.now(), window);
    sends.extend(plan::plan(&model, window));
    let mut out = std::io::stdout().lock();
    if json {
        let rows: Vec<JsonSend> = sends.iter().map(json_row).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    print_table(&mut out, &sends)?;
    if sends.is_empty() {
        let all = plan::plan(&model, Window::default());
        if let (Some(first), Some(last)) = (all.first(), all.last()) {
            writeln!(
                out,
                "(the whole plan runs from {} to {}; use --from and --until to see other times)",
                first.due.timestamp(),
                last.due.timestamp()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn json_row(send: &PlannedSend) -> JsonSend<'_> {
    let (roadmap, event, lead, letter) = match &send.subject {
        SendSubject::Reminder { roadmap, event, lead } => (
            Some(roadmap.as_str()),
            Some(event.as_str()),
            Some(lead.as_str()),
            None,
        ),
        SendSubject::Letter { letter } => (None, None, None, Some(letter.as_str())),
        SendSubject::Notice { event, .. } => (None, Some(event.as_str()), None, None),
    };
    JsonSend {
        due: send.due.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        due_utc: send.due.timestamp().to_string(),
        time_zone: send.due.time_zone().iana_name().unwrap_or("UTC"),
        kind: send.subject.kind(),
        roadmap,
        event,
        letter,
        lead,
        to: &send.to,
        list: &send.list,
        language: &send.language,
        template: &send.template,
        key: &send.key.0,
    }
}

fn print_table(out: &mut impl Write, sends: &[PlannedSend]) -> std::io::Result<()> {
    let rows: Vec<[String; 6]> = sends
        .iter()
        .map(|send| {
            let (what, lead) = match &send.subject {
                SendSubject::Reminder { event, lead, .. } => (event.clone(), lead.clone()),
                SendSubject::Letter { letter } => (letter.clone(), String::new()),
                SendSubject::Notice { event, .. } => (event.clone(), String::new()),
            };
            [
                send.due.strftime("%Y-%m-%d %H:%M %Z").to_string(),
                send.subject.kind().to_owned(),
                what,
                lead,
                send.to.clone(),
                send.language.clone(),
            ]
        })
        .collect();
    let header = ["DUE", "KIND", "EVENT/LETTER", "LEAD", "TO", "LANG"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    let recipients = plan::recipients(sends).len();
    writeln!(
        out,
        "{} send{} to {recipients} recipient{}",
        sends.len(),
        if sends.len() == 1 { "" } else { "s" },
        if recipients == 1 { "" } else { "s" }
    )?;
    Ok(())
}

/// The update and cancellation notices the daemon would send now, because
/// the roadmap changed since calendars were last told (read from the
/// outbox, when herald has run with this configuration's state directory).
fn pending_notices(model: &crate::model::Model, now: jiff::Timestamp, window: Window) -> Vec<PlannedSend> {
    use crate::outbox::{Outbox, SqliteOutbox};
    let dir = &model.settings.delivery.state_dir;
    if !window.contains(now) || !dir.join(SqliteOutbox::FILE).exists() {
        return Vec::new();
    }
    let Ok(rows) = SqliteOutbox::open(dir).and_then(|outbox| outbox.calendar_rows()) else {
        return Vec::new();
    };
    let (_, notices) = crate::scheduler::notices::calendar_changes(model, &rows, now);
    notices
        .into_iter()
        .map(|spec| PlannedSend {
            due: now.to_zoned_datetime(jiff::tz::db().get(&spec.zone).unwrap_or(jiff::tz::TimeZone::UTC)),
            subject: SendSubject::Notice {
                event: spec.subject.clone(),
                cancel: spec.kind == "cancellation",
            },
            to: spec.recipient,
            list: spec.list,
            language: spec.language,
            template: spec.template,
            key: plan::SendKey(spec.key),
        })
        .collect()
}
