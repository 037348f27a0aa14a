//! Finding the roadmap tables in a letter's text: which lines are rows (a
//! date cell, then a description), which are rows gone wrong, and which are
//! just prose.
//!
//! A row is a line whose cells are separated by a TAB (as letters pasted
//! from a word processor have them), or failing a tab by " | " or two or
//! more spaces, and whose first cell reads as a date (see `dates.rs`).
//! Neighbouring tab lines, with nothing but blank lines between them, form a
//! block; a block in which some line is a row, or in which some first cell
//! names a month, is a table, and its tab lines that are not rows are
//! reported, not dropped. Other tab lines (a signature block laid out with
//! tabs) are prose. Lines without a tab are rows only when they read
//! cleanly: they can never be problems, since prose looks like that too.

use super::dates::{DateSpec, is_month_word, parse_date_cell};

/// A line of a table, numbered from 1 as editors do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableLine {
    pub line: usize,
    /// Which table of the letter the line is in, counting from 0. Each
    /// table has its own chronological order.
    pub table: usize,
    /// The line as written, for messages.
    pub text: String,
    pub content: RowContent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RowContent {
    Row { date: DateSpec, title: String },
    Problem { message: String },
}

/// A line as first seen, before blocks are looked at.
enum Candidate<'a> {
    Blank,
    Prose,
    /// A header row (`Date<TAB>Activity`): part of a table, but not an event.
    Header,
    /// A line with a tab.
    Tabbed {
        first: &'a str,
        rest: String,
    },
    /// A line without a tab that read as a row.
    Spaced {
        date: DateSpec,
        title: String,
    },
}

/// The rows (and problem rows) of all tables in the letter, in order.
pub(crate) fn find_rows(lines: &[&str]) -> Vec<TableLine> {
    let candidates: Vec<Candidate> = lines.iter().map(|line| candidate(line)).collect();
    let mut rows = Vec::new();
    let mut tables = 0;
    let mut block: Vec<usize> = Vec::new();
    for (index, candidate) in candidates.iter().enumerate() {
        match candidate {
            Candidate::Blank => {}
            Candidate::Prose => {
                emit_block(&block, lines, &candidates, &mut tables, &mut rows);
                block.clear();
            }
            _ => block.push(index),
        }
    }
    emit_block(&block, lines, &candidates, &mut tables, &mut rows);
    rows
}

/// Adds the lines of a block to `rows` if the block is a table, counting it
/// in `tables`.
fn emit_block(
    block: &[usize],
    lines: &[&str],
    candidates: &[Candidate],
    tables: &mut usize,
    rows: &mut Vec<TableLine>,
) {
    let mut parsed = Vec::new();
    let mut is_table = false;
    for &index in block {
        let Some(candidate) = candidates.get(index) else {
            continue;
        };
        let content = match candidate {
            Candidate::Blank | Candidate::Prose | Candidate::Header => continue,
            Candidate::Spaced { date, title } => RowContent::Row {
                date: *date,
                title: title.clone(),
            },
            Candidate::Tabbed { first, rest } => {
                if names_a_month(first) {
                    is_table = true;
                }
                match parse_date_cell(first) {
                    Ok(_) if rest.is_empty() => RowContent::Problem {
                        message: "the row has a date but no description".to_string(),
                    },
                    Ok(date) => RowContent::Row {
                        date,
                        title: rest.clone(),
                    },
                    Err(message) => RowContent::Problem {
                        message: format!("cannot read the date {first:?}: {message}"),
                    },
                }
            }
        };
        if matches!(content, RowContent::Row { .. }) {
            is_table = true;
        }
        parsed.push(TableLine {
            line: index + 1,
            table: *tables,
            text: lines.get(index).copied().unwrap_or_default().to_string(),
            content,
        });
    }
    if is_table {
        rows.extend(parsed);
        *tables += 1;
    }
}

fn candidate(line: &str) -> Candidate<'_> {
    if line.trim().is_empty() {
        return Candidate::Blank;
    }
    if line.contains('\t') {
        // Empty cells are layout (a leading tab, two tabs for alignment).
        let cells: Vec<&str> = line
            .split('\t')
            .map(str::trim)
            .filter(|cell| words(cell).next().is_some())
            .collect();
        let Some((first, rest)) = cells.split_first() else {
            return Candidate::Blank;
        };
        if is_header(first) {
            return Candidate::Header;
        }
        return Candidate::Tabbed {
            first,
            rest: normalise_title(&rest.join("; ")),
        };
    }
    match split_spaced(line) {
        Some((first, rest)) => match (parse_date_cell(first), normalise_title(rest)) {
            (Ok(_), title) if title.is_empty() => Candidate::Prose,
            (Ok(date), title) => Candidate::Spaced { date, title },
            (Err(_), _) => Candidate::Prose,
        },
        None => Candidate::Prose,
    }
}

/// "Date", "Dates", "When", ...: the first cell of a table's header row.
fn is_header(cell: &str) -> bool {
    let cell = cell.trim_end_matches(':').trim().to_lowercase();
    matches!(
        cell.as_str(),
        "date" | "dates" | "date/time" | "date and time" | "when" | "time" | "timing" | "day"
    )
}

