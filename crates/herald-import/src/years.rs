//! Settling the years that rows leave out, and with them the real calendar
//! days of each row (a [`When`]).
//!
//! Letters write "25 September", not "25 September 2017". The year comes
//! from, in this order: a year the row writes; the previous dated row of the
//! same table (`mod.rs` starts a new inference for each table), rolling
//! over to the next year when the month goes backwards (roadmaps are in
//! chronological order and may run past a year end); for the first dated row,
//! the letter's own date; failing that, the year the operator passes.
//! This is also where impossible days ("31 February") and wrong weekdays are
//! caught, since only with the year does jiff know which days exist.

use jiff::ToSpan;
use jiff::civil::{Date, Time};

use super::dates::{DateSpec, DayRef, month_name, weekday_name};
use super::model::PartOfDay;

/// When an event is, in calendar days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    Ongoing,
    WeekOf(Date),
    Days {
        first: Date,
        last: Option<Date>,
        start: Option<Time>,
        end: Option<Time>,
        part_of_day: Option<PartOfDay>,
    },
}

impl When {
    /// The last day the event covers, if it is scheduled at all: a week runs
    /// to its seventh day.
    pub(crate) fn last_day(&self) -> Option<Date> {
        match *self {
            When::Ongoing => None,
            When::WeekOf(monday) => Some(monday.checked_add(6.days()).unwrap_or(monday)),
            When::Days { first, last, .. } => Some(last.unwrap_or(first)),
        }
    }
}

/// Walks the rows of a letter in order, carrying what the year inference
/// needs from one row to the next.
#[derive(Debug)]
pub(crate) struct YearInference {
    letter_date: Option<Date>,
    fallback_year: Option<i16>,
    /// The last day of the previous row that had a date.
    previous: Option<Date>,
}

impl YearInference {
    pub(crate) fn new(letter_date: Option<Date>, fallback_year: Option<i16>) -> Self {
        Self {
            letter_date,
            fallback_year,
            previous: None,
        }
    }

    /// The calendar days of the next row. Errors are messages for the
    /// operator; a row in error does not move the chronology on.
    pub(crate) fn settle(&mut self, spec: &DateSpec) -> Result<When, String> {
        let when = match *spec {
            DateSpec::Ongoing => return Ok(When::Ongoing),
            DateSpec::WeekOf(day) => When::WeekOf(self.date_of(day)?),
            DateSpec::Days {
                first,
                last,
                joined_by_and,
                start,
                end,
                part_of_day,
            } => {
                let first_date = self.date_of(first)?;
                let last_date = match last {
                    None => None,
                    Some(last) => {
                        // A range without a written year is in the year of
                        // its first day, or the next if it crosses a year end.
                        let year = match last.year {
                            Some(year) => year,
                            None if last.month < first.month => next_year(first_date.year())?,
                            None => first_date.year(),
                        };
                        Some(checked_date(year, last)?)
                    }
                };
                if let Some(last_date) = last_date {
                    if last_date <= first_date {
                        return Err(format!(
                            "the range ends on {}, not after it begins on {}",
                            long(last_date),
                            long(first_date)
                        ));
                    }
                    if joined_by_and && first_date.tomorrow().ok() != Some(last_date) {
                        return Err(format!(
                            "{} and {} are not consecutive days: write a range (\"to\") \
                             or one row per day",
                            long(first_date),
                            long(last_date)
                        ));
                    }
                }
                When::Days {
                    first: first_date,
                    last: last_date,
                    start,
                    end,
                    part_of_day,
                }
            }
        };
        self.previous = when.last_day().or(self.previous);
        Ok(when)
    }

