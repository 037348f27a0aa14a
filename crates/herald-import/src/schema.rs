//! The roadmap file schema (`roadmaps/*.toml`), written once: herald's
//! configuration loader reads roadmap files into these structs, and the
//! importer writes its roadmaps from them.
//!
//! The structs are shaped exactly like the file. Reading, they keep the span
//! of every value that is checked after parsing (so a bad date or time zone
//! is reported at its line and column) and refuse unknown keys (a misspelt
//! key silently ignored is a reminder never sent). Nothing here is validated
//! beyond its TOML type: herald's `config::load` does that.
//!
//! Writing, a [`Spanned`] value is written as the value itself, absent keys
//! are left out (the TOML serializer leaves out a field that is `None`; the
//! importer's snapshot test holds it to that), and the keys come in the
//! order of the fields below. A value
//! made in code rather than read from a file has no place in a file: build
//! it with [`unspanned`] (an empty span at 0).

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// A string with its place in the file.
pub type Text = Spanned<String>;

/// A value made in code, with an empty span at 0 (for writing a file, where
/// spans are not used).
pub fn unspanned<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}

/// A roadmap file: the roadmap's own keys, then its `[[events]]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoadmapFile {
    pub id: Text,
    pub title: Text,
    pub venue: Option<Text>,
    pub time_zone: Option<Text>,
    pub lists: Option<Vec<Text>>,
    pub leads: Option<Vec<Text>>,
    pub template: Option<Text>,
    pub notices: Option<bool>,
    /// Files under the configuration directory that the events' reminders carry.
    pub attachments: Option<Spanned<Vec<Text>>>,
    /// Which reminders carry them: "first" or "all".
    pub attach_to: Option<Text>,
    #[serde(default)]
    pub events: Vec<Spanned<EventTable>>,
}

/// One `[[events]]` table of a roadmap file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EventTable {
    pub id: Text,
    pub title: Text,
    pub kind: Text,
    pub date: Option<DateText>,
    pub end_date: Option<DateText>,
    pub start: Option<Text>,
    pub end: Option<Text>,
    pub part_of_day: Option<Text>,
    pub week_of: Option<DateText>,
    pub ongoing: Option<Spanned<bool>>,
    pub venue: Option<Text>,
    pub room: Option<Text>,
    pub time_zone: Option<Text>,
    pub lists: Option<Vec<Text>>,
    pub leads: Option<Vec<Text>>,
    pub template: Option<Text>,
    pub status: Option<Text>,
    /// Files under the configuration directory that its reminders carry.
    pub attachments: Option<Spanned<Vec<Text>>>,
    /// Which reminders carry them: "first" or "all".
    pub attach_to: Option<Text>,
    /// Written only when true.
    #[serde(default, skip_serializing_if = "is_false")]
    pub past: bool,
}

/// A date written as a string ("2017-10-02") or as a TOML date (2017-10-02).
pub type DateText = Spanned<DateValue>;

/// The two ways a file can write a date; written back the way it was read.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum DateValue {
    Text(String),
    Toml(toml::value::Datetime),
}

impl DateValue {
    /// The date as text, however it was written.
    pub fn text(&self) -> String {
        match self {
            DateValue::Text(text) => text.clone(),
            DateValue::Toml(datetime) => datetime.to_string(),
        }
    }
}

// `skip_serializing_if` calls a function with a reference to the field.
fn is_false(value: &bool) -> bool {
    !*value
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "id = \"r\"\ntitle = \"R\"\nvenue = \"new-york\"\nnotices = false\n\n\
                        [[events]]\nid = \"a\"\ntitle = \"A\"\nkind = \"meeting\"\ndate = 2017-10-02\n\
                        start = \"15:00\"\nstatus = \"cancelled\"\n\n\
                        [[events]]\nid = \"b\"\ntitle = \"B\"\nkind = \"deadline\"\nongoing = true\n\
                        past = true\n";

    #[test]
    fn reads_with_spans_and_writes_back_the_same_keys() {
        let file: RoadmapFile = match toml::from_str(FILE) {
            Ok(file) => file,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(&FILE[file.id.span()], "\"r\"");
        let date = file.events[0].get_ref().date.as_ref().map(|d| d.get_ref().text());
        assert_eq!(date.as_deref(), Some("2017-10-02"));
        // A TOML date is written back as a TOML date, a string as a string,
        // and absent keys not at all.
        let written = toml::to_string(&file).unwrap_or_default();
        assert_eq!(written, FILE);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = toml::from_str::<RoadmapFile>("id = \"r\"\ntitle = \"R\"\nvenu = \"x\"\n")
            .err()
            .map(|error| error.message().to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|message| message.starts_with("unknown field `venu`")),
            "{error:?}"
        );
    }
}
