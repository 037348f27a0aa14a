//! Pausing a relay that cannot take any message: one that stopped offering
//! STARTTLS (which `security = "starttls"` requires) or AUTH (with a
//! username set). That is the relay's fault (or its configuration's), not
//! any message's, so no message is failed for it: sending pauses, with a
//! backoff, and when the pause is over one send at a time probes the relay
//! while the others wait for its result.
//!
//! This file holds the pause's state and rules; the SMTP mailer says what a
//! relay fault is and asks before each send.

use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// The first pause after a relay fault. Default: 1 minute.
const FIRST: SignedDuration = SignedDuration::from_mins(1);
/// The longest pause. Default: 1 hour.
const LONGEST: SignedDuration = SignedDuration::from_hours(1);

/// The relay's pause: none, or until when and why.
#[derive(Debug, Default)]
pub(super) struct RelayPause {
    state: Mutex<Option<Paused>>,
    /// Held by the one send that probes the relay after a pause; the others
    /// wait on it, then look at the pause again.
    probe: tokio::sync::Mutex<()>,
}

#[derive(Debug, Clone)]
struct Paused {
    until: Timestamp,
    /// Relay faults in a row; the pause doubles with each.
    faults: u32,
    /// What the relay did, for the outcome of each paused send.
    reply: String,
}

/// What a send may do, as the pause says.
pub(super) enum Turn<'a> {
    /// Send: the relay is not paused.
    Send,
    /// Send as the probe of a paused relay; report its result with
    /// [`RelayPause::fault`] or [`RelayPause::resume`] before dropping the
    /// guard, which lets the next waiting send look.
    Probe(tokio::sync::MutexGuard<'a, ()>),
    /// Do not send: paused until then, for this reason.
    Wait { until: Timestamp, reply: String },
}

impl RelayPause {
    /// Whether a send at `now` may go.
    pub(super) async fn turn(&self, now: impl Fn() -> Timestamp) -> Turn<'_> {
        match self.paused() {
            None => return Turn::Send,
            Some(paused) if now() < paused.until => {
                return Turn::Wait {
                    until: paused.until,
                    reply: paused.reply,
                };
            }
            Some(_) => {}
        }
        // The pause is over: one probe at a time; the others see its result.
        let guard = self.probe.lock().await;
        match self.paused() {
            None => Turn::Send,
            Some(paused) if now() < paused.until => Turn::Wait {
                until: paused.until,
                reply: paused.reply,
            },
            Some(_) => Turn::Probe(guard),
        }
    }

    /// Records a relay fault at `now`: the pause starts, or doubles.
    /// Returns when sending may be tried again.
    pub(super) fn fault(&self, reply: &str, now: Timestamp) -> Timestamp {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let faults = state.as_ref().map_or(1, |p| p.faults.saturating_add(1));
        let until = now.checked_add(pause_after(faults)).unwrap_or(now);
        *state = Some(Paused {
            until,
            faults,
            reply: reply.to_owned(),
        });
        until
    }

    /// The relay took a message (or failed for another reason than a relay
    /// fault): the pause is over.
    pub(super) fn resume(&self) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn paused(&self) -> Option<Paused> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The pause after `faults` relay faults in a row: 1 minute, doubling, at
/// most an hour.
fn pause_after(faults: u32) -> SignedDuration {
    let doubled = FIRST.as_secs() << faults.saturating_sub(1).min(16);
    SignedDuration::from_secs(doubled).min(LONGEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn the_pause_doubles_up_to_an_hour() {
        let pauses: Vec<i64> = (1..=9).map(|n| pause_after(n).as_secs()).collect();
        assert_eq!(pauses, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    }

    #[tokio::test]
    async fn one_probe_at_a_time_and_the_others_see_its_result() {
        let pause = RelayPause::default();
        assert!(matches!(pause.turn(|| at(0)).await, Turn::Send));
        let until = pause.fault("no STARTTLS", at(0));
        assert_eq!(until, at(60));
        assert!(matches!(pause.turn(|| at(59)).await, Turn::Wait { until, .. } if until == at(60)));
        let Turn::Probe(guard) = pause.turn(|| at(60)).await else {
            panic!("the first send after the pause probes");
        };
        // A second send waits for the probe's result.
        let second = pause.turn(|| at(60));
        tokio::pin!(second);
        assert!(futures_poll_once(second.as_mut()).await.is_none());
        // The probe fails again: the pause doubles, and the second send waits for it.
        assert_eq!(pause.fault("no STARTTLS", at(60)), at(180));
        drop(guard);
        assert!(
            matches!(second.await, Turn::Wait { until, reply } if until == at(180) && reply == "no STARTTLS")
        );
        let Turn::Probe(guard) = pause.turn(|| at(180)).await else {
            panic!("a probe after the second pause");
        };
        pause.resume();
        drop(guard);
        assert!(matches!(pause.turn(|| at(181)).await, Turn::Send));
        // A fault after a resume starts again from a minute.
        assert_eq!(pause.fault("no AUTH", at(200)), at(260));
    }

    /// Polls `future` once: its output, or `None` if it is pending.
    async fn futures_poll_once<F: std::future::Future>(future: std::pin::Pin<&mut F>) -> Option<F::Output> {
        let mut future = Some(future);
        std::future::poll_fn(move |cx| {
            let polled = future.take().map(|f| f.poll(cx));
            std::task::Poll::Ready(match polled {
                Some(std::task::Poll::Ready(output)) => Some(output),
                _ => None,
            })
        })
        .await
    }
}
