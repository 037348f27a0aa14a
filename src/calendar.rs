//! iCalendar (RFC 5545/5546) invitations, updates and cancellations.
//!
//! An event's invitation has a UID that never changes and a SEQUENCE that
//! rises when its start, end or status change (RFC 5546 §2.1.4); the
//! outbox keeps the sequence. Its note (in the default language) is the
//! DESCRIPTION and its first link the URL; editing them changes neither
//! the SEQUENCE nor the snapshot. Times are written in UTC, which every client
//! shows in its reader's zone: the icalendar crate writes no VTIMEZONE, and
//! a TZID without one is invalid. Days without hours are `VALUE=DATE`
//! (all-day, and multi-day with an exclusive end). The icalendar crate
//! escapes TEXT values and writes the CRLFs; DTSTAMP is set here, so the
//! same input always gives the same text.
//!
//! Two things the crate gets wrong are done here. A parameter value (a
//! focal point's name as CN) is always a quoted-string, with RFC 6868's
//! `^'` for a double quote and `^^` for a caret (`quoted_parameter`): the
//! crate passes a value that starts and ends with a quote through as it is
//! (so `"A";PARTSTAT=ACCEPTED;X="1"` became parameters) and quotes one with
//! a comma without escaping its quotes (so a parser dropped the attendee).
//! And lines are folded again at 75 octets (`fold`): the crate's last
//! piece of a folded line could be 76.

use icalendar::{Calendar, Component, EventLike, Property};
use jiff::Timestamp;
use jiff::civil::Date;

use crate::model::{Event, EventStatus, FocalPoint, Schedule};

/// What the invitation asks of the calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Add or update the event.
    Request,
    /// Remove the event.
    Cancel,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Request => "REQUEST",
            Method::Cancel => "CANCEL",
        }
    }
}

/// When an event is, as iCalendar writes it: `(DTSTART, DTEND)` property
/// values with their parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub start: String,
    pub end: String,
    /// `VALUE=DATE` days rather than UTC instants.
    pub all_day: bool,
}

/// The event's span, or `None` for unscheduled events, which have no
/// place in a calendar.
pub fn span_of(event: &Event) -> Option<Span> {
    let date = |d: Date| d.strftime("%Y%m%d").to_string();
    let utc = |t: Timestamp| t.strftime("%Y%m%dT%H%M%SZ").to_string();
    let first = event.schedule.first_day()?;
    let last = event.schedule.last_day()?;
    if let Some(hours) = event.schedule.hours() {
        // A multi-day meeting with daily hours runs from the first day's
        // start to the last day's end.
        let start = event.zone.at(first, hours.start);
        let end = hours.end.map(|end| event.zone.at(last, end));
        let end = match (end, &event.schedule) {
            (Some(end), _) => end,
            // No end given: an hour, for the calendar's sake.
            (None, _) => start
                .checked_add(jiff::SignedDuration::from_hours(1))
                .unwrap_or(start.clone()),
        };
        return Some(Span {
            start: utc(start.timestamp()),
            end: utc(end.timestamp()),
            all_day: false,
        });
    }
    let after_last = last.tomorrow().unwrap_or(last);
    Some(Span {
        start: date(first),
        end: date(after_last),
        all_day: true,
    })
}

/// Everything an invitation needs to know.
pub struct Invitation<'a> {
    pub event: &'a Event,
    pub method: Method,
    pub sequence: u32,
    /// The sender, as ORGANIZER.
    pub organizer: &'a lettre::message::Mailbox,
    pub attendee: &'a FocalPoint,
    /// When the invitation was made (DTSTAMP).
    pub stamp: Timestamp,
    /// The right-hand side of the UID.
    pub domain: &'a str,
    /// The event's note in the default language, as DESCRIPTION.
    pub description: Option<&'a str>,
    /// Its first link, as URL.
    pub url: Option<&'a str>,
}

/// The UID of an event's invitations: the same for every message about it.
pub fn uid(event_id: &str, domain: &str) -> String {
    format!("{event_id}@{domain}")
}

