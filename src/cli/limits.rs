//! What the relay's limits will do to the plan, as `check` and `plan` print
//! it: the hours and days over `per_hour` and `per_day`, the slots that
//! would leave late, and those that start early to leave on time. The
//! foresight itself is `crate::foresight`'s; this file gathers its inputs
//! (the configured limits, the outbox's last day) and prints.

use std::io::Write;

use jiff::{SignedDuration, Timestamp, ZonedDateTime};

use super::place::Place;
use crate::foresight::{Foresight, Load, Period};
use crate::key::SendKind;
use crate::outbox::{Entry, Outbox};
use crate::pace::Limits;
use crate::plan::{PlannedSend, Planner, Slot, Source};
use crate::scheduler::Loaded;
use crate::send::Transport;

/// How many late or early slots, hours or days are listed before the rest
/// is only counted: a plan of 500 events can have hundreds of late slots.
const LISTED: usize = 10;

/// The relay's limits and `max_early`, when herald.toml sets any limit.
pub(super) fn configured(loaded: &Loaded) -> Option<(Limits, SignedDuration)> {
    match &loaded.delivery.transport {
        Transport::Smtp(smtp) if !smtp.limits().is_unlimited() => Some((smtp.limits(), smtp.max_early)),
        _ => None,
    }
}

/// What was already sent in the day before the plan's start, which counts
/// against the limits, and where that knowledge comes from, in words.
pub(super) struct Sent {
    pub at: Vec<Timestamp>,
    pub how: String,
}

/// The configuration's outbox as `check` reads it for the limits: what
/// was sent in the last day, and the sends of each slot already made.
pub(super) struct Made {
    outbox: Option<Box<dyn Outbox>>,
    place: Place,
    late_window: SignedDuration,
}

impl Made {
    /// Opens the outbox, if herald has run with this state directory or
    /// `[state]` names a database (with a warning when it cannot be read).
    pub fn open(loaded: &Loaded) -> Made {
        let place = Place::of(&loaded.delivery);
        Made {
            outbox: super::existing_outbox(&place, OUTBOX_UNREAD),
            place,
            late_window: loaded.delivery.late_window,
        }
    }

    /// The sends of `slot` the outbox already has and will not send again
    /// (`scheduler::settled_sends`, in key order): a burst begun early, a
    /// lead reached before its event moved, a recipient suppressed. They do
    /// not count against the limits again. A failure to read is warned of
    /// once, then the rest of the plan is counted whole.
    pub fn settled(&mut self, slot: &Slot<'_>, now: Timestamp) -> Vec<Entry> {
        let Some(outbox) = &self.outbox else {
            return Vec::new();
        };
        match crate::scheduler::settled_sends(outbox.as_ref(), slot, now, self.late_window) {
            Ok(entries) => entries,
            Err(err) => {
                super::warn_unread(&self.place, OUTBOX_UNREAD, &err);
                self.outbox = None;
                Vec::new()
            }
        }
    }

    /// What was sent in the 24 hours before `now` (see [`sent_before`]).
    pub fn sent_before(&self, now: Timestamp) -> Sent {
        sent_before(self.outbox.as_deref(), &self.place, now)
    }
}

/// What the foresight does when the outbox cannot be read.
const OUTBOX_UNREAD: &str = "the relay's limits are foreseen as if nothing was sent in the last 24 hours";

/// The messages `outbox` (that at `place`) counts as having reached the
/// relay in the 24 hours before `now`. Without an outbox (herald has not
/// run with this state directory, or it cannot be read, with a warning)
/// the plan is foreseen as if nothing was.
pub(super) fn sent_before(outbox: Option<&dyn Outbox>, place: &Place, now: Timestamp) -> Sent {
    let assumed = |why: &str| Sent {
        at: Vec::new(),
        how: format!("assuming nothing was sent in the 24 hours before now: {why}"),
    };
    let Some(outbox) = outbox else {
        return if place.exists() {
            assumed(&format!("the outbox in {place} cannot be read"))
        } else {
            assumed(&format!("no outbox in {place}"))
        };
    };
    let day_before = now - SignedDuration::from_hours(24);
    // What the mailer counts against the limits, read the way it reads it
    // (the indexed attempts that reached the relay), not every sent row.
    match outbox.departures_since(day_before) {
        Ok(departures) => {
            let at: Vec<Timestamp> = departures
                .into_iter()
                .filter(|&at| at > day_before && at <= now)
                .collect();
            let how = format!(
                "counting the {} message{} sent in the 24 hours before now (the outbox in {place})",
                at.len(),
                plural(at.len()),
            );
            Sent { at, how }
        }
        Err(err) => {
            super::warn_unread(place, OUTBOX_UNREAD, &err);
            assumed(&format!("the outbox in {place} cannot be read"))
        }
    }
}

