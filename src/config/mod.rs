//! Files -> [`Model`]: the only code that reads the configuration directory.
//!
//! Loading is two-staged: serde reads each file into the structs of
//! `raw`, shaped like the files, and this module checks every value and
//! every cross-reference while building the model. It never stops at the
//! first problem, and it returns either a whole model or every problem,
//! each naming its file and place, so a bad edit can never half-load.

mod lists;
mod raw;
mod secrets;
mod templates;
mod values;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use jiff::civil::Time;
use serde::de::DeserializeOwned;
use toml::Spanned;

use crate::diagnostics::{Diagnostic, Diagnostics, SourceFile};
use crate::model::{
    Event, EventStatus, Hours, Lead, Letter, List, Model, ModelParts, ReminderPolicy, Roadmap, Schedule,
    Sender, Settings, Venue, Zone,
};
use crate::send::{Delivery, Security, SmtpSettings, Transport};

pub use secrets::{Environment, PASSWORD_CREDENTIAL};

/// The file of daemon-wide settings inside the configuration directory.
pub const SETTINGS_FILE: &str = "herald.toml";

/// The subdirectories of the configuration directory that hold its files.
pub const SUBDIRECTORIES: [&str; 3] = ["roadmaps", "lists", "letters"];

/// The template directory that herald.toml names (default `templates`),
/// read leniently: the file watcher must know where to look even while
/// herald.toml has problems, or is missing.
pub fn templates_dir(dir: &Path) -> PathBuf {
    let setting = std::fs::read_to_string(dir.join(SETTINGS_FILE))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|table| table.get("templates")?.as_str().map(str::to_owned));
    resolve_templates(dir, setting.as_deref())
}

/// The template directory for herald.toml's `templates` setting.
fn resolve_templates(dir: &Path, setting: Option<&str>) -> PathBuf {
    normalize(&dir.join(setting.unwrap_or("templates")))
}

/// A whole, valid configuration: what herald knows ([`Model`]) and how its
/// mail leaves ([`Delivery`], which the planner and the renderer never see).
#[derive(Debug, Clone)]
pub struct Config {
    pub model: Model,
    pub delivery: Delivery,
}

/// Reads and validates the whole configuration directory.
pub fn load(dir: &Path, env: &Environment) -> Result<Config, Diagnostics> {
    let mut loader = Loader {
        dir: dir.to_owned(),
        env,
        diagnostics: Diagnostics::default(),
        event_ids: HashMap::new(),
        roadmap_ids: Vec::new(),
        roadmaps_unreadable: false,
    };
    let model = loader.load();
    match model {
        Some(model) if loader.diagnostics.is_empty() => Ok(model),
        _ => Err(loader.diagnostics),
    }
}

/// Carries the diagnostics and the cross-file indexes while loading.
struct Loader<'a> {
    dir: PathBuf,
    env: &'a Environment,
    diagnostics: Diagnostics,
    /// Where each event id was first defined, to report duplicates.
    event_ids: HashMap<String, Diagnostic>,
    /// Every roadmap id read, valid or not, so that a letter naming a
    /// roadmap with a problem of its own is not reported a second time.
    roadmap_ids: Vec<String>,
    /// Set when a roadmap file could not be parsed at all.
    roadmaps_unreadable: bool,
}

/// A file's text with its path, parsed lazily by the caller.
struct Loaded {
    path: PathBuf,
    text: String,
}

impl Loaded {
    fn source(&self) -> SourceFile<'_> {
        SourceFile {
            path: &self.path,
            text: &self.text,
        }
    }
}

