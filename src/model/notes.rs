//! What an operator adds to an event for its readers besides its date and
//! place: a note ("Further details will be announced in the UN Journal in
//! due course") and links (documents, webcast, registration), in one
//! language or several.
//!
//! A roadmap can have a note and links too; they go with every one of its
//! events, after the event's own ([`Notes::of`]). Neither is part of what
//! calendars are told changed: editing them raises no SEQUENCE and sends no
//! notice, and the next message about the event carries the new text.

use std::collections::BTreeMap;

use crate::model::{Event, Roadmap};

/// Text for readers, by language. `config` makes sure it has the default
/// language's text (a note written as a plain string is that), so a reader
/// of any language gets one: their language's, else the default's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Localized(BTreeMap<String, String>);

impl Localized {
    /// `texts` by language; `config` has checked that the default language
    /// is among them.
    pub(crate) fn new(texts: BTreeMap<String, String>) -> Localized {
        Localized(texts)
    }

    /// The text in the first language of `chain` that has one (see
    /// `render::locale::language_chain`, which ends in the default language).
    pub fn in_first_of(&self, chain: &[String]) -> Option<&str> {
        chain
            .iter()
            .find_map(|language| self.0.get(language))
            .map(String::as_str)
    }
}

/// A link shown with an event: what it is ("Webcast") and where (an
/// https URL, as the `url` crate writes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub label: Localized,
    pub url: String,
}

/// The notes and links shown with an event, in the order readers see them.
#[derive(Debug, Clone, Default)]
pub struct Notes<'a> {
    pub notes: Vec<&'a Localized>,
    pub links: Vec<&'a Link>,
}

impl<'a> Notes<'a> {
    /// The event's own note and links, then its roadmap's (none when the
    /// roadmap is gone from the configuration).
    pub fn of(event: &'a Event, roadmap: Option<&'a Roadmap>) -> Notes<'a> {
        let mut notes = Notes::own(event);
        if let Some(roadmap) = roadmap {
            notes.notes.extend(&roadmap.note);
            notes.links.extend(&roadmap.links);
        }
        notes
    }

    /// The event's own note and links alone (a roadmap table shows the
    /// roadmap's once, not with each event).
    pub fn own(event: &'a Event) -> Notes<'a> {
        Notes {
            notes: event.note.iter().collect(),
            links: event.links.iter().collect(),
        }
    }

    /// The roadmap's note and links.
    pub fn of_roadmap(roadmap: &'a Roadmap) -> Notes<'a> {
        Notes {
            notes: roadmap.note.iter().collect(),
            links: roadmap.links.iter().collect(),
        }
    }

    /// The notes in the first language of `chain` each has, as one
    /// paragraph (each note is one already), or `None` when there are none.
    pub fn text(&self, chain: &[String]) -> Option<String> {
        let texts: Vec<&str> = self
            .notes
            .iter()
            .filter_map(|note| note.in_first_of(chain))
            .collect();
        (!texts.is_empty()).then(|| texts.join(" "))
    }
}
