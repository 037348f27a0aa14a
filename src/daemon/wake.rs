//! When the daemon wakes next, and whether it reconciles: pure functions
//! of what it read after a pass, unit-tested without a clock.

use jiff::{SignedDuration, Timestamp};

/// What the next wake-up depends on, as read after a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Outlook {
    pub now: Timestamp,
    /// When the earliest planned send is due; `None` when nothing is
    /// planned (or the outbox cannot be read).
    pub next_due: Option<Timestamp>,
    /// When the outbox must take in more of the plan
    /// (`Scheduler::refill_at`); `None` when unknown.
    pub refill_at: Option<Timestamp>,
    /// The last dispatch could not update the outbox.
    pub dispatch_failed: bool,
    /// When the operator's digest is due next (`None`: no `[digest]`).
    pub digest_at: Option<Timestamp>,
}

/// What the loop does after a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wake {
    /// Sleep this long on the daemon's clock, then pass again.
    After(SignedDuration),
    /// The clock has passed `until` and nothing is due before it.
    RehearsalOver,
}

/// When to wake up next: when the next send is due, but never later than
/// a tick (`scheduler::wait_for`), than when the outbox needs more of the
/// plan, than the operator's digest, or than the end of the rehearsal
/// (`until`). Pure.
///
/// - A refill instant that is unknown or already past (the reconcile
///   failed just now) is left out: the reconcile is tried again at the
///   next tick, not in a busy loop; so is a digest already due (it could
///   not be sent just now).
/// - After a failed dispatch, the sends already due are left out too: they
///   could not be claimed, and would wake the loop at once, again and again.
/// - A rehearsal ends at `until`, not at the first send after it; once the
///   clock has passed `until`, it ends as soon as nothing is due before it.
pub(super) fn next_wake(outlook: &Outlook, until: Option<Timestamp>, tick: SignedDuration) -> Wake {
    let Outlook {
        now,
        next_due,
        refill_at,
        dispatch_failed,
        digest_at,
    } = *outlook;
    if let Some(until) = until
        && now >= until
        && next_due.is_none_or(|due| due >= until)
    {
        return Wake::RehearsalOver;
    }
    let next_due = next_due.filter(|due| !dispatch_failed || *due > now);
    let mut wait = crate::scheduler::wait_for(next_due, now, tick);
    if let Some(refill_at) = refill_at
        && refill_at > now
    {
        wait = wait.min(now.duration_until(refill_at));
    }
    if let Some(digest_at) = digest_at
        && digest_at > now
    {
        wait = wait.min(now.duration_until(digest_at));
    }
    if let Some(until) = until
        && until > now
    {
        wait = wait.min(now.duration_until(until));
    }
    Wake::After(wait)
}