fn names_a_month(cell: &str) -> bool {
    cell.split(|c: char| !c.is_alphabetic() && c != '.')
        .any(is_month_word)
}

/// Splits a line without tabs at " | " (a Markdown or plain-text table,
/// outer pipes ignored) or else at its first run of two or more spaces.
fn split_spaced(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    let unpiped = line.strip_prefix('|').unwrap_or(line);
    let unpiped = unpiped.strip_suffix('|').unwrap_or(unpiped).trim();
    let (first, rest) = match unpiped.split_once(" | ") {
        Some(split) => split,
        None => unpiped.split_once("  ")?,
    };
    let (first, rest) = (first.trim(), rest.trim());
    if first.is_empty() || rest.is_empty() {
        return None;
    }
    Some((first, rest))
}

/// The words of a title or heading: split at whitespace and at control
/// characters, which text copied out of PDFs and word processors carries
/// and which herald refuses in titles (they could forge a mail header).
pub(crate) fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
}

/// Collapses whitespace (and control characters), turns further " | "
/// cells into "; ", and joins ordinal suffixes that PDF copies split from
/// their number ("1 st reading" -> "1st reading").
pub(crate) fn normalise_title(text: &str) -> String {
    let text = text.replace(" | ", "; ");
    let mut words: Vec<String> = Vec::new();
    for word in self::words(&text) {
        let is_suffix = matches!(word, "st" | "nd" | "rd" | "th");
        match words.last_mut() {
            Some(previous) if is_suffix && previous.chars().all(|c| c.is_ascii_digit()) => {
                previous.push_str(word);
            }
            _ => words.push(word.to_string()),
        }
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(text: &str) -> Vec<(usize, Result<String, String>)> {
        let lines: Vec<&str> = text.split('\n').collect();
        find_rows(&lines)
            .into_iter()
            .map(|row| {
                let content = match row.content {
                    RowContent::Row { title, .. } => Ok(title),
                    RowContent::Problem { message } => Err(message),
                };
                (row.line, content)
            })
            .collect()
    }

    #[test]
    fn tab_rows_and_problem_rows() {
        let text = "The roadmap is as follows:\n\
                    \n\
                    Ongoing\tInformal meetings\n\
                    November 22\tOpen  exchange\n\
                    Novembre 23\tCirculation\n\
                    \n\
                    25 Septober\tSomething\n\
                    December 1\t\n\
                    Date\tActivity\n\
                    \n\
                    Thank you.\n\
                    Juan\tJürg";
        assert_eq!(
            summary(text),
            vec![
                (3, Ok("Informal meetings".to_string())),
                (4, Ok("Open exchange".to_string())),
                (
                    5,
                    Err("cannot read the date \"Novembre 23\": 'Novembre' is not a month".to_string())
                ),
                (
                    7,
                    Err("cannot read the date \"25 Septober\": 'Septober' is not a month".to_string())
                ),
                (8, Err("the row has a date but no description".to_string())),
            ]
        );
    }

    #[test]
    fn tabbed_prose_is_not_a_table() {
        let text = "Juan José Gómez Camacho\tJürg Lauber\nAmbassador\tAmbassador";
        assert_eq!(summary(text), vec![]);
    }

    #[test]
    fn a_table_of_unreadable_dates_is_still_reported() {
        let text = "Mid-November\tCirculation\nEarly December\tConsultations";
        assert_eq!(summary(text).len(), 2);
        assert!(summary(text).iter().all(|(_, content)| content.is_err()));
    }

    #[test]
    fn rows_separated_by_spaces_or_pipes() {
        let text = "We write to you on 12 November 2016.  The roadmap:\n\
                    \n\
                    25 September    Circulation of a zero draft\n\
                    | 2 October (afternoon) | 1 st reading |\n\
                    | Date | Activity |\n\
                    New York, 12 November 2016\n\
                    15 November 2016\n\
                    Ongoing consultations  will continue.";
        assert_eq!(
            summary(text),
            vec![
                (3, Ok("Circulation of a zero draft".to_string())),
                (4, Ok("1st reading".to_string())),
            ]
        );
    }

    #[test]
    fn extra_cells_and_leading_tabs() {
        let text = "\t25 August\tSubmission\tSecretariat";
        assert_eq!(
            summary(text),
            vec![(1, Ok("Submission; Secretariat".to_string()))]
        );
    }

    #[test]
    fn titles_are_normalised() {
        assert_eq!(normalise_title("  1 st   reading "), "1st reading");
        assert_eq!(normalise_title("the 2 nd and 3 rd"), "the 2nd and 3rd");
        assert_eq!(normalise_title("first st"), "first st");
        // Control characters (from copies out of PDFs) are not kept: herald
        // refuses them in titles.
        assert_eq!(normalise_title("1st\u{1}reading\u{86}"), "1st reading");
    }

    #[test]
    fn cells_of_control_characters_are_empty() {
        let text = "New York, 12 November 2016\n\n\
                    25 September\t\u{86}\n\
                    2 October\t\u{1}\tFirst reading\n\
                    \n\
                    5 October  \u{7f}";
        assert_eq!(
            summary(text),
            vec![
                (3, Err("the row has a date but no description".to_string())),
                (4, Ok("First reading".to_string())),
            ]
        );
    }
}
