//! The operator's daily digest: `herald preview --digest` on an outbox
//! made through the public outbox API (as the inbox's processor makes it),
//! the daemon sending it once a day at its time in rehearsals and once
//! after a restart that missed some, and `[digest]`'s bad values refused
//! at their line.

use std::path::Path;

use herald::key::{AddressKey, SendKey};
use herald::outbox::{Changes, Effect, IncomingRow, Outbox, Recorded, SendSpec, SqliteOutbox};
use jiff::{SignedDuration, Timestamp, ToSpan};
use mail_parser::{Message, MessageParser};

use crate::daemon::run_between;
use crate::harness::{ConfigDir, stderr, stdout};

/// The example configuration with its outbox in `state` and a digest to
/// two addresses at 08:00 in Geneva.
fn with_digest(state: &Path) -> ConfigDir {
    let config = ConfigDir::example();
    config.edit(
        "config/herald.toml",
        "# state_dir = \"/var/lib/herald\"",
        &format!("state_dir = {:?}", state.display().to_string()),
    );
    append(
        &config,
        "[digest]\nto = [\"ops@gcm.example.org\", \"desk@gcm.example.org\"]\nat = \"08:00\"\ntime_zone = \"Europe/Zurich\"\n",
    );
    config
}

/// Appends `text` to herald.toml; returns the number of its first line.
fn append(config: &ConfigDir, text: &str) -> usize {
    let path = config.path().join("herald.toml");
    let before = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{before}\n{text}")).unwrap();
    before.lines().count() + 2
}

fn spec(event: &str, lead: &str, to: &str, due: Timestamp) -> SendSpec {
    SendSpec {
        key: SendKey::reminder(event, lead, &AddressKey::of(to)),
        recipient: to.to_owned(),
        list: "member-states".to_owned(),
        language: "en".to_owned(),
        template: "reminder".to_owned(),
        due,
        zone: "America/New_York".to_owned(),
    }
}

fn incoming(id: &str, kind: &str, at: Timestamp) -> IncomingRow {
    IncomingRow {
        message_id: format!("{id}@mail.example.net"),
        received_at: at,
        source: "maildir".to_owned(),
        kind: kind.to_owned(),
        addresses: Vec::new(),
        permanent: None,
        status: None,
        diagnostic: None,
        send: None,
        from: None,
        subject: None,
        outcome: "recorded".to_owned(),
        needs_human: false,
    }
}

fn parse(bytes: &[u8]) -> Message<'_> {
    MessageParser::default()
        .parse(bytes)
        .expect("a parseable message")
}

/// A roadmap with a meeting three days from `today` (its 1d reminder in
/// the coming week) and one in ten days (its reminders after it).
fn roadmap_around(today: jiff::civil::Date) -> String {
    let soon = today.checked_add(3.days()).unwrap();
    let later = today.checked_add(10.days()).unwrap();
    format!(
        "id = \"near\"\ntitle = \"Near\"\nvenue = \"new-york\"\nlists = [\"member-states\"]\n\n\
         [[events]]\nid = \"soon-meeting\"\ntitle = \"The meeting three days from now\"\nkind = \"meeting\"\ndate = \"{soon}\"\nstart = \"15:00\"\nleads = [\"1d\"]\n\n\
         [[events]]\nid = \"later-meeting\"\ntitle = \"The meeting ten days from now\"\nkind = \"meeting\"\ndate = \"{later}\"\nstart = \"15:00\"\nleads = [\"1d\"]\n"
    )
}

