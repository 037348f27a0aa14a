//! `herald history` and `herald retry`: what was sent, failed, skipped,
//! suppressed and why; and sending failed sends again on the operator's word.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use serde::Serialize;

use super::place::Place;
use crate::clock::Clock;
use crate::config::Environment;
use crate::key::{AddressKey, SendKey, SendKind};
use crate::outbox::{Entry, Outbox, Override, State};
use crate::scheduler::Choice;

/// Where the outbox is: `--state-dir`'s SQLite file (even when herald.toml
/// names a database: the explicit option wins), else the configuration's
/// (which needs only herald.toml to be readable): `[state]`'s database or
/// the SQLite file of its state directory, else that of
/// `$HERALD_STATE_DIR`, unless herald.toml has a `[state]` table.
pub fn place(config: &Path, state_dir: Option<&Path>) -> anyhow::Result<Place> {
    if let Some(dir) = state_dir {
        return Ok(Place::Dir(dir.to_owned()));
    }
    let env = Environment::from_process();
    match crate::config::load(config, &env) {
        Ok(loaded) => Ok(Place::of(&loaded.delivery)),
        Err(problems) => {
            let one = problems.len() == 1;
            let problems = format!(
                "the configuration in {} has {} problem{} (see `herald check`)",
                config.display(),
                problems.len(),
                if one { "" } else { "s" }
            );
            if super::place::names_database(config) {
                bail!(
                    "{problems}, so the database of its [state] is unknown; fix {}, or pass --state-dir for the SQLite outbox of a state directory",
                    if one { "it" } else { "them" }
                );
            }
            match env.var("HERALD_STATE_DIR") {
                Some(dir) => Ok(Place::Dir(PathBuf::from(dir))),
                None => bail!("{problems}, so its state directory is unknown; pass --state-dir"),
            }
        }
    }
}

/// The outbox at `place`, or an error saying herald has not run with its
/// state directory, or why the database cannot be used.
pub(super) fn open(place: &Place) -> anyhow::Result<Box<dyn Outbox>> {
    if !place.exists() {
        bail!("no outbox in {place}: herald has not run with this state directory yet");
    }
    place.open_or_explain()
}

/// One row of `history --json`.
#[derive(Serialize)]
struct JsonEntry<'a> {
    key: &'a str,
    state: &'a str,
    kind: &'a str,
    event: Option<&'a str>,
    letter: Option<&'a str>,
    lead: Option<&'a str>,
    to: &'a str,
    due: String,
    attempts: u32,
    sent_at: Option<String>,
    updated_at: String,
    last_reply: Option<&'a str>,
    reason: Option<&'a str>,
    /// What the reader's own choice changed of the send; `null` when nothing.
    #[serde(rename = "override")]
    choice: Option<JsonChoice>,
}

/// The `override` of a `history --json` row.
#[derive(Serialize)]
struct JsonChoice {
    language: Option<String>,
    zone: Option<String>,
}

/// The readers' overrides, to mark the sends they changed: those still
/// planned, or settled since the reader chose, whose language is the one
/// chosen (the row says which it went in) or whose times were shown in the
/// zone chosen. What the configuration says of the reader, when it can be
/// read, tells a choice that changed something from one that did not.
struct Marks {
    overrides: HashMap<AddressKey, Override>,
    model: Option<crate::model::Model>,
}

impl Marks {
    fn read(config: &Path, outbox: &dyn Outbox) -> anyhow::Result<Marks> {
        let overrides: HashMap<AddressKey, Override> = outbox
            .overrides()?
            .into_iter()
            .map(|o| (o.address.clone(), o))
            .collect();
        let model = if overrides.is_empty() {
            None
        } else {
            crate::config::load(config, &Environment::from_process())
                .ok()
                .map(|config| config.model)
        };
        Ok(Marks { overrides, model })
    }

    fn of(&self, entry: &Entry) -> Option<Choice> {
        let address = AddressKey::of(entry.spec.key.address());
        let chosen = self.overrides.get(&address)?;
        let when = if entry.state == State::Planned {
            None
        } else {
            Some(entry.sent_at.unwrap_or(entry.updated_at))
        };
        if when.is_some_and(|at| at < chosen.since) {
            return None;
        }
        let focal_point = self.model.as_ref().and_then(|m| m.focal_point(address.as_str()));
        let language = chosen
            .language
            .clone()
            .filter(|language| *language == entry.spec.language)
            .filter(|language| focal_point.is_none_or(|fp| fp.language != *language));
        let zone = chosen.zone.clone().filter(|zone| {
            focal_point.is_none_or(|fp| fp.zone.as_ref().is_none_or(|configured| configured.name != *zone))
        });
        (language.is_some() || zone.is_some()).then_some(Choice { language, zone })
    }
}

