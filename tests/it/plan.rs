//! The planner: the example config's reminders at their instants, and
//! properties that hold for any roadmap.

use std::collections::HashSet;

use herald::config::Environment;
use herald::model::{Event, EventStatus, Hours, Lead, Model, Roadmap, Schedule, Zone};
use herald::plan::{PlannedSend, Planner, SendSubject, Window, plan};
use jiff::civil::{Date, Time};
use proptest::prelude::*;
use serde_json::Value;

use crate::harness::{ConfigDir, herald_command, repo, stdout};

fn example() -> Model {
    herald::config::load(&repo().join("config"), &Environment::default())
        .expect("the example config loads")
        .model
}

fn plan_json(args: &[&str]) -> Vec<Value> {
    let output = herald_command(&repo().join("config"))
        .arg("plan")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout(&output)).expect("plan --json prints JSON")
}

fn find<'a>(rows: &'a [Value], event: &str, lead: &str, to: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["event"] == event && r["lead"] == lead && r["to"] == to)
        .unwrap_or_else(|| panic!("no {lead} reminder of {event} to {to}"))
}

#[test]
fn json_plan_of_both_seed_roadmaps_at_the_right_instants() {
    let rows = plan_json(&["--from", "2016-01-01"]);
    let amina = "amina.diallo@senegal-mission.example.org";
    // New York, timed: 7 days before 15:00 New York.
    let row = find(&rows, "open-exchange-2016-11-22", "7d", amina);
    assert_eq!(row["due"], "2016-11-15T15:00:00-05:00");
    assert_eq!(row["time_zone"], "America/New_York");
    assert_eq!(row["kind"], "reminder");
    assert_eq!(row["template"], "reminder");
    // 2h before a meeting: meetings have ["7d", "1d", "2h"].
    assert_eq!(
        find(&rows, "new-york-consultations-2016-12-05", "2h", amina)["due"],
        "2016-12-05T13:00:00-05:00"
    );
    // Geneva, date only: 09:00 Geneva time (Europe/Zurich), 7 days before.
    let row = find(&rows, "geneva-consultations", "7d", amina);
    assert_eq!(row["due"], "2016-11-24T09:00:00+01:00");
    assert_eq!(row["due_utc"], "2016-11-24T08:00:00Z");
    assert_eq!(row["time_zone"], "Europe/Zurich");
    // The geneva-experts list has its own leads (14d, 2d) for its members.
    let anna = "anna.keller@swiss-mission.example.org";
    assert_eq!(
        find(&rows, "geneva-consultations", "14d", anna)["due"],
        "2016-11-17T09:00:00+01:00"
    );
    assert!(
        rows.iter()
            .all(|r| !(r["event"] == "geneva-consultations" && r["to"] == anna && r["lead"] == "7d"))
    );
    // 2017: part of day "afternoon" is 15:00 New York; circulations get 1d at 09:00.
    assert_eq!(
        find(&rows, "first-reading", "7d", amina)["due"],
        "2017-09-25T15:00:00-04:00"
    );
    assert_eq!(
        find(&rows, "informal-consultations-2017-10-05", "1d", amina)["due"],
        "2017-10-04T10:00:00-04:00"
    );
    assert_eq!(
        find(&rows, "modalities-zero-draft", "1d", amina)["due"],
        "2017-09-24T09:00:00-04:00"
    );
    assert_eq!(
        find(&rows, "additional-consultations", "1d", amina)["due"],
        "2017-10-22T09:00:00-04:00"
    );
    // A deadline's 7 days cross the end of daylight time? No: 31 October is before 5 November 2017.
    assert_eq!(
        find(&rows, "conclusion-of-negotiations", "7d", amina)["due"],
        "2017-10-24T09:00:00-04:00"
    );
    // The focal point with her own leads gets only those.
    let grace = "grace.mwangi@migrant-voices.example.org";
    assert_eq!(
        find(&rows, "open-exchange-2016-11-22", "1d", grace)["due"],
        "2016-11-21T15:00:00-05:00"
    );
    assert_eq!(rows.iter().filter(|r| r["to"] == grace).count(), 1);
    // The ongoing item is never reminded of.
    assert!(rows.iter().all(|r| r["event"] != "regional-group-meetings"));
    // The letter goes to every member-states focal point at its time.
    let letters: Vec<_> = rows.iter().filter(|r| r["kind"] == "letter").collect();
    assert_eq!(letters.len(), 9);
    assert!(
        letters
            .iter()
            .all(|r| r["due"] == "2017-09-14T10:00:00-04:00" && r["letter"] == "modalities-roadmap-2017")
    );
    // Every row has the fields the brief promises.
    for row in &rows {
        for field in ["due", "kind", "lead", "to", "template"] {
            assert!(row.get(field).is_some(), "{field} missing in {row}");
        }
        assert!(row["event"].is_string() || row["letter"].is_string());
    }
}

