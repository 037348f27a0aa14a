//! "At most N messages a minute" for one relay: a token bucket that paces
//! sends, and whose state can be saved across a restart.
//!
//! Written here rather than taken from a crate: governor is a lot of
//! machinery (its own clocks, quotas, middleware) for one counter, and this
//! counter must read herald's [`Clock`] and be saved and restored by the
//! daemon. Waiting is the caller's job (tokio time); this file only does the
//! arithmetic, so it is tested without waiting at all.
//!
//! The bucket holds at most one token, refilled at N per minute. A bigger
//! bucket would allow bursts: with room for B tokens, a 60-second window can
//! see B - 1 + N sends, more than the N a provider allows. With room for
//! one, any 60-second window sees at most N sends: the limit itself.
//!
//! Elapsed time is counted on the clock's monotonic reading, so a jump of
//! the wall clock neither fills the bucket (forward) nor stops it refilling
//! (back). Only a state restored after a restart is compared with the wall
//! clock, the one reading two processes share.

use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;

use crate::clock::Clock;

/// How many tokens the bucket holds when full (see the file's doc).
const CAPACITY: f64 = 1.0;

#[derive(Debug)]
pub(crate) struct RateLimit {
    per_minute: u32,
    bucket: Mutex<Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Below zero when sends have reserved tokens not yet refilled: each
    /// of them waits for its turn.
    tokens: f64,
    /// When `tokens` was last brought up to date, on the wall clock (what
    /// is saved); `None` until first used.
    at: Option<Timestamp>,
    /// The same instant on the monotonic clock; `None` until first used in
    /// this process (a restored state has only the wall clock's).
    monotonic: Option<Duration>,
}

impl RateLimit {
    /// `per_minute` must be at least 1; the caller checks.
    pub(crate) fn per_minute(per_minute: u32) -> RateLimit {
        RateLimit {
            per_minute: per_minute.max(1),
            bucket: Mutex::new(Bucket {
                tokens: CAPACITY,
                at: None,
                monotonic: None,
            }),
        }
    }

    fn per_second(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    /// Takes a token now and says how long to wait before using it. The
    /// token goes back if the reservation is dropped unused (a cancelled
    /// send), so cancellations do not slow later sends.
    pub(crate) fn reserve(&self, clock: &dyn Clock) -> Reservation<'_> {
        let mut bucket = self.lock();
        self.refill(&mut bucket, clock);
        bucket.tokens -= 1.0;
        let wait = if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            // Finite and positive (tokens are finite, the rate positive), so
            // the conversion holds; were it not, the send would wait for ever
            // rather than break the limit.
            Duration::try_from_secs_f64(-bucket.tokens / self.per_second()).unwrap_or(Duration::MAX)
        };
        Reservation {
            limit: self,
            wait,
            used: false,
        }
    }

    /// The bucket as of now: (tokens, now), for the daemon to save.
    pub(crate) fn state(&self, clock: &dyn Clock) -> (f64, Timestamp) {
        let mut bucket = self.lock();
        self.refill(&mut bucket, clock);
        (bucket.tokens, bucket.at.unwrap_or_else(|| clock.now()))
    }

    /// Puts back a saved bucket. A value that cannot be trusted errs on the
    /// slow side: no tokens rather than a full bucket.
    pub(crate) fn restore(&self, tokens: f64, at: Timestamp) {
        let tokens = if tokens.is_finite() { tokens } else { 0.0 };
        // A long queue of reservations from before a crash may never be
        // used; wait at most one minute's worth for them.
        let floor = -f64::from(self.per_minute);
        *self.lock() = Bucket {
            tokens: tokens.clamp(floor, CAPACITY),
            at: Some(at),
            monotonic: None,
        };
    }

    fn refill(&self, bucket: &mut Bucket, clock: &dyn Clock) {
        let (now, monotonic) = (clock.now(), clock.monotonic());
        let elapsed = match (bucket.monotonic, bucket.at) {
            (Some(before), _) => monotonic.saturating_sub(before).as_secs_f64(),
            // Restored from a save: the wall clocks of the two processes
            // are all there is to compare. One behind the saved stamp (set
            // back, or the state was saved by a clock ahead) earns nothing
            // for the gap, but the stamp moves to now, so refilling goes on
            // from here rather than waiting for the clock to catch up.
            (None, Some(at)) => now.duration_since(at).as_secs_f64().max(0.0),
            (None, None) => 0.0,
        };
        bucket.tokens = (bucket.tokens + elapsed * self.per_second()).min(CAPACITY);
        bucket.at = Some(now);
        bucket.monotonic = Some(monotonic);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        // The bucket is a pair of numbers, consistent after every statement:
        // a panic elsewhere cannot leave it half-written.
        self.bucket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A token taken from the bucket, to be used after [`Reservation::wait`].
#[derive(Debug)]
pub(crate) struct Reservation<'a> {
    limit: &'a RateLimit,
    wait: Duration,
    used: bool,
}

