//! `herald overrides`: the languages and time zones readers chose for
//! themselves on the preferences page (kept in the state directory, over
//! the configuration); and `herald requests`: what readers asked the
//! operator to do ("my successor is …"), which herald never does itself,
//! with `herald requests settle ID` once the operator has.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use serde::Serialize;

use super::history::{open, place};
use crate::clock::Clock;
use crate::outbox::{Override, Request};

/// One row of `overrides --json`.
#[derive(Serialize)]
struct JsonOverride<'a> {
    address: &'a str,
    /// `null`: the configuration's.
    language: Option<&'a str>,
    /// An IANA name; `null`: the configuration's.
    zone: Option<&'a str>,
    since: String,
}

/// One row of `requests --json`.
#[derive(Serialize)]
struct JsonRequest<'a> {
    id: i64,
    from: &'a str,
    /// `null`: every list of the reader.
    list: Option<&'a str>,
    successor_name: &'a str,
    successor_email: &'a str,
    asked: String,
    /// `null`: still open.
    settled: Option<String>,
}

fn minute(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M").to_string()
}

pub fn overrides(config: &Path, state_dir_arg: Option<&Path>, json: bool) -> super::CommandResult {
    let outbox = open(&place(config, state_dir_arg)?)?;
    let overrides = outbox.overrides()?;
    let mut out = std::io::stdout().lock();
    if json {
        let rows: Vec<JsonOverride> = overrides
            .iter()
            .map(|o| JsonOverride {
                address: o.address.as_str(),
                language: o.language.as_deref(),
                zone: o.zone.as_deref(),
                since: o.since.to_string(),
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if overrides.is_empty() {
        writeln!(
            out,
            "no overrides: every focal point gets the language and time zone of the configuration"
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let configured = "(configured)";
    let cell = |value: &Option<String>| value.clone().unwrap_or_else(|| configured.to_owned());
    let width = |header: &str, of: &dyn Fn(&Override) -> usize| {
        overrides.iter().map(of).fold(header.len(), usize::max)
    };
    let address_width = width("ADDRESS", &|o| o.address.as_str().chars().count());
    let language_width = width("LANGUAGE", &|o| cell(&o.language).chars().count());
    let zone_width = width("ZONE", &|o| cell(&o.zone).chars().count());
    writeln!(
        out,
        "{:<address_width$}  {:<language_width$}  {:<zone_width$}  SINCE (UTC)",
        "ADDRESS", "LANGUAGE", "ZONE"
    )?;
    for o in &overrides {
        writeln!(
            out,
            "{:<address_width$}  {:<language_width$}  {:<zone_width$}  {}",
            o.address.as_str(),
            cell(&o.language),
            cell(&o.zone),
            minute(o.since)
        )?;
    }
    writeln!(
        out,
        "{} reader{} chose for themselves; a focal point removed from the configuration loses theirs at the daemon's next load",
        overrides.len(),
        if overrides.len() == 1 { "" } else { "s" }
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn requests(config: &Path, state_dir_arg: Option<&Path>, all: bool, json: bool) -> super::CommandResult {
    let outbox = open(&place(config, state_dir_arg)?)?;
    let requests = outbox.requests(!all)?;
    let mut out = std::io::stdout().lock();
    if json {
        let rows: Vec<JsonRequest> = requests
            .iter()
            .map(|r| JsonRequest {
                id: r.id,
                from: r.from.as_str(),
                list: r.list.as_deref(),
                successor_name: &r.successor_name,
                successor_email: &r.successor_email,
                asked: r.asked.to_string(),
                settled: r.settled.map(|at| at.to_string()),
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if requests.is_empty() {
        writeln!(
            out,
            "{}",
            if all {
                "no requests: no reader has named a successor"
            } else {
                "no open requests (`--all` lists the settled ones too)"
            }
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let list = |r: &Request| r.list.clone().unwrap_or_else(|| "every list".to_owned());
    let successor = |r: &Request| format!("{} <{}>", r.successor_name, r.successor_email);
    let width =
        |header: &str, of: &dyn Fn(&Request) -> usize| requests.iter().map(of).fold(header.len(), usize::max);
    let id_width = width("ID", &|r| r.id.to_string().len());
    let from_width = width("FROM", &|r| r.from.as_str().chars().count());
    let list_width = width("LIST", &|r| list(r).chars().count());
    let successor_width = width("SUCCESSOR", &|r| successor(r).chars().count());
    writeln!(
        out,
        "{:>id_width$}  {:<from_width$}  {:<list_width$}  {:<successor_width$}  {:<16}  SETTLED (UTC)",
        "ID", "FROM", "LIST", "SUCCESSOR", "ASKED (UTC)"
    )?;
    for r in &requests {
        writeln!(
            out,
            "{:>id_width$}  {:<from_width$}  {:<list_width$}  {:<successor_width$}  {:<16}  {}",
            r.id,
            r.from.as_str(),
            list(r),
            successor(r),
            minute(r.asked),
            r.settled.map(minute).unwrap_or_else(|| "open".to_owned())
        )?;
    }
    let open = requests.iter().filter(|r| r.settled.is_none()).count();
    writeln!(
        out,
        "{open} open request{}: herald changes no list itself; edit the list files, reload, then `herald requests settle ID`",
        if open == 1 { "" } else { "s" }
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn settle(
    config: &Path,
    state_dir_arg: Option<&Path>,
    id: i64,
    clock: &dyn Clock,
) -> super::CommandResult {
    let outbox = open(&place(config, state_dir_arg)?)?;
    if !outbox.settle_request(id, clock.now())? {
        let settled = outbox
            .requests(false)?
            .into_iter()
            .find(|r| r.id == id)
            .and_then(|r| r.settled);
        match settled {
            Some(at) => bail!("request {id} was settled already, at {}", minute(at)),
            None => bail!("no request {id}; `herald requests --all` lists them"),
        }
    }
    writeln!(std::io::stdout().lock(), "request {id} settled")?;
    Ok(ExitCode::SUCCESS)
}
