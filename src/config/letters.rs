//! `letters/*.toml` -> [`Letter`]s: circulars to lists, each optionally
//! about a roadmap and sent at a time in its time zone.

use std::path::Path;

use crate::config::settings::SettingsParts;
use crate::config::spanned::check;
use crate::config::{Loader, raw, values};
use crate::model::{Letter, Roadmap};

impl Loader<'_> {
    pub(super) fn letter(
        &mut self,
        path: &Path,
        parts: &SettingsParts,
        roadmaps: &[Roadmap],
    ) -> Option<Letter> {
        let file = self.read(path)?;
        let raw: raw::LetterFile = self.parse(&file)?;
        let src = file.source();
        let mut d = Vec::new();
        let id = check(&src, &raw.id, values::id, &mut d);
        let template = match &raw.template {
            Some(text) => check(&src, text, values::id, &mut d),
            None => Some("cover-letter".to_owned()),
        };
        let lists = parts.lists_of(&src, &raw.lists, &mut d);
        if raw.lists.is_empty() {
            d.push(src.at(0..0, "the letter goes to no list: set `lists`"));
        }
        let roadmap = raw.roadmap.as_ref().and_then(|text| {
            if roadmaps.iter().any(|r| &r.id == text.get_ref()) {
                Some(text.get_ref().clone())
            } else if self.roadmaps_unreadable || self.roadmap_ids.contains(text.get_ref()) {
                // The roadmap exists but has problems, already reported.
                None
            } else {
                let known: Vec<&str> = roadmaps.iter().map(|r| r.id.as_str()).collect();
                d.push(src.at(
                    text.span(),
                    format!(
                        "unknown roadmap {:?}; the roadmaps are: {}",
                        text.get_ref(),
                        known.join(", ")
                    ),
                ));
                None
            }
        });
        let zone = raw
            .time_zone
            .as_ref()
            .and_then(|text| check(&src, text, values::zone, &mut d));
        let send_at = match (&raw.send_at, &zone) {
            (None, _) => None,
            (Some(text), Some(zone)) => {
                let value = text.get_ref().text();
                match values::datetime(&value) {
                    Ok(civil) => Some(zone.at(civil.date(), civil.time())),
                    Err(message) => {
                        d.push(src.at(text.span(), message));
                        None
                    }
                }
            }
            (Some(text), None) => {
                if raw.time_zone.is_none() {
                    d.push(src.at(text.span(), "send_at needs a time_zone to say whose 10:00 it is"));
                }
                None
            }
        };
        let signatory = raw
            .signatory
            .as_ref()
            .and_then(|t| check(&src, t, |v| values::one_line(v, "the signatory"), &mut d));
        let signatory_title = raw
            .signatory_title
            .as_ref()
            .and_then(|t| check(&src, t, |v| values::one_line(v, "the signatory's title"), &mut d));
        let body = raw.body.get_ref().clone();
        if !body.contains_key(&parts.default_language) {
            d.push(src.at(
                raw.body.span(),
                format!(
                    "the body has no text in the default language {:?}",
                    parts.default_language
                ),
            ));
        }
        for language in body.keys() {
            if let Err(message) = values::language(language) {
                d.push(src.at(raw.body.span(), message));
            }
        }
        let attachments = raw
            .attachments
            .as_ref()
            .map(|list| self.attachments_of(&src, list, &mut d))
            .unwrap_or_default();
        if self.report(d) {
            return None;
        }
        Some(Letter {
            id: id?,
            file: path.to_owned(),
            template: template?,
            lists,
            roadmap,
            send_at,
            signatory,
            signatory_title,
            body,
            attachments,
        })
    }
}
