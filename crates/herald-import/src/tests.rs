//! Tests of the whole import on the real letters in
//! `tests/fixtures/letters/`, and of the properties every import keeps: no
//! panics, TOML that parses back, and nothing dropped without a problem.

use jiff::civil::{Date, date, time};
use proptest::prelude::*;

use super::*;
use crate::schema::RoadmapFile;
use crate::strategies::letter_like_text;

const LETTER_2016: &str =
    include_str!("../../../tests/fixtures/letters/2016-11-gcm-consultations-roadmap.txt");
const LETTER_2017: &str = include_str!("../../../tests/fixtures/letters/2017-09-gcm-modalities-roadmap.txt");

/// The options the CLI passes for the example configuration.
fn new_york_options() -> ImportOptions {
    ImportOptions {
        default_venue: Some("new-york".to_string()),
        ..ImportOptions::default()
    }
}

/// An event with only the keys every event has; tests fill in the rest.
fn event(line: usize, id: &str, title: &str, kind: EventKind) -> ImportedEvent {
    ImportedEvent {
        id: id.to_string(),
        title: title.to_string(),
        kind,
        date: None,
        end_date: None,
        start: None,
        end: None,
        part_of_day: None,
        week_of: None,
        ongoing: false,
        venue: None,
        past: false,
        line,
    }
}

fn on(mut event: ImportedEvent, day: Date) -> ImportedEvent {
    event.date = Some(day);
    event
}

fn from_to(mut event: ImportedEvent, start: (i8, i8), end: (i8, i8)) -> ImportedEvent {
    event.start = Some(time(start.0, start.1, 0, 0));
    event.end = Some(time(end.0, end.1, 0, 0));
    event
}

/// A letter of the given date with the given table rows.
fn letter(date_line: &str, rows: &[&str]) -> String {
    format!(
        "{date_line}\n\nExcellency,\n\nThe roadmap is as follows:\n\n{}\n\nSincerely,\n",
        rows.join("\n")
    )
}

#[test]
fn letter_of_2016_every_row() {
    let report = import_letter(LETTER_2016, &new_york_options());

    // The first date in the text is the President's cover letter of
    // 15 November 2016; the co-facilitators' own letter, which it encloses,
    // is dated 12 November 2016 further down. The first one is taken: it
    // is the date the roadmap reached the missions.
    assert_eq!(report.letter_date, Some(date(2016, 11, 15)));
    assert_eq!(report.problems, vec![]);

    let roadmap = &report.roadmap;
    assert_eq!(roadmap.id, "roadmap-2016-11-15");
    assert_eq!(roadmap.title, "Roadmap of 15 November 2016");
    assert_eq!(roadmap.venue.as_deref(), Some("new-york"));
    // New York is a known venue, so its zone need not be written.
    assert_eq!(roadmap.time_zone, None);

    let mut ongoing = event(
        47,
        "informal-meetings-regional-groups",
        "Informal meetings with regional groups",
        EventKind::Meeting,
    );
    ongoing.ongoing = true;
    let mut geneva = on(
        event(
            50,
            "consultations-geneva-member-states-io",
            "Consultations in Geneva with Member States and I.O.",
            EventKind::Meeting,
        ),
        date(2016, 12, 1),
    );
    geneva.end_date = Some(date(2016, 12, 2));
    geneva.venue = Some("geneva".to_string());
    let expected = vec![
        ongoing,
        from_to(
            on(
                event(
                    48,
                    "open-exchange-member-states-civil-society",
                    "Open exchange with Member States, civil society, the private sector, \
                     diaspora communities and migrant organizations",
                    EventKind::Meeting,
                ),
                date(2016, 11, 22),
            ),
            (15, 0),
            (18, 0),
        ),
        on(
            event(
                49,
                "circulation-elements-paper",
                "Circulation of an elements paper",
                EventKind::Circulation,
            ),
            date(2016, 11, 23),
        ),
        geneva,
        // Names New York, the roadmap's own venue: no venue key.
        from_to(
            on(
                event(
                    51,
                    "consultations-new-york-member-states",
                    "Consultations in New York with Member States",
                    EventKind::Meeting,
                ),
                date(2016, 12, 5),
            ),
            (15, 0),
            (18, 0),
        ),
        on(
            event(
                52,
                "circulation-zero-draft",
                "Circulation of zero draft",
                EventKind::Circulation,
            ),
            date(2016, 12, 9),
        ),
        from_to(
            on(
                event(
                    53,
                    "consultations-zero-draft-member-states",
                    "Consultations on zero draft with Member States",
                    EventKind::Meeting,
                ),
                date(2016, 12, 16),
            ),
            (15, 0),
            (18, 0),
        ),
    ];
    assert_eq!(roadmap.events, expected);
}

