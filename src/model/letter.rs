//! Letters (circulars): a cover letter sent to lists, at a set time or on
//! demand, usually enclosing a roadmap.

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::ZonedDateTime;

use crate::model::Attachment;

/// One circular.
#[derive(Debug, Clone)]
pub struct Letter {
    pub id: String,
    /// The file it was read from, for warnings about it.
    pub file: PathBuf,
    /// The template family ("cover-letter").
    pub template: String,
    pub lists: Vec<String>,
    /// The roadmap whose table the letter carries, if any.
    pub roadmap: Option<String>,
    /// When it goes out; `None` means only on demand.
    pub send_at: Option<ZonedDateTime>,
    pub signatory: Option<String>,
    pub signatory_title: Option<String>,
    /// The body by language; the default language is always present.
    pub body: BTreeMap<String, String>,
    /// Files every copy of the letter carries.
    pub attachments: Vec<Attachment>,
}

impl Letter {
    /// The body written for readers of `language` ("es-MX"): in that
    /// language or the one it narrows ("es"); `None` when the letter has
    /// none, and such readers get the default language's body.
    pub fn own_body(&self, language: &str) -> Option<&str> {
        let mut current = language;
        loop {
            if let Some(body) = self.body.get(current) {
                return Some(body);
            }
            current = current.rsplit_once('-')?.0;
        }
    }

    /// Of the readers' languages (each reader's own, as the lists give
    /// it, once per reader), those with no body of their own, and how many
    /// readers each.
    pub fn languages_without_body<'a>(
        &self,
        reader_languages: impl IntoIterator<Item = &'a str>,
    ) -> BTreeMap<&'a str, usize> {
        let mut missing = BTreeMap::new();
        for language in reader_languages {
            if self.own_body(language).is_none() {
                *missing.entry(language).or_insert(0) += 1;
            }
        }
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(bodies: &[&str]) -> Letter {
        Letter {
            id: "l".to_owned(),
            file: PathBuf::from("letters/l.toml"),
            template: "cover-letter".to_owned(),
            lists: vec![],
            roadmap: None,
            send_at: None,
            signatory: None,
            signatory_title: None,
            body: bodies
                .iter()
                .map(|l| ((*l).to_owned(), format!("body {l}")))
                .collect(),
            attachments: vec![],
        }
    }

    #[test]
    fn a_regional_language_reads_its_language_body() {
        let letter = letter(&["en", "es"]);
        assert_eq!(letter.own_body("es-MX"), Some("body es"));
        assert_eq!(letter.own_body("es"), Some("body es"));
        assert_eq!(letter.own_body("ru"), None);
        assert_eq!(letter.own_body("zh-Hans-CN"), None);
        assert_eq!(
            letter.languages_without_body(["es-MX", "ru", "en", "ru", "de"]),
            BTreeMap::from([("de", 1), ("ru", 2)])
        );
    }
}
