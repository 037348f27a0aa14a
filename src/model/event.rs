//! Roadmap events and the forms of date the letters use.
//!
//! A letter says "December 5, from 15:00 to 18:00", "December 1 and 2",
//! "2 October (afternoon)", "Week of 23 October", "31 October" or "Ongoing";
//! [`Schedule`] has one variant for each of these shapes, and every event
//! carries the time zone its times are written in.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

use crate::model::{Lead, Link, Localized};

/// One item of a roadmap.
#[derive(Debug, Clone)]
pub struct Event {
    /// Unique across all roadmaps; stable, because sends are keyed by it.
    pub id: String,
    pub roadmap: String,
    pub title: String,
    /// "meeting", "deadline", "circulation", … (lead times can depend on it).
    pub kind: String,
    pub schedule: Schedule,
    pub venue: Option<Venue>,
    /// A room or any detail of place that is not a known venue.
    pub room: Option<String>,
    /// A word to its readers, and links (see [`crate::model::Notes`]).
    pub note: Option<Localized>,
    pub links: Vec<Link>,
    pub zone: Zone,
    /// The lists whose focal points are reminded of it.
    pub lists: Vec<String>,
    /// Lead times set on the event (or its roadmap) itself.
    pub leads: Option<Vec<Lead>>,
    /// The template family of its reminders ("reminder" unless set).
    pub template: String,
    pub status: EventStatus,
    /// Marked by `import-roadmap` for rows dated before their letter.
    pub past: bool,
}

/// Whether an event still takes place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    Confirmed,
    Cancelled,
}

/// When an event happens, in the forms roadmaps use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Unscheduled ("Ongoing"): listed in letters, never reminded of.
    Ongoing,
    /// One day, with or without hours ("31 October", "December 5, from 15:00 to 18:00").
    Day { date: Date, hours: Option<Hours> },
    /// Several consecutive days ("December 1 and 2", "20-22 February"),
    /// with the daily hours when the letter gives them.
    Days {
        first: Date,
        last: Date,
        hours: Option<Hours>,
    },
    /// "Week of 23 October": the week beginning on that day.
    WeekOf { first: Date },
}

/// The hours of a day's meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hours {
    pub start: Time,
    pub end: Option<Time>,
    /// Set when the roadmap named a part of the day ("afternoon") rather than hours.
    pub part_of_day: Option<String>,
}

/// A known place of meeting, from the `[venues]` table.
#[derive(Debug, Clone)]
pub struct Venue {
    pub id: String,
    pub name: String,
    /// Used to name the time zone to readers ("Geneva time").
    pub city: String,
    pub zone: Zone,
}

/// A time zone together with the name the operator wrote.
#[derive(Debug, Clone)]
pub struct Zone {
    pub name: String,
    pub tz: TimeZone,
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Zone {
    /// Looks a zone up in the system's tz database (or jiff's bundled copy).
    pub fn named(name: &str) -> Result<Zone, jiff::Error> {
        let tz = jiff::tz::db().get(name)?;
        Ok(Zone {
            name: name.to_owned(),
            tz,
        })
    }

    /// A wall-clock time in this zone. Times in a DST gap move forward and
    /// ambiguous times take the earlier instant, as RFC 5545 says.
    pub fn at(&self, date: Date, time: Time) -> ZonedDateTime {
        let civil = DateTime::from_parts(date, time);
        match civil.to_zoned_datetime(self.tz.clone()) {
            Ok(zoned) => zoned,
            // Only out-of-range years fail; those are rejected at load time,
            // so fall back to UTC rather than panic.
            Err(_) => Timestamp::UNIX_EPOCH.to_zoned_datetime(self.tz.clone()),
        }
    }
}

impl Schedule {
    /// The first day, if the event is dated.
    pub fn first_day(&self) -> Option<Date> {
        match self {
            Schedule::Ongoing => None,
            Schedule::Day { date, .. } => Some(*date),
            Schedule::Days { first, .. } | Schedule::WeekOf { first } => Some(*first),
        }
    }

