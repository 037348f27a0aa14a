//! `herald plan`: what will be sent, when, to whom.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::limits;
use super::place::Place;
use super::suppressions::{self, Lookup};
use crate::clock::{Clock, parse_instant};
use crate::foresight::{self, Foresight, Period};
use crate::key::{AddressKey, SendKind};
use crate::model::Model;
use crate::outbox::{Entry, Outbox, State, Suppression};
use crate::plan::{PlannedSend, Planner, Slot, Source, Window};
use crate::scheduler::{Choice, Choices};

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
    /// Why the send will not go, its recipient being suppressed on its
    /// list (or on every list); `null` otherwise.
    suppressed: Option<JsonSuppressed<'a>>,
    /// What the reader's own choice changed of the send (its language,
    /// the zone its times are shown in); `null` when nothing.
    #[serde(rename = "override")]
    choice: Option<JsonChoice<'a>>,
}

/// The `override` of a `plan --json` row: each `null` when the
/// configuration's value stands.
#[derive(Serialize)]
struct JsonChoice<'a> {
    language: Option<&'a str>,
    zone: Option<&'a str>,
}

impl JsonChoice<'_> {
    fn of(choice: &Choice) -> JsonChoice<'_> {
        JsonChoice {
            language: choice.language.as_deref(),
            zone: choice.zone.as_deref(),
        }
    }
}

/// How the table marks a send a reader's choice changed.
fn choice_note(choice: &Choice) -> String {
    format!("(reader's choice: {choice})")
}

/// The `suppressed` of a `plan --json` row.
#[derive(Serialize)]
struct JsonSuppressed<'a> {
    reason: &'a str,
    since: String,
    /// `null`: every list.
    list: Option<&'a str>,
}

