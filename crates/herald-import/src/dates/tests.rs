//! Tests of the date forms: every form a cell is read in, and the message
//! for every form it is not.

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
