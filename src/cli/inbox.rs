//! `herald inbox …`: the process's mailbox. `classify` shows what herald
//! makes of message files: bounce, delay, unsubscribe, auto-reply or
//! other, with the addresses, status and reason, and the send it is about
//! when the outbox knows it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use crate::inbox::Classification;
use crate::inbox::classify::classify;
use crate::inbox::process::named_send;
use crate::outbox::Outbox;

/// One line of `herald inbox classify --json`.
#[derive(Serialize)]
struct JsonClassification<'a> {
    file: String,
    kind: &'a str,
    addresses: &'a [String],
    permanent: Option<bool>,
    status: Option<&'a str>,
    diagnostic: Option<&'a str>,
    send: Option<String>,
}

/// `herald inbox classify FILE... [--json]`.
pub fn classify_files(
    config: &Path,
    state_dir: Option<&Path>,
    files: &[PathBuf],
    json: bool,
) -> super::CommandResult {
    let outbox = outbox(config, state_dir);
    let mut out = std::io::stdout().lock();
    let mut unread = 0;
    for file in files {
        let bytes = match std::fs::read(file) {
            Ok(bytes) => bytes,
            Err(err) => {
                eprintln!(
                    "herald: cannot read {}: {err}; the other files are classified",
                    file.display()
                );
                unread += 1;
                continue;
            }
        };
        let classification = classify(&bytes);
        let send = outbox
            .as_deref()
            .and_then(|o| attributed_send(o, &classification));
        let row = JsonClassification {
            file: file.display().to_string(),
            kind: classification.kind.as_str(),
            addresses: &classification.addresses,
            permanent: classification.permanent,
            status: classification.status.as_deref(),
            diagnostic: classification.diagnostic.as_deref(),
            send,
        };
        if json {
            writeln!(out, "{}", serde_json::to_string(&row)?)?;
        } else {
            print_block(&mut out, &row)?;
        }
    }
    if unread > 0 {
        eprintln!(
            "herald: {unread} of {} file{} could not be read",
            files.len(),
            if files.len() == 1 { "" } else { "s" }
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_block(out: &mut impl Write, row: &JsonClassification) -> std::io::Result<()> {
    let or_none = |v: Option<&str>| v.unwrap_or("-").to_owned();
    writeln!(out, "{}", row.file)?;
    writeln!(out, "  kind:       {}", row.kind)?;
    writeln!(
        out,
        "  addresses:  {}",
        if row.addresses.is_empty() {
            "-".to_owned()
        } else {
            row.addresses.join(", ")
        }
    )?;
    writeln!(
        out,
        "  permanent:  {}",
        or_none(row.permanent.map(|p| if p { "true" } else { "false" }))
    )?;
    writeln!(out, "  status:     {}", or_none(row.status))?;
    writeln!(out, "  diagnostic: {}", or_none(row.diagnostic))?;
    writeln!(out, "  send:       {}", or_none(row.send.as_deref()))?;
    writeln!(out)
}

/// The outbox to attribute messages with: the one the other commands use
/// (`--state-dir`'s, else the configuration's: `[state]`'s database or its
/// state directory's, else `$HERALD_STATE_DIR`'s), if herald has run
/// there. Without one, `send` is unknown (null); classifying needs nothing
/// else, so a configuration that does not load is no error here (`herald
/// check` says what is wrong).
fn outbox(config: &Path, state_dir: Option<&Path>) -> Option<Box<dyn Outbox>> {
    const WHAT: &str = "send is shown as unknown";
    let place = match super::history::place(config, state_dir) {
        Ok(place) => place,
        Err(err) => {
            eprintln!("herald: warning: {err:#}; {WHAT}");
            return None;
        }
    };
    if state_dir.is_some() && !place.exists() {
        eprintln!("herald: warning: no outbox in {place} (herald has not run with it); {WHAT}");
    }
    super::existing_outbox(&place, WHAT)
}

/// The key of the send a message is about, by its clues
/// (`inbox::process::named_send`: its VERP token, then a returned
/// Message-ID).
fn attributed_send(outbox: &dyn Outbox, classification: &Classification) -> Option<String> {
    match named_send(classification, outbox) {
        Ok(entry) => entry.map(|entry| entry.spec.key.as_str().to_owned()),
        Err(err) => {
            eprintln!(
                "herald: warning: cannot read the outbox ({}); send is shown as unknown",
                crate::diagnostics::Chain(&err)
            );
            None
        }
    }
}
