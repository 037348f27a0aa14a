//! The relay's limits as arithmetic: when a message may leave, when a burst
//! must start so that its last message leaves on time, and when each send
//! of a plan would leave. Pure: no clock, no I/O; the same rules serve the
//! mailer (which waits), the scheduler (which starts bursts early) and
//! `herald check` and `plan` (which foresee what would be late).
//!
//! A relay states its limits as "at most N a minute, an hour, a day".
//! herald keeps them as:
//! - **a minute**: messages at least `60 s / N` apart. That is a token
//!   bucket holding one token: any 60-second window sees at most N, and
//!   messages leave evenly rather than N at once then nothing.
//! - **an hour, a day**: at most N in any rolling window of that length,
//!   as the large relays count (Exchange Online's recipient limit and
//!   Google Workspace's are rolling 24 hours). Bursts within the window are
//!   allowed; only the count matters.
//!
//! Windows are symmetric in time ("at most N in any span of length W" holds
//! read forwards or backwards), so the latest a send may leave, counting
//! back from its due instant, is computed by the same [`Gate`] on mirrored
//! instants (see [`releases`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use jiff::{SignedDuration, Timestamp};

/// How many messages the relay takes; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub per_minute: Option<u32>,
    pub per_hour: Option<u32>,
    pub per_day: Option<u32>,
}

/// The relay's limits as one budget several nodes share (kept in their
/// common database): each moment taken at the relay counts for every node.
pub trait SharedBudget: Send + Sync {
    /// Takes the earliest moment at or after `now` that `limits` allow,
    /// counting the moments every node took. `Ok(None)`: no shared budget;
    /// an error says why it could not be taken (the caller then counts its
    /// own sends alone, and the relay still refuses what is over).
    fn take_turn(&self, limits: &Limits, now: Timestamp) -> Result<Option<Timestamp>, String>;
}

impl Limits {
    /// No limit at all: every send leaves at its due instant.
    pub fn is_unlimited(&self) -> bool {
        self.per_minute.is_none() && self.per_hour.is_none() && self.per_day.is_none()
    }
}

const MINUTE_US: i64 = 60_000_000;
const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 86_400_000_000;

/// Instants as microseconds since the epoch, so they can be mirrored
/// (negated) and the minute's spacing kept exact enough.
fn micros(at: Timestamp) -> i64 {
    // i128 → i64: every instant jiff holds fits in 64 bits of microseconds.
    at.as_microsecond()
}

fn instant(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(if us < 0 { Timestamp::MIN } else { Timestamp::MAX })
}

/// At most `limit` messages in any window `span` long: the last `limit`
/// departures are all it needs to remember.
#[derive(Debug, Clone)]
struct Window {
    span: i64,
    limit: usize,
    recent: VecDeque<i64>,
}

impl Window {
    fn new(span: i64, limit: u32) -> Window {
        let limit = limit.max(1) as usize;
        Window {
            span,
            limit,
            recent: VecDeque::with_capacity(limit.min(65_536)),
        }
    }

    /// The earliest instant at or after `at` when one more message keeps
    /// the window's count: the `limit`-th latest departure must have left
    /// the window by then.
    fn earliest(&self, at: i64) -> i64 {
        if self.recent.len() < self.limit {
            return at;
        }
        let oldest_counted = self.recent[self.recent.len() - self.limit];
        at.max(oldest_counted.saturating_add(self.span))
    }

    fn take(&mut self, at: i64) {
        if self.recent.len() == self.limit {
            self.recent.pop_front();
        }
        self.recent.push_back(at);
    }

    /// How many of the remembered departures fall in `(at - span, at]`.
    fn used(&self, at: i64) -> usize {
        self.recent
            .iter()
            .filter(|&&t| t > at - self.span && t <= at)
            .count()
    }
}

/// The state of the limits after some departures: when the next message may
/// leave. Departures must be taken in time order.
#[derive(Debug, Clone)]
pub struct Gate {
    /// Microseconds between two messages (the per-minute limit, rounded up
    /// so that rounding never allows one more).
    spacing: Option<i64>,
    last: Option<i64>,
    hour: Option<Window>,
    day: Option<Window>,
}

impl Gate {
    pub fn new(limits: &Limits) -> Gate {
        Gate {
            spacing: limits.per_minute.map(|n| {
                let n = i64::from(n.max(1));
                (MINUTE_US + n - 1) / n
            }),
            last: None,
            hour: limits.per_hour.map(|n| Window::new(HOUR_US, n)),
            day: limits.per_day.map(|n| Window::new(DAY_US, n)),
        }
    }