    /// The date of a row's first (or only) day, settling its year.
    fn date_of(&self, day: DayRef) -> Result<Date, String> {
        let year = match (day.year, self.previous, self.letter_date, self.fallback_year) {
            (Some(year), ..) => year,
            // Chronological order: a month earlier than the previous row's
            // means the roadmap has crossed into the next year.
            (None, Some(previous), ..) if day.month < previous.month() => next_year(previous.year())?,
            (None, Some(previous), ..) => previous.year(),
            (None, None, Some(letter), _) => year_near(letter, day),
            (None, None, None, Some(year)) => year,
            (None, None, None, None) => return Err("no year: pass --year".to_string()),
        };
        checked_date(year, day)
    }
}

/// The year of the first dated row, going by the letter's date: the one that
/// puts the row between two months before the letter and ten months after.
/// A roadmap looks ahead, but may recall a deadline that has just passed
/// ("25 August" in a letter of 14 September); a "January 20" in a letter of
/// November is next January, and a "December 20" in a letter of early
/// January is last December.
fn year_near(letter: Date, day: DayRef) -> i16 {
    let earliest = letter.checked_sub(2.months()).unwrap_or(letter);
    let latest = letter.checked_add(10.months()).unwrap_or(letter);
    let year = letter.year();
    [Some(year), year.checked_sub(1), year.checked_add(1)]
        .into_iter()
        .flatten()
        .find(|&candidate| {
            Date::new(candidate, day.month, day.day).is_ok_and(|date| earliest <= date && date < latest)
        })
        .unwrap_or(year)
}

fn next_year(year: i16) -> Result<i16, String> {
    year.checked_add(1).ok_or_else(|| format!("no year after {year}"))
}

/// The day in that year, if it exists and is the weekday the row says.
fn checked_date(year: i16, day: DayRef) -> Result<Date, String> {
    let date = Date::new(year, day.month, day.day)
        .map_err(|_| format!("{} {} {year} does not exist", day.day, month_name(day.month)))?;
    if let Some(weekday) = day.weekday
        && date.weekday() != weekday
    {
        return Err(format!(
            "{} is a {}, not a {}",
            long(date),
            weekday_name(date.weekday()),
            weekday_name(weekday)
        ));
    }
    Ok(date)
}

