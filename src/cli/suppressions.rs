//! `herald suppressions`: the addresses herald does not send to (a
//! permanent bounce, too many temporary ones, an unsubscribe from a list),
//! and `herald suppressions remove EMAIL`, which lifts an address's.
//!
//! Both work while the daemon runs: the outbox is shared (SQLite locks it
//! for each transaction), as for `herald retry`. A lift plans the
//! suppressed sends still to come again; the daemon looks at the outbox at
//! least every tick, so it claims them at their time (a minute late at
//! most, when one falls due before its next look).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use serde::Serialize;

use super::history::{open, place};
use super::place::Place;
use crate::clock::Clock;
use crate::key::AddressKey;
use crate::outbox::{Outbox, Suppression};

/// One row of `suppressions --json`.
#[derive(Serialize)]
struct JsonSuppression<'a> {
    address: &'a str,
    /// `null`: every list.
    list: Option<&'a str>,
    reason: &'a str,
    since: String,
    /// The Message-ID (without `<>`) of the incoming message that caused it.
    message_id: Option<&'a str>,
}

/// What a suppression's list is called in the table and in messages.
pub(super) fn list_words(suppression: &Suppression) -> &str {
    suppression.list.as_deref().unwrap_or("every list")
}

pub fn list(config: &Path, state_dir_arg: Option<&Path>, json: bool) -> super::CommandResult {
    let outbox = open(&place(config, state_dir_arg)?)?;
    let suppressions = outbox.suppressions()?;
    let mut out = std::io::stdout().lock();
    if json {
        let rows: Vec<JsonSuppression> = suppressions
            .iter()
            .map(|s| JsonSuppression {
                address: s.address.as_str(),
                list: s.list.as_deref(),
                reason: &s.reason,
                since: s.since.to_string(),
                message_id: s.message_id.as_deref(),
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if suppressions.is_empty() {
        writeln!(out, "no suppressions: herald sends to every focal point")?;
        return Ok(ExitCode::SUCCESS);
    }
    let since = |s: &Suppression| s.since.strftime("%Y-%m-%d %H:%M").to_string();
    let message = |s: &Suppression| s.message_id.as_deref().map(|id| format!("<{id}>"));
    let width = |header: &str, cell: &dyn Fn(&Suppression) -> usize| {
        suppressions.iter().map(cell).fold(header.len(), usize::max)
    };
    let address_width = width("ADDRESS", &|s| s.address.as_str().chars().count());
    let list_width = width("LIST", &|s| list_words(s).chars().count());
    let message_width = width("MESSAGE", &|s| message(s).map_or(0, |m| m.chars().count()));
    writeln!(
        out,
        "{:<address_width$}  {:<list_width$}  {:<16}  {:<message_width$}  REASON",
        "ADDRESS", "LIST", "SINCE (UTC)", "MESSAGE"
    )?;
    for s in &suppressions {
        writeln!(
            out,
            "{:<address_width$}  {:<list_width$}  {:<16}  {:<message_width$}  {}",
            s.address.as_str(),
            list_words(s),
            since(s),
            message(s).unwrap_or_default(),
            s.reason
        )?;
    }
    let mut addresses: Vec<&str> = suppressions.iter().map(|s| s.address.as_str()).collect();
    addresses.dedup();
    writeln!(
        out,
        "{} address{} suppressed ({} suppression{}); `herald suppressions remove EMAIL` lifts an address's once it is fixed",
        addresses.len(),
        if addresses.len() == 1 { "" } else { "es" },
        suppressions.len(),
        if suppressions.len() == 1 { "" } else { "s" },
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn remove(
    config: &Path,
    state_dir_arg: Option<&Path>,
    email: &str,
    clock: &dyn Clock,
) -> super::CommandResult {
    let outbox = open(&place(config, state_dir_arg)?)?;
    let address = AddressKey::of(email);
    // Looked up first, so that an address that is not suppressed changes
    // nothing (lifting would also reset its count of temporary failures).
    let lists: Vec<String> = outbox
        .suppressions()?
        .iter()
        .filter(|s| s.address == address)
        .map(|s| list_words(s).to_owned())
        .collect();
    if lists.is_empty() {
        bail!(
            "{} is not suppressed, so there is nothing to lift; `herald suppressions` lists the addresses that are",
            address.as_str()
        );
    }
    let lifted = outbox.lift_suppressions(&address, clock.now())?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "lifted {} suppression{} of {} ({}); its count of temporary failures starts again from zero",
        lifted.suppressions,
        if lifted.suppressions == 1 { "" } else { "s" },
        address.as_str(),
        lists.join(", "),
    )?;
    match lifted.revived {
        0 => writeln!(
            out,
            "no suppressed send was still to come; the next ones are planned as usual"
        )?,
        n => writeln!(
            out,
            "{n} suppressed send{} still to come planned again; the running daemon sends {} (within a minute of {} time)",
            if n == 1 { "" } else { "s" },
            if n == 1 { "it" } else { "them" },
            if n == 1 { "its" } else { "their" },
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The suppressions in force, read once from the outbox by `plan` and
/// `check`, looked up by address and list.
#[derive(Default)]
pub(super) struct Lookup {
    /// By address; each address's every-list suppression first (as the
    /// outbox gives them, and as it words a suppressed send's reason).
    by_address: HashMap<AddressKey, Vec<Suppression>>,
}

impl Lookup {
    /// The suppressions of the outbox `outbox` (that at `place`); none
    /// without an outbox, or, after a warning saying `consequence`, when
    /// it cannot be read.
    pub fn read(outbox: Option<&dyn Outbox>, place: &Place, consequence: &str) -> Lookup {
        let Some(outbox) = outbox else {
            return Lookup::default();
        };
        match outbox.suppressions() {
            Ok(suppressions) => {
                let mut by_address: HashMap<AddressKey, Vec<Suppression>> = HashMap::new();
                for suppression in suppressions {
                    by_address
                        .entry(suppression.address.clone())
                        .or_default()
                        .push(suppression);
                }
                Lookup { by_address }
            }
            Err(err) => {
                super::warn_unread(place, consequence, &err);
                Lookup::default()
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_address.is_empty()
    }

    /// The suppression that stops a send to `address` on `list`, if any.
    pub fn of(&self, address: &AddressKey, list: &str) -> Option<&Suppression> {
        self.by_address.get(address)?.iter().find(|s| s.covers(list))
    }
}

/// "suppressed since 2026-12-02: a permanent bounce (5.1.1 …)", as the
/// outbox words a suppressed send's reason.
pub(super) fn suppressed_since(suppression: &Suppression) -> String {
    format!(
        "suppressed since {}: {}",
        suppression.since.strftime("%Y-%m-%d"),
        suppression.reason
    )
}