#[test]
fn preview_names_every_failure_bounce_unsubscribe_waiting_message_and_the_week_ahead() {
    let state = tempfile::tempdir().unwrap();
    let config = with_digest(state.path());
    // `preview` reads the real clock: the outbox and the roadmap are made
    // around it.
    let now = Timestamp::now();
    config.write(
        "roadmaps/near.toml",
        &roadmap_around(now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date()),
    );
    let ago = |minutes: i64| now.checked_sub(SignedDuration::from_mins(minutes)).unwrap();
    let outbox = SqliteOutbox::open(state.path()).unwrap();
    let sent = spec(
        "soon-meeting",
        "7d",
        "k.watanabe@japan-mission.example.org",
        ago(120),
    );
    let refused = spec("soon-meeting", "7d", "old.desk@mission.example.org", ago(120));
    let bounced = spec(
        "soon-meeting",
        "1d",
        "gone.away@mission.example.org",
        now.checked_add(SignedDuration::from_hours(48)).unwrap(),
    );
    outbox
        .apply(
            &Changes {
                insert: vec![sent.clone(), refused.clone(), bounced.clone()],
                ..Changes::default()
            },
            ago(180),
        )
        .unwrap();
    assert_eq!(outbox.claim_due(ago(100), 10).unwrap().len(), 2);
    outbox
        .record(
            &[
                (
                    sent.key.clone(),
                    Recorded::Sent {
                        reply: "250 2.0.0 Ok".to_owned(),
                        left_at: None,
                    },
                ),
                (
                    refused.key.clone(),
                    Recorded::Failed {
                        reply: Some(
                            "550 5.1.1 <old.desk@mission.example.org>: Recipient address rejected".to_owned(),
                        ),
                        reason: "the server refused it".to_owned(),
                    },
                ),
            ],
            ago(100),
        )
        .unwrap();
    // A bounce of an earlier message to gone.away: suppressed everywhere,
    // and its planned reminder with it.
    let bounce = IncomingRow {
        addresses: vec!["gone.away@mission.example.org".to_owned()],
        permanent: Some(true),
        status: Some("5.1.1".to_owned()),
        diagnostic: Some("smtp; 550 5.1.1 user unknown".to_owned()),
        send: Some(bounced.key.clone()),
        outcome: "suppressed gone.away@mission.example.org on every list".to_owned(),
        ..incoming("bounce-1", "bounce", ago(60))
    };
    outbox
        .take_incoming(
            &bounce,
            &Effect::Suppress {
                address: AddressKey::of("gone.away@mission.example.org"),
                list: None,
                reason: "a permanent bounce: 5.1.1 user unknown".to_owned(),
            },
            ago(60),
        )
        .unwrap();
    let unsubscribe = IncomingRow {
        addresses: vec!["leaving@mission.example.org".to_owned()],
        from: Some("leaving@mission.example.org".to_owned()),
        subject: Some("unsubscribe u1.member-states.abc".to_owned()),
        outcome: "suppressed leaving@mission.example.org on member-states".to_owned(),
        ..incoming("unsubscribe-1", "unsubscribe", ago(50))
    };
    outbox
        .take_incoming(
            &unsubscribe,
            &Effect::Suppress {
                address: AddressKey::of("leaving@mission.example.org"),
                list: Some("member-states".to_owned()),
                reason: "unsubscribed by mail".to_owned(),
            },
            ago(50),
        )
        .unwrap();
    let letter = IncomingRow {
        from: Some("Amina Diallo <amina.diallo@senegal-mission.example.org>".to_owned()),
        subject: Some("New focal point for Senegal & Gambia <urgent>".to_owned()),
        outcome: "kept for the operator: a letter".to_owned(),
        needs_human: true,
        ..incoming("letter-1", "other", ago(40))
    };
    outbox.take_incoming(&letter, &Effect::Nothing, ago(40)).unwrap();
    // Before the digest's period (a day): not in it.
    let old = IncomingRow {
        from: Some("Old Sender <old@example.net>".to_owned()),
        subject: Some("A letter of three days ago".to_owned()),
        needs_human: true,
        ..incoming("letter-0", "other", ago(3 * 24 * 60))
    };
    outbox
        .take_incoming(&old, &Effect::Nothing, ago(3 * 24 * 60))
        .unwrap();
    drop(outbox);

    let bytes = config.preview(&["--digest", "--to", "desk@gcm.example.org"]);
    let message = parse(&bytes);
    assert_eq!(
        message
            .from()
            .and_then(|from| from.first())
            .and_then(|a| a.address()),
        Some("secretariat@gcm.example.org")
    );
    assert_eq!(
        message.to().and_then(|to| to.first()).and_then(|a| a.address()),
        Some("desk@gcm.example.org")
    );
    assert_eq!(
        message.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-generated")
    );
    let subject = message.subject().unwrap();
    assert!(
        subject.contains("1 sent, 1 failed, 1 suppressed, 1 bounces, 1 waiting"),
        "{subject}"
    );
    let text = message.body_text(0).unwrap();
    for expected in [
        // The failed send, with the server's reply.
        "old.desk@mission.example.org",
        "550 5.1.1 <old.desk@mission.example.org>: Recipient address rejected",
        // The bounce: who, why, which send, what herald did.
        "gone.away@mission.example.org (permanent, 5.1.1)",
        "smtp; 550 5.1.1 user unknown",
        bounced.key.as_str(),
        "suppressed gone.away@mission.example.org on every list",
        // The suppressed send, with why.
        "a permanent bounce: 5.1.1 user unknown",
        // The unsubscribe.
        "UNSUBSCRIBES: 1",
        "leaving@mission.example.org",
        "suppressed leaving@mission.example.org on member-states",
        // The letter waiting for a human.
        "WAITING FOR A HUMAN: 1",
        "Amina Diallo <amina.diallo@senegal-mission.example.org>: \"New focal point for Senegal & Gambia <urgent>\"",
        // The week ahead: the 1d reminder of the meeting in three days,
        // to the nine focal points of member-states.
        "The meeting three days from now (soon-meeting), 9 recipient(s)",
        "(Europe/Zurich)",
        "(America/New_York)",
    ] {
        assert!(text.contains(expected), "{expected:?} is not in:\n{text}");
    }
    for absent in ["A letter of three days ago", "later-meeting"] {
        assert!(!text.contains(absent), "{absent:?} is in:\n{text}");
    }
    let html = message.body_html(0).unwrap();
    assert!(
        html.contains("New focal point for Senegal &amp; Gambia &lt;urgent&gt;"),
        "the HTML part escapes what it shows:\n{html}"
    );
    // The same day's digest to the same address: the same Message-ID.
    let again = config.preview(&["--digest", "--to", "desk@gcm.example.org"]);
    assert_eq!(parse(&again).message_id(), message.message_id());
    let other = config.preview(&["--digest", "--to", "ops@gcm.example.org"]);
    assert_ne!(parse(&other).message_id(), message.message_id());
}

