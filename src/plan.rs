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

use std::collections::HashMap;
use std::fmt;

use jiff::{Timestamp, ZonedDateTime};

use crate::key::{AddressKey, KeyPrefix, SendKey, SendKind, Urgency};
use crate::model::{Event, EventStatus, FocalPoint, Lead, Letter, Model, Roadmap};

/// One message herald will send: a reminder or a letter made by the
/// planner, or an update or cancellation notice made by the notice logic
/// (`scheduler::notices`) through [`Planner::notices`]. What it is about is
/// in its key; [`crate::resolve`] finds that in the model.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedSend {
    /// Stable identity: the same send has the same key in every plan.
    pub key: SendKey,
    /// When it goes out, in the event's (or letter's) time zone.
    pub due: ZonedDateTime,
    /// The recipient's address, as written in the list.
    pub to: String,
    /// The list through which the recipient gets it (for List-Id).
    pub list: String,
    /// The recipient's language; the renderer falls back from it.
    pub language: String,
    /// The template family ("reminder", "cover-letter", "update", …).
    pub template: String,
}

impl PlannedSend {
    pub fn kind(&self) -> SendKind {
        self.key.kind()
    }

    /// The send of the slot with `prefix` to `recipient`.
    fn new(
        prefix: &KeyPrefix,
        recipient: Recipient<'_>,
        address: &AddressKey,
        template: &str,
        due: ZonedDateTime,
    ) -> PlannedSend {
        PlannedSend {
            key: prefix.key(address),
            due,
            to: recipient.focal_point.email.to_string(),
            list: recipient.list.to_owned(),
            language: recipient.focal_point.language.clone(),
            template: template.to_owned(),
        }
    }
}

/// Why the model no longer makes a send, in words for the operator and the
/// outbox's record ("the event \"x\" was cancelled").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gone(pub String);

impl fmt::Display for Gone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Gone {}

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
    /// What every key of the slot starts with (see [`KeyPrefix`]).
    pub fn key_prefix(&self) -> KeyPrefix {
        match self.source {
            Source::Reminder { event, lead } => KeyPrefix::reminder(&event.id, lead.as_str()),
            Source::Letter(letter) => KeyPrefix::letter(&letter.id),
        }
    }

    pub fn kind(&self) -> SendKind {
        match self.source {
            Source::Reminder { .. } => SendKind::Reminder,
            Source::Letter(_) => SendKind::Letter,
        }
    }

    /// The template family of the slot's sends.
    pub fn template(&self) -> &str {
        match self.source {
            Source::Reminder { event, .. } => &event.template,
            Source::Letter(letter) => &letter.template,
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

/// The lead times of one event, resolved for any of its recipients: the
/// one place that says which leads a focal point gets.
///
/// Most specific first: the focal point's own leads; else the leads of the
/// event's lists the focal point is on (all of them together); else the
/// event's (or its roadmap's); else its kind's in herald.toml; else the
/// default in herald.toml.
pub struct EventLeads<'m> {
    /// The event's leads when neither the focal point nor a list sets them.
    policy: &'m [Lead],
    /// The event's lists that set leads of their own, with those leads.
    lists: Vec<(&'m str, &'m [Lead])>,
}

impl<'m> EventLeads<'m> {
    pub fn new(model: &'m Model, event: &'m Event) -> EventLeads<'m> {
        let policy = &model.settings().reminders;
        let policy = event
            .leads
            .as_ref()
            .or_else(|| policy.kinds.get(&event.kind))
            .unwrap_or(&policy.leads);
        let lists = event
            .lists
            .iter()
            .filter_map(|id| {
                let leads = model.lists().get(id)?.leads.as_deref()?;
                Some((id.as_str(), leads))
            })
            .collect();
        EventLeads { policy, lists }
    }

    /// The lists' leads that apply to `focal_point`, if any list sets any.
    fn lists_leads_for<'a>(&'a self, focal_point: &'a FocalPoint) -> impl Iterator<Item = &'m [Lead]> + 'a {
        self.lists
            .iter()
            .filter(|(list, _)| focal_point.lists.iter().any(|l| l == list))
            .map(|(_, leads)| *leads)
    }

    /// The leads `focal_point` gets, each once.
    pub fn of(&self, focal_point: &'m FocalPoint) -> Vec<&'m Lead> {
        if let Some(own) = &focal_point.leads {
            return own.iter().collect();
        }
        let mut from_lists: Vec<&Lead> = Vec::new();
        for lead in self.lists_leads_for(focal_point).flatten() {
            if !from_lists.contains(&lead) {
                from_lists.push(lead);
            }
        }
        if from_lists.is_empty() {
            self.policy.iter().collect()
        } else {
            from_lists
        }
    }

    /// Whether `focal_point` gets `lead`: [`EventLeads::of`] without
    /// collecting, since the planner asks it of every recipient of a slot.
    pub fn gives(&self, focal_point: &FocalPoint, lead: &Lead) -> bool {
        if let Some(own) = &focal_point.leads {
            return own.contains(lead);
        }
        // The common case: no list sets leads, so no look at the lists.
        if self.lists.is_empty() {
            return self.policy.contains(lead);
        }
        let mut lists_set_leads = false;
        for leads in self.lists_leads_for(focal_point) {
            lists_set_leads |= !leads.is_empty();
            if leads.contains(lead) {
                return true;
            }
        }
        !lists_set_leads && self.policy.contains(lead)
    }

    /// Every lead the event's lists or policy can give (the focal points'
    /// own come on top).
    fn possible(&self) -> impl Iterator<Item = &'m Lead> + '_ {
        self.policy
            .iter()
            .chain(self.lists.iter().flat_map(|(_, leads)| leads.iter()))
    }
}

