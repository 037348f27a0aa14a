//! `herald import-roadmap FILE`: a roadmap table in a letter -> roadmap TOML.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use herald_import::{ImportOptions, KnownVenue, import_letter};

use crate::config::Environment;
use crate::model::Model;

/// The options of the command, as given on the command line.
pub struct Args<'a> {
    pub file: &'a Path,
    pub time_zone: Option<&'a str>,
    pub venue: Option<&'a str>,
    pub year: Option<i16>,
    pub id: Option<&'a str>,
    pub lists: &'a [String],
    pub skip_bad_rows: bool,
}

pub fn run(config: &Path, args: &Args) -> super::CommandResult {
    let text =
        std::fs::read_to_string(args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let (venues, parts_of_day) = from_configuration(config);
    let options = ImportOptions {
        default_time_zone: args.time_zone.unwrap_or("America/New_York").to_owned(),
        default_venue: args.venue.map(str::to_owned),
        year: args.year,
        venues,
        roadmap_id: args.id.map(str::to_owned),
        skip_bad_rows: args.skip_bad_rows,
        lists: args.lists.to_vec(),
        parts_of_day,
    };
    let report = import_letter(&text, &options);
    for problem in &report.problems {
        let text = if problem.text.is_empty() {
            String::new()
        } else {
            format!(": {:?}", problem.text)
        };
        eprintln!(
            "{}:{}: {}{text}",
            args.file.display(),
            problem.line,
            problem.message
        );
    }
    if !report.problems.is_empty() && !args.skip_bad_rows {
        eprintln!(
            "herald: {} row{} not understood; fix the letter, or pass --skip-bad-rows to import the rest",
            report.problems.len(),
            if report.problems.len() == 1 {
                " was"
            } else {
                "s were"
            }
        );
        return Ok(ExitCode::FAILURE);
    }
    let mut out = std::io::stdout().lock();
    out.write_all(report.toml.as_bytes())?;
    if !report.toml.ends_with('\n') {
        writeln!(out)?;
    }
    eprintln!(
        "herald: {} events imported from {}; review them, then save the TOML in roadmaps/ and run `herald check`",
        report.roadmap.events.len(),
        args.file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// What the configuration tells the import: its venues, so that rows naming
/// them get their time zone, and its parts of the day; the built-in New York
/// and Geneva, morning and afternoon when there is none.
fn from_configuration(config: &Path) -> (Vec<KnownVenue>, Vec<String>) {
    let built_in = || (KnownVenue::defaults(), ImportOptions::default().parts_of_day);
    if !config.join(crate::config::SETTINGS_FILE).exists() {
        return built_in();
    }
    match crate::config::load(config, &Environment::from_process()) {
        Ok(config) => venues_and_parts_of_day(&config.model),
        Err(problems) => {
            eprintln!(
                "herald: warning: {} has {} problem{} (see `herald check`); using the built-in venues New York and Geneva, and parts of the day morning and afternoon",
                config.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            built_in()
        }
    }
}

/// The venues of `model`, each known by its city and its name, and the names
/// of its parts of the day: what an import takes from a configuration.
pub fn venues_and_parts_of_day(model: &Model) -> (Vec<KnownVenue>, Vec<String>) {
    let venues = model
        .venues()
        .values()
        .map(|venue| KnownVenue {
            id: venue.id.clone(),
            city: venue.city.clone(),
            time_zone: venue.zone.name.clone(),
            aliases: vec![venue.name.clone()],
        })
        .collect();
    (venues, model.settings().parts_of_day.keys().cloned().collect())
}