/// "22 November 2016", for messages and titles.
pub(crate) fn long(date: Date) -> String {
    format!("{} {} {}", date.day(), month_name(date.month()), date.year())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dates::parse_date_cell;
    use jiff::civil::date;

    /// Settles each cell in turn, as rows of one table.
    fn settle_all(letter: Option<Date>, year: Option<i16>, cells: &[&str]) -> Vec<Result<When, String>> {
        let mut years = YearInference::new(letter, year);
        cells
            .iter()
            .map(|cell| {
                let spec = parse_date_cell(cell).map_err(|e| format!("{cell}: {e}"))?;
                years.settle(&spec)
            })
            .collect()
    }

    fn first_days(results: &[Result<When, String>]) -> Vec<Result<Date, String>> {
        results
            .iter()
            .map(|result| match result {
                Ok(When::Days { first, .. }) => Ok(*first),
                Ok(When::WeekOf(day)) => Ok(*day),
                Ok(When::Ongoing) => Err("ongoing".to_string()),
                Err(e) => Err(e.clone()),
            })
            .collect()
    }

    #[test]
    fn rows_roll_over_the_year_end() {
        let results = settle_all(
            Some(date(2016, 11, 10)),
            None,
            &["December 5", "January 20", "20-22 February", "12 to 16 March"],
        );
        assert_eq!(
            results,
            vec![
                Ok(When::Days {
                    first: date(2016, 12, 5),
                    last: None,
                    start: None,
                    end: None,
                    part_of_day: None
                }),
                Ok(When::Days {
                    first: date(2017, 1, 20),
                    last: None,
                    start: None,
                    end: None,
                    part_of_day: None
                }),
                Ok(When::Days {
                    first: date(2017, 2, 20),
                    last: Some(date(2017, 2, 22)),
                    start: None,
                    end: None,
                    part_of_day: None
                }),
                Ok(When::Days {
                    first: date(2017, 3, 12),
                    last: Some(date(2017, 3, 16)),
                    start: None,
                    end: None,
                    part_of_day: None
                }),
            ]
        );
    }

    #[test]
    fn first_row_near_the_letter() {
        let letter = Some(date(2017, 9, 14));
        // Just before the letter: a deadline that has passed, same year.
        assert_eq!(
            first_days(&settle_all(letter, None, &["25 August"])),
            vec![Ok(date(2017, 8, 25))]
        );
        // Long before the letter: next year fits better.
        assert_eq!(
            first_days(&settle_all(letter, None, &["20 January"])),
            vec![Ok(date(2018, 1, 20))]
        );
        // A letter of early January recalling last December.
        let january = Some(date(2017, 1, 5));
        assert_eq!(
            first_days(&settle_all(january, None, &["December 20"])),
            vec![Ok(date(2016, 12, 20))]
        );
    }

    #[test]
    fn explicit_years_win_and_carry_on() {
        let results = settle_all(Some(date(2016, 11, 10)), None, &["5 December 2018", "January 20"]);
        assert_eq!(
            first_days(&results),
            vec![Ok(date(2018, 12, 5)), Ok(date(2019, 1, 20))]
        );
    }

    #[test]
    fn fallback_year_and_no_year_at_all() {
        assert_eq!(
            first_days(&settle_all(None, Some(2017), &["25 September", "2 January"])),
            vec![Ok(date(2017, 9, 25)), Ok(date(2018, 1, 2))]
        );
        assert_eq!(
            first_days(&settle_all(
                None,
                None,
                &["25 September", "Ongoing", "Week of 2 October"]
            )),
            vec![
                Err("no year: pass --year".to_string()),
                Err("ongoing".to_string()),
                Err("no year: pass --year".to_string())
            ]
        );
        // A row that writes its year needs nothing, and lends it onwards.
        assert_eq!(
            first_days(&settle_all(None, None, &["25 September 2017", "2 October"])),
            vec![Ok(date(2017, 9, 25)), Ok(date(2017, 10, 2))]
        );
    }

    #[test]
    fn impossible_days() {
        let letter = Some(date(2017, 1, 10));
        assert_eq!(
            first_days(&settle_all(letter, None, &["31 February"])),
            vec![Err("31 February 2017 does not exist".to_string())]
        );
        assert_eq!(
            first_days(&settle_all(letter, None, &["29 February"])),
            vec![Err("29 February 2017 does not exist".to_string())]
        );
        assert_eq!(
            first_days(&settle_all(Some(date(2016, 1, 10)), None, &["29 February"])),
            vec![Ok(date(2016, 2, 29))]
        );
    }

    #[test]
    fn weekdays_are_checked() {
        let letter = Some(date(2016, 11, 12));
        assert_eq!(
            first_days(&settle_all(letter, None, &["Tuesday, November 22"])),
            vec![Ok(date(2016, 11, 22))]
        );
        assert_eq!(
            first_days(&settle_all(letter, None, &["Monday, November 22"])),
            vec![Err("22 November 2016 is a Tuesday, not a Monday".to_string())]
        );
    }

    #[test]
    fn and_joins_only_consecutive_days() {
        let letter = Some(date(2016, 11, 12));
        assert_eq!(
            first_days(&settle_all(letter, None, &["1 and 3 December"])),
            vec![Err(
                "1 December 2016 and 3 December 2016 are not consecutive days: write a range (\"to\") or one row per day"
                    .to_string()
            )]
        );
        let across = settle_all(letter, None, &["31 December and 1 January"]);
        assert_eq!(
            across,
            vec![Ok(When::Days {
                first: date(2016, 12, 31),
                last: Some(date(2017, 1, 1)),
                start: None,
                end: None,
                part_of_day: None
            })]
        );
    }

    #[test]
    fn weeks_end_on_their_seventh_day() {
        assert_eq!(
            When::WeekOf(date(2017, 10, 23)).last_day(),
            Some(date(2017, 10, 29))
        );
        assert_eq!(When::Ongoing.last_day(), None);
    }
}
