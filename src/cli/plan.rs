//! `herald plan`: what will be sent, when, to whom.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use serde::Serialize;

use crate::clock::{Clock, parse_instant};
use crate::plan::{self, PlannedSend, Planner, SendSubject, Slot, Source, Window};

/// One row of `plan --json`; its own type, so that the model can change
/// without breaking scripts that read this.
#[derive(Serialize)]
struct JsonSend {
    due: String,
    due_utc: String,
    time_zone: String,
    kind: &'static str,
    roadmap: Option<String>,
    event: Option<String>,
    letter: Option<String>,
    lead: Option<String>,
    to: String,
    list: String,
    language: String,
    template: String,
    key: String,
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
    let notices = pending_notices(&model, clock.now(), window);
    let planner = Planner::new(&model);
    let slots = planner.slots(window);
    // A plan can have millions of lines: they are written as they are
    // made, never all kept.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if json {
        let sends = notices
            .into_iter()
            .chain(slots.iter().flat_map(|slot| planner.sends(slot)));
        let mut serializer = serde_json::Serializer::pretty(&mut out);
        serde::Serializer::collect_seq(&mut serializer, sends.map(json_row))?;
        writeln!(out)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let total = print_table(&mut out, &planner, &notices, &slots)?;
    if total == 0 {
        let all = planner.slots(Window::default());
        let has_sends = |slot: &&Slot| !planner.recipients(slot).is_empty();
        if let (Some(first), Some(last)) = (all.iter().find(has_sends), all.iter().rev().find(has_sends)) {
            writeln!(
                out,
                "(the whole plan runs from {} to {}; use --from and --until to see other times)",
                first.due.timestamp(),
                last.due.timestamp()
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn json_row(send: PlannedSend) -> JsonSend {
    let kind = send.subject.kind();
    let (roadmap, event, lead, letter) = match send.subject {
        SendSubject::Reminder { roadmap, event, lead } => (Some(roadmap), Some(event), Some(lead), None),
        SendSubject::Letter { letter } => (None, None, None, Some(letter)),
        SendSubject::Notice { event, .. } => (None, Some(event), None, None),
    };
    JsonSend {
        due: send.due.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        due_utc: send.due.timestamp().to_string(),
        time_zone: send.due.time_zone().iana_name().unwrap_or("UTC").to_owned(),
        kind,
        roadmap,
        event,
        letter,
        lead,
        to: send.to,
        list: send.list,
        language: send.language,
        template: send.template,
        key: send.key.0,
    }
}

/// One line of the table: the due instant as shown, what, and to whom.
struct Row<'a> {
    due: &'a str,
    kind: &'static str,
    what: &'a str,
    lead: &'a str,
    to: &'a str,
    language: &'a str,
}

const HEADER: Row<'static> = Row {
    due: "DUE",
    kind: "KIND",
    what: "EVENT/LETTER",
    lead: "LEAD",
    to: "TO",
    language: "LANG",
};

/// Prints the notices, then every send of `slots`, as a table with aligned
/// columns, and a summary line; returns how many sends it printed.
///
/// The rows are made twice, once to measure the columns and once to print
/// them, so that the table never has to be held in memory.
fn print_table(
    out: &mut impl Write,
    planner: &Planner<'_>,
    notices: &[PlannedSend],
    slots: &[Slot<'_>],
) -> std::io::Result<usize> {
    let mut widths = [0usize; 5];
    let mut sends = 0usize;
    let mut recipients: HashSet<String> = HashSet::new();
    for_each_row(planner, notices, slots, |row| {
        for (width, cell) in widths.iter_mut().zip([row.due, row.kind, row.what, row.lead, row.to]) {
            *width = (*width).max(cell.chars().count());
        }
        sends += 1;
        if !recipients.contains(row.to) {
            recipients.insert(row.to.to_owned());
        }
        Ok(())
    })?;
    for (width, cell) in widths
        .iter_mut()
        .zip([HEADER.due, HEADER.kind, HEADER.what, HEADER.lead, HEADER.to])
    {
        *width = (*width).max(cell.chars().count());
    }
    let mut write_row = |row: Row<'_>| {
        let [due, kind, what, lead, to] = widths;
        writeln!(
            out,
            "{:<due$}  {:<kind$}  {:<what$}  {:<lead$}  {:<to$}  {}",
            row.due, row.kind, row.what, row.lead, row.to, row.language
        )
    };
    write_row(HEADER)?;
    for_each_row(planner, notices, slots, write_row)?;
    let recipients = recipients.len();
    writeln!(
        out,
        "{sends} send{} to {recipients} recipient{}",
        if sends == 1 { "" } else { "s" },
        if recipients == 1 { "" } else { "s" }
    )?;
    Ok(sends)
}

/// Calls `f` with each row of the table, in order.
fn for_each_row(
    planner: &Planner<'_>,
    notices: &[PlannedSend],
    slots: &[Slot<'_>],
    mut f: impl FnMut(Row<'_>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    for send in notices {
        let due = shown(&send.due);
        let (what, lead) = match &send.subject {
            SendSubject::Reminder { event, lead, .. } => (event.as_str(), lead.as_str()),
            SendSubject::Letter { letter } => (letter.as_str(), ""),
            SendSubject::Notice { event, .. } => (event.as_str(), ""),
        };
        f(Row {
            due: &due,
            kind: send.subject.kind(),
            what,
            lead,
            to: &send.to,
            language: &send.language,
        })?;
    }
    for slot in slots {
        let due = shown(&slot.due);
        let (kind, what, lead) = match slot.source {
            Source::Reminder { event, lead } => ("reminder", event.id.as_str(), lead.as_str()),
            Source::Letter(letter) => ("letter", letter.id.as_str(), ""),
        };
        for recipient in planner.recipients(slot) {
            let focal_point = recipient.focal_point;
            f(Row {
                due: &due,
                kind,
                what,
                lead,
                to: focal_point.email.as_ref(),
                language: &focal_point.language,
            })?;
        }
    }
    Ok(())
}

/// A due instant as the table shows it, in its own zone.
fn shown(due: &jiff::ZonedDateTime) -> String {
    due.strftime("%Y-%m-%d %H:%M %Z").to_string()
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
