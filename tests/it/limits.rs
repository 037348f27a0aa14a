//! The relay's limits foreseen by `herald check` and `herald plan`: the
//! days and hours over `per_day` and `per_hour`, the slots that would leave
//! late and by how much, and those that start early to leave on time.
//!
//! The plan is [`FUTURE_ROADMAP`]'s meeting (2099-03-01, 15:00 New York):
//! 9 focal points, reminders 1d, 2h and 30m before, due at
//! 2099-02-28 20:00, 2099-03-01 18:00 and 19:30 UTC. It is in the future
//! whatever the day the tests run, so `check` (which foresees from now)
//! sees all 27 sends.

use serde_json::Value;

use crate::harness::{ConfigDir, FUTURE_ROADMAP, stderr, stdout};

/// The example configuration with the future meeting, delivering over SMTP
/// with `limits` (lines of `[delivery.smtp]`).
fn limited(limits: &str) -> ConfigDir {
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
        out.contains("  warning: 1 day (UTC) holds more sends than per_day = 15:\n    2099-03-01: 18 sends\n"),
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
    assert!(!out.contains("warning"), "{out}");
    assert!(
        out.contains("  the plan keeps within them: no hour or day over, no send late\n"),
        "{out}"
    );
    assert!(
        out.contains("  note: 3 slots start early so that their last message leaves on time, at most 1m 20s early"),
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
