//! The preferences page: `GET /preferences/{token}` shows the reader's
//! language, time zone and lists; `POST /preferences/{token}` saves them.
//!
//! The token is the reader's personal link token ([`readers::find`]), the
//! one their messages carry; a token that finds no reader gets the plain
//! problem page (404) and changes nothing. The page shows the reader's own
//! values and lists only, nothing of any other focal point.
//!
//! What the reader chooses is written to the outbox, never to the
//! configuration: their language and zone as an override (none when they
//! equal the configuration's), a list they leave as a suppression on that
//! list, a list they take again as the lifting of that suppression, and a
//! successor as a request for the operator, which changes no list. Then the
//! daemon is nudged to plan again, so the messages still to come follow.
//!
//! Everything is validated before anything is written: a form with a
//! mistake is shown again (422) with each error next to its field and a
//! summary at the top, and nothing is stored.

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum_extra::extract::Form;
use axum_extra::extract::FormRejection;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{error, info};

use super::Shared;
use super::pages;
use super::public::problem;
use super::readers::{self, Reader};
use crate::diagnostics::Chain;
use crate::model::{FocalPoint, Zone};
use crate::outbox::{NewRequest, Outbox, OutboxError, Override};
use crate::scheduler::{Loaded, blocking};

/// Why a list a reader unticked is suppressed, for `herald suppressions`.
const REASON: &str = "left on the preferences page";

/// The longest name, address or zone the form takes: a person's name is
/// far shorter, and an operator reads what is stored.
const MAX_FIELD: usize = 200;

/// The zones offered as suggestions (any IANA name is taken): the cities of
/// the process's meetings and of most missions.
pub const COMMON_ZONES: [&str; 36] = [
    "Africa/Abidjan",
    "Africa/Addis_Ababa",
    "Africa/Cairo",
    "Africa/Johannesburg",
    "Africa/Lagos",
    "Africa/Nairobi",
    "America/Bogota",
    "America/Buenos_Aires",
    "America/Chicago",
    "America/Los_Angeles",
    "America/Mexico_City",
    "America/New_York",
    "America/Santiago",
    "America/Sao_Paulo",
    "America/Toronto",
    "Asia/Bangkok",
    "Asia/Dhaka",
    "Asia/Dubai",
    "Asia/Jakarta",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Manila",
    "Asia/Riyadh",
    "Asia/Shanghai",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Europe/Berlin",
    "Europe/London",
    "Europe/Madrid",
    "Europe/Moscow",
    "Europe/Paris",
    "Europe/Rome",
    "Europe/Vienna",
    "Europe/Zurich",
    "Pacific/Auckland",
];

pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/preferences/{token}", get(show).post(save))
}

/// What the form sends. Every field may be missing (a hand-made request):
/// a missing language or zone is then refused as an invalid one.
#[derive(Debug, Default, Deserialize)]
struct Choices {
    #[serde(default)]
    language: String,
    #[serde(default)]
    zone: String,
    /// The ticked lists: the key repeats, once per checkbox.
    #[serde(default)]
    list: Vec<String>,
    #[serde(default)]
    successor_name: String,
    #[serde(default)]
    successor_email: String,
}

/// The form's mistakes, one flag per field (the templates word them).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Errors {
    language: bool,
    zone: bool,
    lists: bool,
    successor_name: bool,
    successor_email: bool,
}

impl Errors {
    fn any(&self) -> bool {
        self.language || self.zone || self.lists || self.successor_name || self.successor_email
    }

    fn json(&self) -> Value {
        json!({
            "any": self.any(),
            "language": self.language,
            "zone": self.zone,
            "lists": self.lists,
            "successor_name": self.successor_name,
            "successor_email": self.successor_email,
        })
    }
}

/// What the form holds: the reader's current values, or what they sent.
struct Values {
    language: String,
    zone: String,
    /// The ids of the lists ticked.
    lists: Vec<String>,
    successor_name: String,
    successor_email: String,
}

/// The form with the reader's current values; changes nothing.
async fn show(State(shared): State<Shared>, token: Result<Path<String>, PathRejection>) -> Response {
    let loaded = shared.scheduler.loaded();
    let outbox = shared.scheduler.outbox().clone();
    blocking(move || {
        let Some((reader, focal_point)) = reader_of(&loaded, token) else {
            return problem(&loaded);
        };
        let current = match current(outbox.as_ref(), &loaded, &reader, focal_point) {
            Ok(current) => current,
            Err(err) => return unavailable(&err),
        };
        let language = current.language.clone();
        form(
            &loaded,
            focal_point,
            &current,
            Errors::default(),
            StatusCode::OK,
            &language,
        )
    })
    .await
}

