//! What the status says of the relay's limits. (Each new mailer counts
//! what the relay took in the last day from the outbox's attempts:
//! `scheduler::seed_limits`. Earlier versions saved a token bucket in the
//! outbox instead; migration 6 drops it: the attempts say more.)

use crate::diagnostics::thousands;

/// How much of the relay's daily quota is used, when it is nearly all
/// (at least 90 %): "relay quota: 9,200 of 10,000 a day used".
pub(super) fn quota_note(used: Option<(usize, usize)>) -> Option<String> {
    let (used, limit) = used?;
    (used * 10 >= limit * 9).then(|| {
        format!(
            "relay quota: {} of {} a day used",
            thousands(used),
            thousands(limit)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_is_said_from_nine_tenths_on() {
        assert_eq!(quota_note(None), None);
        assert_eq!(quota_note(Some((8_999, 10_000))), None);
        assert_eq!(
            quota_note(Some((9_200, 10_000))).as_deref(),
            Some("relay quota: 9,200 of 10,000 a day used")
        );
        assert_eq!(
            quota_note(Some((1_000_000, 1_000_000))).as_deref(),
            Some("relay quota: 1,000,000 of 1,000,000 a day used")
        );
        assert_eq!(
            quota_note(Some((9, 10))).as_deref(),
            Some("relay quota: 9 of 10 a day used")
        );
    }
}
