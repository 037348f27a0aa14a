//! The admin listener: the status page (`/`), `/metrics`, `/healthz`.

use axum::Router;

use super::Shared;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
}
