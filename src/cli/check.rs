//! `herald check`: validate everything and print every problem.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::limits;
use super::suppressions::Lookup;
use crate::clock::Clock;
use crate::foresight;
use crate::plan::{self, Window};
use crate::send::Transport;

pub fn run(config: &Path, clock: &dyn Clock) -> super::CommandResult {
    let loaded = match super::load(config) {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let model = &loaded.model;
    let n_events: usize = model.roadmaps().iter().map(|r| r.events.len()).sum();
    // Counted, not made: a large plan need not fit in memory.
    let planner = plan::Planner::new(model);
    let now = clock.now();
    let (mut n_sends, mut upcoming, mut to_suppressed) = (0usize, 0usize, 0usize);
    let limits = limits::configured(&loaded);
    let slots = planner.slots(Window::default());
    let mut loads = limits::Loads::default();
    let mut made = limits.map(|_| limits::Made::open(&loaded));
    let suppressed = read_suppressions(&loaded);
    for slot in &slots {
        let recipients = planner.recipients(slot);
        let n = recipients.len();
        n_sends += n;
        if slot.due.timestamp() < now {
            continue;
        }
        upcoming += n;
        let is_suppressed = |recipient: &plan::Recipient<'_>| {
            suppressed
                .of(planner.key_address(recipient), recipient.list)
                .is_some()
        };
        if !suppressed.is_empty() {
            to_suppressed += recipients.iter().filter(|r| is_suppressed(r)).count();
        }
        if let Some(made) = &mut made {
            let settled = made.settled(slot, now);
            // Neither the sends already made nor those to suppressed
            // recipients count against the limits.
            let count = if suppressed.is_empty() {
                n - settled.len()
            } else {
                let is_settled = |recipient: &plan::Recipient<'_>| {
                    let address = planner.key_address(recipient).as_str();
                    settled
                        .binary_search_by(|entry| entry.spec.key.address().cmp(address))
                        .is_ok()
                };
                recipients
                    .iter()
                    .filter(|r| !is_settled(r) && !is_suppressed(r))
                    .count()
            };
            loads.slot(&planner, slot, count);
        }
    }
    let languages: Vec<&str> = model
        .templates()
        .files
        .keys()
        .map(|(l, _)| l.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}: OK", config.display())?;
    writeln!(
        out,
        "  {} roadmap{}, {n_events} events; {} focal points on {} lists; {} letter{}",
        model.roadmaps().len(),
        plural(model.roadmaps().len()),
        model.focal_points().len(),
        model.lists().len(),
        model.letters().len(),
        plural(model.letters().len()),
    )?;
    writeln!(out, "  templates in {}", languages.join(", "))?;
    write!(
        out,
        "  {} sends planned in all, {upcoming} of them still to come",
        n_sends
    )?;
    if to_suppressed > 0 {
        write!(
            out,
            ", {to_suppressed} of those to suppressed recipients (not sent; see the warnings)"
        )?;
    }
    writeln!(out)?;
    for warning in &loaded.warnings.0 {
        writeln!(out, "warning: {warning}")?;
    }
    for warning in suppressed_focal_points(&loaded.model, &suppressed) {
        writeln!(out, "warning: {warning}")?;
    }
    for letter in model.letters() {
        // Who gets it does not depend on when.
        let due = letter
            .send_at
            .clone()
            .unwrap_or_else(|| now.to_zoned_datetime(jiff::tz::TimeZone::UTC));
        let sends = planner.letter_sends(letter, &due);
        let missing = letter.languages_without_body(sends.iter().map(|send| send.language.as_str()));
        if !missing.is_empty() {
            writeln!(
                out,
                "  warning: {}",
                no_body_warning(letter, &missing, &model.settings().default_language)
            )?;
        }
    }
    if let Transport::Smtp(smtp) = &loaded.delivery.transport
        && smtp.username.is_some()
        && smtp.password.is_none()
    {
        // The configuration let it through, so no password file is named
        // and systemd gave no credentials: the service will give them.
        writeln!(
            out,
            "  note: the SMTP password is not checked here: it is read when herald runs, from the systemd credential `{}`",
            crate::config::PASSWORD_CREDENTIAL
        )?;
    }
    // An overrun is a warning: the configuration is valid, and herald
    // sends everything, some of it late.
    if let (Some((limits, max_early)), Some(made)) = (limits, made) {
        let sent = made.sent_before(now);
        let foresight = foresight::foresee(&limits, max_early, now, &sent.at, &loads.loads);
        limits::print(&mut out, limits::Report::Check, &foresight, &loads.labels, &sent)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// "letters/x.toml: letter \"x\" has no body in de (1 reader), ru (2
/// readers); they will read its body in en: …".
fn no_body_warning(
    letter: &crate::model::Letter,
    missing: &std::collections::BTreeMap<&str, usize>,
    default_language: &str,
) -> String {
    let languages: Vec<String> = missing
        .iter()
        .map(|(language, n)| format!("{language} ({n} reader{})", plural(*n)))
        .collect();
    format!(
        "{}: letter {:?} has no body in {}; they will read its body in {default_language}: add theirs under [body] ({} = \"\"\"…\"\"\")",
        letter.file.display(),
        letter.id,
        languages.join(", "),
        missing.keys().next().copied().unwrap_or_default(),
    )
}

/// The outbox's suppressions: none without an outbox; none, after a
/// warning, when it cannot be read.
fn read_suppressions(loaded: &crate::scheduler::Loaded) -> Lookup {
    let place = super::place::Place::of(&loaded.delivery);
    let outbox = super::existing_outbox(&place, SUPPRESSIONS_UNREAD);
    Lookup::read(outbox.as_deref(), &place, SUPPRESSIONS_UNREAD)
}

/// What the outbox's suppressions do to the lists: a warning for each
/// focal point suppressed on every list, or on one of its lists, naming
/// the line of its address (herald sends it nothing there until the
/// suppression is lifted).
fn suppressed_focal_points(model: &crate::model::Model, lookup: &Lookup) -> Vec<String> {
    if lookup.is_empty() {
        return Vec::new();
    }
    let mut warnings = Vec::new();
    for focal_point in model.focal_points() {
        let address = crate::key::AddressKey::of(focal_point.email.as_ref());
        let mut seen: Vec<&crate::outbox::Suppression> = Vec::new();
        for list in &focal_point.lists {
            // A suppression of every list covers each: said once.
            if let Some(suppression) = lookup.of(&address, list)
                && !seen.contains(&suppression)
            {
                seen.push(suppression);
            }
        }
        let place = match &focal_point.origin {
            Some(origin) => format!("{}:{}", origin.file.display(), origin.line),
            None => "lists".to_owned(),
        };
        let file = focal_point
            .origin
            .as_ref()
            .map_or_else(|| "its list file".to_owned(), |o| o.file.display().to_string());
        for suppression in seen {
            let since = suppression.since.strftime("%Y-%m-%d");
            let reason = &suppression.reason;
            let remove = format!("`herald suppressions remove {}`", address.as_str());
            let email = &focal_point.email;
            // On every list: the address failed. On one: an unsubscribe.
            warnings.push(match &suppression.list {
                None => format!(
                    "{place}: {email} is suppressed on every list since {since} ({reason}), so herald sends them nothing: if the address is wrong, correct it in {file} (a new address is not suppressed); once it works again, run {remove}; otherwise remove them from {file}"
                ),
                Some(list) => format!(
                    "{place}: {email} is suppressed on the list {list:?} since {since} ({reason}), so herald sends them nothing through it: take them off {list:?} in {file}; should they ask to come back, run {remove}"
                ),
            });
        }
    }
    warnings
}

/// What `check` does when the outbox cannot be read for its suppressions.
const SUPPRESSIONS_UNREAD: &str = "the focal points suppressed (bounces, unsubscribes) are not named";

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