#[test]
fn letter_of_2017_every_row() {
    let report = import_letter(LETTER_2017, &new_york_options());

    // The President's cover letter (14 September) comes before the
    // co-facilitators' letter of 13 September 2017.
    assert_eq!(report.letter_date, Some(date(2017, 9, 14)));
    assert_eq!(report.problems, vec![]);

    let roadmap = &report.roadmap;
    assert_eq!(roadmap.id, "modalities-resolution-intergovernmental-2017");
    assert_eq!(
        roadmap.title,
        "Modalities resolution for the intergovernmental conference to adopt a global compact \
         for safe, orderly and regular migration"
    );
    assert_eq!(roadmap.venue.as_deref(), Some("new-york"));
    assert_eq!(roadmap.time_zone, None);

    // Before the letter's date: kept, and marked past.
    let mut note = on(
        event(
            74,
            "submission-note-organization-work-prepared",
            "Submission of the Note on the organization of work, prepared by the Secretariat",
            EventKind::Deadline,
        ),
        date(2017, 8, 25),
    );
    note.past = true;
    let mut first_reading = on(
        event(76, "first-reading", "1st reading", EventKind::Meeting),
        date(2017, 10, 2),
    );
    first_reading.part_of_day = Some(PartOfDay::Afternoon);
    let mut consultations = on(
        event(
            77,
            "informal-consultations-draft",
            "Informal consultations on the draft",
            EventKind::Meeting,
        ),
        date(2017, 10, 5),
    );
    consultations.part_of_day = Some(PartOfDay::Morning);
    let mut week = event(
        78,
        "additional-informal-consultations-needed",
        "Additional informal consultations, as needed",
        EventKind::Meeting,
    );
    week.week_of = Some(date(2017, 10, 23));
    let expected = vec![
        note,
        on(
            event(
                75,
                "circulation-0-draft-modalities-resolution",
                "Circulation of a 0-draft of the modalities resolution, prepared by the \
                 co-facilitators",
                EventKind::Circulation,
            ),
            date(2017, 9, 25),
        ),
        first_reading,
        consultations,
        week,
        // The letter's last line, without a trailing newline.
        on(
            event(
                79,
                "conclusion-negotiations-submission-resolution",
                "Conclusion of the negotiations and submission of the resolution to ACABQ and \
                 Fifth Committee",
                EventKind::Deadline,
            ),
            date(2017, 10, 31),
        ),
    ];
    assert_eq!(roadmap.events, expected);
}

#[test]
fn toml_of_2017_letter() {
    let report = import_letter(LETTER_2017, &new_york_options());
    insta::assert_snapshot!("gcm_modalities_2017_toml", report.toml);
}

