//! `roadmaps/*.toml` -> [`Roadmap`]s and their [`Event`]s: schedules, hours
//! and parts of the day, and what events inherit from their roadmap
//! (venue, time zone, lists, leads, template). A roadmap's note and links
//! are kept with the roadmap, not copied into its events: they are shown
//! after each event's own (`model::Notes`), and once under a letter's table.

use std::collections::HashSet;
use std::path::Path;

use toml::Spanned;

use crate::config::notes::{links_of, note_of};
use crate::config::settings::SettingsParts;
use crate::config::spanned::{check, leads_of};
use crate::config::{Loader, raw, values};
use crate::diagnostics::{Diagnostic, SourceFile};
use crate::model::{Event, EventStatus, Hours, Lead, Roadmap, Schedule, Venue, Zone};

/// What events inherit from their roadmap.
struct RoadmapDefaults {
    id: String,
    venue: Option<Venue>,
    zone: Option<Zone>,
    lists: Vec<String>,
    leads: Option<Vec<Lead>>,
    template: String,
    /// The roadmap names a venue or a time zone (valid or not).
    names_place: bool,
}

impl Loader<'_> {
    pub(super) fn roadmap(&mut self, path: &Path, parts: &SettingsParts) -> Option<Roadmap> {
        let file = self.read(path)?;
        let Some(raw) = self.parse::<raw::RoadmapFile>(&file) else {
            // Its id is unknown; letters naming roadmaps are not checked.
            self.roadmaps_unreadable = true;
            return None;
        };
        self.roadmap_ids.push(raw.id.get_ref().clone());
        let src = file.source();
        let mut d = Vec::new();
        let id = check(&src, &raw.id, values::id, &mut d);
        let title = check(
            &src,
            &raw.title,
            |t| values::one_line(t, "the roadmap's title"),
            &mut d,
        );
        let venue = raw.venue.as_ref().and_then(|v| parts.venue_of(&src, v, &mut d));
        let zone = match &raw.time_zone {
            Some(text) => check(&src, text, values::zone, &mut d),
            None => venue.as_ref().map(|v| v.zone.clone()),
        };
        let lists = raw
            .lists
            .as_ref()
            .map(|lists| parts.lists_of(&src, lists, &mut d));
        let leads = raw.leads.as_ref().map(|leads| leads_of(&src, leads, &mut d));
        let template = raw
            .template
            .as_ref()
            .and_then(|t| check(&src, t, values::id, &mut d));
        let note = raw
            .note
            .as_ref()
            .and_then(|note| note_of(&src, note, &parts.default_language, &mut d));
        let links = raw
            .links
            .as_ref()
            .map(|links| links_of(&src, links, &parts.default_language, &mut d))
            .unwrap_or_default();
        let defaults = RoadmapDefaults {
            id: id.clone().unwrap_or_default(),
            venue,
            zone,
            lists: lists.unwrap_or_default(),
            leads,
            template: template.unwrap_or_else(|| "reminder".to_owned()),
            names_place: raw.venue.is_some() || raw.time_zone.is_some(),
        };
        let mut events = Vec::new();
        for table in &raw.events {
            if let Some(event) = self.event(&src, table, &defaults, parts, &mut d) {
                events.push(event);
            }
        }
        if self.report(d) {
            return None;
        }
        Some(Roadmap {
            id: id?,
            title: title?,
            events,
            notices: raw.notices.unwrap_or(true),
            note,
            links,
        })
    }

    pub(super) fn check_roadmap_ids(&mut self, roadmaps: &[Roadmap]) {
        let mut seen = HashSet::new();
        for roadmap in roadmaps {
            if !seen.insert(roadmap.id.clone()) {
                self.diagnostics.file(
                    &self.dir.join("roadmaps"),
                    format!("two roadmaps have the id {:?}; give each its own", roadmap.id),
                );
            }
        }
    }

    fn event(
        &mut self,
        src: &SourceFile,
        spanned: &Spanned<raw::EventTable>,
        defaults: &RoadmapDefaults,
        parts: &SettingsParts,
        d: &mut Vec<Diagnostic>,
    ) -> Option<Event> {
        let raw = spanned.get_ref();
        let errors_before = d.len();
        let id = check(src, &raw.id, values::id, d);
        if let Some(id) = &id {
            let here = src.at(raw.id.span(), "");
            if let Some(first) = self.event_ids.get(id) {
                d.push(src.at(
                    raw.id.span(),
                    format!("duplicate event id {id:?}: already used at {}", first.location()),
                ));
            } else {
                self.event_ids.insert(id.clone(), here);
            }
        }
        let title = check(src, &raw.title, |t| values::one_line(t, "the event's title"), d);
        let kind = check(src, &raw.kind, values::id, d);
        let schedule = schedule_of(src, spanned, parts, d);
        let venue = match &raw.venue {
            Some(text) => parts.venue_of(src, text, d),
            None => defaults.venue.clone(),
        };
        let zone = match (&raw.time_zone, &raw.venue) {
            (Some(text), _) => check(src, text, values::zone, d),
            (None, Some(_)) => venue.as_ref().map(|v| v.zone.clone()),
            (None, None) => defaults
                .zone
                .clone()
                .or_else(|| venue.as_ref().map(|v| v.zone.clone())),
        };
        if zone.is_none()
            && raw.time_zone.is_none()
            && raw.venue.is_none()
            && !defaults.names_place
            && parts.parsed
        {
            d.push(src.at(
                spanned.span(),
                "the event has no time zone: give it (or its roadmap) a `venue` or a `time_zone`",
            ));
        }
        let room = raw
            .room
            .as_ref()
            .and_then(|r| check(src, r, |t| values::one_line(t, "the room"), d));
        let note = raw
            .note
            .as_ref()
            .and_then(|note| note_of(src, note, &parts.default_language, d));
        let links = raw
            .links
            .as_ref()
            .map(|links| links_of(src, links, &parts.default_language, d))
            .unwrap_or_default();
        let lists = match &raw.lists {
            Some(lists) => parts.lists_of(src, lists, d),
            None => defaults.lists.clone(),
        };
        let leads = match &raw.leads {
            Some(leads) => Some(leads_of(src, leads, d)),
            None => defaults.leads.clone(),
        };
        let template = match &raw.template {
            Some(text) => check(src, text, values::id, d),
            None => Some(defaults.template.clone()),
        };
        let status = match raw.status.as_ref().map(|s| (s, s.get_ref().as_str())) {
            None | Some((_, "confirmed")) => EventStatus::Confirmed,
            Some((_, "cancelled" | "canceled")) => EventStatus::Cancelled,
            Some((text, other)) => {
                d.push(src.at(
                    text.span(),
                    format!("unknown status {other:?}: use \"confirmed\" or \"cancelled\""),
                ));
                EventStatus::Confirmed
            }
        };
        if d.len() > errors_before {
            return None;
        }
        Some(Event {
            id: id?,
            roadmap: defaults.id.clone(),
            title: title?,
            kind: kind?,
            schedule: schedule?,
            venue,
            room,
            note,
            links,
            zone: zone?,
            lists,
            leads,
            template: template?,
            status,
            past: raw.past,
        })
    }
}

