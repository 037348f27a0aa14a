//! The one place herald reads the time.
//!
//! Everything that needs "now" takes a [`Clock`], so tests can run days of
//! schedule in seconds and a rehearsal can start at a chosen instant. A tidy
//! test checks that no other file calls `Timestamp::now`.
//!
//! A clock has two readings: the wall clock ([`Clock::now`]), which says
//! when sends are due and can jump (NTP stepping it, a VM restored from a
//! snapshot, an operator's `date -s`), and a monotonic one
//! ([`Clock::monotonic`]), which only ever moves forward at the pace of
//! real time. Comparing the two is how the daemon sees a jump
//! ([`JumpWatch`]), and the rate limit counts elapsed time on the
//! monotonic one, so a jump neither refills nor starves it. The clocks for
//! tests can step their wall clock alone, to play a jump.

use std::fmt;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

/// A source of the current instant.
pub trait Clock: Send + Sync {
    /// The wall clock: when sends are due.
    fn now(&self) -> Timestamp;

    /// Time elapsed since an arbitrary origin (fixed for the clock's
    /// life), on a clock that never jumps and never goes back.
    fn monotonic(&self) -> Duration;

    /// How long to wait on the real (tokio) timer for `span` of this clock's
    /// time to pass. A rehearsal clock that runs faster waits less. A
    /// negative span has passed already: no wait.
    fn real_delay(&self, span: SignedDuration) -> std::time::Duration {
        span.max(SignedDuration::ZERO).unsigned_abs()
    }

    /// How long to wait on the real (tokio) timer until the monotonic clock
    /// reads `monotonic`; nothing if it has already. Waits that overlap
    /// (several sends queued at the relay's limit) each wait until their
    /// own instant, so a stepping clock moves to the latest of them, not
    /// by the sum of them.
    fn real_delay_until(&self, monotonic: Duration) -> std::time::Duration {
        let span = monotonic.saturating_sub(self.monotonic());
        self.real_delay(SignedDuration::try_from(span).unwrap_or(SignedDuration::MAX))
    }
}

