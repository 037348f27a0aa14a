//! The validated domain: one consistent snapshot of roadmaps, focal points,
//! lists, letters and policy.
//!
//! A [`Model`] is built only by `config::load`, which either produces a whole
//! model or reports every problem. Nothing here reads files, the network or
//! the clock, and nothing here knows about TOML or CSV.

mod attachment;
mod event;
mod lead;
mod letter;
mod notes;
mod people;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use jiff::civil::Time;
use lettre::message::Mailbox;

use crate::key::AddressKey;
use crate::tokens::LinkKeys;

pub use attachment::{AttachTo, Attachment};
pub use event::{Event, EventStatus, Hours, Schedule, Venue, Zone, city_of_zone};
pub use lead::{Lead, LeadError};
pub use letter::Letter;
pub use notes::{Link, Localized, Notes};
pub use people::{FocalPoint, List, Origin};

/// Everything herald knows, validated and cross-checked.
///
/// Its fields are private and it is made only by `config::load` (through
/// `Model::new`, visible to this crate alone), so a `Model` outside the
/// crate has always been validated; code here reads it through the
/// accessors below and never changes it.
#[derive(Debug, Clone)]
pub struct Model {
    parts: ModelParts,
    /// Where each event is: its roadmap's place in `roadmaps`, then its
    /// own in the roadmap's events. Sending looks an event up for every
    /// message, and a roadmap can hold hundreds of them.
    event_index: HashMap<String, (usize, usize)>,
    /// Where each focal point is in `focal_points`, by normalised
    /// address, built on the first lookup.
    focal_index: FocalIndex,
}

/// What a model is made of, each part validated by `config`.
#[derive(Debug, Clone)]
pub(crate) struct ModelParts {
    pub settings: Settings,
    pub venues: BTreeMap<String, Venue>,
    pub lists: BTreeMap<String, List>,
    pub roadmaps: Vec<Roadmap>,
    pub focal_points: Vec<FocalPoint>,
    pub letters: Vec<Letter>,
    pub templates: TemplateSources,
}

/// A lazily built index of focal points by address; see [`Model::focal_point`].
#[derive(Debug, Clone, Default)]
struct FocalIndex(std::sync::OnceLock<std::collections::HashMap<AddressKey, usize>>);

/// The daemon-wide settings of `herald.toml`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub default_language: String,
    pub sender: Sender,
    pub reminders: ReminderPolicy,
    /// Named parts of a day ("morning" -> 10:00-13:00).
    pub parts_of_day: BTreeMap<String, (Time, Time)>,
    /// The operator's daily digest, when `[digest]` is configured.
    pub digest: Option<DigestSettings>,
}

/// When and to whom the operator's daily digest goes (`[digest]`; see
/// [`crate::digest`]).
#[derive(Debug, Clone)]
pub struct DigestSettings {
    /// Each address gets its own copy.
    pub to: Vec<lettre::Address>,
    /// The time of day it goes, in `zone`.
    pub at: Time,
    /// Default: UTC.
    pub zone: Zone,
    /// Default: the default language.
    pub language: String,
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
    /// The envelope sender's address (its local part has no `+`): each
    /// message leaves from `LOCAL+TOKEN@DOMAIN` (VERP, see
    /// [`crate::tokens`]), so that its bounce names its send. `None`: the
    /// envelope sender is the From address.
    pub bounce_address: Option<lettre::Address>,
    /// The link secrets, read by `config` from their file: with them, a
    /// `mailto:` unsubscribe is personal (a signed token in its subject).
    pub links: Option<std::sync::Arc<LinkKeys>>,
    /// Where readers reach herald's pages (`[http] public_url`, no trailing
    /// slash): with the link secrets, every message carries personal links
    /// to them (see [`Sender::page_link`]).
    pub public_url: Option<url::Url>,
}

impl Sender {
    /// The personal link to one of herald's pages (`unsubscribe`,
    /// `preferences`) for `token`, when herald serves pages.
    pub fn page_link(&self, page: &str, token: &str) -> Option<String> {
        let base = self.public_url.as_ref()?;
        Some(format!("{}/{page}/{token}", base.as_str().trim_end_matches('/')))
    }
}

/// When reminders go out, before the default resolution by event, list or
/// focal point (see [`crate::plan`]).
#[derive(Debug, Clone)]
pub struct ReminderPolicy {
    pub leads: Vec<Lead>,
    pub kinds: BTreeMap<String, Vec<Lead>>,
    /// The time of day that anchors events without one (deadlines, weeks).
    pub all_day_at: Time,
    /// How long update and cancellation notices wait after the change that
    /// caused them, so that a change undone meanwhile (a file saved half
    /// written, then whole) sends nothing. Default: 10 minutes.
    pub notice_delay: jiff::SignedDuration,
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
    /// Shown with each of its events, after the event's own (see [`Notes`]).
    pub note: Option<Localized>,
    pub links: Vec<Link>,
}

/// The template files, read at load time so rendering never touches the disk.
#[derive(Debug, Clone, Default)]
pub struct TemplateSources {
    /// Every template file, keyed by (language, name); names look like
    /// `reminder.subject`, `reminder.txt`, `reminder.html` or
    /// `partials/letterhead.html`.
    pub files: BTreeMap<(String, String), TemplateFile>,
    /// Per-language phrases (`phrases.toml`): "Week of {date}", "morning", …
    pub phrases: BTreeMap<String, BTreeMap<String, Phrase>>,
}

