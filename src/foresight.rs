//! What the relay's limits will do to the plan, foreseen without sending:
//! which slots start early so that their last message leaves on time,
//! which would leave late and by how much, and which calendar hours and
//! days hold more sends than `per_hour` and `per_day` allow. `herald check`
//! and `herald plan` print it; pure, no clock, no I/O.
//!
//! It works at slot granularity: a slot (one event at one lead, one letter,
//! or one notice) is a [`pace::Burst`] of its recipient count, so a plan of
//! millions of sends is thousands of bursts and never millions of rows.
//! The rules are [`pace`]'s, the same the mailer and the scheduler follow:
//! each burst released by [`pace::releases`] (as early as `max_early`
//! allows), then sent most urgent first by [`pace::departures`], ranked by
//! [`Urgency`].

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::key::Urgency;
use crate::pace::{self, Burst, Gate, Limits};

/// One slot of the plan as the limits see it: how many messages, due when,
/// how urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    pub due: Timestamp,
    pub count: u64,
    pub urgency: Urgency,
}

/// When one slot's messages would leave under the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotPace {
    pub due: Timestamp,
    pub count: u64,
    /// When its first and last message would leave.
    pub first: Timestamp,
    pub last: Timestamp,
    /// How many would leave after the due instant, and the latest by how much.
    pub late: u64,
    pub late_by: SignedDuration,
}

impl SlotPace {
    pub fn is_late(&self) -> bool {
        self.late > 0
    }

    /// How long before its due instant the slot starts, when the limits
    /// make it start early and it still ends on time; `None` otherwise.
    pub fn early_by(&self) -> Option<SignedDuration> {
        (!self.is_late() && self.first < self.due).then(|| self.due.duration_since(self.first))
    }
}

/// The calendar periods `per_hour` and `per_day` are compared with. The
/// relay counts rolling windows (which the late slots account for); a
/// calendar hour or day over the limit is the summary a reader can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    Hour,
    Day,
}

impl Period {
    fn seconds(self) -> i64 {
        match self {
            Period::Hour => 3_600,
            Period::Day => 86_400,
        }
    }

    /// The setting that limits it.
    pub fn setting(self) -> &'static str {
        match self {
            Period::Hour => "per_hour",
            Period::Day => "per_day",
        }
    }

    /// The period (in UTC) that holds `at`, as its first instant.
    pub fn start_of(self, at: Timestamp) -> Timestamp {
        let start = at.as_second().div_euclid(self.seconds()) * self.seconds();
        Timestamp::from_second(start).unwrap_or(at)
    }
}

/// A calendar hour or day (UTC) that holds more sends than its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overrun {
    pub period: Period,
    /// Its first instant, in UTC.
    pub start: Timestamp,
    /// The sends planned in it, with those already sent in it.
    pub count: u64,
    pub limit: u32,
}

/// What the limits do to a plan: one [`SlotPace`] per [`Load`], in the
/// same order, and the calendar hours and days over their limit, in time
/// order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foresight {
    pub limits: Limits,
    pub slots: Vec<SlotPace>,
    pub overruns: Vec<Overrun>,
    /// How many messages already sent (in the 24 hours before the plan's
    /// start) were counted against the limits.
    pub sent_before: usize,
}

impl Foresight {
    /// The slots that would leave late, with their place among the loads.
    pub fn late(&self) -> impl Iterator<Item = (usize, &SlotPace)> {
        self.slots.iter().enumerate().filter(|(_, pace)| pace.is_late())
    }

    /// The slots that start early to end on time, with their place.
    pub fn early(&self) -> impl Iterator<Item = (usize, &SlotPace)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, pace)| pace.early_by().is_some())
    }

    /// Whether the calendar `period` that holds `at` is over its limit.
    pub fn is_over(&self, period: Period, at: Timestamp) -> bool {
        let start = period.start_of(at);
        // Few overruns, in time order: a binary search per send is cheap.
        self.overruns
            .binary_search_by(|o| (o.start, o.period).cmp(&(start, period)))
            .is_ok()
    }
}

