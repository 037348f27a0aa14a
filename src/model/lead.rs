//! Lead times: how long before an event a reminder goes out.
//!
//! A lead is a calendar span ("7d" is seven calendar days, not 168 hours), so
//! "7 days before 15:00 New York" is 15:00 New York a week earlier even when a
//! change of daylight saving time lies in between.

use std::fmt;

use jiff::{Span, ZonedDateTime};

/// A lead time as the operator wrote it, normalised ("7 days" -> "7d").
#[derive(Debug, Clone)]
pub struct Lead {
    span: Span,
    text: String,
}

impl Lead {
    /// Parses "7d", "1d", "2h", "1w", "30m" (and anything else jiff's
    /// friendly duration format accepts, such as "1 day 12 hours").
    pub fn parse(text: &str) -> Result<Lead, LeadError> {
        let span: Span = text
            .trim()
            .parse()
            .map_err(|_| LeadError::Unreadable(text.to_owned()))?;
        if span.is_negative() || span.is_zero() {
            return Err(LeadError::NotPositive(text.to_owned()));
        }
        // "{:#}" is jiff's compact friendly form: "7d", "2h 30m".
        let text = format!("{span:#}").replace(' ', "");
        Ok(Lead { span, text })
    }

    pub fn span(&self) -> Span {
        self.span
    }

    /// The normalised text, used in send keys and shown to operators.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The instant `self` before `at`, in `at`'s zone, by calendar arithmetic.
    pub fn before(&self, at: &ZonedDateTime) -> Option<ZonedDateTime> {
        at.checked_sub(self.span).ok()
    }
}

impl PartialEq for Lead {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Lead {}

impl fmt::Display for Lead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a text is not a lead time; each holds the text as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeadError {
    /// Not a span of time jiff can read.
    Unreadable(String),
    /// Zero or negative.
    NotPositive(String),
}

impl fmt::Display for LeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeadError::Unreadable(text) => write!(
                f,
                "invalid lead time {text:?}: write it like \"7d\", \"1d\", \"2h\" or \"30m\""
            ),
            LeadError::NotPositive(text) => {
                write!(f, "invalid lead time {text:?}: it must be longer than zero")
            }
        }
    }
}

impl std::error::Error for LeadError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!(Lead::parse("7d").unwrap().as_str(), "7d");
        assert_eq!(Lead::parse(" 2h ").unwrap().as_str(), "2h");
        assert_eq!(Lead::parse("1 day").unwrap().as_str(), "1d");
        assert_eq!(Lead::parse("1w").unwrap().as_str(), "1w");
        assert_eq!(Lead::parse("2h30m").unwrap().as_str(), "2h30m");
    }

    #[test]
    fn rejects_nonsense_and_non_positive() {
        assert_eq!(
            Lead::parse("7x").unwrap_err().to_string(),
            "invalid lead time \"7x\": write it like \"7d\", \"1d\", \"2h\" or \"30m\""
        );
        assert_eq!(Lead::parse(""), Err(LeadError::Unreadable(String::new())));
        assert_eq!(
            Lead::parse("0d").unwrap_err().to_string(),
            "invalid lead time \"0d\": it must be longer than zero"
        );
        assert_eq!(Lead::parse("-1d"), Err(LeadError::NotPositive("-1d".into())));
    }

    #[test]
    fn seven_days_before_keeps_the_wall_clock_across_dst() {
        // New York moves to daylight time on 2027-03-14.
        let event: ZonedDateTime = "2027-03-15T15:00[America/New_York]".parse().unwrap();
        let due = Lead::parse("7d").unwrap().before(&event).unwrap();
        assert_eq!(due.to_string(), "2027-03-08T15:00:00-05:00[America/New_York]");
        let due = Lead::parse("2h").unwrap().before(&event).unwrap();
        assert_eq!(due.to_string(), "2027-03-15T13:00:00-04:00[America/New_York]");
    }
}
