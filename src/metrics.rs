//! What `/metrics` shows (OpenMetrics text, which Prometheus reads; every
//! metric `herald_…`): one registry, owned by the daemon and shared with
//! the scheduler and the web server, which record into it.
//!
//! Recording is an atomic add behind a label lookup: a burst of thousands
//! of sends pays nothing it would notice. What must be read from the
//! outbox (its rows by state) is read when `/metrics` is asked for, at
//! most once a minute ([`Metrics::rows_stale`]), so that a scraper asking
//! every second costs one query a minute.

use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::outbox::Counts;

/// The content type of [`Metrics::encode`]'s text: OpenMetrics 1.0, which
/// prometheus-client writes (it ends with `# EOF`), and which Prometheus
/// asks for first.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long the outbox's rows by state are shown before being read again.
const ROWS_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SendLabels {
    /// The template family: reminder, cover-letter, update, …
    kind: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    listener: &'static str,
    /// The route's pattern (`/unsubscribe/{token}`), never the path asked
    /// for: a token is a reader's secret, and each would be a new series.
    route: String,
    status: u16,
}

/// What became of one send, as `herald_sends_total` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendState {
    Sent,
    Retry,
    Paused,
    Failed,
    Skipped,
    TooLate,
}

impl SendState {
    fn as_str(self) -> &'static str {
        match self {
            SendState::Sent => "sent",
            SendState::Retry => "retry",
            SendState::Paused => "paused",
            SendState::Failed => "failed",
            SendState::Skipped => "skipped",
            SendState::TooLate => "too_late",
        }
    }
}

