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

use jiff::civil::{Time, Weekday};

use super::model::{PartOfDay, format_hh_mm};

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
    let tokens = tokenize(cell)?;
    if tokens.is_empty() {
        return Err("the date is empty".to_string());
    }
    if is_unscheduled(&tokens) {
        return Ok(DateSpec::Ongoing);
    }
    let mut parser = Parser {
        tokens: &tokens,
        pos: 0,
    };
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

/// English names of months, for messages.
pub(crate) fn month_name(month: i8) -> &'static str {
    match month {
        1 => "January",
        2 => "February",
        3 => "March",
        4 => "April",
        5 => "May",
        6 => "June",
        7 => "July",
        8 => "August",
        9 => "September",
        10 => "October",
        11 => "November",
        12 => "December",
        _ => "?",
    }
}

/// English names of weekdays, for messages.
pub(crate) fn weekday_name(weekday: Weekday) -> &'static str {
    match weekday {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

/// Whether a word names a month ("Dec", "Sept.", "november"): `table.rs`
/// uses it to tell a table of dates it cannot read from tabbed prose.
pub(crate) fn is_month_word(word: &str) -> bool {
    month_of(&word.to_lowercase().replace('.', "")).is_some()
}

fn month_of(word: &str) -> Option<i8> {
    let month = match word {
        "january" | "jan" => 1,
        "february" | "feb" => 2,
        "march" | "mar" => 3,
        "april" | "apr" => 4,
        "may" => 5,
        "june" | "jun" => 6,
        "july" | "jul" => 7,
        "august" | "aug" => 8,
        "september" | "sep" | "sept" => 9,
        "october" | "oct" => 10,
        "november" | "nov" => 11,
        "december" | "dec" => 12,
        _ => return None,
    };
    Some(month)
}

fn weekday_of(word: &str) -> Option<Weekday> {
    let weekday = match word {
        "monday" | "mon" => Weekday::Monday,
        "tuesday" | "tue" | "tues" => Weekday::Tuesday,
        "wednesday" | "wed" => Weekday::Wednesday,
        "thursday" | "thu" | "thur" | "thurs" => Weekday::Thursday,
        "friday" | "fri" => Weekday::Friday,
        "saturday" | "sat" => Weekday::Saturday,
        "sunday" | "sun" => Weekday::Sunday,
        _ => return None,
    };
    Some(weekday)
}

fn part_of_day_of(word: &str) -> Option<PartOfDay> {
    match word {
        "morning" => Some(PartOfDay::Morning),
        "afternoon" => Some(PartOfDay::Afternoon),
        "evening" => Some(PartOfDay::Evening),
        _ => None,
    }
}

/// The cells that mean "no date yet".
fn is_unscheduled(tokens: &[Token]) -> bool {
    const PHRASES: &[&[&str]] = &[
        &["ongoing"],
        &["tbd"],
        &["tbc"],
        &["tba"],
        &["to", "be", "determined"],
        &["to", "be", "confirmed"],
        &["to", "be", "announced"],
    ];
    let words: Vec<&str> = tokens
        .iter()
        .map(|token| match token {
            Token::Word { norm, .. } => norm.as_str(),
            _ => "",
        })
        .collect();
    PHRASES.iter().any(|phrase| words == *phrase)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A run of digits; an ordinal suffix ("22nd") is dropped.
    Number {
        value: u32,
        digits: usize,
    },
    /// "15:00", "15.00", "15h00".
    Clock {
        hour: u32,
        minute: u32,
    },
    /// Letters, lowercased and without dots in `norm` ("Dec." -> "dec",
    /// "p.m." -> "pm"); `text` as written, for messages.
    Word {
        norm: String,
        text: String,
    },
    /// '-', en dash, em dash and their cousins.
    Dash,
    Ampersand,
}

/// Splits a cell into tokens. Commas, parentheses and stray full stops carry
/// no meaning in these cells ("December 5, 2016", "(afternoon)") and are
/// dropped; anything else unexpected is an error.
fn tokenize(cell: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = cell.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() || matches!(c, ',' | '(' | ')' | '.' | ';') {
            i += 1;
        } else if c.is_ascii_digit() {
            i = number_token(&chars, i, &mut tokens)?;
        } else if c.is_alphabetic() {
            let begin = i;
            // Dots inside a word belong to it ("p.m."), and so does one
            // trailing dot of an abbreviation ("Dec.").
            while let Some(&c) = chars.get(i) {
                let dotted_letter = c == '.' && chars.get(i + 1).is_some_and(|n| n.is_alphabetic());
                if c.is_alphabetic() || dotted_letter {
                    i += 1;
                } else {
                    break;
                }
            }
            let text: String = chars[begin..i].iter().collect();
            let norm = text.to_lowercase().replace('.', "");
            tokens.push(Token::Word { norm, text });
        } else if matches!(c, '-' | '\u{2010}'..='\u{2015}' | '\u{2212}') {
            tokens.push(Token::Dash);
            i += 1;
        } else if c == '&' {
            tokens.push(Token::Ampersand);
            i += 1;
        } else {
            return Err(format!("unexpected {c:?} in the date"));
        }
    }
    Ok(tokens)
}