impl Loader<'_> {
    fn load(&mut self) -> Option<Config> {
        if !self.dir.is_dir() {
            self.diagnostics.file(
                &self.dir,
                "no such configuration directory: pass --config DIR or set HERALD_CONFIG",
            );
            return None;
        }
        let settings_file = self.read(&self.dir.join(SETTINGS_FILE));
        let herald: Option<(Loaded, raw::HeraldFile)> =
            settings_file.and_then(|file| self.parse(&file).map(|raw| (file, raw)));

        // Even without valid settings, the other files are parsed so that
        // every syntax error is reported in one run.
        let parts = herald.as_ref().map(|(file, raw)| self.settings_parts(file, raw));
        let roadmap_files = self.files_in("roadmaps", &["toml"]);
        let list_files = self.files_in("lists", &["toml", "csv"]);
        let letter_files = self.files_in("letters", &["toml"]);

        let empty_parts = SettingsParts {
            default_language: "en".to_owned(),
            ..SettingsParts::default()
        };
        let parts_ref = parts.as_ref().unwrap_or(&empty_parts);
        let roadmaps: Vec<Roadmap> = roadmap_files
            .iter()
            .filter_map(|path| self.roadmap(path, parts_ref))
            .collect();
        self.check_roadmap_ids(&roadmaps);
        let default_language = parts_ref.default_language.clone();
        let focal_points = lists::load_all(
            &list_files,
            parts_ref.parsed.then_some(&parts_ref.lists),
            &default_language,
            &mut self.diagnostics,
        );
        let letters: Vec<Letter> = letter_files
            .iter()
            .filter_map(|path| self.letter(path, parts_ref, &roadmaps))
            .collect();

        let (_, raw) = herald?;
        let parts = parts?;
        let templates_dir = resolve_templates(
            &self.dir,
            raw.templates.as_ref().map(|dir| dir.get_ref().as_str()),
        );
        let templates = templates::load(&templates_dir, &parts.default_language, &mut self.diagnostics);
        let (settings, delivery) = parts.settings?;
        let model = Model::new(ModelParts {
            settings,
            venues: parts.venues,
            lists: parts.lists,
            roadmaps,
            focal_points,
            letters,
            templates,
        });
        Some(Config { model, delivery })
    }

    fn read(&mut self, path: &Path) -> Option<Loaded> {
        match std::fs::read_to_string(path) {
            Ok(text) => Some(Loaded {
                path: path.to_owned(),
                text,
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                self.diagnostics.file(
                    path,
                    "missing; herald needs this file (see config/ in herald's sources for an example)",
                );
                None
            }
            Err(err) => {
                self.diagnostics.file(path, format!("cannot read: {err}"));
                None
            }
        }
    }

    fn parse<T: DeserializeOwned>(&mut self, file: &Loaded) -> Option<T> {
        match toml::from_str::<T>(&file.text) {
            Ok(value) => Some(value),
            Err(err) => {
                let message = err.message().trim_end_matches('\n').to_owned();
                let diagnostic = match err.span() {
                    Some(span) => file.source().at(span, message),
                    None => Diagnostic {
                        file: file.path.clone(),
                        place: crate::diagnostics::Place::File,
                        message,
                        snippet: None,
                    },
                };
                self.diagnostics.push(diagnostic);
                None
            }
        }
    }

    /// The files of a subdirectory with one of `extensions`, sorted by name;
    /// editor backups and hidden files are skipped.
    fn files_in(&mut self, subdir: &str, extensions: &[&str]) -> Vec<PathBuf> {
        let dir = self.dir.join(subdir);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(err) => {
                self.diagnostics
                    .file(&dir, format!("cannot read the directory: {err}"));
                return Vec::new();
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                !name.starts_with('.') && extensions.contains(&extension) && path.is_file()
            })
            .collect();
        files.sort();
        files
    }

    /// Checks `herald.toml` value by value.
    fn settings_parts(&mut self, file: &Loaded, raw: &raw::HeraldFile) -> SettingsParts {
        let src = file.source();
        let mut d = Vec::new();

        let default_language = match &raw.default_language {
            Some(text) => check(&src, text, values::language, &mut d).unwrap_or_else(|| "en".to_owned()),
            None => "en".to_owned(),
        };

        let mut venues = BTreeMap::new();
        let declared_venues = raw.venues.keys().cloned().collect();
        for (id, venue) in &raw.venues {
            if let Err(message) = values::id(id) {
                d.push(src.at(venue.span(), format!("venue {message}")));
            }
            let table = venue.get_ref();
            let name = check(
                &src,
                &table.name,
                |t| values::one_line(t, "the venue's name"),
                &mut d,
            );
            let zone = check(&src, &table.time_zone, values::zone, &mut d);
            let city = match &table.city {
                Some(city) => check(&src, city, |t| values::one_line(t, "the city"), &mut d),
                None => zone.as_ref().map(|z| crate::model::city_of_zone(&z.name)),
            };
            if let (Some(name), Some(zone), Some(city)) = (name, zone, city) {
                venues.insert(
                    id.clone(),
                    Venue {
                        id: id.clone(),
                        name,
                        city,
                        zone,
                    },
                );
            }
        }

        let mut lists = BTreeMap::new();
        for (id, list) in &raw.lists {
            if let Err(message) = values::id(id) {
                d.push(src.at(list.span(), format!("list {message}")));
            }
            let table = list.get_ref();
            let name = check(
                &src,
                &table.name,
                |t| values::one_line(t, "the list's name"),
                &mut d,
            );
            let leads = table.leads.as_ref().map(|leads| leads_of(&src, leads, &mut d));
            if let Some(name) = name {
                lists.insert(
                    id.clone(),
                    List {
                        id: id.clone(),
                        name,
                        leads,
                    },
                );
            }
        }

        let mut parts_of_day = BTreeMap::new();
        for (name, hours) in &raw.parts_of_day {
            if let Some(range) = check(&src, hours, values::time_range, &mut d) {
                parts_of_day.insert(name.clone(), range);
            }
        }
        if raw.parts_of_day.is_empty() {
            // The hours of United Nations meetings.
            parts_of_day.insert(
                "morning".to_owned(),
                (jiff::civil::time(10, 0, 0, 0), jiff::civil::time(13, 0, 0, 0)),
            );
            parts_of_day.insert(
                "afternoon".to_owned(),
                (jiff::civil::time(15, 0, 0, 0), jiff::civil::time(18, 0, 0, 0)),
            );
        }

        let reminders = self.reminder_policy(&src, &raw.reminders, &mut d);
        let sender = sender(&src, raw.sender.get_ref(), &mut d);
        let delivery = self.delivery(&src, &raw.delivery, &mut d);

        let settings = match (sender, reminders, delivery) {
            (Some(sender), Some(reminders), Some(delivery)) if d.is_empty() => Some((
                Settings {
                    default_language: default_language.clone(),
                    sender,
                    reminders,
                    parts_of_day: parts_of_day.clone(),
                },
                delivery,
            )),
            _ => None,
        };
        for diagnostic in d {
            self.diagnostics.push(diagnostic);
        }
        SettingsParts {
            parsed: true,
            settings,
            venues,
            declared_venues,
            lists,
            parts_of_day,
            default_language,
        }
    }

    fn reminder_policy(
        &self,
        src: &SourceFile,
        raw: &raw::RemindersTable,
        d: &mut Vec<Diagnostic>,
    ) -> Option<ReminderPolicy> {
        let leads = match &raw.leads {
            Some(leads) => leads_of(src, leads, d),
            None => vec![Lead::parse("7d").ok()?, Lead::parse("1d").ok()?],
        };
        let kinds = raw
            .kinds
            .iter()
            .map(|(kind, leads)| (kind.clone(), leads_of(src, leads, d)))
            .collect();
        let all_day_at = match &raw.all_day_at {
            Some(text) => check(src, text, values::time, d)?,
            None => jiff::civil::time(9, 0, 0, 0),
        };
        Some(ReminderPolicy {
            leads,
            kinds,
            all_day_at,
        })
    }

    fn delivery(
        &self,
        src: &SourceFile,
        raw: &raw::DeliveryTable,
        d: &mut Vec<Diagnostic>,
    ) -> Option<Delivery> {
        let env = self.env;
        let transport_name = env
            .var("HERALD_TRANSPORT")
            .or_else(|| raw.transport.as_ref().map(|t| t.get_ref().clone()))
            .unwrap_or_else(|| "maildir".to_owned());
        let state_dir = env
            .var("HERALD_STATE_DIR")
            .or_else(|| env.var("STATE_DIRECTORY"))
            .map(PathBuf::from)
            .or_else(|| raw.state_dir.as_ref().map(|dir| self.dir.join(dir.get_ref())))
            .unwrap_or_else(|| PathBuf::from("/var/lib/herald"));
        let late_window = match &raw.late_window {
            Some(text) => check(src, text, values::duration, d)?,
            None => jiff::SignedDuration::from_hours(6),
        };
        let redirect_to = match env.var("HERALD_REDIRECT_TO") {
            Some(text) => match values::address(&text) {
                Ok(address) => Some(address),
                Err(message) => {
                    d.push(env_diagnostic("HERALD_REDIRECT_TO", message));
                    return None;
                }
            },
            None => match &raw.redirect_to {
                Some(text) => Some(check(src, text, values::address, d)?),
                None => None,
            },
        };
        let transport = match transport_name.as_str() {
            "maildir" => {
                let dir = env
                    .var("HERALD_MAILDIR")
                    .map(PathBuf::from)
                    .or_else(|| raw.maildir.as_ref().map(|m| PathBuf::from(m.get_ref())))
                    .unwrap_or_else(|| PathBuf::from("maildir"));
                Transport::Maildir(dir)
            }
            "smtp" => Transport::Smtp(self.smtp(src, raw, d)?),
            other => {
                let message = format!("unknown transport {other:?}: use \"smtp\" or \"maildir\"");
                match &raw.transport {
                    Some(text) if env.var("HERALD_TRANSPORT").is_none() => {
                        d.push(src.at(text.span(), message))
                    }
                    _ => d.push(env_diagnostic("HERALD_TRANSPORT", message)),
                }
                return None;
            }
        };
        Some(Delivery {
            transport,
            state_dir,
            late_window,
            redirect_to,
        })
    }

    fn smtp(
        &self,
        src: &SourceFile,
        raw: &raw::DeliveryTable,
        d: &mut Vec<Diagnostic>,
    ) -> Option<SmtpSettings> {
        let env = self.env;
        let Some(smtp) = &raw.smtp else {
            if let Some(host) = env.var("HERALD_SMTP_HOST") {
                return Some(SmtpSettings {
                    host,
                    port: 587,
                    security: Security::StartTls,
                    username: env.var("HERALD_SMTP_USERNAME"),
                    password: secrets::password(env, None, &self.dir).ok().flatten(),
                    allow_plaintext_auth: false,
                    ca_file: env.var("HERALD_SMTP_CA_FILE").map(PathBuf::from),
                    timeout: std::time::Duration::from_secs(60),
                    max_connections: 4,
                    per_minute: None,
                });
            }
            let span = raw.transport.as_ref().map_or(0..0, Spanned::span);
            d.push(src.at(
                span,
                "transport \"smtp\" needs a [delivery.smtp] table with at least `host`",
            ));
            return None;
        };
        let table = smtp.get_ref();
        if let Some(password) = &table.password {
            d.push(src.at(
                password.span(),
                "passwords are not kept in herald.toml: use password_file, or the systemd credential `smtp-password` (LoadCredential=)",
            ));
        }
        let security_text = env
            .var("HERALD_SMTP_SECURITY")
            .or_else(|| table.security.as_ref().map(|s| s.get_ref().clone()))
            .unwrap_or_else(|| "starttls".to_owned());
        let security = match security_text.as_str() {
            "tls" => Security::Tls,
            "starttls" => Security::StartTls,
            "none" => Security::None,
            other => {
                let span = table.security.as_ref().map_or(smtp.span(), Spanned::span);
                d.push(src.at(span, format!("unknown security {other:?}: use \"tls\" (port 465), \"starttls\" (port 587) or \"none\" (loopback only)")));
                return None;
            }
        };
        let host = env
            .var("HERALD_SMTP_HOST")
            .unwrap_or_else(|| table.host.get_ref().clone());
        let port = match env.var("HERALD_SMTP_PORT") {
            Some(port) => match port.parse() {
                Ok(port) => port,
                Err(_) => {
                    d.push(env_diagnostic(
                        "HERALD_SMTP_PORT",
                        format!("invalid port {port:?}"),
                    ));
                    return None;
                }
            },
            None => table.port.unwrap_or(match security {
                Security::Tls => 465,
                Security::StartTls => 587,
                Security::None => 25,
            }),
        };
        let username = env
            .var("HERALD_SMTP_USERNAME")
            .or_else(|| table.username.as_ref().map(|u| u.get_ref().clone()));
        let password_file = env
            .var("HERALD_SMTP_PASSWORD_FILE")
            .or_else(|| table.password_file.as_ref().map(|p| p.get_ref().clone()));
        let password = match secrets::password(env, password_file.as_deref(), &self.dir) {
            Ok(password) => password,
            Err(message) => {
                let span = table.password_file.as_ref().map_or(smtp.span(), Spanned::span);
                d.push(src.at(span, message));
                None
            }
        };
        if username.is_some() && password.is_none() {
            d.push(src.at(
                smtp.span(),
                "`username` is set but no password was found: set password_file, or give the systemd credential `smtp-password`",
            ));
        }
        if username.is_some()
            && security == Security::None
            && !table.allow_plaintext_auth
            && !is_loopback(&host)
        {
            d.push(src.at(
                table.host.span(),
                format!("refusing to send a password unencrypted to {host:?}: use security = \"starttls\" or \"tls\", or set allow_plaintext_auth = true if you really mean it"),
            ));
        }
        let ca_file = env
            .var("HERALD_SMTP_CA_FILE")
            .map(PathBuf::from)
            .or_else(|| table.ca_file.as_ref().map(|file| self.dir.join(file.get_ref())));
        if let Some(file) = &ca_file
            && !file.is_file()
        {
            let span = table.ca_file.as_ref().map_or(smtp.span(), Spanned::span);
            d.push(src.at(span, format!("ca_file {} is not a readable file", file.display())));
        }
        let timeout = match &table.timeout {
            Some(text) => check(src, text, values::duration, d)?.unsigned_abs(),
            None => std::time::Duration::from_secs(60),
        };
        let max_connections = match &table.max_connections {
            Some(n) if *n.get_ref() == 0 => {
                d.push(src.at(n.span(), "max_connections must be at least 1"));
                return None;
            }
            Some(n) => *n.get_ref(),
            None => 4,
        };
        Some(SmtpSettings {
            host,
            port,
            security,
            username,
            password,
            allow_plaintext_auth: table.allow_plaintext_auth,
            ca_file,
            timeout,
            max_connections,
            per_minute: table.per_minute,
        })
    }

    fn roadmap(&mut self, path: &Path, parts: &SettingsParts) -> Option<Roadmap> {
        let file = self.read(path)?;
        let Some(raw) = self.parse::<raw::RoadmapFile>(&file) else {
            // Its id is unknown; letters naming roadmaps are not checked.
            self.roadmaps_unreadable = true;
            return None;
        };
        self.roadmap_ids.push(raw.id.get_ref().clone());
        let src = file.source();
        let mut d = Vec::new();
        let id = check(&src, &raw.id, values::id, &mut d);
        let title = check(
            &src,
            &raw.title,
            |t| values::one_line(t, "the roadmap's title"),
            &mut d,
        );
        let venue = raw.venue.as_ref().and_then(|v| venue_of(&src, v, parts, &mut d));
        let zone = match &raw.time_zone {
            Some(text) => check(&src, text, values::zone, &mut d),
            None => venue.as_ref().map(|v| v.zone.clone()),
        };
        let lists = raw
            .lists
            .as_ref()
            .map(|lists| lists_of(&src, lists, parts, &mut d));
        let leads = raw.leads.as_ref().map(|leads| leads_of(&src, leads, &mut d));
        let template = raw
            .template
            .as_ref()
            .and_then(|t| check(&src, t, values::id, &mut d));
        let defaults = RoadmapDefaults {
            id: id.clone().unwrap_or_default(),
            venue,
            zone,
            lists: lists.unwrap_or_default(),
            leads,
            template: template.unwrap_or_else(|| "reminder".to_owned()),
            names_place: raw.venue.is_some() || raw.time_zone.is_some(),
        };
        let mut events = Vec::new();
        for table in &raw.events {
            if let Some(event) = self.event(&src, table, &defaults, parts, &mut d) {
                events.push(event);
            }
        }
        let failed = !d.is_empty();
        for diagnostic in d {
            self.diagnostics.push(diagnostic);
        }
        if failed {
            return None;
        }
        Some(Roadmap {
            id: id?,
            title: title?,
            events,
            notices: raw.notices.unwrap_or(true),
        })
    }

    fn check_roadmap_ids(&mut self, roadmaps: &[Roadmap]) {
        let mut seen = std::collections::HashSet::new();
        for roadmap in roadmaps {
            if !seen.insert(roadmap.id.clone()) {
                self.diagnostics.file(
                    &self.dir.join("roadmaps"),
                    format!("two roadmaps have the id {:?}; give each its own", roadmap.id),
                );
            }
        }
    }

    fn event(
        &mut self,
        src: &SourceFile,
        spanned: &Spanned<raw::EventTable>,
        defaults: &RoadmapDefaults,
        parts: &SettingsParts,
        d: &mut Vec<Diagnostic>,
    ) -> Option<Event> {
        let raw = spanned.get_ref();
        let errors_before = d.len();
        let id = check(src, &raw.id, values::id, d);
        if let Some(id) = &id {
            let here = src.at(raw.id.span(), "");
            if let Some(first) = self.event_ids.get(id) {
                d.push(src.at(
                    raw.id.span(),
                    format!("duplicate event id {id:?}: already used at {}", place_of(first)),
                ));
            } else {
                self.event_ids.insert(id.clone(), here);
            }
        }
        let title = check(src, &raw.title, |t| values::one_line(t, "the event's title"), d);
        let kind = check(src, &raw.kind, values::id, d);
        let schedule = schedule_of(src, spanned, parts, d);
        let venue = match &raw.venue {
            Some(text) => venue_of(src, text, parts, d),
            None => defaults.venue.clone(),
        };
        let zone = match (&raw.time_zone, &raw.venue) {
            (Some(text), _) => check(src, text, values::zone, d),
            (None, Some(_)) => venue.as_ref().map(|v| v.zone.clone()),
            (None, None) => defaults
                .zone
                .clone()
                .or_else(|| venue.as_ref().map(|v| v.zone.clone())),
        };
        if zone.is_none()
            && raw.time_zone.is_none()
            && raw.venue.is_none()
            && !defaults.names_place
            && parts.parsed
        {
            d.push(src.at(
                spanned.span(),
                "the event has no time zone: give it (or its roadmap) a `venue` or a `time_zone`",
            ));
        }
        let room = raw
            .room
            .as_ref()
            .and_then(|r| check(src, r, |t| values::one_line(t, "the room"), d));
        let lists = match &raw.lists {
            Some(lists) => lists_of(src, lists, parts, d),
            None => defaults.lists.clone(),
        };
        let leads = match &raw.leads {
            Some(leads) => Some(leads_of(src, leads, d)),
            None => defaults.leads.clone(),
        };
        let template = match &raw.template {
            Some(text) => check(src, text, values::id, d),
            None => Some(defaults.template.clone()),
        };
        let status = match raw.status.as_ref().map(|s| (s, s.get_ref().as_str())) {
            None | Some((_, "confirmed")) => EventStatus::Confirmed,
            Some((_, "cancelled" | "canceled")) => EventStatus::Cancelled,
            Some((text, other)) => {
                d.push(src.at(
                    text.span(),
                    format!("unknown status {other:?}: use \"confirmed\" or \"cancelled\""),
                ));
                EventStatus::Confirmed
            }
        };
        if d.len() > errors_before {
            return None;
        }
        Some(Event {
            id: id?,
            roadmap: defaults.id.clone(),
            title: title?,
            kind: kind?,
            schedule: schedule?,
            venue,
            room,
            zone: zone?,
            lists,
            leads,
            template: template?,
            status,
            past: raw.past,
        })
    }

    fn letter(&mut self, path: &Path, parts: &SettingsParts, roadmaps: &[Roadmap]) -> Option<Letter> {
        let file = self.read(path)?;
        let raw: raw::LetterFile = self.parse(&file)?;
        let src = file.source();
        let mut d = Vec::new();
        let id = check(&src, &raw.id, values::id, &mut d);
        let template = match &raw.template {
            Some(text) => check(&src, text, values::id, &mut d),
            None => Some("cover-letter".to_owned()),
        };
        let lists = lists_of(&src, &raw.lists, parts, &mut d);
        if raw.lists.is_empty() {
            d.push(src.at(0..0, "the letter goes to no list: set `lists`"));
        }
        let roadmap = raw.roadmap.as_ref().and_then(|text| {
            if roadmaps.iter().any(|r| &r.id == text.get_ref()) {
                Some(text.get_ref().clone())
            } else if self.roadmaps_unreadable || self.roadmap_ids.contains(text.get_ref()) {
                // The roadmap exists but has problems, already reported.
                None
            } else {
                let known: Vec<&str> = roadmaps.iter().map(|r| r.id.as_str()).collect();
                d.push(src.at(
                    text.span(),
                    format!(
                        "unknown roadmap {:?}; the roadmaps are: {}",
                        text.get_ref(),
                        known.join(", ")
                    ),
                ));
                None
            }
        });
        let zone = raw
            .time_zone
            .as_ref()
            .and_then(|text| check(&src, text, values::zone, &mut d));
        let send_at = match (&raw.send_at, &zone) {
            (None, _) => None,
            (Some(text), Some(zone)) => {
                let value = text.get_ref().text();
                match values::datetime(&value) {
                    Ok(civil) => Some(zone.at(civil.date(), civil.time())),
                    Err(message) => {
                        d.push(src.at(text.span(), message));
                        None
                    }
                }
            }
            (Some(text), None) => {
                if raw.time_zone.is_none() {
                    d.push(src.at(text.span(), "send_at needs a time_zone to say whose 10:00 it is"));
                }
                None
            }
        };
        let signatory = raw
            .signatory
            .as_ref()
            .and_then(|t| check(&src, t, |v| values::one_line(v, "the signatory"), &mut d));
        let signatory_title = raw
            .signatory_title
            .as_ref()
            .and_then(|t| check(&src, t, |v| values::one_line(v, "the signatory's title"), &mut d));
        let body = raw.body.get_ref().clone();
        if !body.contains_key(&parts.default_language) {
            d.push(src.at(
                raw.body.span(),
                format!(
                    "the body has no text in the default language {:?}",
                    parts.default_language
                ),
            ));
        }
        for language in body.keys() {
            if let Err(message) = values::language(language) {
                d.push(src.at(raw.body.span(), message));
            }
        }
        let failed = !d.is_empty();
        for diagnostic in d {
            self.diagnostics.push(diagnostic);
        }
        if failed {
            return None;
        }
        Some(Letter {
            id: id?,
            template: template?,
            lists,
            roadmap,
            send_at,
            signatory,
            signatory_title,
            body,
        })
    }
}

