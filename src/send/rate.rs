//! The relay's limits at send time: each send reserves the earliest moment
//! the limits allow ([`crate::pace::Gate`], the same rules `check`, `plan` and the
//! scheduler use), takes it, and waits until then.
//!
//! What the relay has already taken is not kept here but read back from the
//! outbox's attempts at start ([`RateLimit::seed`]): a restart keeps the
//! minute's spacing and the day's count, and daemons sharing one outbox
//! would count each other's mail at their start.
//!
//! The gate runs on a timeline of its own: the wall clock when the limiter
//! was made plus the time elapsed since on the monotonic clock. A jump of
//! the wall clock therefore neither releases a burst (forward) nor stalls
//! it (back); the seeded history, in wall-clock instants, is placed on the
//! timeline as it was read, when the two agreed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::clock::Clock;
use crate::pace::{Gate, Limits, SharedBudget};

#[derive(Debug)]
pub(crate) struct RateLimit {
    limits: Limits,
    state: Mutex<Timeline>,
    /// The budget shared with other nodes, when there are some: each turn
    /// is taken there, and counted here too for the estimates
    /// (`turns_within`, `next_turn_in`).
    shared: Mutex<Option<Arc<dyn SharedBudget>>>,
}

impl std::fmt::Debug for dyn SharedBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedBudget")
    }
}

#[derive(Debug)]
struct Timeline {
    gate: Gate,
    /// The wall clock and the monotonic clock when the timeline began;
    /// `None` until first used (a mailer built but not yet sending).
    origin: Option<(Timestamp, Duration)>,
}

impl Timeline {
    /// Now on the timeline, starting it at the wall clock's reading if
    /// this is the first look.
    fn now(&mut self, clock: &dyn Clock) -> (Timestamp, Duration) {
        let monotonic = clock.monotonic();
        let (wall, origin) = *self.origin.get_or_insert_with(|| (clock.now(), monotonic));
        let elapsed =
            SignedDuration::try_from(monotonic.saturating_sub(origin)).unwrap_or(SignedDuration::MAX);
        (wall.checked_add(elapsed).unwrap_or(Timestamp::MAX), monotonic)
    }
}

/// A moment taken at the relay: wait until the monotonic clock reads
/// `until`, then send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Turn {
    pub until: Duration,
}

impl RateLimit {
    /// `None` when the relay has no limit.
    pub(crate) fn new(limits: Limits) -> Option<RateLimit> {
        (!limits.is_unlimited()).then(|| RateLimit {
            limits,
            state: Mutex::new(Timeline {
                gate: Gate::new(&limits),
                origin: None,
            }),
            shared: Mutex::new(None),
        })
    }

    /// Counts the messages the relay took before this limiter was made
    /// (the outbox's attempts of the last day), read now: the timeline
    /// starts at the wall clock's reading.
    pub(crate) fn seed(&self, clock: &dyn Clock, departures: impl IntoIterator<Item = Timestamp>) {
        let mut state = self.lock();
        state.gate = Gate::with_history(&self.limits, departures);
        state.origin = Some((clock.now(), clock.monotonic()));
    }

    /// Takes the turns from `budget` from now on, shared with other nodes.
    pub(crate) fn share(&self, budget: Arc<dyn SharedBudget>) {
        *self.shared.lock().unwrap_or_else(|p| p.into_inner()) = Some(budget);
    }

    /// The shared budget, the limits and now on the timeline, to take a
    /// turn from the budget (on a blocking thread: it is a database).
    pub(crate) fn shared(&self, clock: &dyn Clock) -> Option<(Arc<dyn SharedBudget>, Limits, Timestamp)> {
        let shared = self.shared.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
        let (now, _) = self.lock().now(clock);
        Some((shared, self.limits, now))
    }

    /// Counts the moment `at` the shared budget gave, and turns it into
    /// a wait on the monotonic clock.
    pub(crate) fn take_at(&self, clock: &dyn Clock, at: Timestamp) -> Turn {
        let mut state = self.lock();
        let (now, monotonic) = state.now(clock);
        state.gate.take(at);
        let ahead = now.duration_until(at).max(SignedDuration::ZERO).unsigned_abs();
        Turn {
            until: monotonic.saturating_add(ahead),
        }
    }

    /// Takes the earliest moment the limits allow from now: every later
    /// send counts it, whether or not this one goes ahead (a cancelled
    /// send's moment is not given back, which errs on the slow side).
    pub(crate) fn reserve(&self, clock: &dyn Clock) -> Turn {
        let mut state = self.lock();
        let (now, monotonic) = state.now(clock);
        let at = state.gate.earliest(now);
        state.gate.take(at);
        let ahead = now.duration_until(at).max(SignedDuration::ZERO).unsigned_abs();
        Turn {
            until: monotonic.saturating_add(ahead),
        }
    }

    /// How many messages (at most `max`) the limits let leave within
    /// `span` from now.
    pub(crate) fn turns_within(&self, clock: &dyn Clock, span: SignedDuration, max: usize) -> usize {
        let mut state = self.lock();
        let (now, _) = state.now(clock);
        let end = now.checked_add(span).unwrap_or(Timestamp::MAX);
        let mut gate = state.gate.clone();
        let mut turns = 0;
        while turns < max {
            let at = gate.earliest(now);
            if at > end {
                break;
            }
            gate.take(at);
            turns += 1;
        }
        turns
    }

    /// How long from now until the limits let the next message leave.
    pub(crate) fn next_turn_in(&self, clock: &dyn Clock) -> SignedDuration {
        let mut state = self.lock();
        let (now, _) = state.now(clock);
        now.duration_until(state.gate.earliest(now))
    }