/// A model ready to be planned: what every slot needs, found once.
///
/// A slot has thousands of recipients and a plan thousands of slots, so the
/// work per recipient is kept to a few lookups by index: no string is
/// compared or made for a recipient until a send is made of it.
pub struct Planner<'m> {
    model: &'m Model,
    /// Each list's focal points, as indices into `model.focal_points()`,
    /// in key order, so that a slot's recipients come out (nearly) sorted.
    members: HashMap<&'m str, Vec<usize>>,
    /// Each focal point's address as keys have it.
    key_addresses: Vec<AddressKey>,
    /// Each focal point's place in the order of `key_addresses`.
    rank: Vec<usize>,
    /// Every lead any focal point has of its own: with the event's and its
    /// lists', the leads a slot can have.
    own_leads: Vec<&'m Lead>,
}

impl<'m> Planner<'m> {
    pub fn new(model: &'m Model) -> Planner<'m> {
        let mut members: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut own_leads: Vec<&Lead> = Vec::new();
        let key_addresses: Vec<AddressKey> = model
            .focal_points()
            .iter()
            .map(|fp| AddressKey::of(fp.email.as_ref()))
            .collect();
        let mut by_key: Vec<usize> = (0..key_addresses.len()).collect();
        by_key.sort_by(|&a, &b| key_addresses[a].cmp(&key_addresses[b]));
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
            own_leads,
        }
    }

    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// The slots with sends possibly due in `window`, ordered by due
    /// instant, then key prefix. A slot can turn out to have no recipient
    /// (a lead only some focal points have, none of them on the event's
    /// lists).
    pub fn slots(&self, window: Window) -> Vec<Slot<'m>> {
        let model = self.model;
        let mut slots = Vec::new();
        for event in model.events() {
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
        let mut keyed: Vec<(Timestamp, KeyPrefix, Slot<'m>)> = slots
            .into_iter()
            .map(|slot| (slot.due.timestamp(), slot.key_prefix(), slot))
            .collect();
        keyed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        keyed.into_iter().map(|(_, _, slot)| slot).collect()
    }

    /// The leads any recipient of `event` can have, each once.
    fn possible_leads(&self, event: &'m Event) -> Vec<&'m Lead> {
        let mut leads: Vec<&Lead> = Vec::new();
        let event_leads = EventLeads::new(self.model, event);
        for lead in event_leads.possible().chain(self.own_leads.iter().copied()) {
            if !leads.contains(&lead) {
                leads.push(lead);
            }
        }
        leads
    }

    /// The recipients of `slot`, ordered by the address in their key, each
    /// address once.
    pub fn recipients(&self, slot: &Slot<'m>) -> Vec<Recipient<'m>> {
        match slot.source {
            Source::Reminder { event, lead } => {
                let leads = EventLeads::new(self.model, event);
                self.members_of(&event.lists, |recipient| leads.gives(recipient.focal_point, lead))
            }
            Source::Letter(letter) => self.members_of(&letter.lists, |_| true),
        }
    }

    /// How urgent the sends of `slot` are when the relay's limits hold
    /// them back: a reminder by when its event starts, a letter by its due
    /// instant (see [`Urgency`]).
    pub fn urgency(&self, slot: &Slot<'m>) -> Urgency {
        let by = match slot.source {
            Source::Reminder { event, .. } => event_urgent_by(self.model, event),
            Source::Letter(_) => None,
        };
        Urgency::new(slot.kind(), by.unwrap_or_else(|| slot.due.timestamp()))
    }

    /// The address of `recipient` as its send's key has it.
    pub fn key_address(&self, recipient: &Recipient<'_>) -> &AddressKey {
        &self.key_addresses[recipient.index]
    }

    /// The sends of `slot`, in key order.
    pub fn sends(&self, slot: &Slot<'m>) -> impl Iterator<Item = PlannedSend> + use<'m, '_> {
        let due = slot.due.clone();
        let prefix = slot.key_prefix();
        let template = slot.template().to_owned();
        self.recipients(slot).into_iter().map(move |recipient| {
            PlannedSend::new(
                &prefix,
                recipient,
                self.key_address(&recipient),
                &template,
                due.clone(),
            )
        })
    }

    /// Every send due in `window`, ordered by due instant, then key.
    pub fn plan(&self, window: Window) -> Vec<PlannedSend> {
        self.slots(window)
            .iter()
            .flat_map(|slot| self.sends(slot))
            .collect()
    }

    /// The sends of `letter` to everyone on its lists, due at `due`: at its
    /// `send_at`, or now when it is sent on demand (the keys are the same).
    pub fn letter_sends(&self, letter: &'m Letter, due: &ZonedDateTime) -> Vec<PlannedSend> {
        let recipients = self.members_of(&letter.lists, |_| true);
        self.sends_to(&KeyPrefix::letter(&letter.id), recipients, &letter.template, due)
            .collect()
    }

    /// The update (or, with `kind` [`SendKind::Cancellation`], cancellation)
    /// notices about `event`, its `number`th, to everyone on its lists, due
    /// at `due`. `event` may be gone from the model (a removed event, from
    /// what calendars were told of it).
    pub fn notices(
        &self,
        event: &Event,
        kind: SendKind,
        number: u32,
        due: &ZonedDateTime,
    ) -> Vec<PlannedSend> {
        let lists: Vec<&'m String> = event
            .lists
            .iter()
            .filter_map(|list| self.model.lists().get_key_value(list).map(|(id, _)| id))
            .collect();
        let mut recipients = Vec::new();
        for list in lists {
            recipients.extend(self.list_members(list));
        }
        self.in_key_order(&mut recipients);
        let prefix = KeyPrefix::notice(kind, &event.id, number);
        self.sends_to(&prefix, recipients, kind.as_str(), due).collect()
    }

    /// The sends of the slot with `prefix` to `recipients`.
    fn sends_to<'p>(
        &'p self,
        prefix: &'p KeyPrefix,
        recipients: Vec<Recipient<'m>>,
        template: &'p str,
        due: &'p ZonedDateTime,
    ) -> impl Iterator<Item = PlannedSend> + 'p {
        recipients.into_iter().map(move |recipient| {
            PlannedSend::new(
                prefix,
                recipient,
                self.key_address(&recipient),
                template,
                due.clone(),
            )
        })
    }

    /// The focal points on `list`, in key order.
    fn list_members(&self, list: &'m str) -> impl Iterator<Item = Recipient<'m>> + use<'m, '_> {
        self.members
            .get(list)
            .into_iter()
            .flatten()
            .map(move |&index| Recipient {
                focal_point: &self.model.focal_points()[index],
                list,
                index,
            })
    }

    /// The focal points on any of `lists` that `wanted` accepts, each once
    /// (through the first of those lists they are on), in key order.
    fn members_of(&self, lists: &'m [String], wanted: impl Fn(&Recipient<'m>) -> bool) -> Vec<Recipient<'m>> {
        let mut recipients: Vec<Recipient<'m>> = lists
            .iter()
            .flat_map(|list| self.list_members(list))
            .filter(|recipient| wanted(recipient))
            .collect();
        self.in_key_order(&mut recipients);
        recipients
    }

