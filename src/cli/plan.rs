//! `herald plan`: what will be sent, when, to whom.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use serde::Serialize;

use super::limits;
use crate::clock::{Clock, parse_instant};
use crate::foresight::{self, Foresight, Period};
use crate::model::Model;
use crate::plan::{PlannedSend, Planner, Slot, Source, Window};
use crate::scheduler::Loaded;

/// One row of `plan --json`; its own type, so that the model can change
/// without breaking scripts that read this.
#[derive(Serialize)]
struct JsonSend<'a> {
    due: &'a str,
    due_utc: &'a str,
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
    /// What the relay's limits do to the send's slot; `null` without limits.
    pace: Option<&'a JsonPace>,
}

/// The `pace` of a `plan --json` row: when the messages of its slot (every
/// send of the same event, lead and due instant, or letter) would leave
/// under the relay's limits, how many late, and whether the calendar hour
/// or day (UTC) of its due instant holds more sends than `per_hour` or
/// `per_day`.
#[derive(Serialize)]
struct JsonPace {
    first: String,
    last: String,
    late: u64,
    late_by_seconds: i64,
    over: Vec<&'static str>,
}

impl JsonPace {
    fn of(foresight: &Foresight, load: usize) -> JsonPace {
        let pace = &foresight.slots[load];
        JsonPace {
            first: pace.first.to_string(),
            last: pace.last.to_string(),
            late: pace.late,
            late_by_seconds: pace.late_by.as_secs(),
            over: [Period::Hour, Period::Day]
                .into_iter()
                .filter(|&period| foresight.is_over(period, pace.due))
                .map(Period::setting)
                .collect(),
        }
    }
}

/// The foresight of the relay's limits over the plan shown, and which of
/// its loads each notice and slot is.
struct Foreseen<'a> {
    foresight: Foresight,
    loads: limits::Loads<'a>,
    sent: limits::Sent,
    notice_load: Vec<Option<usize>>,
    slot_load: Vec<Option<usize>>,
}

impl Foreseen<'_> {
    fn pace(&self, load: Option<usize>) -> Option<JsonPace> {
        load.map(|load| JsonPace::of(&self.foresight, load))
    }
}

/// The due instant of a row as `plan --json` shows it.
struct JsonDue {
    local: String,
    utc: String,
    time_zone: String,
}

impl JsonDue {
    fn of(due: &jiff::ZonedDateTime) -> JsonDue {
        JsonDue {
            local: due.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
            utc: due.timestamp().to_string(),
            time_zone: due.time_zone().iana_name().unwrap_or("UTC").to_owned(),
        }
    }
}