#[test]
fn window_limits_the_plan() {
    let all = plan_json(&["--from", "2016-01-01"]);
    let from = plan_json(&["--from", "2017-10-01"]);
    let between = plan_json(&["--from", "2017-09-01", "--until", "2017-10-01"]);
    assert!(!from.is_empty() && !between.is_empty());
    assert!(
        from.iter()
            .all(|r| r["due_utc"].as_str().unwrap() >= "2017-10-01")
    );
    assert!(between.iter().all(|r| {
        let due = r["due_utc"].as_str().unwrap();
        ("2017-09-01".."2017-10-01").contains(&due)
    }));
    let later: Vec<_> = all
        .iter()
        .filter(|r| r["due_utc"].as_str().unwrap() >= "2017-10-01")
        .collect();
    assert_eq!(later.len(), from.len());
}

#[test]
fn the_table_and_the_hint_when_nothing_is_due() {
    let config = ConfigDir::example();
    let output = config.herald(&["plan", "--from", "2030-01-01"]);
    let out = stdout(&output);
    assert!(out.contains("0 sends to 0 recipients"), "{out}");
    assert!(
        out.contains("the whole plan runs from 2016-11-15T20:00:00Z"),
        "{out}"
    );
    let output = config.herald(&["plan", "--from", "2017-10-30", "--until", "2017-10-31"]);
    let out = stdout(&output);
    assert!(out.lines().next().unwrap().starts_with("DUE"), "{out}");
    assert!(
        out.contains("2017-10-30 09:00 EDT  reminder  conclusion-of-negotiations  1d"),
        "{out}"
    );
}

/// A model with one generated roadmap and the example's settings and people.
fn model_with(events: Vec<Event>, leads_of: Vec<Option<Vec<Lead>>>) -> Model {
    let mut model = example();
    model.roadmaps = vec![Roadmap {
        id: "generated".into(),
        title: "Generated".into(),
        events,
        notices: true,
    }];
    model.letters.clear();
    for (focal_point, leads) in model.focal_points.iter_mut().zip(leads_of) {
        focal_point.leads = leads;
    }
    model
}

const ZONES: &[&str] = &[
    "America/New_York",
    "Europe/Zurich",
    "Asia/Kolkata",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "Europe/London",
    "UTC",
];
const LEADS: &[&str] = &["7d", "1d", "2h", "14d", "1w", "3d", "30m", "36h", "2d 12h"];

