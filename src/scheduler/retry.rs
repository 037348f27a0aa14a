//! When to try again after a transient failure.
//!
//! Exponential backoff with jitter, up to a number of attempts. The jitter
//! comes from a hash of the send's key and attempt rather than a random
//! generator: retries of a batch still spread out, and a test can predict
//! them.

use jiff::{SignedDuration, Timestamp};

/// The retry policy; defaults suit a relay that is briefly unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure. Default: 1 minute.
    pub first: SignedDuration,
    /// The longest wait. Default: 1 hour.
    pub max: SignedDuration,
    /// Attempts in all before the send is recorded as failed. Default: 8.
    pub attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            first: SignedDuration::from_mins(1),
            max: SignedDuration::from_hours(1),
            attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// When to try again after failed attempt number `attempt` (1-based),
    /// or `None` when the attempts are used up.
    pub fn next_attempt(&self, key: &str, attempt: u32, now: Timestamp) -> Option<Timestamp> {
        if attempt >= self.attempts {
            return None;
        }
        let exponent = attempt.saturating_sub(1).min(20);
        let base = self.first.as_secs_f64() * f64::from(1u32 << exponent);
        let base = base.min(self.max.as_secs_f64());
        // Between 80% and 120% of the base.
        let jitter = 0.8 + 0.4 * unit_hash(key, attempt);
        let wait = SignedDuration::try_from_secs_f64(base * jitter).unwrap_or(self.max);
        now.checked_add(wait).ok()
    }
}

/// A number in [0, 1) from the key and attempt (FNV-1a; stable across
/// builds, unlike std's hasher).
fn unit_hash(key: &str, attempt: u32) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes().chain(attempt.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_with_jitter_up_to_the_limit() {
        let policy = RetryPolicy::default();
        let now = Timestamp::UNIX_EPOCH;
        let wait = |attempt| {
            policy
                .next_attempt("k", attempt, now)
                .map(|t| t.duration_since(now).as_secs())
        };
        let first = wait(1).unwrap();
        assert!((48..=72).contains(&first), "{first}");
        let third = wait(3).unwrap();
        assert!((192..=288).contains(&third), "{third}");
        assert!(wait(7).unwrap() <= 4320);
        assert_eq!(wait(8), None);
        // Different keys spread out; the same key is predictable.
        assert_ne!(policy.next_attempt("a", 1, now), policy.next_attempt("b", 1, now));
        assert_eq!(policy.next_attempt("a", 1, now), policy.next_attempt("a", 1, now));
    }
}
