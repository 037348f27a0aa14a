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
use crate::model::{Event, EventStatus, Model, Schedule};
use crate::outbox::{CalendarRow, SendSpec};

/// The two kinds of notice; also their template families.
pub const UPDATE: &str = "update";
pub const CANCELLATION: &str = "cancellation";

/// The calendar rows to save and the notices to send.
pub fn calendar_changes(
    model: &Model,
    rows: &[CalendarRow],
    now: Timestamp,
) -> (Vec<CalendarRow>, Vec<SendSpec>) {
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
            let snapshot = serde_json::to_string(&EventSnapshot::of(event)).unwrap_or_default();
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
                CANCELLATION
            } else {
                UPDATE
            };
            if announce {
                notices.extend(notice_sends(model, event, kind, notice_number, now));
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
        let Some(event) = serde_json::from_str::<EventSnapshot>(&row.snapshot)
            .ok()
            .and_then(|s| s.to_event())
        else {
            continue;
        };
        let to_come = event
            .anchor(all_day_at)
            .is_some_and(|start| start.timestamp() > now);
        let announce = to_come && model.roadmap(&event.roadmap).is_none_or(|r| r.notices);
        let notice_number = row.notices + u32::from(announce);
        if announce {
            notices.extend(notice_sends(model, &event, CANCELLATION, notice_number, now));
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

/// One notice per focal point on the event's lists, due now.
fn notice_sends(model: &Model, event: &Event, kind: &str, number: u32, now: Timestamp) -> Vec<SendSpec> {
    model
        .members_of(&event.lists)
        .map(|(focal_point, list)| SendSpec {
            key: format!(
                "{kind}/{}/{number}/{}",
                event.id,
                focal_point.email.to_string().to_lowercase()
            ),
            kind: kind.to_owned(),
            subject: event.id.clone(),
            lead: None,
            recipient: focal_point.email.to_string(),
            list: list.to_owned(),
            language: focal_point.language.clone(),
            template: kind.to_owned(),
            due: now,
            zone: event.zone.name.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Environment, load};

    fn model() -> Model {
        load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
            &Environment::default(),
        )
        .unwrap()
        .model
    }

    fn event_mut<'a>(model: &'a mut Model, id: &str) -> &'a mut Event {
        model
            .roadmaps_mut()
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
        let (saved, notices) = calendar_changes(&model, &[], now);
        assert!(notices.is_empty());
        assert_eq!(saved.len(), 12, "every dated event, not the ongoing one");
        let rows = merge(&[], saved);
        assert!(
            calendar_changes(&model, &rows, now).0.is_empty(),
            "no change, nothing to save"
        );

        // The first reading moves a day: SEQUENCE 1 and an update to its 9 readers.
        let event = event_mut(&mut model, "first-reading");
        event.schedule = Schedule::Day {
            date: jiff::civil::date(2017, 10, 3),
            hours: event.schedule.hours().cloned(),
        };
        let (saved, notices) = calendar_changes(&model, &rows, now);
        assert_eq!(notices.len(), 9);
        assert!(
            notices
                .iter()
                .all(|n| n.kind == UPDATE && n.key.starts_with("update/first-reading/1/"))
        );
        assert_eq!(saved[0].sequence, 1);
        let rows = merge(&rows, saved);

        // Only the room changes: an update, the same SEQUENCE, a new key.
        event_mut(&mut model, "first-reading").room = Some("Conference Room 4".into());
        let (saved, notices) = calendar_changes(&model, &rows, now);
        assert_eq!((saved[0].sequence, notices.len()), (1, 9));
        assert!(notices[0].key.starts_with("update/first-reading/2/"));
        let rows = merge(&rows, saved);

        // Cancelled: a cancellation, SEQUENCE 2.
        event_mut(&mut model, "first-reading").status = EventStatus::Cancelled;
        let (saved, notices) = calendar_changes(&model, &rows, now);
        assert_eq!(
            (saved[0].sequence, notices.len(), notices[0].kind.as_str()),
            (2, 9, CANCELLATION)
        );
    }

    #[test]
    fn removed_events_are_cancelled_past_ones_and_quiet_roadmaps_say_nothing() {
        let mut model = model();
        let now = BEFORE.parse().unwrap();
        let rows = merge(&[], calendar_changes(&model, &[], now).0);
        // Removed from the configuration.
        model.roadmaps()[1]
            .events
            .retain(|e| e.id != "informal-consultations-2017-10-05");
        let (saved, notices) = calendar_changes(&model, &rows, now);
        assert_eq!(notices.len(), 9);
        assert!(
            notices
                .iter()
                .all(|n| n.kind == CANCELLATION && n.subject == "informal-consultations-2017-10-05")
        );
        assert!(saved.iter().any(|r| r.removed && r.sequence == 1));
        let rows = merge(&rows, saved);
        assert!(
            calendar_changes(&model, &rows, now).1.is_empty(),
            "cancelled once"
        );

        // Moved, but into the past: remembered, not announced.
        let event = event_mut(&mut model, "first-reading");
        event.schedule = Schedule::Day {
            date: jiff::civil::date(2017, 9, 1),
            hours: None,
        };
        let (saved, notices) = calendar_changes(&model, &rows, now);
        assert!(notices.is_empty());
        assert_eq!(saved.len(), 1);
        assert_eq!(saved[0].sequence, 1);

        // A roadmap with notices = false.
        let mut quiet = self::model();
        let quiet_rows = merge(&[], calendar_changes(&quiet, &[], now).0);
        quiet.roadmaps_mut().iter_mut().for_each(|r| r.notices = false);
        event_mut(&mut quiet, "first-reading").status = EventStatus::Cancelled;
        let (saved, notices) = calendar_changes(&quiet, &quiet_rows, now);
        assert!(notices.is_empty());
        assert_eq!(saved[0].sequence, 1, "the SEQUENCE still rises");
    }
}
