//! The unsubscribe link (RFC 8058): `GET /unsubscribe/{token}` shows a page
//! with a button, `POST /unsubscribe/{token}` unsubscribes at once.

use axum::Router;

use super::Shared;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
}
