//! herald's roadmap importer (`herald import-roadmap FILE`), and the roadmap
//! file schema it shares with herald's configuration loader: the public API,
//! and the walk from the letter's text to an [`ImportReport`].
//!
//! Roadmaps reach the secretariat as letters: prose with a table of dates and
//! descriptions in it, one row a line, cells separated by a tab. This crate
//! finds those rows, reads their dates, settles the years the rows leave out,
//! guesses each event's kind and venue, and writes the roadmap TOML that
//! `herald check` loads. It does no I/O: the caller reads the file, prints the
//! problems and writes the TOML. It uses nothing of herald; herald uses it.
//!
//! Nothing in the letter is silently dropped: a table row that cannot be read
//! is a [`RowProblem`] (and is not among the events).
//!
//! The parts, one purpose each:
//! - `table.rs`: which lines are rows, problem rows or prose;
//! - `dates/`: the date forms of a row's first cell;
//! - `years.rs`: the years rows leave out, and the real calendar days;
//! - `letter.rs`: the letter's own date and its bold heading;
//! - `kinds.rs`: meeting, deadline, circulation or other;
//! - `venues.rs`: known venues and the one a row names;
//! - `slug.rs`: readable ids;
//! - `model.rs`: the imported roadmap, typed, and its conversion to the schema;
//! - [`schema`]: the roadmap file, as herald reads it and the importer writes it;
//! - `strategies.rs` (feature `strategies`): generators of letter-like text for
//!   property tests.

mod dates;
mod kinds;
mod letter;
mod model;
pub mod schema;
mod slug;
#[cfg(any(test, feature = "strategies"))]
pub mod strategies;
mod table;
mod venues;
mod years;

#[cfg(test)]
mod tests;

use jiff::civil::Date;

pub use model::{EventKind, ImportedEvent, ImportedRoadmap, PartOfDay};
pub use venues::KnownVenue;

use dates::DateSpec;
use table::RowContent;
use years::{When, YearInference};

/// What the caller knows that the letter does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// Written as the roadmap's `time_zone` when no known default venue
    /// carries one (e.g. "America/New_York").
    pub default_time_zone: String,
    /// The venue id events take when their row names none; written as the
    /// roadmap's `venue`.
    pub default_venue: Option<String>,
    /// The year of the first dated row when the letter has no date of its own.
    pub year: Option<i16>,
    /// The venues rows may name, from the configuration's `[venues]` table.
    pub venues: Vec<KnownVenue>,
    /// The roadmap's id; derived from the letter's heading and date if absent.
    pub roadmap_id: Option<String>,
    /// The operator accepts leaving out rows that cannot be read. Either way
    /// such rows are not among the events and are listed in the problems;
    /// with this set, the TOML also starts with a comment naming each of
    /// them, so the file itself records what it is missing.
    pub skip_bad_rows: bool,
    /// The lists whose focal points hear of the roadmap; written as the
    /// roadmap's `lists` when not empty.
    pub lists: Vec<String>,
    /// The parts of the day the configuration defines (`[parts_of_day]`).
    /// A row naming another ("2 October (evening)") is a problem: its
    /// `part_of_day` would not load.
    pub parts_of_day: Vec<String>,
}

impl Default for ImportOptions {
    /// New York time, no default venue, the venues of
    /// [`KnownVenue::defaults`], herald's own parts of the day (morning and
    /// afternoon), and nothing else.
    fn default() -> Self {
        Self {
            default_time_zone: "America/New_York".to_string(),
            default_venue: None,
            year: None,
            venues: KnownVenue::defaults(),
            roadmap_id: None,
            skip_bad_rows: false,
            lists: Vec::new(),
            parts_of_day: vec!["morning".to_string(), "afternoon".to_string()],
        }
    }
}

/// Something in the letter (or the options) that the import did not
/// understand. The CLI prints it as `FILE:LINE: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// The 1-based line in the letter; 0 for a problem with the options
    /// rather than a line (an invalid roadmap id or time zone).
    pub line: usize,
    /// The line as written (empty when `line` is 0).
    pub text: String,
    pub message: String,
}

/// Everything an import produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub roadmap: ImportedRoadmap,
    /// `roadmap` as TOML, written from [`ImportedRoadmap::to_file`]: a
    /// [`schema::RoadmapFile`].
    pub toml: String,
    /// Problems with the options (line 0) first, then those of the letter's
    /// lines, in order.
    pub problems: Vec<RowProblem>,
    /// The letter's own date, if it has one: the first line above the tables
    /// that is a date with a year, alone or after a place (or, when there is
    /// none above, the first such line below them).
    pub letter_date: Option<Date>,
}

