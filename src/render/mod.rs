//! Planned send + model -> the exact message: subject, text and HTML, in
//! the reader's language, then an RFC 5322 message (see [`message`]).
//!
//! Templates are compiled once per language, into two Handlebars registries
//! because escaping is a per-registry setting: HTML parts are escaped, and
//! the subject and the text part are not (or a subject would show `&amp;`).
//! A language's registry holds the default language's files overlaid with
//! its own, so a missing French signature falls back to the English one.
//! [`prepare`] also renders every template against the real data, because a
//! strict-mode error only shows when the template is rendered.

mod context;
mod helpers;
pub mod locale;
pub mod message;
mod nesting;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use handlebars::Handlebars;
use serde_json::{Map, Value};

use crate::diagnostics::{Diagnostic, Diagnostics, Place};
use crate::key::{AddressKey, SendKey, SendKind};
use crate::model::{Event, FocalPoint, Lead, Model};
use crate::plan::PlannedSend;
use crate::resolve::{About, Resolved};

pub use locale::Localizer;

/// The parts every template family has, as files `<family>.<part>.hbs`.
const PARTS: [&str; 3] = ["subject", "txt", "html"];

/// The template family of the operator's digest.
const DIGEST: &str = "digest";

/// Compiled templates for every language of the template directory.
///
/// A Renderer must only render for the model it was made from (as `Loaded`
/// keeps them together): it keeps parts of contexts built from that model
/// (`SharedContexts`), and a new configuration gets a new Renderer.
pub struct Renderer {
    languages: BTreeMap<String, Registries>,
    default_language: String,
    localizer: Arc<Localizer>,
    shared: SharedContexts,
    /// Every attachment of the model, encoded once (see [`message::Encoded`]).
    attachments: message::EncodedAttachments,
}

/// The shared parts of reminder contexts ([`context::reminder_shared`]) last
/// built, by event, lead, language and the reader's time zone. A burst
/// sends one event to thousands of readers; formatting its dates and phrases
/// for each of them (and dropping the result) was a large part of a send.
/// Small on purpose: it forgets everything when full, since the sends due
/// at one time are about a few events, and an idle daemon should not hold
/// the contexts of every event it ever reminded of.
#[derive(Default)]
struct SharedContexts(Mutex<HashMap<SharedKey, Arc<Map<String, Value>>>>);

/// Event id, lead, language (of the templates), reader's time zone.
type SharedKey = (String, String, String, Option<String>);

impl SharedContexts {
    const CAPACITY: usize = 64;

    /// The shared part for `key`, built by `build` unless it is kept.
    fn get_or_build(
        &self,
        key: SharedKey,
        build: impl FnOnce() -> Map<String, Value>,
    ) -> Arc<Map<String, Value>> {
        let lock = || self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(shared) = lock().get(&key) {
            return shared.clone();
        }
        // Built without the lock: two threads may both build the same part,
        // which is harmless, rather than wait for each other.
        let shared = Arc::new(build());
        let mut kept = lock();
        if kept.len() >= Self::CAPACITY {
            kept.clear();
        }
        kept.insert(key, shared.clone());
        shared
    }
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("languages", &self.languages.keys())
            .finish()
    }
}

/// The two registries of one language, and which file each template came from.
struct Registries {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
    files: BTreeMap<String, PathBuf>,
}

/// What an update or cancellation notice is about.
pub struct Notice<'a> {
    /// The event as it is now (or was, when it was removed).
    pub event: &'a crate::model::Event,
    /// The event as calendars knew it before the change.
    pub previous: Option<&'a crate::model::Event>,
    pub cancel: bool,
}

/// A rendered message before it becomes MIME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The language of the templates actually used, after fallback.
    pub language: String,
    /// An iCalendar invitation to carry, with its method; set by the
    /// caller, who knows the event's SEQUENCE (see [`message::invitation`]).
    pub calendar: Option<(crate::calendar::Method, String)>,
    /// The files the message carries, encoded; shared with every other
    /// message that carries them.
    pub attachments: Vec<message::Encoded>,
}