    /// The limits after the given departures (in any order), e.g. the
    /// messages sent in the last day, read back after a restart.
    pub fn with_history(limits: &Limits, sent: impl IntoIterator<Item = Timestamp>) -> Gate {
        let mut sent: Vec<i64> = sent.into_iter().map(micros).collect();
        sent.sort_unstable();
        let mut gate = Gate::new(limits);
        for at in sent {
            gate.take_micros(at);
        }
        gate
    }

    /// The earliest instant at or after `at` when a message may leave.
    pub fn earliest(&self, at: Timestamp) -> Timestamp {
        instant(self.earliest_micros(micros(at)))
    }

    /// Records a message leaving at `at` (not before the last one).
    pub fn take(&mut self, at: Timestamp) {
        self.take_micros(micros(at));
    }

    /// How many messages left in the day ending at `at`, and the per-day
    /// limit; `None` without one. For "today's quota is nearly used".
    pub fn day_used(&self, at: Timestamp) -> Option<(usize, usize)> {
        self.day.as_ref().map(|day| (day.used(micros(at)), day.limit))
    }

    fn earliest_micros(&self, at: i64) -> i64 {
        let mut earliest = at;
        if let (Some(spacing), Some(last)) = (self.spacing, self.last) {
            earliest = earliest.max(last.saturating_add(spacing));
        }
        for window in [&self.hour, &self.day].into_iter().flatten() {
            earliest = window.earliest(earliest);
        }
        earliest
    }

    fn take_micros(&mut self, at: i64) {
        self.last = Some(self.last.map_or(at, |last| last.max(at)));
        for window in [&mut self.hour, &mut self.day].into_iter().flatten() {
            window.take(at);
        }
    }
}

/// Sends due at the same instant, of the same urgency: a slot, or the part
/// of one still to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Burst<R> {
    pub due: Timestamp,
    /// Not before this instant (see [`releases`]); at most `due`.
    pub release: Timestamp,
    pub count: u64,
    /// Lower goes first when more is released than the limits let through.
    pub rank: R,
}

/// When each burst should start leaving so that its last message leaves by
/// its due instant, given the limits and every other burst; never more
/// than `max_early` before it. A message that cannot leave on time even so
/// starts `max_early` early, and leaves as soon as the limits allow after
/// (what [`departures`] says).
///
/// `dues` are each burst's (due instant, count), in any order; the result
/// is each burst's release instant, in the same order. Counting back from
/// the last due instant, each message takes the latest moment the limits
/// leave it: the [`Gate`] run on mirrored instants.
pub fn releases(limits: &Limits, max_early: SignedDuration, dues: &[(Timestamp, u64)]) -> Vec<Timestamp> {
    let mut release: Vec<Timestamp> = dues.iter().map(|&(due, _)| due).collect();
    if limits.is_unlimited() {
        return release;
    }
    let mut order: Vec<usize> = (0..dues.len()).collect();
    // Latest due first; among equal dues the later in the list first, so
    // the first burst of the list gets the earliest moments.
    order.sort_by_key(|&i| Reverse((dues[i].0, i)));
    let max_early = max_early.as_micros().clamp(0, i128::from(i64::MAX)) as i64;
    let mut mirrored = Gate::new(limits);
    for i in order {
        let (due, count) = dues[i];
        let due = micros(due);
        let earliest_allowed = due.saturating_sub(max_early);
        let mut first = due;
        for _ in 0..count {
            let latest = -mirrored.earliest_micros(-due);
            if latest < earliest_allowed {
                // Late whatever herald does: it takes no moment from another
                // burst that can still be on time. Starting early helps only
                // against the minute's spacing (an hour's or a day's window
                // is longer than any sensible `max_early`), so the burst
                // starts as early as its spacing alone would ask, within
                // `max_early`.
                let spacing_alone = mirrored.spacing.map_or(due, |spacing| {
                    due.saturating_sub(spacing.saturating_mul(count as i64 - 1))
                });
                first = first.min(spacing_alone.max(earliest_allowed));
                break;
            }
            mirrored.take_micros(-latest);
            first = latest;
        }
        release[i] = instant(first);
    }
    release
}

/// When a burst's messages would leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Departure {
    pub first: Timestamp,
    pub last: Timestamp,
    /// How many leave after the due instant, and the latest by how much.
    pub late: u64,
    pub latest_by: SignedDuration,
}

