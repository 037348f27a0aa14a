//! What `/metrics` shows (Prometheus text format, every metric `herald_…`):
//! one registry, owned by the daemon and shared with the scheduler and the
//! web server, which record into it.

use prometheus_client::registry::Registry;

/// The registry and the metrics herald records.
pub struct Metrics {
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            registry: Registry::with_prefix("herald"),
        }
    }

    /// The metrics in Prometheus' text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}