/// The keys of a parsed table, sorted.
fn keys(table: &toml::Table) -> Vec<&str> {
    let mut keys: Vec<&str> = table.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

#[test]
fn toml_parses_back_with_the_schema_keys() {
    let report = import_letter(LETTER_2016, &new_york_options());
    let parsed: toml::Table = match toml::from_str(&report.toml) {
        Ok(parsed) => parsed,
        Err(error) => panic!("{error}\n{}", report.toml),
    };
    // No `lists` (the operator adds it) and no `time_zone` (New York has one).
    assert_eq!(keys(&parsed), vec!["events", "id", "title", "venue"]);
    assert_eq!(parsed["id"].as_str(), Some("roadmap-2016-11-15"));
    assert_eq!(parsed["venue"].as_str(), Some("new-york"));

    let Some(events) = parsed["events"].as_array() else {
        panic!("events is not an array: {}", report.toml);
    };
    let event_keys: Vec<Vec<&str>> = events
        .iter()
        .map(|event| event.as_table().map(keys).unwrap_or_default())
        .collect();
    assert_eq!(
        event_keys,
        vec![
            vec!["id", "kind", "ongoing", "title"],
            vec!["date", "end", "id", "kind", "start", "title"],
            vec!["date", "id", "kind", "title"],
            vec!["date", "end_date", "id", "kind", "title", "venue"],
            vec!["date", "end", "id", "kind", "start", "title"],
            vec!["date", "id", "kind", "title"],
            vec!["date", "end", "id", "kind", "start", "title"],
        ]
    );
    // Dates and times are plain strings in the schema's forms.
    assert_eq!(events[3]["date"].as_str(), Some("2016-12-01"));
    assert_eq!(events[3]["end_date"].as_str(), Some("2016-12-02"));
    assert_eq!(events[1]["start"].as_str(), Some("15:00"));
    assert_eq!(events[0]["ongoing"].as_bool(), Some(true));

    let report = import_letter(LETTER_2017, &new_york_options());
    let parsed: toml::Table = match toml::from_str(&report.toml) {
        Ok(parsed) => parsed,
        Err(error) => panic!("{error}\n{}", report.toml),
    };
    let events = parsed["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events[0]["past"].as_bool(), Some(true));
    assert_eq!(events[2]["part_of_day"].as_str(), Some("afternoon"));
    assert_eq!(events[4]["week_of"].as_str(), Some("2017-10-23"));
    // `past` is only written when true.
    assert!(events[1].get("past").is_none());
}

#[test]
fn without_a_default_venue_the_time_zone_is_written() {
    let report = import_letter(LETTER_2016, &ImportOptions::default());
    assert_eq!(report.roadmap.venue, None);
    assert_eq!(report.roadmap.time_zone.as_deref(), Some("America/New_York"));
    // Now New York is not the roadmap's venue, so the row naming it says so.
    let venues: Vec<Option<&str>> = report
        .roadmap
        .events
        .iter()
        .map(|event| event.venue.as_deref())
        .collect();
    assert_eq!(
        venues,
        vec![None, None, None, Some("geneva"), Some("new-york"), None, None]
    );
    let parsed: toml::Table = toml::from_str(&report.toml).unwrap_or_default();
    assert_eq!(keys(&parsed), vec!["events", "id", "time_zone", "title"]);

    // An unknown zone is still written, but reported.
    let options = ImportOptions {
        default_time_zone: "Mars/Olympus_Mons".to_string(),
        ..ImportOptions::default()
    };
    let report = import_letter(LETTER_2016, &options);
    assert_eq!(
        report.problems,
        vec![RowProblem {
            line: 0,
            text: String::new(),
            message: "the default time zone \"Mars/Olympus_Mons\" is not a known time zone".to_string()
        }]
    );
}

#[test]
fn venues_come_from_the_options() {
    let options = ImportOptions {
        default_venue: Some("new-york".to_string()),
        venues: vec![KnownVenue {
            id: "nairobi".to_string(),
            city: "Nairobi".to_string(),
            time_zone: "Africa/Nairobi".to_string(),
            aliases: vec!["Gigiri".to_string()],
        }],
        ..ImportOptions::default()
    };
    let text = letter(
        "10 November 2016",
        &[
            "December 5\tBriefing in Gigiri",
            "December 6\tConsultations in Geneva",
        ],
    );
    let report = import_letter(&text, &options);
    let venues: Vec<Option<&str>> = report
        .roadmap
        .events
        .iter()
        .map(|event| event.venue.as_deref())
        .collect();
    // Geneva is not among these venues, so it is not guessed.
    assert_eq!(venues, vec![Some("nairobi"), None]);
    // "new-york" is not among them either: the zone is written too.
    assert_eq!(report.roadmap.time_zone.as_deref(), Some("America/New_York"));
}

#[test]
fn rows_roll_over_the_year_end() {
    let text = letter(
        "New York, 10 November 2016",
        &[
            "December 5\tConsultations",
            "January 20\tCirculation of the zero draft",
            "20-22 February\tNegotiations",
            "12 to 16 March\tFinal negotiations",
        ],
    );
    let report = import_letter(&text, &new_york_options());
    assert_eq!(report.letter_date, Some(date(2016, 11, 10)));
    assert_eq!(report.problems, vec![]);
    let days: Vec<(Option<Date>, Option<Date>)> = report
        .roadmap
        .events
        .iter()
        .map(|event| (event.date, event.end_date))
        .collect();
    assert_eq!(
        days,
        vec![
            (Some(date(2016, 12, 5)), None),
            (Some(date(2017, 1, 20)), None),
            (Some(date(2017, 2, 20)), Some(date(2017, 2, 22))),
            (Some(date(2017, 3, 12)), Some(date(2017, 3, 16))),
        ]
    );
    assert!(report.roadmap.events.iter().all(|event| !event.past));
}

#[test]
fn bad_rows_are_problems_and_not_events() {
    let text = letter(
        "15 November 2016",
        &[
            "November 22\tOpen exchange",
            "Soon\tSomething vague",
            "31 February\tImpossible meeting",
            "25 Septober\tCirculation",
            "December 5, from 18:00 to 15:00\tBackwards meeting",
            "December 9\tCirculation of zero draft",
        ],
    );
    let expected_problems = vec![
        RowProblem {
            line: 8,
            text: "Soon\tSomething vague".to_string(),
            message: "cannot read the date \"Soon\": 'Soon' is not a month".to_string(),
        },
        RowProblem {
            line: 9,
            text: "31 February\tImpossible meeting".to_string(),
            // After November 2016, February is in 2017.
            message: "31 February 2017 does not exist".to_string(),
        },
        RowProblem {
            line: 10,
            text: "25 Septober\tCirculation".to_string(),
            message: "cannot read the date \"25 Septober\": 'Septober' is not a month".to_string(),
        },
        RowProblem {
            line: 11,
            text: "December 5, from 18:00 to 15:00\tBackwards meeting".to_string(),
            message: "cannot read the date \"December 5, from 18:00 to 15:00\": ends at 15:00, \
                      before it starts at 18:00"
                .to_string(),
        },
    ];

    let report = import_letter(&text, &new_york_options());
    assert_eq!(report.problems, expected_problems);
    let titles: Vec<&str> = report.roadmap.events.iter().map(|e| e.title.as_str()).collect();
    assert_eq!(titles, vec!["Open exchange", "Circulation of zero draft"]);
    // The bad "31 February" did not throw the chronology: December 9 is 2016.
    assert_eq!(report.roadmap.events[1].date, Some(date(2016, 12, 9)));
    assert!(!report.toml.contains('#'));

    // Skipping bad rows on request: the same events, the same problems,
    // and the TOML says what it is missing.
    let options = ImportOptions {
        skip_bad_rows: true,
        ..new_york_options()
    };
    let skipped = import_letter(&text, &options);
    assert_eq!(skipped.problems, expected_problems);
    assert_eq!(skipped.roadmap, report.roadmap);
    assert!(skipped.toml.starts_with(
        "# Rows of the letter that could not be read and were left out:\n\
         #   line 8: Soon Something vague\n\
         #     cannot read the date \"Soon\": 'Soon' is not a month\n"
    ));
    let parsed: Result<toml::Table, _> = toml::from_str(&skipped.toml);
    assert!(parsed.is_ok(), "{}", skipped.toml);
}

#[test]
fn parts_of_the_day_the_configuration_does_not_define_are_problems() {
    let text = letter(
        "14 September 2017",
        &[
            "2 October (afternoon)\t1st reading",
            "3 October (evening)\tReception",
            "4 October (evening), 19:00\tDinner",
        ],
    );
    let report = import_letter(&text, &new_york_options());
    assert_eq!(
        report.problems,
        vec![RowProblem {
            line: 8,
            text: "3 October (evening)\tReception".to_string(),
            message: "the evening is not a part of the day the configuration defines (morning, \
                      afternoon): add it to [parts_of_day] in herald.toml, or give the row's hours"
                .to_string(),
        }]
    );
    // Hours say more than a part of the day, and are kept instead.
    let titles: Vec<&str> = report.roadmap.events.iter().map(|e| e.title.as_str()).collect();
    assert_eq!(titles, vec!["1st reading", "Dinner"]);

    let options = ImportOptions {
        parts_of_day: vec!["evening".to_string()],
        ..new_york_options()
    };
    let report = import_letter(&text, &options);
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].line, 7);
    assert_eq!(report.roadmap.events[0].part_of_day, Some(PartOfDay::Evening));
}