/// The invitation as iCalendar text, or `None` for an unscheduled event.
pub fn invitation(invitation: &Invitation) -> Option<String> {
    let event = invitation.event;
    let span = span_of(event)?;
    let mut calendar = Calendar::empty();
    calendar.append_property(Property::new("PRODID", "-//herald//herald 1.0//EN"));
    calendar.append_property(Property::new("VERSION", "2.0"));
    calendar.append_property(Property::new("CALSCALE", "GREGORIAN"));
    calendar.append_property(Property::new("METHOD", invitation.method.as_str()));

    let mut vevent = icalendar::Event::new();
    vevent
        .uid(&uid(&event.id, invitation.domain))
        .sequence(invitation.sequence)
        .add_property("DTSTAMP", invitation.stamp.strftime("%Y%m%dT%H%M%SZ").to_string())
        .summary(&event.title);
    let mut start = Property::new("DTSTART", &span.start);
    let mut end = Property::new("DTEND", &span.end);
    if span.all_day {
        start.add_parameter("VALUE", "DATE");
        end.add_parameter("VALUE", "DATE");
    }
    vevent.append_property(start).append_property(end);
    if let Some(location) = location(event) {
        vevent.location(&location);
    }
    // Neither is part of `sequence_signature`: a new note or link reaches
    // calendars with the next message, at the same SEQUENCE (RFC 5546 asks
    // a new SEQUENCE only for changes of time and status).
    if let Some(description) = invitation.description {
        vevent.description(description);
    }
    if let Some(url) = invitation.url {
        vevent.url(url);
    }
    let cancelled = invitation.method == Method::Cancel || event.status == EventStatus::Cancelled;
    vevent.add_property("STATUS", if cancelled { "CANCELLED" } else { "CONFIRMED" });
    vevent.add_property("TRANSP", if span.all_day { "TRANSPARENT" } else { "OPAQUE" });
    let organizer = invitation.organizer;
    let mut organizer_property = Property::new("ORGANIZER", format!("mailto:{}", organizer.email));
    if let Some(name) = &organizer.name {
        organizer_property.add_parameter("CN", &quoted_parameter(name));
    }
    vevent.append_property(organizer_property);
    let attendee = invitation.attendee;
    let mut attendee_property = Property::new("ATTENDEE", format!("mailto:{}", attendee.email));
    attendee_property.add_parameter("CN", &quoted_parameter(&attendee.name));
    attendee_property.add_parameter("ROLE", "REQ-PARTICIPANT");
    if invitation.method == Method::Request {
        attendee_property.add_parameter("PARTSTAT", "NEEDS-ACTION");
        attendee_property.add_parameter("RSVP", "TRUE");
    }
    vevent.append_multi_property(attendee_property);
    calendar.push(vevent.done());
    Some(fold(&calendar.done().to_string()))
}