/// One phrase of a language's `phrases.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phrase {
    /// The same text whatever the count: `in_days = "in {n} days"`.
    Text(String),
    /// One text per CLDR plural category ("zero", "one", "two", "few",
    /// "many", "other") of the language, for a phrase with a count: Russian
    /// says "через 2 дня" but "через 5 дней". `config` checks the
    /// categories' names and that "other", the form of any count the others
    /// leave out, is there.
    Plural(BTreeMap<String, String>),
}

/// The phrases written with a count (`{n}`), the only ones that may give
/// plural forms.
pub const COUNTED_PHRASES: [&str; 4] = ["in_minutes", "in_hours", "in_days", "in_weeks"];

/// CLDR's plural categories, the names of a phrase's plural forms.
pub const PLURAL_CATEGORIES: [&str; 6] = ["zero", "one", "two", "few", "many", "other"];

/// One template file and where it came from, for error messages.
#[derive(Debug, Clone)]
pub struct TemplateFile {
    pub path: PathBuf,
    pub source: String,
}

impl Model {
    /// Assembles a model from validated parts, and indexes its events;
    /// `config::load` is its only caller (a tidy test checks it).
    pub(crate) fn new(parts: ModelParts) -> Model {
        let mut event_index = HashMap::new();
        for (r, roadmap) in parts.roadmaps.iter().enumerate() {
            for (e, event) in roadmap.events.iter().enumerate() {
                // `config` refuses two events with one id; were there two,
                // the first would win, as a scan would find it.
                event_index.entry(event.id.clone()).or_insert((r, e));
            }
        }
        Model {
            parts,
            event_index,
            focal_index: FocalIndex::default(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.parts.settings
    }

    /// The venues of herald.toml, by id.
    pub fn venues(&self) -> &BTreeMap<String, Venue> {
        &self.parts.venues
    }

    /// The distribution lists, by id.
    pub fn lists(&self) -> &BTreeMap<String, List> {
        &self.parts.lists
    }

    /// The roadmaps, in the order of their files.
    pub fn roadmaps(&self) -> &[Roadmap] {
        &self.parts.roadmaps
    }

    /// Every event of every roadmap, in roadmap then file order.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.parts.roadmaps.iter().flat_map(|roadmap| &roadmap.events)
    }

    /// The model with its roadmaps changed by `change`, made again (its
    /// indexes included): only the crate's unit tests stage roadmap edits
    /// this way (the notices' tests); it does not exist otherwise.
    #[cfg(test)]
    pub(crate) fn edit_roadmaps(self, change: impl FnOnce(&mut Vec<Roadmap>)) -> Model {
        let mut parts = self.parts;
        change(&mut parts.roadmaps);
        Model::new(parts)
    }

    /// The focal points, in the order of the list files.
    pub fn focal_points(&self) -> &[FocalPoint] {
        &self.parts.focal_points
    }

    pub fn letters(&self) -> &[Letter] {
        &self.parts.letters
    }

    /// The template files and phrases, read at load time.
    pub fn templates(&self) -> &TemplateSources {
        &self.parts.templates
    }

    /// Finds an event by id, with its roadmap.
    pub fn event(&self, id: &str) -> Option<(&Roadmap, &Event)> {
        let &(r, e) = self.event_index.get(id)?;
        let roadmap = self.parts.roadmaps.get(r)?;
        Some((roadmap, roadmap.events.get(e)?))
    }

    /// Finds a letter by id.
    pub fn letter(&self, id: &str) -> Option<&Letter> {
        self.parts.letters.iter().find(|letter| letter.id == id)
    }

    /// Finds a roadmap by id.
    pub fn roadmap(&self, id: &str) -> Option<&Roadmap> {
        self.parts.roadmaps.iter().find(|roadmap| roadmap.id == id)
    }

    /// Finds a focal point by address, under the one rule for telling
    /// addresses apart ([`AddressKey`]).
    ///
    /// A daemon sending to 10,000 focal points looks focal points up for
    /// every send, so this goes through an index, built on the first call.
    pub fn focal_point(&self, email: &str) -> Option<&FocalPoint> {
        self.focal_point_with_index(email).map(|(_, fp)| fp)
    }

    /// Gives the focal point with `address` this language and zone (a
    /// reader's choice over the configuration, `scheduler::overlay`);
    /// false if there is none. Its address, which the index is built on,
    /// does not change, so the index stays right.
    pub(crate) fn set_reader_choice(
        &mut self,
        address: &AddressKey,
        language: String,
        zone: Option<Zone>,
    ) -> bool {
        let Some((index, _)) = self.focal_point_with_index(address.as_str()) else {
            return false;
        };
        let focal_point = &mut self.parts.focal_points[index];
        focal_point.language = language;
        focal_point.zone = zone;
        true
    }

    /// [`Model::focal_point`], with where it is in [`Model::focal_points`].
    pub fn focal_point_with_index(&self, email: &str) -> Option<(usize, &FocalPoint)> {
        let index = self.focal_index.0.get_or_init(|| {
            let mut index = std::collections::HashMap::with_capacity(self.parts.focal_points.len());
            for (i, fp) in self.parts.focal_points.iter().enumerate() {
                // `config` refuses two focal points with one address; were
                // there two, the first would win, as a scan would find it.
                index.entry(AddressKey::of(fp.email.as_ref())).or_insert(i);
            }
            index
        });
        let &i = index.get(&AddressKey::of(email))?;
        Some((i, self.parts.focal_points.get(i)?))
    }
}
