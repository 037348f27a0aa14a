//! The operator's daily digest in the daemon: when it is due, and sending
//! it through the same mailer as every other message.
//!
//! The outbox remembers where the last digest's period ended
//! (`digest::LAST_UNTIL`); the next digest is due at the first `at` in
//! `time_zone` after that, and covers everything since. So a digest missed
//! while herald was down goes once at the next start, covering every day
//! missed, not once per day; and a restart after today's digest sends
//! nothing until tomorrow's. The first time a daemon runs with `[digest]`
//! it records its start, so the first digest covers from then.
//!
//! A digest that could not be delivered (the relay answered 4xx, or was
//! unreachable) is tried again after [`RETRY_AFTER`]; one refused for good
//! (5xx) is logged and counted as sent, so the next covers from then.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp, ToSpan};
use tracing::{error, info, warn};

use crate::diagnostics::Chain;
use crate::digest;
use crate::model::DigestSettings;
use crate::scheduler::{Scheduler, blocking};
use crate::send::{Outcome, Outgoing};

/// How long after a failed try the digest is tried again.
pub(super) const RETRY_AFTER: SignedDuration = SignedDuration::from_mins(15);

/// The first instant strictly after `after` at which the wall clock of the
/// digest's zone reads `at` (a time in a DST gap moves forward). Pure.
pub(super) fn next_at(settings: &DigestSettings, after: Timestamp) -> Timestamp {
    let day = after.to_zoned_datetime(settings.zone.tz.clone()).date();
    let today = settings.zone.at(day, settings.at).timestamp();
    if today > after {
        return today;
    }
    let tomorrow = day.checked_add(1.day()).unwrap_or(day);
    settings.zone.at(tomorrow, settings.at).timestamp()
}

/// When the next digest is due: the first `at` after the last one's end,
/// or after a failed try `retry_at`, whichever is later; `None` without
/// `[digest]`, before any is recorded (the next pass records the start),
/// or when the outbox cannot be read (said by the pass that tries).
/// Reads the outbox: call it on a blocking thread.
pub(super) fn due_at(scheduler: &Scheduler, retry_at: Option<Timestamp>) -> Option<Timestamp> {
    let loaded = scheduler.loaded();
    let settings = loaded.model.settings().digest.as_ref()?;
    let last = digest::last_until(scheduler.outbox().as_ref()).ok()??;
    let due = next_at(settings, last);
    Some(retry_at.map_or(due, |retry| due.max(retry)))
}

/// The digest in the daemon: only the backoff after a failed try lives
/// here; when the last one went is the outbox's.
#[derive(Debug, Default)]
pub(super) struct Daily {
    /// Not before this instant, after a try that could not deliver.
    pub(super) retry_at: Option<Timestamp>,
}

/// What a pass found: the messages of a digest that is due, and the end
/// of their period.
struct Due {
    until: Timestamp,
    messages: Vec<(lettre::Address, Outgoing)>,
}

impl Daily {
    /// Sends the digest if it is due, and records it once delivered (or
    /// refused for good) to every address.
    pub(super) async fn send_if_due(&mut self, scheduler: &Arc<Scheduler>) {
        // Most configurations have none: no trip to a blocking thread.
        if scheduler.loaded().model.settings().digest.is_none() {
            return;
        }
        let retry_at = self.retry_at;
        let due = blocking({
            let scheduler = scheduler.clone();
            move || prepare(&scheduler, retry_at)
        })
        .await;
        let Some(due) = due else {
            return;
        };
        let mailer = scheduler.mailer();
        let mut retry = false;
        for (to, message) in &due.messages {
            match mailer.send_timed(message).await.0 {
                Outcome::Delivered { .. } => info!(%to, until = %due.until, "digest sent"),
                Outcome::Permanent { reply } => {
                    error!(%to, %reply, "the relay refused the digest; the next one covers from now")
                }
                outcome @ (Outcome::Transient { .. } | Outcome::Paused { .. }) => {
                    warn!(%to, %outcome, "the digest could not be sent; trying again in 15 minutes");
                    retry = true;
                }
            }
        }
        let now = scheduler.clock().now();
        if retry {
            self.retry_at = now.checked_add(RETRY_AFTER).ok();
            return;
        }
        self.retry_at = None;
        let recorded = blocking({
            let scheduler = scheduler.clone();
            move || digest::record_sent(scheduler.outbox().as_ref(), due.until)
        })
        .await;
        if let Err(err) = recorded {
            // The next pass sends it again, with the same Message-ID.
            error!(error = %Chain(&err), "the digest went, but the outbox could not record it");
        }
    }
}

