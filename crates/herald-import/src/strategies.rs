//! Generators of letter-like text for property tests (proptest). Built for
//! this crate's tests, and for other crates with the `strategies` feature.

use proptest::prelude::*;

/// Lines that look like roadmap rows, or nearly: date-ish first cells and
/// arbitrary text, separated by tabs.
pub fn row_like_line() -> impl Strategy<Value = String> {
    let first = prop_oneof![
        Just("November 22, from 15:00 to 18:00".to_string()),
        Just("1 and 2 December".to_string()),
        Just("31 February".to_string()),
        Just("Week of 23 October".to_string()),
        Just("Ongoing".to_string()),
        "[0-9]{1,5}[ .:–-]?[A-Za-z]{0,9}[ ,]?[0-9]{0,4}",
        "[ -~]{0,20}",
        any::<String>(),
    ];
    (first, "\t{1,2}", any::<String>()).prop_map(|(first, tab, rest)| format!("{first}{tab}{rest}"))
}

/// Any text with row-like lines among arbitrary ones.
pub fn letter_like_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![row_like_line(), any::<String>(), Just(String::new())],
        0..12,
    )
    .prop_map(|lines| lines.join("\n"))
}
