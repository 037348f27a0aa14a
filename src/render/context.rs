//! The data a template sees: events, recipients, letters, as JSON.
//!
//! Every key is always present (null when it has no value), so a template
//! that names a key the data does not have fails in strict mode on the first
//! render, at `herald check`, whatever the event it is tried on.
//!
//! An event is `event` (and each of `roadmap.events` in a letter, and
//! `previous` in a notice): `id`, `title`, `kind`, `status`, `date`,
//! `end_date`, `start`, `end`, `part_of_day`, `ongoing`, `venue` (`id`,
//! `name`, `city`), `room`, `time_zone`, `zone_name`, `when`, `when_short`,
//! `local_when`, `past`, and what the operator added for readers:
//!
//! - `note`: the event's note, then its roadmap's, as one paragraph, in the
//!   language of the mail (the reader's language when herald has templates
//!   in it, else the default language); null when there is none;
//! - `links`: the event's links, then its roadmap's, each `{label, url}`
//!   (the label in the language of the mail, the URL an https one); empty
//!   when there are none.
//!
//! Every message to a reader has `links`, the reader's own links on the
//! list it comes through: `links.unsubscribe` (leave the list in one click)
//! and `links.preferences` (language, time zone and lists), each a URL, or
//! null when herald serves no pages (`[http] public_url` and a link secret
//! make them). The digest, which goes to the operator, has none.
//!
//! In a letter's roadmap table an event's `note` and `links` are its own,
//! and the roadmap's are `roadmap.note` and `roadmap.links`, to be shown
//! once; `roadmap` has them in every context.

use serde_json::{Map, Value, json};

use crate::key::AddressKey;
use crate::model::{Event, FocalPoint, Letter, Model, Notes, Roadmap, Schedule, Zone};
use crate::render::locale::{self, DateStyle, Localizer};

/// Who a message is for, and in which language and through which list.
pub struct Reader<'a> {
    pub focal_point: &'a FocalPoint,
    pub list: &'a str,
    /// The language of the templates in use (after fallback).
    pub language: &'a str,
}

/// The part of a reminder's context that is the same for every reader of
/// `event`, `lead` and `language` whose time zone is `zone` (the event as
/// seen from that zone is part of it). A burst of reminders of one event
/// builds it once, which saves formatting its dates and phrases anew for
/// every reader (see `render::SharedContexts`); [`for_reader`] adds the
/// reader's own part.
pub fn reminder_shared(
    model: &Model,
    localizer: &Localizer,
    roadmap: &Roadmap,
    event: &Event,
    lead: &crate::model::Lead,
    language: &str,
    zone: Option<&Zone>,
) -> Map<String, Value> {
    let shared = json!({
        "lang": language,
        "event": event_value(localizer, event, zone, language, &Notes::of(event, Some(roadmap))),
        "lead": {
            "text": lead.as_str(),
            "in_words": localizer.lead_in_words(lead.span(), language),
        },
        // The roadmap's id, title, note and links only: the table of all
        // its events is for letters, and building it for each reminder made
        // rendering (and `herald check`) grow with the square of a roadmap's
        // events.
        "roadmap": roadmap_head(localizer, roadmap, language),
        "sender": sender_value(model),
    });
    match shared {
        Value::Object(map) => map,
        _ => unreachable!("json! of an object literal is an object"),
    }
}

/// A reminder's context: its shared part with the reader's own added.
pub fn for_reader(mut shared: Map<String, Value>, model: &Model, reader: &Reader) -> Value {
    shared.insert("recipient".to_owned(), recipient_value(reader.focal_point));
    shared.insert("list".to_owned(), list_value(model, reader.list));
    shared.insert("links".to_owned(), personal_links_value(model, reader));
    Value::Object(shared)
}

/// The context of `letter` to `focal_point`.
pub fn letter(model: &Model, localizer: &Localizer, letter: &Letter, reader: &Reader) -> Value {
    let language = reader.language;
    // The body in the reader's own language when the letter has one, even
    // when the templates around it fall back to the default language's:
    // the body is what the letter says. `herald check` warns of the
    // languages that get the default body instead.
    let body = letter
        .own_body(&reader.focal_point.language)
        .or_else(|| letter.own_body(language))
        .or_else(|| {
            letter
                .body
                .get(&model.settings().default_language)
                .map(String::as_str)
        })
        .unwrap_or_default();
    let paragraphs: Vec<String> = body
        .split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect();
    let roadmap = letter
        .roadmap
        .as_ref()
        .and_then(|id| model.roadmap(id))
        .map_or(Value::Null, |roadmap| roadmap_value(localizer, roadmap, language));
    let date = letter.send_at.as_ref().map_or(Value::Null, |at| {
        Value::String(localizer.date(at.date(), language, DateStyle::Long))
    });
    json!({
        "lang": language,
        "letter": {
            "id": letter.id,
            "date": date,
            "paragraphs": paragraphs,
            "signatory": letter.signatory,
            "signatory_title": letter.signatory_title,
        },
        "roadmap": roadmap,
        "recipient": recipient_value(reader.focal_point),
        "sender": sender_value(model),
        "list": list_value(model, reader.list),
        "links": personal_links_value(model, reader),
    })
}