    /// The last day, if the event is dated.
    pub fn last_day(&self) -> Option<Date> {
        match self {
            Schedule::Ongoing => None,
            Schedule::Day { date, .. } => Some(*date),
            Schedule::Days { last, .. } => Some(*last),
            Schedule::WeekOf { first } => first.checked_add(jiff::Span::new().days(6)).ok(),
        }
    }

    /// The hours, when the event has them.
    pub fn hours(&self) -> Option<&Hours> {
        match self {
            Schedule::Day { hours, .. } | Schedule::Days { hours, .. } => hours.as_ref(),
            Schedule::Ongoing | Schedule::WeekOf { .. } => None,
        }
    }
}

impl Event {
    /// The instant reminders count back from: the start of the event, or, for
    /// an event without hours, its first day at `all_day_at`. `None` for
    /// unscheduled events, which are never reminded of.
    pub fn anchor(&self, all_day_at: Time) -> Option<ZonedDateTime> {
        let first = self.schedule.first_day()?;
        let time = self.schedule.hours().map_or(all_day_at, |hours| hours.start);
        Some(self.zone.at(first, time))
    }

    /// The start and end instants of a timed event (the first day's hours
    /// for a multi-day event); `None` when the event has no hours.
    pub fn timed_span(&self) -> Option<(ZonedDateTime, Option<ZonedDateTime>)> {
        let first = self.schedule.first_day()?;
        let hours = self.schedule.hours()?;
        let start = self.zone.at(first, hours.start);
        let end = hours.end.map(|end| self.zone.at(first, end));
        Some((start, end))
    }

    /// The name readers know the event's time zone by: the venue's city
    /// ("Geneva", though the zone is Europe/Zurich), else the zone's own city.
    pub fn zone_city(&self) -> String {
        match &self.venue {
            Some(venue) if venue.zone == self.zone => venue.city.clone(),
            _ => city_of_zone(&self.zone.name),
        }
    }
}

/// "America/New_York" -> "New York".
pub fn city_of_zone(name: &str) -> String {
    name.rsplit('/').next().unwrap_or(name).replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};

    fn event(zone: &str, schedule: Schedule) -> Event {
        Event {
            id: "e".into(),
            roadmap: "r".into(),
            title: "t".into(),
            kind: "meeting".into(),
            schedule,
            venue: None,
            room: None,
            note: None,
            links: vec![],
            zone: Zone::named(zone).unwrap(),
            lists: vec![],
            leads: None,
            template: "reminder".into(),
            status: EventStatus::Confirmed,
            past: false,
        }
    }

    #[test]
    fn anchor_is_the_start_in_the_event_zone() {
        let e = event(
            "Europe/Zurich",
            Schedule::Day {
                date: date(2016, 12, 1),
                hours: Some(Hours {
                    start: time(15, 0, 0, 0),
                    end: None,
                    part_of_day: None,
                }),
            },
        );
        let anchor = e.anchor(time(9, 0, 0, 0)).unwrap();
        assert_eq!(anchor.to_string(), "2016-12-01T15:00:00+01:00[Europe/Zurich]");
    }

    #[test]
    fn untimed_events_anchor_at_the_all_day_time_and_ongoing_never() {
        let e = event(
            "America/New_York",
            Schedule::WeekOf {
                first: date(2017, 10, 23),
            },
        );
        assert_eq!(
            e.anchor(time(9, 0, 0, 0)).unwrap().to_string(),
            "2017-10-23T09:00:00-04:00[America/New_York]"
        );
        assert_eq!(e.schedule.last_day(), Some(date(2017, 10, 29)));
        assert!(event("UTC", Schedule::Ongoing).anchor(time(9, 0, 0, 0)).is_none());
    }

    #[test]
    fn zone_city_names_the_city_not_the_zone() {
        assert_eq!(city_of_zone("America/New_York"), "New York");
        let mut e = event("Europe/Zurich", Schedule::Ongoing);
        e.venue = Some(Venue {
            id: "geneva".into(),
            name: "Palais des Nations".into(),
            city: "Geneva".into(),
            zone: Zone::named("Europe/Zurich").unwrap(),
        });
        assert_eq!(e.zone_city(), "Geneva");
    }
}