fn arb_schedule() -> impl Strategy<Value = Schedule> {
    let date = (2016i16..2031, 1i8..13, 1i8..29).prop_map(|(y, m, d)| jiff::civil::date(y, m, d));
    let hours = proptest::option::of(
        (
            0i8..24,
            prop_oneof![Just(0i8), Just(30i8)],
            proptest::option::of(1i8..6),
        )
            .prop_map(|(h, m, length)| Hours {
                start: jiff::civil::time(h, m, 0, 0),
                end: length.and_then(|l| (h + l < 24).then(|| jiff::civil::time(h + l, m, 0, 0))),
                part_of_day: None,
            }),
    );
    prop_oneof![
        (date.clone(), hours.clone()).prop_map(|(date, hours)| Schedule::Day { date, hours }),
        (date.clone(), 1i64..5, hours).prop_map(|(first, n, hours)| Schedule::Days {
            first,
            last: first.checked_add(jiff::Span::new().days(n)).unwrap(),
            hours
        }),
        date.prop_map(|first| Schedule::WeekOf { first }),
        Just(Schedule::Ongoing),
    ]
}

fn arb_leads() -> impl Strategy<Value = Option<Vec<Lead>>> {
    proptest::option::of(proptest::sample::subsequence(LEADS, 1..4))
        .prop_map(|leads| leads.map(|l| l.iter().map(|t| Lead::parse(t).unwrap()).collect()))
}

fn arb_event(index: usize) -> impl Strategy<Value = Event> {
    (
        arb_schedule(),
        proptest::sample::select(ZONES),
        arb_leads(),
        proptest::sample::select(&["meeting", "deadline", "circulation", "other"][..]),
        proptest::sample::subsequence(&["member-states", "geneva-experts", "civil-society"][..], 1..3),
        proptest::bool::weighted(0.1),
    )
        .prop_map(move |(schedule, zone, leads, kind, lists, cancelled)| Event {
            id: format!("event-{index}"),
            roadmap: "generated".into(),
            title: format!("Event {index}"),
            kind: kind.into(),
            schedule,
            venue: None,
            room: None,
            zone: Zone::named(zone).unwrap(),
            lists: lists.iter().map(|l| (*l).to_owned()).collect(),
            leads,
            template: "reminder".into(),
            status: if cancelled {
                EventStatus::Cancelled
            } else {
                EventStatus::Confirmed
            },
            past: false,
        })
}

fn arb_model() -> impl Strategy<Value = Model> {
    (
        (0..6usize).prop_flat_map(|n| (0..n).map(arb_event).collect::<Vec<_>>()),
        proptest::collection::vec(arb_leads(), 12),
    )
        .prop_map(|(events, leads)| model_with(events, leads))
}

fn reminder_parts<'m>(model: &'m Model, send: &PlannedSend) -> (&'m Event, Lead) {
    let SendSubject::Reminder { event, lead, .. } = &send.subject else {
        panic!("only reminders here")
    };
    (model.event(event).unwrap().1, Lead::parse(lead).unwrap())
}

