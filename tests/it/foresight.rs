//! The relay's limits foreseen by `herald check` and `herald plan`: the
//! days and hours over `per_day` and `per_hour`, the slots that would leave
//! late and by how much, and those that start early to leave on time.
//!
//! The plan is [`FUTURE_ROADMAP`]'s meeting (2099-03-01, 15:00 New York):
//! 9 focal points, reminders 1d, 2h and 30m before, due at
//! 2099-02-28 20:00, 2099-03-01 18:00 and 19:30 UTC. It is in the future
//! whatever the day the tests run, so `check` (which foresees from now)
//! sees all 27 sends.

use herald::clock::{Clock, SystemClock};
use herald::key::{AddressKey, SendKey};
use herald::outbox::{Changes, Outbox, Recorded, SendSpec, SqliteOutbox};
use jiff::SignedDuration;
use jiff::tz::TimeZone;
use serde_json::Value;

use crate::harness::{ConfigDir, FUTURE_ROADMAP, herald_command, stderr, stdout};

/// The example configuration with the future meeting, delivering over SMTP
/// with `limits` (lines of `[delivery.smtp]`).
pub fn limited(limits: &str) -> ConfigDir {
    let config = ConfigDir::example();
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    config.edit(
        "config/herald.toml",
        "transport = \"maildir\"",
        "transport = \"smtp\"",
    );
    let herald_toml = config.path().join("herald.toml");
    let mut text = std::fs::read_to_string(&herald_toml).unwrap();
    text.push_str(&format!(
        "\n[delivery.smtp]\nhost = \"smtp.example.org\"\n{limits}\n"
    ));
    std::fs::write(herald_toml, text).unwrap();
    config
}

