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
    let all_day_at = model.settings().reminders.all_day_at;
    Some(event.anchor(all_day_at)?.timestamp())
}
