//! The planner: (model, window) -> every send, due instant and recipient.
//!
//! This is the one source of truth for what herald will send. It is pure:
//! it reads no file and no clock (the window is a parameter), and the same
//! model always gives the same sends in the same order.
//!
//! Lead times are resolved, most specific first, from: the focal point; the
//! lists through which the focal point gets the event (all of their leads
//! together); the event (or its roadmap); the event's kind in herald.toml;
//! the default leads in herald.toml.
//!
//! A plan can hold millions of sends (10,000 focal points, 500 events and
//! three leads is 2.2 million), so it is made in [`Slot`]s: one event at
//! one lead time, or one letter, whose recipients are all due at the same
//! instant. A window is cut at the slot level, without visiting a single
//! recipient of the slots outside it, and a slot's recipients are made only
//! when asked for, so callers can stream a plan of any size.

use std::collections::{BTreeSet, HashMap};

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

/// Sends that all go out at the same instant: the reminders of one event at
/// one lead time, or one letter.
#[derive(Debug, Clone)]
pub struct Slot<'m> {
    pub due: ZonedDateTime,
    pub source: Source<'m>,
}

/// What a slot's sends are about.
#[derive(Debug, Clone, Copy)]
pub enum Source<'m> {
    Reminder { event: &'m Event, lead: &'m Lead },
    Letter(&'m Letter),
}

impl Slot<'_> {
    /// What every key of the slot starts with: `reminder/<event>/<lead>/`
    /// or `letter/<letter>/`. Ids and leads hold no `/`, so no slot's
    /// prefix starts another's, and ordering slots by prefix then their
    /// recipients by address orders the sends by key.
    pub fn key_prefix(&self) -> String {
        match self.source {
            Source::Reminder { event, lead } => format!("reminder/{}/{lead}/", event.id),
            Source::Letter(letter) => format!("letter/{}/", letter.id),
        }
    }
}

/// One recipient of a slot.
#[derive(Debug, Clone, Copy)]
pub struct Recipient<'m> {
    pub focal_point: &'m FocalPoint,
    /// The list through which they get it.
    pub list: &'m str,
    /// Where the focal point is in `model.focal_points()`.
    pub index: usize,
}

/// A model ready to be planned: what every slot needs, found once.
///
/// A slot has thousands of recipients and a plan thousands of slots, so the
/// work per recipient is kept to a few lookups by index: no string is
/// compared or made for a recipient until a send is made of it.
pub struct Planner<'m> {
    model: &'m Model,
    /// Each list's focal points, as indices into `model.focal_points()`, in
    /// key order, so that a slot's recipients come out (nearly) sorted.
    members: HashMap<&'m str, Vec<usize>>,
    /// Each focal point's address as keys have it (lower case).
    key_addresses: Vec<String>,
    /// Each focal point's place in the order of `key_addresses`.
    rank: Vec<usize>,
    /// Whether two focal points have the same key address. `config::load`
    /// refuses that, so recipients are told apart by index alone, unless a
    /// model made otherwise has such twins.
    twins: bool,
    /// Every lead any focal point has of its own: with the event's and its
    /// lists', the leads a slot can have.
    own_leads: Vec<&'m Lead>,
}