/// Nothing known of what was sent before `from`, a time other than now.
pub(super) fn nothing_sent_before(from: Timestamp) -> Sent {
    Sent {
        at: Vec::new(),
        how: format!("assuming nothing was sent in the 24 hours before {from}"),
    }
}

/// What a slot of the foresight is, for its line: kind, event or letter,
/// lead, due instant.
pub(super) struct Label<'a> {
    kind: SendKind,
    what: &'a str,
    lead: &'a str,
    due: &'a ZonedDateTime,
}

impl std::fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.what)?;
        if !self.lead.is_empty() {
            write!(f, " {}", self.lead)?;
        }
        write!(f, " due {}", self.due.strftime("%Y-%m-%d %H:%M %Z"))
    }
}

/// The loads of a plan, and what each is: collected slot by slot (and
/// notice by notice) as a command goes through the plan.
#[derive(Default)]
pub(super) struct Loads<'a> {
    pub loads: Vec<Load>,
    pub labels: Vec<Label<'a>>,
}

impl<'a> Loads<'a> {
    /// A slot of `count` recipients; its place among the loads, if it has
    /// any recipient.
    pub fn slot(&mut self, planner: &Planner<'a>, slot: &'a Slot<'a>, count: usize) -> Option<usize> {
        let (what, lead) = match slot.source {
            Source::Reminder { event, lead } => (event.id.as_str(), lead.as_str()),
            Source::Letter(letter) => (letter.id.as_str(), ""),
        };
        self.push(
            Load {
                due: slot.due.timestamp(),
                count: count as u64,
                urgency: planner.urgency(slot),
            },
            Label {
                kind: slot.kind(),
                what,
                lead,
                due: &slot.due,
            },
        )
    }

    /// Update and cancellation notices, one load per event and due
    /// instant; the place of each notice's load.
    pub fn notices(&mut self, notices: &'a [PlannedSend]) -> Vec<Option<usize>> {
        let mut places = Vec::with_capacity(notices.len());
        for group in notices
            .chunk_by(|a, b| (a.kind(), a.key.subject(), &a.due) == (b.kind(), b.key.subject(), &b.due))
        {
            let first = &group[0];
            let place = self.push(
                Load {
                    due: first.due.timestamp(),
                    count: group.len() as u64,
                    urgency: crate::key::Urgency::new(first.kind(), first.due.timestamp()),
                },
                Label {
                    kind: first.kind(),
                    what: first.key.subject(),
                    lead: "",
                    due: &first.due,
                },
            );
            places.extend(std::iter::repeat_n(place, group.len()));
        }
        places
    }

    fn push(&mut self, load: Load, label: Label<'a>) -> Option<usize> {
        if load.count == 0 {
            return None;
        }
        self.loads.push(load);
        self.labels.push(label);
        Some(self.loads.len() - 1)
    }
}

/// Which command prints: `check` indents its report and only counts the
/// slots that start early; `plan` lists them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Report {
    Check,
    Plan,
}