/// Reads the number starting at `begin` and returns where it ends.
fn number_token(chars: &[char], begin: usize, tokens: &mut Vec<Token>) -> Result<usize, String> {
    let digits_end = |from: usize| {
        let mut end = from;
        while chars.get(end).is_some_and(char::is_ascii_digit) {
            end += 1;
        }
        end
    };
    let parse = |from: usize, to: usize| -> Result<u32, String> {
        let text: String = chars[from..to].iter().collect();
        text.parse::<u32>()
            .map_err(|_| format!("'{text}' is not a number that can be part of a date"))
    };
    let end = digits_end(begin);
    let value = parse(begin, end)?;
    let digits = end - begin;

    // A clock time: "15:00", "15.00", "15h00" (exactly two digits of minutes,
    // so that "5.1" or "Dec. 5" are not taken for times).
    if digits <= 2 && matches!(chars.get(end), Some(':' | '.' | 'h')) {
        let minutes_end = digits_end(end + 1);
        if minutes_end - (end + 1) == 2 {
            let minute = parse(end + 1, minutes_end)?;
            tokens.push(Token::Clock { hour: value, minute });
            return Ok(minutes_end);
        }
    }

    // An ordinal: "22nd", "1st". Only when the suffix is a whole word of its
    // own, so that "3pm" stays a number and a meridiem.
    let suffix_end = {
        let mut end2 = end;
        while chars.get(end2).is_some_and(|c| c.is_alphabetic()) {
            end2 += 1;
        }
        end2
    };
    let suffix: String = chars[end..suffix_end].iter().collect::<String>().to_lowercase();
    tokens.push(Token::Number { value, digits });
    if matches!(suffix.as_str(), "st" | "nd" | "rd" | "th") {
        return Ok(suffix_end);
    }
    Ok(end)
}

fn describe(token: Option<&Token>) -> String {
    match token {
        None => "the end of the date".to_string(),
        Some(Token::Number { value, .. }) => format!("'{value}'"),
        Some(Token::Clock { hour, minute }) => format!("'{hour:02}:{minute:02}'"),
        Some(Token::Word { text, .. }) => format!("'{text}'"),
        Some(Token::Dash) => "'-'".to_string(),
        Some(Token::Ampersand) => "'&'".to_string(),
    }
}

/// A day as read, before the month of "1 and 2 December"'s first day is
/// borrowed from its second.
#[derive(Debug, Clone, Copy)]
struct PartialDay {
    month: Option<i8>,
    day: i8,
    year: Option<i16>,
    weekday: Option<Weekday>,
}

/// A time as read, before "10-11 a.m." lends its meridiem to the 10.
#[derive(Debug, Clone, Copy)]
struct PartialTime {
    hour: u32,
    minute: u32,
    /// Whether minutes were written ("10:00" yes, "10 a.m." no).
    clock: bool,
    meridiem: Option<Meridiem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meridiem {
    Am,
    Pm,
}

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
}

