//! The one place herald reads the time.
//!
//! Everything that needs "now" takes a [`Clock`], so tests can run days of
//! schedule in seconds and a rehearsal can start at a chosen instant. A tidy
//! test checks that no other file calls `Timestamp::now`.

use std::fmt;
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// A source of the current instant.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;

    /// How long to wait on the real (tokio) timer for `span` of this clock's
    /// time to pass. A rehearsal clock that runs faster waits less. A
    /// negative span has passed already: no wait.
    fn real_delay(&self, span: SignedDuration) -> std::time::Duration {
        span.max(SignedDuration::ZERO).unsigned_abs()
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

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that stands still until told to move; for tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    pub fn set(&self, at: Timestamp) {
        *self.now.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = at;
    }

    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.now.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *now = saturating_add(*now, by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A clock that starts at a chosen instant and runs `speed` times faster
/// than real time; for rehearsals ("replay the 2017 roadmap in seconds").
#[derive(Debug)]
pub struct FastClock {
    start: Timestamp,
    real_start: Timestamp,
    speed: f64,
}

impl FastClock {
    pub fn new(start: Timestamp, speed: f64) -> FastClock {
        FastClock {
            start,
            real_start: Timestamp::now(),
            speed,
        }
    }
}

impl Clock for FastClock {
    fn now(&self) -> Timestamp {
        let real = Timestamp::now().duration_since(self.real_start);
        // Too far for a duration: the end of time, which is where it goes.
        let scaled =
            SignedDuration::try_from_secs_f64(real.as_secs_f64() * self.speed).unwrap_or(SignedDuration::MAX);
        saturating_add(self.start, scaled)
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
    now: Mutex<Timestamp>,
}

impl SteppingClock {
    pub fn new(start: Timestamp) -> SteppingClock {
        SteppingClock {
            now: Mutex::new(start),
        }
    }
}

impl Clock for SteppingClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn real_delay(&self, span: SignedDuration) -> std::time::Duration {
        let mut now = self.now.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *now = saturating_add(*now, span.max(SignedDuration::ZERO));
        std::time::Duration::ZERO
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