/// Reads a letter and returns the roadmap it contains, as structs and as
/// TOML, with the problems met on the way. Never panics, whatever the text.
pub fn import_letter(text: &str, options: &ImportOptions) -> ImportReport {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .collect();
    let rows = table::find_rows(&lines);

    // The letter's date and heading come from above its first table; a
    // letter dated only at its foot (under the signature) is dated there.
    let top_end = rows.first().map_or(lines.len(), |row| row.line.saturating_sub(1));
    let top = lines.get(..top_end).unwrap_or(&lines);
    let letter_date = letter::find_letter_date(top).or_else(|| {
        let below = lines.get(top_end..).unwrap_or_default();
        letter::find_letter_date(below)
    });
    let heading = letter::find_heading(top);

    let mut problems = Vec::new();
    // A year from the options is a fallback, not gospel: one that cannot be
    // a roadmap's is reported and not used.
    let fallback_year = match options.year {
        Some(year) if !dates::PLAUSIBLE_YEARS.contains(&year) => {
            problems.push(option_problem(format!("{year} is not a plausible year")));
            None
        }
        year => year,
    };
    let id = roadmap_id(
        options.roadmap_id.as_deref(),
        heading.as_deref(),
        letter_date.map(|date| date.year()).or(fallback_year),
        letter_date,
        &mut problems,
    );
    let title = match (heading, letter_date) {
        (Some(heading), _) => heading,
        (None, Some(date)) => format!("Roadmap of {}", years::long(date)),
        (None, None) => "Imported roadmap".to_string(),
    };
    let default_venue = options.default_venue.as_deref();
    let default_is_known = default_venue.is_some_and(|id| options.venues.iter().any(|v| v.id == id));
    let time_zone = if default_is_known {
        None
    } else {
        if jiff::tz::TimeZone::get(&options.default_time_zone).is_err() {
            problems.push(option_problem(format!(
                "the default time zone {:?} is not a known time zone",
                options.default_time_zone
            )));
        }
        Some(options.default_time_zone.clone())
    };

    let mut years = YearInference::new(letter_date, fallback_year);
    let mut table = 0;
    let mut events = Vec::new();
    for row in rows {
        // A new table starts its own chronology: the first table may list
        // meetings and the second documents, each in date order.
        if row.table != table {
            table = row.table;
            years = YearInference::new(letter_date, fallback_year);
        }
        let settled = match row.content {
            RowContent::Problem { message } => Err(message),
            RowContent::Row { date, title } => known_part_of_day(&date, &options.parts_of_day)
                .and_then(|()| years.settle(&date))
                .map(|when| (when, title)),
        };
        match settled {
            Ok((when, title)) => events.push(event(row.line, title, when, letter_date, options)),
            Err(message) => problems.push(RowProblem {
                line: row.line,
                text: row.text,
                message,
            }),
        }
    }
    assign_ids(&mut events);

    let roadmap = ImportedRoadmap {
        id,
        title,
        venue: options.default_venue.clone(),
        time_zone,
        lists: options.lists.clone(),
        events,
    };
    let toml = match render(&roadmap, &problems, options.skip_bad_rows) {
        Ok(toml) => toml,
        Err(message) => {
            problems.push(option_problem(message));
            String::new()
        }
    };
    // Problems with the options (line 0) first, then the letter's lines in
    // order (a stable sort keeps rows already in order as they are).
    problems.sort_by_key(|problem| problem.line);
    ImportReport {
        roadmap,
        toml,
        problems,
        letter_date,
    }
}

fn option_problem(message: String) -> RowProblem {
    RowProblem {
        line: 0,
        text: String::new(),
        message,
    }
}

