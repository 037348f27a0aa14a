//! The cursor over a date cell's tokens, and the reads of single tokens it
//! is built from: a word, a connector between two days, a weekday, a month,
//! a day of the month, a year. `days.rs` and `times.rs` add the reads of
//! days and times to the same [`Parser`].

use jiff::civil::Weekday;

use super::PLAUSIBLE_YEARS;
use super::tokens::{Token, describe};
use super::words::{month_of, weekday_of};

/// Reads a cell's tokens from left to right.
pub(super) struct Parser<'t> {
    tokens: &'t [Token],
    pub(super) pos: usize,
}

// `peek` hands out references into the tokens, not into the parser, so the
// parser can move on while one is held.
impl<'t> Parser<'t> {
    pub(super) fn new(tokens: &'t [Token]) -> Self {
        Parser { tokens, pos: 0 }
    }

    pub(super) fn peek(&self) -> Option<&'t Token> {
        self.tokens.get(self.pos)
    }

    pub(super) fn peek_word(&self) -> Option<&'t str> {
        match self.peek() {
            Some(Token::Word { norm, .. }) => Some(norm),
            _ => None,
        }
    }

    pub(super) fn eat_word(&mut self, words: &[&str]) -> bool {
        let found = self.peek_word().is_some_and(|w| words.contains(&w));
        if found {
            self.pos += 1;
        }
        found
    }

    pub(super) fn expect_end(&self) -> Result<(), String> {
        match self.peek() {
            None => Ok(()),
            other => Err(format!("cannot read {} in the date", describe(other))),
        }
    }

    /// "and", "&", "to", "-", "through", ...: joins the two days of a range.
    /// Returns whether it was an "and" (two consecutive days).
    pub(super) fn eat_day_connector(&mut self) -> Option<bool> {
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

    pub(super) fn weekday(&mut self) -> Option<Weekday> {
        let weekday = self.peek_word().and_then(weekday_of)?;
        self.pos += 1;
        Some(weekday)
    }

    pub(super) fn month(&mut self) -> Option<i8> {
        let month = self.peek_word().and_then(month_of)?;
        self.pos += 1;
        Some(month)
    }

    /// A day of the month: one or two digits, 1 to 31.
    pub(super) fn day_number(&mut self) -> Result<Option<i8>, String> {
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
    pub(super) fn year(&mut self) -> Result<Option<i16>, String> {
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
}
