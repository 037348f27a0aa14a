//! Focal points from `lists/*.toml` and `lists/*.csv`.
//!
//! Operators keep distribution lists in spreadsheets, so a CSV file with a
//! header row is as good as TOML. Both become the same rows, checked by the
//! same code; a CSV problem is reported by line (and column name), a TOML
//! problem by line and column. A focal point that names no list is on the
//! list named like its file.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::files::Files;
use crate::config::settings::unknown_list_message;
use crate::config::{raw, toml_error, values};
use crate::diagnostics::{Diagnostic, Diagnostics, Place, SourceFile};
use crate::key::AddressKey;
use crate::model::{FocalPoint, List, Origin};

/// The columns a CSV list may have; `name` and `email` are required.
const CSV_COLUMNS: &[&str] = &[
    "name",
    "email",
    "mission",
    "honorific",
    "language",
    "time_zone",
    "lists",
    "leads",
];

/// Where a field or row was written. Only a problem's place is ever shown,
/// so it is worked out then: finding the line of a span scans the file, and
/// doing it for every field of 10,000 focal points made loading quadratic.
#[derive(Clone)]
enum At {
    /// A span of a TOML file.
    Span(std::ops::Range<usize>),
    /// A CSV line, and the column (named in the message, as a spreadsheet
    /// user looks for it).
    Cell { line: usize, column: &'static str },
}

impl At {
    fn error(&self, src: &SourceFile<'_>, message: String) -> Diagnostic {
        match self {
            At::Span(span) => src.at(span.clone(), message),
            At::Cell { line, column } => Diagnostic {
                file: src.path.to_owned(),
                place: Place::Line(*line),
                message: if column.is_empty() {
                    message
                } else {
                    format!("column {column}: {message}")
                },
                snippet: None,
            },
        }
    }
}

/// One field of a focal point, with where it was written.
struct Field {
    text: String,
    at: At,
}

impl Field {
    fn error(&self, src: &SourceFile<'_>, message: String) -> Diagnostic {
        self.at.error(src, message)
    }
}

/// A focal point as read, before checking; the same for TOML and CSV.
struct Row {
    at: At,
    name: Field,
    email: Field,
    mission: Option<Field>,
    honorific: Option<Field>,
    language: Option<Field>,
    time_zone: Option<Field>,
    lists: Vec<Field>,
    leads: Vec<Field>,
}

/// Loads every list file; duplicates across files are reported.
///
/// `lists` is `None` when herald.toml could not be read: then the lists
/// named are not checked, rather than each reported as unknown.
pub fn load_all(
    source: Files<'_>,
    files: &[PathBuf],
    lists: Option<&BTreeMap<String, List>>,
    default_language: &str,
    diagnostics: &mut Diagnostics,
) -> Vec<FocalPoint> {
    let mut focal_points = Vec::new();
    // Each address's first place: its file (in `texts`) and field.
    let mut seen: HashMap<AddressKey, (usize, At)> = HashMap::new();
    let mut texts: Vec<(&Path, String)> = Vec::new();
    for path in files {
        let text = match source.read_to_string(path) {
            Ok(text) => text,
            Err(err) => {
                diagnostics.file(path, format!("cannot read: {err}"));
                continue;
            }
        };
        let src = SourceFile { path, text: &text };
        let rows = if path.extension().is_some_and(|e| e == "csv") {
            csv_rows(&src, diagnostics)
        } else {
            toml_rows(&src, diagnostics)
        };
        let file_list = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let file: Arc<Path> = Arc::from(path.as_path());
        let mut lines = Lines::new(&text);
        for row in rows {
            let Some(mut focal_point) =
                check_row(&src, &row, &file_list, lists, default_language, diagnostics)
            else {
                continue;
            };
            focal_point.origin = Some(Origin {
                file: file.clone(),
                line: match &row.email.at {
                    At::Span(span) => lines.line_of(span.start),
                    At::Cell { line, .. } => *line,
                },
            });
            // Two addresses are one focal point when their keys agree.
            let key = AddressKey::of(focal_point.email.as_ref());
            if let Some((file, at)) = seen.get(&key) {
                let first = match texts.get(*file) {
                    Some((path, text)) => at.error(&SourceFile { path, text }, String::new()),
                    None => at.error(&src, String::new()),
                };
                diagnostics.push(row.email.error(
                    &src,
                    format!(
                        "{} is listed twice; the first is at {}: merge the two (a focal point can be on several lists)",
                        focal_point.email,
                        first.location()
                    ),
                ));
                continue;
            }
            seen.insert(key, (texts.len(), row.email.at.clone()));
            focal_points.push(focal_point);
        }
        texts.push((path, text));
    }
    focal_points
}

fn check_row(
    src: &SourceFile<'_>,
    row: &Row,
    file_list: &str,
    lists: Option<&BTreeMap<String, List>>,
    default_language: &str,
    diagnostics: &mut Diagnostics,
) -> Option<FocalPoint> {
    let errors_before = diagnostics.len();
    let mut run = |field: &Field, result: Result<_, String>| match result {
        Ok(value) => Some(value),
        Err(message) => {
            diagnostics.push(field.error(src, message));
            None
        }
    };
    let name = run(&row.name, values::one_line(&row.name.text, "the name"));
    let email = match values::address(&row.email.text) {
        Ok(address) => Some(address),
        Err(message) => {
            diagnostics.push(row.email.error(src, message));
            None
        }
    };
    let mission = optional(
        src,
        &row.mission,
        |t| values::one_line(t, "the mission"),
        diagnostics,
    );
    let honorific = optional(
        src,
        &row.honorific,
        |t| values::one_line(t, "the honorific"),
        diagnostics,
    );
    let language = optional(src, &row.language, values::language, diagnostics)
        .unwrap_or_else(|| default_language.to_owned());
    let zone = optional(src, &row.time_zone, values::zone, diagnostics);
    let mut list_ids = Vec::new();
    for field in &row.lists {
        match lists {
            Some(lists) if !lists.contains_key(&field.text) => {
                diagnostics.push(field.error(src, unknown_list_message(&field.text, lists)));
            }
            _ => list_ids.push(field.text.clone()),
        }
    }
    if row.lists.is_empty() {
        if lists.is_none_or(|lists| lists.contains_key(file_list)) {
            list_ids.push(file_list.to_owned());
        } else {
            diagnostics.push(row.at.error(
                src,
                format!(
                    "this focal point names no list, and there is no list {file_list:?} named like the file: add `lists`, or declare [lists.{file_list}] in herald.toml"
                ),
            ));
        }
    }
    let mut leads = Vec::new();
    for field in &row.leads {
        match values::lead(&field.text) {
            Ok(lead) => leads.push(lead),
            Err(message) => diagnostics.push(field.error(src, message)),
        }
    }
    if diagnostics.len() > errors_before {
        return None;
    }
    Some(FocalPoint {
        name: name?,
        email: email?,
        mission,
        honorific,
        language,
        zone,
        lists: list_ids,
        leads: if row.leads.is_empty() { None } else { Some(leads) },
        // Set by the caller, which has the file's lines.
        origin: None,
    })
}

/// The line of a byte offset of a text, for offsets met in increasing
/// order (the focal points of a file): each newline is counted once, so a
/// file of 10,000 focal points is read once, not once per focal point.
struct Lines<'a> {
    text: &'a str,
    offset: usize,
    line: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        Lines {
            text,
            offset: 0,
            line: 1,
        }
    }

    fn line_of(&mut self, offset: usize) -> usize {
        if offset < self.offset {
            // Not in order after all: count again from the start.
            *self = Lines::new(self.text);
        }
        let offset = offset.min(self.text.len());
        let skipped = self.text.as_bytes()[self.offset..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.line += skipped;
        self.offset = offset;
        self.line
    }
}