impl Reservation<'_> {
    pub(crate) fn wait(&self) -> Duration {
        self.wait
    }

    /// The send goes ahead: the token is spent.
    pub(crate) fn use_it(mut self) {
        self.used = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.used {
            let mut bucket = self.limit.lock();
            bucket.tokens = (bucket.tokens + 1.0).min(CAPACITY);
        }
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

    fn take(limit: &RateLimit, clock: &ManualClock) -> Duration {
        let reservation = limit.reserve(clock);
        let wait = reservation.wait();
        reservation.use_it();
        wait
    }

    #[test]
    fn sixty_a_minute_is_one_a_second_with_no_burst() {
        let clock = ManualClock::new(start());
        let limit = RateLimit::per_minute(60);
        // Three sends asking at the same instant queue one second apart.
        assert_eq!(take(&limit, &clock), Duration::ZERO);
        assert_eq!(take(&limit, &clock), Duration::from_secs(1));
        assert_eq!(take(&limit, &clock), Duration::from_secs(2));
        // Idle for an hour: the bucket is full again, but full is one token.
        clock.advance(SignedDuration::from_hours(1));
        assert_eq!(take(&limit, &clock), Duration::ZERO);
        assert_eq!(take(&limit, &clock), Duration::from_secs(1));
        // Half a second later the next in line waits the rest of its turn.
        clock.advance(SignedDuration::from_millis(500));
        assert_eq!(take(&limit, &clock), Duration::from_millis(1500));
    }

    #[test]
    fn a_cancelled_send_gives_its_turn_back() {
        let clock = ManualClock::new(start());
        let limit = RateLimit::per_minute(60);
        assert_eq!(take(&limit, &clock), Duration::ZERO);
        let cancelled = limit.reserve(&clock);
        assert_eq!(cancelled.wait(), Duration::from_secs(1));
        drop(cancelled);
        assert_eq!(take(&limit, &clock), Duration::from_secs(1));
    }

    #[test]
    fn a_restart_resumes_the_bucket_instead_of_starting_full() {
        let clock = ManualClock::new(start());
        let before = RateLimit::per_minute(60);
        for _ in 0..3 {
            take(&before, &clock);
        }
        let (tokens, at) = before.state(&clock);
        assert_eq!((tokens, at), (-2.0, start()));

        // The daemon restarts 500 ms later with a fresh limiter.
        clock.advance(SignedDuration::from_millis(500));
        let after = RateLimit::per_minute(60);
        after.restore(tokens, at);
        // The two queued turns are still owed: the next send waits 2.5 s,
        // where a fresh bucket would have let it go at once.
        assert_eq!(take(&after, &clock), Duration::from_millis(2500));
        assert_eq!(take(&RateLimit::per_minute(60), &clock), Duration::ZERO);
    }

    #[test]
    fn an_untrustworthy_saved_state_errs_on_the_slow_side() {
        let clock = ManualClock::new(start());
        let limit = RateLimit::per_minute(60);
        limit.restore(f64::NAN, start());
        assert_eq!(take(&limit, &clock), Duration::from_secs(1));

        // Saved by a clock one minute ahead: nothing earned for the gap, and
        // refilling from the first use on.
        let limit = RateLimit::per_minute(60);
        limit.restore(0.0, start() + SignedDuration::from_mins(1));
        clock.advance(SignedDuration::from_secs(30));
        assert_eq!(take(&limit, &clock), Duration::from_secs(1));
        clock.advance(SignedDuration::from_secs(2));
        assert_eq!(take(&limit, &clock), Duration::ZERO);

        // More tokens than a bucket holds, or a queue of an hour: clamped.
        let limit = RateLimit::per_minute(60);
        limit.restore(1000.0, clock.now());
        assert_eq!(take(&limit, &clock), Duration::ZERO);
        assert_eq!(take(&limit, &clock), Duration::from_secs(1));
        let limit = RateLimit::per_minute(60);
        limit.restore(-3600.0, clock.now());
        assert_eq!(take(&limit, &clock), Duration::from_secs(61));
    }

    #[test]
    fn the_bucket_keeps_refilling_after_the_wall_clock_is_set_back() {
        let clock = ManualClock::new(start());
        let limit = RateLimit::per_minute(60);
        assert_eq!(take(&limit, &clock), Duration::ZERO);
        assert_eq!(take(&limit, &clock), Duration::from_secs(1));
        // NTP steps the clock back an hour; two seconds pass.
        clock.step_wall(SignedDuration::from_hours(-1));
        clock.advance(SignedDuration::from_secs(2));
        // The queued turn was paid for by the two seconds: free again.
        assert_eq!(take(&limit, &clock), Duration::ZERO);
        assert_eq!(take(&limit, &clock), Duration::from_secs(1));
        // A jump forward does not fill the bucket either.
        clock.step_wall(SignedDuration::from_hours(5));
        assert_eq!(take(&limit, &clock), Duration::from_secs(2));
    }

    proptest! {
        /// Whenever sends arrive, once each has waited its turn no 60-second
        /// window holds more than `per_minute` of them.
        #[test]
        fn no_minute_ever_holds_more_than_the_limit(
            per_minute in 1u32..120,
            mut arrivals in prop::collection::vec(0i64..300_000, 1..300),
        ) {
            arrivals.sort_unstable();
            let clock = ManualClock::new(start());
            let limit = RateLimit::per_minute(per_minute);
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
                // Rounding to the nanosecond can put a turn a hair early.
                let end = end - SignedDuration::from_micros(1);
                let in_window = sent[i..].iter().take_while(|at| **at < end).count();
                prop_assert!(in_window <= per_minute as usize, "{in_window} sends in one minute");
            }
        }
    }
}
