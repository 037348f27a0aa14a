//! Roadmap changes -> update and cancellation notices, and the SEQUENCE of
//! each event's invitation.
//!
//! A pure function of the model, what calendars were last told (the
//! outbox's calendar rows) and the time. The first time herald sees an
//! event it only remembers it. Afterwards, a change of start, end or status
//! raises the SEQUENCE (RFC 5546 §2.1.4) and, for an event still to come,
//! sends an update (or, when it is cancelled or removed, a cancellation) to
//! the event's lists; a change of venue alone sends an update with the same
//! SEQUENCE. A new note or link is no change here (neither is in the
//! signature, the location or the snapshot): the next reminder carries it. An event moved into the past fires nothing, and neither does
//! an event of a roadmap with `notices = false`, also when that roadmap is
//! removed (its snapshot remembers the setting).
//!
//! Notices wait `notice_delay` (10 minutes by default) after the change
//! that caused them: a roadmap saved half written loses its last events
//! for a moment, and a change undone within the delay must send nothing.
//! The calendar row remembers what calendars knew before the change until
//! the notices go; the next reconcile that finds the model back at that
//! state withdraws them.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::calendar::{self, EventSnapshot};
use crate::key::{SendKey, SendKind};
use crate::model::{Event, EventStatus, Schedule};
use crate::outbox::CalendarRow;
use crate::plan::{PlannedSend, Planner};

/// What a reconcile changes in what calendars are told.
#[derive(Debug, Default)]
pub struct CalendarChanges {
    /// The calendar rows to save (inserted or replaced).
    pub rows: Vec<CalendarRow>,
    /// The notices to plan, each to a focal point on the event's lists, due
    /// `notice_delay` after now.
    pub notices: Vec<PlannedSend>,
    /// Notices waiting in the outbox that must not go any more.
    pub withdrawn: Vec<Withdrawn>,
    /// Why the notices just planned wait, one entry per event, for the log.
    pub held: Vec<Held>,
}

/// The waiting notices about one change of one event, withdrawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawn {
    pub event: String,
    /// Their number (see [`crate::key::KeyPrefix::notice`]).
    pub number: u32,
    /// Why, in words, for the outbox's record.
    pub why: String,
}

impl Withdrawn {
    /// Whether `key` is one of the withdrawn notices.
    pub fn covers(&self, key: &SendKey) -> bool {
        key.kind().is_notice() && key.subject() == self.event && key.notice_number() == Some(self.number)
    }
}

/// Notices planned about one change of one event, which wait until `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub event: String,
    pub kind: SendKind,
    pub count: usize,
    pub until: Timestamp,
    /// What changed: "start moved from … to …".
    pub why: String,
}

/// What calendars knew of an event before a change whose notices wait:
/// kept with its calendar row (as JSON) until they go, so that the change
/// can be undone without a word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Told {
    signature: String,
    location: Option<String>,
    snapshot: String,
    previous: Option<String>,
    removed: bool,
}

impl Told {
    /// What calendars know from `row`, when no notice about it waits.
    fn of(row: &CalendarRow) -> Told {
        Told {
            signature: row.signature.clone(),
            location: row.location.clone(),
            snapshot: row.snapshot.clone(),
            previous: row.previous.clone(),
            removed: row.removed,
        }
    }

    fn to_json(&self) -> String {
        serde_json::to_string(self).expect("strings, options and a boolean always serialise")
    }

    /// Whether an event with this `signature` and `location`, in the
    /// configuration, is what calendars were told.
    fn matches(&self, signature: &str, location: &Option<String>) -> bool {
        !self.removed && self.signature == signature && self.location == *location
    }
}

/// Whether notices about `row`'s last change still wait at `now`, and what
/// calendars knew before it (what `row` says, when nothing waits). They
/// wait until `held_until`, and only while the outbox still has them
/// planned (`planned`): after a clock set back, notices that went out
/// are not waiting, and undoing their change is announced.
fn told_of(row: &CalendarRow, now: Timestamp, planned: &dyn Fn(&str, u32) -> bool) -> (bool, Told) {
    if let (Some(until), Some(json)) = (row.held_until, &row.told)
        && now < until
        && planned(&row.event, row.notices)
    {
        match serde_json::from_str(json) {
            Ok(told) => return (true, told),
            Err(err) => tracing::warn!(
                event = %row.event,
                error = %err,
                "what calendars knew before the event's last change cannot be read; undoing the change will be announced"
            ),
        }
    }
    (false, Told::of(row))
}