/// What the rest of the config needs from `herald.toml`, even when part of
/// it is invalid, so other files can still be checked against it.
#[derive(Default)]
struct SettingsParts {
    /// False when herald.toml could not be parsed: then lists and venues are
    /// unknown, and references to them are not reported.
    parsed: bool,
    settings: Option<(Settings, Delivery)>,
    venues: BTreeMap<String, Venue>,
    /// Every venue id in herald.toml, valid or not, so that a venue with a
    /// problem of its own is not also reported as unknown where it is used.
    declared_venues: std::collections::BTreeSet<String>,
    lists: BTreeMap<String, List>,
    parts_of_day: BTreeMap<String, (Time, Time)>,
    default_language: String,
}

/// What events inherit from their roadmap.
struct RoadmapDefaults {
    id: String,
    venue: Option<Venue>,
    zone: Option<Zone>,
    lists: Vec<String>,
    leads: Option<Vec<Lead>>,
    template: String,
    /// The roadmap names a venue or a time zone (valid or not).
    names_place: bool,
}

/// Runs a validator on a spanned value, recording its message at the span.
fn check<T>(
    src: &SourceFile,
    text: &Spanned<String>,
    validate: impl FnOnce(&str) -> Result<T, String>,
    d: &mut Vec<Diagnostic>,
) -> Option<T> {
    match validate(text.get_ref()) {
        Ok(value) => Some(value),
        Err(message) => {
            d.push(src.at(text.span(), message));
            None
        }
    }
}