/// Validates the form, then writes the reader's choices and nudges the
/// daemon; or shows the form again with its mistakes, writing nothing.
async fn save(
    State(shared): State<Shared>,
    token: Result<Path<String>, PathRejection>,
    choices: Result<Form<Choices>, FormRejection>,
) -> Response {
    let loaded = shared.scheduler.loaded();
    let outbox = shared.scheduler.outbox().clone();
    let now = shared.scheduler.clock().now();
    let replan = shared.replan.clone();
    blocking(move || {
        let Some((reader, focal_point)) = reader_of(&loaded, token) else {
            return problem(&loaded);
        };
        // A body that is no form at all is a mistake of every field.
        let Form(choices) = choices.unwrap_or_default();
        let (valid, (errors, sent)) = validate(&loaded, focal_point, choices);
        let Some(valid) = valid else {
            let shown = match current(outbox.as_ref(), &loaded, &reader, focal_point) {
                Ok(current) => current.language,
                Err(err) => return unavailable(&err),
            };
            return form(
                &loaded,
                focal_point,
                &sent,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
                &shown,
            );
        };
        let configured = loaded
            .choices
            .configured(&reader.address)
            .unwrap_or((focal_point.language.as_str(), focal_point.zone.as_ref()));
        match write(outbox.as_ref(), &reader, focal_point, configured, &valid, now) {
            Ok(()) => {}
            Err(err) => return unavailable(&err),
        }
        replan.notify_one();
        info!(
            address = reader.address.as_str(),
            language = %valid.language,
            zone = valid.zone.as_ref().map_or("", |zone| zone.name.as_str()),
            successor = valid.successor.is_some(),
            "a reader saved their preferences"
        );
        saved(&loaded, &reader, focal_point, configured.1, &valid)
    })
    .await
}

/// The reader a token is for, and their focal point in the running model.
fn reader_of(loaded: &Loaded, token: Result<Path<String>, PathRejection>) -> Option<(Reader, &FocalPoint)> {
    let Path(token) = token.ok()?;
    let reader = readers::find(loaded, &token)?;
    let focal_point = reader.focal_point(&loaded.model)?;
    Some((reader, focal_point))
}

/// The reader's lists: those of the configuration they are on.
fn lists_of<'m>(loaded: &'m Loaded, focal_point: &FocalPoint) -> Vec<&'m crate::model::List> {
    focal_point
        .lists
        .iter()
        .filter_map(|id| loaded.model.lists().get(id))
        .collect()
}

/// The reader's values now: their override over the configuration, and
/// the lists no suppression stops.
fn current(
    outbox: &dyn Outbox,
    loaded: &Loaded,
    reader: &Reader,
    focal_point: &FocalPoint,
) -> Result<Values, OutboxError> {
    let choice = outbox.override_of(&reader.address)?;
    let suppressions: Vec<_> = outbox
        .suppressions()?
        .into_iter()
        .filter(|suppression| suppression.address == reader.address)
        .collect();
    let language = choice
        .as_ref()
        .and_then(|choice| choice.language.clone())
        .unwrap_or_else(|| focal_point.language.clone());
    let zone = choice
        .as_ref()
        .and_then(|choice| choice.zone.clone())
        .or_else(|| focal_point.zone.as_ref().map(|zone| zone.name.clone()))
        .unwrap_or_default();
    let lists = lists_of(loaded, focal_point)
        .into_iter()
        .filter(|list| !suppressions.iter().any(|s| s.covers(&list.id)))
        .map(|list| list.id.clone())
        .collect();
    Ok(Values {
        language: offered(loaded, &language),
        zone,
        lists,
        successor_name: String::new(),
        successor_email: String::new(),
    })
}

/// The language of the templates that `language` is read in: itself, its
/// primary subtag (`en-GB` → `en`), else the default language.
fn offered(loaded: &Loaded, language: &str) -> String {
    let has = |code: &str| loaded.renderer.languages().any(|own| own == code);
    if has(language) {
        return language.to_owned();
    }
    let primary = language.split('-').next().unwrap_or(language);
    if has(primary) {
        return primary.to_owned();
    }
    loaded.model.settings().default_language.clone()
}

/// What a valid form asks for.
struct Valid {
    language: String,
    /// `None`: no zone of the reader's own beyond the configuration's.
    zone: Option<Zone>,
    lists: Vec<String>,
    successor: Option<(String, String)>,
}

