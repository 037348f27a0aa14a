//! Generators of letter-like text for property tests (proptest): the
//! importer's own (it never panics, and writes the schema) and herald's
//! (every imported roadmap loads). Built for this crate's tests, and for
//! other crates with the `strategies` feature.

use proptest::prelude::*;

/// Any text, and text with control characters: `any::<String>()` has none,
/// but letters copied out of PDFs and word processors do.
pub fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-zA-Z0-9 \\x00-\\x1f\\x7f-\\x9f]{0,16}",]
}

/// First cells in the forms letters write, right or nearly: a day, a range
/// or a pair of days, a week, across months and years, with a year, a part
/// of the day and times or without, and days, years and times that do not
/// exist.
pub fn date_cell() -> impl Strategy<Value = String> {
    const MONTHS: &[&str] = &[
        "January", "February", "March", "April", "May", "June", "July", "August", "Sept.", "October",
        "November", "Dec",
    ];
    const PARTS: &[&str] = &[" (morning)", " (afternoon)", " (evening)", " morning"];
    const TIMES: &[&str] = &[
        ", 15:00",
        ", from 10:00 to 13:00",
        " at 3 p.m.",
        ", 10-11 a.m.",
        ", 18:00-15:00",
        " 12 noon",
        ", 19:30",
    ];
    let month = || prop::sample::select(MONTHS);
    let day = || 0u8..=32;
    let year = prop::option::of(prop_oneof![1899i16..=1901, 2015i16..=2020, 2198i16..=2200]);
    let part = prop::option::of(prop::sample::select(PARTS));
    let times = prop::option::of(prop::sample::select(TIMES));
    (0u8..6, month(), day(), month(), day(), year, part, times).prop_map(
        |(form, month, first, other_month, second, year, part, times)| {
            let days = match form {
                0 => format!("{first} {month}"),
                1 => format!("{month} {first}"),
                2 => format!("{first}-{second} {month}"),
                3 => format!("{first} and {second} {month}"),
                4 => format!("{first} {month} - {second} {other_month}"),
                _ => format!("Week of {first} {month}"),
            };
            let year = year.map(|year| format!(" {year}")).unwrap_or_default();
            format!("{days}{year}{}{}", part.unwrap_or(""), times.unwrap_or(""))
        },
    )
}

/// Lines that look like roadmap rows, or nearly: date-ish first cells and
/// arbitrary text, separated by tabs.
pub fn row_like_line() -> impl Strategy<Value = String> {
    let first = prop_oneof![
        date_cell(),
        date_cell(),
        Just("November 22, from 15:00 to 18:00".to_string()),
        Just("1 and 2 December".to_string()),
        Just("31 February".to_string()),
        Just("Week of 23 October".to_string()),
        Just("Ongoing".to_string()),
        "[0-9]{1,5}[ .:–-]?[A-Za-z]{0,9}[ ,]?[0-9]{0,4}",
        "[ -~]{0,20}",
        any_text(),
    ];
    (first, "\t{1,2}", any_text()).prop_map(|(first, tab, rest)| format!("{first}{tab}{rest}"))
}

/// What a letter may have above its table: a line with its date ("New York,
/// 12 November 2016"), any date-ish line, a bold heading, or nothing.
pub fn letter_head() -> impl Strategy<Value = String> {
    let date_line = prop_oneof![
        Just("New York, 12 November 2016".to_string()),
        Just("14 September 2017".to_string()),
        "([A-Z][a-z]{2,8}, )?[0-9]{1,2} [A-Z][a-z]{2,8} [0-9]{4}",
        "[ -~]{0,30}",
    ];
    let heading = prop_oneof![
        Just(String::new()),
        "\\*\\*[ -~]{0,40}\\*\\*",
        any_text().prop_map(|text| format!("**{text}**")),
    ];
    (prop::option::of(date_line), heading)
        .prop_map(|(date, heading)| format!("{}\n\n{heading}\n", date.unwrap_or_default()))
}

/// Any text with row-like lines among arbitrary ones, sometimes under a
/// letter's head.
pub fn letter_like_text() -> impl Strategy<Value = String> {
    let lines = prop::collection::vec(
        prop_oneof![row_like_line(), any_text(), Just(String::new())],
        0..12,
    )
    .prop_map(|lines| lines.join("\n"));
    (prop::option::of(letter_head()), lines)
        .prop_map(|(head, lines)| format!("{}{lines}", head.unwrap_or_default()))
}