#[test]
fn preview_refuses_an_address_the_digest_does_not_go_to_and_a_missing_digest() {
    let state = tempfile::tempdir().unwrap();
    let config = with_digest(state.path());
    let output = config.herald(&["preview", "--digest", "--to", "someone@example.org"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains(
            "someone@example.org is not in [digest] `to`; the digest goes to: ops@gcm.example.org, desk@gcm.example.org"
        ),
        "{}",
        stderr(&output)
    );
    // No outbox yet: a warning, and a digest of the plan alone.
    let output = config.herald(&["preview", "--digest", "--to", "OPS@gcm.example.org"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("warning: no outbox in"),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).contains("SENT: 0"), "{}", stdout(&output));

    let config = ConfigDir::example();
    let output = config.herald(&["preview", "--digest", "--to", "ops@gcm.example.org"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no digest is configured: add a [digest] table to"),
        "{}",
        stderr(&output)
    );
}

/// Runs the daemon in this process on a stepping clock from `from` to
/// `until` (`daemon::run_between`, with the outbox dropped).
async fn rehearse(config: &ConfigDir, state: &Path, from: &str, until: &str) {
    run_between(config, state, from, until).await;
}

/// The digests in the maildir, oldest first: (Date, Message-ID, subject, text).
fn digests_in(state: &Path) -> Vec<(String, String, String, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(state.join("maildir/new")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let message = parse(&bytes);
        let to = message.to().and_then(|to| to.first()).and_then(|a| a.address());
        if to == Some("ops@gcm.example.org") {
            found.push((
                message.date().unwrap().to_rfc3339(),
                message.message_id().unwrap().to_owned(),
                message.subject().unwrap().to_owned(),
                message.body_text(0).unwrap().into_owned(),
            ));
        }
    }
    found.sort();
    found
}

/// One address, so each digest is one message.
fn digest_to_ops() -> ConfigDir {
    let config = ConfigDir::example();
    append(
        &config,
        "[digest]\nto = [\"ops@gcm.example.org\"]\nat = \"08:00\"\ntime_zone = \"Europe/Zurich\"\n",
    );
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehearsal_over_two_days_sends_two_digests_each_at_its_time_covering_its_day() {
    let state = tempfile::tempdir().unwrap();
    let config = digest_to_ops();
    // The first reading's 1d reminders are due at 2017-10-01T19:00Z,
    // between the two digests (08:00 in Geneva is 06:00Z).
    rehearse(
        &config,
        state.path(),
        "2017-09-30T12:00:00Z",
        "2017-10-02T12:00:00Z",
    )
    .await;
    let digests = digests_in(state.path());
    assert_eq!(digests.len(), 2, "{digests:#?}");
    let (first, second) = (&digests[0], &digests[1]);
    // 08:00 in Geneva (the Date header is written in UTC).
    assert_eq!(first.0, "2017-10-01T06:00:00Z");
    assert_eq!(second.0, "2017-10-02T06:00:00Z");
    assert_ne!(first.1, second.1);
    assert!(first.2.starts_with("Digest 2017-10-01:"), "{}", first.2);
    assert!(second.2.starts_with("Digest 2017-10-02:"), "{}", second.2);
    // Each covers its own period: the first from the daemon's start, the
    // second from the first.
    assert!(
        first
            .3
            .contains("from 2017-09-30 14:00 CEST (Europe/Zurich) to 2017-10-01 08:00 CEST (Europe/Zurich)"),
        "{}",
        first.3
    );
    assert!(
        second
            .3
            .contains("from 2017-10-01 08:00 CEST (Europe/Zurich) to 2017-10-02 08:00 CEST (Europe/Zurich)"),
        "{}",
        second.3
    );
    // The reminders sent between them are in the second, counted.
    let outbox = SqliteOutbox::open(state.path()).unwrap();
    let between = |since: &str, until: &str| {
        let (since, until): (Timestamp, Timestamp) = (since.parse().unwrap(), until.parse().unwrap());
        outbox
            .settled_since(since)
            .unwrap()
            .into_iter()
            .filter(|entry| entry.state == herald::outbox::State::Sent && entry.updated_at < until)
            .count()
    };
    let sent_first = between("2017-09-30T12:00:00Z", "2017-10-01T06:00:00Z");
    let sent_second = between("2017-10-01T06:00:00Z", "2017-10-02T06:00:00Z");
    assert!(sent_second > 0);
    let has_line = |text: &str, line: String| text.lines().any(|own| own == line);
    assert!(has_line(&first.3, format!("SENT: {sent_first}")), "{}", first.3);
    assert!(
        has_line(&second.3, format!("SENT: {sent_second}")),
        "{}",
        second.3
    );
    assert!(
        second.3.contains(&format!(
            "{sent_second} × reminder 1d before 1st reading (first-reading)"
        )),
        "{}",
        second.3
    );
    assert_eq!(
        outbox.get_value("digest_until").unwrap().as_deref(),
        Some("2017-10-02T06:00:00Z")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_missed_digests_sends_one_covering_them_all() {
    let state = tempfile::tempdir().unwrap();
    let config = digest_to_ops();
    rehearse(
        &config,
        state.path(),
        "2017-09-30T12:00:00Z",
        "2017-10-01T07:00:00Z",
    )
    .await;
    assert_eq!(digests_in(state.path()).len(), 1);
    // Down for three days, through three digests' times.
    rehearse(
        &config,
        state.path(),
        "2017-10-04T09:00:00Z",
        "2017-10-04T12:00:00Z",
    )
    .await;
    let digests = digests_in(state.path());
    assert_eq!(digests.len(), 2, "{digests:#?}");
    let late = &digests[1];
    assert_eq!(late.0, "2017-10-04T09:00:00Z", "sent at the start");
    assert!(
        late.3
            .contains("from 2017-10-01 08:00 CEST (Europe/Zurich) to 2017-10-04 11:00 CEST (Europe/Zurich)"),
        "{}",
        late.3
    );
    // Restarted again the same day: nothing until tomorrow's.
    rehearse(
        &config,
        state.path(),
        "2017-10-04T13:00:00Z",
        "2017-10-05T05:59:00Z",
    )
    .await;
    assert_eq!(digests_in(state.path()).len(), 2);
}

#[test]
fn bad_digest_values_are_refused_at_their_line() {
    let config = ConfigDir::example();
    let first = append(
        &config,
        "[digest]\nto = [\"ops@gcm.example.org\", \"not an address\", \"OPS@gcm.example.org\"]\nat = \"8 o'clock\"\ntime_zone = \"Geneva\"\nlanguage = \"??\"\n",
    );
    let line = |offset: usize| first + offset;
    // Each problem's first line (the source line and a caret follow).
    let problems: Vec<String> = config
        .problems()
        .iter()
        .map(|problem| problem.lines().next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        problems,
        [
            format!(
                "ROOT/config/herald.toml:{}:30: invalid e-mail address \"not an address\"",
                line(1)
            ),
            format!(
                "ROOT/config/herald.toml:{}:48: OPS@gcm.example.org is in [digest] `to` twice; list each address once",
                line(1)
            ),
            format!(
                "ROOT/config/herald.toml:{}:6: invalid time \"8 o'clock\": write it as HH:MM, like \"15:00\"",
                line(2)
            ),
            format!(
                "ROOT/config/herald.toml:{}:13: unknown time zone \"Geneva\" (did you mean \"Europe/Zurich\"?)",
                line(3)
            ),
            format!(
                "ROOT/config/herald.toml:{}:12: invalid language \"??\": use a tag like \"en\", \"fr\" or \"es\"",
                line(4)
            ),
        ]
    );

    let config = ConfigDir::example();
    let first = append(&config, "[digest]\nto = []\n");
    let problems = config.problems();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with(&format!(
            "ROOT/config/herald.toml:{first}:1: [digest] has no address in `to`"
        )),
        "{problems:#?}"
    );
}

#[test]
fn a_broken_digest_template_is_found_by_check_not_at_eight() {
    let config = ConfigDir::example();
    config.edit(
        "templates/en/digest.txt.hbs",
        "SENT: {{sent.count}}",
        "SENT: {{sent.cuont}}",
    );
    let problems = config.problems();
    assert!(
        problems
            .iter()
            .any(|problem| problem.contains("digest.txt.hbs") && problem.contains("sent.cuont")),
        "{problems:#?}"
    );
    // Without the digest's templates and without [digest], nothing is
    // missing; with [digest], they are required.
    for part in ["subject", "txt", "html"] {
        config.remove(&format!("../templates/en/digest.{part}.hbs"));
        config.remove(&format!("../templates/fr/digest.{part}.hbs"));
    }
    assert_eq!(config.problems(), Vec::<String>::new());
    append(&config, "[digest]\nto = [\"ops@gcm.example.org\"]\n");
    let problems = config.problems();
    assert!(
        problems
            .iter()
            .any(|problem| problem.contains("the template en/digest.subject.hbs is missing")),
        "{problems:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_digest_names_a_bounce_and_the_sends_it_suppressed() {
    let state = tempfile::tempdir().unwrap();
    let config = digest_to_ops();
    // The first reading's 1d reminders go at 2017-10-01T19:00Z.
    rehearse(
        &config,
        state.path(),
        "2017-09-30T12:00:00Z",
        "2017-10-01T20:00:00Z",
    )
    .await;
    // Jean-Marc Dubois's address is gone: Postfix returns his reminder to
    // its VERP address, as the inbox's processor takes it in.
    let returned = SendKey::reminder(
        "first-reading",
        "1d",
        &AddressKey::of("jm.dubois@swiss-mission.example.org"),
    );
    let fixture = crate::harness::repo().join("tests/fixtures/inbox/postfix-dsn-user-unknown.eml");
    let bytes = std::fs::read_to_string(fixture)
        .unwrap()
        .replace("3f9a0c1d2e4b5a6978c0d1e2", &returned.token())
        .into_bytes();
    let received: Timestamp = "2017-10-01T20:30:00Z".parse().unwrap();
    let outbox = SqliteOutbox::open(state.path()).unwrap();
    let classification = herald::inbox::classify::classify(&bytes);
    let decision = herald::inbox::process::decide(
        &classification,
        herald::inbox::process::record_id(&classification, &bytes),
        "maildir",
        &outbox,
        &|_: &str| None,
        herald::inbox::process::BouncePolicy::default(),
        received,
    )
    .unwrap();
    assert_eq!(decision.row.send.as_ref(), Some(&returned));
    outbox
        .take_incoming(&decision.row, &decision.effect, received)
        .unwrap();
    drop(outbox);
    rehearse(
        &config,
        state.path(),
        "2017-10-01T20:30:00Z",
        "2017-10-02T07:00:00Z",
    )
    .await;
    let digests = digests_in(state.path());
    assert_eq!(digests.len(), 2, "{digests:#?}");
    let text = &digests[1].3;
    for expected in [
        "BOUNCES: 1",
        "jm.dubois@swiss-mission.example.org (permanent, 5.1.1), 2017-10-01 22:30 CEST (Europe/Zurich)",
        returned.as_str(),
        // His 2h reminder of the next day, not sent.
        "jm.dubois@swiss-mission.example.org: reminder 2h 1st reading",
    ] {
        assert!(text.contains(expected), "{expected:?} is not in:\n{text}");
    }
}