/// The form checked field by field: what it asks for, or every mistake
/// with what was sent (to show it again).
fn validate(
    loaded: &Loaded,
    focal_point: &FocalPoint,
    choices: Choices,
) -> (Option<Valid>, (Errors, Values)) {
    let mut errors = Errors::default();
    let language = choices.language.trim().to_owned();
    errors.language = !loaded.renderer.languages().any(|own| own == language);
    let zone_text = choices.zone.trim().to_owned();
    let zone = if zone_text.is_empty() {
        None
    } else if zone_text.len() > MAX_FIELD || zone_text.chars().any(char::is_control) {
        errors.zone = true;
        None
    } else {
        match Zone::named(&zone_text) {
            Ok(zone) => Some(zone),
            Err(_) => {
                errors.zone = true;
                None
            }
        }
    };
    let own = lists_of(loaded, focal_point);
    errors.lists = choices
        .list
        .iter()
        .any(|id| !own.iter().any(|list| &list.id == id));
    let name = choices.successor_name.trim().to_owned();
    let email = choices.successor_email.trim().to_owned();
    let successor = if name.is_empty() && email.is_empty() {
        None
    } else {
        errors.successor_name =
            name.is_empty() || name.len() > MAX_FIELD || name.chars().any(char::is_control);
        errors.successor_email = !is_address(&email);
        Some((name.clone(), email.clone()))
    };
    let sent = Values {
        language: if errors.language {
            offered(loaded, &focal_point.language)
        } else {
            language.clone()
        },
        zone: zone_text,
        lists: choices.list.clone(),
        successor_name: name,
        successor_email: email,
    };
    if errors.any() {
        return (None, (errors, sent));
    }
    let valid = Valid {
        language,
        zone,
        lists: choices.list,
        successor,
    };
    (Some(valid), (errors, sent))
}

/// An address herald could write to: one line, a domain with a dot.
fn is_address(text: &str) -> bool {
    text.len() <= MAX_FIELD
        && !text.chars().any(char::is_control)
        && text
            .parse::<lettre::Address>()
            .is_ok_and(|address| address.domain().contains('.'))
}

/// Writes a valid form: the override, the lists, the request.
/// `configured` is what the configuration says of the reader's language
/// and zone (the running model has their override's).
fn write(
    outbox: &dyn Outbox,
    reader: &Reader,
    focal_point: &FocalPoint,
    configured: (&str, Option<&Zone>),
    valid: &Valid,
    now: Timestamp,
) -> Result<(), OutboxError> {
    // What equals the configuration is not an override: a later edit of
    // the configuration then applies to the reader too.
    let (configured_language, configured_zone) = configured;
    let language = (valid.language != configured_language).then(|| valid.language.clone());
    let zone = valid
        .zone
        .as_ref()
        .filter(|zone| configured_zone != Some(*zone))
        .map(|zone| zone.name.clone());
    outbox.set_override(&Override {
        address: reader.address.clone(),
        language,
        zone,
        since: now,
    })?;
    let suppressions: Vec<_> = outbox
        .suppressions()?
        .into_iter()
        .filter(|suppression| suppression.address == reader.address)
        .collect();
    for list in &focal_point.lists {
        let ticked = valid.lists.contains(list);
        let left = suppressions
            .iter()
            .any(|s| s.list.as_deref() == Some(list.as_str()));
        if ticked && left {
            outbox.lift_list_suppression(&reader.address, list, now)?;
        } else if !ticked && !suppressions.iter().any(|s| s.covers(list)) {
            outbox.suppress(&reader.address, list, REASON, now)?;
        }
    }
    if let Some((name, email)) = &valid.successor {
        outbox.add_request(
            &NewRequest {
                from: reader.address.clone(),
                list: None,
                successor_name: name.clone(),
                successor_email: email.clone(),
            },
            now,
        )?;
    }
    Ok(())
}

/// The form, in `language`, with `values` and `errors`.
fn form(
    loaded: &Loaded,
    focal_point: &FocalPoint,
    values: &Values,
    errors: Errors,
    status: StatusCode,
    language: &str,
) -> Response {
    let lists: Vec<Value> = lists_of(loaded, focal_point)
        .into_iter()
        .map(|list| {
            json!({
                "id": list.id,
                "name": list.name,
                "checked": values.lists.contains(&list.id),
            })
        })
        .collect();
    let data = form_context(
        &loaded.model.settings().sender.organization,
        &focal_point.name,
        languages(loaded, &values.language),
        values,
        lists,
        errors,
    );
    pages::page(&loaded.renderer, status, "preferences", language, data)
}

/// The languages herald has templates for, each named in itself.
fn languages(loaded: &Loaded, selected: &str) -> Vec<Value> {
    loaded
        .renderer
        .languages()
        .map(|code| json!({ "code": code, "name": native_name(code), "selected": code == selected }))
        .collect()
}

