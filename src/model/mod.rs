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
pub use lead::{Lead, LeadError};
pub use letter::Letter;
pub use people::{FocalPoint, List};

/// Everything herald knows, validated and cross-checked.
///
/// Its fields are private and it is made only by `config::load` (through
/// [`Model::new`], visible to this crate alone), so a `Model` outside the
/// crate has always been validated; code here reads it through the
/// accessors below and never changes it.
#[derive(Debug, Clone)]
pub struct Model {
    settings: Settings,
    venues: BTreeMap<String, Venue>,
    lists: BTreeMap<String, List>,
    roadmaps: Vec<Roadmap>,
    focal_points: Vec<FocalPoint>,
    letters: Vec<Letter>,
    templates: TemplateSources,
    /// Where each focal point is in `focal_points`, by normalised
    /// address, built on the first lookup.
    focal_index: FocalIndex,
}

/// A lazily built index of focal points by address; see [`Model::focal_point`].
#[derive(Debug, Clone, Default)]
struct FocalIndex(std::sync::OnceLock<std::collections::HashMap<String, usize>>);

/// The daemon-wide settings of `herald.toml`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub default_language: String,
    pub sender: Sender,
    pub reminders: ReminderPolicy,
    /// Named parts of a day ("morning" -> 10:00-13:00).
    pub parts_of_day: BTreeMap<String, (Time, Time)>,
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
    /// Assembles a model from validated parts; `config::load` is its only
    /// caller (a tidy test checks it).
    #[allow(
        clippy::too_many_arguments,
        reason = "one argument per part of the model, each named"
    )]
    pub(crate) fn new(
        settings: Settings,
        venues: BTreeMap<String, Venue>,
        lists: BTreeMap<String, List>,
        roadmaps: Vec<Roadmap>,
        focal_points: Vec<FocalPoint>,
        letters: Vec<Letter>,
        templates: TemplateSources,
    ) -> Model {
        Model {
            settings,
            venues,
            lists,
            roadmaps,
            focal_points,
            letters,
            templates,
            focal_index: FocalIndex::default(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The venues of herald.toml, by id.
    pub fn venues(&self) -> &BTreeMap<String, Venue> {
        &self.venues
    }

    /// The distribution lists, by id.
    pub fn lists(&self) -> &BTreeMap<String, List> {
        &self.lists
    }

    /// The roadmaps, in the order of their files.
    pub fn roadmaps(&self) -> &[Roadmap] {
        &self.roadmaps
    }

    /// Every event of every roadmap, in roadmap then file order.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.roadmaps.iter().flat_map(|roadmap| &roadmap.events)
    }

    /// The roadmaps, to change: only the crate's unit tests stage roadmap
    /// edits this way (the notices' tests); it does not exist otherwise.
    #[cfg(test)]
    pub(crate) fn roadmaps_mut(&mut self) -> &mut Vec<Roadmap> {
        &mut self.roadmaps
    }

    /// The focal points, in the order of the list files.
    pub fn focal_points(&self) -> &[FocalPoint] {
        &self.focal_points
    }

    pub fn letters(&self) -> &[Letter] {
        &self.letters
    }

    /// The template files and phrases, read at load time.
    pub fn templates(&self) -> &TemplateSources {
        &self.templates
    }

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