    /// Sorts recipients by their key's address and keeps each focal point
    /// once. The members of each list come in key order: this only merges
    /// lists (stable: a focal point on two of them keeps the first).
    fn in_key_order(&self, recipients: &mut Vec<Recipient<'m>>) {
        recipients.sort_by_key(|recipient| self.rank[recipient.index]);
        recipients.dedup_by_key(|recipient| recipient.index);
    }

    /// The send that the outbox's `key` stands for in the current model,
    /// wherever its due instant now is, or why the model no longer makes it.
    /// Only reminders and letters sent at a set time are the planner's to
    /// make again; a notice or a letter sent on demand is not in any plan.
    pub fn send_for(&self, key: &SendKey, recipient: &str) -> Result<PlannedSend, Gone> {
        let found = find(self.model, key, recipient)?;
        let to = recipient;
        let recipient = Recipient {
            focal_point: found.focal_point,
            list: found.list,
            index: found.index,
        };
        let address = self.key_address(&recipient);
        match found.about {
            Found::Reminder { event, lead, .. } => {
                let due = event
                    .anchor(self.model.settings().reminders.all_day_at)
                    .and_then(|anchor| lead.before(&anchor))
                    .ok_or_else(|| no_longer_gets(key, to))?;
                let prefix = KeyPrefix::reminder(&event.id, lead.as_str());
                Ok(PlannedSend::new(
                    &prefix,
                    recipient,
                    address,
                    &event.template,
                    due,
                ))
            }
            Found::Letter(letter) => {
                let due = letter
                    .send_at
                    .clone()
                    .ok_or_else(|| Gone(format!("the letter {:?} is now sent only on demand", letter.id)))?;
                Ok(PlannedSend::new(
                    &KeyPrefix::letter(&letter.id),
                    recipient,
                    address,
                    &letter.template,
                    due,
                ))
            }
            Found::Notice => Err(Gone(format!("a {} is not the planner's to make", key.kind()))),
        }
    }
}

