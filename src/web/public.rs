//! The unsubscribe link (RFC 8058): `GET /unsubscribe/{token}` shows a page
//! with a button, `POST /unsubscribe/{token}` unsubscribes at once.
//!
//! A GET changes nothing: mail filters and link scanners follow every link
//! in a message, and must unsubscribe nobody. The POST is what a mailbox
//! provider sends for its own unsubscribe button (with the body
//! `List-Unsubscribe=One-Click`) and what the page's button sends; herald
//! reads no body, so either unsubscribes, and so does an empty one. It is
//! idempotent: a repeated POST shows the same page and writes nothing.
//!
//! A token that finds no reader ([`readers::find`]: forged, mangled, signed
//! by a secret since removed, for someone no longer on the list) gets the
//! plain problem page, 404, in the default language: it says nothing about
//! whom or what the token named, and changes nothing.
//!
//! The suppression takes effect in the transaction that records it: the
//! reader's planned sends on the list become `suppressed` there, and a send
//! planned later for them is suppressed as it is planned, so the daemon
//! needs no nudge. Only a send already handed to the relay still leaves.

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use tracing::{error, info};

use super::Shared;
use super::pages;
use super::readers::{self, Reader};
use crate::diagnostics::Chain;
use crate::scheduler::{Loaded, blocking};

/// Why a suppression is there, for `herald suppressions` and the status.
const REASON: &str = "unsubscribed through the link in a message";

pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/unsubscribe/{token}", get(show).post(unsubscribe))
}

/// The page with the button; changes nothing.
async fn show(State(shared): State<Shared>, token: Result<Path<String>, PathRejection>) -> Response {
    let loaded = shared.scheduler.loaded();
    blocking(move || {
        let Some(reader) = token.ok().and_then(|Path(token)| readers::find(&loaded, &token)) else {
            return problem(&loaded);
        };
        reader_page(&loaded, &reader, "unsubscribe")
    })
    .await
}

/// Unsubscribes the reader from the token's list, at once.
async fn unsubscribe(State(shared): State<Shared>, token: Result<Path<String>, PathRejection>) -> Response {
    let loaded = shared.scheduler.loaded();
    let outbox = shared.scheduler.outbox().clone();
    let now = shared.scheduler.clock().now();
    blocking(move || {
        let Some(reader) = token.ok().and_then(|Path(token)| readers::find(&loaded, &token)) else {
            return problem(&loaded);
        };
        match outbox.suppress(&reader.address, &reader.list, REASON, now) {
            Ok(true) => {
                info!(
                    address = reader.address.as_str(),
                    list = %reader.list,
                    "unsubscribed through the link in a message: herald sends this address nothing more on this list"
                );
            }
            // Unsubscribed already (or suppressed on every list): the same page.
            Ok(false) => {}
            Err(err) => {
                error!(list = %reader.list, error = %Chain(&err), "cannot record an unsubscribe");
                return pages::plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Your request could not be recorded just now. Please try again in a few minutes.",
                );
            }
        }
        reader_page(&loaded, &reader, "unsubscribed")
    })
    .await
}

/// One of the reader's pages, in their language, about their list only.
fn reader_page(loaded: &Loaded, reader: &Reader, page: &str) -> Response {
    let model = &loaded.model;
    let (Some(focal_point), Some(list)) = (reader.focal_point(model), model.lists().get(&reader.list)) else {
        // `find` only finds members of the configuration's lists.
        return problem(loaded);
    };
    pages::page(
        &loaded.renderer,
        StatusCode::OK,
        page,
        &focal_point.language,
        context(&model.settings().sender.organization, &list.id, &list.name),
    )
}

/// What the unsubscribe pages see (every key always there).
pub fn context(organization: &str, list_id: &str, list_name: &str) -> Value {
    json!({
        "sender": { "organization": organization },
        "list": { "id": list_id, "name": list_name },
    })
}

/// The plain refusal of a link that finds no reader: the same for every
/// reason, in the default language.
pub(super) fn problem(loaded: &Loaded) -> Response {
    pages::page(
        &loaded.renderer,
        StatusCode::NOT_FOUND,
        "problem",
        &loaded.model.settings().default_language,
        json!({}),
    )
}