#[test]
fn without_any_year_dated_rows_are_problems() {
    let text = "The roadmap:\n\nOngoing\tRegional groups\n25 September\tCirculation\n";
    let report = import_letter(text, &new_york_options());
    assert_eq!(report.letter_date, None);
    assert_eq!(report.roadmap.events.len(), 1);
    assert_eq!(
        report.problems,
        vec![RowProblem {
            line: 4,
            text: "25 September\tCirculation".to_string(),
            message: "no year: pass --year".to_string(),
        }]
    );

    let options = ImportOptions {
        year: Some(2017),
        ..new_york_options()
    };
    let report = import_letter(text, &options);
    assert_eq!(report.problems, vec![]);
    assert_eq!(report.roadmap.events[1].date, Some(date(2017, 9, 25)));
    assert_eq!(report.roadmap.id, "roadmap-2017");
    assert_eq!(report.roadmap.title, "Imported roadmap");

    // A year no roadmap is in is reported, and not used.
    let options = ImportOptions {
        year: Some(-1),
        ..new_york_options()
    };
    let report = import_letter(text, &options);
    let messages: Vec<(usize, &str)> = report
        .problems
        .iter()
        .map(|p| (p.line, p.message.as_str()))
        .collect();
    assert_eq!(
        messages,
        vec![(0, "-1 is not a plausible year"), (4, "no year: pass --year")]
    );
    assert_eq!(report.roadmap.id, "roadmap");
}

