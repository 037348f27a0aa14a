//! Where herald listens for HTTP (`[http]`), as `config` read it.

use std::net::SocketAddr;

/// The admin listener's address when `[http]` says none: loopback, so the
/// status page (which names focal points) is reachable from the machine
/// alone.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:9118";

/// The two listeners. Neither speaks TLS: the public one sits behind the
/// organisation's reverse proxy, the admin one on loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// The pages for focal points (unsubscribe, preferences), when served.
    pub public: Option<SocketAddr>,
    /// Where readers reach the public pages (also the model's
    /// `Sender::public_url`, from which the mail's links are made): the
    /// origin their browsers send, trusted by the CSRF layer.
    pub public_url: Option<url::Url>,
    /// The status page, `/metrics` and `/healthz`.
    pub admin: SocketAddr,
}