/// `at + by`, or the last instant jiff knows in that direction: a clock
/// pushed past the end of time stays at its end rather than going back.
fn saturating_add(at: Timestamp, by: SignedDuration) -> Timestamp {
    at.checked_add(by).unwrap_or(if by.is_negative() {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// The instant the process first read the monotonic clock: the origin of
/// [`SystemClock::monotonic`].
fn process_origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// The system's wall clock, and its monotonic clock (`CLOCK_MONOTONIC`,
/// which stands still while the machine is suspended: a resume looks like
/// a forward jump of the wall clock, and is one for the schedule).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn monotonic(&self) -> Duration {
        process_origin().elapsed()
    }
}

/// A wall clock and a monotonic one that tests move: together as time
/// passes, or the wall clock alone for a jump.
#[derive(Debug, Clone, Copy)]
struct Readings {
    wall: Timestamp,
    monotonic: Duration,
}

impl Readings {
    fn new(start: Timestamp) -> Readings {
        Readings {
            wall: start,
            monotonic: Duration::ZERO,
        }
    }

    /// `by` of time passes (nothing if `by` is negative: time does not go
    /// back; only the wall clock can, with `step_wall`).
    fn pass(&mut self, by: SignedDuration) {
        let by = by.max(SignedDuration::ZERO);
        self.wall = saturating_add(self.wall, by);
        self.monotonic = self.monotonic.saturating_add(by.unsigned_abs());
    }

    fn step_wall(&mut self, by: SignedDuration) {
        self.wall = saturating_add(self.wall, by);
    }
}

fn lock(readings: &Mutex<Readings>) -> std::sync::MutexGuard<'_, Readings> {
    // Two values, each written whole: a panic elsewhere cannot leave them
    // half-written.
    readings.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A clock that stands still until told to move; for tests.
#[derive(Debug)]
pub struct ManualClock {
    readings: Mutex<Readings>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock {
            readings: Mutex::new(Readings::new(start)),
        }
    }

    /// Time passes until `at`; an `at` in the past is a step of the wall
    /// clock back (the monotonic clock stays).
    pub fn set(&self, at: Timestamp) {
        let mut readings = lock(&self.readings);
        let by = readings.wall.duration_until(at);
        if by.is_negative() {
            readings.step_wall(by);
        } else {
            readings.pass(by);
        }
    }

    /// `by` of time passes, on both clocks.
    pub fn advance(&self, by: SignedDuration) {
        lock(&self.readings).pass(by);
    }

    /// The wall clock jumps by `by` (either way); the monotonic clock
    /// does not move.
    pub fn step_wall(&self, by: SignedDuration) {
        lock(&self.readings).step_wall(by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        lock(&self.readings).wall
    }

    fn monotonic(&self) -> Duration {
        lock(&self.readings).monotonic
    }
}

/// A clock that starts at a chosen instant and runs `speed` times faster
/// than real time; for rehearsals ("replay the 2017 roadmap in seconds").
///
/// It counts real time on the monotonic clock, so a jump of the system's
/// wall clock does not move a rehearsal.
#[derive(Debug)]
pub struct FastClock {
    start: Timestamp,
    real_start: Instant,
    speed: f64,
}

impl FastClock {
    pub fn new(start: Timestamp, speed: f64) -> FastClock {
        FastClock {
            start,
            real_start: Instant::now(),
            speed,
        }
    }

    /// Rehearsal time elapsed since the start.
    fn elapsed(&self) -> Duration {
        let real = self.real_start.elapsed();
        // Too far for a duration: the end of time, which is where it goes.
        Duration::try_from_secs_f64(real.as_secs_f64() * self.speed).unwrap_or(Duration::MAX)
    }
}

impl Clock for FastClock {
    fn now(&self) -> Timestamp {
        let scaled = SignedDuration::try_from(self.elapsed()).unwrap_or(SignedDuration::MAX);
        saturating_add(self.start, scaled)
    }

    fn monotonic(&self) -> Duration {
        self.elapsed()
    }

    /// `span` of rehearsal time passes in `span / speed` of real time.
    fn real_delay(&self, span: SignedDuration) -> std::time::Duration {
        let real = span.max(SignedDuration::ZERO).as_secs_f64() / self.speed;
        // A speed below 1 can stretch a wait past what a Duration holds.
        std::time::Duration::try_from_secs_f64(real).unwrap_or(std::time::Duration::MAX)
    }
}

/// A clock that only moves when the daemon waits, and then jumps straight
/// to the end of the wait: days of schedule run in the time it takes to
/// send their mail, and no send is ever late. For rehearsals
/// (`herald run --fast-forward`) and tests.
#[derive(Debug)]
pub struct SteppingClock {
    readings: Mutex<Readings>,
}

impl SteppingClock {
    pub fn new(start: Timestamp) -> SteppingClock {
        SteppingClock {
            readings: Mutex::new(Readings::new(start)),
        }
    }

    /// The wall clock jumps by `by` (either way); the monotonic clock does
    /// not move. For tests of clock jumps.
    pub fn step_wall(&self, by: SignedDuration) {
        lock(&self.readings).step_wall(by);
    }
}

impl Clock for SteppingClock {
    fn now(&self) -> Timestamp {
        lock(&self.readings).wall
    }

    fn monotonic(&self) -> Duration {
        lock(&self.readings).monotonic
    }

    fn real_delay(&self, span: SignedDuration) -> std::time::Duration {
        lock(&self.readings).pass(span);
        std::time::Duration::ZERO
    }

    /// Jumps to `monotonic` if it is ahead (under one lock, so overlapping
    /// waits move the clock to the latest of them).
    fn real_delay_until(&self, monotonic: Duration) -> std::time::Duration {
        let mut readings = lock(&self.readings);
        let span = monotonic.saturating_sub(readings.monotonic);
        readings.pass(SignedDuration::try_from(span).unwrap_or(SignedDuration::MAX));
        std::time::Duration::ZERO
    }
}

/// A jump of the wall clock: how far it moved beyond (or short of) the
/// monotonic clock since the last look. Positive: forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jump(pub SignedDuration);

/// Watches a clock for jumps of its wall clock, by comparing how far it
/// moved with how far the monotonic clock moved between two looks.
#[derive(Debug, Clone, Copy)]
pub struct JumpWatch {
    wall: Timestamp,
    monotonic: Duration,
}

impl JumpWatch {
    /// Less than this between the two clocks is noise (the two readings
    /// are not taken at the same instant; NTP slews small differences).
    pub const THRESHOLD: SignedDuration = SignedDuration::from_secs(10);

    pub fn new(clock: &dyn Clock) -> JumpWatch {
        JumpWatch {
            wall: clock.now(),
            monotonic: clock.monotonic(),
        }
    }

    /// Looks at the clock again: the jump since the last look, if the wall
    /// clock moved more than [`JumpWatch::THRESHOLD`] more or less than the
    /// monotonic one.
    pub fn look(&mut self, clock: &dyn Clock) -> Option<Jump> {
        let (wall, monotonic) = (clock.now(), clock.monotonic());
        let walked = self.wall.duration_until(wall);
        let elapsed =
            SignedDuration::try_from(monotonic.saturating_sub(self.monotonic)).unwrap_or(SignedDuration::MAX);
        self.wall = wall;
        self.monotonic = monotonic;
        let jump = walked.saturating_sub(elapsed);
        (jump.abs() > JumpWatch::THRESHOLD).then_some(Jump(jump))
    }
}

/// A time given on the command line that [`parse_instant`] cannot read;
/// holds the text as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidInstant(pub String);

impl fmt::Display for InvalidInstant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid time {:?}: write a date (2017-09-14), an RFC 3339 time (2017-09-14T10:00:00Z) or \"now\"",
            self.0
        )
    }
}

impl std::error::Error for InvalidInstant {}

