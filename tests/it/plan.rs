//! The planner: the example config's reminders at their instants, and
//! properties that hold for any roadmap.

use std::collections::HashSet;
use std::sync::LazyLock;

use herald::config::Environment;
use herald::key::{AddressKey, SendKey, SendKind};
use herald::model::{Event, EventStatus, FocalPoint, Lead, Model, Zone};
use herald::plan::{PlannedSend, Planner, Window, plan};
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

// Properties on generated roadmaps. Each case writes a configuration (the
// example's herald.toml and templates, one generated roadmap, the example's
// focal points with generated leads of their own, no letters) and loads it
// with the real loader, so every model is one an operator could write.

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
const KINDS: &[&str] = &["meeting", "deadline", "circulation", "other"];
/// The lists of the example's herald.toml.
const LISTS: &[&str] = &["member-states", "geneva-experts", "civil-society"];

/// A generated configuration: the events of `roadmaps/generated.toml`, each
/// a table as written in the file, and the leads of each of the example's
/// focal points, in the example's order (`None`: none of their own).
#[derive(Clone)]
struct Generated {
    events: Vec<toml::Table>,
    leads: Vec<Option<Vec<&'static str>>>,
}

impl Generated {
    /// The text of `roadmaps/generated.toml`.
    fn roadmap(&self) -> String {
        let events = self.events.iter().cloned().map(toml::Value::Table).collect();
        let file = toml::Table::from_iter([
            ("id".to_owned(), "generated".into()),
            ("title".to_owned(), "Generated".into()),
            ("events".to_owned(), toml::Value::Array(events)),
        ]);
        toml::to_string(&file).expect("a TOML table")
    }

    /// The model of the configuration, read by the loader from its files.
    fn load(&self) -> Model {
        let focal_points = example_focal_points();
        thread_local! {
            /// The configuration each case of a test rewrites (both files,
            /// whole): copying the example's fifty-odd files for every case
            /// made these tests several times slower.
            static CONFIG: ConfigDir = bare_example();
        }
        let model = CONFIG.with(|config| {
            load_with(
                config,
                "generated",
                &self.roadmap(),
                &focal_points_file(focal_points.iter().zip(&self.leads)),
            )
        });
        // The files say what was generated: every event, and the example's
        // focal points with their generated leads.
        assert_eq!(model.events().count(), self.events.len());
        assert_eq!(model.focal_points().len(), focal_points.len());
        for ((loaded, example), leads) in model.focal_points().iter().zip(focal_points).zip(&self.leads) {
            assert_eq!(but_the_leads(loaded), but_the_leads(example));
            let leads = leads
                .as_ref()
                .map(|l| l.iter().map(|t| Lead::parse(t).unwrap()).collect());
            assert_eq!(loaded.leads, leads, "the leads of {}", loaded.email);
        }
        model
    }
}

/// Everything a focal point says but their own leads.
fn but_the_leads(focal_point: &FocalPoint) -> impl PartialEq + std::fmt::Debug + '_ {
    let FocalPoint {
        name,
        email,
        mission,
        honorific,
        language,
        zone,
        lists,
        leads: _,
        origin: _,
    } = focal_point;
    (name, email, mission, honorific, language, zone, lists)
}

/// The roadmap file, then the focal points that have leads of their own.
impl std::fmt::Debug for Generated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "roadmaps/generated.toml:\n{}", self.roadmap())?;
        for (focal_point, leads) in example_focal_points().iter().zip(&self.leads) {
            if let Some(leads) = leads {
                writeln!(f, "{} leads = {leads:?}", focal_point.email)?;
            }
        }
        Ok(())
    }
}

/// The example's focal points (9 on its CSV list, 3 on its TOML one).
fn example_focal_points() -> &'static [FocalPoint] {
    static FOCAL_POINTS: LazyLock<Vec<FocalPoint>> = LazyLock::new(|| example().focal_points().to_vec());
    &FOCAL_POINTS
}