#[test]
fn a_letter_dated_at_its_foot() {
    let text = "The roadmap:\n\n25 August\tSubmission of the Note\n2 October\t1st reading\n\n\
                Geneva, 14 September 2017\n";
    let report = import_letter(text, &new_york_options());
    assert_eq!(report.letter_date, Some(date(2017, 9, 14)));
    assert_eq!(report.problems, vec![]);
    let past: Vec<bool> = report.roadmap.events.iter().map(|e| e.past).collect();
    assert_eq!(past, vec![true, false]);
}

#[test]
fn several_tables_make_one_roadmap() {
    let text = "14 September 2017\n\n\
                Meetings:\n\
                2 October (afternoon)\t1 st reading\n\
                5 October (morning)\tInformal consultations on the draft\n\
                \n\
                And the documents:\n\
                25 September\tCirculation of a zero draft\n\
                12 October\tInformal consultations on the draft\n";
    let report = import_letter(text, &new_york_options());
    assert_eq!(report.problems, vec![]);
    // Each table is in date order of its own: going back from October to
    // September between the tables does not mean the next year.
    assert_eq!(report.roadmap.events[2].date, Some(date(2017, 9, 25)));
    let ids: Vec<&str> = report.roadmap.events.iter().map(|e| e.id.as_str()).collect();
    // Two events of the same title both get their day in the id.
    assert_eq!(
        ids,
        vec![
            "first-reading",
            "informal-consultations-draft-2017-10-05",
            "circulation-zero-draft",
            "informal-consultations-draft-2017-10-12",
        ]
    );
    let lines: Vec<usize> = report.roadmap.events.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![4, 5, 8, 9]);
}

#[test]
fn roadmap_ids_from_the_options() {
    let options = ImportOptions {
        roadmap_id: Some("gcm-modalities-2017".to_string()),
        ..new_york_options()
    };
    assert_eq!(
        import_letter(LETTER_2017, &options).roadmap.id,
        "gcm-modalities-2017"
    );

    let options = ImportOptions {
        roadmap_id: Some("GCM Modalities 2017".to_string()),
        ..new_york_options()
    };
    let report = import_letter(LETTER_2017, &options);
    assert_eq!(report.roadmap.id, "gcm-modalities-2017");
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].line, 0);
}

#[test]
fn empty_and_tableless_letters() {
    let report = import_letter("", &ImportOptions::default());
    assert_eq!(report.roadmap.events, vec![]);
    assert_eq!(report.problems, vec![]);
    assert_eq!(report.roadmap.id, "roadmap");
    let parsed: Result<toml::Table, _> = toml::from_str(&report.toml);
    assert!(parsed.is_ok(), "{}", report.toml);

    // Windows line endings read the same.
    let crlf = LETTER_2017.replace('\n', "\r\n");
    let report = import_letter(&crlf, &new_york_options());
    assert_eq!(
        report.roadmap,
        import_letter(LETTER_2017, &new_york_options()).roadmap
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_and_always_writes_the_schema(
        text in prop_oneof![any::<String>(), letter_like_text()],
        year in any::<Option<i16>>(),
        skip_bad_rows in any::<bool>(),
    ) {
        let options = ImportOptions { year, skip_bad_rows, ..new_york_options() };
        let report = import_letter(&text, &options);
        // The TOML reads back as the roadmap file schema (no unknown keys,
        // every type right) and says what the typed roadmap says. Whether
        // herald's loader accepts it is herald's test
        // (tests/it/import_loads.rs).
        let parsed: Result<RoadmapFile, _> = toml::from_str(&report.toml);
        prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed.as_ref().err(), report.toml);
        if let Ok(parsed) = parsed {
            prop_assert_eq!(parsed, report.roadmap.to_file());
        }
        // Every row the import saw is either an event or a problem, once.
        let mut seen: Vec<usize> = report.roadmap.events.iter().map(|e| e.line).collect();
        seen.extend(report.problems.iter().map(|p| p.line).filter(|&line| line > 0));
        let count = seen.len();
        seen.sort_unstable();
        seen.dedup();
        prop_assert_eq!(seen.len(), count);
        prop_assert!(slug::is_valid_id(&report.roadmap.id), "{}", report.roadmap.id);
        // Ids are unique and valid.
        let mut ids: Vec<&str> = report.roadmap.events.iter().map(|e| e.id.as_str()).collect();
        prop_assert!(ids.iter().all(|id| slug::is_valid_id(id)), "{:?}", ids);
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        prop_assert_eq!(ids.len(), before);
    }
}