/// The calendar rows to save, the notices to plan and the waiting ones to
/// withdraw, from the model, the outbox's calendar rows and the time;
/// `planned` says whether the notices numbered `number` about `event` are
/// planned in the outbox (not sent yet).
///
/// Notices are due `notice_delay` after `now`, and the row remembers what
/// calendars knew before ([`Told`]) until then: a change undone meanwhile
/// (the model matches it again) withdraws them, and a further change
/// replaces them with notices about the whole change since. The SEQUENCE
/// and the notice count never go back, so no key and no SEQUENCE is used
/// twice.
pub fn calendar_changes(
    planner: &Planner<'_>,
    rows: &[CalendarRow],
    planned: &dyn Fn(&str, u32) -> bool,
    now: Timestamp,
) -> CalendarChanges {
    let model = planner.model();
    let by_event: HashMap<&str, &CalendarRow> = rows.iter().map(|r| (r.event.as_str(), r)).collect();
    let policy = &model.settings().reminders;
    let (all_day_at, delay) = (policy.all_day_at, policy.notice_delay);
    let mut changes = CalendarChanges::default();
    for roadmap in model.roadmaps() {
        for event in &roadmap.events {
            if matches!(event.schedule, Schedule::Ongoing) {
                continue;
            }
            let signature = calendar::sequence_signature(event);
            let location = calendar::location(event);
            let snapshot = EventSnapshot::of(event, roadmap.notices).to_json();
            let Some(row) = by_event.get(event.id.as_str()) else {
                changes.rows.push(CalendarRow {
                    event: event.id.clone(),
                    sequence: 0,
                    signature,
                    location,
                    snapshot,
                    previous: None,
                    removed: false,
                    notices: 0,
                    held_until: None,
                    told: None,
                });
                continue;
            };
            let (waiting, told) = told_of(row, now, planned);
            if waiting && told.matches(&signature, &location) {
                // Undone before its notices went: calendars already know
                // what the model says again.
                changes.withdrawn.push(Withdrawn {
                    event: event.id.clone(),
                    number: row.notices,
                    why: format!("the change was undone within notice_delay ({delay:#}); calendars already have the event as it is"),
                });
                changes.rows.push(CalendarRow {
                    location,
                    snapshot,
                    previous: told.previous,
                    removed: false,
                    held_until: None,
                    told: None,
                    signature,
                    ..(*row).clone()
                });
                continue;
            }
            if !row.removed && row.signature == signature && row.location == location {
                if row.snapshot != snapshot {
                    // A new title or the like: remembered, not announced.
                    changes.rows.push(CalendarRow {
                        snapshot,
                        ..(*row).clone()
                    });
                }
                continue;
            }
            if waiting {
                changes.withdrawn.push(superseded(row, delay));
            }
            let to_come = event
                .anchor(all_day_at)
                .is_some_and(|start| start.timestamp() > now);
            let kind = if event.status == EventStatus::Cancelled {
                SendKind::Cancellation
            } else {
                SendKind::Update
            };
            let timing_changed = row.signature != signature || row.removed;
            let why = describe(&told, Some(event));
            let saved = CalendarRow {
                event: event.id.clone(),
                sequence: row.sequence + u32::from(timing_changed),
                signature,
                location,
                snapshot,
                previous: Some(told.snapshot.clone()),
                removed: false,
                notices: row.notices,
                held_until: None,
                told: None,
            };
            let announce = (roadmap.notices && to_come).then_some((event, kind, why));
            changes.announce(planner, saved, announce, &told, now, delay);
        }
    }
    // Events gone from the configuration are cancelled in calendars.
    for row in rows
        .iter()
        .filter(|r| !r.removed && model.event(&r.event).is_none())
    {
        let (waiting, told) = told_of(row, now, planned);
        if waiting && told.removed {
            // Back, then gone again, before the notices about its return
            // went: calendars already have it cancelled.
            changes.withdrawn.push(Withdrawn {
                event: row.event.clone(),
                number: row.notices,
                why: format!("the event was removed again within notice_delay ({delay:#}); calendars already have it cancelled"),
            });
            changes.rows.push(CalendarRow {
                signature: told.signature,
                location: told.location,
                snapshot: told.snapshot,
                previous: told.previous,
                removed: true,
                held_until: None,
                told: None,
                ..row.clone()
            });
            continue;
        }
        // What calendars know of it, not a change still waiting, is what
        // they are told to cancel.
        let (event, notices) = match EventSnapshot::parse(&told.snapshot)
            .and_then(|s| Ok((s.to_event().ok_or(calendar::SnapshotError::Values)?, s.notices)))
        {
            Ok(read) => read,
            Err(why) => {
                tracing::warn!(event = %row.event, %why, "an event removed from the configuration cannot be cancelled in calendars: what they were told of it cannot be read");
                continue;
            }
        };
        if waiting {
            changes.withdrawn.push(superseded(row, delay));
        }
        let to_come = event
            .anchor(all_day_at)
            .is_some_and(|start| start.timestamp() > now);
        // A quiet roadmap stays quiet when it is removed: the snapshot
        // remembers its setting, as the roadmap is gone.
        let quiet = !notices || model.roadmap(&event.roadmap).is_some_and(|r| !r.notices);
        let saved = CalendarRow {
            sequence: row.sequence + 1,
            signature: told.signature.clone(),
            location: told.location.clone(),
            snapshot: told.snapshot.clone(),
            previous: Some(told.snapshot.clone()),
            removed: true,
            held_until: None,
            told: None,
            ..row.clone()
        };
        let why = describe(&told, None);
        let announce = (to_come && !quiet).then_some((&event, SendKind::Cancellation, why));
        changes.announce(planner, saved, announce, &told, now, delay);
    }
    changes
}