/// Why a send could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.file, self.line, self.column) {
            (Some(file), Some(line), Some(column)) => {
                write!(f, "{}:{line}:{column}: {}", file.display(), self.message)
            }
            (Some(file), _, _) => write!(f, "{}: {}", file.display(), self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for RenderError {}

impl RenderError {
    pub fn plain(message: impl Into<String>) -> RenderError {
        RenderError {
            file: None,
            line: None,
            column: None,
            message: message.into(),
        }
    }

    fn into_diagnostic(self) -> Diagnostic {
        let place = match (self.line, self.column) {
            (Some(line), Some(column)) => Place::At { line, column },
            (Some(line), None) => Place::Line(line),
            _ => Place::File,
        };
        Diagnostic {
            file: self.file.unwrap_or_default(),
            place,
            message: self.message,
            snippet: None,
        }
    }
}

/// Compiles the templates and renders every one of them against the model's
/// events and letters in every language; every problem is reported.
pub fn prepare(model: &Model) -> Result<Renderer, Diagnostics> {
    prepare_for(model, None)
}

/// [`prepare`], rendering only the events whose start is at or after
/// `since` (and every letter), in the languages some focal point reads
/// (and the default language): the daemon leaves out what can send
/// nothing. Every language's templates are still compiled, and `herald
/// check` ([`prepare`]) renders them all.
pub fn prepare_for(model: &Model, since: Option<jiff::Timestamp>) -> Result<Renderer, Diagnostics> {
    let renderer = Renderer::new(model)?;
    let mut problems = BTreeSet::new();
    renderer.check_families(model, &mut problems);
    if problems.is_empty() {
        renderer.check_renders(model, since, &mut problems);
    }
    if problems.is_empty() {
        Ok(renderer)
    } else {
        Err(Diagnostics(
            problems.into_iter().map(RenderError::into_diagnostic).collect(),
        ))
    }
}

// RenderError is ordered only to deduplicate problems found in several languages.
impl PartialOrd for RenderError {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RenderError {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.file, self.line, self.column, &self.message).cmp(&(
            &other.file,
            other.line,
            other.column,
            &other.message,
        ))
    }
}

impl Renderer {
    /// Compiles every template file; syntax errors come with file, line and column.
    pub fn new(model: &Model) -> Result<Renderer, Diagnostics> {
        let sources = &model.templates();
        let default_language = model.settings().default_language.clone();
        let localizer = Arc::new(Localizer::new(sources.phrases.clone(), &default_language));
        let languages: BTreeSet<&String> = sources.files.keys().map(|(language, _)| language).collect();
        // The default language first: the nesting of its templates is
        // checked first, and a problem in a file every language falls back
        // to is reported as the default language's templates meet it.
        let mut languages: Vec<&String> = languages.into_iter().collect();
        languages.sort_by_key(|language| **language != default_language);
        let mut problems = BTreeSet::new();
        let mut registries = BTreeMap::new();
        for language in languages {
            let mut registry = Registries {
                html: new_registry(&localizer, true),
                text: new_registry(&localizer, false),
                files: BTreeMap::new(),
            };
            // The most general language first, so that more specific files win.
            for lang in locale::language_chain(language, &default_language).iter().rev() {
                for ((file_lang, name), file) in sources.files.range((lang.clone(), String::new())..) {
                    if file_lang != lang {
                        break;
                    }
                    if let Err(problem) = registry.register(name, file) {
                        problems.insert(problem);
                    }
                }
            }
            // Only once every file compiled: a partial left out would hide
            // the cycles it closes.
            if problems.is_empty() {
                problems.extend(registry.check_nesting());
            }
            registries.insert(language.clone(), registry);
        }
        if !problems.is_empty() {
            return Err(Diagnostics(
                problems.into_iter().map(RenderError::into_diagnostic).collect(),
            ));
        }
        Ok(Renderer {
            languages: registries,
            default_language,
            localizer,
            shared: SharedContexts::default(),
            attachments: message::EncodedAttachments::of(model),
        })
    }

    pub fn localizer(&self) -> &Localizer {
        &self.localizer
    }

    /// The language whose templates serve a reader of `language`.
    pub fn resolve_language(&self, language: &str) -> &str {
        locale::language_chain(language, &self.default_language)
            .into_iter()
            .find_map(|lang| self.languages.get_key_value(&lang).map(|(k, _)| k.as_str()))
            .unwrap_or(&self.default_language)
    }