/// The registry and the metrics herald records.
pub struct Metrics {
    registry: Registry,
    sends: Family<SendLabels, Counter>,
    lateness: Histogram,
    smtp_replies: Family<ClassLabel, Counter>,
    outbox_rows: Family<StateLabel, Gauge>,
    outbox_pending: Gauge,
    next_due: Gauge,
    reconcile: Histogram,
    reloads: Counter,
    reloads_refused: Counter,
    http: Family<HttpLabels, Counter>,
    /// When (on the monotonic clock) the outbox's rows were last read.
    rows_read_at: Mutex<Option<Duration>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("herald");
        let sends = Family::<SendLabels, Counter>::default();
        registry.register(
            "sends",
            "Sends attempted, by template family and what became of them",
            sends.clone(),
        );
        // 1 s to about 9 hours: a send on time is seconds late; a relay
        // down overnight makes them hours late.
        let lateness = Histogram::new(exponential_buckets(1.0, 2.0, 16));
        registry.register_with_unit(
            "send_lateness",
            "From a send's due instant to the relay's acceptance",
            prometheus_client::registry::Unit::Seconds,
            lateness.clone(),
        );
        let smtp_replies = Family::<ClassLabel, Counter>::default();
        registry.register(
            "smtp_replies",
            "The relay's final replies by class (2xx, 4xx, 5xx; error: no reply, the connection failed)",
            smtp_replies.clone(),
        );
        let outbox_rows = Family::<StateLabel, Gauge>::default();
        registry.register(
            "outbox_rows",
            "The outbox's rows by state (read at most once a minute)",
            outbox_rows.clone(),
        );
        let outbox_pending = Gauge::default();
        registry.register(
            "outbox_pending",
            "Sends planned and not yet sent",
            outbox_pending.clone(),
        );
        let next_due = Gauge::default();
        registry.register(
            "outbox_next_due_timestamp_seconds",
            "When the next send is due (Unix time; 0: none)",
            next_due.clone(),
        );
        let reconcile = Histogram::new(exponential_buckets(0.001, 4.0, 10));
        registry.register_with_unit(
            "reconcile_duration",
            "How long bringing the outbox in line with the plan took",
            prometheus_client::registry::Unit::Seconds,
            reconcile.clone(),
        );
        let reloads = Counter::default();
        registry.register(
            "reloads",
            "Configurations reloaded and put in use",
            reloads.clone(),
        );
        let reloads_refused = Counter::default();
        registry.register(
            "reloads_refused",
            "Configurations refused at a reload (the last good one kept running)",
            reloads_refused.clone(),
        );
        let http = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by listener, route and status",
            http.clone(),
        );
        Metrics {
            registry,
            sends,
            lateness,
            smtp_replies,
            outbox_rows,
            outbox_pending,
            next_due,
            reconcile,
            reloads,
            reloads_refused,
            http,
            rows_read_at: Mutex::new(None),
        }
    }

    /// One send's outcome, of the template family `kind`.
    pub fn send(&self, kind: &str, state: SendState) {
        self.sends
            .get_or_create(&SendLabels {
                kind: kind.to_owned(),
                state: state.as_str(),
            })
            .inc();
    }

    /// A send due at `due` that the relay accepted at `accepted`.
    pub fn accepted(&self, due: Timestamp, accepted: Timestamp) {
        let late = accepted.duration_since(due).as_secs_f64().max(0.0);
        self.lateness.observe(late);
    }

    /// The relay's final reply to one message, or the error that stood
    /// for it (`reply` as the mailer gives it: "250 2.0.0 Ok", "421 …",
    /// or words when there was no reply).
    pub fn smtp_reply(&self, reply: &str) {
        self.smtp_replies
            .get_or_create(&ClassLabel {
                class: reply_class(reply),
            })
            .inc();
    }

    /// What the daemon read from the outbox at its last look ahead.
    pub fn outbox(&self, pending: usize, next_due: Option<Timestamp>) {
        self.outbox_pending
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
        self.next_due.set(next_due.map_or(0, Timestamp::as_second));
    }

    pub fn reconciled(&self, took: Duration) {
        self.reconcile.observe(took.as_secs_f64());
    }

    pub fn reloaded(&self) {
        self.reloads.inc();
    }

    pub fn reload_refused(&self) {
        self.reloads_refused.inc();
    }

    pub fn http_request(&self, listener: &'static str, route: &str, status: u16) {
        self.http
            .get_or_create(&HttpLabels {
                listener,
                route: route.to_owned(),
                status,
            })
            .inc();
    }

    /// Whether the outbox's rows by state should be read again, at
    /// `monotonic`; if so, the caller reads them and gives them to
    /// [`Metrics::outbox_rows`]. Says yes once a minute.
    pub fn rows_stale(&self, monotonic: Duration) -> bool {
        let mut read_at = self.rows_read_at.lock().unwrap_or_else(|p| p.into_inner());
        match *read_at {
            Some(at) if monotonic.saturating_sub(at) < ROWS_EVERY => false,
            _ => {
                *read_at = Some(monotonic);
                true
            }
        }
    }

    pub fn outbox_rows(&self, counts: &Counts) {
        for (state, count) in [
            ("planned", counts.planned),
            ("sending", counts.sending),
            ("sent", counts.sent),
            ("failed", counts.failed),
            ("skipped", counts.skipped),
            ("cancelled", counts.cancelled),
            ("suppressed", counts.suppressed),
        ] {
            self.outbox_rows
                .get_or_create(&StateLabel { state })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// The metrics in OpenMetrics text ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// "2xx", "4xx", "5xx" from a reply's code; "error" when the text has no
/// code (a refused connection, a timeout).
fn reply_class(reply: &str) -> &'static str {
    let code = reply.as_bytes();
    if code.len() >= 3 && code[..3].iter().all(u8::is_ascii_digit) {
        match code[0] {
            b'2' => return "2xx",
            b'3' => return "3xx",
            b'4' => return "4xx",
            b'5' => return "5xx",
            _ => {}
        }
    }
    "error"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_classed_by_its_code_and_words_are_an_error() {
        assert_eq!(reply_class("250 2.0.0 Ok: queued"), "2xx");
        assert_eq!(reply_class("421 4.7.0 try later"), "4xx");
        assert_eq!(reply_class("550 5.1.1 no such user"), "5xx");
        assert_eq!(reply_class("connection refused"), "error");
        assert_eq!(reply_class("25"), "error");
    }

    #[test]
    fn the_rows_are_read_again_once_a_minute() {
        let metrics = Metrics::new();
        assert!(metrics.rows_stale(Duration::from_secs(5)));
        assert!(!metrics.rows_stale(Duration::from_secs(30)));
        assert!(metrics.rows_stale(Duration::from_secs(66)));
    }
}
