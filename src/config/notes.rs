//! The `note` and `links` of a roadmap or an event -> [`Localized`] text
//! and [`Link`]s: a note is one paragraph, a label one line, a URL an
//! https one; text given by language has the default language's.

use std::collections::BTreeMap;

use toml::Spanned;

use crate::config::{raw, values};
use crate::diagnostics::{Diagnostic, SourceFile};
use crate::model::{Link, Localized};

/// A `note`, checked: `None` (with its problems in `d`) if it has any.
pub(super) fn note_of(
    src: &SourceFile,
    note: &Spanned<raw::LocalText>,
    default_language: &str,
    d: &mut Vec<Diagnostic>,
) -> Option<Localized> {
    localized(src, note, "the note", default_language, d, |text| {
        values::paragraph(text, "the note")
    })
}

/// `links`, each checked; the links without a problem.
pub(super) fn links_of(
    src: &SourceFile,
    links: &[Spanned<raw::LinkTable>],
    default_language: &str,
    d: &mut Vec<Diagnostic>,
) -> Vec<Link> {
    let mut result = Vec::new();
    for link in links {
        let link = link.get_ref();
        let label = localized(src, &link.label, "the link's label", default_language, d, label);
        let url = match values::https_url(link.url.get_ref()) {
            Ok(url) => Some(url),
            Err(message) => {
                d.push(src.at(link.url.span(), message));
                None
            }
        };
        if let (Some(label), Some(url)) = (label, url) {
            result.push(Link { label, url });
        }
    }
    result
}

/// A link's label: one line, and not empty.
fn label(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err(
            "the link's label is empty: say what the link is (\"Webcast\", \"Documents\")".to_owned(),
        );
    }
    values::one_line(text, "the link's label")
}

/// Text given once (in the default language) or by language, each text
/// checked by `check` at its own place.
fn localized(
    src: &SourceFile,
    value: &Spanned<raw::LocalText>,
    what: &str,
    default_language: &str,
    d: &mut Vec<Diagnostic>,
    check: impl Fn(&str) -> Result<String, String>,
) -> Option<Localized> {
    let errors_before = d.len();
    let mut texts = BTreeMap::new();
    match value.get_ref() {
        raw::LocalText::One(text) => match check(text) {
            Ok(text) => {
                texts.insert(default_language.to_owned(), text);
            }
            Err(message) => d.push(src.at(value.span(), message)),
        },
        raw::LocalText::ByLanguage(by_language) => {
            for (language, text) in by_language {
                let language = match values::language(language) {
                    Ok(language) => language,
                    Err(message) => {
                        d.push(src.at(text.span(), message));
                        continue;
                    }
                };
                match check(text.get_ref()) {
                    Ok(text) => {
                        texts.insert(language, text);
                    }
                    Err(message) => d.push(src.at(text.span(), message)),
                }
            }
            let has_default = by_language
                .keys()
                .any(|language| values::language(language).is_ok_and(|l| l == default_language));
            if !has_default {
                d.push(src.at(
                    value.span(),
                    format!(
                        "{what} has no text in the default language {default_language:?}: add {default_language} = \"…\", which readers of the other languages get"
                    ),
                ));
            }
        }
    }
    (d.len() == errors_before).then(|| Localized::new(texts))
}
