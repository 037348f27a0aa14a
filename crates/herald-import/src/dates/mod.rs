//! The date forms of a roadmap row's first cell: reads "November 22, from
//! 15:00 to 18:00", "1 and 2 December", "20–22 February", "2 October
//! (afternoon)", "Week of 23 October", "Ongoing" and the like into a
//! [`DateSpec`].
//!
//! The year is usually not written in a row, so a [`DateSpec`] keeps it
//! optional; `years.rs` settles it once the letter's date and the table's
//! order are known. Everything that can be checked without the year (a
//! known month, a day between 1 and 31, times that end after they start) is
//! checked here, and every failure is a message for the operator, never a
//! panic.
//!
//! The parts, one purpose each:
//! - `tokens.rs`: a cell -> numbers, clock times, words and dashes;
//! - `words.rs`: the words of dates (months, weekdays, parts of the day,
//!   "TBD") and the English names used in messages;
//! - `parser.rs`: the cursor over a cell's tokens, and its single-token reads;
//! - `days.rs`: one day, or a range of days, and what follows them;
//! - `times.rs`: the times of day ("15:00", "3 p.m.", "10-11 a.m.").

mod days;
mod parser;
mod times;
mod tokens;
mod words;

#[cfg(test)]
mod tests;

use jiff::civil::{Time, Weekday};

use crate::model::PartOfDay;

use parser::Parser;
pub(crate) use words::{is_month_word, month_name, weekday_name};

/// A day as a cell names it. The month is always known once a cell has been
/// read; the year only when the cell writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DayRef {
    pub month: i8,
    pub day: i8,
    pub year: Option<i16>,
    /// The weekday the cell names ("Tuesday, November 22"), checked once the
    /// year is known.
    pub weekday: Option<Weekday>,
}

/// What the first cell of a row says about when the event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateSpec {
    /// "Ongoing", "TBD", "To be determined": no date at all.
    Ongoing,
    /// "Week of 23 October": the week beginning that day.
    WeekOf(DayRef),
    /// One day or a run of days, maybe with times or a part of the day.
    Days {
        first: DayRef,
        /// The last day of a multi-day event. When `first` has a year, so
        /// does `last` (a range never leaves its year unsettled on one end).
        last: Option<DayRef>,
        /// "1 and 2 December": two days that must follow each other, checked
        /// once the year is known (31 December and 1 January do).
        joined_by_and: bool,
        start: Option<Time>,
        end: Option<Time>,
        part_of_day: Option<PartOfDay>,
    },
}

/// The years a roadmap can plausibly be in; a year outside them is a typo
/// (and would not print as a four-digit ISO year).
pub(crate) const PLAUSIBLE_YEARS: std::ops::RangeInclusive<i16> = 1900..=2199;

/// Reads the first cell of a row. The error is a message for the operator.
pub(crate) fn parse_date_cell(cell: &str) -> Result<DateSpec, String> {
    let tokens = tokens::tokenize(cell)?;
    if tokens.is_empty() {
        return Err("the date is empty".to_string());
    }
    if words::is_unscheduled(&tokens) {
        return Ok(DateSpec::Ongoing);
    }
    let mut parser = Parser::new(&tokens);
    if parser.eat_word(&["week"]) {
        parser.eat_word(&["of", "beginning", "starting", "commencing"]);
        let day = parser.day()?;
        let Some(month) = day.month else {
            return Err(format!("the week of {} has no month", day.day));
        };
        parser.expect_end()?;
        return Ok(DateSpec::WeekOf(DayRef {
            month,
            day: day.day,
            year: day.year,
            weekday: day.weekday,
        }));
    }
    parser.days()
}
