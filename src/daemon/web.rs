//! The daemon's side of the web listeners: started before READY with the
//! configuration's `[http]`, replaced when a reload changes it, stopped
//! with the daemon.

use std::sync::Arc;

use tokio::sync::Notify;
use tracing::{error, info};

use crate::diagnostics::Chain;
use crate::metrics::Metrics;
use crate::scheduler::Scheduler;
use crate::web::board::Board;
use crate::web::{BindError, Shared, Web};

/// The listeners and what their handlers share.
pub(super) struct WebSide {
    pub shared: Shared,
    pub web: Option<Web>,
}

impl WebSide {
    pub(super) fn new(scheduler: Arc<Scheduler>, metrics: Arc<Metrics>, board: Arc<Board>) -> WebSide {
        WebSide {
            shared: Shared {
                scheduler,
                metrics,
                board,
                replan: Arc::new(Notify::new()),
            },
            web: None,
        }
    }

    /// Starts the listeners `[http]` asks for. At start a listener that
    /// cannot bind stops herald: nothing runs yet to fall back on.
    pub(super) async fn start(&mut self) -> Result<(), BindError> {
        if let Some(settings) = self.shared.scheduler.loaded().http.clone() {
            self.web = Some(Web::start(settings, self.shared.clone()).await?);
        }
        Ok(())
    }

    /// After a reload: the listeners follow `[http]`. The old listeners
    /// stop first (a port cannot be bound twice); if a new one cannot be
    /// bound, herald serves no pages until a reload that can, and says so.
    pub(super) async fn follow(&mut self) {
        let wanted = self.shared.scheduler.loaded().http.clone();
        if self.web.as_ref().map(Web::settings) == wanted.as_ref() {
            return;
        }
        if let Some(old) = self.web.take() {
            old.stop().await;
        }
        if let Some(settings) = wanted {
            match Web::start(settings, self.shared.clone()).await {
                Ok(web) => {
                    info!("the configuration changed [http]: listening anew");
                    self.web = Some(web);
                }
                Err(err) => {
                    error!(error = %Chain(&err), "the new [http] cannot be served; herald serves no pages until it can")
                }
            }
        }
    }

    pub(super) async fn stop(&mut self) {
        if let Some(web) = self.web.take() {
            web.stop().await;
        }
    }
}