/// Parses a time given on the command line: RFC 3339 ("2017-09-14T10:00Z"),
/// a zoned time ("2017-09-14T10:00[America/New_York]"), a bare date (midnight
/// UTC), or "now".
pub fn parse_instant(text: &str, clock: &dyn Clock) -> Result<Timestamp, InvalidInstant> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("now") {
        return Ok(clock.now());
    }
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    if let Ok(zoned) = text.parse::<jiff::ZonedDateTime>() {
        return Ok(zoned.timestamp());
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>()
        && let Ok(zoned) = date.to_zoned_datetime(jiff::tz::TimeZone::UTC)
    {
        return Ok(zoned.timestamp());
    }
    Err(InvalidInstant(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jump_is_the_wall_clock_moving_apart_from_the_monotonic_one() {
        let clock = ManualClock::new("2017-09-14T10:00:00Z".parse().unwrap());
        let mut watch = JumpWatch::new(&clock);
        clock.advance(SignedDuration::from_hours(5));
        assert_eq!(watch.look(&clock), None, "time passing is no jump");
        clock.step_wall(SignedDuration::from_hours(24));
        clock.advance(SignedDuration::from_mins(1));
        assert_eq!(watch.look(&clock), Some(Jump(SignedDuration::from_hours(24))));
        assert_eq!(watch.look(&clock), None, "seen once");
        clock.step_wall(SignedDuration::from_hours(-24));
        assert_eq!(watch.look(&clock), Some(Jump(SignedDuration::from_hours(-24))));
        clock.step_wall(SignedDuration::from_secs(3));
        assert_eq!(watch.look(&clock), None, "a few seconds is noise");
        assert_eq!(clock.monotonic(), Duration::from_secs(5 * 3600 + 60));
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new("2017-09-14T10:00:00Z".parse().unwrap());
        clock.advance(SignedDuration::from_hours(25));
        assert_eq!(clock.now().to_string(), "2017-09-15T11:00:00Z");
    }

    #[test]
    fn the_stepping_clock_jumps_when_waited_on() {
        let clock = SteppingClock::new("2017-09-14T10:00:00Z".parse().unwrap());
        assert_eq!(
            clock.real_delay(SignedDuration::from_hours(48)),
            std::time::Duration::ZERO
        );
        assert_eq!(clock.now().to_string(), "2017-09-16T10:00:00Z");
    }

    #[test]
    fn overlapping_waits_move_the_stepping_clock_to_the_latest_not_the_sum() {
        let clock = SteppingClock::new("2017-09-14T10:00:00Z".parse().unwrap());
        // Three sends queued at the relay's limit, 2, 4 and 6 s ahead.
        for secs in [2, 4, 6] {
            assert_eq!(
                clock.real_delay_until(Duration::from_secs(secs)),
                std::time::Duration::ZERO
            );
        }
        assert_eq!(clock.now().to_string(), "2017-09-14T10:00:06Z");
        // One already past does not move it.
        clock.real_delay_until(Duration::from_secs(1));
        assert_eq!(clock.monotonic(), Duration::from_secs(6));
        // A fast clock waits the rest, divided by its speed.
        let fast = FastClock::new("2017-09-14T10:00:00Z".parse().unwrap(), 1e9);
        assert!(fast.real_delay_until(Duration::from_secs(60)) <= Duration::from_secs(1));
    }

    #[test]
    fn instants_from_the_command_line() {
        let clock = ManualClock::new("2020-01-01T00:00:00Z".parse().unwrap());
        assert_eq!(
            parse_instant("2017-09-14", &clock).unwrap().to_string(),
            "2017-09-14T00:00:00Z"
        );
        assert_eq!(
            parse_instant("2017-09-14T10:00:00-04:00", &clock)
                .unwrap()
                .to_string(),
            "2017-09-14T14:00:00Z"
        );
        assert_eq!(parse_instant("now", &clock).unwrap(), clock.now());
        let error = parse_instant(" yesterday-ish ", &clock).unwrap_err();
        assert_eq!(error, InvalidInstant("yesterday-ish".into()));
        assert!(
            error
                .to_string()
                .starts_with("invalid time \"yesterday-ish\": write a date"),
            "{error}"
        );
    }

    #[test]
    fn a_fast_clock_waits_less_in_real_time() {
        let clock = FastClock::new("2017-09-14T10:00:00Z".parse().unwrap(), 60.0);
        let second = std::time::Duration::from_secs(1);
        assert_eq!(clock.real_delay(SignedDuration::from_mins(1)), second);
        assert_eq!(
            clock.real_delay(SignedDuration::from_secs(-5)),
            std::time::Duration::ZERO
        );
        let slow = FastClock::new("2017-09-14T10:00:00Z".parse().unwrap(), 0.5);
        assert_eq!(slow.real_delay(SignedDuration::from_secs(1)), 2 * second);
    }

    #[test]
    fn clocks_never_go_back_past_the_end_of_time() {
        let clock = SteppingClock::new(Timestamp::MAX - SignedDuration::from_hours(1));
        clock.real_delay(SignedDuration::from_hours(48));
        assert_eq!(clock.now(), Timestamp::MAX);
        // A negative wait does not move it back.
        clock.real_delay(SignedDuration::from_hours(-48));
        assert_eq!(clock.now(), Timestamp::MAX);
        assert_eq!(
            SystemClock.real_delay(SignedDuration::from_secs(-1)),
            std::time::Duration::ZERO
        );
    }
}