    /// Renders one resolved send, with the invitation it carries (a
    /// meeting's reminder, an update, a cancellation) stamped `now`.
    pub fn render(
        &self,
        model: &Model,
        send: &Resolved<'_>,
        now: jiff::Timestamp,
    ) -> Result<Rendered, RenderError> {
        let mut rendered = self.render_parts(model, send)?;
        rendered.calendar = message::invitation(model, send, now);
        rendered.attachments = self.attachments.carried_by(send);
        Ok(rendered)
    }

    /// The subject, text and HTML of `send`, without an invitation.
    fn render_parts(&self, model: &Model, send: &Resolved<'_>) -> Result<Rendered, RenderError> {
        let language = self.resolve_language(&send.send.language).to_owned();
        let focal_point = send.focal_point;
        let reader = context::Reader {
            focal_point,
            list: &send.send.list,
            language: &language,
        };
        let data = match &send.about {
            About::Reminder {
                roadmap, event, lead, ..
            } => {
                let zone = focal_point.zone.as_ref();
                let key = (
                    event.id.clone(),
                    lead.as_str().to_owned(),
                    language.clone(),
                    zone.map(|z| z.name.clone()),
                );
                let shared = self.shared.get_or_build(key, || {
                    context::reminder_shared(model, &self.localizer, roadmap, event, lead, &language, zone)
                });
                context::for_reader(Map::clone(&shared), model, &reader)
            }
            About::Letter(letter) => context::letter(model, &self.localizer, letter, &reader),
            About::Notice {
                event,
                previous,
                cancel,
                ..
            } => {
                let notice = Notice {
                    event,
                    previous: *previous,
                    cancel: *cancel,
                };
                context::notice(model, &self.localizer, &notice, &reader)
            }
        };
        self.render_family(&send.send.template, &language, data)
    }

    /// Renders the web page `page` (the template `web/<page>.html.hbs`,
    /// HTML-escaped) from its context, in `language` or the language it
    /// falls back to; `lang` is added to the context, as for mail. Returns
    /// the HTML and the language used, for the page's `lang` attribute and
    /// `Content-Language`.
    pub fn render_page(
        &self,
        page: &str,
        language: &str,
        mut data: Value,
    ) -> Result<(String, String), RenderError> {
        let language = self.resolve_language(language).to_owned();
        if let Value::Object(map) = &mut data {
            map.insert("lang".to_owned(), Value::String(language.clone()));
        }
        let registries = self
            .languages
            .get(&language)
            .ok_or_else(|| RenderError::plain(format!("no templates for {language:?}")))?;
        let html = registries.render_html(&format!("web/{page}.html"), &handlebars::Context::from(data))?;
        Ok((html, language))
    }

    /// Whether the default language has the web page `page`
    /// (`web/<page>.html.hbs`), which every language falls back to.
    pub fn has_page(&self, page: &str) -> bool {
        self.languages
            .get(&self.default_language)
            .is_some_and(|registries| registries.files.contains_key(&format!("web/{page}.html")))
    }

