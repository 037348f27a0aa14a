//! What the letter says about itself above its tables: its own date ("New
//! York, 12 November 2016") and the bold heading of the roadmap.

use jiff::civil::Date;

use super::dates::{DateSpec, parse_date_cell};
use super::table::words;

/// The letter's own date: the first line above the tables that is a date
/// with a year by itself ("15 November 2016"), or after a place ("New York,
/// 12 November 2016"). Dates inside sentences are not the letter's date
/// ("a letter dated 12 November 2016"), so only such short lines count.
pub(crate) fn find_letter_date(top: &[&str]) -> Option<Date> {
    top.iter().find_map(|line| date_line(line))
}

fn date_line(line: &str) -> Option<Date> {
    let line = line.trim();
    if line.is_empty() || line.chars().count() > 80 {
        return None;
    }
    // The whole line, then what follows each comma ("New York, 12 November
    // 2016", "Geneva, Tuesday, 15 November 2016").
    let mut suffixes = std::iter::once(line).chain(
        line.char_indices()
            .filter(|&(_, c)| c == ',')
            .filter_map(|(at, _)| line.get(at + 1..)),
    );
    suffixes.find_map(|candidate| match parse_date_cell(candidate) {
        Ok(DateSpec::Days {
            first,
            last: None,
            start: None,
            end: None,
            part_of_day: None,
            ..
        }) => Date::new(first.year?, first.month, first.day).ok(),
        _ => None,
    })
}

/// The last bold heading (`**...**`, possibly over a few lines) above the
/// first table, with its markers removed and whitespace (and control
/// characters) collapsed.
pub(crate) fn find_heading(top: &[&str]) -> Option<String> {
    const MAX_LINES: usize = 4;
    let mut heading = None;
    let mut index = 0;
    while let Some(line) = top.get(index) {
        let trimmed = line.trim();
        index += 1;
        if !trimmed.starts_with("**") || trimmed == "**" {
            continue;
        }
        // Gather lines until one closes the bold text.
        let mut parts = vec![trimmed];
        let mut closed = trimmed.len() >= 4 && trimmed.ends_with("**");
        while !closed && parts.len() < MAX_LINES {
            let Some(next) = top.get(index) else { break };
            let next = next.trim();
            if next.is_empty() {
                break;
            }
            parts.push(next);
            index += 1;
            closed = next.ends_with("**");
        }
        if closed {
            let text = parts.join(" ").replace("**", " ");
            let text = words(&text).collect::<Vec<_>>().join(" ");
            if !text.is_empty() {
                heading = Some(text);
            }
        }
    }
    heading
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn letter_dates() {
        assert_eq!(
            find_letter_date(&["", "15 November 2016", "x"]),
            Some(date(2016, 11, 15))
        );
        assert_eq!(
            find_letter_date(&["New York, 12 November 2016"]),
            Some(date(2016, 11, 12))
        );
        assert_eq!(
            find_letter_date(&["Geneva, Tuesday, 15 November 2016"]),
            Some(date(2016, 11, 15))
        );
        assert_eq!(find_letter_date(&["December 5, 2016"]), Some(date(2016, 12, 5)));
        // Dates in sentences, dates without a year and ranges are not it.
        assert_eq!(
            find_letter_date(&[
                "Please find attached a letter dated 12 November 2016 from H.E.",
                "15 November",
                "1 and 2 December 2016",
                "September 2017",
            ]),
            None
        );
        // A wrong weekday is taken for a slip: the date itself is what counts.
        assert_eq!(
            find_letter_date(&["Monday, 15 November 2016"]),
            Some(date(2016, 11, 15))
        );
    }

    #[test]
    fn headings() {
        let top = [
            "**Not this one**",
            "",
            "**Modalities resolution for the intergovernmental conference",
            "for safe, orderly and regular migration**",
            "",
            "Proposed roadmap",
        ];
        assert_eq!(
            find_heading(&top),
            Some(
                "Modalities resolution for the intergovernmental conference for safe, orderly and regular migration"
                    .to_string()
            )
        );
        assert_eq!(find_heading(&["No bold here", "** unclosed", "text"]), None);
        assert_eq!(find_heading(&["**", "****"]), None);
        // Control characters are not kept: herald refuses them in titles.
        assert_eq!(
            find_heading(&["**Roadmap\u{e}of\u{7f}**"]).as_deref(),
            Some("Roadmap of")
        );
        assert_eq!(find_heading(&["**\u{e}**"]), None);
    }
}