/// Turns the date fields of an event into one [`Schedule`], refusing
/// combinations that say two different things.
fn schedule_of(
    src: &SourceFile,
    spanned: &Spanned<raw::EventTable>,
    parts: &SettingsParts,
    d: &mut Vec<Diagnostic>,
) -> Option<Schedule> {
    let raw = spanned.get_ref();
    let ongoing = raw.ongoing.as_ref().is_some_and(|o| *o.get_ref());
    let forms = [raw.date.is_some(), raw.week_of.is_some(), ongoing];
    if forms.iter().filter(|set| **set).count() != 1 {
        d.push(src.at(
            spanned.span(),
            "say when the event is with exactly one of `date`, `week_of` or `ongoing = true`",
        ));
        return None;
    }
    let date_of = |text: &raw::DateText, d: &mut Vec<Diagnostic>| match values::date(&text.get_ref().text()) {
        Ok(date) => Some(date),
        Err(message) => {
            d.push(src.at(text.span(), message));
            None
        }
    };
    let has_hours = raw.start.is_some() || raw.end.is_some() || raw.part_of_day.is_some();
    if ongoing {
        if has_hours || raw.end_date.is_some() {
            d.push(src.at(
                spanned.span(),
                "an ongoing event has no date or hours; remove them or `ongoing`",
            ));
            return None;
        }
        return Some(Schedule::Ongoing);
    }
    if let Some(week_of) = &raw.week_of {
        if has_hours || raw.end_date.is_some() {
            d.push(src.at(week_of.span(), "a `week_of` event has no end_date or hours"));
            return None;
        }
        return Some(Schedule::WeekOf {
            first: date_of(week_of, d)?,
        });
    }
    let date_text = raw.date.as_ref()?;
    let date = date_of(date_text, d)?;
    let hours = hours_of(src, raw, parts, d)?;
    match &raw.end_date {
        None => Some(Schedule::Day { date, hours }),
        Some(end_text) => {
            let last = date_of(end_text, d)?;
            if last <= date {
                d.push(src.at(
                    end_text.span(),
                    format!("end_date {last} is not after date {date}: the end is before the start"),
                ));
                return None;
            }
            Some(Schedule::Days {
                first: date,
                last,
                hours,
            })
        }
    }
}

/// `start`/`end` or `part_of_day`; `Some(None)` when the event has no hours.
fn hours_of(
    src: &SourceFile,
    raw: &raw::EventTable,
    parts: &SettingsParts,
    d: &mut Vec<Diagnostic>,
) -> Option<Option<Hours>> {
    if let Some(part) = &raw.part_of_day {
        if raw.start.is_some() || raw.end.is_some() {
            d.push(src.at(part.span(), "give either part_of_day or start/end, not both"));
            return None;
        }
        let Some((start, end)) = parts.parts_of_day.get(part.get_ref()) else {
            if !parts.parsed {
                return None;
            }
            let known: Vec<&str> = parts.parts_of_day.keys().map(String::as_str).collect();
            d.push(src.at(
                part.span(),
                format!(
                    "unknown part of day {:?}: the known parts are {} ([parts_of_day] in herald.toml)",
                    part.get_ref(),
                    known.join(", ")
                ),
            ));
            return None;
        };
        return Some(Some(Hours {
            start: *start,
            end: Some(*end),
            part_of_day: Some(part.get_ref().clone()),
        }));
    }
    let start = match &raw.start {
        Some(text) => Some(check(src, text, values::time, d)?),
        None => None,
    };
    let end = match &raw.end {
        Some(text) => Some(check(src, text, values::time, d)?),
        None => None,
    };
    match (start, end) {
        (None, None) => Some(None),
        (None, Some(_)) => {
            let span = raw.end.as_ref().map_or(0..0, Spanned::span);
            d.push(src.at(span, "`end` needs a `start`"));
            None
        }
        (Some(start), Some(end)) if end <= start => {
            let span = raw.end.as_ref().map_or(0..0, Spanned::span);
            d.push(src.at(
                span,
                format!("end {end} is not after start {start}: the end is before the start"),
            ));
            None
        }
        (Some(start), end) => Some(Some(Hours {
            start,
            end,
            part_of_day: None,
        })),
    }
}
