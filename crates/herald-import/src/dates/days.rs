//! Days: one day in any of the orders letters write it ("November 22",
//! "22nd of November", "Tue 22 Nov"), a range or a pair of days ("20–22
//! February", "1 and 2 December"), and the times or part of the day that
//! follow; then the month and year one end of a range lends the other.

use jiff::civil::Weekday;

use super::parser::Parser;
use super::tokens::{Token, describe};
use super::words::{month_name, part_of_day_of, weekday_of};
use super::{DateSpec, DayRef};
use crate::model::{PartOfDay, format_hh_mm};

/// A day as read, before the month of "1 and 2 December"'s first day is
/// borrowed from its second.
#[derive(Debug, Clone, Copy)]
pub(super) struct PartialDay {
    pub(super) month: Option<i8>,
    pub(super) day: i8,
    pub(super) year: Option<i16>,
    pub(super) weekday: Option<Weekday>,
}

impl Parser<'_> {
    /// One day: "November 22", "22 November", "22nd of November", "Dec. 5,
    /// 2016", "Tue 22 Nov", or a bare "1" waiting for its month ("1 and 2
    /// December").
    pub(super) fn day(&mut self) -> Result<PartialDay, String> {
        let weekday = self.weekday();
        if let Some(month) = self.month() {
            let day = self.day_number()?.ok_or_else(|| {
                format!(
                    "expected a day after {}, found {}",
                    month_name(month),
                    describe(self.peek())
                )
            })?;
            let year = self.year()?;
            return Ok(PartialDay {
                month: Some(month),
                day,
                year,
                weekday,
            });
        }
        let Some(day) = self.day_number()? else {
            return Err(match self.peek() {
                Some(Token::Word { text, .. }) => format!("'{text}' is not a month"),
                other => format!("expected a date, found {}", describe(other)),
            });
        };
        // "22nd of November": only take "of" when a month follows.
        let before_of = self.pos;
        let had_of = self.eat_word(&["of"]);
        let month = self.month();
        if had_of && month.is_none() {
            self.pos = before_of;
        }
        let year = self.year()?;
        Ok(PartialDay {
            month,
            day,
            year,
            weekday,
        })
    }

    /// A single day or a range of days, then times or a part of the day.
    pub(super) fn days(&mut self) -> Result<DateSpec, String> {
        // "Thursday and Friday, 1 and 2 December": weekdays for both ends.
        let mut first_weekday = None;
        let mut last_weekday = None;
        if let Some(weekday) = self.peek_word().and_then(weekday_of) {
            let save = self.pos;
            self.pos += 1;
            if self.eat_day_connector().is_some()
                && let Some(second) = self.weekday()
            {
                first_weekday = Some(weekday);
                last_weekday = Some(second);
            } else {
                self.pos = save;
            }
        }

        let mut first = self.day()?;
        first.weekday = first.weekday.or(first_weekday);
        let mut joined_by_and = false;
        let mut last = None;
        if let Some(and) = self.eat_day_connector() {
            joined_by_and = and;
            let mut day = self.day()?;
            day.weekday = day.weekday.or(last_weekday);
            last = Some(day);
        } else if last_weekday.is_some() {
            return Err("two weekdays but only one day".to_string());
        }
        // "25 Septober": a day followed by a word that should have been its month.
        if first.month.is_none()
            && last.is_none_or(|last| last.month.is_none())
            && let Some(Token::Word { text, .. }) = self.peek()
        {
            return Err(format!("'{text}' is not a month"));
        }
        let (first, last) = settle_range(first, last)?;

        // Whatever follows the days: times and a part of the day, in either
        // order, each at most once.
        let mut times = None;
        let mut part_of_day = None;
        while self.peek().is_some() {
            if let Some(part) = self.peek_word().and_then(part_of_day_of) {
                if part_of_day.is_some() {
                    return Err("the date names two parts of the day".to_string());
                }
                part_of_day = Some(part);
                self.pos += 1;
            } else if times.is_none() {
                times = Some(self.times()?);
            } else {
                return Err(format!("cannot read {} in the date", describe(self.peek())));
            }
        }

        let (start, end) = match times {
            Some((start, end)) => (Some(start), end),
            None => (None, None),
        };
        // Times say more than a part of the day; keep them when the two agree.
        if let (Some(start), Some(part)) = (start, part_of_day) {
            let hour = start.hour();
            let agrees = match part {
                PartOfDay::Morning => hour < 12,
                PartOfDay::Afternoon => (12..18).contains(&hour),
                PartOfDay::Evening => hour >= 17,
            };
            if !agrees {
                return Err(format!(
                    "{} is not in the {}",
                    format_hh_mm(start),
                    match part {
                        PartOfDay::Morning => "morning",
                        PartOfDay::Afternoon => "afternoon",
                        PartOfDay::Evening => "evening",
                    }
                ));
            }
            part_of_day = None;
        }
        Ok(DateSpec::Days {
            first,
            last,
            joined_by_and,
            start,
            end,
            part_of_day,
        })
    }
}

/// Borrows the month (and year) one end of a range names for the other end,
/// and checks that the range runs forwards.
fn settle_range(first: PartialDay, last: Option<PartialDay>) -> Result<(DayRef, Option<DayRef>), String> {
    let Some(last) = last else {
        let month = first.month.ok_or_else(|| format!("{} has no month", first.day))?;
        let first = DayRef {
            month,
            day: first.day,
            year: first.year,
            weekday: first.weekday,
        };
        return Ok((first, None));
    };
    let (first_month, last_month) = match (first.month, last.month) {
        (Some(a), Some(b)) => (a, b),
        (Some(a), None) => (a, a),
        (None, Some(b)) => (b, b),
        (None, None) => {
            return Err(format!("{} and {} have no month", first.day, last.day));
        }
    };
    // A range that goes back in the calendar crosses a year end ("30
    // December - 2 January"), but only when the month goes backwards; "22-20
    // February" is a mistake, not a year-long meeting.
    let years_differ = matches!((first.year, last.year), (Some(a), Some(b)) if a != b);
    let same_month_backwards = first_month == last_month && last.day < first.day && !years_differ;
    let wraps = last_month < first_month;
    if same_month_backwards {
        return Err(format!(
            "the range ends on {} {}, before it begins on {} {}",
            last.day,
            month_name(last_month),
            first.day,
            month_name(first_month)
        ));
    }
    if first_month == last_month && first.day == last.day && first.year == last.year {
        return Err(format!(
            "the range begins and ends on {} {}",
            first.day,
            month_name(first_month)
        ));
    }
    // A year written on one end is the year of the other too, give or take
    // the year end the range crosses.
    let (first_year, last_year) = match (first.year, last.year) {
        (None, Some(year)) => (
            Some(if wraps { year.saturating_sub(1) } else { year }),
            Some(year),
        ),
        (Some(year), None) => (
            Some(year),
            Some(if wraps { year.saturating_add(1) } else { year }),
        ),
        (a, b) => (a, b),
    };
    let first = DayRef {
        month: first_month,
        day: first.day,
        year: first_year,
        weekday: first.weekday,
    };
    let last = DayRef {
        month: last_month,
        day: last.day,
        year: last_year,
        weekday: last.weekday,
    };
    Ok((first, Some(last)))
}