fn leads_of(src: &SourceFile, leads: &[Spanned<String>], d: &mut Vec<Diagnostic>) -> Vec<Lead> {
    let mut result: Vec<Lead> = Vec::new();
    for text in leads {
        if let Some(lead) = check(src, text, values::lead, d)
            && !result.contains(&lead)
        {
            result.push(lead);
        }
    }
    result
}

fn lists_of(
    src: &SourceFile,
    lists: &[Spanned<String>],
    parts: &SettingsParts,
    d: &mut Vec<Diagnostic>,
) -> Vec<String> {
    let mut result = Vec::new();
    for text in lists {
        let id = text.get_ref();
        if parts.lists.contains_key(id) {
            result.push(id.clone());
        } else if parts.parsed {
            d.push(src.at(text.span(), unknown_list_message(id, &parts.lists)));
        }
    }
    result
}

pub(crate) fn unknown_list_message(id: &str, lists: &BTreeMap<String, List>) -> String {
    let known: Vec<&str> = lists.keys().map(String::as_str).collect();
    format!(
        "unknown list {id:?}: lists are declared in herald.toml as [lists.ID]; the known lists are: {}",
        if known.is_empty() {
            "(none)".to_owned()
        } else {
            known.join(", ")
        }
    )
}

fn venue_of(
    src: &SourceFile,
    text: &Spanned<String>,
    parts: &SettingsParts,
    d: &mut Vec<Diagnostic>,
) -> Option<Venue> {
    match parts.venues.get(text.get_ref()) {
        Some(venue) => Some(venue.clone()),
        None if !parts.parsed || parts.declared_venues.contains(text.get_ref()) => None,
        None => {
            let known: Vec<&str> = parts.venues.keys().map(String::as_str).collect();
            d.push(src.at(
                text.span(),
                format!(
                    "unknown venue {:?}: venues are declared in herald.toml as [venues.ID]; the known venues are: {}",
                    text.get_ref(),
                    if known.is_empty() { "(none)".to_owned() } else { known.join(", ") }
                ),
            ));
            None
        }
    }
}

