//! Plan vs. outbox: what to add, cancel, reschedule or record as skipped.
//!
//! A pure function, run at start, on every reload and periodically: a new
//! focal point gets the future sends of its lists, a removed one loses
//! those not yet sent, a moved event moves its sends. Sends already made
//! (sent, failed, skipped) are history and never touched, but for one
//! skipped as too late that is due again.
//!
//! A key names an event, a lead and an address, not a date, so when an
//! event moves each of its leads is still one send: a lead already reached
//! before the move (sent, or in flight, failed or skipped) is not sent again
//! for the new date, and a lead not yet reached follows it ([`standing`]).

use std::collections::{HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};

use crate::key::SendKey;
use crate::outbox::{Changes, Entry, SendSpec, State};
use crate::plan::PlannedSend;
use crate::scheduler::row::spec_of;

/// What becomes of a planned entry that is not in the plan of the window.
#[derive(Debug, Clone, PartialEq)]
pub enum Outside {
    /// The model still makes it, due outside the window (its event
    /// moved): it stays, with its new details.
    Moved(Box<PlannedSend>),
    /// The model no longer makes it: cancelled, with why in words.
    Gone(String),
    /// Not the planner's to judge (a letter sent on demand, a notice).
    Keep,
}

/// Where a send of the plan, due at `due`, stands when the outbox already
/// has its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Planned: it goes out at the plan's due instant (rescheduled if that
    /// changed).
    Planned,
    /// Planned again: cancelled (its focal point or event came back), or
    /// skipped as too late (its event had moved earlier, or the clock was
    /// ahead), and now due in the future or within the late window.
    Revived,
    /// History: sent, in flight, failed, skipped (but as too late and due
    /// again), cancelled and too late, or suppressed. No plan sends it (again): a lead
    /// reached before its event moved is not sent a second time for the
    /// new date.
    Settled,
}

/// Where the send with `entry`'s key, due at `due` in the plan, stands at
/// `now`; the one rule for reconcile and for what `herald plan` lists.
pub fn standing(entry: &Entry, due: Timestamp, now: Timestamp, late_window: SignedDuration) -> Standing {
    let due_again = now.duration_since(due) <= late_window;
    match entry.state {
        State::Planned => Standing::Planned,
        State::Cancelled if due_again => Standing::Revived,
        State::Skipped if entry.too_late && due_again => Standing::Revived,
        // A suppressed send waits for its suppression to be lifted
        // (`Outbox::lift_suppressions` plans it again), not for a plan.
        State::Sending
        | State::Sent
        | State::Failed
        | State::Skipped
        | State::Cancelled
        | State::Suppressed => Standing::Settled,
    }
}

/// The changes that bring the outbox in line with `plan`, the sends due in
/// the window just planned, at `now`.
///
/// `entries` are the outbox's entries with the plan's keys and every
/// planned entry, each once. A send new to the outbox that was due more
/// than `late_window` ago is recorded as skipped, with the reason, rather
/// than sent late or dropped; one the outbox has goes as [`standing`] says.
/// `outside` says what becomes of a planned entry that is not in the plan.
pub fn reconcile(
    plan: &[PlannedSend],
    entries: &[Entry],
    now: Timestamp,
    late_window: SignedDuration,
    outside: impl Fn(&Entry) -> Outside,
) -> Changes {
    let by_key: HashMap<&SendKey, &Entry> = entries.iter().map(|e| (&e.spec.key, e)).collect();
    let too_late = |due: Timestamp| now.duration_since(due) > late_window;
    let mut changes = Changes::default();
    let mut planned_keys = HashSet::with_capacity(plan.len());
    for send in plan {
        planned_keys.insert(&send.key);
        let spec = spec_of(send);
        match by_key.get(&send.key) {
            None if too_late(spec.due) => {
                let reason = format!(
                    "due at {} but planned only at {now}, more than the late window ({late_window:#}) after",
                    spec.due
                );
                changes.insert_skipped.push((spec, reason));
            }
            None => changes.insert.push(spec),
            Some(entry) => match standing(entry, spec.due, now, late_window) {
                Standing::Planned if entry.spec != spec => changes.reschedule.push(spec),
                Standing::Revived => changes.revive.push(spec),
                Standing::Planned | Standing::Settled => {}
            },
        }
    }
    for entry in entries {
        if entry.state != State::Planned || planned_keys.contains(&entry.spec.key) {
            continue;
        }
        match outside(entry) {
            Outside::Moved(send) => {
                let spec = spec_of(&send);
                if spec != entry.spec {
                    changes.reschedule.push(spec);
                }
            }
            Outside::Gone(why) => changes.cancel.push((entry.spec.key.clone(), why)),
            Outside::Keep => {}
        }
    }
    changes
}

