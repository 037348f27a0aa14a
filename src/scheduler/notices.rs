//! Roadmap changes -> update and cancellation notices, and the SEQUENCE of
//! each event's invitation.
//!
//! A pure function of the model, what calendars were last told (the
//! outbox's calendar rows) and the time. The first time herald sees an
//! event it only remembers it. Afterwards, a change of start, end or status
//! raises the SEQUENCE (RFC 5546 §2.1.4) and, for an event still to come,
//! sends an update (or, when it is cancelled or removed, a cancellation) to
//! the event's lists; a change of venue alone sends an update with the same
//! SEQUENCE. An event moved into the past fires nothing.

use std::collections::HashMap;

use jiff::Timestamp;

use crate::calendar::{self, EventSnapshot};
use crate::key::SendKind;
use crate::model::{EventStatus, Schedule};
use crate::outbox::CalendarRow;
use crate::plan::{PlannedSend, Planner};

/// The calendar rows to save and the notices to send, each to a focal point
/// on the event's lists, due `now` (the kind of a notice is also its
/// template family).
pub fn calendar_changes(
    planner: &Planner<'_>,
    rows: &[CalendarRow],
    now: Timestamp,
) -> (Vec<CalendarRow>, Vec<PlannedSend>) {
    let model = planner.model();
    let by_event: HashMap<&str, &CalendarRow> = rows.iter().map(|r| (r.event.as_str(), r)).collect();
    let all_day_at = model.settings().reminders.all_day_at;
    let mut saved = Vec::new();
    let mut notices = Vec::new();
    for roadmap in model.roadmaps() {
        for event in &roadmap.events {
            if matches!(event.schedule, Schedule::Ongoing) {
                continue;
            }
            let signature = calendar::sequence_signature(event);
            let location = calendar::location(event);
            let snapshot = EventSnapshot::of(event).to_json();
            let to_come = event
                .anchor(all_day_at)
                .is_some_and(|start| start.timestamp() > now);
            let Some(row) = by_event.get(event.id.as_str()) else {
                saved.push(CalendarRow {
                    event: event.id.clone(),
                    sequence: 0,
                    signature,
                    location,
                    snapshot,
                    previous: None,
                    removed: false,
                    notices: 0,
                });
                continue;
            };
            let timing_changed = row.signature != signature || row.removed;
            let place_changed = row.location != location;
            if !timing_changed && !place_changed {
                if row.snapshot != snapshot {
                    // A new title or the like: remembered, not announced.
                    saved.push(CalendarRow {
                        snapshot,
                        ..(*row).clone()
                    });
                }
                continue;
            }
            let announce = roadmap.notices && to_come;
            let sequence = if timing_changed {
                row.sequence + 1
            } else {
                row.sequence
            };
            let notice_number = row.notices + u32::from(announce);
            let kind = if event.status == EventStatus::Cancelled {
                SendKind::Cancellation
            } else {
                SendKind::Update
            };
            if announce {
                notices.extend(planner.notices(
                    event,
                    kind,
                    notice_number,
                    &now.to_zoned_datetime(event.zone.tz.clone()),
                ));
            }
            saved.push(CalendarRow {
                event: event.id.clone(),
                sequence,
                signature,
                location,
                snapshot,
                previous: Some(row.snapshot.clone()),
                removed: false,
                notices: notice_number,
            });
        }
    }
    // Events gone from the configuration are cancelled in calendars.
    for row in rows
        .iter()
        .filter(|r| !r.removed && model.event(&r.event).is_none())
    {
        let event = match EventSnapshot::from_json(&row.snapshot) {
            Ok(event) => event,
            Err(why) => {
                tracing::warn!(event = %row.event, %why, "an event removed from the configuration cannot be cancelled in calendars: what they were told of it cannot be read");
                continue;
            }
        };
        let to_come = event
            .anchor(all_day_at)
            .is_some_and(|start| start.timestamp() > now);
        let announce = to_come && model.roadmap(&event.roadmap).is_none_or(|r| r.notices);
        let notice_number = row.notices + u32::from(announce);
        if announce {
            let due = now.to_zoned_datetime(event.zone.tz.clone());
            notices.extend(planner.notices(&event, SendKind::Cancellation, notice_number, &due));
        }
        saved.push(CalendarRow {
            sequence: row.sequence + 1,
            previous: Some(row.snapshot.clone()),
            removed: true,
            notices: notice_number,
            ..row.clone()
        });
    }
    (saved, notices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Environment, load};
    use crate::model::{Event, Model};

    /// [`calendar_changes`] of `model`.
    fn changes(model: &Model, rows: &[CalendarRow], now: Timestamp) -> (Vec<CalendarRow>, Vec<PlannedSend>) {
        calendar_changes(&Planner::new(model), rows, now)
    }

    fn model() -> Model {
        load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
            &Environment::default(),
        )
        .unwrap()
        .model
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
        assert_eq!(saved[0].sequence, 1, "the SEQUENCE still rises");
    }
}
