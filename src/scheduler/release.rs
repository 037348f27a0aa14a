//! When the planned sends are released, under the relay's limits: a burst
//! the limits spread starts early enough that its last message leaves by
//! its due instant (never more than `max_early` before it), and every send
//! is ranked by how urgent it is (`key::Urgency`), the order the claims
//! take them in. Pure: the scheduler reads the planned rows and writes the
//! result (`Outbox::set_pace`).

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::key::SendKind;
use crate::model::Model;
use crate::outbox::{Entry, Pace};
use crate::pace::{Limits, releases};

/// The release and urgency of each planned entry.
///
/// Only reminders and letters are released early: an update or a
/// cancellation waits out its `notice_delay` (undoing the change in that
/// time withdraws it), and goes first at its due instant anyway, being
/// the most urgent. A retry goes at its next attempt, and is not part of a
/// burst.
pub fn pace(model: &Model, limits: &Limits, max_early: SignedDuration, planned: &[Entry]) -> Vec<Pace> {
    let spread = |entry: &Entry| !entry.spec.key.kind().is_notice() && entry.next_attempt.is_none();
    let mut bursts: BTreeMap<Timestamp, u64> = BTreeMap::new();
    for entry in planned.iter().filter(|entry| spread(entry)) {
        *bursts.entry(entry.spec.due).or_default() += 1;
    }
    let dues: Vec<(Timestamp, u64)> = bursts.into_iter().collect();
    let released: BTreeMap<Timestamp, Timestamp> = dues
        .iter()
        .map(|&(due, _)| due)
        .zip(releases(limits, max_early, &dues))
        .collect();
    planned
        .iter()
        .map(|entry| {
            let due = entry.spec.due;
            let release_at = released
                .get(&due)
                .filter(|&&release| release < due && spread(entry))
                .copied();
            Pace {
                key: entry.spec.key.clone(),
                release_at,
                urgent_by: urgent_by(model, entry),
            }
        })
        .collect()
}

/// When the event a reminder or notice is about starts; `None` (its due
/// instant) for a letter, or an event the model no longer has.
fn urgent_by(model: &Model, entry: &Entry) -> Option<Timestamp> {
    let key = &entry.spec.key;
    if key.kind() == SendKind::Letter {
        return None;
    }
    let (_, event) = model.event(key.subject())?;
    crate::plan::event_urgent_by(model, event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::AddressKey;
    use crate::key::SendKey;
    use crate::outbox::{SendSpec, State};

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn model() -> Model {
        crate::config::example_model()
    }

    fn planned(key: SendKey, due: &str) -> Entry {
        Entry {
            spec: SendSpec {
                recipient: key.address().to_owned(),
                key,
                list: "member-states".to_owned(),
                language: "en".to_owned(),
                template: "reminder".to_owned(),
                due: at(due),
                zone: "UTC".to_owned(),
            },
            state: State::Planned,
            revision: 1,
            attempts: 0,
            next_attempt: None,
            last_reply: None,
            reason: None,
            updated_at: at(due),
            sent_at: None,
            too_late: false,
        }
    }

    #[test]
    fn a_burst_is_released_early_but_not_a_notice_and_each_knows_its_event_s_start() {
        let model = model();
        let due = "2017-10-01T19:00:00Z";
        let address = |i: usize| AddressKey::of(&format!("fp{i}@example.org"));
        let mut entries: Vec<Entry> = (0..3)
            .map(|i| planned(SendKey::reminder("first-reading", "1d", &address(i)), due))
            .collect();
        entries.push(planned(
            SendKey::notice(SendKind::Cancellation, "first-reading", 1, &address(9)),
            due,
        ));
        let limits = Limits {
            per_minute: Some(1),
            ..Limits::default()
        };
        let pace = pace(&model, &limits, SignedDuration::from_mins(30), &entries);
        // Three a minute apart: the first two minutes early.
        assert_eq!(pace[0].release_at, Some(at("2017-10-01T18:58:00Z")));
        assert!(pace[..3].iter().all(|p| p.release_at == pace[0].release_at));
        assert_eq!(pace[3].release_at, None, "a notice waits for its due instant");
        // The first reading starts a day after its "1d" reminders.
        let start = Some(at("2017-10-02T19:00:00Z"));
        assert!(pace.iter().all(|p| p.urgent_by == start), "{pace:?}");
        // Without a limit that holds them back, nothing is early.
        let one_go = pace_of_unlimited(&model, &entries);
        assert!(one_go.iter().all(|p| p.release_at.is_none()));
    }

    fn pace_of_unlimited(model: &Model, entries: &[Entry]) -> Vec<Pace> {
        pace(model, &Limits::default(), SignedDuration::from_mins(30), entries)
    }
}