// `peek` hands out references into the tokens, not into the parser, so the
// parser can move on while one is held.
impl<'t> Parser<'t> {
    fn peek(&self) -> Option<&'t Token> {
        self.tokens.get(self.pos)
    }

    fn peek_word(&self) -> Option<&'t str> {
        match self.peek() {
            Some(Token::Word { norm, .. }) => Some(norm),
            _ => None,
        }
    }

    fn eat_word(&mut self, words: &[&str]) -> bool {
        let found = self.peek_word().is_some_and(|w| words.contains(&w));
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect_end(&self) -> Result<(), String> {
        match self.peek() {
            None => Ok(()),
            other => Err(format!("cannot read {} in the date", describe(other))),
        }
    }

    /// "and", "&", "to", "-", "through", ...: joins the two days of a range.
    /// Returns whether it was an "and" (two consecutive days).
    fn eat_day_connector(&mut self) -> Option<bool> {
        match self.peek() {
            Some(Token::Dash) => {
                self.pos += 1;
                Some(false)
            }
            Some(Token::Ampersand) => {
                self.pos += 1;
                Some(true)
            }
            _ if self.eat_word(&["and"]) => Some(true),
            _ if self.eat_word(&["to", "through", "thru", "till", "until"]) => Some(false),
            _ => None,
        }
    }

    fn weekday(&mut self) -> Option<Weekday> {
        let weekday = self.peek_word().and_then(weekday_of)?;
        self.pos += 1;
        Some(weekday)
    }

    fn month(&mut self) -> Option<i8> {
        let month = self.peek_word().and_then(month_of)?;
        self.pos += 1;
        Some(month)
    }

    /// A day of the month: one or two digits, 1 to 31.
    fn day_number(&mut self) -> Result<Option<i8>, String> {
        match self.peek() {
            Some(&Token::Number { value, digits }) if digits <= 2 => {
                let day = i8::try_from(value)
                    .ok()
                    .filter(|day| (1..=31).contains(day))
                    .ok_or_else(|| format!("{value} is not a day of the month"))?;
                self.pos += 1;
                Ok(Some(day))
            }
            _ => Ok(None),
        }
    }

    /// A year, when written: four digits, within reason.
    fn year(&mut self) -> Result<Option<i16>, String> {
        match self.peek() {
            Some(&Token::Number { value, digits: 4 }) => {
                let year = i16::try_from(value)
                    .ok()
                    .filter(|year| PLAUSIBLE_YEARS.contains(year))
                    .ok_or_else(|| format!("{value} is not a plausible year"))?;
                self.pos += 1;
                Ok(Some(year))
            }
            _ => Ok(None),
        }
    }

    /// One day: "November 22", "22 November", "22nd of November", "Dec. 5,
    /// 2016", "Tue 22 Nov", or a bare "1" waiting for its month ("1 and 2
    /// December").
    fn day(&mut self) -> Result<PartialDay, String> {
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
    fn days(&mut self) -> Result<DateSpec, String> {
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

    /// "15:00", "from 15:00 to 18:00", "10:00-13:00", "3 p.m.", "10-11 am",
    /// "from 15:00" (a start without an end).
    fn times(&mut self) -> Result<(Time, Option<Time>), String> {
        self.eat_word(&["from", "at", "between"]);
        let start = self.time()?;
        let mut end = None;
        let connected = match self.peek() {
            Some(Token::Dash) => {
                self.pos += 1;
                true
            }
            _ => self.eat_word(&["to", "until", "till", "and"]),
        };
        if connected {
            end = Some(self.time()?);
        }
        self.eat_word(&["h", "hrs", "hours"]);

        // "10-11 a.m.": a bare start hour takes the end's meridiem.
        let mut start = start;
        if let Some(end) = end
            && start.meridiem.is_none()
            && !start.clock
        {
            start.meridiem = end.meridiem;
        }
        let start = to_time(start)?;
        let end = end.map(to_time).transpose()?;
        if let Some(end) = end {
            if end < start {
                return Err(format!(
                    "ends at {}, before it starts at {}",
                    format_hh_mm(end),
                    format_hh_mm(start)
                ));
            }
            if end == start {
                return Err(format!("starts and ends at {}", format_hh_mm(start)));
            }
        }
        Ok((start, end))
    }

    fn time(&mut self) -> Result<PartialTime, String> {
        let (hour, minute, clock) = match self.peek() {
            Some(&Token::Clock { hour, minute }) => (hour, minute, true),
            Some(&Token::Number { value, digits }) if digits <= 2 => (value, 0, false),
            _ if self.eat_word(&["noon", "midday"]) => {
                return Ok(PartialTime {
                    hour: 12,
                    minute: 0,
                    clock: true,
                    meridiem: None,
                });
            }
            other => return Err(format!("expected a time, found {}", describe(other))),
        };
        self.pos += 1;
        if hour == 12 && !clock && self.eat_word(&["noon", "midday"]) {
            return Ok(PartialTime {
                hour,
                minute,
                clock: true,
                meridiem: None,
            });
        }
        let meridiem = if self.eat_word(&["am"]) {
            Some(Meridiem::Am)
        } else if self.eat_word(&["pm"]) {
            Some(Meridiem::Pm)
        } else {
            None
        };
        Ok(PartialTime {
            hour,
            minute,
            clock,
            meridiem,
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

fn to_time(time: PartialTime) -> Result<Time, String> {
    let written = if time.clock {
        format!("{}:{:02}", time.hour, time.minute)
    } else {
        time.hour.to_string()
    };
    let hour = match time.meridiem {
        None if !time.clock => {
            return Err(format!("'{written}' needs minutes or a.m./p.m. to be a time"));
        }
        None => time.hour,
        Some(meridiem) => {
            if !(1..=12).contains(&time.hour) {
                return Err(format!("'{written}' is not an hour of a.m./p.m."));
            }
            match (meridiem, time.hour) {
                (Meridiem::Am, 12) => 0,
                (Meridiem::Am, hour) => hour,
                (Meridiem::Pm, 12) => 12,
                (Meridiem::Pm, hour) => hour + 12,
            }
        }
    };
    let not_a_time = || format!("'{written}' is not a time");
    if hour > 23 || time.minute > 59 {
        return Err(not_a_time());
    }
    let hour = i8::try_from(hour).map_err(|_| not_a_time())?;
    let minute = i8::try_from(time.minute).map_err(|_| not_a_time())?;
    Time::new(hour, minute, 0, 0).map_err(|_| not_a_time())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::time;

    fn day(month: i8, day: i8) -> DayRef {
        DayRef {
            month,
            day,
            year: None,
            weekday: None,
        }
    }

    fn days(first: DayRef, last: Option<DayRef>, start: Option<Time>, end: Option<Time>) -> DateSpec {
        DateSpec::Days {
            first,
            last,
            joined_by_and: false,
            start,
            end,
            part_of_day: None,
        }
    }

    fn parse(cell: &str) -> DateSpec {
        match parse_date_cell(cell) {
            Ok(spec) => spec,
            Err(message) => panic!("{cell:?} did not parse: {message}"),
        }
    }

    fn error(cell: &str) -> String {
        match parse_date_cell(cell) {
            Ok(spec) => panic!("{cell:?} parsed as {spec:?}, expected an error"),
            Err(message) => message,
        }
    }

    #[test]
    fn month_first_with_times() {
        assert_eq!(
            parse("November 22, from 15:00 to 18:00"),
            days(
                day(11, 22),
                None,
                Some(time(15, 0, 0, 0)),
                Some(time(18, 0, 0, 0))
            )
        );
    }

    #[test]
    fn single_days_in_both_orders() {
        assert_eq!(parse("25 September"), days(day(9, 25), None, None, None));
        assert_eq!(parse("November 23"), days(day(11, 23), None, None, None));
        assert_eq!(parse("22nd November"), days(day(11, 22), None, None, None));
        assert_eq!(parse("22nd of November"), days(day(11, 22), None, None, None));
        assert_eq!(parse("November 1st"), days(day(11, 1), None, None, None));
    }

    #[test]
    fn two_days_joined_by_and() {
        let expected = DateSpec::Days {
            first: day(12, 1),
            last: Some(day(12, 2)),
            joined_by_and: true,
            start: None,
            end: None,
            part_of_day: None,
        };
        assert_eq!(parse("December 1 and 2"), expected);
        assert_eq!(parse("1 and 2 December"), expected);
        assert_eq!(parse("1 & 2 December"), expected);
    }

    #[test]
    fn ranges_with_dashes_and_words() {
        let february = days(day(2, 20), Some(day(2, 22)), None, None);
        assert_eq!(parse("20-22 February"), february);
        assert_eq!(parse("20–22 February"), february);
        assert_eq!(parse("20 — 22 February"), february);
        assert_eq!(parse("February 20-22"), february);
        assert_eq!(
            parse("12 to 16 March"),
            days(day(3, 12), Some(day(3, 16)), None, None)
        );
    }

    #[test]
    fn ranges_across_months() {
        let expected = days(day(11, 30), Some(day(12, 2)), None, None);
        assert_eq!(parse("30 November - 2 December"), expected);
        assert_eq!(parse("30 November to 2 December"), expected);
        assert_eq!(parse("November 30 – December 2"), expected);
    }

    #[test]
    fn range_across_a_year_end_shares_its_written_year() {
        let mut first = day(12, 30);
        first.year = Some(2016);
        let mut last = day(1, 2);
        last.year = Some(2017);
        assert_eq!(
            parse("30 December - 2 January 2017"),
            days(first, Some(last), None, None)
        );
    }

    #[test]
    fn parts_of_the_day() {
        let afternoon = DateSpec::Days {
            first: day(10, 2),
            last: None,
            joined_by_and: false,
            start: None,
            end: None,
            part_of_day: Some(PartOfDay::Afternoon),
        };
        assert_eq!(parse("2 October (afternoon)"), afternoon);
        let DateSpec::Days { part_of_day, .. } = parse("5 October (morning)") else {
            panic!("not days");
        };
        assert_eq!(part_of_day, Some(PartOfDay::Morning));
    }

    #[test]
    fn weeks() {
        assert_eq!(parse("Week of 23 October"), DateSpec::WeekOf(day(10, 23)));
        assert_eq!(parse("week of October 23"), DateSpec::WeekOf(day(10, 23)));
        assert_eq!(parse("Week beginning 23 Oct."), DateSpec::WeekOf(day(10, 23)));
    }

    #[test]
    fn unscheduled() {
        for cell in ["Ongoing", "TBD", "To be determined", "tbc"] {
            assert_eq!(parse(cell), DateSpec::Ongoing, "{cell}");
        }
    }

    #[test]
    fn abbreviated_months() {
        assert_eq!(parse("Dec. 5"), days(day(12, 5), None, None, None));
        assert_eq!(parse("5 Sept"), days(day(9, 5), None, None, None));
        assert_eq!(parse("Sep 25"), days(day(9, 25), None, None, None));
        assert_eq!(parse("5 sept."), days(day(9, 5), None, None, None));
    }

    #[test]
    fn weekdays_are_kept_for_checking() {
        let mut tuesday = day(11, 22);
        tuesday.weekday = Some(Weekday::Tuesday);
        assert_eq!(parse("Tuesday, November 22"), days(tuesday, None, None, None));
        assert_eq!(parse("Tue 22 Nov"), days(tuesday, None, None, None));

        let DateSpec::Days { first, last, .. } = parse("Thursday and Friday, 1 and 2 December") else {
            panic!("not days");
        };
        assert_eq!(first.weekday, Some(Weekday::Thursday));
        assert_eq!(last.map(|l| l.weekday), Some(Some(Weekday::Friday)));
    }

    #[test]
    fn explicit_years() {
        let mut september = day(9, 25);
        september.year = Some(2017);
        assert_eq!(parse("25 September 2017"), days(september, None, None, None));
        let mut december = day(12, 5);
        december.year = Some(2016);
        assert_eq!(parse("December 5, 2016"), days(december, None, None, None));
        // A year at the end of a range is the year of the range.
        let mut first = day(12, 1);
        first.year = Some(2016);
        let mut last = day(12, 2);
        last.year = Some(2016);
        assert_eq!(parse("December 1-2, 2016"), days(first, Some(last), None, None));
    }

    #[test]
    fn time_forms() {
        let at = |h, m| Some(time(h, m, 0, 0));
        let one = |cell| match parse(cell) {
            DateSpec::Days { start, end, .. } => (start, end),
            other => panic!("{other:?}"),
        };
        assert_eq!(one("December 5, 15:00"), (at(15, 0), None));
        assert_eq!(one("December 5, 15.00"), (at(15, 0), None));
        assert_eq!(one("December 5, 3 p.m."), (at(15, 0), None));
        assert_eq!(one("December 5, 3pm"), (at(15, 0), None));
        assert_eq!(one("December 5, 10:00-13:00"), (at(10, 0), at(13, 0)));
        assert_eq!(one("December 5, from 10:00 to 13:00"), (at(10, 0), at(13, 0)));
        assert_eq!(one("December 5, from 15:00"), (at(15, 0), None));
        assert_eq!(one("December 5 at 12 noon"), (at(12, 0), None));
        assert_eq!(one("December 5, 10-11 a.m."), (at(10, 0), at(11, 0)));
        assert_eq!(one("December 5, 10 a.m. to 1 p.m."), (at(10, 0), at(13, 0)));
        assert_eq!(one("December 5, 12 a.m. to 12 p.m."), (at(0, 0), at(12, 0)));
    }

    #[test]
    fn times_on_several_days() {
        let spec = parse("1 and 2 December, from 10:00 to 13:00");
        assert_eq!(
            spec,
            DateSpec::Days {
                first: day(12, 1),
                last: Some(day(12, 2)),
                joined_by_and: true,
                start: Some(time(10, 0, 0, 0)),
                end: Some(time(13, 0, 0, 0)),
                part_of_day: None,
            }
        );
    }

    #[test]
    fn times_that_agree_with_a_part_of_the_day_replace_it() {
        let DateSpec::Days {
            start, part_of_day, ..
        } = parse("2 October (afternoon), 15:00-18:00")
        else {
            panic!("not days");
        };
        assert_eq!((start, part_of_day), (Some(time(15, 0, 0, 0)), None));
        assert_eq!(error("2 October (morning), 15:00"), "15:00 is not in the morning");
    }

    #[test]
    fn garbage_is_an_error() {
        assert_eq!(error("Septober 25"), "'Septober' is not a month");
        assert_eq!(error("25 Septober"), "'Septober' is not a month");
        assert_eq!(error("Informal meetings"), "'Informal' is not a month");
        assert_eq!(error(""), "the date is empty");
        assert_eq!(error("25/09"), "unexpected '/' in the date");
        assert_eq!(error("Mid-November"), "'Mid' is not a month");
        assert_eq!(error("22"), "22 has no month");
        assert_eq!(error("32 December"), "32 is not a day of the month");
        assert_eq!(
            error("December"),
            "expected a day after December, found the end of the date"
        );
        assert_eq!(error("25 September 3017"), "3017 is not a plausible year");
    }

    #[test]
    fn times_must_run_forwards() {
        assert_eq!(
            error("December 5, from 18:00 to 15:00"),
            "ends at 15:00, before it starts at 18:00"
        );
        assert_eq!(
            error("December 5, 18:00-15:00"),
            "ends at 15:00, before it starts at 18:00"
        );
        assert_eq!(error("December 5, 15:00-15:00"), "starts and ends at 15:00");
        assert_eq!(error("December 5, 25:00"), "'25:00' is not a time");
        assert_eq!(error("December 5, 10:75"), "'10:75' is not a time");
        assert_eq!(
            error("December 5, 10"),
            "'10' needs minutes or a.m./p.m. to be a time"
        );
        assert_eq!(error("December 5, 13 pm"), "'13' is not an hour of a.m./p.m.");
    }

    #[test]
    fn ranges_must_run_forwards() {
        assert_eq!(
            error("22-20 February"),
            "the range ends on 20 February, before it begins on 22 February"
        );
        assert_eq!(
            error("20-20 February"),
            "the range begins and ends on 20 February"
        );
        assert_eq!(error("1 and 2"), "1 and 2 have no month");
    }

    #[test]
    fn impossible_days_are_left_for_the_year() {
        // "31 February" reads; it is rejected once the year is known
        // (years.rs), where jiff decides which days exist.
        assert_eq!(parse("31 February"), days(day(2, 31), None, None, None));
    }

    #[test]
    fn month_words() {
        assert!(is_month_word("Sept."));
        assert!(is_month_word("DECEMBER"));
        assert!(!is_month_word("Septober"));
    }
}