/// Filters of `herald history`.
pub struct Filter<'a> {
    pub state: Option<&'a str>,
    pub event: Option<&'a str>,
    pub to: Option<&'a str>,
}

pub fn history(
    config: &Path,
    state_dir_arg: Option<&Path>,
    filter: &Filter,
    json: bool,
) -> super::CommandResult {
    let outbox = open(&place(config, state_dir_arg)?)?;
    if let Some(state) = filter.state
        && State::parse(state).is_none()
    {
        bail!(
            "unknown state {state:?}: use planned, sending, sent, failed, skipped, cancelled or suppressed"
        );
    }
    let to = filter.to.map(AddressKey::of);
    let entries: Vec<Entry> = outbox
        .entries()?
        .into_iter()
        .filter(|e| filter.state.is_none_or(|s| e.state.as_str() == s))
        .filter(|e| filter.event.is_none_or(|id| e.spec.key.subject() == id))
        .filter(|e| to.as_ref().is_none_or(|to| e.spec.key.address() == to.as_str()))
        .collect();
    let marks = Marks::read(config, outbox.as_ref())?;
    let mut out = std::io::stdout().lock();
    if json {
        let rows: Vec<JsonEntry> = entries
            .iter()
            .map(|e| {
                let key = &e.spec.key;
                let is_letter = key.kind() == SendKind::Letter;
                JsonEntry {
                    key: key.as_str(),
                    state: e.state.as_str(),
                    kind: key.kind().as_str(),
                    event: (!is_letter).then_some(key.subject()),
                    letter: is_letter.then_some(key.subject()),
                    lead: key.lead(),
                    to: &e.spec.recipient,
                    due: e.spec.due.to_string(),
                    attempts: e.attempts,
                    sent_at: e.sent_at.map(|t| t.to_string()),
                    updated_at: e.updated_at.to_string(),
                    last_reply: e.last_reply.as_deref(),
                    reason: e.reason.as_deref(),
                    choice: marks.of(e).map(|c| JsonChoice {
                        language: c.language,
                        zone: c.zone,
                    }),
                }
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:<20}  {:<9}  {:<40}  {:<4}  {:<40}  {:>3}  REPLY OR REASON",
        "DUE (UTC)", "STATE", "EVENT/LETTER", "LEAD", "TO", "TRY"
    )?;
    for e in &entries {
        let due = e.spec.due.strftime("%Y-%m-%d %H:%M").to_string();
        let why = e.reason.as_deref().or(e.last_reply.as_deref()).unwrap_or("");
        let why = match marks.of(e) {
            Some(choice) if why.is_empty() => format!("(reader's choice: {choice})"),
            Some(choice) => format!("{why} (reader's choice: {choice})"),
            None => why.to_owned(),
        };
        writeln!(
            out,
            "{due:<20}  {:<9}  {:<40}  {:<4}  {:<40}  {:>3}  {why}",
            e.state.as_str(),
            e.spec.key.subject(),
            e.spec.key.lead().unwrap_or(""),
            e.spec.recipient,
            e.attempts
        )?;
    }
    let counts = outbox.counts()?;
    writeln!(
        out,
        "{} planned, {} sending, {} sent, {} failed, {} skipped, {} cancelled, {} suppressed",
        counts.planned,
        counts.sending,
        counts.sent,
        counts.failed,
        counts.skipped,
        counts.cancelled,
        counts.suppressed
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn retry(
    config: &Path,
    state_dir_arg: Option<&Path>,
    key: Option<&str>,
    clock: &dyn Clock,
) -> super::CommandResult {
    let outbox = open(&place(config, state_dir_arg)?)?;
    let key = key
        .map(|text| {
            SendKey::parse(text).map_err(|err| {
                anyhow::anyhow!(
                    "no failed send with the key {text:?} ({}); `herald history --state failed` lists them",
                    err.reason()
                )
            })
        })
        .transpose()?;
    let n = outbox.retry_failed(key.as_ref(), clock.now())?;
    let mut out = std::io::stdout().lock();
    match (n, key) {
        (0, Some(key)) => {
            bail!("no failed send with the key {key:?}; `herald history --state failed` lists them")
        }
        (0, None) => writeln!(out, "no failed sends")?,
        (n, _) => writeln!(
            out,
            "{n} failed send{} planned again; the running daemon sends {} within a minute",
            if n == 1 { "" } else { "s" },
            if n == 1 { "it" } else { "them" }
        )?,
    }
    Ok(ExitCode::SUCCESS)
}