/// Prints the foresight: the limits and what the count of the last day
/// rests on, then the calendar hours and days over their limit and the late
/// slots (warnings), then the slots that start early (a note).
pub(super) fn print(
    out: &mut impl Write,
    report: Report,
    foresight: &Foresight,
    labels: &[Label<'_>],
    sent: &Sent,
) -> std::io::Result<()> {
    let indent = if report == Report::Check { "  " } else { "" };
    writeln!(
        out,
        "{indent}relay limits: {} (hours and days in UTC; {})",
        describe(&foresight.limits),
        sent.how
    )?;
    let late: Vec<_> = foresight.late().collect();
    let early: Vec<_> = foresight.early().collect();
    if foresight.overruns.is_empty() && late.is_empty() {
        writeln!(
            out,
            "{indent}  the plan keeps within them: no hour or day over, no send late"
        )?;
    }
    for period in [Period::Hour, Period::Day] {
        let over: Vec<_> = foresight.overruns.iter().filter(|o| o.period == period).collect();
        let Some(first) = over.first() else {
            continue;
        };
        let (noun, format) = match period {
            Period::Hour => ("hour", "%Y-%m-%d %H:00"),
            Period::Day => ("day", "%Y-%m-%d"),
        };
        writeln!(
            out,
            "{indent}warning: {} {noun}{} (UTC) hold{} more sends than {} = {}:",
            over.len(),
            plural(over.len()),
            if over.len() == 1 { "s" } else { "" },
            period.setting(),
            first.limit
        )?;
        for overrun in over.iter().take(LISTED) {
            writeln!(
                out,
                "{indent}  {}: {} sends",
                overrun.start.strftime(format),
                overrun.count
            )?;
        }
        more(out, indent, over.len(), &format!("{noun}s"))?;
    }
    if !late.is_empty() {
        let messages: u64 = late.iter().map(|(_, pace)| pace.late).sum();
        let latest = late
            .iter()
            .map(|(_, pace)| pace.late_by)
            .max()
            .unwrap_or_default();
        writeln!(
            out,
            "{indent}warning: {} slot{} would leave late under these limits ({messages} message{} after their due instant, the latest by {}):",
            late.len(),
            plural(late.len()),
            plural(messages as usize),
            friendly(latest),
        )?;
        for (index, pace) in late.iter().take(LISTED) {
            writeln!(
                out,
                "{indent}  {}: {} of {} late, the last by {}",
                labels[*index],
                pace.late,
                pace.count,
                friendly(pace.late_by)
            )?;
        }
        more(out, indent, late.len(), "late slots")?;
    }
    if early.is_empty() {
        return Ok(());
    }
    let earliest = early.iter().filter_map(|(_, pace)| pace.early_by()).max();
    let earliest = earliest.map_or_else(String::new, friendly);
    match report {
        Report::Check => writeln!(
            out,
            "{indent}note: {} early so that {} last message leaves on time, at most {earliest} early (`herald plan` lists {})",
            slots_start(early.len()),
            if early.len() == 1 { "its" } else { "their" },
            if early.len() == 1 { "it" } else { "them" },
        )?,
        Report::Plan => {
            writeln!(
                out,
                "note: {} early so that {} last message leaves on time:",
                slots_start(early.len()),
                if early.len() == 1 { "its" } else { "their" },
            )?;
            for (index, pace) in early.iter().take(LISTED) {
                let by = pace.early_by().map_or_else(String::new, friendly);
                writeln!(out, "  {}: starts {by} early", labels[*index])?;
            }
            more(out, indent, early.len(), "slots that start early")?;
        }
    }
    Ok(())
}

/// "… and 12 more", when a list was cut, with where to see it whole.
fn more(out: &mut impl Write, indent: &str, total: usize, what: &str) -> std::io::Result<()> {
    if total > LISTED {
        writeln!(
            out,
            "{indent}  … and {} more {what} (`herald plan --json` gives every send's `pace`)",
            total - LISTED
        )?;
    }
    Ok(())
}

/// "per_minute = 30, per_day = 10000, max_early is …" as set.
fn describe(limits: &Limits) -> String {
    [
        ("per_minute", limits.per_minute),
        ("per_hour", limits.per_hour),
        ("per_day", limits.per_day),
    ]
    .into_iter()
    .filter_map(|(name, limit)| limit.map(|n| format!("{name} = {n}")))
    .collect::<Vec<_>>()
    .join(", ")
}

/// A duration as a reader says it: "23h 30m", "1m 58s", and from a day
/// on in days and hours ("7d 22h"; minutes no longer matter then).
fn friendly(duration: SignedDuration) -> String {
    const DAY: i64 = 86_400;
    let seconds = duration.as_secs();
    if seconds < DAY {
        return format!("{duration:#}");
    }
    let (days, hours) = (seconds / DAY, seconds % DAY / 3_600);
    if hours == 0 {
        format!("{days}d")
    } else {
        format!("{days}d {hours}h")
    }
}

/// "1 slot starts", "3 slots start".
fn slots_start(n: usize) -> String {
    if n == 1 {
        "1 slot starts".to_owned()
    } else {
        format!("{n} slots start")
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Whether the state directory's outbox is to be read for what was sent:
/// only when the plan starts now (a plan from another time has no last day
/// the outbox could tell).
pub(super) fn starts_now(from: Option<&str>) -> bool {
    from.is_none_or(|from| from == "now")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(friendly(SignedDuration::from_secs(80)), "1m 20s");
        assert_eq!(
            friendly(SignedDuration::from_secs(22 * 3600 + 30 * 60)),
            "22h 30m"
        );
        assert_eq!(friendly(SignedDuration::from_hours(24)), "1d");
        assert_eq!(friendly(SignedDuration::from_secs(190 * 3600 + 59)), "7d 22h");
    }
}
