//! The validated domain: one consistent snapshot of roadmaps, focal points,
//! lists, letters and policy.
//!
//! A [`Model`] is built only by `config::load`, which either produces a whole
//! model or reports every problem. Nothing here reads files, the network or
//! the clock, and nothing here knows about TOML or CSV.

mod event;
mod lead;
mod letter;
mod people;

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::civil::Time;
use lettre::message::Mailbox;

pub use event::{Event, EventStatus, Hours, Schedule, Venue, Zone, city_of_zone};
pub use lead::Lead;
pub use letter::Letter;
pub use people::{FocalPoint, List};

/// Everything herald knows, validated and cross-checked.
#[derive(Debug, Clone)]
pub struct Model {
    pub settings: Settings,
    pub venues: BTreeMap<String, Venue>,
    pub lists: BTreeMap<String, List>,
    pub roadmaps: Vec<Roadmap>,
    pub focal_points: Vec<FocalPoint>,
    pub letters: Vec<Letter>,
    pub templates: TemplateSources,
    /// Where each focal point is in `focal_points`, by lower-cased address,
    /// built on the first lookup. Every hit is checked against the vector,
    /// and a miss falls back to a scan, so a vector changed after the
    /// index was built still gives right answers.
    pub focal_index: FocalIndex,
}

/// A lazily built index of focal points by address; see [`Model::focal_point`].
#[derive(Debug, Clone, Default)]
pub struct FocalIndex(std::sync::OnceLock<std::collections::HashMap<String, usize>>);

/// The daemon-wide settings of `herald.toml`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub default_language: String,
    pub sender: Sender,
    pub reminders: ReminderPolicy,
    /// Named parts of a day ("morning" -> 10:00-13:00).
    pub parts_of_day: BTreeMap<String, (Time, Time)>,
    pub delivery: Delivery,
}

/// Who mail comes from, and the identifiers derived from it.
#[derive(Debug, Clone)]
pub struct Sender {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub organization: String,
    /// The right-hand side of Message-IDs and List-Ids.
    pub domain: String,
    /// A `mailto:` or `https:` address for List-Unsubscribe.
    pub unsubscribe: Option<String>,
}

/// When reminders go out, before the default resolution by event, list or
/// focal point (see [`crate::plan`]).
#[derive(Debug, Clone)]
pub struct ReminderPolicy {
    pub leads: Vec<Lead>,
    pub kinds: BTreeMap<String, Vec<Lead>>,
    /// The time of day that anchors events without one (deadlines, weeks).
    pub all_day_at: Time,
}

/// How and where mail is delivered; used by the daemon, not by the planner.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub transport: Transport,
    /// Where the outbox database lives.
    pub state_dir: PathBuf,
    /// A send that is late by less than this after downtime still goes out.
    pub late_window: jiff::SignedDuration,
    /// Every mail goes to this address instead, for rehearsals.
    pub redirect_to: Option<lettre::Address>,
}

/// The way messages leave herald.
#[derive(Debug, Clone)]
pub enum Transport {
    Smtp(SmtpSettings),
    /// One file per message in a maildir (`new/`), for rehearsals and
    /// machines with no relay. A relative path is inside the state directory.
    Maildir(PathBuf),
}

/// Connection settings for an SMTP relay. The password is never stored here
/// in clear in the config: it comes from a file or a systemd credential.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<String>,
    pub allow_plaintext_auth: bool,
    /// Root certificates (PEM) to trust besides the system's, for a relay
    /// whose certificate comes from a private CA.
    pub ca_file: Option<PathBuf>,
    pub timeout: std::time::Duration,
    pub max_connections: usize,
    /// At most this many messages per minute; `None` is unlimited.
    pub per_minute: Option<u32>,
}

impl std::fmt::Debug for SmtpSettings {
    // Written by hand so that the password never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("allow_plaintext_auth", &self.allow_plaintext_auth)
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .field("max_connections", &self.max_connections)
            .field("per_minute", &self.per_minute)
            .finish()
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (usually port 465).
    Tls,
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    StartTls,
    /// No encryption at all; only sensible on loopback.
    None,
}

/// A roadmap: the events of one process, as circulated in one letter.
#[derive(Debug, Clone)]
pub struct Roadmap {
    pub id: String,
    pub title: String,
    pub events: Vec<Event>,
    /// Whether changes to its events are announced (update and
    /// cancellation notices with their invitations). Default: true.
    pub notices: bool,
}

/// The template files, read at load time so rendering never touches the disk.
#[derive(Debug, Clone, Default)]
pub struct TemplateSources {
    /// Every template file, keyed by (language, name); names look like
    /// `reminder.subject`, `reminder.txt`, `reminder.html` or
    /// `partials/letterhead.html`.
    pub files: BTreeMap<(String, String), TemplateFile>,
    /// Per-language phrases (`phrases.toml`): "Week of {date}", "morning", …
    pub phrases: BTreeMap<String, BTreeMap<String, String>>,
}

/// One template file and where it came from, for error messages.
#[derive(Debug, Clone)]
pub struct TemplateFile {
    pub path: PathBuf,
    pub source: String,
}

impl Model {
    /// Finds an event by id, with its roadmap.
    pub fn event(&self, id: &str) -> Option<(&Roadmap, &Event)> {
        self.roadmaps
            .iter()
            .flat_map(|roadmap| roadmap.events.iter().map(move |event| (roadmap, event)))
            .find(|(_, event)| event.id == id)
    }

    /// Finds a letter by id.
    pub fn letter(&self, id: &str) -> Option<&Letter> {
        self.letters.iter().find(|letter| letter.id == id)
    }

    /// Finds a roadmap by id.
    pub fn roadmap(&self, id: &str) -> Option<&Roadmap> {
        self.roadmaps.iter().find(|roadmap| roadmap.id == id)
    }

    /// Finds a focal point by address, ignoring the case of the domain.
    ///
    /// A daemon sending to 10,000 focal points looks each one up several
    /// times per send, so this goes through an index rather than a scan of
    /// every address (which made sending quadratic in the focal points).
    pub fn focal_point(&self, email: &str) -> Option<&FocalPoint> {
        let wanted = email.trim();
        let matches = |fp: &FocalPoint| fp.email.to_string().eq_ignore_ascii_case(wanted);
        let index = self.focal_index.0.get_or_init(|| {
            let mut index = std::collections::HashMap::with_capacity(self.focal_points.len());
            for (i, fp) in self.focal_points.iter().enumerate() {
                // The first of two equal addresses wins, as with a scan.
                index
                    .entry(fp.email.to_string().to_ascii_lowercase())
                    .or_insert(i);
            }
            index
        });
        if let Some(fp) = index
            .get(&wanted.to_ascii_lowercase())
            .and_then(|&i| self.focal_points.get(i))
            .filter(|fp| matches(fp))
        {
            return Some(fp);
        }
        self.focal_points.iter().find(|fp| matches(fp))
    }

    /// The focal points on any of `lists`, each once, in config order, with
    /// the first of those lists they are on.
    pub fn members_of<'a>(
        &'a self,
        lists: &'a [String],
    ) -> impl Iterator<Item = (&'a FocalPoint, &'a str)> + 'a {
        self.focal_points.iter().filter_map(move |fp| {
            lists
                .iter()
                .find(|list| fp.lists.contains(list))
                .map(|list| (fp, list.as_str()))
        })
    }
}
