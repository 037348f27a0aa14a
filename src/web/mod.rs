//! herald on the web: the pages focal points reach from their mail
//! (one-click unsubscribe, preferences) on the public listener, and the
//! operator's status page, `/metrics` and `/healthz` on the admin listener.
//!
//! Both are axum routers served on the daemon's own runtime, started before
//! READY (a listener that cannot bind stops the start, naming its address)
//! and stopped with the daemon. Handlers read what the daemon runs through
//! [`Shared`]: the scheduler's current configuration and its outbox. They
//! never change the configuration; what readers choose is written to the
//! outbox, and the daemon is nudged to plan again.
//!
//! `public.rs` is the unsubscribe link, `preferences.rs` the preferences
//! page, `admin.rs` the admin listener's routes, `pages.rs` how a page is
//! rendered from `templates/<language>/web/` and how a refusal looks,
//! `readers.rs` whom a personal link is for.

mod admin;
pub mod board;
pub mod pages;
mod preferences;
mod public;
pub mod readers;
pub mod settings;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, State};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tower_http::csrf::CsrfLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::{info, warn};

use crate::metrics::Metrics;
use crate::scheduler::Scheduler;

pub use settings::HttpSettings;

/// The largest request body herald reads: its forms are a few fields.
const MAX_BODY: usize = 16 * 1024;

/// How long a request may take, its body included: a slow client cannot
/// hold a connection open for ever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a stop waits for connections to finish before dropping them:
/// axum's graceful shutdown alone waits for every connection, with no
/// bound, and systemd's stop timeout would kill herald first.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What handlers share with the daemon.
#[derive(Clone)]
pub struct Shared {
    /// The running configuration (`Scheduler::loaded`) and the outbox.
    pub scheduler: Arc<Scheduler>,
    pub metrics: Arc<Metrics>,
    /// The daemon loop's heartbeat and the configuration's state.
    pub board: Arc<board::Board>,
    /// Nudges the daemon to apply readers' choices (overrides) and plan
    /// again, after a page has written them to the outbox.
    pub replan: Arc<Notify>,
}

/// The running listeners.
pub struct Web {
    settings: HttpSettings,
    stop: watch::Sender<bool>,
    servers: Vec<(SocketAddr, JoinHandle<std::io::Result<()>>)>,
}

/// A listener that could not be opened.
#[derive(Debug)]
pub struct BindError {
    pub which: &'static str,
    pub address: SocketAddr,
    pub source: std::io::Error,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hint = match self.source.kind() {
            std::io::ErrorKind::AddrInUse => {
                "another program listens on this port: choose another in herald.toml"
            }
            std::io::ErrorKind::PermissionDenied => {
                "a port below 1024 needs a privilege herald does not have: listen on a higher port (the reverse proxy serves 443)"
            }
            std::io::ErrorKind::AddrNotAvailable => {
                "this machine has no such address: use 127.0.0.1 or one of its own"
            }
            _ => "check the address in herald.toml",
        };
        write!(
            f,
            "cannot listen on {} ([http] {}): {hint}",
            self.address, self.which
        )
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl Web {
    /// Binds both listeners and serves them on the current runtime.
    pub async fn start(settings: HttpSettings, shared: Shared) -> Result<Web, BindError> {
        let (stop, stopped) = watch::channel(false);
        let mut servers = Vec::new();
        let mut listeners = Vec::new();
        if let Some(address) = settings.public {
            listeners.push(("public", address, public_router(&settings, &shared)));
        }
        listeners.push((
            "admin",
            settings.admin,
            admin::routes().with_state(shared.clone()),
        ));
        for (which, address, router) in listeners {
            let listener = TcpListener::bind(address).await.map_err(|source| BindError {
                which,
                address,
                source,
            })?;
            // The port the system gave, when the setting asked for port 0.
            let address = listener.local_addr().unwrap_or(address);
            let counted = (shared.metrics.clone(), which);
            let router = router
                .layer(axum::middleware::from_fn_with_state(counted, count_request))
                .layer(RequestBodyLimitLayer::new(MAX_BODY))
                .layer(TimeoutLayer::with_status_code(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    REQUEST_TIMEOUT,
                ))
                .layer(axum::middleware::map_response(pages::secured));
            let mut stopped = stopped.clone();
            let server = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            });
            info!(%address, listener = which, "listening for HTTP");
            servers.push((address, tokio::spawn(async move { server.await })));
        }
        Ok(Web {
            settings,
            stop,
            servers,
        })
    }

    /// What the listeners were started with.
    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    /// The addresses actually bound (the port the system chose for a 0).
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.servers.iter().map(|(address, _)| *address).collect()
    }

    /// Stops both listeners: no new connection, the requests under way
    /// finish, for at most `SHUTDOWN_GRACE` (5 s).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for (address, server) in self.servers {
            match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
                Ok(_) => {}
                Err(_) => warn!(%address, "connections still open after {SHUTDOWN_GRACE:?}; dropping them"),
            }
        }
    }
}

/// The public pages, behind the cross-site request forgery layer: a POST
/// from another site's page is refused (403) whatever it carries. A POST
/// with neither `Origin` nor `Sec-Fetch-Site` (a mailbox provider's
/// one-click unsubscribe, RFC 8058) passes: it comes from no browser.
fn public_router(settings: &HttpSettings, shared: &Shared) -> Router {
    let mut csrf = CsrfLayer::new();
    if let Some(url) = &settings.public_url {
        // The proxy in front may rewrite Host; the page's own origin is
        // then the one readers' browsers send.
        let origin = url.origin().ascii_serialization();
        match csrf.clone().add_trusted_origin(&origin) {
            Ok(with_origin) => csrf = with_origin,
            Err(err) => {
                warn!(%origin, error = %err, "the public_url's origin cannot be trusted by the CSRF layer")
            }
        }
    }
    public::routes()
        .merge(preferences::routes())
        .layer(csrf)
        .with_state(shared.clone())
}

/// Counts each answer in `herald_http_requests_total` under its route's
/// pattern (`/unsubscribe/{token}`), never the path asked for: a path
/// holds a reader's token, and every token would be a series of its own.
/// A path no route matches is counted as `unmatched`.
async fn count_request(
    State((metrics, which)): State<(Arc<Metrics>, &'static str)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let response = next.run(request).await;
    metrics.http_request(
        which,
        route.as_deref().unwrap_or("unmatched"),
        response.status().as_u16(),
    );
    response
}