impl CalendarChanges {
    /// Saves `row`, the event's state after a change, and with `announce`
    /// plans its notices due `delay` after `now`, remembering `told` in
    /// the row until then.
    fn announce(
        &mut self,
        planner: &Planner<'_>,
        mut row: CalendarRow,
        announce: Option<(&Event, SendKind, String)>,
        told: &Told,
        now: Timestamp,
        delay: SignedDuration,
    ) {
        if let Some((event, kind, why)) = announce {
            row.notices += 1;
            let due = now.checked_add(delay).unwrap_or(now);
            let notices = planner.notices(
                event,
                kind,
                row.notices,
                &due.to_zoned_datetime(event.zone.tz.clone()),
            );
            if due > now && !notices.is_empty() {
                row.held_until = Some(due);
                row.told = Some(told.to_json());
                self.held.push(Held {
                    event: event.id.clone(),
                    kind,
                    count: notices.len(),
                    until: due,
                    why,
                });
            }
            self.notices.extend(notices);
        }
        self.rows.push(row);
    }
}

/// The waiting notices about `row`'s last change, replaced by notices
/// about the whole change since calendars were last told.
fn superseded(row: &CalendarRow, delay: SignedDuration) -> Withdrawn {
    Withdrawn {
        event: row.event.clone(),
        number: row.notices,
        why: format!(
            "the event changed again within notice_delay ({delay:#}); what calendars are told now covers the whole change"
        ),
    }
}

/// What changed between what calendars were told and `now` (the event,
/// or `None` when it is gone from the configuration), in words.
fn describe(told: &Told, now: Option<&Event>) -> String {
    let Some(event) = now else {
        return "removed from the configuration".to_owned();
    };
    if told.removed {
        return "back in the configuration".to_owned();
    }
    let before = match EventSnapshot::from_json(&told.snapshot) {
        Ok(before) => before,
        // Only the log's words suffer; the notice is planned all the same.
        Err(_) => return "changed (what calendars were told before cannot be read)".to_owned(),
    };
    let mut parts = Vec::new();
    match (before.status, event.status) {
        (EventStatus::Confirmed, EventStatus::Cancelled) => parts.push("cancelled".to_owned()),
        (EventStatus::Cancelled, EventStatus::Confirmed) => parts.push("no longer cancelled".to_owned()),
        _ => {}
    }
    match (calendar::span_of(&before), calendar::span_of(event)) {
        (Some(old), Some(new)) => {
            if old.start != new.start {
                parts.push(format!(
                    "start moved from {} to {}",
                    shown(&old.start),
                    shown(&new.start)
                ));
            }
            if old.end != new.end {
                parts.push(format!(
                    "end moved from {} to {}",
                    shown(&old.end),
                    shown(&new.end)
                ));
            }
        }
        (None, None) => {}
        (_, None) => parts.push("no longer scheduled".to_owned()),
        (None, Some(new)) => parts.push(format!("scheduled from {}", shown(&new.start))),
    }
    let location = calendar::location(event);
    if told.location != location {
        let place = |p: &Option<String>| p.clone().unwrap_or_else(|| "none".to_owned());
        parts.push(format!(
            "place changed from {} to {}",
            place(&told.location),
            place(&location)
        ));
    }
    parts.join("; ")
}