    /// The languages herald has templates in (after none of them falls
    /// back), for the choice of language a reader is offered.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.languages.keys().map(String::as_str)
    }

    /// Renders the operator's digest (see [`crate::digest`]) from its
    /// context, in `language` or the language it falls back to.
    pub fn render_digest(&self, language: &str, mut data: Value) -> Result<Rendered, RenderError> {
        let language = self.resolve_language(language).to_owned();
        if let Value::Object(map) = &mut data {
            map.insert("lang".to_owned(), Value::String(language.clone()));
        }
        self.render_family(DIGEST, &language, data)
    }

    fn render_family(&self, family: &str, language: &str, data: Value) -> Result<Rendered, RenderError> {
        let registries = self
            .languages
            .get(language)
            .ok_or_else(|| RenderError::plain(format!("no templates for {language:?}")))?;
        // One context for the three parts: rendering with a plain value
        // would copy all of it into a new context for each.
        let data = handlebars::Context::from(data);
        let subject = registries.render_text(&format!("{family}.subject"), &data)?;
        let subject = subject.trim().to_owned();
        if subject.contains(['\r', '\n']) {
            return Err(RenderError {
                file: registries.files.get(&format!("{family}.subject")).cloned(),
                line: None,
                column: None,
                message: format!(
                    "the subject renders on more than one line ({subject:?}); a subject must be one line"
                ),
            });
        }
        if subject.is_empty() {
            return Err(RenderError {
                file: registries.files.get(&format!("{family}.subject")).cloned(),
                line: None,
                column: None,
                message: "the subject renders empty".to_owned(),
            });
        }
        let text = registries.render_text(&format!("{family}.txt"), &data)?;
        let html = registries.render_html(&format!("{family}.html"), &data)?;
        Ok(Rendered {
            subject,
            text,
            html,
            language: language.to_owned(),
            calendar: None,
            attachments: Vec::new(),
        })
    }

    /// Every template family the model uses exists in the default language.
    fn check_families(&self, model: &Model, problems: &mut BTreeSet<RenderError>) {
        let mut families: BTreeSet<&str> = BTreeSet::new();
        for roadmap in model.roadmaps() {
            families.extend(roadmap.events.iter().map(|e| e.template.as_str()));
        }
        families.extend(model.letters().iter().map(|l| l.template.as_str()));
        if model.roadmaps().iter().any(|r| r.notices) {
            families.extend([SendKind::Update.as_str(), SendKind::Cancellation.as_str()]);
        }
        if model.settings().digest.is_some() {
            families.insert(DIGEST);
        }
        let Some(default) = self.languages.get(&self.default_language) else {
            return;
        };
        if model.settings().sender.public_url.is_some() {
            for page in crate::web::pages::PUBLIC_PAGES {
                if !self.has_page(page) {
                    problems.insert(RenderError::plain(format!(
                        "the template {}/web/{page}.html.hbs is missing; the links of herald's mail lead to it ([http] public_url)",
                        self.default_language
                    )));
                }
            }
        }
        for family in families {
            for part in PARTS {
                let name = format!("{family}.{part}");
                if !default.files.contains_key(&name) {
                    problems.insert(RenderError::plain(format!(
                        "the template {}/{name}.hbs is missing; every template needs {family}.subject.hbs, {family}.txt.hbs and {family}.html.hbs",
                        self.default_language
                    )));
                }
            }
        }
    }

    /// Renders every event's reminder and notices and every letter in every
    /// language, with a reader in a far time zone so the reader-zone text is
    /// exercised.
    ///
    /// The languages are checked at once, each on a thread of its own: the
    /// daemon's start and every reload wait for this, and with hundreds of
    /// events it is most of their time.
    fn check_renders(
        &self,
        model: &Model,
        since: Option<jiff::Timestamp>,
        problems: &mut BTreeSet<RenderError>,
    ) {
        // The daemon renders only the languages it can send in: six
        // languages' templates took three times two's, and the daemon's
        // start and every reload wait for this.
        let read: Option<BTreeSet<&str>> = since.map(|_| {
            let languages: BTreeSet<&str> = model
                .focal_points()
                .iter()
                .map(|focal_point| focal_point.language.as_str())
                .collect();
            languages
                .into_iter()
                .map(|language| self.resolve_language(language))
                .chain([self.default_language.as_str()])
                .collect()
        });
        let found: Vec<Vec<(RenderError, String)>> = std::thread::scope(|scope| {
            let checks: Vec<_> = self
                .languages
                .keys()
                .filter(|language| read.as_ref().is_none_or(|read| read.contains(language.as_str())))
                .map(|language| scope.spawn(move || self.check_language(model, since, language)))
                .collect();
            checks
                .into_iter()
                .map(|check| {
                    check
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        // A mistake in a template shows on every event; report it once.
        let mut seen = BTreeSet::new();
        for (problem, context) in found.into_iter().flatten() {
            if seen.insert(problem.clone()) {
                problems.insert(with_context(problem, &context));
            }
        }
    }

    /// [`Renderer::check_renders`] in one language: the problems, each with
    /// what was being rendered, in the order found.
    fn check_language(
        &self,
        model: &Model,
        since: Option<jiff::Timestamp>,
        language: &String,
    ) -> Vec<(RenderError, String)> {
        let all_day_at = model.settings().reminders.all_day_at;
        let to_check = |event: &&crate::model::Event| {
            since.is_none_or(|since| {
                event
                    .anchor(all_day_at)
                    .is_some_and(|start| start.timestamp() >= since)
            })
        };
        let mut found = Vec::new();
        let mut report = |problem: RenderError, context: String| found.push((problem, context));
        let sample = sample_reader(language, model.lists());
        let address = AddressKey::of(sample.email.as_ref());
        let one_day = Lead::parse("1d").expect("a valid literal lead");
        // A send of `key` to the sample reader through `lists`' first list.
        let send = |key: SendKey, lists: &[String], template: &str, due: jiff::ZonedDateTime, about| {
            let list = lists.first().cloned().unwrap_or_default();
            Resolved {
                focal_point: &sample,
                list: model.lists().get(&list),
                send: PlannedSend {
                    key,
                    due,
                    to: sample.email.to_string(),
                    list,
                    language: language.clone(),
                    template: template.to_owned(),
                },
                about,
                // Templates do not see the attachments themselves.
                attachments: &[],
            }
        };
        let day_of = |event: &Event| {
            event.zone.at(
                event.schedule.first_day().unwrap_or_default(),
                jiff::civil::Time::midnight(),
            )
        };
        for roadmap in model.roadmaps() {
            for event in roadmap.events.iter().filter(to_check) {
                let reminder = send(
                    SendKey::reminder(&event.id, one_day.as_str(), &address),
                    &event.lists,
                    &event.template,
                    day_of(event),
                    About::Reminder {
                        roadmap,
                        event,
                        lead: &one_day,
                        sequence: 0,
                    },
                );
                if let Err(problem) = self.render_parts(model, &reminder) {
                    report(
                        problem,
                        format!("rendering a reminder of {} in {language}", event.id),
                    );
                }
            }
        }
        for roadmap in model.roadmaps().iter().filter(|r| r.notices) {
            for event in roadmap.events.iter().filter(to_check) {
                for kind in [SendKind::Update, SendKind::Cancellation] {
                    let notice = send(
                        SendKey::notice(kind, &event.id, 1, &address),
                        &event.lists,
                        kind.as_str(),
                        day_of(event),
                        About::Notice {
                            event,
                            previous: Some(event),
                            cancel: kind == SendKind::Cancellation,
                            sequence: 0,
                        },
                    );
                    if let Err(problem) = self.render_parts(model, &notice) {
                        report(
                            problem,
                            format!("rendering a notice about {} in {language}", event.id),
                        );
                    }
                }
            }
        }
        for letter in model.letters() {
            let due = letter
                .send_at
                .clone()
                .unwrap_or_else(|| jiff::Timestamp::UNIX_EPOCH.to_zoned_datetime(jiff::tz::TimeZone::UTC));
            let sent = send(
                SendKey::letter(&letter.id, &address),
                &letter.lists,
                &letter.template,
                due,
                About::Letter(letter),
            );
            if let Err(problem) = self.render_parts(model, &sent) {
                report(problem, format!("rendering letter {} in {language}", letter.id));
            }
        }
        // The digest, when configured or when its templates are there
        // anyway (a configuration may add `[digest]` later).
        let has_digest = self
            .languages
            .get(language)
            .is_some_and(|registries| registries.files.contains_key(&format!("{DIGEST}.subject")));
        if model.settings().digest.is_some() || has_digest {
            let settings = crate::digest::settings_or_sample(model);
            let data = crate::digest::sample_context(model, &settings);
            if let Err(problem) = self.render_digest(language, data) {
                report(problem, format!("rendering the digest in {language}"));
            }
        }
        // The web pages, those the templates have (the mail's links need
        // them when there is a public_url: `check_families` says so).
        for (page, data) in crate::web::pages::samples(model) {
            if self.has_page(page)
                && let Err(problem) = self.render_page(page, language, data)
            {
                report(problem, format!("rendering the web page {page} in {language}"));
            }
        }
        found
    }
}

fn with_context(mut problem: RenderError, context: &str) -> RenderError {
    problem.message = format!("{} (while {context})", problem.message);
    problem
}

/// A reader with every field set, for checking templates.
fn sample_reader(language: &str, lists: &BTreeMap<String, crate::model::List>) -> FocalPoint {
    FocalPoint {
        name: "Sample Reader".to_owned(),
        email: lettre::Address::new("sample.reader", "example.org").expect("a valid literal address"),
        mission: Some("Sample Mission".to_owned()),
        honorific: Some("Excellency".to_owned()),
        language: language.to_owned(),
        zone: crate::model::Zone::named("Asia/Tokyo").ok(),
        lists: lists.keys().cloned().collect(),
        leads: None,
        origin: None,
    }
}

fn new_registry(localizer: &Arc<Localizer>, html: bool) -> Handlebars<'static> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    if !html {
        registry.register_escape_fn(handlebars::no_escape);
    }
    helpers::register(&mut registry, localizer.clone(), html);
    registry
}

impl Registries {
    /// Registers `name` (`reminder.html`, `partials/letterhead.txt`, …) in the
    /// registry its part belongs to.
    fn register(&mut self, name: &str, file: &crate::model::TemplateFile) -> Result<(), RenderError> {
        let (base, part) = name.rsplit_once('.').unwrap_or((name, ""));
        // Before handlebars builds it: a template nested too deep cannot
        // even be dropped safely once built.
        nesting::scan(&file.source, &file.path)?;
        let result = match (base.strip_prefix("partials/"), part) {
            (Some(partial), "html") => self.html.register_partial(partial, &file.source),
            (Some(partial), "txt") => self.text.register_partial(partial, &file.source),
            (None, "html") => self.html.register_template_string(name, &file.source),
            (None, "txt" | "subject") => self.text.register_template_string(name, &file.source),
            _ => {
                return Err(RenderError {
                    file: Some(file.path.clone()),
                    line: None,
                    column: None,
                    message: "unknown template part: name templates <name>.subject.hbs, <name>.txt.hbs or <name>.html.hbs".to_owned(),
                });
            }
        };
        self.files.insert(name.to_owned(), file.path.clone());
        result.map_err(|err| {
            let (line, column) = err.pos().map_or((None, None), |(l, c)| (Some(l), Some(c)));
            RenderError {
                file: Some(file.path.clone()),
                line,
                column,
                message: format!("template syntax error: {}", err.reason()),
            }
        })
    }

    /// Partials that include each other, computed partial names, and
    /// nesting too deep, in both registries (see [`nesting`]).
    fn check_nesting(&self) -> Vec<RenderError> {
        let file_of = |part: &'static str| {
            move |name: &str| {
                self.files
                    .get(name)
                    .or_else(|| self.files.get(&format!("partials/{name}.{part}")))
                    .cloned()
            }
        };
        let mut problems = nesting::check(self.html.get_templates(), file_of("html"));
        problems.extend(nesting::check(self.text.get_templates(), file_of("txt")));
        problems
    }

    fn render_text(&self, name: &str, data: &handlebars::Context) -> Result<String, RenderError> {
        self.text
            .render_with_context(name, data)
            .map_err(|err| self.render_error(name, &err))
    }

    fn render_html(&self, name: &str, data: &handlebars::Context) -> Result<String, RenderError> {
        self.html
            .render_with_context(name, data)
            .map_err(|err| self.render_error(name, &err))
    }

    fn render_error(&self, name: &str, err: &handlebars::RenderError) -> RenderError {
        // The error names the template (or partial) it happened in.
        let template = err.template_name.clone().unwrap_or_else(|| name.to_owned());
        let file = self
            .files
            .get(&template)
            .or_else(|| {
                self.files
                    .iter()
                    .find(|(n, _)| {
                        n.strip_prefix("partials/")
                            .is_some_and(|p| p.starts_with(&template))
                    })
                    .map(|(_, p)| p)
            })
            .or_else(|| self.files.get(name))
            .cloned();
        let message = match err.reason() {
            handlebars::RenderErrorReason::MissingVariable(Some(path)) => {
                format!("the template names {path:?}, which the data does not have")
            }
            reason => reason.to_string(),
        };
        RenderError {
            file,
            line: err.line_no,
            column: err.column_no,
            message,
        }
    }
}
