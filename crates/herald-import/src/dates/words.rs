//! The words of dates: month and weekday names and their abbreviations,
//! the parts of the day, the phrases that mean "no date yet", and the
//! English names of months and weekdays used in messages.

use jiff::civil::Weekday;

use super::tokens::Token;
use crate::model::PartOfDay;

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

pub(super) fn month_of(word: &str) -> Option<i8> {
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

pub(super) fn weekday_of(word: &str) -> Option<Weekday> {
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

pub(super) fn part_of_day_of(word: &str) -> Option<PartOfDay> {
    match word {
        "morning" => Some(PartOfDay::Morning),
        "afternoon" => Some(PartOfDay::Afternoon),
        "evening" => Some(PartOfDay::Evening),
        _ => None,
    }
}

/// The cells that mean "no date yet".
pub(super) fn is_unscheduled(tokens: &[Token]) -> bool {
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