fn optional<T>(
    src: &SourceFile<'_>,
    field: &Option<Field>,
    validate: impl FnOnce(&str) -> Result<T, String>,
    diagnostics: &mut Diagnostics,
) -> Option<T> {
    let field = field.as_ref()?;
    match validate(&field.text) {
        Ok(value) => Some(value),
        Err(message) => {
            diagnostics.push(field.error(src, message));
            None
        }
    }
}

fn toml_rows(src: &SourceFile<'_>, diagnostics: &mut Diagnostics) -> Vec<Row> {
    let file: raw::FocalPointsFile = match toml::from_str(src.text) {
        Ok(file) => file,
        Err(err) => {
            diagnostics.push(toml_error(src, &err));
            return Vec::new();
        }
    };
    let field = |text: &raw::Text| Field {
        text: text.get_ref().clone(),
        at: At::Span(text.span()),
    };
    file.focal_points
        .iter()
        .map(|spanned| {
            let fp = spanned.get_ref();
            Row {
                at: At::Span(spanned.span()),
                name: field(&fp.name),
                email: field(&fp.email),
                mission: fp.mission.as_ref().map(field),
                honorific: fp.honorific.as_ref().map(field),
                language: fp.language.as_ref().map(field),
                time_zone: fp.time_zone.as_ref().map(field),
                lists: fp.lists.iter().flatten().map(field).collect(),
                leads: fp.leads.iter().flatten().map(field).collect(),
            }
        })
        .collect()
}