/// A list file with these focal points as the example has them (name,
/// email, mission, honorific, language, time zone, lists), each with the
/// given `leads` of its own, or none.
fn focal_points_file<'a>(
    focal_points: impl IntoIterator<Item = (&'a FocalPoint, &'a Option<Vec<&'static str>>)>,
) -> String {
    let rows = focal_points.into_iter().map(|(focal_point, leads)| {
        let mut row = toml::Table::new();
        let mut set = |key: &str, value: toml::Value| row.insert(key.to_owned(), value);
        set("name", focal_point.name.clone().into());
        set("email", focal_point.email.to_string().into());
        if let Some(mission) = &focal_point.mission {
            set("mission", mission.clone().into());
        }
        if let Some(honorific) = &focal_point.honorific {
            set("honorific", honorific.clone().into());
        }
        set("language", focal_point.language.clone().into());
        if let Some(zone) = &focal_point.zone {
            set("time_zone", zone.name.clone().into());
        }
        set("lists", focal_point.lists.clone().into());
        if let Some(leads) = leads {
            set("leads", leads.clone().into());
        }
        toml::Value::Table(row)
    });
    let file = toml::Table::from_iter([("focal_points".to_owned(), toml::Value::Array(rows.collect()))]);
    toml::to_string(&file).expect("a TOML table")
}

/// The example configuration without its roadmaps, focal points and letters.
fn bare_example() -> ConfigDir {
    let config = ConfigDir::example();
    config.remove("roadmaps").remove("lists").remove("letters");
    config
}

/// The model of a [`bare_example`] with one roadmap, written as
/// `roadmaps/ID.toml`, and the focal points of the list file `focal_points`.
/// It must load.
fn load_with(config: &ConfigDir, id: &str, roadmap: &str, focal_points: &str) -> Model {
    config
        .write(&format!("roadmaps/{id}.toml"), roadmap)
        .write("lists/focal-points.toml", focal_points);
    config.model()
}

/// The keys that say when an event is, as written in a roadmap: `date`
/// (with `start` and maybe `end`, or no hours), `date` and `end_date`
/// (several days, with or without hours), `week_of`, or `ongoing = true`.
fn arb_schedule() -> impl Strategy<Value = toml::Table> {
    let date = (2016i16..2031, 1i8..13, 1i8..29).prop_map(|(y, m, d)| jiff::civil::date(y, m, d));
    let hours = proptest::option::of((
        0i8..24,
        prop_oneof![Just(0i8), Just(30i8)],
        proptest::option::of(1i8..6),
    ))
    .prop_map(|hours| {
        let mut keys = toml::Table::new();
        if let Some((h, m, length)) = hours {
            keys.insert("start".into(), format!("{h:02}:{m:02}").into());
            // An end the same day, when the event has one.
            if let Some(end) = length.map(|l| h + l).filter(|end| *end < 24) {
                keys.insert("end".into(), format!("{end:02}:{m:02}").into());
            }
        }
        keys
    });
    prop_oneof![
        (date.clone(), hours.clone()).prop_map(|(date, mut keys)| {
            keys.insert("date".into(), date.to_string().into());
            keys
        }),
        (date.clone(), 1i64..5, hours).prop_map(|(first, n, mut keys)| {
            let last = first.checked_add(jiff::Span::new().days(n)).unwrap();
            keys.insert("date".into(), first.to_string().into());
            keys.insert("end_date".into(), last.to_string().into());
            keys
        }),
        date.prop_map(|first| toml::Table::from_iter([("week_of".to_owned(), first.to_string().into())])),
        Just(toml::Table::from_iter([("ongoing".to_owned(), true.into())])),
    ]
}

fn arb_leads() -> impl Strategy<Value = Option<Vec<&'static str>>> {
    proptest::option::of(proptest::sample::subsequence(LEADS, 1..4))
}

/// An event of the generated roadmap, as its table in the file.
fn arb_event(index: usize) -> impl Strategy<Value = toml::Table> {
    (
        arb_schedule(),
        proptest::sample::select(ZONES),
        arb_leads(),
        proptest::sample::select(KINDS),
        proptest::sample::subsequence(LISTS, 1..3),
        proptest::bool::weighted(0.1),
    )
        .prop_map(move |(schedule, zone, leads, kind, lists, cancelled)| {
            let mut event = toml::Table::new();
            let mut set = |key: &str, value: toml::Value| event.insert(key.to_owned(), value);
            set("id", format!("event-{index}").into());
            set("title", format!("Event {index}").into());
            set("kind", kind.into());
            set("time_zone", zone.into());
            set("lists", lists.into());
            if let Some(leads) = leads {
                set("leads", leads.into());
            }
            if cancelled {
                set("status", "cancelled".into());
            }
            event.extend(schedule);
            event
        })
}