/// The context of an update or cancellation notice.
pub fn notice(
    model: &Model,
    localizer: &Localizer,
    notice: &crate::render::Notice,
    reader: &Reader,
) -> Value {
    let language = reader.language;
    let roadmap = model.roadmap(&notice.event.roadmap);
    let zone = reader.focal_point.zone.as_ref();
    let notes = Notes::of(notice.event, roadmap);
    // What calendars knew before the change differs in date or place; its
    // note and links are not remembered, and not needed to say what changed.
    let previous = notice
        .previous
        .map(|previous| event_value(localizer, previous, zone, language, &Notes::default()));
    json!({
        "lang": language,
        "event": event_value(localizer, notice.event, zone, language, &notes),
        "previous": previous,
        "cancelled": notice.cancel,
        "roadmap": roadmap.map_or(Value::Null, |roadmap| roadmap_head(localizer, roadmap, language)),
        "recipient": recipient_value(reader.focal_point),
        "sender": sender_value(model),
        "list": list_value(model, reader.list),
        "links": personal_links_value(model, reader),
    })
}

/// The event as templates see it; `reader_zone` is the reader's time zone,
/// for `local_when` (none in a roadmap table); `notes` the note and links
/// shown with it.
fn event_value(
    localizer: &Localizer,
    event: &Event,
    reader_zone: Option<&Zone>,
    language: &str,
    notes: &Notes,
) -> Value {
    let schedule = &event.schedule;
    let hours = schedule.hours();
    json!({
        "id": event.id,
        "title": event.title,
        "kind": event.kind,
        "status": match event.status {
            crate::model::EventStatus::Confirmed => "confirmed",
            crate::model::EventStatus::Cancelled => "cancelled",
        },
        "date": schedule.first_day().map(|d| d.to_string()),
        "end_date": match schedule {
            Schedule::Days { last, .. } => Some(last.to_string()),
            _ => None,
        },
        "start": hours.map(|h| locale::time(h.start)),
        "end": hours.and_then(|h| h.end).map(locale::time),
        "part_of_day": hours.and_then(|h| h.part_of_day.clone()),
        "ongoing": matches!(schedule, Schedule::Ongoing),
        "venue": event.venue.as_ref().map(|v| json!({"id": v.id, "name": v.name, "city": v.city})),
        "room": event.room,
        "time_zone": event.zone.name,
        "zone_name": localizer.phrase(language, "zone_time", &[("city", &event.zone_city())]),
        "when": when(localizer, event, language, DateStyle::Full, true),
        "when_short": when(localizer, event, language, DateStyle::DayMonth, false),
        "local_when": reader_zone.and_then(|zone| local_when(localizer, event, zone, language)),
        "past": event.past,
        "note": notes.text(&localizer.chain(language)),
        "links": links_value(localizer, notes, language),
    })
}

/// The links of `notes`, each `{label, url}` with its label in `language`.
fn links_value(localizer: &Localizer, notes: &Notes, language: &str) -> Value {
    let chain = localizer.chain(language);
    notes
        .links
        .iter()
        .map(|link| json!({ "label": link.label.in_first_of(&chain), "url": link.url }))
        .collect()
}

/// A roadmap's id, title, note and links: what every context says of it.
fn roadmap_head(localizer: &Localizer, roadmap: &Roadmap, language: &str) -> Value {
    let notes = Notes::of_roadmap(roadmap);
    json!({
        "id": roadmap.id,
        "title": roadmap.title,
        "note": notes.text(&localizer.chain(language)),
        "links": links_value(localizer, &notes, language),
    })
}

