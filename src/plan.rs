//! The planner: (model, window) -> every send, due instant and recipient.
//!
//! This is the one source of truth for what herald will send. It is a pure
//! function: it reads no file and no clock (the window is a parameter), and
//! the same model always gives the same sends in the same order.
//!
//! Lead times are resolved, most specific first, from: the focal point; the
//! lists through which the focal point gets the event (all of their leads
//! together); the event (or its roadmap); the event's kind in herald.toml;
//! the default leads in herald.toml.

use std::collections::BTreeSet;

use jiff::{Timestamp, ZonedDateTime};

use crate::model::{Event, EventStatus, FocalPoint, Lead, Letter, Model};

/// One message herald will send.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedSend {
    /// When it goes out, in the event's (or letter's) time zone.
    pub due: ZonedDateTime,
    pub subject: SendSubject,
    /// The recipient's address, as written in the list.
    pub to: String,
    /// The list through which the recipient gets it (for List-Id).
    pub list: String,
    /// The recipient's language; the renderer falls back from it.
    pub language: String,
    /// The template family ("reminder", "cover-letter").
    pub template: String,
    /// Stable identity: the same send has the same key in every plan.
    pub key: SendKey,
}

/// What a send is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendSubject {
    Reminder {
        roadmap: String,
        event: String,
        lead: String,
    },
    Letter {
        letter: String,
    },
    /// A change to an event (update) or its cancellation, with the new
    /// invitation; made by the daemon from what calendars were told, never
    /// by the planner.
    Notice {
        event: String,
        cancel: bool,
    },
}

/// The identity of a send, stable across plans, restarts and reloads:
/// `reminder/<event>/<lead>/<address>` or `letter/<letter>/<address>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SendKey(pub String);

impl std::fmt::Display for SendKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl SendSubject {
    pub fn kind(&self) -> &'static str {
        match self {
            SendSubject::Reminder { .. } => "reminder",
            SendSubject::Letter { .. } => "letter",
            SendSubject::Notice { cancel: false, .. } => "update",
            SendSubject::Notice { cancel: true, .. } => "cancellation",
        }
    }
}

/// The half-open interval of due instants to plan: `[from, until)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl Window {
    pub fn contains(&self, at: Timestamp) -> bool {
        self.from.is_none_or(|from| at >= from) && self.until.is_none_or(|until| at < until)
    }
}

/// Every send due in `window`, ordered by due instant, then key.
pub fn plan(model: &Model, window: Window) -> Vec<PlannedSend> {
    let mut sends = Vec::new();
    for_each_send(model, window, |send| sends.push(send));
    sends.sort_by(|a, b| {
        a.due
            .timestamp()
            .cmp(&b.due.timestamp())
            .then_with(|| a.key.cmp(&b.key))
    });
    sends.dedup_by(|a, b| a.key == b.key);
    sends
}

/// The send of `letter` to `focal_point` (through `list`) at `due`: the
/// same key whether it goes out at its `send_at` or on demand.
pub fn letter_send(letter: &Letter, focal_point: &FocalPoint, list: &str, due: ZonedDateTime) -> PlannedSend {
    PlannedSend {
        due,
        subject: SendSubject::Letter {
            letter: letter.id.clone(),
        },
        to: focal_point.email.to_string(),
        list: list.to_owned(),
        language: focal_point.language.clone(),
        template: letter.template.clone(),
        key: SendKey(format!("letter/{}/{}", letter.id, key_address(focal_point))),
    }
}

/// Every send due in `window`, one at a time and in no particular order,
/// without keeping them: for counting or streaming large plans.
pub fn for_each_send(model: &Model, window: Window, mut f: impl FnMut(PlannedSend)) {
    for roadmap in &model.roadmaps {
        for event in &roadmap.events {
            plan_event(model, event, window, &mut f);
        }
    }
    for letter in &model.letters {
        let Some(due) = &letter.send_at else { continue };
        if !window.contains(due.timestamp()) {
            continue;
        }
        for (focal_point, list) in model.members_of(&letter.lists) {
            f(letter_send(letter, focal_point, list, due.clone()));
        }
    }
}

fn plan_event(model: &Model, event: &Event, window: Window, f: &mut impl FnMut(PlannedSend)) {
    if event.status == EventStatus::Cancelled {
        return;
    }
    let Some(anchor) = event.anchor(model.settings.reminders.all_day_at) else {
        return;
    };
    for (focal_point, list) in model.members_of(&event.lists) {
        for lead in leads_for(model, event, focal_point) {
            let Some(due) = lead.before(&anchor) else { continue };
            if !window.contains(due.timestamp()) {
                continue;
            }
            f(PlannedSend {
                due,
                subject: SendSubject::Reminder {
                    roadmap: event.roadmap.clone(),
                    event: event.id.clone(),
                    lead: lead.as_str().to_owned(),
                },
                to: focal_point.email.to_string(),
                list: list.to_owned(),
                language: focal_point.language.clone(),
                template: event.template.clone(),
                key: SendKey(format!(
                    "reminder/{}/{}/{}",
                    event.id,
                    lead,
                    key_address(focal_point)
                )),
            });
        }
    }
}

/// The lead times that apply to `focal_point` for `event` (see the module
/// docs for the order).
pub fn leads_for<'a>(model: &'a Model, event: &'a Event, focal_point: &'a FocalPoint) -> Vec<&'a Lead> {
    if let Some(leads) = &focal_point.leads {
        return leads.iter().collect();
    }
    let mut from_lists: Vec<&Lead> = Vec::new();
    for list_id in event.lists.iter().filter(|l| focal_point.lists.contains(l)) {
        if let Some(leads) = model.lists.get(list_id).and_then(|list| list.leads.as_ref()) {
            for lead in leads {
                if !from_lists.contains(&lead) {
                    from_lists.push(lead);
                }
            }
        }
    }
    if !from_lists.is_empty() {
        return from_lists;
    }
    let policy = &model.settings.reminders;
    event
        .leads
        .as_ref()
        .or_else(|| policy.kinds.get(&event.kind))
        .unwrap_or(&policy.leads)
        .iter()
        .collect()
}

/// Addresses compare without regard to case; the key uses the lowercase form
/// so a change of case in the list does not make a new send.
fn key_address(focal_point: &FocalPoint) -> String {
    focal_point.email.to_string().to_lowercase()
}

/// The distinct recipients of a plan, for summaries.
pub fn recipients(sends: &[PlannedSend]) -> BTreeSet<&str> {
    sends.iter().map(|send| send.to.as_str()).collect()
}