/// The digest's messages if one is due now. Reads the outbox, and the
/// first time records where the first digest's period starts. Blocks.
fn prepare(scheduler: &Scheduler, retry_at: Option<Timestamp>) -> Option<Due> {
    let loaded = scheduler.loaded();
    let model = &loaded.model;
    let settings = model.settings().digest.as_ref()?;
    let outbox = scheduler.outbox().as_ref();
    let now = scheduler.clock().now();
    let last = match digest::last_until(outbox) {
        Ok(last) => last,
        Err(err) => {
            warn!(error = %Chain(&err), "cannot read when the last digest went; no digest for now");
            return None;
        }
    };
    let Some(last) = last else {
        match digest::record_sent(outbox, now) {
            Ok(()) => info!(first = %next_at(settings, now), "no digest sent yet: the first covers from now"),
            Err(err) => warn!(error = %Chain(&err), "cannot record the start of the first digest"),
        }
        return None;
    };
    if next_at(settings, last) > now || retry_at.is_some_and(|retry| retry > now) {
        return None;
    }
    let period = digest::period_since(Some(last), now);
    let gathered = match digest::gather(model, Some(outbox), period) {
        Ok(gathered) => gathered,
        Err(err) => {
            warn!(error = %Chain(&err), "cannot gather the digest; trying again at the next pass");
            return None;
        }
    };
    let redirect = loaded.delivery.redirect_to.as_ref();
    let mut messages = Vec::new();
    for to in &settings.to {
        match digest::message(model, &loaded.renderer, &gathered, to, now, redirect) {
            Ok(message) => messages.push((to.clone(), message)),
            Err(err) => error!(%to, error = %err, "cannot render the digest"),
        }
    }
    Some(Due {
        until: period.until,
        messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Zone;

    fn settings(at: &str, zone: &str) -> DigestSettings {
        DigestSettings {
            to: Vec::new(),
            at: at.parse().unwrap(),
            zone: Zone::named(zone).unwrap(),
            language: "en".to_owned(),
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn the_next_digest_is_the_first_time_of_day_after_the_last() {
        let zurich = settings("08:00", "Europe/Zurich");
        // 07:00 in Zurich (CEST, UTC+2): today at 08:00.
        assert_eq!(
            next_at(&zurich, at("2017-10-02T05:00:00Z")),
            at("2017-10-02T06:00:00Z")
        );
        // At 08:00 exactly, or after: tomorrow.
        assert_eq!(
            next_at(&zurich, at("2017-10-02T06:00:00Z")),
            at("2017-10-03T06:00:00Z")
        );
        assert_eq!(
            next_at(&zurich, at("2017-10-02T09:30:00Z")),
            at("2017-10-03T06:00:00Z")
        );
        // Across the end of summer time (the night of 28 to 29 October):
        // still 08:00 on the wall clock, 25 hours later.
        assert_eq!(
            next_at(&zurich, at("2017-10-28T06:00:00Z")),
            at("2017-10-29T07:00:00Z")
        );
    }

    #[test]
    fn a_time_in_a_dst_gap_moves_forward() {
        // 02:30 does not exist in Zurich on 2017-03-26: 03:30 CEST.
        let night = settings("02:30", "Europe/Zurich");
        assert_eq!(
            next_at(&night, at("2017-03-25T23:00:00Z")),
            at("2017-03-26T01:30:00Z")
        );
    }
}