/// What changed in the plan, for the log: "+14 planned (8 for
/// first-reading, 6 for geneva-consultations), 0 revived, 3 cancelled (3 for
/// old-meeting), 6 rescheduled (6 for first-reading), 0 skipped as too late".
pub fn summary(changes: &Changes) -> String {
    let subjects = |specs: &[SendSpec]| by_subject(specs.iter().map(|spec| spec.key.subject()));
    format!(
        "+{} planned{}, {} revived{}, {} cancelled{}, {} rescheduled{}, {} skipped as too late{}",
        changes.insert.len(),
        subjects(&changes.insert),
        changes.revive.len(),
        subjects(&changes.revive),
        changes.cancel.len(),
        by_subject(changes.cancel.iter().map(|(key, _)| key.subject())),
        changes.reschedule.len(),
        subjects(&changes.reschedule),
        changes.insert_skipped.len(),
        by_subject(changes.insert_skipped.iter().map(|(spec, _)| spec.key.subject())),
    )
}

/// " (8 for first-reading, 6 for geneva-consultations)": the events and
/// letters concerned, most sends first, at most three named; empty for none.
fn by_subject<'a>(subjects: impl Iterator<Item = &'a str>) -> String {
    const NAMED: usize = 3;
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for subject in subjects {
        match counts.iter_mut().find(|(seen, _)| *seen == subject) {
            Some((_, n)) => *n += 1,
            None => counts.push((subject, 1)),
        }
    }
    if counts.is_empty() {
        return String::new();
    }
    // Stable: equal counts keep the plan's order.
    counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let mut parts: Vec<String> = counts
        .iter()
        .take(NAMED)
        .map(|(subject, n)| format!("{n} for {subject}"))
        .collect();
    if counts.len() > NAMED {
        let rest: usize = counts[NAMED..].iter().map(|(_, n)| n).sum();
        parts.push(format!("{rest} for {} more", counts.len() - NAMED));
    }
    format!(" ({})", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::AddressKey;

    /// The key of a reminder of `event` to `name`@example.org.
    fn key_of(event: &str, name: &str) -> SendKey {
        SendKey::reminder(event, "1d", &AddressKey::of(&format!("{name}@example.org")))
    }

    /// A reminder of event "e" to `name`@example.org.
    fn send(name: &str, due: &str) -> PlannedSend {
        send_about("e", name, due)
    }

    fn send_about(event: &str, name: &str, due: &str) -> PlannedSend {
        PlannedSend {
            key: key_of(event, name),
            due: due.parse().unwrap(),
            to: format!("{name}@example.org"),
            list: "l".into(),
            language: "en".into(),
            template: "reminder".into(),
        }
    }

    fn entry(send: &PlannedSend, state: State) -> Entry {
        Entry {
            spec: spec_of(send),
            state,
            revision: 1,
            attempts: 0,
            next_attempt: None,
            last_reply: None,
            reason: None,
            updated_at: Timestamp::UNIX_EPOCH,
            sent_at: None,
            too_late: false,
        }
    }

    const NOW: &str = "2017-10-01T12:00:00Z";

    fn run(plan: &[PlannedSend], entries: &[Entry]) -> Changes {
        reconcile(
            plan,
            entries,
            NOW.parse().unwrap(),
            SignedDuration::from_hours(6),
            |_| Outside::Gone("gone".into()),
        )
    }

    #[test]
    fn new_sends_are_planned_or_skipped_when_too_late() {
        let future = send("a", "2017-10-02T09:00[UTC]");
        let recent = send("b", "2017-10-01T08:00[UTC]");
        let old = send("c", "2017-09-01T08:00[UTC]");
        let changes = run(&[future.clone(), recent.clone(), old], &[]);
        assert_eq!(changes.insert, vec![spec_of(&future), spec_of(&recent)]);
        assert_eq!(changes.insert_skipped.len(), 1);
        assert!(
            changes.insert_skipped[0].1.contains("late window (6h)"),
            "{}",
            changes.insert_skipped[0].1
        );
    }

    #[test]
    fn moved_sends_are_rescheduled_removed_ones_cancelled_history_untouched() {
        let before = send("a", "2017-10-02T09:00[UTC]");
        let moved = send("a", "2017-10-03T09:00[UTC]");
        let removed = send("b", "2017-10-02T09:00[UTC]");
        let sent = send("c", "2017-09-30T09:00[UTC]");
        let entries = [
            entry(&before, State::Planned),
            entry(&removed, State::Planned),
            entry(&sent, State::Sent),
        ];
        let changes = run(std::slice::from_ref(&moved), &entries);
        assert_eq!(changes.reschedule, vec![spec_of(&moved)]);
        assert_eq!(changes.cancel, vec![(key_of("e", "b"), "gone".to_owned())]);
        assert!(changes.insert.is_empty() && changes.revive.is_empty());
        // The same plan again changes nothing.
        let entries = [entry(&moved, State::Planned), entry(&sent, State::Sent)];
        assert!(run(&[moved, sent], &entries).is_empty());
    }

    #[test]
    fn the_summary_names_the_events_concerned() {
        let mut changes = Changes::default();
        for (name, event) in [("k1", "first"), ("k2", "second"), ("k3", "first")] {
            changes
                .insert
                .push(spec_of(&send_about(event, name, "2017-10-02T09:00[UTC]")));
        }
        changes.cancel.push((key_of("old", "a"), "gone".into()));
        assert_eq!(
            summary(&changes),
            "+3 planned (2 for first, 1 for second), 0 revived, 1 cancelled (1 for old), 0 rescheduled, 0 skipped as too late"
        );
        for (i, event) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
            changes.reschedule.push(spec_of(&send_about(
                event,
                &format!("r{i}"),
                "2017-10-02T09:00[UTC]",
            )));
        }
        assert!(
            summary(&changes).contains("5 rescheduled (1 for a, 1 for b, 1 for c, 2 for 2 more)"),
            "{}",
            summary(&changes)
        );
    }

    #[test]
    fn planned_entries_outside_the_window_are_moved_cancelled_or_kept() {
        let moved_before = send("moved", "2017-10-02T09:00[UTC]");
        let moved_after = send("moved", "2017-12-02T09:00[UTC]");
        let unchanged = send("unchanged", "2017-12-01T09:00[UTC]");
        let gone = send("gone", "2017-10-02T09:00[UTC]");
        let on_demand = send("on-demand", "2017-10-02T09:00[UTC]");
        let entries = [
            entry(&moved_before, State::Planned),
            entry(&unchanged, State::Planned),
            entry(&gone, State::Planned),
            entry(&on_demand, State::Planned),
        ];
        // The window's plan is empty: every entry is outside it.
        let changes = reconcile(
            &[],
            &entries,
            NOW.parse().unwrap(),
            SignedDuration::from_hours(6),
            |entry| match entry.spec.key.address() {
                "moved@example.org" => Outside::Moved(Box::new(moved_after.clone())),
                "unchanged@example.org" => Outside::Moved(Box::new(unchanged.clone())),
                "gone@example.org" => Outside::Gone("removed".into()),
                _ => Outside::Keep,
            },
        );
        assert_eq!(changes.reschedule, vec![spec_of(&moved_after)]);
        assert_eq!(changes.cancel, vec![(key_of("e", "gone"), "removed".to_owned())]);
        assert!(changes.insert.is_empty() && changes.revive.is_empty() && changes.insert_skipped.is_empty());
    }

    #[test]
    fn a_lead_reached_before_its_event_moved_is_not_sent_again() {
        // Sent, in flight, failed or skipped for the old date: the plan's
        // send at the new date (same key) is history, wherever it falls.
        let old_date = send("a", "2017-09-25T19:00[UTC]");
        for new_date in [
            "2017-09-26T19:00[UTC]",
            "2017-10-05T19:00[UTC]",
            "2017-09-24T19:00[UTC]",
        ] {
            let moved = send("a", new_date);
            for state in [State::Sent, State::Sending, State::Failed, State::Skipped] {
                let changes = run(std::slice::from_ref(&moved), &[entry(&old_date, state)]);
                assert!(changes.is_empty(), "{state} moved to {new_date}: {changes:?}");
            }
        }
    }

    #[test]
    fn a_lead_skipped_as_too_late_is_planned_again_when_its_event_moves_later() {
        // Skipped as too late while the event was earlier; back later.
        let earlier = send("a", "2017-09-30T14:00[UTC]");
        let skipped = Entry {
            too_late: true,
            ..entry(&earlier, State::Skipped)
        };
        let back = send("a", "2017-10-01T19:00[UTC]");
        let changes = run(std::slice::from_ref(&back), std::slice::from_ref(&skipped));
        assert_eq!(changes.revive, vec![spec_of(&back)]);
        // Still too late at its new date: left as it is.
        let still_late = send("a", "2017-09-30T22:00[UTC]");
        assert!(run(std::slice::from_ref(&still_late), std::slice::from_ref(&skipped)).is_empty());
        // Skipped for another reason (its focal point was gone when it fell
        // due): history.
        let gone = entry(&earlier, State::Skipped);
        assert!(run(std::slice::from_ref(&back), &[gone]).is_empty());
    }

    #[test]
    fn a_cancelled_send_back_in_the_plan_is_revived() {
        let a = send("a", "2017-10-02T09:00[UTC]");
        let changes = run(std::slice::from_ref(&a), &[entry(&a, State::Cancelled)]);
        assert_eq!(changes.revive, vec![spec_of(&a)]);
    }
}