impl JsonSuppressed<'_> {
    fn of(suppression: &Suppression) -> JsonSuppressed<'_> {
        JsonSuppressed {
            reason: &suppression.reason,
            since: suppression.since.to_string(),
            list: suppression.list.as_deref(),
        }
    }
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
    let place = Place::of(&loaded.delivery);
    let outbox = super::existing_outbox(&place, OUTBOX_UNREAD);
    let outbox = outbox.as_deref();
    // Planned as the daemon plans: with the readers' choices.
    let loaded = super::with_overrides(loaded, outbox);
    let model = &loaded.model;
    let window = Window {
        from: Some(parse_instant(from.unwrap_or("now"), clock).map_err(|m| anyhow!("--from: {m}"))?),
        until: until
            .map(|u| parse_instant(u, clock).map_err(|m| anyhow!("--until: {m}")))
            .transpose()?,
    };
    let planner = Planner::new(model);
    let now = clock.now();
    let place = &place;
    let notices = pending_notices(&planner, outbox, place, now, window);
    let suppressed = Lookup::read(outbox, place, SUPPRESSIONS_UNREAD);
    let slots = planner.slots(window);
    let settled = Settled::read(outbox, place, &slots, now, loaded.delivery.late_window);
    let foreseen = limits::configured(&loaded).map(|(limits, max_early)| {
        let start = window.from.unwrap_or(now);
        let sent = if limits::starts_now(from) {
            limits::sent_before(outbox, place, start)
        } else {
            limits::nothing_sent_before(start)
        };
        let mut loads = limits::Loads::default();
        let notice_load = loads.notices(&notices);
        // The sends already made are not made again: only the rest of a
        // slot counts against the limits.
        let slot_load = slots
            .iter()
            .enumerate()
            .map(|(index, slot)| {
                let recipients = planner.recipients(slot);
                // Nor do those to suppressed recipients.
                let count = if suppressed.is_empty() {
                    recipients.len() - settled.count(index)
                } else {
                    recipients
                        .iter()
                        .filter(|recipient| {
                            let address = planner.key_address(recipient);
                            settled.entry(index, address).is_none()
                                && suppressed.of(address, recipient.list).is_none()
                        })
                        .count()
                };
                loads.slot(&planner, slot, count)
            })
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
        let shown = Shown {
            notices: &notices,
            slots: &slots,
            settled: &settled,
            suppressed: &suppressed,
            choices: &loaded.choices,
        };
        print_json(&mut out, &planner, &shown, foreseen.as_ref())?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let shown = Shown {
        notices: &notices,
        slots: &slots,
        settled: &settled,
        suppressed: &suppressed,
        choices: &loaded.choices,
    };
    let total = print_table(&mut out, model, &planner, &shown)?;
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

/// What `plan` says when the outbox cannot be read: opened, or read for
/// the notices, or for the sends already made.
const OUTBOX_UNREAD: &str = "the plan is shown without the notices a reload would send, and with the sends already made as if still to come";
const NOTICES_UNREAD: &str = "the plan is shown without the notices a reload would send";
const SETTLED_UNREAD: &str = "the plan is shown with the sends already made as if still to come";
const SUPPRESSIONS_UNREAD: &str = "the plan is shown without marking the sends to suppressed recipients";

/// What the plan shows: the notices, then the sends of the slots but the
/// settled ones, those to suppressed recipients marked.
struct Shown<'a, 's> {
    notices: &'a [PlannedSend],
    slots: &'a [Slot<'s>],
    settled: &'a Settled,
    suppressed: &'a Lookup,
    /// What readers' overrides changed, to mark their sends.
    choices: &'a Choices,
}

/// The sends of each slot that the outbox already has and that herald
/// will not send (again) (`scheduler::settled_sends`): the plan leaves
/// them out and says why, so that a lead reached before its event moved
/// is not shown as pending at the new date.
struct Settled {
    /// Per slot, in the order of the slots, its settled entries in key
    /// order (empty without an outbox).
    by_slot: Vec<Vec<Entry>>,
}

impl Settled {
    fn read(
        outbox: Option<&dyn Outbox>,
        place: &Place,
        slots: &[Slot<'_>],
        now: Timestamp,
        late_window: SignedDuration,
    ) -> Settled {
        let Some(outbox) = outbox else {
            return Settled { by_slot: Vec::new() };
        };
        let read: Result<Vec<Vec<Entry>>, _> = slots
            .iter()
            .map(|slot| crate::scheduler::settled_sends(outbox, slot, now, late_window))
            .collect();
        match read {
            Ok(by_slot) => Settled { by_slot },
            Err(err) => {
                super::warn_unread(place, SETTLED_UNREAD, &err);
                Settled { by_slot: Vec::new() }
            }
        }
    }

    /// How many of the `slot`th slot's sends are settled.
    fn count(&self, slot: usize) -> usize {
        self.by_slot.get(slot).map_or(0, Vec::len)
    }

    /// The settled entry of the `slot`th slot's send to `address`, if any.
    fn entry(&self, slot: usize, address: &AddressKey) -> Option<&Entry> {
        let entries = self.by_slot.get(slot)?;
        entries
            .binary_search_by(|entry| entry.spec.key.address().cmp(address.as_str()))
            .ok()
            .map(|found| &entries[found])
    }
}

/// Why the send of `entry`, due at `due` in the plan, is not listed.
fn why_settled(entry: &Entry, due: Timestamp) -> String {
    let previous = || {
        let rule = match entry.spec.key.kind() {
            SendKind::Letter => "a letter already sent is not sent again when its date moves",
            _ => "a lead already reached is not sent again when the event moves",
        };
        format!(
            "for the {}'s previous date, due {}; {rule}",
            entry.spec.key.kind().subject_noun(),
            entry.spec.due.strftime("%Y-%m-%d %H:%M UTC"),
        )
    };
    let reason = entry.reason.as_deref().unwrap_or("no reason recorded");
    match entry.state {
        State::Sent if entry.spec.due != due => format!("sent {}", previous()),
        State::Sending if entry.spec.due != due => format!("being sent {}", previous()),
        State::Sent => "already sent".to_owned(),
        State::Sending => "being sent now".to_owned(),
        State::Failed => format!("failed ({reason}); `herald retry` sends it again"),
        State::Suppressed => format!(
            "{reason}; `herald suppressions remove {}` sends it again",
            entry.spec.recipient
        ),
        State::Skipped | State::Cancelled | State::Planned => format!("{}: {reason}", entry.state),
    }
}

/// Prints the notices, then every send of `slots` but the settled ones,
/// as one JSON array.
fn print_json(
    out: &mut impl Write,
    planner: &Planner<'_>,
    shown: &Shown<'_, '_>,
    foreseen: Option<&Foreseen<'_>>,
) -> anyhow::Result<()> {
    use serde::ser::{SerializeSeq, Serializer};
    let Shown {
        notices,
        slots,
        settled,
        suppressed,
        choices,
    } = *shown;
    let mut serializer = serde_json::Serializer::pretty(&mut *out);
    let mut rows = serializer.serialize_seq(None)?;
    for (index, send) in notices.iter().enumerate() {
        let due = JsonDue::of(&send.due);
        let pace = foreseen.and_then(|f| f.pace(f.notice_load[index]));
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
            suppressed: suppressed
                .of(&AddressKey::of(send.key.address()), &send.list)
                .map(JsonSuppressed::of),
            choice: choices
                .of(&AddressKey::of(send.key.address()))
                .map(JsonChoice::of),
        })?;
    }
    for (index, slot) in slots.iter().enumerate() {
        // What every send of the slot shares is made once.
        let due = JsonDue::of(&slot.due);
        let pace = foreseen.and_then(|f| f.pace(f.slot_load[index]));
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
            let address = planner.key_address(&recipient);
            if settled.entry(index, address).is_some() {
                continue;
            }
            prefix.write_key(address, &mut key);
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
                suppressed: suppressed.of(address, recipient.list).map(JsonSuppressed::of),
                choice: choices.of(address).map(JsonChoice::of),
            })?;
        }
    }
    rows.end()?;
    writeln!(out)?;
    Ok(())
}