/// Foresees the plan's `loads` under `limits`, as herald would send them
/// from `from` on: no burst starts before `from`, and the messages `sent`
/// before it (the last day's, from the outbox, in any order; none if
/// unknown) count against the hour and the day.
pub fn foresee(
    limits: &Limits,
    max_early: SignedDuration,
    from: Timestamp,
    sent: &[Timestamp],
    loads: &[Load],
) -> Foresight {
    let dues: Vec<(Timestamp, u64)> = loads.iter().map(|load| (load.due, load.count)).collect();
    let releases = pace::releases(limits, max_early, &dues);
    let bursts: Vec<Burst<Urgency>> = loads
        .iter()
        .zip(releases)
        .map(|(load, release)| Burst {
            due: load.due,
            // A burst that should have started already starts now.
            release: release.max(from).min(load.due.max(from)),
            count: load.count,
            rank: load.urgency,
        })
        .collect();
    let day_before = from - SignedDuration::from_hours(24);
    let recent: Vec<Timestamp> = sent
        .iter()
        .copied()
        .filter(|&at| at > day_before && at <= from)
        .collect();
    let mut gate = Gate::with_history(limits, recent.iter().copied());
    let departures = pace::departures(&mut gate, &bursts);
    let slots = loads
        .iter()
        .zip(departures)
        .map(|(load, departure)| SlotPace {
            due: load.due,
            count: load.count,
            first: departure.first,
            last: departure.last,
            late: departure.late,
            late_by: departure.latest_by,
        })
        .collect();
    let mut overruns = Vec::new();
    for (period, limit) in [(Period::Hour, limits.per_hour), (Period::Day, limits.per_day)] {
        if let Some(limit) = limit {
            overruns.extend(calendar_overruns(period, limit, &recent, loads));
        }
    }
    overruns.sort_by_key(|o| (o.start, o.period));
    Foresight {
        limits: *limits,
        slots,
        overruns,
        sent_before: recent.len(),
    }
}