impl<'m> Planner<'m> {
    pub fn new(model: &'m Model) -> Planner<'m> {
        let mut members: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut own_leads: Vec<&Lead> = Vec::new();
        let key_addresses: Vec<String> = model.focal_points().iter().map(key_address).collect();
        let mut by_key: Vec<usize> = (0..key_addresses.len()).collect();
        by_key.sort_by(|&a, &b| key_addresses[a].cmp(&key_addresses[b]));
        let twins = by_key
            .windows(2)
            .any(|pair| key_addresses[pair[0]] == key_addresses[pair[1]]);
        let mut rank = vec![0; by_key.len()];
        for (place, &index) in by_key.iter().enumerate() {
            rank[index] = place;
        }
        for (index, focal_point) in model.focal_points().iter().enumerate() {
            for list in &focal_point.lists {
                let list_members = members.entry(list.as_str()).or_default();
                // A list named twice on one line counts once.
                if list_members.last() != Some(&index) {
                    list_members.push(index);
                }
            }
            for lead in focal_point.leads.iter().flatten() {
                if !own_leads.contains(&lead) {
                    own_leads.push(lead);
                }
            }
        }
        for list_members in members.values_mut() {
            list_members.sort_by_key(|&index| rank[index]);
        }
        Planner {
            model,
            members,
            key_addresses,
            rank,
            twins,
            own_leads,
        }
    }

    /// The slots with sends possibly due in `window`, ordered by due
    /// instant, then key prefix. A slot can turn out to have no recipient
    /// (a lead only some focal points have, none of them on the event's
    /// lists).
    pub fn slots(&self, window: Window) -> Vec<Slot<'m>> {
        let model = self.model;
        let mut slots = Vec::new();
        for event in model.roadmaps().iter().flat_map(|roadmap| &roadmap.events) {
            if event.status == EventStatus::Cancelled {
                continue;
            }
            let Some(anchor) = event.anchor(model.settings().reminders.all_day_at) else {
                continue;
            };
            for lead in self.possible_leads(event) {
                if let Some(due) = lead.before(&anchor)
                    && window.contains(due.timestamp())
                {
                    slots.push(Slot {
                        due,
                        source: Source::Reminder { event, lead },
                    });
                }
            }
        }
        for letter in model.letters() {
            if let Some(due) = &letter.send_at
                && window.contains(due.timestamp())
            {
                slots.push(Slot {
                    due: due.clone(),
                    source: Source::Letter(letter),
                });
            }
        }
        let mut keyed: Vec<(Timestamp, String, Slot<'m>)> = slots
            .into_iter()
            .map(|slot| (slot.due.timestamp(), slot.key_prefix(), slot))
            .collect();
        keyed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        keyed.into_iter().map(|(_, _, slot)| slot).collect()
    }

    /// The leads any recipient of `event` can have, each once.
    fn possible_leads(&self, event: &'m Event) -> Vec<&'m Lead> {
        let mut leads: Vec<&Lead> = policy_leads(self.model, event).iter().collect();
        let from_lists = event
            .lists
            .iter()
            .filter_map(|list| self.model.lists().get(list))
            .flat_map(|list| list.leads.iter().flatten());
        for lead in from_lists.chain(self.own_leads.iter().copied()) {
            if !leads.contains(&lead) {
                leads.push(lead);
            }
        }
        leads
    }

    /// The recipients of `slot`, ordered by the address in their key, each
    /// address once.
    pub fn recipients(&self, slot: &Slot<'m>) -> Vec<Recipient<'m>> {
        let mut recipients = match slot.source {
            Source::Reminder { event, lead } => {
                let lists_have_leads = event
                    .lists
                    .iter()
                    .filter_map(|list| self.model.lists().get(list))
                    .any(|list| list.leads.as_ref().is_some_and(|leads| !leads.is_empty()));
                let policy_has = policy_leads(self.model, event).contains(lead);
                self.members_of(&event.lists)
                    .filter(|recipient| match &recipient.focal_point.leads {
                        Some(own) => own.contains(lead),
                        // The common case, without a look at the lists.
                        None if !lists_have_leads => policy_has,
                        None => gets_lead(self.model, event, recipient.focal_point, lead),
                    })
                    .collect::<Vec<_>>()
            }
            Source::Letter(letter) => self.members_of(&letter.lists).collect(),
        };
        // The members of each list come in key order: this only merges the
        // lists of the slot (stable: a focal point on two of them keeps the
        // first).
        recipients.sort_by_key(|recipient| self.rank[recipient.index]);
        // A focal point on two of the lists, or twins (one key, one send).
        if self.twins {
            recipients.dedup_by(|a, b| self.key_addresses[a.index] == self.key_addresses[b.index]);
        } else {
            recipients.dedup_by_key(|recipient| recipient.index);
        }
        recipients
    }

    /// The address of `recipient` as its send's key has it.
    pub fn key_address(&self, recipient: &Recipient<'_>) -> &str {
        &self.key_addresses[recipient.index]
    }

    /// The sends of `slot`, in key order.
    pub fn sends(&self, slot: &Slot<'m>) -> impl Iterator<Item = PlannedSend> + use<'m, '_> {
        let due = slot.due.clone();
        let source = slot.source;
        self.recipients(slot)
            .into_iter()
            .map(move |recipient| match source {
                Source::Reminder { event, lead } => {
                    let key_address = self.key_address(&recipient);
                    reminder_send(
                        event,
                        lead,
                        recipient.focal_point,
                        recipient.list,
                        key_address,
                        due.clone(),
                    )
                }
                Source::Letter(letter) => {
                    letter_send(letter, recipient.focal_point, recipient.list, due.clone())
                }
            })
    }

    /// Every send due in `window`, ordered by due instant, then key.
    pub fn plan(&self, window: Window) -> Vec<PlannedSend> {
        self.slots(window)
            .iter()
            .flat_map(|slot| self.sends(slot))
            .collect()
    }

    /// The focal points on any of `lists`, with the list through which
    /// they get it; one on several of them comes once for each, first for
    /// the first of them.
    fn members_of(&self, lists: &'m [String]) -> impl Iterator<Item = Recipient<'m>> + use<'m, '_> {
        lists.iter().flat_map(move |list| {
            self.members
                .get(list.as_str())
                .into_iter()
                .flatten()
                .map(move |&index| Recipient {
                    focal_point: &self.model.focal_points()[index],
                    list,
                    index,
                })
        })
    }

    /// The send that an outbox entry with this key stands for in the
    /// current model, wherever its due instant now is; `None` when the
    /// model no longer makes it.
    pub fn send_for(
        &self,
        kind: &str,
        subject: &str,
        lead: Option<&str>,
        recipient: &str,
    ) -> Option<PlannedSend> {
        let model = self.model;
        let focal_point = model.focal_point(recipient)?;
        let key_address = key_address(focal_point);
        let on_list = |lists: &'m [String]| lists.iter().find(|list| focal_point.lists.contains(list));
        match kind {
            "reminder" => {
                let (_, event) = model.event(subject)?;
                if event.status == EventStatus::Cancelled {
                    return None;
                }
                let list = on_list(&event.lists)?;
                let lead = leads_for(model, event, focal_point)
                    .into_iter()
                    .find(|l| Some(l.as_str()) == lead)?;
                let due = lead.before(&event.anchor(model.settings().reminders.all_day_at)?)?;
                Some(reminder_send(event, lead, focal_point, list, &key_address, due))
            }
            "letter" => {
                let letter = model.letter(subject)?;
                let list = on_list(&letter.lists)?;
                Some(letter_send(letter, focal_point, list, letter.send_at.clone()?))
            }
            _ => None,
        }
    }
}

/// Every send due in `window`, ordered by due instant, then key.
pub fn plan(model: &Model, window: Window) -> Vec<PlannedSend> {
    Planner::new(model).plan(window)
}

fn reminder_send(
    event: &Event,
    lead: &Lead,
    focal_point: &FocalPoint,
    list: &str,
    key_address: &str,
    due: ZonedDateTime,
) -> PlannedSend {
    PlannedSend {
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
        key: SendKey(format!("reminder/{}/{lead}/{key_address}", event.id)),
    }
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

/// The lead times that apply to `focal_point` for `event` (see the module
/// docs for the order).
pub fn leads_for<'a>(model: &'a Model, event: &'a Event, focal_point: &'a FocalPoint) -> Vec<&'a Lead> {
    if let Some(leads) = &focal_point.leads {
        return leads.iter().collect();
    }
    let mut from_lists: Vec<&Lead> = Vec::new();
    for leads in list_leads(model, event, focal_point) {
        for lead in leads {
            if !from_lists.contains(&lead) {
                from_lists.push(lead);
            }
        }
    }
    if !from_lists.is_empty() {
        return from_lists;
    }
    policy_leads(model, event).iter().collect()
}

/// Whether `lead` is among [`leads_for`], without collecting them: the
/// planner asks this once per recipient of every slot.
fn gets_lead(model: &Model, event: &Event, focal_point: &FocalPoint, lead: &Lead) -> bool {
    if let Some(own) = &focal_point.leads {
        return own.contains(lead);
    }
    let mut lists_have_leads = false;
    for leads in list_leads(model, event, focal_point) {
        lists_have_leads |= !leads.is_empty();
        if leads.contains(lead) {
            return true;
        }
    }
    !lists_have_leads && policy_leads(model, event).contains(lead)
}

/// The leads of the lists through which `focal_point` gets `event`.
fn list_leads<'a>(
    model: &'a Model,
    event: &'a Event,
    focal_point: &'a FocalPoint,
) -> impl Iterator<Item = &'a [Lead]> {
    event
        .lists
        .iter()
        .filter(|list| focal_point.lists.contains(list))
        .filter_map(|list| model.lists().get(list)?.leads.as_deref())
}

/// The event's leads when neither the focal point nor a list sets them.
fn policy_leads<'a>(model: &'a Model, event: &'a Event) -> &'a [Lead] {
    let policy = &model.settings().reminders;
    event
        .leads
        .as_ref()
        .or_else(|| policy.kinds.get(&event.kind))
        .unwrap_or(&policy.leads)
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