    /// How many messages left in the last 24 hours, and the daily limit;
    /// `None` without one.
    pub(crate) fn day_used(&self, clock: &dyn Clock) -> Option<(usize, usize)> {
        let mut state = self.lock();
        let (now, _) = state.now(clock);
        state.gate.day_used(now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Timeline> {
        // The gate is whole after every call: a panic elsewhere cannot
        // leave it half-written.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;
    use proptest::prelude::*;

    use super::*;
    use crate::clock::ManualClock;

    fn start() -> Timestamp {
        "2017-09-14T10:00:00Z".parse().unwrap()
    }

    fn per_minute(n: u32) -> Limits {
        Limits {
            per_minute: Some(n),
            ..Limits::default()
        }
    }

    /// Takes a turn and says how long it waits.
    fn take(limit: &RateLimit, clock: &ManualClock) -> Duration {
        limit.reserve(clock).until.saturating_sub(clock.monotonic())
    }

    #[test]
    fn sixty_a_minute_is_one_a_second_with_no_burst() {
        let clock = ManualClock::new(start());
        let limit = RateLimit::new(per_minute(60)).unwrap();
        // Three sends asking at the same instant queue one second apart.
        assert_eq!(take(&limit, &clock), Duration::ZERO);
        assert_eq!(take(&limit, &clock), Duration::from_secs(1));
        assert_eq!(take(&limit, &clock), Duration::from_secs(2));
        // Idle for an hour: one may go at once, the next a second later.
        clock.advance(SignedDuration::from_hours(1));
        assert_eq!(take(&limit, &clock), Duration::ZERO);
        assert_eq!(take(&limit, &clock), Duration::from_secs(1));
        // Half a second later the next in line waits the rest of its turn.
        clock.advance(SignedDuration::from_millis(500));
        assert_eq!(take(&limit, &clock), Duration::from_millis(1500));
    }

    #[test]
    fn the_turns_within_a_span_are_what_the_limits_let_through() {
        let clock = ManualClock::new(start());
        let limits = Limits {
            per_minute: Some(30),
            per_day: Some(4),
            ..Limits::default()
        };
        let limit = RateLimit::new(limits).unwrap();
        // 2 s apart: now, +2, +4 within 5 s.
        assert_eq!(limit.turns_within(&clock, SignedDuration::from_secs(5), 10), 3);
        assert_eq!(limit.turns_within(&clock, SignedDuration::from_secs(5), 2), 2);
        limit.seed(&clock, [start() - SignedDuration::from_hours(1); 3]);
        // One left of the day's four.
        assert_eq!(limit.turns_within(&clock, SignedDuration::from_secs(5), 10), 1);
    }

    #[test]
    fn no_limit_no_limiter() {
        assert!(RateLimit::new(Limits::default()).is_none());
    }

    #[test]
    fn a_restart_seeded_from_the_outbox_keeps_the_spacing_and_the_day() {
        let clock = ManualClock::new(start());
        let limits = Limits {
            per_minute: Some(60),
            per_day: Some(5),
            ..Limits::default()
        };
        // The last of three sends left 500 ms before the restart.
        let sent = [-2500, -1500, -500].map(|ms| start() + SignedDuration::from_millis(ms));
        let limit = RateLimit::new(limits).unwrap();
        limit.seed(&clock, sent);
        assert_eq!(limit.day_used(&clock), Some((3, 5)));
        assert_eq!(take(&limit, &clock), Duration::from_millis(500));
        assert_eq!(take(&limit, &clock), Duration::from_millis(1500));
        // The day's five are used: the next waits until the first of them
        // is a day old.
        let wait = take(&limit, &clock);
        assert_eq!(wait, Duration::from_secs(86_400) - Duration::from_millis(2500));
    }

    #[test]
    fn the_limit_counts_on_the_monotonic_clock_when_the_wall_clock_jumps() {
        let clock = ManualClock::new(start());
        let limit = RateLimit::new(per_minute(60)).unwrap();
        assert_eq!(take(&limit, &clock), Duration::ZERO);
        assert_eq!(take(&limit, &clock), Duration::from_secs(1));
        // NTP steps the clock back an hour; two seconds pass.
        clock.step_wall(SignedDuration::from_hours(-1));
        clock.advance(SignedDuration::from_secs(2));
        // The queued turn is over: free again, not an hour's stall.
        assert_eq!(take(&limit, &clock), Duration::ZERO);
        assert_eq!(take(&limit, &clock), Duration::from_secs(1));
        // A jump forward does not release the queue either.
        clock.step_wall(SignedDuration::from_hours(5));
        assert_eq!(take(&limit, &clock), Duration::from_secs(2));
    }

    proptest! {
        /// Whenever sends arrive, once each has waited its turn no 60-second
        /// window holds more than `per_minute` of them.
        #[test]
        fn no_minute_ever_holds_more_than_the_limit(
            per_minute_limit in 1u32..120,
            mut arrivals in prop::collection::vec(0i64..300_000, 1..300),
        ) {
            arrivals.sort_unstable();
            let clock = ManualClock::new(start());
            let limit = RateLimit::new(per_minute(per_minute_limit)).unwrap();
            let mut sent = Vec::new();
            for arrival in arrivals {
                let at = start() + SignedDuration::from_millis(arrival);
                clock.set(at);
                let wait = take(&limit, &clock);
                sent.push(at + SignedDuration::try_from(wait).unwrap());
            }
            sent.sort_unstable();
            for (i, first) in sent.iter().enumerate() {
                let end = *first + SignedDuration::from_secs(60);
                let in_window = sent[i..].iter().take_while(|at| **at < end).count();
                prop_assert!(in_window <= per_minute_limit as usize, "{in_window} sends in one minute");
            }
        }
    }
}