pub fn run(
    config: &Path,
    clock: &dyn Clock,
    from: Option<&str>,
    until: Option<&str>,
    json: bool,
) -> super::CommandResult {
    let loaded = match super::load(config) {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let model = &loaded.model;
    let window = Window {
        from: Some(parse_instant(from.unwrap_or("now"), clock).map_err(|m| anyhow!("--from: {m}"))?),
        until: until
            .map(|u| parse_instant(u, clock).map_err(|m| anyhow!("--until: {m}")))
            .transpose()?,
    };
    let planner = Planner::new(model);
    let notices = pending_notices(&loaded, &planner, clock.now(), window);
    let slots = planner.slots(window);
    let foreseen = limits::configured(&loaded).map(|(limits, max_early)| {
        let start = window.from.unwrap_or_else(|| clock.now());
        let sent = if limits::starts_now(from) {
            limits::sent_before_now(&loaded, start)
        } else {
            limits::nothing_sent_before(start)
        };
        let mut loads = limits::Loads::default();
        let notice_load = loads.notices(&notices);
        let slot_load = slots
            .iter()
            .map(|slot| loads.slot(&planner, slot, planner.recipients(slot).len()))
            .collect();
        let foresight = foresight::foresee(&limits, max_early, start, &sent.at, &loads.loads);
        Foreseen {
            foresight,
            loads,
            sent,
            notice_load,
            slot_load,
        }
    });
    // A plan can have millions of lines: they are written as they are
    // made, never all kept.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if json {
        print_json(&mut out, &planner, &notices, &slots, foreseen.as_ref())?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let total = print_table(&mut out, model, &planner, &notices, &slots)?;
    if let Some(foreseen) = &foreseen
        && !foreseen.loads.loads.is_empty()
    {
        limits::print(
            &mut out,
            limits::Report::Plan,
            &foreseen.foresight,
            &foreseen.loads.labels,
            &foreseen.sent,
        )?;
    }
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

/// Prints the notices, then every send of `slots`, as one JSON array.
fn print_json(
    out: &mut impl Write,
    planner: &Planner<'_>,
    notices: &[PlannedSend],
    slots: &[Slot<'_>],
    foreseen: Option<&Foreseen<'_>>,
) -> anyhow::Result<()> {
    use serde::ser::{SerializeSeq, Serializer};
    let mut serializer = serde_json::Serializer::pretty(&mut *out);
    let mut rows = serializer.serialize_seq(None)?;
    for (n, send) in notices.iter().enumerate() {
        let due = JsonDue::of(&send.due);
        let pace = foreseen.and_then(|f| f.pace(f.notice_load[n]));
        rows.serialize_element(&JsonSend {
            due: &due.local,
            due_utc: &due.utc,
            time_zone: &due.time_zone,
            kind: send.kind().as_str(),
            roadmap: None,
            event: Some(send.key.subject()),
            letter: None,
            lead: None,
            to: &send.to,
            list: &send.list,
            language: &send.language,
            template: &send.template,
            key: send.key.as_str(),
            pace: pace.as_ref(),
        })?;
    }
    for (n, slot) in slots.iter().enumerate() {
        // What every send of the slot shares is made once.
        let due = JsonDue::of(&slot.due);
        let pace = foreseen.and_then(|f| f.pace(f.slot_load[n]));
        let prefix = slot.key_prefix();
        let (roadmap, event, lead, letter) = match slot.source {
            Source::Reminder { event, lead } => (
                Some(event.roadmap.as_str()),
                Some(event.id.as_str()),
                Some(lead.as_str()),
                None,
            ),
            Source::Letter(letter) => (None, None, None, Some(letter.id.as_str())),
        };
        let template = slot.template();
        let mut key = String::new();
        for recipient in planner.recipients(slot) {
            prefix.write_key(planner.key_address(&recipient), &mut key);
            rows.serialize_element(&JsonSend {
                due: &due.local,
                due_utc: &due.utc,
                time_zone: &due.time_zone,
                kind: slot.kind().as_str(),
                roadmap,
                event,
                letter,
                lead,
                to: recipient.focal_point.email.as_ref(),
                list: recipient.list,
                language: &recipient.focal_point.language,
                template,
                key: &key,
                pace: pace.as_ref(),
            })?;
        }
    }
    rows.end()?;
    writeln!(out)?;
    Ok(())
}

/// One line of the table: the due instant as shown, what, and to whom.
struct Row<'a> {
    due: Cow<'a, str>,
    kind: &'static str,
    what: &'a str,
    lead: &'a str,
    to: &'a str,
    language: &'a str,
}

const HEADER: Row<'static> = Row {
    due: Cow::Borrowed("DUE"),
    kind: "KIND",
    what: "EVENT/LETTER",
    lead: "LEAD",
    to: "TO",
    language: "LANG",
};

/// Prints the notices, then every send of `slots`, as a table with aligned
/// columns, and a summary line; returns how many sends it printed.
///
/// The recipients are found twice, once to measure the columns and once to
/// print them, so that the table is never held in memory; what a slot's
/// rows share is formatted once per slot.
fn print_table(
    out: &mut impl Write,
    model: &Model,
    planner: &Planner<'_>,
    notices: &[PlannedSend],
    slots: &[Slot<'_>],
) -> std::io::Result<usize> {
    let width = |text: &str| text.chars().count();
    let address_widths: Vec<usize> = model
        .focal_points()
        .iter()
        .map(|fp| width(fp.email.as_ref()))
        .collect();
    let notice_rows: Vec<Row<'_>> = notices.iter().map(notice_row).collect();
    let slot_rows: Vec<SlotRow<'_>> = slots.iter().map(SlotRow::of).collect();
    let mut widths = HEADER.widths(width);
    for row in &notice_rows {
        widths = max_widths(widths, row.widths(width));
    }
    let mut sends = notice_rows.len();
    let mut on_a_slot = vec![false; model.focal_points().len()];
    for (slot, row) in slots.iter().zip(&slot_rows) {
        widths = max_widths(
            widths,
            [
                width(&row.due),
                width(row.kind),
                width(row.what),
                width(row.lead),
                0,
            ],
        );
        for recipient in planner.recipients(slot) {
            widths[4] = widths[4].max(address_widths[recipient.index]);
            on_a_slot[recipient.index] = true;
            sends += 1;
        }
    }
    let recipients: HashSet<&str> = notices
        .iter()
        .map(|send| send.to.as_str())
        .chain(
            model
                .focal_points()
                .iter()
                .zip(&on_a_slot)
                .filter(|(_, on)| **on)
                .map(|(fp, _)| fp.email.as_ref()),
        )
        .collect();

    let [due, kind, what, lead, to] = widths;
    let mut write_row = |row: &Row<'_>| {
        writeln!(
            out,
            "{:<due$}  {:<kind$}  {:<what$}  {:<lead$}  {:<to$}  {}",
            row.due, row.kind, row.what, row.lead, row.to, row.language
        )
    };
    write_row(&HEADER)?;
    for row in &notice_rows {
        write_row(row)?;
    }
    let padding = " ".repeat(to);
    for (slot, row) in slots.iter().zip(&slot_rows) {
        let head = format!(
            "{:<due$}  {:<kind$}  {:<what$}  {:<lead$}  ",
            row.due, row.kind, row.what, row.lead
        );
        for recipient in planner.recipients(slot) {
            out.write_all(head.as_bytes())?;
            let address: &str = recipient.focal_point.email.as_ref();
            out.write_all(address.as_bytes())?;
            out.write_all(&padding.as_bytes()[..to - address_widths[recipient.index]])?;
            out.write_all(b"  ")?;
            out.write_all(recipient.focal_point.language.as_bytes())?;
            out.write_all(b"\n")?;
        }
    }
    if !notice_rows.is_empty() {
        writeln!(
            out,
            "(update and cancellation notices wait notice_delay ({:#}) after the change that caused them; undoing the change within it withdraws them)",
            model.settings().reminders.notice_delay
        )?;
    }
    let recipients = recipients.len();
    writeln!(
        out,
        "{sends} send{} to {recipients} recipient{}",
        if sends == 1 { "" } else { "s" },
        if recipients == 1 { "" } else { "s" }
    )?;
    Ok(sends)
}

impl Row<'_> {
    /// The widths of the first five columns (the last is not padded).
    fn widths(&self, width: impl Fn(&str) -> usize) -> [usize; 5] {
        [&*self.due, self.kind, self.what, self.lead, self.to].map(width)
    }
}