fn csv_rows(src: &SourceFile<'_>, diagnostics: &mut Diagnostics) -> Vec<Row> {
    let path = src.path;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(src.text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(headers) => headers
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_lowercase())
            .collect(),
        Err(err) => {
            diagnostics.line(path, 1, format!("cannot read the header row: {err}"));
            return Vec::new();
        }
    };
    let mut header_ok = true;
    for header in &headers {
        if !CSV_COLUMNS.contains(&header.as_str()) {
            diagnostics.line(
                path,
                1,
                format!(
                    "unknown column {header:?}: the columns are {}",
                    CSV_COLUMNS.join(", ")
                ),
            );
            header_ok = false;
        }
    }
    for required in ["name", "email"] {
        if !headers.iter().any(|h| h == required) {
            diagnostics.line(path, 1, format!("the header row has no {required:?} column"));
            header_ok = false;
        }
    }
    if !header_ok {
        return Vec::new();
    }
    let column = |name: &str| headers.iter().position(|h| h == name);
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(err) => {
                let line = err.position().map_or(0, |p| p.line() as usize);
                let message = match err.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!(
                        "this row has {len} fields but the header has {expected_len}: a missing or extra column (quote a field that contains a comma)"
                    ),
                    _ => format!("cannot read this row: {err}"),
                };
                diagnostics.line(path, line, message);
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        let at = |column: &'static str| At::Cell { line, column };
        let cell = |name: &'static str| -> Option<Field> {
            let text = record.get(column(name)?)?;
            (!text.is_empty()).then(|| Field {
                text: text.to_owned(),
                at: at(name),
            })
        };
        let split = |name: &'static str| -> Vec<Field> {
            cell(name)
                .map(|field| {
                    field
                        .text
                        .split([';', '|'])
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Field {
                            text: s.to_owned(),
                            at: at(name),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let required = |name: &'static str| {
            cell(name).unwrap_or(Field {
                text: String::new(),
                at: at(name),
            })
        };
        rows.push(Row {
            at: at(""),
            name: required("name"),
            email: required("email"),
            mission: cell("mission"),
            honorific: cell("honorific"),
            language: cell("language"),
            time_zone: cell("time_zone"),
            lists: split("lists"),
            leads: split("leads"),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::Lines;

    #[test]
    fn lines_are_counted_once_in_order_and_again_out_of_order() {
        let text = "a\nb\nc\n";
        let mut lines = Lines::new(text);
        assert_eq!(lines.line_of(0), 1);
        assert_eq!(lines.line_of(2), 2);
        assert_eq!(lines.line_of(4), 3);
        assert_eq!(lines.line_of(2), 2, "an offset met again, out of order");
        assert_eq!(lines.line_of(100), 4, "past the end: its last line");
    }
}