/// What an outbox key names in the model, found by [`find`].
pub struct FoundSend<'m> {
    pub focal_point: &'m FocalPoint,
    /// Where the focal point is in `model.focal_points()`.
    pub index: usize,
    /// The list through which the focal point gets it now: the first of the
    /// event's or letter's lists they are on (for a notice, none is looked
    /// for: its event may be gone).
    pub list: &'m str,
    pub about: Found<'m>,
}

/// The event, lead or letter an outbox key names.
pub enum Found<'m> {
    Reminder {
        roadmap: &'m Roadmap,
        event: &'m Event,
        lead: &'m Lead,
    },
    Letter(&'m Letter),
    /// An update or cancellation: its event is found by the caller, from
    /// the model or from what calendars were told (a removed event).
    Notice,
}

/// Finds what `key` names in `model`, the focal point included, or says
/// why the model no longer makes that send. The planner (to move a send
/// whose event moved) and the resolver (to send it) both go through here.
///
/// `recipient` is the address as the outbox has it, for the reasons given.
pub fn find<'m>(model: &'m Model, key: &SendKey, recipient: &str) -> Result<FoundSend<'m>, Gone> {
    let subject = key.subject();
    let kind = key.kind();
    let removed = || {
        Gone(format!(
            "the {} {subject:?} was removed from the configuration",
            kind.subject_noun()
        ))
    };
    // The subject first: a removed event explains every send about it.
    enum Subject<'m> {
        Event(&'m Roadmap, &'m Event),
        Letter(&'m Letter),
        Notice,
    }
    let found_subject = match kind {
        SendKind::Reminder => {
            let (roadmap, event) = model.event(subject).ok_or_else(removed)?;
            if event.status == EventStatus::Cancelled {
                return Err(Gone(format!("the event {subject:?} was cancelled")));
            }
            Subject::Event(roadmap, event)
        }
        SendKind::Letter => Subject::Letter(model.letter(subject).ok_or_else(removed)?),
        SendKind::Update | SendKind::Cancellation => Subject::Notice,
    };
    let (index, focal_point) = model
        .focal_point_with_index(key.address())
        .ok_or_else(|| Gone(format!("{recipient} is no longer a focal point")))?;
    let on_list = |lists: &'m [String]| {
        lists
            .iter()
            .find(|list| focal_point.lists.contains(list))
            .map(String::as_str)
            .ok_or_else(|| no_longer_gets(key, recipient))
    };
    let (list, about) = match found_subject {
        Subject::Event(roadmap, event) => {
            let list = on_list(&event.lists)?;
            let wanted = key.lead().unwrap_or_default();
            let lead = EventLeads::new(model, event)
                .of(focal_point)
                .into_iter()
                .find(|lead| lead.as_str() == wanted)
                .ok_or_else(|| no_longer_gets(key, recipient))?;
            (list, Found::Reminder { roadmap, event, lead })
        }
        Subject::Letter(letter) => (on_list(&letter.lists)?, Found::Letter(letter)),
        Subject::Notice => ("", Found::Notice),
    };
    Ok(FoundSend {
        focal_point,
        index,
        list,
        about,
    })
}

fn no_longer_gets(key: &SendKey, recipient: &str) -> Gone {
    Gone(format!(
        "{recipient} no longer gets this {} (lists, lead times or dates changed)",
        key.kind().subject_noun()
    ))
}

/// Every send due in `window`, ordered by due instant, then key.
pub fn plan(model: &Model, window: Window) -> Vec<PlannedSend> {
    Planner::new(model).plan(window)
}

/// The instant that makes the sends about `event` urgent when the relay's
/// limits hold them back: when it starts (see [`Urgency`]); `None` for an
/// unscheduled event, whose sends rank by their due instant, as a letter's
/// do. The one rule for the planner's slots and the outbox's rows.
pub fn event_urgent_by(model: &Model, event: &Event) -> Option<Timestamp> {
    event
        .anchor(model.settings().reminders.all_day_at)
        .map(|start| start.timestamp())
}