/// A parameter value as RFC 5545 §3.2 allows any text to be written: a
/// quoted-string, which no `;`, `:` or `,` can end; a DQUOTE (which cannot
/// appear inside one) as RFC 6868's `^'`, a caret as `^^`, a line break as
/// `^n`. Other control characters, which a quoted-string cannot hold and
/// the configuration refuses in names anyway, become spaces. A backslash
/// becomes a fullwidth one (`＼`): RFC 5545 gives it no meaning in a
/// parameter value, but parsers read it as in TEXT (Python's icalendar
/// reads `\;` as `;`), so no way of writing it reads back the same in both.
///
/// The icalendar crate passes a value that starts and ends with a DQUOTE
/// through untouched, which is what this gives it.
fn quoted_parameter(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '^' => quoted.push_str("^^"),
            '"' => quoted.push_str("^'"),
            '\n' => quoted.push_str("^n"),
            '\\' => quoted.push('＼'),
            c if c.is_control() && c != '\t' => quoted.push(' '),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// The longest a content line may be, in octets, CRLF not counted (RFC 5545 §3.1).
const LINE_OCTETS: usize = 75;

/// `text` with every content line folded at [`LINE_OCTETS`], never inside a
/// UTF-8 character: a continuation line is a space and at most 74 octets.
///
/// The icalendar crate folds, but its last piece can be 76 octets, so its
/// folds are undone (a CRLF followed by a space is only ever a fold: TEXT
/// values escape line breaks, and parameter values here have none) and the
/// lines folded again.
fn fold(text: &str) -> String {
    let unfolded = text.replace("\r\n ", "");
    let mut folded = String::with_capacity(unfolded.len() + unfolded.len() / 24);
    for line in unfolded.split_terminator("\r\n") {
        let mut rest = line;
        let mut room = LINE_OCTETS;
        while rest.len() > room {
            let mut cut = room;
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            folded.push_str(&rest[..cut]);
            folded.push_str("\r\n ");
            rest = &rest[cut..];
            room = LINE_OCTETS - 1;
        }
        folded.push_str(rest);
        folded.push_str("\r\n");
    }
    folded
}

/// "Palais des Nations, Geneva, Room XX" from the venue and room.
pub fn location(event: &Event) -> Option<String> {
    match (&event.venue, &event.room) {
        (Some(venue), Some(room)) => Some(format!("{}, {room}", venue.name)),
        (Some(venue), None) => Some(venue.name.clone()),
        (None, Some(room)) => Some(room.clone()),
        (None, None) => None,
    }
}

/// What makes the SEQUENCE rise (RFC 5546 §2.1.4): start, end and status.
pub fn sequence_signature(event: &Event) -> String {
    let span = span_of(event);
    let status = match event.status {
        EventStatus::Confirmed => "CONFIRMED",
        EventStatus::Cancelled => "CANCELLED",
    };
    match (span, &event.schedule) {
        (Some(span), _) => format!("{}/{}/{status}", span.start, span.end),
        (None, Schedule::Ongoing) => format!("ongoing/{status}"),
        (None, _) => format!("none/{status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Hours, Venue, Zone};
    use jiff::civil::{date, time};

    fn geneva_meeting() -> Event {
        let zone = Zone::named("Europe/Zurich").unwrap();
        Event {
            id: "geneva-consultations".into(),
            roadmap: "r".into(),
            title: "Consultations in Geneva, with Member States; and I.O.".into(),
            kind: "meeting".into(),
            schedule: Schedule::Days {
                first: date(2016, 12, 1),
                last: date(2016, 12, 2),
                hours: Some(Hours {
                    start: time(15, 0, 0, 0),
                    end: Some(time(18, 0, 0, 0)),
                    part_of_day: None,
                }),
            },
            venue: Some(Venue {
                id: "geneva".into(),
                name: "Palais des Nations".into(),
                city: "Geneva".into(),
                zone: zone.clone(),
            }),
            room: Some("Room XX".into()),
            note: None,
            links: vec![],
            zone,
            lists: vec![],
            leads: None,
            template: "reminder".into(),
            status: EventStatus::Confirmed,
            past: false,
        }
    }

    #[test]
    fn parameters_are_quoted_strings_with_rfc_6868_escapes() {
        assert_eq!(
            quoted_parameter("\"Amina\";PARTSTAT=ACCEPTED;X-EVIL=\"1\""),
            "\"^'Amina^';PARTSTAT=ACCEPTED;X-EVIL=^'1^'\""
        );
        assert_eq!(
            quoted_parameter("Diallo, Amina \"Mina\" ^_^"),
            "\"Diallo, Amina ^'Mina^' ^^_^^\""
        );
    }

    #[test]
    fn lines_are_folded_at_75_octets_between_characters() {
        for length in 70..240 {
            for filler in ["a", "é", "老", "🦀"] {
                let line = format!("SUMMARY:{}", filler.repeat(length / filler.len()));
                let folded = fold(&format!("BEGIN:X\r\n{line}\r\nEND:X\r\n"));
                assert!(folded.ends_with("\r\n"));
                for physical in folded.split_terminator("\r\n") {
                    assert!(physical.len() <= LINE_OCTETS, "{physical:?}");
                }
                assert_eq!(
                    folded.replace("\r\n ", ""),
                    format!("BEGIN:X\r\n{line}\r\nEND:X\r\n")
                );
            }
        }
    }

    #[test]
    fn timed_events_are_in_utc_and_days_are_dates() {
        let event = geneva_meeting();
        let span = span_of(&event).unwrap();
        assert_eq!(
            (span.start.as_str(), span.end.as_str()),
            ("20161201T140000Z", "20161202T170000Z")
        );
        let mut deadline = event.clone();
        deadline.schedule = Schedule::Day {
            date: date(2017, 10, 31),
            hours: None,
        };
        let span = span_of(&deadline).unwrap();
        assert_eq!(
            (span.start.as_str(), span.end.as_str(), span.all_day),
            ("20171031", "20171101", true)
        );
        deadline.schedule = Schedule::Ongoing;
        assert!(span_of(&deadline).is_none());
    }

    #[test]
    fn a_snapshot_gives_the_event_back() {
        let event = geneva_meeting();
        let back = EventSnapshot::of(&event, true).to_event().unwrap();
        assert_eq!(back.schedule, event.schedule);
        assert_eq!(sequence_signature(&back), sequence_signature(&event));
        assert_eq!(location(&back), location(&event));
    }

    #[test]
    fn the_signature_ignores_the_title_and_place_but_not_the_time() {
        let event = geneva_meeting();
        let mut renamed = event.clone();
        renamed.title = "Another title".into();
        renamed.room = None;
        assert_eq!(sequence_signature(&event), sequence_signature(&renamed));
        let mut moved = event.clone();
        moved.schedule = Schedule::Day {
            date: date(2016, 12, 5),
            hours: None,
        };
        assert_ne!(sequence_signature(&event), sequence_signature(&moved));
        let mut cancelled = event;
        cancelled.status = EventStatus::Cancelled;
        assert!(sequence_signature(&cancelled).ends_with("CANCELLED"));
    }
}

/// Why a stored [`EventSnapshot`] does not read back.
#[derive(Debug)]
pub enum SnapshotError {
    /// It is not a snapshot's JSON.
    Json(serde_json::Error),
    /// A date, time or zone in it does not read back.
    Values,
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::Json(err) => write!(f, "it is not a snapshot of an event: {err}"),
            SnapshotError::Values => f.write_str("a date, time or zone in it does not read back"),
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotError::Json(err) => Some(err),
            SnapshotError::Values => None,
        }
    }
}

/// What herald remembers of an event it has put in calendars: enough to
/// say what changed, and to cancel it if it disappears from the
/// configuration. Stored as JSON in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventSnapshot {
    pub id: String,
    pub roadmap: String,
    pub title: String,
    pub kind: String,
    pub zone: String,
    pub venue: Option<(String, String)>,
    pub room: Option<String>,
    pub lists: Vec<String>,
    pub first: Option<String>,
    pub last: Option<String>,
    pub week: bool,
    pub start: Option<String>,
    pub end: Option<String>,
    pub part_of_day: Option<String>,
    pub cancelled: bool,
    /// Whether its roadmap announces changes (`notices`), remembered with
    /// the event so that removing a quiet roadmap stays quiet. Snapshots
    /// written before it was kept read as `true`, as their removal did.
    #[serde(default = "announced")]
    pub notices: bool,
}