/// What the preferences page sees (every key always there).
fn form_context(
    organization: &str,
    name: &str,
    languages: Vec<Value>,
    values: &Values,
    lists: Vec<Value>,
    errors: Errors,
) -> Value {
    json!({
        "sender": { "organization": organization },
        "reader": { "name": name },
        "languages": languages,
        "zone": values.zone,
        "zones": COMMON_ZONES.as_slice(),
        "lists": lists,
        "successor": { "name": values.successor_name, "email": values.successor_email },
        "errors": errors.json(),
    })
}

/// The answer to a saved form, in the language the reader chose.
fn saved(
    loaded: &Loaded,
    reader: &Reader,
    focal_point: &FocalPoint,
    configured_zone: Option<&Zone>,
    valid: &Valid,
) -> Response {
    let lists: Vec<Value> = lists_of(loaded, focal_point)
        .into_iter()
        .filter(|list| valid.lists.contains(&list.id))
        .map(|list| json!({ "id": list.id, "name": list.name }))
        .collect();
    let zone = valid
        .zone
        .as_ref()
        .or(configured_zone)
        .map(|zone| zone.name.clone())
        .unwrap_or_default();
    let data = saved_context(
        &loaded.model.settings().sender.organization,
        &valid.language,
        &zone,
        lists,
        valid.successor.as_ref(),
        &back_link(loaded, reader),
    );
    pages::page(
        &loaded.renderer,
        StatusCode::OK,
        "preferences-saved",
        &valid.language,
        data,
    )
}

/// What the saved page sees (every key always there).
fn saved_context(
    organization: &str,
    language: &str,
    zone: &str,
    lists: Vec<Value>,
    successor: Option<&(String, String)>,
    back: &str,
) -> Value {
    json!({
        "sender": { "organization": organization },
        "language": { "code": language, "name": native_name(language) },
        "zone": zone,
        "lists": lists,
        "successor": successor.map(|(name, email)| json!({ "name": name, "email": email })),
        "back": back,
    })
}

/// The link back to the form: relative (the page's own URL is
/// `…/preferences/TOKEN`), so a proxy's path prefix is kept.
fn back_link(loaded: &Loaded, reader: &Reader) -> String {
    loaded
        .model
        .settings()
        .sender
        .links
        .as_deref()
        .map(|keys| keys.unsubscribe_token(&reader.list, &reader.address))
        .unwrap_or_default()
}

/// A language's name in that language, as a reader looks for it.
pub fn native_name(code: &str) -> &str {
    match code {
        "ar" => "العربية",
        "zh" => "中文",
        "en" => "English",
        "fr" => "Français",
        "ru" => "Русский",
        "es" => "Español",
        "de" => "Deutsch",
        "pt" => "Português",
        other => other,
    }
}

/// The outbox cannot be read or written just now: nothing was changed.
fn unavailable(err: &OutboxError) -> Response {
    error!(error = %Chain(err), "the preferences page cannot reach the outbox");
    pages::plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "Your preferences could not be read or saved just now. Please try again in a few minutes.",
    )
}

/// The pages' samples, with every key there and every error shown, which
/// `render::prepare` renders in every language.
pub fn samples(
    organization: &str,
    list_id: &str,
    list_name: &str,
    languages: &[&str],
) -> Vec<(&'static str, Value)> {
    let languages: Vec<Value> = languages
        .iter()
        .map(|code| json!({ "code": code, "name": native_name(code), "selected": false }))
        .collect();
    let lists = vec![json!({ "id": list_id, "name": list_name, "checked": true })];
    let values = Values {
        language: String::new(),
        zone: "Europe/Zurich".to_owned(),
        lists: vec![list_id.to_owned()],
        successor_name: "Amina Diallo".to_owned(),
        successor_email: "amina.diallo@example.org".to_owned(),
    };
    let every_error = Errors {
        language: true,
        zone: true,
        lists: true,
        successor_name: true,
        successor_email: true,
    };
    let successor = ("Amina Diallo".to_owned(), "amina.diallo@example.org".to_owned());
    let saved_lists = vec![json!({ "id": list_id, "name": list_name })];
    vec![
        (
            "preferences",
            form_context(
                organization,
                "Anna Keller",
                languages.clone(),
                &values,
                lists.clone(),
                Errors::default(),
            ),
        ),
        (
            "preferences",
            form_context(
                organization,
                "Anna Keller",
                languages,
                &values,
                lists,
                every_error,
            ),
        ),
        (
            "preferences-saved",
            saved_context(
                organization,
                "fr",
                "Europe/Zurich",
                saved_lists,
                Some(&successor),
                "token",
            ),
        ),
        (
            "preferences-saved",
            saved_context(organization, "en", "", Vec::new(), None, "token"),
        ),
    ]
}
