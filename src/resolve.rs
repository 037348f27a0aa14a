//! A planned send (from the plan, or read back from the outbox) -> a
//! [`Resolved`] send: its focal point, list, event and lead, or letter,
//! found in the model once, with the invitation's SEQUENCE.
//!
//! Rendering and the message builder take a `Resolved` and look nothing up
//! again. A send that the model no longer makes does not resolve: the
//! [`Gone`] error says why, in words for the outbox's record.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::calendar::{EventSnapshot, SnapshotError};
use crate::key::SendKind;
use crate::model::{AttachTo, Attachment, Event, FocalPoint, Lead, Letter, List, Model, Roadmap};
use crate::outbox::CalendarRow;
use crate::plan::{EventLeads, Found, Gone, PlannedSend, find};

/// One send with everything it is about, borrowed from the model (or, for
/// a notice about a removed event, rebuilt from what calendars were told).
#[derive(Debug, Clone)]
pub struct Resolved<'a> {
    pub send: PlannedSend,
    pub focal_point: &'a FocalPoint,
    /// The list named in `send.list` (for List-Id), if it still exists.
    pub list: Option<&'a List>,
    pub about: About<'a>,
    /// The files the message carries: a letter's, an event's on the
    /// reminders its `attach_to` says, none on a notice.
    pub attachments: &'a [Attachment],
}

/// What a resolved send is about.
#[derive(Debug, Clone)]
pub enum About<'a> {
    Reminder {
        roadmap: &'a Roadmap,
        event: &'a Event,
        lead: &'a Lead,
        /// The SEQUENCE of the invitation a meeting's reminder carries.
        sequence: u32,
    },
    Letter(&'a Letter),
    Notice {
        /// The event as it is now, or as calendars last knew it when it
        /// was removed from the configuration.
        event: &'a Event,
        /// The event as calendars knew it before the change, if known.
        previous: Option<&'a Event>,
        cancel: bool,
        sequence: u32,
    },
}

impl Resolved<'_> {
    pub fn kind(&self) -> SendKind {
        self.send.kind()
    }

    /// The event the send is about (none for a letter).
    pub fn event(&self) -> Option<&Event> {
        match &self.about {
            About::Reminder { event, .. } => Some(event),
            About::Notice { event, .. } => Some(event),
            About::Letter(_) => None,
        }
    }
}

/// What herald has told calendars about each event (the outbox's calendar
/// rows), by event id: the SEQUENCE of invitations, and the snapshots that
/// notices about changed or removed events are rendered from, each read
/// back once, when a notice first needs it.
#[derive(Debug, Default)]
pub struct Calendars(HashMap<String, Told>);

#[derive(Debug)]
struct Told {
    row: CalendarRow,
    event: OnceLock<Result<Event, SnapshotError>>,
    previous: OnceLock<Option<Result<Event, SnapshotError>>>,
}

impl Calendars {
    pub fn new(rows: Vec<CalendarRow>) -> Calendars {
        Calendars(
            rows.into_iter()
                .map(|row| {
                    let told = Told {
                        row,
                        event: OnceLock::new(),
                        previous: OnceLock::new(),
                    };
                    (told.row.event.clone(), told)
                })
                .collect(),
        )
    }

    /// The current SEQUENCE of `event`'s invitation (0 before any change).
    pub fn sequence(&self, event: &str) -> u32 {
        self.0.get(event).map_or(0, |told| told.row.sequence)
    }

    pub fn row(&self, event: &str) -> Option<&CalendarRow> {
        self.0.get(event).map(|told| &told.row)
    }

    /// The event as calendars last knew it, or why that cannot be read.
    fn event(&self, id: &str) -> Option<Result<&Event, &SnapshotError>> {
        let told = self.0.get(id)?;
        let event = told
            .event
            .get_or_init(|| EventSnapshot::from_json(&told.row.snapshot));
        Some(event.as_ref())
    }

    /// The event as calendars knew it before its last change, if recorded.
    fn previous(&self, id: &str) -> Option<Result<&Event, &SnapshotError>> {
        let told = self.0.get(id)?;
        let previous = told
            .previous
            .get_or_init(|| told.row.previous.as_deref().map(EventSnapshot::from_json));
        Some(previous.as_ref()?.as_ref())
    }
}

/// Resolves `send` against `model`: everything it is about, or why the
/// model no longer makes it.
pub fn resolve<'a>(
    model: &'a Model,
    calendars: &'a Calendars,
    send: PlannedSend,
) -> Result<Resolved<'a>, Gone> {
    let found = find(model, &send.key, &send.to)?;
    let about = match found.about {
        Found::Reminder { roadmap, event, lead } => About::Reminder {
            roadmap,
            event,
            lead,
            sequence: calendars.sequence(&event.id),
        },
        Found::Letter(letter) => About::Letter(letter),
        Found::Notice => {
            let id = send.key.subject();
            let event = match (model.event(id), calendars.event(id)) {
                (Some((_, event)), _) => event,
                (None, Some(Ok(event))) => event,
                (None, Some(Err(why))) => {
                    return Err(Gone(format!(
                        "the event {id:?} was removed, and what calendars were told of it cannot be read: {why}"
                    )));
                }
                (None, None) => {
                    return Err(Gone(format!(
                        "the event {id:?} was removed, and herald has no record of what calendars were told"
                    )));
                }
            };
            let previous = match calendars.previous(id) {
                Some(Ok(previous)) => Some(previous),
                Some(Err(why)) => {
                    tracing::warn!(event = id, %why, "the event's earlier state cannot be read; the notice says only what it is now");
                    None
                }
                None => None,
            };
            About::Notice {
                event,
                previous,
                cancel: send.kind() == SendKind::Cancellation,
                sequence: calendars.sequence(id),
            }
        }
    };
    let attachments = match &about {
        About::Letter(letter) => &letter.attachments[..],
        About::Reminder { event, lead, .. } => match event.attach_to {
            AttachTo::All => &event.attachments[..],
            AttachTo::First if is_first(model, event, found.focal_point, lead) => &event.attachments[..],
            AttachTo::First => &[],
        },
        About::Notice { .. } => &[],
    };
    Ok(Resolved {
        list: model.lists().get(&send.list),
        focal_point: found.focal_point,
        send,
        about,
        attachments,
    })
}

/// Whether `lead` is the longest of the leads `focal_point` gets for
/// `event`: its first reminder. Leads are calendar spans ("1w", "7d",
/// "168h" can all differ across a change of daylight saving time), so
/// they are compared by the instant each falls at.
fn is_first(model: &Model, event: &Event, focal_point: &FocalPoint, lead: &Lead) -> bool {
    if event.attachments.is_empty() {
        return false;
    }
    let Some(anchor) = event.anchor(model.settings().reminders.all_day_at) else {
        return false;
    };
    let due = |lead: &Lead| lead.before(&anchor).map(|at| at.timestamp());
    let earliest = EventLeads::new(model, event)
        .of(focal_point)
        .into_iter()
        .filter_map(|lead| Some((due(lead)?, lead)))
        .min_by_key(|(at, _)| *at);
    earliest.is_some_and(|(_, first)| first == lead)
}
