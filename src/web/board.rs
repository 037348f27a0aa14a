//! What the daemon's loop tells the admin listener that the outbox does
//! not: whether the loop is passing (`/healthz`) and the configuration's
//! state (the status page).
//!
//! The loop is passing on the watchdog's own terms: it beats where it
//! pings systemd's watchdog (each pass, each send finished during a long
//! batch), and is stuck when no beat came within the watchdog interval.
//! Without a watchdog the loop may sleep for hours before the next send,
//! so a sleep moves the deadline by its length: only a loop that overruns
//! what it said it would do is stuck.

use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;

/// How long the loop may go without a beat when systemd sets no watchdog:
/// longer than a pass of a healthy daemon (a batch of sends each finishing
/// within the SMTP timeout beats at each send).
pub const DEFAULT_ALLOWANCE: Duration = Duration::from_secs(120);

/// The configuration as the status page shows it.
#[derive(Clone, Debug, Default)]
pub struct ConfigState {
    /// When the configuration that runs was loaded.
    pub loaded_at: Option<Timestamp>,
    /// The last edit, if it was refused: when, and its problems in words.
    /// Cleared when a good one is loaded.
    pub refused: Option<(Timestamp, Vec<String>)>,
}

/// Shared between the daemon's loop and the admin listener.
pub struct Board {
    /// How long a beat lasts: the watchdog interval, or [`DEFAULT_ALLOWANCE`].
    allowance: Duration,
    /// The monotonic instant after which, without a beat, the loop is stuck.
    deadline: Mutex<Option<Duration>>,
    config: Mutex<ConfigState>,
}

impl Board {
    pub fn new(watchdog: Option<Duration>) -> Board {
        Board {
            allowance: watchdog.unwrap_or(DEFAULT_ALLOWANCE),
            deadline: Mutex::new(None),
            config: Mutex::new(ConfigState::default()),
        }
    }

    /// The loop is passing, at `monotonic`.
    pub fn beat(&self, monotonic: Duration) {
        self.set_deadline(monotonic + self.allowance);
    }

    /// The loop goes to sleep, at `monotonic`, for `delay` of real time.
    pub fn sleeping(&self, monotonic: Duration, delay: Duration) {
        self.set_deadline(monotonic.saturating_add(delay).saturating_add(self.allowance));
    }

    /// Whether the loop has missed its deadline at `monotonic`. Before
    /// the first beat the daemon is starting, not stuck.
    pub fn stuck(&self, monotonic: Duration) -> bool {
        let deadline = *self.deadline.lock().unwrap_or_else(|p| p.into_inner());
        deadline.is_some_and(|deadline| monotonic > deadline)
    }

    fn set_deadline(&self, deadline: Duration) {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner()) = Some(deadline);
    }

    /// A configuration was loaded and put in use at `at`.
    pub fn loaded(&self, at: Timestamp) {
        let mut config = self.config.lock().unwrap_or_else(|p| p.into_inner());
        config.loaded_at = Some(at);
        config.refused = None;
    }

    /// An edit was refused at `at`, for `problems`; the last good
    /// configuration runs on.
    pub fn refused(&self, at: Timestamp, problems: Vec<String>) {
        self.config.lock().unwrap_or_else(|p| p.into_inner()).refused = Some((at, problems));
    }

    pub fn config(&self) -> ConfigState {
        self.config.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn a_loop_is_stuck_only_past_its_beat_or_its_sleep() {
        let board = Board::new(Some(S(10)));
        assert!(!board.stuck(S(1000)), "not stuck before the first beat");
        board.beat(S(100));
        assert!(!board.stuck(S(110)));
        assert!(board.stuck(S(111)));
        board.sleeping(S(120), S(3600));
        assert!(!board.stuck(S(3700)));
        assert!(board.stuck(S(3731)));
    }

    #[test]
    fn a_good_load_clears_the_refusal() {
        let board = Board::new(None);
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        board.refused(at, vec!["events.toml:3: no such list".to_owned()]);
        assert!(board.config().refused.is_some());
        board.loaded(at);
        assert!(board.config().refused.is_none());
        assert_eq!(board.config().loaded_at, Some(at));
    }
}