/// One line of the table: the due instant as shown, what, and to whom;
/// and why it will not go, if its recipient is suppressed.
struct Row<'a> {
    due: Cow<'a, str>,
    kind: &'static str,
    what: &'a str,
    lead: &'a str,
    to: &'a str,
    language: &'a str,
    suppressed: Option<String>,
    choice: Option<&'a Choice>,
}

/// What the table says after a send's language: why it will not go (its
/// recipient is suppressed), and what the reader's own choice changed.
fn notes(suppressed: Option<String>, choice: Option<&Choice>) -> Option<String> {
    match (suppressed, choice) {
        (None, None) => None,
        (Some(why), None) => Some(why),
        (None, Some(choice)) => Some(choice_note(choice)),
        (Some(why), Some(choice)) => Some(format!("{why} {}", choice_note(choice))),
    }
}

const HEADER: Row<'static> = Row {
    due: Cow::Borrowed("DUE"),
    kind: "KIND",
    what: "EVENT/LETTER",
    lead: "LEAD",
    to: "TO",
    language: "LANG",
    suppressed: None,
    choice: None,
};

/// Prints the notices, then every send of `slots` but the settled ones,
/// as a table with aligned columns, a line per slot and reason saying which
/// settled sends were left out and why, and a summary line; returns how
/// many sends it printed.
///
/// The recipients are found twice, once to measure the columns and once to
/// print them, so that the table is never held in memory; what a slot's
/// rows share is formatted once per slot.
fn print_table(
    out: &mut impl Write,
    model: &Model,
    planner: &Planner<'_>,
    shown: &Shown<'_, '_>,
) -> std::io::Result<usize> {
    let Shown {
        notices,
        slots,
        settled,
        suppressed,
        choices,
    } = *shown;
    let width = |text: &str| text.chars().count();
    let address_widths: Vec<usize> = model
        .focal_points()
        .iter()
        .map(|fp| width(fp.email.as_ref()))
        .collect();
    let notice_rows: Vec<Row<'_>> = notices
        .iter()
        .map(|send| notice_row(send, suppressed, choices))
        .collect();
    // The language is padded only on the rows that say more after it.
    let language_width = model
        .focal_points()
        .iter()
        .map(|fp| width(&fp.language))
        .chain(notices.iter().map(|send| width(&send.language)))
        .fold(width(HEADER.language), usize::max);
    let mut n_suppressed = notice_rows.iter().filter(|row| row.suppressed.is_some()).count();
    let slot_rows: Vec<SlotRow<'_>> = slots.iter().map(SlotRow::of).collect();
    let mut widths = HEADER.widths(width);
    for row in &notice_rows {
        widths = max_widths(widths, row.widths(width));
    }
    let mut sends = notice_rows.len();
    let mut on_a_slot = vec![false; model.focal_points().len()];
    // Per slot with settled sends among its recipients: why, and how many.
    let mut left_out: Vec<(usize, String, usize)> = Vec::new();
    for (index, (slot, row)) in slots.iter().zip(&slot_rows).enumerate() {
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
            if let Some(entry) = settled.entry(index, planner.key_address(&recipient)) {
                let why = why_settled(entry, slot.due.timestamp());
                // Only this slot's groups, the last ones: a plan of
                // millions of sends must not search them all each time.
                match left_out
                    .iter_mut()
                    .rev()
                    .take_while(|(i, _, _)| *i == index)
                    .find(|(_, seen, _)| *seen == why)
                {
                    Some((_, _, count)) => *count += 1,
                    None => left_out.push((index, why, 1)),
                }
                continue;
            }
            widths[4] = widths[4].max(address_widths[recipient.index]);
            on_a_slot[recipient.index] = true;
            sends += 1;
            if suppressed
                .of(planner.key_address(&recipient), recipient.list)
                .is_some()
            {
                n_suppressed += 1;
            }
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
    let mut write_row = |row: &Row<'_>| match &row.note() {
        None => writeln!(
            out,
            "{:<due$}  {:<kind$}  {:<what$}  {:<lead$}  {:<to$}  {}",
            row.due, row.kind, row.what, row.lead, row.to, row.language
        ),
        Some(why) => writeln!(
            out,
            "{:<due$}  {:<kind$}  {:<what$}  {:<lead$}  {:<to$}  {:<language_width$}  {why}",
            row.due, row.kind, row.what, row.lead, row.to, row.language
        ),
    };
    write_row(&HEADER)?;
    for row in &notice_rows {
        write_row(row)?;
    }
    let padding = " ".repeat(to);
    for (index, (slot, row)) in slots.iter().zip(&slot_rows).enumerate() {
        let head = format!(
            "{:<due$}  {:<kind$}  {:<what$}  {:<lead$}  ",
            row.due, row.kind, row.what, row.lead
        );
        for recipient in planner.recipients(slot) {
            if settled.entry(index, planner.key_address(&recipient)).is_some() {
                continue;
            }
            out.write_all(head.as_bytes())?;
            let address: &str = recipient.focal_point.email.as_ref();
            out.write_all(address.as_bytes())?;
            out.write_all(&padding.as_bytes()[..to - address_widths[recipient.index]])?;
            out.write_all(b"  ")?;
            let language = &recipient.focal_point.language;
            out.write_all(language.as_bytes())?;
            let address = planner.key_address(&recipient);
            let note = notes(
                suppressed
                    .of(address, recipient.list)
                    .map(suppressions::suppressed_since),
                choices.of(address),
            );
            if let Some(note) = note {
                let pad = language_width.saturating_sub(width(language));
                write!(out, "{:pad$}  {note}", "")?;
            }
            out.write_all(b"\n")?;
        }
    }
    for (index, why, count) in &left_out {
        let row = &slot_rows[*index];
        let lead = if row.lead.is_empty() {
            String::new()
        } else {
            format!(" {}", row.lead)
        };
        writeln!(
            out,
            "(not listed, already in the outbox: {} {}{lead} to {count} recipient{}, {why})",
            row.kind,
            row.what,
            if *count == 1 { "" } else { "s" }
        )?;
    }
    if !notice_rows.is_empty() {
        writeln!(
            out,
            "(update and cancellation notices wait notice_delay ({:#}) after the change that caused them; undoing the change within it withdraws them)",
            model.settings().reminders.notice_delay
        )?;
    }
    let recipients = recipients.len();
    write!(
        out,
        "{sends} send{} to {recipients} recipient{}",
        if sends == 1 { "" } else { "s" },
        if recipients == 1 { "" } else { "s" }
    )?;
    if n_suppressed > 0 {
        write!(
            out,
            ", {n_suppressed} of them suppressed: not sent unless `herald suppressions remove EMAIL` lifts their recipient's suppression"
        )?;
    }
    writeln!(out)?;
    Ok(sends)
}

