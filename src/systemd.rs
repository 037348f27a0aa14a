//! What the daemon tells its service manager: `READY=1`, `RELOADING=1`,
//! `WATCHDOG=1`, `STATUS=…` and `STOPPING=1` (the sd_notify protocol).
//!
//! The daemon speaks to a [`Notifier`]; where the messages go is its
//! [`Sink`]: systemd's `$NOTIFY_SOCKET` ([`Notifier::from_env`]), nowhere
//! ([`Notifier::silent`], also what `from_env` gives outside systemd), or a
//! list that a test reads ([`Notifier::recording`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{debug, warn};

/// One state in a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Started, or done reloading.
    Ready,
    /// Reloading. To systemd this goes with `MONOTONIC_USEC`, which
    /// systemd 253 and later require to match the reload to the request.
    Reloading,
    /// The loop is alive.
    Watchdog,
    /// Stopping: finishing the sends in flight.
    Stopping,
    /// One line for `systemctl status`.
    Status(String),
}

/// Where notifications go. One call is one message (one datagram to
/// systemd), so states that belong together arrive together.
pub trait Sink: Send + Sync {
    fn send(&self, notices: &[Notice]);
}

/// The daemon's side of the protocol: the states it reports, the watchdog
/// interval the service manager asked for, and no repeated `STATUS=`.
#[derive(Clone)]
pub struct Notifier {
    sink: Arc<dyn Sink>,
    watchdog: Option<Duration>,
    last_status: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("watchdog", &self.watchdog)
            .finish_non_exhaustive()
    }
}

impl Default for Notifier {
    fn default() -> Notifier {
        Notifier::silent()
    }
}

impl Notifier {
    /// Notifies systemd when herald runs under it (`$NOTIFY_SOCKET` is
    /// set), with the watchdog interval of `$WATCHDOG_USEC`; silent otherwise.
    pub fn from_env() -> Notifier {
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            return Notifier::silent();
        }
        Notifier::new(Arc::new(Systemd::default()), sd_notify::watchdog_enabled())
    }

    /// Tells no one.
    pub fn silent() -> Notifier {
        Notifier::new(Arc::new(Silent), None)
    }

    /// Keeps every message, for tests; `watchdog` stands for `$WATCHDOG_USEC`.
    pub fn recording(watchdog: Option<Duration>) -> (Notifier, Arc<Recording>) {
        let recording = Arc::new(Recording::default());
        (Notifier::new(recording.clone(), watchdog), recording)
    }

    pub fn new(sink: Arc<dyn Sink>, watchdog: Option<Duration>) -> Notifier {
        Notifier {
            sink,
            // A zero interval would make the loop spin; systemd never sets one.
            watchdog: watchdog.filter(|interval| !interval.is_zero()),
            last_status: Arc::new(Mutex::new(None)),
        }
    }

    /// How often the service manager expects `WATCHDOG=1`, if it does.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    /// `READY=1` with the status, in one message.
    pub fn ready(&self, status: &str) {
        self.remember(status);
        self.sink
            .send(&[Notice::Ready, Notice::Status(status.to_owned())]);
    }

    /// `RELOADING=1` (with `MONOTONIC_USEC` for systemd).
    pub fn reloading(&self) {
        self.sink.send(&[Notice::Reloading]);
    }

    /// `WATCHDOG=1`, when a watchdog is set (a ping nobody waits for is
    /// only noise).
    pub fn watchdog(&self) {
        if self.watchdog.is_some() {
            self.sink.send(&[Notice::Watchdog]);
        }
    }

    /// `STATUS=…`, unless it is the status already shown.
    pub fn status(&self, status: &str) {
        if self.remember(status) {
            self.sink.send(&[Notice::Status(status.to_owned())]);
        }
    }

    /// `STOPPING=1` with the status, in one message.
    pub fn stopping(&self, status: &str) {
        self.remember(status);
        self.sink
            .send(&[Notice::Stopping, Notice::Status(status.to_owned())]);
    }

    /// Records `status` as the one shown; true if it is new.
    fn remember(&self, status: &str) -> bool {
        let mut last = self.last_status.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_deref() == Some(status) {
            return false;
        }
        *last = Some(status.to_owned());
        true
    }
}

/// Sends nothing.
#[derive(Debug, Default)]
pub struct Silent;

impl Sink for Silent {
    fn send(&self, _: &[Notice]) {}
}

/// Every message sent, in order; for tests.
#[derive(Debug, Default)]
pub struct Recording {
    messages: Mutex<Vec<Vec<Notice>>>,
}

impl Recording {
    pub fn messages(&self) -> Vec<Vec<Notice>> {
        self.messages.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Sink for Recording {
    fn send(&self, notices: &[Notice]) {
        self.messages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(notices.to_vec());
    }
}

/// systemd's `$NOTIFY_SOCKET`, through the sd-notify crate.
#[derive(Debug, Default)]
pub struct Systemd {
    /// A failure is logged as a warning once, then at debug level: a
    /// watchdog ping every few seconds must not flood the log.
    warned: AtomicBool,
}

impl Sink for Systemd {
    fn send(&self, notices: &[Notice]) {
        let mut states = Vec::with_capacity(notices.len() + 1);
        for notice in notices {
            match notice {
                Notice::Ready => states.push(sd_notify::NotifyState::Ready),
                Notice::Reloading => {
                    states.push(sd_notify::NotifyState::Reloading);
                    match sd_notify::NotifyState::monotonic_usec_now() {
                        Ok(now) => states.push(now),
                        Err(err) => warn!(error = %err, "cannot read CLOCK_MONOTONIC for MONOTONIC_USEC"),
                    }
                }
                Notice::Watchdog => states.push(sd_notify::NotifyState::Watchdog),
                Notice::Stopping => states.push(sd_notify::NotifyState::Stopping),
                Notice::Status(status) => states.push(sd_notify::NotifyState::Status(status)),
            }
        }
        if let Err(err) = sd_notify::notify(&states) {
            if self.warned.swap(true, Ordering::Relaxed) {
                debug!(error = %err, "cannot notify systemd");
            } else {
                warn!(error = %err, "cannot notify systemd (further failures are logged at debug level)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_status_is_sent_once_and_pings_only_with_a_watchdog() {
        let (notifier, recording) = Notifier::recording(None);
        notifier.ready("next send 2017-09-25T19:00Z, 12 pending");
        notifier.status("next send 2017-09-25T19:00Z, 12 pending");
        notifier.watchdog();
        notifier.status("nothing pending");
        notifier.stopping("nothing pending");
        assert_eq!(
            recording.messages(),
            vec![
                vec![
                    Notice::Ready,
                    Notice::Status("next send 2017-09-25T19:00Z, 12 pending".into())
                ],
                vec![Notice::Status("nothing pending".into())],
                vec![Notice::Stopping, Notice::Status("nothing pending".into())],
            ]
        );
        let (notifier, recording) = Notifier::recording(Some(Duration::from_secs(2)));
        notifier.watchdog();
        assert_eq!(recording.messages(), vec![vec![Notice::Watchdog]]);
    }
}