fn max_widths(a: [usize; 5], b: [usize; 5]) -> [usize; 5] {
    std::array::from_fn(|i| a[i].max(b[i]))
}

/// The row of a notice.
fn notice_row(send: &PlannedSend) -> Row<'_> {
    Row {
        due: Cow::Owned(shown(&send.due)),
        kind: send.kind().as_str(),
        what: send.key.subject(),
        lead: send.key.lead().unwrap_or(""),
        to: &send.to,
        language: &send.language,
    }
}

/// The cells that every row of a slot shares.
struct SlotRow<'a> {
    due: String,
    kind: &'static str,
    what: &'a str,
    lead: &'a str,
}

impl<'a> SlotRow<'a> {
    fn of(slot: &Slot<'a>) -> SlotRow<'a> {
        let (what, lead) = match slot.source {
            Source::Reminder { event, lead } => (event.id.as_str(), lead.as_str()),
            Source::Letter(letter) => (letter.id.as_str(), ""),
        };
        SlotRow {
            due: shown(&slot.due),
            kind: slot.kind().as_str(),
            what,
            lead,
        }
    }
}

/// A due instant as the table shows it, in its own zone.
fn shown(due: &jiff::ZonedDateTime) -> String {
    due.strftime("%Y-%m-%d %H:%M %Z").to_string()
}

/// The update and cancellation notices the daemon would send now, because
/// the roadmap changed since calendars were last told (read from the
/// outbox, when herald has run with this configuration's state directory).
fn pending_notices(
    loaded: &Loaded,
    planner: &Planner<'_>,
    now: jiff::Timestamp,
    window: Window,
) -> Vec<PlannedSend> {
    if !window.contains(now) {
        return Vec::new();
    }
    let Some(outbox) = super::existing_outbox(&loaded.delivery.state_dir, "the notices a reload would send")
    else {
        return Vec::new();
    };
    crate::scheduler::pending_notices(planner, &outbox, now).unwrap_or_else(|err| {
        super::warn_unread(
            &loaded.delivery.state_dir,
            "the notices a reload would send",
            &err,
        );
        Vec::new()
    })
}