/// When each burst's messages would leave, sending as herald does: at every
/// moment the limits allow, the most urgent message released (lowest rank,
/// then earliest due, then first in the list). `gate` holds what was sent
/// before (see [`Gate::with_history`]) and is left as after the last
/// message. Returns one [`Departure`] per burst, in the given order; a burst
/// of no messages gets its release instant and nothing late.
pub fn departures<R: Ord + Clone>(gate: &mut Gate, bursts: &[Burst<R>]) -> Vec<Departure> {
    let mut result: Vec<Departure> = bursts
        .iter()
        .map(|burst| Departure {
            first: burst.release,
            last: burst.release,
            late: 0,
            latest_by: SignedDuration::ZERO,
        })
        .collect();
    let mut by_release: Vec<usize> = (0..bursts.len()).filter(|&i| bursts[i].count > 0).collect();
    by_release.sort_by_key(|&i| (bursts[i].release, i));
    let mut next = by_release.into_iter().peekable();
    let mut released = BinaryHeap::new();
    let mut left: Vec<u64> = bursts.iter().map(|burst| burst.count).collect();
    let mut now = i64::MIN;
    loop {
        if released.is_empty() {
            match next.peek() {
                Some(&i) => now = now.max(micros(bursts[i].release)),
                None => break,
            }
        }
        now = gate.earliest_micros(now);
        while let Some(&i) = next.peek() {
            if micros(bursts[i].release) > now {
                break;
            }
            released.push(Reverse((bursts[i].rank.clone(), bursts[i].due, i)));
            next.next();
        }
        let Some(Reverse((rank, due, i))) = released.pop() else {
            continue;
        };
        // The most urgent burst stays the most urgent until another is
        // released, so its messages leave one after the other until then
        // without going back to the heap (a plan's millions of messages
        // would otherwise each cost a pop and a push).
        let next_release = next.peek().map(|&j| micros(bursts[j].release));
        loop {
            gate.take_micros(now);
            let at = instant(now);
            let departure = &mut result[i];
            if left[i] == bursts[i].count {
                departure.first = at;
            }
            departure.last = at;
            if at > due {
                departure.late += 1;
                departure.latest_by = departure.latest_by.max(at.duration_since(due));
            }
            left[i] -= 1;
            if left[i] == 0 {
                break;
            }
            let then = gate.earliest_micros(now);
            if next_release.is_some_and(|release| release <= then) {
                released.push(Reverse((rank, due, i)));
                break;
            }
            now = then;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn per_minute(n: u32) -> Limits {
        Limits {
            per_minute: Some(n),
            ..Limits::default()
        }
    }

    #[test]
    fn messages_leave_a_minute_s_share_apart() {
        let mut gate = Gate::new(&per_minute(30));
        let start = at("2017-10-02T15:00:00Z");
        assert_eq!(gate.earliest(start), start);
        gate.take(start);
        assert_eq!(gate.earliest(start).to_string(), "2017-10-02T15:00:02Z");
    }

    #[test]
    fn an_hour_s_limit_lets_a_burst_through_then_waits_for_the_window() {
        let limits = Limits {
            per_hour: Some(3),
            ..Limits::default()
        };
        let start = at("2017-10-02T15:00:00Z");
        let mut gate = Gate::with_history(&limits, [start, start, start]);
        assert_eq!(gate.earliest(start).to_string(), "2017-10-02T16:00:00Z");
        gate.take(gate.earliest(start));
        assert_eq!(gate.earliest(start).to_string(), "2017-10-02T16:00:00Z");
    }

    #[test]
    fn a_burst_starts_early_enough_to_end_on_time() {
        let due = at("2017-10-02T15:00:00Z");
        let release = releases(&per_minute(30), SignedDuration::from_mins(30), &[(due, 600)]);
        // 600 messages 2 s apart: 599 gaps, so the first leaves 19 min 58 s early.
        assert_eq!(release[0].to_string(), "2017-10-02T14:40:02Z");
        let mut gate = Gate::new(&per_minute(30));
        let burst = Burst {
            due,
            release: release[0],
            count: 600,
            rank: 0,
        };
        let departure = departures(&mut gate, &[burst])[0];
        assert_eq!(departure.first, release[0]);
        assert_eq!(departure.last, due);
        assert_eq!(departure.late, 0);
    }

    #[test]
    fn never_earlier_than_max_early_and_the_rest_is_late() {
        let due = at("2017-10-02T15:00:00Z");
        let release = releases(&per_minute(30), SignedDuration::from_mins(10), &[(due, 600)]);
        assert_eq!(release[0].to_string(), "2017-10-02T14:50:00Z");
        let burst = Burst {
            due,
            release: release[0],
            count: 600,
            rank: 0,
        };
        let departure = departures(&mut Gate::new(&per_minute(30)), &[burst])[0];
        // 301 leave in [14:50, 15:00]; 299 after, the last 9 min 58 s late.
        assert_eq!(departure.late, 299);
        assert_eq!(departure.latest_by, SignedDuration::from_secs(598));
    }

    #[test]
    fn an_earlier_burst_moves_before_a_later_one() {
        let limits = per_minute(30);
        let (a, b) = (at("2017-10-02T15:00:00Z"), at("2017-10-02T14:50:00Z"));
        let release = releases(&limits, SignedDuration::from_mins(30), &[(a, 600), (b, 300)]);
        assert_eq!(release[0].to_string(), "2017-10-02T14:40:02Z");
        // b's 300 take the 10 minutes before a's start.
        assert_eq!(release[1].to_string(), "2017-10-02T14:30:02Z");
        let bursts = [
            Burst {
                due: a,
                release: release[0],
                count: 600,
                rank: 1,
            },
            Burst {
                due: b,
                release: release[1],
                count: 300,
                rank: 1,
            },
        ];
        let departure = departures(&mut Gate::new(&limits), &bursts);
        assert_eq!((departure[0].late, departure[1].late), (0, 0));
        assert_eq!(departure[1].last.to_string(), "2017-10-02T14:40:00Z");
    }

    #[test]
    fn the_most_urgent_released_message_goes_first() {
        let limits = per_minute(30);
        let reminders = Burst {
            due: at("2017-10-02T15:00:00Z"),
            release: at("2017-10-02T14:40:02Z"),
            count: 600,
            rank: 2,
        };
        let cancellation = Burst {
            due: at("2017-10-02T14:50:00Z"),
            release: at("2017-10-02T14:50:00Z"),
            count: 1,
            rank: 0,
        };
        let departure = departures(&mut Gate::new(&limits), &[reminders, cancellation]);
        // It leaves at the next moment the limit allows after 14:50.
        assert!(departure[1].first >= at("2017-10-02T14:50:00Z"));
        assert!(departure[1].first <= at("2017-10-02T14:50:02Z"));
        // And the reminders are one message later for it.
        assert_eq!(departure[0].late, 1);
    }

    #[test]
    fn a_day_s_quota_pushes_the_excess_to_the_next_day() {
        let limits = Limits {
            per_day: Some(1000),
            ..Limits::default()
        };
        let due = at("2017-10-02T09:00:00Z");
        let release = releases(&limits, SignedDuration::from_mins(30), &[(due, 1500)]);
        // A day's limit allows any burst: the 1000 leave at once.
        assert_eq!(release[0], due);
        let burst = Burst {
            due,
            release: release[0],
            count: 1500,
            rank: 0,
        };
        let departure = departures(&mut Gate::new(&limits), &[burst])[0];
        assert_eq!(departure.late, 500);
        assert_eq!(departure.latest_by, SignedDuration::from_hours(24));
    }

    #[test]
    fn the_history_counts_against_the_day() {
        let limits = Limits {
            per_day: Some(10),
            ..Limits::default()
        };
        let morning = at("2017-10-02T09:00:00Z");
        let gate = Gate::with_history(&limits, std::iter::repeat_n(morning, 9));
        assert_eq!(gate.day_used(at("2017-10-02T12:00:00Z")), Some((9, 10)));
        assert_eq!(
            gate.earliest(at("2017-10-02T12:00:00Z")).to_string(),
            "2017-10-02T12:00:00Z"
        );
        assert_eq!(gate.day_used(at("2017-10-03T09:00:00Z")), Some((0, 10)));
    }

    #[test]
    fn no_limits_no_waiting() {
        let due = at("2017-10-02T15:00:00Z");
        assert_eq!(
            releases(&Limits::default(), SignedDuration::from_mins(30), &[(due, 600)]),
            [due]
        );
        let burst = Burst {
            due,
            release: due,
            count: 600,
            rank: 0,
        };
        let departure = departures(&mut Gate::new(&Limits::default()), &[burst])[0];
        assert_eq!((departure.first, departure.last, departure.late), (due, due, 0));
    }
}