/// Turns the date fields of an event into one [`Schedule`], refusing
/// combinations that say two different things.
fn schedule_of(
    src: &SourceFile,
    spanned: &Spanned<raw::EventTable>,
    parts: &SettingsParts,
    d: &mut Vec<Diagnostic>,
) -> Option<Schedule> {
    let raw = spanned.get_ref();
    let ongoing = raw.ongoing.as_ref().is_some_and(|o| *o.get_ref());
    let forms = [raw.date.is_some(), raw.week_of.is_some(), ongoing];
    if forms.iter().filter(|set| **set).count() != 1 {
        d.push(src.at(
            spanned.span(),
            "say when the event is with exactly one of `date`, `week_of` or `ongoing = true`",
        ));
        return None;
    }
    let date_of = |text: &raw::DateText, d: &mut Vec<Diagnostic>| match values::date(&text.get_ref().text()) {
        Ok(date) => Some(date),
        Err(message) => {
            d.push(src.at(text.span(), message));
            None
        }
    };
    let has_hours = raw.start.is_some() || raw.end.is_some() || raw.part_of_day.is_some();
    if ongoing {
        if has_hours || raw.end_date.is_some() {
            d.push(src.at(
                spanned.span(),
                "an ongoing event has no date or hours; remove them or `ongoing`",
            ));
            return None;
        }
        return Some(Schedule::Ongoing);
    }
    if let Some(week_of) = &raw.week_of {
        if has_hours || raw.end_date.is_some() {
            d.push(src.at(week_of.span(), "a `week_of` event has no end_date or hours"));
            return None;
        }
        return Some(Schedule::WeekOf {
            first: date_of(week_of, d)?,
        });
    }
    let date_text = raw.date.as_ref()?;
    let date = date_of(date_text, d)?;
    let hours = hours_of(src, raw, parts, d)?;
    match &raw.end_date {
        None => Some(Schedule::Day { date, hours }),
        Some(end_text) => {
            let last = date_of(end_text, d)?;
            if last <= date {
                d.push(src.at(
                    end_text.span(),
                    format!("end_date {last} is not after date {date}: the end is before the start"),
                ));
                return None;
            }
            Some(Schedule::Days {
                first: date,
                last,
                hours,
            })
        }
    }
}

