//! The preferences page: `GET /preferences/{token}` and its form.

use axum::Router;

use super::Shared;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
}
