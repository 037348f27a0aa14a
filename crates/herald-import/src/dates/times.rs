//! Times of day: "15:00", "15.00", "15h00", "3 p.m.", "12 noon", "from
//! 10:00 to 13:00", "10-11 a.m." (the end lends its a.m./p.m. to a bare
//! start), checked to be real times that run forwards.

use jiff::civil::Time;

use super::parser::Parser;
use super::tokens::{Token, describe};
use crate::model::format_hh_mm;

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

impl Parser<'_> {
    /// "15:00", "from 15:00 to 18:00", "10:00-13:00", "3 p.m.", "10-11 am",
    /// "from 15:00" (a start without an end).
    pub(super) fn times(&mut self) -> Result<(Time, Option<Time>), String> {
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