fn exists_unchanged(zone: &Zone, date: Date, time: Time) -> bool {
    zone.at(date, time).time() == time
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every due instant is the event's start minus the lead, in the event's zone.
    #[test]
    fn due_is_the_anchor_minus_the_lead_in_the_event_zone(model in arb_model()) {
        let all_day_at = model.settings.reminders.all_day_at;
        for send in plan(&model, Window::default()) {
            let (event, lead) = reminder_parts(&model, &send);
            let anchor = event.anchor(all_day_at).expect("only dated events are reminded of");
            prop_assert_eq!(send.due.time_zone().iana_name(), Some(event.zone.name.as_str()));
            prop_assert_eq!(Some(send.due.clone()), lead.before(&anchor));
            let span = lead.span();
            if span.get_hours() == 0 && span.get_minutes() == 0 {
                // Calendar days: the wall clock is kept (unless the day has no such time).
                let days = i64::from(span.get_weeks()) * 7 + i64::from(span.get_days());
                let date = anchor.date().checked_sub(jiff::Span::new().days(days)).unwrap();
                if exists_unchanged(&event.zone, date, anchor.time()) {
                    prop_assert_eq!(send.due.date(), date);
                    prop_assert_eq!(send.due.time(), anchor.time());
                }
            } else if span.get_days() == 0 && span.get_weeks() == 0 {
                // Hours and minutes are exact elapsed time.
                let elapsed = anchor.timestamp().duration_since(send.due.timestamp());
                let expected = jiff::SignedDuration::from_mins(i64::from(span.get_hours()) * 60 + span.get_minutes());
                prop_assert_eq!(elapsed, expected);
            }
            prop_assert!(event.status == EventStatus::Confirmed);
        }
    }

    /// No send twice; order by due instant then key; the same model gives the same plan.
    #[test]
    fn no_duplicates_and_a_stable_order(model in arb_model()) {
        let first = plan(&model, Window::default());
        let keys: HashSet<_> = first.iter().map(|s| s.key.clone()).collect();
        prop_assert_eq!(keys.len(), first.len());
        for pair in first.windows(2) {
            let order = pair[0].due.timestamp().cmp(&pair[1].due.timestamp()).then(pair[0].key.cmp(&pair[1].key));
            prop_assert!(order.is_lt(), "{:?} before {:?}", pair[0].key, pair[1].key);
        }
        prop_assert_eq!(&first, &plan(&model, Window::default()));
    }

    /// Splitting the window in two splits the plan in two.
    #[test]
    fn windows_partition_the_plan(model in arb_model(), split in 2016i16..2031) {
        let at = jiff::civil::date(split, 6, 1).to_zoned_datetime(jiff::tz::TimeZone::UTC).unwrap().timestamp();
        let all = plan(&model, Window::default());
        let before = plan(&model, Window { from: None, until: Some(at) });
        let after = plan(&model, Window { from: Some(at), until: None });
        prop_assert_eq!(before.len() + after.len(), all.len());
        prop_assert!(before.iter().all(|s| s.due.timestamp() < at));
    }

    /// The daemon finds the send an outbox row stands for by its parts
    /// (`Planner::send_for`): it must be exactly the send the plan makes.
    #[test]
    fn every_send_is_found_again_from_its_key(model in arb_model()) {
        let planner = Planner::new(&model);
        for send in planner.plan(Window::default()) {
            let SendSubject::Reminder { event, lead, .. } = &send.subject else { continue };
            let found = planner.send_for("reminder", event, Some(lead), &send.to);
            prop_assert_eq!(found.as_ref(), Some(&send));
        }
        // A lead the recipient does not get, or an address on no list, is no send.
        prop_assert_eq!(planner.send_for("reminder", "event-0", Some("13d"), "k.watanabe@japan-mission.example.org"), None);
        prop_assert_eq!(planner.send_for("reminder", "event-0", Some("1d"), "nobody@example.org"), None);
    }
}

#[test]
fn seven_days_before_across_a_dst_change() {
    // New York's daylight time starts on 2027-03-14: a 15:00 meeting on the
    // 15th is reminded of at 15:00 on the 8th, 167 hours before, not 168.
    let mut model = example();
    let (_, event) = model.event("new-york-consultations-2016-12-05").unwrap();
    let mut event = event.clone();
    event.schedule = Schedule::Day {
        date: jiff::civil::date(2027, 3, 15),
        hours: Some(Hours {
            start: jiff::civil::time(15, 0, 0, 0),
            end: None,
            part_of_day: None,
        }),
    };
    event.leads = Some(vec![Lead::parse("7d").unwrap()]);
    model.roadmaps = vec![Roadmap {
        id: "r".into(),
        title: "r".into(),
        events: vec![event],
        notices: true,
    }];
    model.letters.clear();
    model
        .focal_points
        .retain(|fp| fp.email.to_string() == "amina.diallo@senegal-mission.example.org");
    assert_eq!(model.focal_points.len(), 1);
    let sends = plan(&model, Window::default());
    assert_eq!(sends.len(), 1);
    assert_eq!(
        sends[0].due.to_string(),
        "2027-03-08T15:00:00-05:00[America/New_York]"
    );
}
