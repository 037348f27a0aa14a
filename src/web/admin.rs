//! The admin listener: the status page (`/`), `/metrics`, `/healthz`.
//!
//! No token: the listener is for the operator and their monitoring, on
//! loopback unless `[http] admin` says otherwise. Every page is read-only.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;
use serde_json::{Value, json};
use tracing::error;

use super::Shared;
use super::pages;
use crate::diagnostics::Chain;
use crate::metrics::CONTENT_TYPE;
use crate::outbox::Planning;
use crate::outbox::{OutboxError, State as SendState};
use crate::scheduler::blocking;

/// How many rows of each list the status page shows: the page of an
/// outbox with thousands of failures stays readable; `herald history`
/// has them all.
const ROWS: usize = 50;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
}

/// 200 while the daemon's loop is passing, 503 when it is stuck: the
/// condition systemd's watchdog would restart herald for (`board.rs`).
async fn healthz(State(shared): State<Shared>) -> Response {
    let monotonic = shared.scheduler.clock().monotonic();
    if shared.board.stuck(monotonic) {
        pages::plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "stuck: the daemon's loop has not come round in time\n",
        )
    } else {
        pages::plain(StatusCode::OK, "ok\n")
    }
}

async fn metrics(State(shared): State<Shared>) -> Response {
    let metrics = shared.metrics.clone();
    if metrics.rows_stale(shared.scheduler.clock().monotonic()) {
        let outbox = shared.scheduler.outbox().clone();
        match blocking(move || outbox.counts()).await {
            Ok(counts) => metrics.outbox_rows(&counts),
            // The other metrics are still worth a scrape; the rows show
            // their last values.
            Err(err) => error!(error = %Chain(&err), "/metrics cannot read the outbox's rows"),
        }
    }
    match metrics.encode() {
        Ok(text) => {
            let mut response = text.into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            response
        }
        Err(_) => pages::plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the metrics cannot be encoded\n",
        ),
    }
}

async fn status(State(shared): State<Shared>) -> Response {
    let loaded = shared.scheduler.loaded();
    let outbox = shared.scheduler.outbox().clone();
    let now = shared.scheduler.clock().now();
    let config = shared.board.config();
    // With several nodes on one database: this node, and who plans.
    let nodes = loaded.delivery.database.as_ref().map(|settings| {
        let (plans, planner, differs) = match shared.scheduler.planning() {
            Planning::Plans => (true, settings.node.clone(), false),
            Planning::Another { node } => (false, node, false),
            Planning::Differs { node, .. } => (false, node, true),
        };
        json!({"node": settings.node, "plans": plans, "planner": planner, "differs": differs})
    });
    let read = blocking(move || read_status(outbox.as_ref(), now)).await;
    match read {
        Ok(mut data) => {
            data["configuration"] = json!({
                "loaded_at": config.loaded_at.map(shown),
                "refused": config.refused.map(|(at, problems)| json!({
                    "at": shown(at),
                    "problems": problems,
                })),
                "nodes": nodes,
            });
            // For the operator, in English (the page exists in `en` only).
            pages::page(&loaded.renderer, StatusCode::OK, "status", "en", data)
        }
        Err(err) => {
            error!(error = %Chain(&err), "the status page cannot read the outbox");
            pages::plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "The outbox cannot be read; the journal says why.",
            )
        }
    }
}

/// What the status page shows from the outbox; every key always there.
fn read_status(outbox: &dyn crate::outbox::Outbox, now: Timestamp) -> Result<Value, OutboxError> {
    // The next sends by event (or letter) and lead: one row for the many
    // focal points a reminder goes to.
    let mut groups: BTreeMap<(String, String, String), (usize, Timestamp, Timestamp)> = BTreeMap::new();
    let planned = outbox.entries_in(SendState::Planned)?;
    let pending = planned.len();
    for entry in &planned {
        let key = &entry.spec.key;
        let due = entry.next_attempt.unwrap_or(entry.spec.due);
        let group = groups
            .entry((
                key.kind().as_str().to_owned(),
                key.subject().to_owned(),
                key.lead().unwrap_or_default().to_owned(),
            ))
            .or_insert((0, due, due));
        group.0 += 1;
        group.1 = group.1.min(due);
        group.2 = group.2.max(due);
    }
    let mut next: Vec<_> = groups.into_iter().collect();
    next.sort_by_key(|(_, (_, first, _))| *first);
    let next: Vec<Value> = next
        .into_iter()
        .take(ROWS)
        .map(|((kind, subject, lead), (count, first, last))| {
            json!({
                "kind": kind,
                "subject": subject,
                "lead": lead,
                "count": count,
                "first_due": shown(first),
                "last_due": shown(last),
            })
        })
        .collect();
    let mut failed = outbox.entries_in(SendState::Failed)?;
    failed.sort_by_key(|entry| std::cmp::Reverse(entry.updated_at));
    let failures: Vec<Value> = failed
        .iter()
        .take(ROWS)
        .map(|entry| {
            json!({
                "key": entry.spec.key.as_str(),
                "recipient": entry.spec.recipient,
                "at": shown(entry.updated_at),
                "reply": entry.last_reply.clone().unwrap_or_default(),
                "reason": entry.reason.clone().unwrap_or_default(),
            })
        })
        .collect();
    let mut suppressions = outbox.suppressions()?;
    suppressions.sort_by_key(|suppression| std::cmp::Reverse(suppression.since));
    let suppressed: Vec<Value> = suppressions
        .iter()
        .take(ROWS)
        .map(|suppression| {
            json!({
                "address": suppression.address.as_str(),
                "list": suppression.list.clone().unwrap_or_else(|| "every list".to_owned()),
                "since": shown(suppression.since),
                "reason": suppression.reason,
            })
        })
        .collect();
    let overrides: Vec<Value> = outbox
        .overrides()?
        .iter()
        .take(ROWS)
        .map(|chosen| {
            json!({
                "address": chosen.address.as_str(),
                "language": chosen.language.clone().unwrap_or_default(),
                "zone": chosen.zone.clone().unwrap_or_default(),
                "since": shown(chosen.since),
            })
        })
        .collect();
    let requests: Vec<Value> = outbox
        .requests(true)?
        .iter()
        .take(ROWS)
        .map(|request| crate::digest::request_context(request, shown(request.asked)))
        .collect();
    Ok(json!({
        "now": shown(now),
        "pending": pending,
        "next": next,
        "failures": failures,
        "failures_total": failed.len(),
        "suppressions": suppressed,
        "suppressions_total": suppressions.len(),
        "overrides": overrides,
        "requests": requests,
        "configuration": {"loaded_at": null, "refused": null},
    }))
}

/// An instant as the page shows it: UTC, to the second.
fn shown(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
