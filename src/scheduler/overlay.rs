//! Readers' overrides over the configuration: a focal point who chose
//! another language or time zone (kept in the outbox, never in the
//! configuration) is planned and rendered with it.
//!
//! The overrides are laid over the model after each load, and again when
//! a reader changes them; [`Choices`] remembers what they changed (for
//! `herald plan` and `history` to mark) and what the configuration said
//! (so that laying new overrides starts from it). A language herald has
//! no templates for, or a zone the tz database does not know, is ignored
//! with a warning: the reader gets what the configuration says.

use std::collections::BTreeMap;
use std::fmt;

use crate::key::AddressKey;
use crate::model::{Model, Zone};
use crate::outbox::Override;

/// What an override changed for one focal point: the values it gave that
/// differ from the configuration's (`None`: not changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub language: Option<String>,
    pub zone: Option<String>,
}

impl fmt::Display for Choice {
    /// "language fr, zone Asia/Tokyo".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(language) = &self.language {
            parts.push(format!("language {language}"));
        }
        if let Some(zone) = &self.zone {
            parts.push(format!("zone {zone}"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// One focal point's applied override, and what the configuration said.
#[derive(Debug, Clone)]
struct Applied {
    choice: Choice,
    configured_language: String,
    configured_zone: Option<Zone>,
}

/// What readers' overrides changed in a model, by address.
#[derive(Debug, Clone, Default)]
pub struct Choices(BTreeMap<AddressKey, Applied>);

impl Choices {
    /// What the override of `address` changed, if it changed anything.
    pub fn of(&self, address: &AddressKey) -> Option<&Choice> {
        self.0.get(address).map(|applied| &applied.choice)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What the configuration says of `address`'s language and zone, when
    /// an override changed either (the model then has the override's).
    pub fn configured(&self, address: &AddressKey) -> Option<(&str, Option<&Zone>)> {
        self.0.get(address).map(|applied| {
            (
                applied.configured_language.as_str(),
                applied.configured_zone.as_ref(),
            )
        })
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// An override that was not applied, or not whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// Its address is no focal point of the configuration (any more).
    Gone(AddressKey),
    /// A language herald has no templates for.
    Language { address: AddressKey, language: String },
    /// A zone the tz database does not know.
    Zone {
        address: AddressKey,
        zone: String,
        error: String,
    },
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ignored::Gone(address) => write!(f, "{address} is no focal point of the configuration"),
            Ignored::Language { address, language } => write!(
                f,
                "{address} chose the language {language:?}, which herald has no templates for; the configuration's is kept"
            ),
            Ignored::Zone { address, zone, error } => write!(
                f,
                "{address} chose the time zone {zone:?}, which the tz database does not know ({error}); the configuration's is kept"
            ),
        }
    }
}

/// Puts back what `before` changed in `model`, then lays `overrides` over
/// it; `languages` are those herald has templates in. Returns what they
/// changed and what was ignored.
pub(super) fn lay<'a>(
    model: &mut Model,
    before: &Choices,
    overrides: &[Override],
    languages: impl IntoIterator<Item = &'a str>,
) -> (Choices, Vec<Ignored>) {
    for (address, applied) in &before.0 {
        model.set_reader_choice(
            address,
            applied.configured_language.clone(),
            applied.configured_zone.clone(),
        );
    }
    let languages: Vec<&str> = languages.into_iter().collect();
    let mut choices = Choices::default();
    let mut ignored = Vec::new();
    for choice in overrides {
        let address = &choice.address;
        let Some(focal_point) = model.focal_point(address.as_str()) else {
            ignored.push(Ignored::Gone(address.clone()));
            continue;
        };
        let configured_language = focal_point.language.clone();
        let configured_zone = focal_point.zone.clone();
        let language = match &choice.language {
            Some(language) if languages.contains(&language.as_str()) => Some(language.clone()),
            Some(language) => {
                ignored.push(Ignored::Language {
                    address: address.clone(),
                    language: language.clone(),
                });
                None
            }
            None => None,
        }
        .filter(|language| *language != configured_language);
        let zone = match &choice.zone {
            Some(name) => match Zone::named(name) {
                Ok(zone) => Some(zone),
                Err(err) => {
                    ignored.push(Ignored::Zone {
                        address: address.clone(),
                        zone: name.clone(),
                        error: err.to_string(),
                    });
                    None
                }
            },
            None => None,
        }
        .filter(|zone| configured_zone.as_ref() != Some(zone));
        if language.is_none() && zone.is_none() {
            continue;
        }
        let choice = Choice {
            language: language.clone(),
            zone: zone.as_ref().map(|zone| zone.name.clone()),
        };
        model.set_reader_choice(
            address,
            language.unwrap_or_else(|| configured_language.clone()),
            zone.or_else(|| configured_zone.clone()),
        );
        choices.0.insert(
            address.clone(),
            Applied {
                choice,
                configured_language,
                configured_zone,
            },
        );
    }
    (choices, ignored)
}