/// The roadmap id: the one asked for (made valid if need be), else a slug
/// of the heading's first words and the letter's year, else the letter's
/// date ("roadmap-2016-11-15").
fn roadmap_id(
    asked: Option<&str>,
    heading: Option<&str>,
    year: Option<i16>,
    letter_date: Option<Date>,
    problems: &mut Vec<RowProblem>,
) -> String {
    if let Some(asked) = asked {
        if slug::is_valid_id(asked) {
            return asked.to_string();
        }
        let fixed = slug::slug(asked, usize::MAX);
        let used = if fixed.is_empty() {
            "a derived id"
        } else {
            fixed.as_str()
        };
        problems.push(option_problem(format!(
            "the roadmap id {asked:?} is not lowercase letters, digits and '-': using {used}"
        )));
        if !fixed.is_empty() {
            return fixed;
        }
    }
    let from_heading = heading.map(|heading| slug::slug(heading, 3)).unwrap_or_default();
    match (from_heading.is_empty(), year, letter_date) {
        (false, Some(year), _) => format!("{from_heading}-{year}"),
        (false, None, _) => from_heading,
        (true, _, Some(date)) => format!("roadmap-{date}"),
        (true, Some(year), None) => format!("roadmap-{year}"),
        (true, None, None) => "roadmap".to_string(),
    }
}

/// An event from a row that was read, before ids are given out.
fn event(
    line: usize,
    title: String,
    when: When,
    letter_date: Option<Date>,
    options: &ImportOptions,
) -> ImportedEvent {
    let kind = kinds::guess_kind(&title);
    // A venue the row names, unless it is the roadmap's anyway.
    let venue = venues::venue_named_in(&title, &options.venues)
        .map(|venue| venue.id.clone())
        .filter(|id| options.default_venue.as_ref() != Some(id));
    let past = match (letter_date, when.last_day()) {
        (Some(letter), Some(last)) => last < letter,
        _ => false,
    };
    let mut event = ImportedEvent {
        id: String::new(),
        title,
        kind,
        date: None,
        end_date: None,
        start: None,
        end: None,
        part_of_day: None,
        week_of: None,
        ongoing: false,
        venue,
        past,
        line,
    };
    match when {
        When::Ongoing => event.ongoing = true,
        When::WeekOf(day) => event.week_of = Some(day),
        When::Days {
            first,
            last,
            start,
            end,
            part_of_day,
        } => {
            event.date = Some(first);
            event.end_date = last;
            event.start = start;
            event.end = end;
            event.part_of_day = part_of_day;
        }
    }
    event
}

/// A part of the day the configuration does not define would not load; it
/// is checked before the year, so that the row does not move the
/// chronology on.
fn known_part_of_day(date: &DateSpec, known: &[String]) -> Result<(), String> {
    match date {
        DateSpec::Days {
            part_of_day: Some(part),
            ..
        } if !known.iter().any(|name| name == part.as_str()) => Err(format!(
            "the {} is not a part of the day the configuration defines ({}): add it to \
             [parts_of_day] in herald.toml, or give the row's hours",
            part.as_str(),
            if known.is_empty() {
                "it defines none".to_string()
            } else {
                known.join(", ")
            }
        )),
        _ => Ok(()),
    }
}

/// Slugs of the titles, made unique with the event's day where needed.
fn assign_ids(events: &mut [ImportedEvent]) {
    let candidates: Vec<(String, Option<String>)> = events
        .iter()
        .map(|event| {
            let slug = slug::slug(&event.title, slug::MAX_WORDS);
            let slug = if slug.is_empty() {
                "event".to_string()
            } else {
                slug
            };
            let day = event.date.or(event.week_of).map(|day| day.to_string());
            (slug, day)
        })
        .collect();
    for (event, id) in events.iter_mut().zip(slug::unique_ids(&candidates)) {
        event.id = id;
    }
}

/// The TOML text, written from the file schema; with `skip_bad_rows`,
/// headed by a comment naming the rows left out.
fn render(roadmap: &ImportedRoadmap, problems: &[RowProblem], skip_bad_rows: bool) -> Result<String, String> {
    let body = toml::to_string(&roadmap.to_file())
        .map_err(|error| format!("could not write the roadmap as TOML: {error}"))?;
    let skipped: Vec<&RowProblem> = problems.iter().filter(|problem| problem.line > 0).collect();
    if !skip_bad_rows || skipped.is_empty() {
        return Ok(body);
    }
    // A comment cannot hold control characters (nor, of course, a newline).
    let clean = |text: &str| -> String {
        text.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    let mut out = String::from("# Rows of the letter that could not be read and were left out:\n");
    for problem in skipped {
        out.push_str(&format!(
            "#   line {}: {}\n#     {}\n",
            problem.line,
            clean(problem.text.trim()),
            clean(&problem.message)
        ));
    }
    out.push('\n');
    out.push_str(&body);
    Ok(out)
}
