//! `herald init DIR`: a new configuration directory that `herald check`
//! accepts and that sends nothing until lists and roadmaps are filled in.
//!
//! It writes `herald.toml` (the sender, the templates, the venues and parts
//! of the day the importer knows, one empty list), `lists/focal-points.csv`
//! with its header and no one on it, and, given a letter, the roadmap
//! imported from it in `roadmaps/`. It never writes into a directory that
//! has anything in it. The Debian package's `/etc/herald` is made by it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use herald_import::{ImportOptions, KnownVenue, import_letter};

/// The list a new configuration declares, and the file its focal points go in.
pub const LIST: &str = "focal-points";

/// The columns of a list file saved from a spreadsheet (see `config::lists`).
const CSV_HEADER: &str = "name,email,mission,honorific,language,time_zone,lists,leads\n";

/// The language whose templates every configuration has (`default_language`'s default).
const DEFAULT_LANGUAGE: &str = "en";

/// Where the Debian package installs the default templates.
pub const PACKAGE_TEMPLATES: &str = "/usr/share/herald/templates";

/// The options of the command, as given on the command line.
pub struct Args<'a> {
    pub dir: &'a Path,
    pub from_letter: Option<&'a Path>,
    pub sender: &'a str,
    pub templates: &'a Path,
}

pub fn run(args: &Args) -> super::CommandResult {
    refuse_to_overwrite(args.dir)?;
    // The letter first: a letter that cannot be read leaves nothing behind.
    let roadmap = match args.from_letter {
        Some(letter) => match import(letter)? {
            Some(roadmap) => Some(roadmap),
            None => return Ok(ExitCode::FAILURE),
        },
        None => None,
    };
    let files = files(args, roadmap.as_ref());
    for (path, text) in &files {
        let path = args.dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        // Never over a file, even one made since the directory was found empty.
        std::fs::File::create_new(&path)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    for (path, _) in &files {
        eprintln!("herald: wrote {}", args.dir.join(path).display());
    }
    if !args.templates.join(DEFAULT_LANGUAGE).is_dir() {
        eprintln!(
            "herald: warning: {} has no templates yet (no {DEFAULT_LANGUAGE}/ in it); herald check fails until it has, or until herald.toml's `templates` names another directory",
            args.templates.display()
        );
    }
    eprintln!(
        "herald: add focal points to {}, then run `herald --config {} check`",
        args.dir.join("lists").join(format!("{LIST}.csv")).display(),
        args.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// An error unless `dir` is missing or empty.
fn refuse_to_overwrite(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                anyhow::bail!(
                    "{} is not empty; herald init writes only a new configuration directory",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", dir.display())),
    }
}

/// A roadmap imported from a letter: its id and its TOML.
struct Imported {
    id: String,
    toml: String,
}

/// Imports the letter's roadmap for the list of a new configuration, with
/// the importer's default venues and parts of the day (which `herald.toml`
/// declares); prints the rows it cannot read and gives `None` if there are any.
fn import(letter: &Path) -> anyhow::Result<Option<Imported>> {
    let text =
        std::fs::read_to_string(letter).with_context(|| format!("cannot read {}", letter.display()))?;
    let options = ImportOptions {
        lists: vec![LIST.to_owned()],
        ..ImportOptions::default()
    };
    let report = import_letter(&text, &options);
    if !report.problems.is_empty() {
        for problem in &report.problems {
            eprintln!("{}:{}: {}", letter.display(), problem.line, problem.message);
        }
        eprintln!(
            "herald: the roadmap of {} cannot be imported whole; nothing was written (see `herald import-roadmap --skip-bad-rows`)",
            letter.display()
        );
        return Ok(None);
    }
    eprintln!(
        "herald: {} events imported from {}; review roadmaps/{}.toml",
        report.roadmap.events.len(),
        letter.display(),
        report.roadmap.id
    );
    Ok(Some(Imported {
        id: report.roadmap.id,
        toml: report.toml,
    }))
}

/// The files of the new directory, relative to it, with their text.
fn files(args: &Args, roadmap: Option<&Imported>) -> Vec<(PathBuf, String)> {
    let mut files = vec![
        (
            PathBuf::from(crate::config::SETTINGS_FILE),
            settings(args.sender, args.templates),
        ),
        (
            Path::new("lists").join(format!("{LIST}.csv")),
            CSV_HEADER.to_owned(),
        ),
    ];
    if let Some(roadmap) = roadmap {
        files.push((
            Path::new("roadmaps").join(format!("{}.toml", roadmap.id)),
            roadmap.toml.clone(),
        ));
    }
    files
}

/// A TOML string: quoted and escaped.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// The text of `herald.toml`.
fn settings(sender: &str, templates: &Path) -> String {
    let venues: Vec<String> = KnownVenue::defaults()
        .iter()
        .map(|venue| {
            format!(
                "[venues.{}]\nname = {}\ncity = {}\ntime_zone = {}\n",
                venue.id,
                quoted(venue.aliases.first().unwrap_or(&venue.city)),
                quoted(&venue.city),
                quoted(&venue.time_zone)
            )
        })
        .collect();
    let venues = venues.join("\n");
    SETTINGS
        .replace("{templates}", &quoted(&templates.to_string_lossy()))
        .replace("{from}", &quoted(sender))
        .replace("{list}", LIST)
        .replace("{venues}", &venues)
}

/// `herald.toml` with the values filled in; herald.toml(5) describes every setting.
const SETTINGS: &str = r#"# herald.toml: the daemon's settings. herald.toml(5) describes every setting;
# /usr/share/doc/herald/examples/ has a complete example configuration.
#
# This directory is herald's whole configuration:
#   herald.toml        this file
#   roadmaps/*.toml    the roadmaps: meetings, deadlines and circulations
#   lists/*.toml|csv   the focal points, with the lists they are on
#   letters/*.toml     circulars (cover letters) sent to lists
#
# As written, it sends nothing to anyone: the list has no one on it and there
# is no roadmap. Check every edit with `herald --config DIR check`.

# Where the templates are; a relative path is relative to this directory.
templates = {templates}

[sender]
# Who the mail comes from, e.g. "Secretariat <secretariat@example.org>".
from = {from}
# reply_to = "replies@example.org"
# organization = "The organisation named in the letterhead and signature"
# Where bounces go, tagged for each message (bounces+TOKEN@example.org), so
# that a bounce names its message; see man herald.toml.
# bounce_address = "bounces@example.org"
# The link secrets, which make each reader's unsubscribe reply verifiable:
# the systemd credential `link-secret`, or a file only herald can read, named
# here; never the secrets themselves. See man herald.toml.
# link_secret_file = "link-secret"

[reminders]
# How long before an event its reminders go out: "7d", "1d", "2h", "1w", "30m".
leads = ["7d", "1d"]

# The parts of a day that a roadmap may name ("2 October (afternoon)").
[parts_of_day]
morning = "10:00-13:00"
afternoon = "15:00-18:00"

# Known venues: an event names one by its id and takes its time zone.
{venues}
# The distribution lists. A focal point in lists/{list}.csv that names no
# list is on this one.
[lists.{list}]
name = "Focal points"

[delivery]
# "smtp" to deliver through a relay ([delivery.smtp], see herald.toml(5)), or
# "maildir" to write each message into a maildir in the state directory.
transport = "maildir"
maildir = "maildir"
"#;
