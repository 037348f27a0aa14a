//! How a page is rendered: from `templates/<language>/web/<page>.html.hbs`
//! with the running configuration's renderer, in the reader's language.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tracing::error;

use crate::diagnostics::Chain;
use crate::model::Model;
use crate::render::Renderer;

/// The pages every template directory has for the public listener (the
/// mail's links lead to them): `render::prepare` refuses templates without
/// them when the configuration has a `public_url`.
pub const PUBLIC_PAGES: [&str; 5] = [
    "unsubscribe",
    "unsubscribed",
    "problem",
    "preferences",
    "preferences-saved",
];

/// Every page with a sample of what it sees (every key there), which
/// `render::prepare` renders in every language: a broken page is refused
/// when the configuration is loaded, not when a reader asks for it.
pub fn samples(model: &Model) -> Vec<(&'static str, Value)> {
    let organization = &model.settings().sender.organization;
    let (list_id, list_name) = model
        .lists()
        .values()
        .next()
        .map_or(("sample-list", "Sample list"), |list| {
            (list.id.as_str(), list.name.as_str())
        });
    let list = super::public::context(organization, list_id, list_name);
    let mut samples = vec![
        ("unsubscribe", list.clone()),
        ("unsubscribed", list),
        ("problem", Value::Object(serde_json::Map::new())),
    ];
    samples.extend(super::preferences::samples(
        organization,
        list_id,
        list_name,
        &["ar", "zh", "en", "fr", "ru", "es"],
    ));
    samples
}

/// A page rendered, or the plain refusal that replaces one that cannot be.
pub fn page(renderer: &Renderer, status: StatusCode, name: &str, language: &str, data: Value) -> Response {
    match renderer.render_page(name, language, data) {
        Ok((html, language)) => {
            let mut response = (status, axum::response::Html(html)).into_response();
            if let Ok(value) = HeaderValue::from_str(&language) {
                response.headers_mut().insert(header::CONTENT_LANGUAGE, value);
            }
            response
        }
        Err(err) => {
            error!(page = name, error = %Chain(&err), "a web page cannot be rendered");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "This page cannot be shown; the secretariat has been told.",
            )
        }
    }
}

/// A plain text answer, for what has no page of its own.
pub fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

/// Adds the headers every answer carries: no page of herald's is framed by
/// another site, runs a script, or is cached (each names one reader's
/// choices). A layer of both listeners (`Web::start`), so the answers axum
/// and tower-http make themselves (an unknown path's 404, the CSRF layer's
/// 403, a timeout, a body too large) carry them too.
pub(super) async fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