/// Runs a command that must succeed; its standard output.
fn succeeds(config: &ConfigDir, args: &[&str]) -> String {
    let output = config.herald(args);
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

#[test]
fn a_per_day_the_plan_exceeds_makes_check_name_the_day_and_the_late_slots() {
    let config = limited("per_day = 15");
    let out = succeeds(&config, &["check"]);
    // 18 of the 27 are due on 1 March (UTC).
    assert!(
        out.contains(
            "  warning: 1 day (UTC) holds more sends than per_day = 15:\n    2099-03-01: 18 sends\n"
        ),
        "{out}"
    );
    // In any 24 hours at most 15 leave: the 1d reminders start 30 minutes
    // early (max_early's default), which lets 6 of the 2h ones and 6 of the
    // 30m ones leave on time; the rest wait for the day to roll on.
    assert!(
        out.contains(
            "  warning: 2 slots would leave late under these limits (6 messages after their due instant, the latest by 22h 30m):\n\
             \x20   reminder future-meeting 2h due 2099-03-01 13:00 EST: 3 of 9 late, the last by 1h 30m\n\
             \x20   reminder future-meeting 30m due 2099-03-01 14:30 EST: 3 of 9 late, the last by 22h 30m\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("assuming nothing was sent in the 24 hours before now: no outbox in"),
        "{out}"
    );
}

#[test]
fn a_burst_that_fits_within_max_early_is_no_warning_but_plan_says_it_starts_early() {
    // 9 messages 10 s apart take 80 s: each slot starts 1 min 20 s early.
    let config = limited("per_minute = 6");
    let out = succeeds(&config, &["check"]);
    // The example's letter has no body for its German reader, and its
    // mailto: unsubscribe no link secret: warnings, but not the limits'.
    let limits_part: Vec<&str> = out
        .lines()
        .filter(|line| !line.contains("has no body in") && !line.contains("without a link secret"))
        .collect();
    assert!(!limits_part.join("\n").contains("warning"), "{out}");
    assert!(
        out.contains("  the plan keeps within them: no hour or day over, no send late\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "  note: 3 slots start early so that their last message leaves on time, at most 1m 20s early"
        ),
        "{out}"
    );
    let plan = succeeds(&config, &["plan"]);
    assert!(!plan.contains("warning"), "{plan}");
    for line in [
        "  reminder future-meeting 1d due 2099-02-28 15:00 EST: starts 1m 20s early\n",
        "  reminder future-meeting 2h due 2099-03-01 13:00 EST: starts 1m 20s early\n",
        "  reminder future-meeting 30m due 2099-03-01 14:30 EST: starts 1m 20s early\n",
    ] {
        assert!(plan.contains(line), "{line:?} not in\n{plan}");
    }
}

#[test]
fn an_hour_over_per_hour_is_named() {
    let config = limited("per_hour = 5");
    let out = succeeds(&config, &["check"]);
    assert!(
        out.contains(
            "  warning: 3 hours (UTC) hold more sends than per_hour = 5:\n\
             \x20   2099-02-28 20:00: 9 sends\n\
             \x20   2099-03-01 18:00: 9 sends\n\
             \x20   2099-03-01 19:00: 9 sends\n"
        ),
        "{out}"
    );
    assert!(out.contains("slots would leave late"), "{out}");
}

#[test]
fn no_limits_no_word_about_them() {
    let config = limited("");
    let out = succeeds(&config, &["check"]);
    assert!(out.contains("27 of them still to come"), "{out}");
    assert!(!out.contains("limit"), "{out}");
    let plan = succeeds(&config, &["plan"]);
    assert!(!plan.contains("limit") && !plan.contains("early"), "{plan}");
    let rows: Vec<Value> = serde_json::from_str(&succeeds(&config, &["plan", "--json"])).unwrap();
    assert_eq!(rows.len(), 27);
    // The key is there, null: a script can read it whatever the relay.
    assert!(
        rows.iter().all(|row| row.get("pace") == Some(&Value::Null)),
        "{rows:#?}"
    );
}

#[test]
fn plan_json_carries_the_pace_of_each_send() {
    let config = limited("per_day = 15");
    let rows: Vec<Value> = serde_json::from_str(&succeeds(&config, &["plan", "--json"])).unwrap();
    assert_eq!(rows.len(), 27);
    let pace_of = |lead: &str| {
        let paces: Vec<&Value> = rows
            .iter()
            .filter(|row| row["lead"] == lead)
            .map(|row| &row["pace"])
            .collect();
        assert_eq!(paces.len(), 9, "{lead}");
        assert!(paces.iter().all(|pace| *pace == paces[0]), "one pace per slot");
        paces[0].clone()
    };
    assert_eq!(
        pace_of("1d"),
        serde_json::json!({
            "first": "2099-02-28T19:30:00Z",
            "last": "2099-02-28T19:30:00Z",
            "late": 0,
            "late_by_seconds": 0,
            "over": [],
        })
    );
    assert_eq!(
        pace_of("30m"),
        serde_json::json!({
            "first": "2099-03-01T19:30:00Z",
            "last": "2099-03-02T18:00:00Z",
            "late": 3,
            "late_by_seconds": 22 * 3600 + 30 * 60,
            "over": ["per_day"],
        })
    );
}

#[test]
fn what_the_outbox_sent_in_the_last_day_counts_against_it() {
    // `check` foresees from the real now: a meeting 12 hours from now (UTC,
    // to the minute), whose 9 reminders 2h before are due within the day.
    let now = SystemClock.now();
    let start = (now + SignedDuration::from_hours(12)).to_zoned_datetime(TimeZone::UTC);
    let roadmap = format!(
        "id = \"soon\"\ntitle = \"Soon\"\ntime_zone = \"UTC\"\nlists = [\"member-states\"]\n\n[[events]]\nid = \"soon-meeting\"\ntitle = \"A meeting\"\nkind = \"meeting\"\ndate = \"{}\"\nstart = \"{}\"\nleads = [\"2h\"]\n",
        start.strftime("%Y-%m-%d"),
        start.strftime("%H:%M"),
    );
    let config = limited("per_day = 15");
    config.write("roadmaps/soon.toml", &roadmap);
    let check = |state: &std::path::Path| {
        let output = herald_command(&config.path())
            .env("HERALD_STATE_DIR", state)
            .arg("check")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output)
    };

    // Nothing sent: the 9 fit the day (the future meeting's 27 are days away).
    let fresh = tempfile::tempdir().unwrap();
    let out = check(fresh.path());
    assert!(!out.contains("soon-meeting"), "{out}");

    // 10 sent an hour ago, as the outbox recorded them: 5 of the 9 fit.
    let state = tempfile::tempdir().unwrap();
    let sent_at = now - SignedDuration::from_hours(1);
    let specs: Vec<SendSpec> = (0..10)
        .map(|i| spec("earlier", "1d", &format!("fp{i}@example.org"), sent_at))
        .collect();
    record_sent(state.path(), specs, sent_at);
    let out = check(state.path());
    assert!(
        out.contains("counting the 10 messages sent in the 24 hours before now (the outbox in"),
        "{out}"
    );
    let due = (start - SignedDuration::from_hours(2)).strftime("%Y-%m-%d %H:%M UTC");
    assert!(
        out.contains(&format!(
            "    reminder soon-meeting 2h due {due}: 4 of 9 late, the last by "
        )),
        "{out}"
    );
}

#[test]
fn check_and_plan_count_only_the_sends_of_a_slot_not_yet_made() {
    let config = limited("per_day = 15");
    let rows: Vec<Value> = serde_json::from_str(&succeeds(&config, &["plan", "--json"])).unwrap();
    // The 1d reminders went out already (the outbox says so): 18 are
    // left, and only the last 3 of them are over the day's 15.
    let due: jiff::Timestamp = "2099-02-28T20:00:00Z".parse().unwrap();
    let specs: Vec<SendSpec> = rows
        .iter()
        .filter(|row| row["lead"] == "1d")
        .map(|row| spec("future-meeting", "1d", row["to"].as_str().unwrap(), due))
        .collect();
    assert_eq!(specs.len(), 9);
    let state = tempfile::tempdir().unwrap();
    record_sent(state.path(), specs, due);
    let late = "warning: 1 slot would leave late under these limits (3 messages after their due instant, the latest by 22h 30m):\n";
    let slot = "reminder future-meeting 30m due 2099-03-01 14:30 EST: 3 of 9 late, the last by 22h 30m\n";
    for (command, indent) in [("plan", ""), ("check", "  ")] {
        let output = herald_command(&config.path())
            .env("HERALD_STATE_DIR", state.path())
            .arg(command)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        let out = stdout(&output);
        assert!(
            out.contains(&format!("{indent}{late}{indent}  {slot}")),
            "{command}:\n{out}"
        );
    }
}

/// A reminder's outbox row, due at `due`.
fn spec(event: &str, lead: &str, address: &str, due: jiff::Timestamp) -> SendSpec {
    SendSpec {
        key: SendKey::reminder(event, lead, &AddressKey::of(address)),
        recipient: address.to_owned(),
        list: "member-states".to_owned(),
        language: "en".to_owned(),
        template: "reminder".to_owned(),
        due,
        zone: "UTC".to_owned(),
    }
}

/// Puts `specs` in the outbox of `state` as sent at `at`, as the daemon
/// records them: planned, claimed, then sent.
fn record_sent(state: &std::path::Path, specs: Vec<SendSpec>, at: jiff::Timestamp) {
    let n = specs.len();
    let outbox = SqliteOutbox::open(state).unwrap();
    let changes = Changes {
        insert: specs,
        ..Changes::default()
    };
    outbox.apply(&changes, at).unwrap();
    let claimed = outbox.claim_due(at, n).unwrap();
    assert_eq!(claimed.len(), n);
    let outcomes: Vec<(SendKey, Recorded)> = claimed
        .into_iter()
        .map(|entry| {
            let sent = Recorded::Sent {
                reply: "250 2.0.0 Ok".to_owned(),
                left_at: None,
            };
            (entry.spec.key, sent)
        })
        .collect();
    outbox.record(&outcomes, at).unwrap();
}