impl Row<'_> {
    fn note(&self) -> Option<String> {
        notes(self.suppressed.clone(), self.choice)
    }

    /// The widths of the first five columns (the last is not padded).
    fn widths(&self, width: impl Fn(&str) -> usize) -> [usize; 5] {
        [&*self.due, self.kind, self.what, self.lead, self.to].map(width)
    }
}

fn max_widths(a: [usize; 5], b: [usize; 5]) -> [usize; 5] {
    std::array::from_fn(|i| a[i].max(b[i]))
}

/// The row of a notice.
fn notice_row<'a>(send: &'a PlannedSend, suppressed: &Lookup, choices: &'a Choices) -> Row<'a> {
    Row {
        due: Cow::Owned(shown(&send.due)),
        kind: send.kind().as_str(),
        what: send.key.subject(),
        lead: send.key.lead().unwrap_or(""),
        to: &send.to,
        language: &send.language,
        suppressed: suppressed
            .of(&AddressKey::of(send.key.address()), &send.list)
            .map(suppressions::suppressed_since),
        choice: choices.of(&AddressKey::of(send.key.address())),
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
/// outbox, when herald has run with this configuration's state directory
/// or `[state]` names a database).
fn pending_notices(
    planner: &Planner<'_>,
    outbox: Option<&dyn Outbox>,
    place: &Place,
    now: Timestamp,
    window: Window,
) -> Vec<PlannedSend> {
    let Some(outbox) = outbox.filter(|_| window.contains(now)) else {
        return Vec::new();
    };
    crate::scheduler::pending_notices(planner, outbox, now).unwrap_or_else(|err| {
        super::warn_unread(place, NOTICES_UNREAD, &err);
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{KeyPrefix, SendKey};
    use crate::outbox::SendSpec;

    fn entry(key: SendKey, due: &str, state: State, reason: Option<&str>) -> Entry {
        Entry {
            spec: SendSpec {
                key,
                recipient: "a@example.org".into(),
                list: "l".into(),
                language: "en".into(),
                template: "reminder".into(),
                due: due.parse().unwrap(),
                zone: "UTC".into(),
            },
            state,
            revision: 1,
            attempts: 1,
            next_attempt: None,
            last_reply: None,
            reason: reason.map(str::to_owned),
            updated_at: Timestamp::UNIX_EPOCH,
            sent_at: None,
            too_late: false,
        }
    }

    #[test]
    fn the_reason_a_send_is_left_out_says_what_happened_to_it() {
        let address = AddressKey::of("a@example.org");
        let reminder = SendKey::reminder("e", "7d", &address);
        let letter = KeyPrefix::letter("l").key(&address);
        let (old, new) = ("2017-09-25T19:00:00Z", "2017-09-26T19:00:00Z".parse().unwrap());
        assert_eq!(
            why_settled(&entry(reminder.clone(), old, State::Sent, None), new),
            "sent for the event's previous date, due 2017-09-25 19:00 UTC; a lead already reached is not sent again when the event moves"
        );
        assert_eq!(
            why_settled(&entry(letter, old, State::Sent, None), new),
            "sent for the letter's previous date, due 2017-09-25 19:00 UTC; a letter already sent is not sent again when its date moves"
        );
        assert_eq!(
            why_settled(
                &entry(reminder.clone(), old, State::Sent, None),
                old.parse().unwrap()
            ),
            "already sent"
        );
        assert_eq!(
            why_settled(
                &entry(reminder, old, State::Failed, Some("rejected by the server")),
                new
            ),
            "failed (rejected by the server); `herald retry` sends it again"
        );
    }
}