/// `start`/`end` or `part_of_day`; `Some(None)` when the event has no hours.
fn hours_of(
    src: &SourceFile,
    raw: &raw::EventTable,
    parts: &SettingsParts,
    d: &mut Vec<Diagnostic>,
) -> Option<Option<Hours>> {
    if let Some(part) = &raw.part_of_day {
        if raw.start.is_some() || raw.end.is_some() {
            d.push(src.at(part.span(), "give either part_of_day or start/end, not both"));
            return None;
        }
        let Some((start, end)) = parts.parts_of_day.get(part.get_ref()) else {
            if !parts.parsed {
                return None;
            }
            let known: Vec<&str> = parts.parts_of_day.keys().map(String::as_str).collect();
            d.push(src.at(
                part.span(),
                format!(
                    "unknown part of day {:?}: the known parts are {} ([parts_of_day] in herald.toml)",
                    part.get_ref(),
                    known.join(", ")
                ),
            ));
            return None;
        };
        return Some(Some(Hours {
            start: *start,
            end: Some(*end),
            part_of_day: Some(part.get_ref().clone()),
        }));
    }
    let start = match &raw.start {
        Some(text) => Some(check(src, text, values::time, d)?),
        None => None,
    };
    let end = match &raw.end {
        Some(text) => Some(check(src, text, values::time, d)?),
        None => None,
    };
    match (start, end) {
        (None, None) => Some(None),
        (None, Some(_)) => {
            let span = raw.end.as_ref().map_or(0..0, Spanned::span);
            d.push(src.at(span, "`end` needs a `start`"));
            None
        }
        (Some(start), Some(end)) if end <= start => {
            let span = raw.end.as_ref().map_or(0..0, Spanned::span);
            d.push(src.at(
                span,
                format!("end {end} is not after start {start}: the end is before the start"),
            ));
            None
        }
        (Some(start), end) => Some(Some(Hours {
            start,
            end,
            part_of_day: None,
        })),
    }
}