/// The event's date and hours in words, in the event's own time zone:
/// "Monday, 2 October 2017 (afternoon, from 15:00 to 18:00)"; with
/// `DateStyle::DayMonth` and no hours for parts of day, the style of a
/// roadmap table: "2 October (afternoon)".
pub fn when(
    localizer: &Localizer,
    event: &Event,
    language: &str,
    style: DateStyle,
    detailed: bool,
) -> String {
    let date = |d| localizer.date(d, language, style);
    let phrase = |key: &str, args: &[(&str, &str)]| localizer.phrase(language, key, args);
    let days = match &event.schedule {
        Schedule::Ongoing => return phrase("ongoing", &[]),
        Schedule::WeekOf { first } => return phrase("week_of", &[("date", &date(*first))]),
        Schedule::Day { date: day, .. } => date(*day),
        Schedule::Days { first, last, .. } => {
            phrase("date_range", &[("first", &date(*first)), ("last", &date(*last))])
        }
    };
    let Some(hours) = event.schedule.hours() else {
        return days;
    };
    let hours_text = match hours.end {
        Some(end) => phrase(
            "time_range",
            &[("start", &locale::time(hours.start)), ("end", &locale::time(end))],
        ),
        None => phrase("time_from", &[("start", &locale::time(hours.start))]),
    };
    match &hours.part_of_day {
        Some(part) if detailed => phrase(
            "with_part_hours",
            &[
                ("date", &days),
                ("part", &phrase(part, &[])),
                ("hours", &hours_text),
            ],
        ),
        Some(part) => phrase("with_part", &[("date", &days), ("part", &phrase(part, &[]))]),
        None => phrase("with_hours", &[("date", &days), ("hours", &hours_text)]),
    }
}

/// The start (and end) of a timed event in the reader's own zone, when that
/// differs from the event's: "Tuesday, 5 December 2016, from 21:00 to 00:00".
fn local_when(localizer: &Localizer, event: &Event, zone: &Zone, language: &str) -> Option<String> {
    if *zone == event.zone {
        return None;
    }
    let (start, end) = event.timed_span()?;
    let start = start.with_time_zone(zone.tz.clone());
    let date = localizer.date(start.date(), language, DateStyle::Full);
    let hours = match end {
        Some(end) => {
            let end = end.with_time_zone(zone.tz.clone());
            localizer.phrase(
                language,
                "time_range",
                &[
                    ("start", &locale::time(start.time())),
                    ("end", &locale::time(end.time())),
                ],
            )
        }
        None => localizer.phrase(language, "time_from", &[("start", &locale::time(start.time()))]),
    };
    let zone_name = localizer.phrase(
        language,
        "zone_time",
        &[("city", &crate::model::city_of_zone(&zone.name))],
    );
    let when = localizer.phrase(language, "with_hours", &[("date", &date), ("hours", &hours)]);
    Some(localizer.phrase(language, "with_zone", &[("when", &when), ("zone", &zone_name)]))
}

/// A roadmap with the table of its events; each event with its own note
/// and links only, as the roadmap's are shown once.
fn roadmap_value(localizer: &Localizer, roadmap: &Roadmap, language: &str) -> Value {
    let events: Vec<Value> = roadmap
        .events
        .iter()
        .map(|event| event_value(localizer, event, None, language, &Notes::own(event)))
        .collect();
    let mut value = roadmap_head(localizer, roadmap, language);
    value["events"] = Value::Array(events);
    value
}

fn recipient_value(focal_point: &FocalPoint) -> Value {
    let honorific = focal_point.honorific.clone();
    json!({
        "name": focal_point.name,
        "email": focal_point.email.to_string(),
        "mission": focal_point.mission,
        "honorific": honorific,
        // Heads of mission are addressed as "Excellency", not by name.
        "excellency": honorific.as_deref().is_some_and(|h| h.eq_ignore_ascii_case("excellency")),
        "language": focal_point.language,
        "time_zone": focal_point.zone.as_ref().map(|z| z.name.clone()),
    })
}

fn sender_value(model: &Model) -> Value {
    let sender = &model.settings().sender;
    json!({
        "name": sender.from.name,
        "email": sender.from.email.to_string(),
        "organization": sender.organization,
        "reply_to": sender.reply_to.as_ref().map(|r| r.email.to_string()),
    })
}

/// The reader's own links on the list the message comes through (see
/// [`crate::model::Sender::personal_links`]): `unsubscribe` and
/// `preferences`, both null when herald serves no pages or has no link
/// secret (or the send is through no list of the model).
fn personal_links_value(model: &Model, reader: &Reader) -> Value {
    let links = model.lists().get(reader.list).and_then(|list| {
        let address = AddressKey::of(reader.focal_point.email.as_ref());
        model.settings().sender.personal_links(&list.id, &address)
    });
    json!({
        "unsubscribe": links.as_ref().map(|links| links.unsubscribe.clone()),
        "preferences": links.map(|links| links.preferences),
    })
}

fn list_value(model: &Model, list: &str) -> Value {
    let name = model.lists().get(list).map(|l| l.name.clone());
    json!({ "id": list, "name": name })
}
