//! The imported roadmap, typed: what the importer read from the letter
//! (real dates and times, a kind, a part of the day, and the letter's line of
//! each event), and how it becomes the roadmap file schema
//! ([`crate::schema::RoadmapFile`]) that is written out and that `herald
//! check` loads. Optional keys are left out when absent, dates are ISO
//! strings and times are "HH:MM".

use jiff::civil::{Date, Time};

use crate::schema::{DateValue, EventTable, RoadmapFile, unspanned};

/// A whole roadmap, as read from the letter; [`ImportedRoadmap::to_file`]
/// gives it in the file schema.
///
/// The `lists` key is written only when the operator names lists on the
/// command line: which lists hear about a roadmap is the operator's
/// decision, not something a letter says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedRoadmap {
    /// Lowercase ASCII letters, digits and '-'.
    pub id: String,
    pub title: String,
    /// The venue id events take unless they name another.
    pub venue: Option<String>,
    /// Only written when no known default venue carries the time zone.
    pub time_zone: Option<String>,
    /// Written only when not empty.
    pub lists: Vec<String>,
    pub events: Vec<ImportedEvent>,
}

/// One row of a letter's table.
///
/// Exactly one of `date`, `week_of` and `ongoing` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedEvent {
    /// Unique within the roadmap; a slug of the title.
    pub id: String,
    /// The row's text, whitespace normalised.
    pub title: String,
    pub kind: EventKind,
    /// The day, or the first day of a multi-day event.
    pub date: Option<Date>,
    /// The last day (inclusive) of a multi-day event.
    pub end_date: Option<Date>,
    pub start: Option<Time>,
    pub end: Option<Time>,
    pub part_of_day: Option<PartOfDay>,
    /// The week beginning this day, when the letter gives only a week.
    pub week_of: Option<Date>,
    /// Unscheduled ("Ongoing", "TBD"); written only when true.
    pub ongoing: bool,
    /// Only when the row names a known venue other than the roadmap's.
    pub venue: Option<String>,
    /// The event ended before the letter's date; kept so the record is
    /// whole. Written only when true.
    pub past: bool,
    /// The 1-based line of the letter the event came from (not written out;
    /// for callers that want to point back at the letter).
    pub line: usize,
}

/// What sort of thing an event is; decides the reminder policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Meeting,
    Deadline,
    Circulation,
    Other,
}

impl EventKind {
    /// The kind as a roadmap file writes it ("meeting").
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Meeting => "meeting",
            EventKind::Deadline => "deadline",
            EventKind::Circulation => "circulation",
            EventKind::Other => "other",
        }
    }
}

/// The part of a day a letter names instead of times ("2 October (afternoon)").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartOfDay {
    Morning,
    Afternoon,
    Evening,
}

impl PartOfDay {
    /// The part of the day as a roadmap file writes it ("afternoon"), which
    /// is also its name in `[parts_of_day]` of herald.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            PartOfDay::Morning => "morning",
            PartOfDay::Afternoon => "afternoon",
            PartOfDay::Evening => "evening",
        }
    }
}

impl ImportedRoadmap {
    /// The roadmap in the file schema, ready for `toml::to_string`. Values
    /// carry no spans: they were not read from a file.
    pub fn to_file(&self) -> RoadmapFile {
        RoadmapFile {
            id: unspanned(self.id.clone()),
            title: unspanned(self.title.clone()),
            venue: self.venue.clone().map(unspanned),
            time_zone: self.time_zone.clone().map(unspanned),
            lists: (!self.lists.is_empty()).then(|| self.lists.iter().cloned().map(unspanned).collect()),
            leads: None,
            template: None,
            notices: None,
            note: None,
            links: None,
            events: self
                .events
                .iter()
                .map(|event| unspanned(event.to_table()))
                .collect(),
        }
    }
}

impl ImportedEvent {
    /// The event as an `[[events]]` table of the file schema.
    pub fn to_table(&self) -> EventTable {
        let date = |date: Option<Date>| date.map(|date| unspanned(DateValue::Text(date.to_string())));
        let time = |time: Option<Time>| time.map(|time| unspanned(format_hh_mm(time)));
        EventTable {
            id: unspanned(self.id.clone()),
            title: unspanned(self.title.clone()),
            kind: unspanned(self.kind.as_str().to_string()),
            date: date(self.date),
            end_date: date(self.end_date),
            start: time(self.start),
            end: time(self.end),
            part_of_day: self.part_of_day.map(|part| unspanned(part.as_str().to_string())),
            week_of: date(self.week_of),
            ongoing: self.ongoing.then(|| unspanned(true)),
            venue: self.venue.clone().map(unspanned),
            room: None,
            note: None,
            links: None,
            time_zone: None,
            lists: None,
            leads: None,
            template: None,
            status: None,
            past: self.past,
        }
    }
}

/// "15:00": the form the roadmap schema uses for times of day.
pub(crate) fn format_hh_mm(time: Time) -> String {
    format!("{:02}:{:02}", time.hour(), time.minute())
}