/// The calendar periods with a planned send whose count (planned and
/// already sent) is over `limit`.
fn calendar_overruns(period: Period, limit: u32, sent: &[Timestamp], loads: &[Load]) -> Vec<Overrun> {
    let mut planned: BTreeMap<Timestamp, u64> = BTreeMap::new();
    for load in loads.iter().filter(|load| load.count > 0) {
        *planned.entry(period.start_of(load.due)).or_default() += load.count;
    }
    for &at in sent {
        if let Some(count) = planned.get_mut(&period.start_of(at)) {
            *count += 1;
        }
    }
    planned
        .into_iter()
        .filter(|&(_, count)| count > u64::from(limit))
        .map(|(start, count)| Overrun {
            period,
            start,
            count,
            limit,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::SendKind;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn reminders(due: &str, count: u64, event_start: &str) -> Load {
        Load {
            due: at(due),
            count,
            urgency: Urgency::new(SendKind::Reminder, at(event_start)),
        }
    }

    const MAX_EARLY: SignedDuration = SignedDuration::from_mins(30);
    const NOW: &str = "2017-10-02T08:00:00Z";

    #[test]
    fn no_limits_nothing_early_nothing_late_nothing_over() {
        let loads = [reminders("2017-10-02T15:00:00Z", 600, "2017-10-02T17:00:00Z")];
        let foresight = foresee(&Limits::default(), MAX_EARLY, at(NOW), &[], &loads);
        assert_eq!(foresight.late().count(), 0);
        assert_eq!(foresight.early().count(), 0);
        assert!(foresight.overruns.is_empty());
        assert_eq!(foresight.slots[0].first, at("2017-10-02T15:00:00Z"));
    }

    #[test]
    fn a_burst_within_max_early_starts_early_and_is_not_late() {
        let limits = Limits {
            per_minute: Some(30),
            ..Limits::default()
        };
        let loads = [reminders("2017-10-02T15:00:00Z", 600, "2017-10-02T17:00:00Z")];
        let foresight = foresee(&limits, MAX_EARLY, at(NOW), &[], &loads);
        assert_eq!(foresight.late().count(), 0);
        let (index, pace) = foresight.early().next().expect("it starts early");
        assert_eq!(index, 0);
        assert_eq!(pace.early_by(), Some(SignedDuration::from_secs(19 * 60 + 58)));
        assert_eq!(pace.last, at("2017-10-02T15:00:00Z"));
    }

    #[test]
    fn beyond_max_early_the_rest_is_late_and_not_early() {
        let limits = Limits {
            per_minute: Some(30),
            ..Limits::default()
        };
        let loads = [reminders("2017-10-02T15:00:00Z", 600, "2017-10-02T17:00:00Z")];
        let foresight = foresee(&limits, SignedDuration::from_mins(10), at(NOW), &[], &loads);
        let late: Vec<_> = foresight.late().collect();
        assert_eq!(late.len(), 1);
        assert_eq!(
            (late[0].1.late, late[0].1.late_by),
            (299, SignedDuration::from_secs(598))
        );
        assert_eq!(
            foresight.early().count(),
            0,
            "a late slot is reported as late only"
        );
    }

    #[test]
    fn a_day_over_per_day_is_named_with_its_count_and_the_late_slots() {
        let limits = Limits {
            per_day: Some(1000),
            ..Limits::default()
        };
        let loads = [
            reminders("2017-10-02T09:00:00Z", 800, "2017-10-09T09:00:00Z"),
            reminders("2017-10-02T15:00:00Z", 500, "2017-10-03T15:00:00Z"),
            reminders("2017-10-05T09:00:00Z", 10, "2017-10-06T09:00:00Z"),
        ];
        let foresight = foresee(&limits, MAX_EARLY, at(NOW), &[], &loads);
        assert_eq!(
            foresight.overruns,
            [Overrun {
                period: Period::Day,
                start: at("2017-10-02T00:00:00Z"),
                count: 1300,
                limit: 1000,
            }]
        );
        // All 800 of the morning leave; 200 of the afternoon's 500 fit the
        // day, the other 300 wait until the morning's leave the window.
        let late: Vec<_> = foresight
            .late()
            .map(|(i, pace)| (i, pace.late, pace.late_by))
            .collect();
        assert_eq!(late, [(1, 300, SignedDuration::from_hours(18))]);
        assert!(foresight.is_over(Period::Day, at("2017-10-02T23:59:59Z")));
        assert!(!foresight.is_over(Period::Day, at("2017-10-05T09:00:00Z")));
        assert!(!foresight.is_over(Period::Hour, at("2017-10-02T09:00:00Z")));
    }

    #[test]
    fn the_more_urgent_slot_goes_first_when_both_cannot() {
        let limits = Limits {
            per_day: Some(100),
            ..Limits::default()
        };
        let due = "2017-10-02T09:00:00Z";
        let loads = [
            reminders(due, 100, "2017-10-09T09:00:00Z"),
            reminders(due, 100, "2017-10-03T09:00:00Z"),
            Load {
                due: at(due),
                count: 10,
                urgency: Urgency::new(SendKind::Cancellation, at("2017-10-20T09:00:00Z")),
            },
        ];
        let foresight = foresee(&limits, MAX_EARLY, at(NOW), &[], &loads);
        let late: Vec<(usize, u64)> = foresight.late().map(|(i, pace)| (i, pace.late)).collect();
        // The cancellation, then the event of the next day (90 of its 100
        // fit the day), then the one a week away, which waits a day.
        assert_eq!(late, [(0, 100), (1, 10)]);
    }

    #[test]
    fn an_hour_over_per_hour_is_named() {
        let limits = Limits {
            per_hour: Some(100),
            ..Limits::default()
        };
        let loads = [
            reminders("2017-10-02T15:00:00Z", 60, "2017-10-02T17:00:00Z"),
            reminders("2017-10-02T15:30:00Z", 60, "2017-10-02T17:30:00Z"),
            reminders("2017-10-02T16:30:00Z", 60, "2017-10-02T18:30:00Z"),
        ];
        let foresight = foresee(&limits, MAX_EARLY, at(NOW), &[], &loads);
        assert_eq!(foresight.overruns.len(), 1);
        let overrun = foresight.overruns[0];
        assert_eq!((overrun.period, overrun.count), (Period::Hour, 120));
        assert_eq!(overrun.start, at("2017-10-02T15:00:00Z"));
        // The relay counts rolling hours: starting the 15:00 slot at 14:30
        // (20 of it would do) keeps every hour within the limit.
        assert_eq!(foresight.late().count(), 0);
        let early: Vec<_> = foresight.early().map(|(i, pace)| (i, pace.early_by())).collect();
        assert_eq!(early, [(0, Some(SignedDuration::from_mins(30)))]);
        // Not allowed to start early, 20 of the 15:30 slot wait until the
        // 15:00 ones leave the hour; by 16:30 there is room for the last.
        let foresight = foresee(&limits, SignedDuration::ZERO, at(NOW), &[], &loads);
        let late: Vec<_> = foresight
            .late()
            .map(|(i, pace)| (i, pace.late, pace.late_by))
            .collect();
        assert_eq!(late, [(1, 20, SignedDuration::from_mins(30))]);
        assert_eq!(foresight.overruns.len(), 1);
    }

    #[test]
    fn messages_sent_in_the_last_day_count_against_it() {
        let limits = Limits {
            per_day: Some(100),
            ..Limits::default()
        };
        let loads = [reminders("2017-10-02T12:00:00Z", 50, "2017-10-03T12:00:00Z")];
        let sent: Vec<Timestamp> = std::iter::repeat_n(at("2017-10-02T07:00:00Z"), 60)
            // More than a day before: forgotten.
            .chain(std::iter::repeat_n(at("2017-10-01T07:00:00Z"), 500))
            .collect();
        let foresight = foresee(&limits, MAX_EARLY, at(NOW), &sent, &loads);
        assert_eq!(foresight.sent_before, 60);
        assert_eq!(foresight.slots[0].late, 10);
        assert_eq!(foresight.overruns[0].count, 110);
        let fresh = foresee(&limits, MAX_EARLY, at(NOW), &[], &loads);
        assert_eq!((fresh.slots[0].late, fresh.overruns.len()), (0, 0));
    }

    #[test]
    fn nothing_starts_before_the_plan_s_start() {
        let limits = Limits {
            per_minute: Some(30),
            ..Limits::default()
        };
        // Due in 10 minutes, 600 messages need 20: started now, 299 are late.
        let loads = [reminders("2017-10-02T08:10:00Z", 600, "2017-10-02T10:00:00Z")];
        let foresight = foresee(&limits, MAX_EARLY, at(NOW), &[], &loads);
        assert_eq!(foresight.slots[0].first, at(NOW));
        assert_eq!(foresight.slots[0].late, 299);
    }
}