fn arb_config() -> impl Strategy<Value = Generated> {
    (
        (0..6usize).prop_flat_map(|n| (0..n).map(arb_event).collect::<Vec<_>>()),
        proptest::collection::vec(arb_leads(), example_focal_points().len()),
    )
        .prop_map(|(events, leads)| Generated { events, leads })
}

// What the properties take apart of the planner's sends, in one place: what a
// send is about, and the send an outbox row stands for.

/// A reminder's event id and lead, as its key names them.
fn reminder_of(send: &PlannedSend) -> (&str, &str) {
    assert_eq!(send.kind(), SendKind::Reminder, "only reminders here");
    (
        send.key.subject(),
        send.key.lead().expect("a reminder's key has its lead"),
    )
}

fn reminder_parts<'m>(model: &'m Model, send: &PlannedSend) -> (&'m Event, Lead) {
    let (event, lead) = reminder_of(send);
    (model.event(event).unwrap().1, Lead::parse(lead).unwrap())
}

/// The reminder the daemon finds for an outbox row of these parts; the
/// row's key is made the one way keys are.
fn reminder_for(planner: &Planner, event: &str, lead: &str, to: &str) -> Option<PlannedSend> {
    let key = SendKey::reminder(event, lead, &AddressKey::of(to));
    planner.send_for(&key, to).ok()
}

fn exists_unchanged(zone: &Zone, date: Date, time: Time) -> bool {
    zone.at(date, time).time() == time
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every due instant is the event's start minus the lead, in the event's zone.
    #[test]
    fn due_is_the_anchor_minus_the_lead_in_the_event_zone(config in arb_config()) {
        let model = config.load();
        let all_day_at = model.settings().reminders.all_day_at;
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
    fn no_duplicates_and_a_stable_order(config in arb_config()) {
        let model = config.load();
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
    fn windows_partition_the_plan(config in arb_config(), split in 2016i16..2031) {
        let model = config.load();
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
    fn every_send_is_found_again_from_its_key(config in arb_config()) {
        let model = config.load();
        let planner = Planner::new(&model);
        for send in planner.plan(Window::default()) {
            let (event, lead) = reminder_of(&send);
            let found = reminder_for(&planner, event, lead, &send.to);
            prop_assert_eq!(found.as_ref(), Some(&send));
        }
        // A lead the recipient does not get, or an address on no list, is no send.
        prop_assert_eq!(reminder_for(&planner, "event-0", "13d", "k.watanabe@japan-mission.example.org"), None);
        prop_assert_eq!(reminder_for(&planner, "event-0", "1d", "nobody@example.org"), None);
    }
}

#[test]
fn seven_days_before_across_a_dst_change() {
    // New York's daylight time starts on 2027-03-14: a 15:00 meeting on the
    // 15th is reminded of at 15:00 on the 8th, 167 hours before, not 168.
    let roadmap = r#"
id = "r"
title = "r"

[[events]]
id = "new-york-consultations-2016-12-05"
title = "Consultations in New York with Member States"
kind = "meeting"
venue = "new-york"
lists = ["member-states"]
date = "2027-03-15"
start = "15:00"
leads = ["7d"]
"#;
    let amina = example_focal_points()
        .iter()
        .filter(|fp| fp.email.to_string() == "amina.diallo@senegal-mission.example.org");
    let model = load_with(
        &bare_example(),
        "r",
        roadmap,
        &focal_points_file(amina.map(|fp| (fp, &None))),
    );
    assert_eq!(model.focal_points().len(), 1);
    let sends = plan(&model, Window::default());
    assert_eq!(sends.len(), 1);
    assert_eq!(
        sends[0].due.to_string(),
        "2027-03-08T15:00:00-05:00[America/New_York]"
    );
}
