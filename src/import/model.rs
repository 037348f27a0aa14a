//! The imported roadmap as it is written out: the structs that serialise to
//! the roadmap TOML schema that `herald check` loads. Optional keys are left
//! out when absent, dates are ISO strings and times are "HH:MM".

use jiff::civil::{Date, Time};
use serde::{Serialize, Serializer};

/// A whole roadmap, ready for `toml::to_string`.
///
/// The `lists` key is written only when the operator names lists on the
/// command line: which lists hear about a roadmap is the operator's
/// decision, not something a letter says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportedRoadmap {
    /// Lowercase ASCII letters, digits and '-'.
    pub id: String,
    pub title: String,
    /// The venue id events take unless they name another.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub venue: Option<String>,
    /// Only written when no known default venue carries the time zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lists: Vec<String>,
    pub events: Vec<ImportedEvent>,
}

/// One row of a letter's table.
///
/// Exactly one of `date`, `week_of` and `ongoing` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportedEvent {
    /// Unique within the roadmap; a slug of the title.
    pub id: String,
    /// The row's text, whitespace normalised.
    pub title: String,
    pub kind: EventKind,
    /// The day, or the first day of a multi-day event.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "iso_date")]
    pub date: Option<Date>,
    /// The last day (inclusive) of a multi-day event.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "iso_date")]
    pub end_date: Option<Date>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "hh_mm")]
    pub start: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "hh_mm")]
    pub end: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_of_day: Option<PartOfDay>,
    /// The week beginning this day, when the letter gives only a week.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "iso_date")]
    pub week_of: Option<Date>,
    /// Unscheduled ("Ongoing", "TBD").
    #[serde(skip_serializing_if = "is_false")]
    pub ongoing: bool,
    /// Only when the row names a known venue other than the roadmap's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub venue: Option<String>,
    /// The event ended before the letter's date; kept so the record is whole.
    #[serde(skip_serializing_if = "is_false")]
    pub past: bool,
    /// The 1-based line of the letter the event came from (not written out;
    /// for callers that want to point back at the letter).
    #[serde(skip)]
    pub line: usize,
}

/// What sort of thing an event is; decides the reminder policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Meeting,
    Deadline,
    Circulation,
    Other,
}

/// The part of a day a letter names instead of times ("2 October (afternoon)").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PartOfDay {
    Morning,
    Afternoon,
    Evening,
}

// `skip_serializing_if` calls a function with a reference to the field.
fn is_false(value: &bool) -> bool {
    !*value
}

// `skip_serializing_if` means these only ever see `Some`; `None` is written
// as nothing at all rather than panicking, to be safe.
fn iso_date<S: Serializer>(date: &Option<Date>, serializer: S) -> Result<S::Ok, S::Error> {
    match date {
        Some(date) => serializer.serialize_str(&date.to_string()),
        None => serializer.serialize_none(),
    }
}

fn hh_mm<S: Serializer>(time: &Option<Time>, serializer: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => serializer.serialize_str(&format_hh_mm(*time)),
        None => serializer.serialize_none(),
    }
}

/// "15:00": the form the roadmap schema uses for times of day.
pub(crate) fn format_hh_mm(time: Time) -> String {
    format!("{:02}:{:02}", time.hour(), time.minute())
}