/// The `notices` of a snapshot that does not say.
fn announced() -> bool {
    true
}

impl EventSnapshot {
    /// What to remember of `event`, whose roadmap has `notices` on or off.
    pub fn of(event: &Event, notices: bool) -> EventSnapshot {
        let hours = event.schedule.hours();
        EventSnapshot {
            id: event.id.clone(),
            roadmap: event.roadmap.clone(),
            title: event.title.clone(),
            kind: event.kind.clone(),
            zone: event.zone.name.clone(),
            venue: event.venue.as_ref().map(|v| (v.name.clone(), v.city.clone())),
            room: event.room.clone(),
            lists: event.lists.clone(),
            first: event.schedule.first_day().map(|d| d.to_string()),
            last: match event.schedule {
                Schedule::Days { last, .. } => Some(last.to_string()),
                _ => None,
            },
            week: matches!(event.schedule, Schedule::WeekOf { .. }),
            start: hours.map(|h| h.start.to_string()),
            end: hours.and_then(|h| h.end).map(|e| e.to_string()),
            part_of_day: hours.and_then(|h| h.part_of_day.clone()),
            cancelled: event.status == EventStatus::Cancelled,
            notices,
        }
    }

    /// The snapshot as the outbox stores it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a snapshot is strings and booleans, which always serialise")
    }

    /// The event a stored snapshot describes, or why it cannot be read.
    pub fn from_json(json: &str) -> Result<Event, SnapshotError> {
        Self::parse(json)?.to_event().ok_or(SnapshotError::Values)
    }

    /// A stored snapshot, or why it is not one.
    pub fn parse(json: &str) -> Result<EventSnapshot, SnapshotError> {
        serde_json::from_str(json).map_err(SnapshotError::Json)
    }

    /// The event as it was; `None` if the snapshot cannot be read back.
    pub fn to_event(&self) -> Option<Event> {
        let zone = crate::model::Zone::named(&self.zone).ok()?;
        let hours = match &self.start {
            Some(start) => Some(crate::model::Hours {
                start: start.parse().ok()?,
                end: self.end.as_ref().and_then(|e| e.parse().ok()),
                part_of_day: self.part_of_day.clone(),
            }),
            None => None,
        };
        let first: Option<Date> = self.first.as_ref().and_then(|d| d.parse().ok());
        let schedule = match (first, &self.last, self.week) {
            (None, _, _) => Schedule::Ongoing,
            (Some(first), _, true) => Schedule::WeekOf { first },
            (Some(first), Some(last), false) => Schedule::Days {
                first,
                last: last.parse().ok()?,
                hours,
            },
            (Some(date), None, false) => Schedule::Day { date, hours },
        };
        Some(Event {
            id: self.id.clone(),
            roadmap: self.roadmap.clone(),
            title: self.title.clone(),
            kind: self.kind.clone(),
            schedule,
            venue: self.venue.as_ref().map(|(name, city)| crate::model::Venue {
                id: String::new(),
                name: name.clone(),
                city: city.clone(),
                zone: zone.clone(),
            }),
            room: self.room.clone(),
            // Not remembered: a note or a link is not what calendars are
            // told changed (see `model::Notes`).
            note: None,
            links: Vec::new(),
            zone,
            lists: self.lists.clone(),
            leads: None,
            template: "reminder".to_owned(),
            status: if self.cancelled {
                EventStatus::Cancelled
            } else {
                EventStatus::Confirmed
            },
            past: false,
        })
    }
}