fn sender(src: &SourceFile, raw: &raw::SenderTable, d: &mut Vec<Diagnostic>) -> Option<Sender> {
    let from = check(src, &raw.from, values::mailbox, d)?;
    let reply_to = match &raw.reply_to {
        Some(text) => Some(check(src, text, values::mailbox, d)?),
        None => None,
    };
    let organization = match &raw.organization {
        Some(text) => check(src, text, |t| values::one_line(t, "the organization"), d)?,
        None => String::new(),
    };
    let domain = match &raw.domain {
        Some(text) => check(src, text, |t| values::one_line(t, "the domain"), d)?,
        None => from.email.domain().to_owned(),
    };
    let unsubscribe = match &raw.unsubscribe {
        Some(text) => {
            let value = check(src, text, |t| values::one_line(t, "unsubscribe"), d)?;
            if !(value.starts_with("mailto:") || value.starts_with("https:")) {
                d.push(src.at(text.span(), "unsubscribe must be a mailto: or https: address"));
                return None;
            }
            Some(value)
        }
        None => None,
    };
    Some(Sender {
        from,
        reply_to,
        organization,
        domain,
        unsubscribe,
    })
}

fn env_diagnostic(variable: &str, message: String) -> Diagnostic {
    Diagnostic {
        file: PathBuf::from(format!("${variable}")),
        place: crate::diagnostics::Place::File,
        message,
        snippet: None,
    }
}

fn place_of(diagnostic: &Diagnostic) -> String {
    match &diagnostic.place {
        crate::diagnostics::Place::At { line, column } => {
            format!("{}:{line}:{column}", diagnostic.file.display())
        }
        crate::diagnostics::Place::Line(line) => format!("{}:{line}", diagnostic.file.display()),
        crate::diagnostics::Place::File => diagnostic.file.display().to_string(),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Removes `.` and `dir/..` from a path without touching the file system,
/// so that messages name `templates/en/x.hbs`, not `config/../templates/en/x.hbs`.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut result = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if matches!(result.components().next_back(), Some(Component::Normal(_))) => {
                result.pop();
            }
            other => result.push(other),
        }
    }
    result
}