/// Whether to reconcile now: the outbox needs more of the plan (its refill
/// instant has come, or is unknown), or `every` has passed since `last`.
/// Pure.
pub(super) fn reconcile_due(
    now: Timestamp,
    refill_at: Option<Timestamp>,
    last: Timestamp,
    every: SignedDuration,
) -> bool {
    refill_at.is_none_or(|at| now >= at) || now.duration_since(last) >= every
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    const NOW: &str = "2017-10-02T12:00:00Z";
    const TICK: SignedDuration = SignedDuration::from_secs(60);

    /// An outlook at `NOW` with nothing planned and no refill known.
    fn outlook() -> Outlook {
        Outlook {
            now: at(NOW),
            next_due: None,
            refill_at: None,
            dispatch_failed: false,
            digest_at: None,
        }
    }

    fn after(secs: i64) -> Wake {
        Wake::After(SignedDuration::from_secs(secs))
    }

    #[test]
    fn with_nothing_due_the_daemon_sleeps_a_tick() {
        assert_eq!(next_wake(&outlook(), None, TICK), Wake::After(TICK));
        // A send due after the tick: the tick first.
        let later = Outlook {
            next_due: Some(at("2017-10-02T13:00:00Z")),
            ..outlook()
        };
        assert_eq!(next_wake(&later, None, TICK), Wake::After(TICK));
    }

    #[test]
    fn a_send_due_before_the_tick_wakes_the_daemon_at_its_due_instant() {
        let soon = Outlook {
            next_due: Some(at("2017-10-02T12:00:20Z")),
            ..outlook()
        };
        assert_eq!(next_wake(&soon, None, TICK), after(20));
        // Due already (it came due during the pass): at once.
        let due = Outlook {
            next_due: Some(at("2017-10-02T11:59:00Z")),
            ..outlook()
        };
        assert_eq!(next_wake(&due, None, TICK), after(0));
    }

    #[test]
    fn a_refill_sooner_than_the_next_send_wakes_the_daemon_first() {
        let refill = Outlook {
            next_due: Some(at("2017-10-02T12:00:40Z")),
            refill_at: Some(at("2017-10-02T12:00:10Z")),
            ..outlook()
        };
        assert_eq!(next_wake(&refill, None, TICK), after(10));
        // A later refill changes nothing.
        let later = Outlook {
            refill_at: Some(at("2017-10-03T12:00:00Z")),
            ..refill
        };
        assert_eq!(next_wake(&later, None, TICK), after(40));
    }

    #[test]
    fn a_failed_refill_never_makes_a_busy_loop() {
        // Unknown (the outbox could not be read), or already past (the
        // reconcile failed just now): a tick, not zero.
        for refill_at in [None, Some(at("2017-10-02T11:00:00Z")), Some(at(NOW))] {
            let failed = Outlook {
                refill_at,
                ..outlook()
            };
            assert_eq!(next_wake(&failed, None, TICK), Wake::After(TICK), "{refill_at:?}");
        }
    }

    #[test]
    fn a_failed_dispatch_never_makes_a_busy_loop() {
        // The due send could not be claimed: try again in a tick, not at once.
        let failed = Outlook {
            next_due: Some(at("2017-10-02T11:59:00Z")),
            dispatch_failed: true,
            ..outlook()
        };
        assert_eq!(next_wake(&failed, None, TICK), Wake::After(TICK));
        // A send due later still wakes the daemon at its instant.
        let later = Outlook {
            next_due: Some(at("2017-10-02T12:00:30Z")),
            ..failed
        };
        assert_eq!(next_wake(&later, None, TICK), after(30));
    }

    #[test]
    fn the_digest_wakes_the_daemon_at_its_instant() {
        // Sooner than the next send: the digest first, even past a tick
        // (a fast-forward rehearsal's day-long tick).
        let day = SignedDuration::from_hours(24);
        let digest = Outlook {
            next_due: Some(at("2017-10-03T12:00:00Z")),
            digest_at: Some(at("2017-10-02T18:00:00Z")),
            ..outlook()
        };
        assert_eq!(next_wake(&digest, None, day), after(6 * 3600));
        // Later than the next send: the send first.
        let later = Outlook {
            digest_at: Some(at("2017-10-04T06:00:00Z")),
            ..digest
        };
        assert_eq!(next_wake(&later, None, day), Wake::After(day));
        // In a rehearsal, a digest before `until` is not skipped over.
        let until = Some(at("2017-10-05T00:00:00Z"));
        assert_eq!(next_wake(&digest, until, day), after(6 * 3600));
    }

    #[test]
    fn a_digest_that_could_not_go_never_makes_a_busy_loop() {
        // Already due (the try just now failed, or the outbox could not
        // record it): a tick, not zero.
        for digest_at in [Some(at("2017-10-02T08:00:00Z")), Some(at(NOW))] {
            let failed = Outlook {
                digest_at,
                ..outlook()
            };
            assert_eq!(next_wake(&failed, None, TICK), Wake::After(TICK), "{digest_at:?}");
        }
    }

    #[test]
    fn the_rehearsal_ends_at_until_once_nothing_is_due_before_it() {
        let until = Some(at(NOW));
        assert_eq!(next_wake(&outlook(), until, TICK), Wake::RehearsalOver);
        // Past `until`, with the next send due after it: over.
        let after_until = Outlook {
            now: at("2017-10-02T12:00:30Z"),
            next_due: Some(at("2017-10-02T12:00:40Z")),
            ..outlook()
        };
        assert_eq!(next_wake(&after_until, until, TICK), Wake::RehearsalOver);
        // A send due before `until` (it came due during the pass) goes
        // first, at once.
        let due_before = Outlook {
            next_due: Some(at("2017-10-02T11:59:59Z")),
            ..after_until
        };
        assert_eq!(next_wake(&due_before, until, TICK), after(0));
    }

    #[test]
    fn until_cuts_a_wait_short() {
        let until = Some(at("2017-10-02T12:00:15Z"));
        assert_eq!(next_wake(&outlook(), until, TICK), after(15));
        let due_after_until = Outlook {
            next_due: Some(at("2017-10-02T12:00:30Z")),
            ..outlook()
        };
        assert_eq!(next_wake(&due_after_until, until, TICK), after(15));
        // A long tick (a fast-forward rehearsal) too.
        let day = SignedDuration::from_hours(24);
        assert_eq!(next_wake(&outlook(), until, day), after(15));
    }

    #[test]
    fn the_outbox_is_reconciled_when_it_needs_more_of_the_plan_or_every_hour() {
        let (now, hour) = (at(NOW), SignedDuration::from_hours(1));
        let recent = at("2017-10-02T11:30:00Z");
        // The refill instant has come, or is unknown.
        assert!(reconcile_due(now, Some(now), recent, hour));
        assert!(reconcile_due(now, None, recent, hour));
        // Not yet, and reconciled half an hour ago.
        let refill = Some(at("2017-10-03T12:00:00Z"));
        assert!(!reconcile_due(now, refill, recent, hour));
        // An hour since the last one.
        assert!(reconcile_due(now, refill, at("2017-10-02T11:00:00Z"), hour));
    }
}
