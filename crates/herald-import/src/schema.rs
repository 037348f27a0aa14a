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

use std::collections::BTreeMap;

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
    /// Shown with every event of the roadmap, after the event's own.
    pub note: Option<Spanned<LocalText>>,
    /// Shown with every event of the roadmap, after the event's own.
    pub links: Option<Vec<Spanned<LinkTable>>>,
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
    /// A word to readers ("Further details will be announced in the UN
    /// Journal"), shown in its reminders and notices.
    pub note: Option<Spanned<LocalText>>,
    /// Documents, webcast, registration: shown in its reminders and notices.
    pub links: Option<Vec<Spanned<LinkTable>>>,
    pub time_zone: Option<Text>,
    pub lists: Option<Vec<Text>>,
    pub leads: Option<Vec<Text>>,
    pub template: Option<Text>,
    pub status: Option<Text>,
    /// Written only when true.
    #[serde(default, skip_serializing_if = "is_false")]
    pub past: bool,
}

/// One of `links`: `{ label = "Webcast", url = "https://…" }`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkTable {
    pub label: Spanned<LocalText>,
    pub url: Text,
}

/// Text for readers: one string (in the default language), or a table of
/// strings by language (`{ en = "…", fr = "…" }`), each with its span.
///
/// Read by a visitor of its own rather than as an untagged enum: serde
/// buffers an untagged enum's input, which loses the spans of the values
/// inside it and answers a wrong type with "data did not match any
/// variant".
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum LocalText {
    One(String),
    ByLanguage(BTreeMap<String, Text>),
}

impl<'de> Deserialize<'de> for LocalText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LocalTextVisitor)
    }
}

struct LocalTextVisitor;

impl<'de> serde::de::Visitor<'de> for LocalTextVisitor {
    type Value = LocalText;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string, or a table of strings by language (en = \"…\", fr = \"…\")")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<LocalText, E> {
        Ok(LocalText::One(text.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, text: String) -> Result<LocalText, E> {
        Ok(LocalText::One(text))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<LocalText, A::Error> {
        let mut texts = BTreeMap::new();
        while let Some(language) = map.next_key::<String>()? {
            // The TOML reader hands a date or time over as a table with
            // one private key; reading on would say "expected a spanned value".
            if language.starts_with("$__toml_private") {
                return Err(serde::de::Error::invalid_type(
                    serde::de::Unexpected::Other("a date or time"),
                    &self,
                ));
            }
            texts.insert(language, map.next_value::<Text>()?);
        }
        Ok(LocalText::ByLanguage(texts))
    }
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

    const NOTES: &str = "id = \"r\"\ntitle = \"R\"\nnote = \"All meetings are webcast.\"\n\n\
                         [[links]]\nlabel = { en = \"Webcast\", fr = \"Retransmission\" }\nurl = \"https://webtv.un.org/\"\n\n\
                         [[events]]\nid = \"a\"\ntitle = \"A\"\nkind = \"meeting\"\nongoing = true\n\
                         note = { en = \"Room to be announced.\", fr = \"Salle à annoncer.\" }\n\n\
                         [[events.links]]\nlabel = \"Documents\"\nurl = \"https://example.org/docs\"\n";

    #[test]
    fn notes_and_links_read_with_spans_and_write_back() {
        let file: RoadmapFile = match toml::from_str(NOTES) {
            Ok(file) => file,
            Err(error) => panic!("{error}"),
        };
        let event = file.events[0].get_ref();
        let Some(LocalText::ByLanguage(note)) = event.note.as_ref().map(|n| n.get_ref()) else {
            panic!("a note by language: {:?}", event.note);
        };
        // Each language's text has its own place, for a problem with one of them.
        assert_eq!(&NOTES[note["fr"].span()], "\"Salle à annoncer.\"");
        let link = file.links.as_ref().map(|links| links[0].get_ref());
        assert_eq!(
            link.map(|l| &NOTES[l.url.span()]),
            Some("\"https://webtv.un.org/\"")
        );
        let written = toml::to_string(&file).unwrap_or_default();
        let back: RoadmapFile = match toml::from_str(&written) {
            Ok(back) => back,
            Err(error) => panic!("{error}\n{written}"),
        };
        assert_eq!(back, file, "{written}");
    }

    #[test]
    fn a_note_of_another_type_says_what_it_may_be() {
        for value in ["5", "2017-10-02", "[\"a\"]"] {
            let error =
                toml::from_str::<RoadmapFile>(&format!("id = \"r\"\ntitle = \"R\"\nnote = {value}\n"))
                    .err()
                    .map(|error| error.message().to_string());
            assert!(
                error.as_deref().is_some_and(
                    |message| message.contains("expected a string, or a table of strings by language")
                ),
                "{value}: {error:?}"
            );
        }
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