/// A DTSTART or DTEND value ("20990301T200000Z" or
/// "20990301") as a reader writes it: "2099-03-01T20:00:00Z", "2099-03-01".
fn shown(value: &str) -> String {
    let digits =
        |range: std::ops::Range<usize>| value.get(range).filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
    let date = (digits(0..4), digits(4..6), digits(6..8));
    match (value.len(), date) {
        (8, (Some(y), Some(m), Some(d))) => format!("{y}-{m}-{d}"),
        (16, (Some(y), Some(m), Some(d))) if value.ends_with('Z') => {
            match (digits(9..11), digits(11..13), digits(13..15)) {
                (Some(h), Some(min), Some(s)) => format!("{y}-{m}-{d}T{h}:{min}:{s}Z"),
                _ => value.to_owned(),
            }
        }
        _ => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, Model};

    /// [`calendar_changes`] of `model`.
    fn changes(model: &Model, rows: &[CalendarRow], now: Timestamp) -> (Vec<CalendarRow>, Vec<PlannedSend>) {
        let changes = calendar_changes(&Planner::new(model), rows, &all_planned, now);
        (changes.rows, changes.notices)
    }

    fn model() -> Model {
        crate::config::example_model()
    }

    /// `model` with the event `id` changed by `change`.
    fn edit_event(model: Model, id: &str, change: impl FnOnce(&mut Event)) -> Model {
        model.edit_roadmaps(|roadmaps| change(event_mut(roadmaps, id)))
    }

    fn event_mut<'a>(roadmaps: &'a mut [crate::model::Roadmap], id: &str) -> &'a mut Event {
        roadmaps
            .iter_mut()
            .flat_map(|r| r.events.iter_mut())
            .find(|e| e.id == id)
            .unwrap()
    }

    const BEFORE: &str = "2017-09-20T00:00:00Z";

    /// Applies `saved` over `rows`, as the outbox does.
    fn merge(rows: &[CalendarRow], saved: Vec<CalendarRow>) -> Vec<CalendarRow> {
        let mut all: HashMap<String, CalendarRow> =
            rows.iter().map(|r| (r.event.clone(), r.clone())).collect();
        for row in saved {
            all.insert(row.event.clone(), row);
        }
        all.into_values().collect()
    }

    #[test]
    fn first_sight_is_remembered_silently_then_changes_are_announced() {
        let mut model = model();
        let now = BEFORE.parse().unwrap();
        let (saved, notices) = changes(&model, &[], now);
        assert!(notices.is_empty());
        assert_eq!(saved.len(), 12, "every dated event, not the ongoing one");
        let rows = merge(&[], saved);
        assert!(
            changes(&model, &rows, now).0.is_empty(),
            "no change, nothing to save"
        );

        // The first reading moves a day: SEQUENCE 1 and an update to its 9 readers.
        model = edit_event(model, "first-reading", |event| {
            event.schedule = Schedule::Day {
                date: jiff::civil::date(2017, 10, 3),
                hours: event.schedule.hours().cloned(),
            }
        });
        let (saved, notices) = changes(&model, &rows, now);
        assert_eq!(notices.len(), 9);
        assert!(
            notices.iter().all(
                |n| n.kind() == SendKind::Update && n.key.as_str().starts_with("update/first-reading/1/")
            )
        );
        assert_eq!(saved[0].sequence, 1);
        let rows = merge(&rows, saved);

        // Only the room changes: an update, the same SEQUENCE, a new key.
        model = edit_event(model, "first-reading", |event| {
            event.room = Some("Conference Room 4".into())
        });
        let (saved, notices) = changes(&model, &rows, now);
        assert_eq!((saved[0].sequence, notices.len()), (1, 9));
        assert!(notices[0].key.as_str().starts_with("update/first-reading/2/"));
        let rows = merge(&rows, saved);

        // Cancelled: a cancellation, SEQUENCE 2.
        model = edit_event(model, "first-reading", |event| {
            event.status = EventStatus::Cancelled
        });
        let (saved, notices) = changes(&model, &rows, now);
        assert_eq!(
            (saved[0].sequence, notices.len(), notices[0].kind()),
            (2, 9, SendKind::Cancellation)
        );
    }

    /// A note or a link is not what calendars are told changed: editing
    /// them saves nothing and plans nothing (the next reminder carries them).
    #[test]
    fn a_new_note_or_link_is_no_change_for_calendars() {
        let model = model();
        let now = BEFORE.parse().unwrap();
        let rows = merge(&[], changes(&model, &[], now).0);
        let (_, event) = model.event("first-reading").unwrap();
        let mut link = event.links.first().cloned().expect("the example's link");
        link.url = "https://example.org/elsewhere".to_owned();
        assert!(event.note.is_some(), "the example's note");
        let model = edit_event(model, "first-reading", |event| {
            event.note = None;
            event.links = vec![link.clone(), link];
        });
        let (saved, notices) = changes(&model, &rows, now);
        assert!(saved.is_empty() && notices.is_empty(), "{saved:?} {notices:?}");
    }

    #[test]
    fn removed_events_are_cancelled_past_ones_and_quiet_roadmaps_say_nothing() {
        let mut model = model();
        let now = BEFORE.parse().unwrap();
        let rows = merge(&[], changes(&model, &[], now).0);
        // Removed from the configuration.
        model = model.edit_roadmaps(|roadmaps| {
            roadmaps[1]
                .events
                .retain(|e| e.id != "informal-consultations-2017-10-05")
        });
        let (saved, notices) = changes(&model, &rows, now);
        assert_eq!(notices.len(), 9);
        assert!(
            notices.iter().all(|n| n.kind() == SendKind::Cancellation
                && n.key.subject() == "informal-consultations-2017-10-05")
        );
        assert!(saved.iter().any(|r| r.removed && r.sequence == 1));
        let rows = merge(&rows, saved);
        assert!(changes(&model, &rows, now).1.is_empty(), "cancelled once");

        // Moved, but into the past: remembered, not announced.
        model = edit_event(model, "first-reading", |event| {
            event.schedule = Schedule::Day {
                date: jiff::civil::date(2017, 9, 1),
                hours: None,
            }
        });
        let (saved, notices) = changes(&model, &rows, now);
        assert!(notices.is_empty());
        assert_eq!(saved.len(), 1);
        assert_eq!(saved[0].sequence, 1);

        // A roadmap with notices = false.
        let quiet = self::model();
        let quiet_rows = merge(&[], changes(&quiet, &[], now).0);
        let quiet = quiet.edit_roadmaps(|roadmaps| {
            roadmaps.iter_mut().for_each(|r| r.notices = false);
            event_mut(roadmaps, "first-reading").status = EventStatus::Cancelled;
        });
        let (saved, notices) = changes(&quiet, &quiet_rows, now);
        assert!(notices.is_empty());
        let first_reading = saved.iter().find(|r| r.event == "first-reading").unwrap();
        assert_eq!(first_reading.sequence, 1, "the SEQUENCE still rises");
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// As if every notice planned were still in the outbox, unsent.
    fn all_planned(_event: &str, _number: u32) -> bool {
        true
    }

    /// The example model without the 2017 roadmap's last events, as a
    /// file cut short by a save in progress leaves it.
    fn truncated(model: Model) -> Model {
        model.edit_roadmaps(|roadmaps| {
            let roadmap = roadmaps
                .iter_mut()
                .find(|r| r.id == "gcm-modalities-2017")
                .unwrap();
            roadmap.events.truncate(2);
        })
    }

    #[test]
    fn notices_wait_for_notice_delay_and_a_change_undone_meanwhile_withdraws_them() {
        let whole = model();
        let now = at(BEFORE);
        let rows = merge(&[], changes(&whole, &[], now).0);

        // The file is cut short: cancellations of the four events to come,
        // due ten minutes later, and the row remembers what calendars know.
        let cut = calendar_changes(&Planner::new(&truncated(whole.clone())), &rows, &all_planned, now);
        assert!(cut.withdrawn.is_empty());
        assert_eq!(cut.held.len(), 4, "{:?}", cut.held);
        let due = at("2017-09-20T00:10:00Z");
        assert!(
            cut.notices
                .iter()
                .all(|n| n.kind() == SendKind::Cancellation && n.due.timestamp() == due)
        );
        let first = cut.held.iter().find(|h| h.event == "first-reading").unwrap();
        assert_eq!(
            (first.kind, first.count, first.until, first.why.as_str()),
            (SendKind::Cancellation, 9, due, "removed from the configuration")
        );
        let rows = merge(&rows, cut.rows);
        let row = rows.iter().find(|r| r.event == "first-reading").unwrap();
        assert_eq!((row.removed, row.held_until, row.sequence), (true, Some(due), 1));

        // The rest of the file lands five minutes later: the waiting
        // notices are withdrawn, nothing new is said, and neither the
        // SEQUENCE nor the notice count goes back.
        let whole_again = calendar_changes(
            &Planner::new(&whole),
            &rows,
            &all_planned,
            at("2017-09-20T00:05:00Z"),
        );
        assert!(whole_again.notices.is_empty(), "{:?}", whole_again.notices);
        let mut withdrawn: Vec<_> = whole_again
            .withdrawn
            .iter()
            .map(|w| (w.event.as_str(), w.number))
            .collect();
        withdrawn.sort();
        assert_eq!(
            withdrawn,
            [
                ("additional-consultations", 1),
                ("conclusion-of-negotiations", 1),
                ("first-reading", 1),
                ("informal-consultations-2017-10-05", 1)
            ]
        );
        let key = SendKey::parse("cancellation/first-reading/1/jm.dubois@swiss-mission.example.org").unwrap();
        assert!(whole_again.withdrawn.iter().any(|w| w.covers(&key)));
        let rows = merge(&rows, whole_again.rows);
        let row = rows.iter().find(|r| r.event == "first-reading").unwrap();
        assert_eq!(
            (row.removed, row.held_until, row.sequence, row.notices),
            (false, None, 1, 1)
        );
        assert!(
            changes(&whole, &rows, at("2017-09-20T00:06:00Z")).0.is_empty(),
            "at rest again"
        );

        // A change that stays: its notices are numbered on, and once the
        // delay is over nothing is withdrawn.
        let moved = edit_event(whole, "first-reading", |event| {
            event.schedule = Schedule::Day {
                date: jiff::civil::date(2017, 10, 3),
                hours: event.schedule.hours().cloned(),
            }
        });
        let later = at("2017-09-21T00:00:00Z");
        let move_changes = calendar_changes(&Planner::new(&moved), &rows, &all_planned, later);
        assert_eq!(move_changes.notices.len(), 9);
        assert!(
            move_changes.notices[0]
                .key
                .as_str()
                .starts_with("update/first-reading/2/")
        );
        assert_eq!(
            move_changes.held[0].why,
            "start moved from 2017-10-02T19:00:00Z to 2017-10-03T19:00:00Z; end moved from 2017-10-02T22:00:00Z to 2017-10-03T22:00:00Z"
        );
        let rows = merge(&rows, move_changes.rows);
        let after = calendar_changes(
            &Planner::new(&moved),
            &rows,
            &all_planned,
            at("2017-09-21T00:10:00Z"),
        );
        assert!(after.withdrawn.is_empty() && after.notices.is_empty() && after.rows.is_empty());
    }

    #[test]
    fn a_second_change_within_notice_delay_replaces_the_waiting_notices() {
        let model = model();
        let now = at(BEFORE);
        let rows = merge(&[], changes(&model, &[], now).0);
        let day = |d| {
            move |event: &mut Event| {
                event.schedule = Schedule::Day {
                    date: jiff::civil::date(2017, 10, d),
                    hours: event.schedule.hours().cloned(),
                }
            }
        };
        let once = edit_event(model.clone(), "first-reading", day(3));
        let first = calendar_changes(&Planner::new(&once), &rows, &all_planned, now);
        let rows = merge(&rows, first.rows);
        let twice = edit_event(model, "first-reading", day(4));
        let second = calendar_changes(
            &Planner::new(&twice),
            &rows,
            &all_planned,
            at("2017-09-20T00:02:00Z"),
        );
        assert_eq!(
            second
                .withdrawn
                .iter()
                .map(|w| (w.event.as_str(), w.number))
                .collect::<Vec<_>>(),
            [("first-reading", 1)]
        );
        assert_eq!(second.notices.len(), 9);
        assert!(
            second.notices[0]
                .key
                .as_str()
                .starts_with("update/first-reading/2/")
        );
        assert_eq!(second.notices[0].due.timestamp(), at("2017-09-20T00:12:00Z"));
        // The notice says the whole change since calendars were told.
        assert!(
            second.held[0]
                .why
                .starts_with("start moved from 2017-10-02T19:00:00Z to 2017-10-04T19:00:00Z"),
            "{}",
            second.held[0].why
        );
        let row = second.rows.iter().find(|r| r.event == "first-reading").unwrap();
        assert_eq!(row.sequence, 2, "each change of time raises it");
    }

    #[test]
    fn removing_a_roadmap_with_notices_off_sends_nothing() {
        let quiet = model().edit_roadmaps(|roadmaps| {
            roadmaps.iter_mut().for_each(|r| r.notices = false);
        });
        let now = at(BEFORE);
        let rows = merge(&[], changes(&quiet, &[], now).0);
        let gone = quiet.edit_roadmaps(|roadmaps| roadmaps.retain(|r| r.id != "gcm-modalities-2017"));
        let removed = calendar_changes(&Planner::new(&gone), &rows, &all_planned, now);
        assert!(removed.notices.is_empty(), "{:?}", removed.notices);
        assert!(removed.held.is_empty());
        let first_reading = removed.rows.iter().find(|r| r.event == "first-reading").unwrap();
        assert!(first_reading.removed, "remembered as removed all the same");
    }

    #[test]
    fn a_snapshot_kept_before_the_setting_was_remembered_announces_its_removal() {
        let model = model();
        let now = at(BEFORE);
        let rows: Vec<CalendarRow> = merge(&[], changes(&model, &[], now).0)
            .into_iter()
            .map(|row| CalendarRow {
                snapshot: row.snapshot.replace(",\"notices\":true", ""),
                ..row
            })
            .collect();
        assert!(!rows[0].snapshot.contains("notices"), "{}", rows[0].snapshot);
        let gone = model.edit_roadmaps(|roadmaps| roadmaps.retain(|r| r.id != "gcm-modalities-2017"));
        let notices = changes(&gone, &rows, now).1;
        assert_eq!(
            notices
                .iter()
                .filter(|n| n.key.subject() == "first-reading")
                .count(),
            9
        );
    }

    #[test]
    fn undoing_a_change_whose_notices_went_out_is_announced() {
        // The notices of a change went out early (the clock was set back
        // after they went): the outbox no longer has them planned, so
        // undoing the change is a change calendars must hear of.
        let whole = model();
        let now = at(BEFORE);
        let rows = merge(&[], changes(&whole, &[], now).0);
        let cut = calendar_changes(&Planner::new(&truncated(whole.clone())), &rows, &all_planned, now);
        let rows = merge(&rows, cut.rows);
        let sent = |_: &str, _: u32| false;
        let back = calendar_changes(&Planner::new(&whole), &rows, &sent, at("2017-09-20T00:05:00Z"));
        assert!(back.withdrawn.is_empty());
        let first_reading: Vec<_> = back
            .notices
            .iter()
            .filter(|n| n.key.subject() == "first-reading")
            .collect();
        assert_eq!(first_reading.len(), 9);
        assert!(
            first_reading[0]
                .key
                .as_str()
                .starts_with("update/first-reading/2/")
        );
        let held = back.held.iter().find(|h| h.event == "first-reading").unwrap();
        assert_eq!(held.why, "back in the configuration");
    }
}
