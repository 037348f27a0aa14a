//! `herald state migrate`: an SQLite outbox holding everything herald keeps
//! (sends in every state and their attempts, a send still in flight, the
//! calendar, incoming messages with the suppressions and failures they
//! caused, an override, requests, saved values) is copied by the real
//! binary into a real PostgreSQL, and read back through the PostgreSQL
//! outbox: the same entries, histories, suppressions, overrides, requests
//! and calendar; the columns and tables only PostgreSQL has are empty, and
//! its sequences go on after the copied ids. A second copy into the same
//! database is refused, as are a missing source and a state directory a
//! daemon holds.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use herald::key::{AddressKey, SendKey, SendKind};
use herald::outbox::{
    CalendarRow, Changes, Effect, Export, IncomingRow, NewRequest, Outbox, Pace, PostgresOutbox, Recorded,
    SendSpec, SqliteOutbox, State,
};
use herald::state::StateLock;
use jiff::Timestamp;

use crate::harness::{herald_command, stderr, stdout};
use crate::support::postgres::Postgres;

/// Reminders of one meeting, to as many focal points.
const REMINDERS: usize = 300;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

fn address(n: usize) -> AddressKey {
    AddressKey::of(&format!("r{n:03}@example.org"))
}

fn reminder(n: usize) -> SendKey {
    SendKey::reminder("meeting", "1d", &address(n))
}

fn spec(key: SendKey, n: usize, due: i64) -> SendSpec {
    SendSpec {
        key,
        recipient: format!("R{n:03}@Example.org"),
        list: if n.is_multiple_of(2) {
            "member-states"
        } else {
            "observers"
        }
        .to_owned(),
        language: if n.is_multiple_of(3) { "fr" } else { "en" }.to_owned(),
        template: "reminder".to_owned(),
        due: at(due),
        zone: "America/New_York".to_owned(),
    }
}

fn message(id: &str, addresses: &[&AddressKey], send: Option<SendKey>) -> IncomingRow {
    IncomingRow {
        message_id: id.to_owned(),
        received_at: at(2_000),
        source: "imap:INBOX".to_owned(),
        kind: "bounce".to_owned(),
        addresses: addresses.iter().map(|a| a.as_str().to_owned()).collect(),
        permanent: Some(id.starts_with("permanent")),
        status: Some("5.1.1".to_owned()),
        diagnostic: Some("550 5.1.1 <x>: user unknown — «ça»".to_owned()),
        send,
        from: Some("MAILER-DAEMON@example.net".to_owned()),
        subject: None,
        outcome: "recorded".to_owned(),
        needs_human: false,
    }
}

/// An outbox in `dir` with a bit of everything, as a daemon that ran for
/// a while leaves it.
fn fill(dir: &Path) {
    let outbox = SqliteOutbox::open(dir).unwrap();
    let mut insert: Vec<SendSpec> = (0..REMINDERS)
        .map(|n| spec(reminder(n), n, 1_000 + n as i64))
        .collect();
    insert.push(SendSpec {
        template: "letter".to_owned(),
        ..spec(SendKey::letter("circular-7", &address(1)), 1, 1_500)
    });
    insert.push(SendSpec {
        template: "update".to_owned(),
        ..spec(
            SendKey::notice(SendKind::Update, "meeting", 1, &address(2)),
            2,
            900,
        )
    });
    let changes = Changes {
        insert,
        insert_skipped: vec![(
            spec(SendKey::reminder("meeting", "7d", &address(3)), 3, 10),
            "missed: due at 1970-01-01T00:00:10Z".to_owned(),
        )],
        calendar: vec![CalendarRow {
            event: "meeting".to_owned(),
            sequence: 2,
            signature: "2099-03-01T15:00/2099-03-01T18:00/CONFIRMED".to_owned(),
            location: Some("Conference Room 4, UN Headquarters".to_owned()),
            snapshot: "{\"title\":\"A meeting\"}".to_owned(),
            previous: Some("{\"title\":\"A meeting (moved)\"}".to_owned()),
            removed: false,
            notices: 1,
            held_until: Some(at(5_000)),
            told: Some("{\"sequence\":1}".to_owned()),
        }],
        planned_until: Some(at(90_000)),
        ..Changes::default()
    };
    outbox.apply(&changes, at(100)).unwrap();
    outbox
        .set_pace(&[Pace {
            key: reminder(100),
            release_at: Some(at(1_050)),
            urgent_by: Some(at(1_200)),
        }])
        .unwrap();

    // The notice (due 900) and the first reminders (due 1000…) go: one
    // sent, one retried, one failed at the relay, one skipped, one too
    // late, one sent later, and one still in flight.
    let claimed = outbox.claim_due(at(1_006), 8).unwrap();
    assert_eq!(claimed.len(), 8);
    let notice = SendKey::notice(SendKind::Update, "meeting", 1, &address(2));
    let sent = |reply: &str| Recorded::Sent {
        reply: reply.to_owned(),
        left_at: None,
    };
    let outcomes = vec![
        (notice, sent("250 2.0.0 Ok: queued as 1")),
        (reminder(0), sent("250 2.0.0 Ok: queued as 2")),
        (
            reminder(1),
            Recorded::Retry {
                reply: "451 4.7.1 try again later".to_owned(),
                retry_at: at(1_600),
                attempted: true,
            },
        ),
        (
            reminder(2),
            Recorded::Failed {
                reply: Some("550 5.1.1 user unknown".to_owned()),
                reason: "the relay refused it".to_owned(),
            },
        ),
        (
            reminder(3),
            Recorded::Skipped {
                reason: "not rendered: the template failed".to_owned(),
            },
        ),
        (
            reminder(4),
            Recorded::TooLate {
                reason: "due at 1970-01-01T00:16:44Z but planned only at …".to_owned(),
            },
        ),
        (reminder(5), sent("250 ok")),
    ];
    assert_eq!(outbox.record(&outcomes, at(1_010)).unwrap(), outcomes.len());
    // reminder(6) stays in flight.

    // A permanent bounce about reminder(0)'s address suppresses it on
    // every list; temporary failures of another are counted; a reader
    // unsubscribes from one list on the web.
    outbox
        .take_incoming(
            &message("permanent-1@example.net", &[&address(10)], Some(reminder(10))),
            &Effect::Suppress {
                address: address(10),
                list: None,
                reason: "a permanent bounce: 5.1.1".to_owned(),
            },
            at(2_000),
        )
        .unwrap();
    outbox
        .take_incoming(
            &message("temporary-1@example.net", &[&address(11)], None),
            &Effect::CountFailure {
                address: address(11),
                threshold: 3,
                since: at(0),
                reason: "three temporary failures".to_owned(),
            },
            at(2_100),
        )
        .unwrap();
    assert!(
        outbox
            .suppress(
                &address(12),
                "member-states",
                "unsubscribed on the web",
                at(2_200)
            )
            .unwrap()
    );

    // A reader's own language and zone, and two requests, one settled.
    outbox
        .set_override(&herald::outbox::Override {
            address: address(13),
            language: Some("es".to_owned()),
            zone: Some("Asia/Tokyo".to_owned()),
            since: at(2_300),
        })
        .unwrap();
    let first = outbox
        .add_request(
            &NewRequest {
                from: address(14),
                list: Some("member-states".to_owned()),
                successor_name: "Amina Diallo".to_owned(),
                successor_email: "amina.diallo@example.org".to_owned(),
            },
            at(2_400),
        )
        .unwrap();
    outbox
        .add_request(
            &NewRequest {
                from: address(15),
                list: None,
                successor_name: "Jörg Müller".to_owned(),
                successor_email: "joerg.mueller@example.org".to_owned(),
            },
            at(2_500),
        )
        .unwrap();
    assert!(outbox.settle_request(first.id, at(2_600)).unwrap());
    outbox.set_value("digest_sent", "2099-02-27").unwrap();
}

/// `herald state migrate --from sqlite:FROM --to URL` with the password
/// in a file.
fn migrate(from: &str, to: &str, password_file: &Path) -> Output {
    herald_command(Path::new("/nonexistent/herald"))
        .args(["state", "migrate", "--from", from, "--to", to, "--password-file"])
        .arg(password_file)
        .output()
        .expect("run herald")
}

/// The count in the progress line of `table`.
fn copied(out: &str, table: &str) -> String {
    let line = out
        .lines()
        .find(|line| line.starts_with(&format!("{table}: ")))
        .unwrap_or_else(|| panic!("no line for {table}:\n{out}"));
    line.strip_prefix(&format!("{table}: "))
        .unwrap()
        .strip_suffix(" copied")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned()
}

fn rows(export: &Export, table: &str) -> usize {
    export.table(table).unwrap().rows.len()
}

#[test]
fn an_sqlite_outbox_is_copied_whole_into_postgres_and_a_second_copy_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    fill(&state);
    let source = SqliteOutbox::open(&state).unwrap();
    let exported = source.export().unwrap();
    let postgres = Postgres::start();
    let password_file = dir.path().join("database-password");
    std::fs::write(&password_file, format!("{}\n", postgres.password())).unwrap();

    let output = migrate(
        &format!("sqlite:{}", state.display()),
        &postgres.url(),
        &password_file,
    );
    let out = stdout(&output);
    assert!(output.status.success(), "{}\n{out}", stderr(&output));

    // Every table, with its count, and a last line that says what next.
    let names: Vec<&str> = exported.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "sends",
            "attempts",
            "kv",
            "calendar",
            "incoming",
            "suppressions",
            "failures",
            "overrides",
            "requests"
        ]
    );
    let sends = REMINDERS + 3;
    assert_eq!(rows(&exported, "sends"), sends);
    assert_eq!(copied(&out, "sends"), format!("{sends} rows"));
    assert_eq!(copied(&out, "calendar"), "1 row");
    assert_eq!(copied(&out, "requests"), "2 rows");
    assert_eq!(copied(&out, "overrides"), "1 row");
    assert_eq!(copied(&out, "failures"), "1 row");
    assert_eq!(copied(&out, "suppressions"), "2 rows");
    // The two messages taken in, and the unsubscribe on the web.
    assert_eq!(copied(&out, "incoming"), "3 rows");
    for table in &exported.tables {
        let n = table.rows.len();
        let expected = format!("{n} row{}", if n == 1 { "" } else { "s" });
        assert_eq!(copied(&out, &table.name), expected, "{out}");
    }
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with(&format!("herald: migrated {} rows in 9 tables", exported.rows())),
        "{last}"
    );
    assert!(
        last.contains(&postgres.url()) && last.contains("[state]"),
        "{last}"
    );

    // Read back through the PostgreSQL outbox: the same outbox.
    let copy = PostgresOutbox::open(&postgres.settings("check", Duration::from_secs(600))).unwrap();
    let entries = source.entries().unwrap();
    assert_eq!(entries.len(), sends);
    assert_eq!(copy.entries().unwrap(), entries);
    for state in [
        State::Sent,
        State::Failed,
        State::Skipped,
        State::Suppressed,
        State::Sending,
    ] {
        assert!(
            entries.iter().any(|e| e.state == state),
            "the source has a send {state}"
        );
    }
    assert_eq!(copy.counts().unwrap(), source.counts().unwrap());
    for entry in &entries {
        let key = entry.spec.key.as_str();
        assert_eq!(
            copy.attempts(key).unwrap(),
            source.attempts(key).unwrap(),
            "{key}"
        );
    }
    assert_eq!(copy.next_due().unwrap(), source.next_due().unwrap());
    assert_eq!(copy.planned_until().unwrap(), Some(at(90_000)));
    assert_eq!(
        copy.get_value("digest_sent").unwrap().as_deref(),
        Some("2099-02-27")
    );
    assert_eq!(copy.calendar_rows().unwrap(), source.calendar_rows().unwrap());
    assert_eq!(
        copy.incoming_since(at(0)).unwrap(),
        source.incoming_since(at(0)).unwrap()
    );
    assert!(copy.incoming_seen("permanent-1@example.net").unwrap());
    let suppressions = source.suppressions().unwrap();
    assert_eq!(suppressions.len(), 2);
    assert_eq!(copy.suppressions().unwrap(), suppressions);
    assert_eq!(copy.overrides().unwrap(), source.overrides().unwrap());
    assert_eq!(
        copy.override_of(&address(13)).unwrap().unwrap().zone.as_deref(),
        Some("Asia/Tokyo")
    );
    let requests = source.requests(false).unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(copy.requests(false).unwrap(), requests);
    assert_eq!(copy.requests(true).unwrap(), source.requests(true).unwrap());
    assert!(copy.has_sent_to(&address(0)).unwrap());
    assert_eq!(
        copy.entry_by_token(&reminder(7).token()).unwrap(),
        source.entry_by_token(&reminder(7).token()).unwrap()
    );
    // Row by row, every column.
    assert_eq!(copy.export().unwrap(), exported);

    // What only PostgreSQL has is empty; attempts are numbered in order,
    // and the sequences go on after the copied ids.
    assert_eq!(
        postgres.psql(
            "SELECT (SELECT count(*) FROM sends WHERE lease_until IS NOT NULL) || ',' || \
             (SELECT count(*) FROM attempts WHERE node IS NOT NULL) || ',' || \
             (SELECT count(*) FROM planner) || ',' || (SELECT count(*) FROM relay_turns)"
        ),
        "0,0,0,0"
    );
    let attempts = rows(&exported, "attempts");
    assert_eq!(
        postgres.psql("SELECT min(id) || ',' || max(id) || ',' || count(*) FROM attempts"),
        format!("1,{attempts},{attempts}")
    );
    assert_eq!(
        postgres.psql("SELECT nextval(pg_get_serial_sequence('attempts', 'id'))"),
        (attempts + 1).to_string()
    );
    let asked = copy
        .add_request(
            &NewRequest {
                from: address(20),
                list: None,
                successor_name: "Li Wei".to_owned(),
                successor_email: "li.wei@example.org".to_owned(),
            },
            at(3_000),
        )
        .unwrap();
    let last_id = requests.iter().map(|r| r.id).max().unwrap();
    assert!(asked.new);
    assert_eq!(asked.id, last_id + 1);

    // A second copy into the same database is refused, and changes
    // nothing; the password comes from the environment this time.
    let again = herald_command(Path::new("/nonexistent/herald"))
        .args(["state", "migrate", "--from"])
        .arg(format!("sqlite:{}", state.join(SqliteOutbox::FILE).display()))
        .args(["--to", &postgres.url()])
        .env("HERALD_DATABASE_PASSWORD_FILE", &password_file)
        .output()
        .expect("run herald");
    let err = stderr(&again);
    assert!(!again.status.success(), "{err}");
    assert!(err.contains("already holds herald state"), "{err}");
    assert!(err.contains("empty database"), "{err}");
    assert!(!stdout(&again).contains("copied"), "{}", stdout(&again));
    assert_eq!(copy.requests(false).unwrap().len(), requests.len() + 1);
    assert_eq!(copy.entries().unwrap(), entries);
}

#[test]
fn a_missing_source_is_refused_before_anything_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "x\n").unwrap();
    // Nothing listens there: the command must not get that far.
    let url = format!(
        "postgres://herald@127.0.0.1:{}/herald",
        crate::support::free_port()
    );

    let missing = dir.path().join("nowhere");
    let output = migrate(&format!("sqlite:{}", missing.display()), &url, &password_file);
    let err = stderr(&output);
    assert!(!output.status.success(), "{err}");
    assert!(
        err.contains("does not exist") && err.contains("state directory"),
        "{err}"
    );
    assert!(!missing.exists(), "the command made {}", missing.display());

    // A directory herald never ran with: no outbox is made in it.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let output = migrate(&format!("sqlite:{}", empty.display()), &url, &password_file);
    let err = stderr(&output);
    assert!(!output.status.success(), "{err}");
    assert!(err.contains("there is no outbox"), "{err}");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);

    // Not an SQLite source at all.
    let output = migrate(empty.to_str().unwrap(), &url, &password_file);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--from sqlite:PATH"),
        "{}",
        stderr(&output)
    );

    // A password in the URL.
    let output = migrate(
        &format!("sqlite:{}", empty.display()),
        "postgres://herald:secret@127.0.0.1:5432/herald",
        &password_file,
    );
    assert!(!output.status.success());
}

#[test]
fn a_daemon_on_the_state_directory_makes_it_refuse_and_say_who() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    fill(&state);
    let before = SqliteOutbox::open(&state).unwrap().export().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "x\n").unwrap();
    let url = format!(
        "postgres://herald@127.0.0.1:{}/herald",
        crate::support::free_port()
    );

    // This process holds the lock as a running daemon would.
    let lock = StateLock::acquire(&state).unwrap();
    let output = migrate(&format!("sqlite:{}", state.display()), &url, &password_file);
    let err = stderr(&output);
    assert!(!output.status.success(), "{err}");
    assert!(
        err.contains(&format!("a herald daemon (pid {})", std::process::id())),
        "{err}"
    );
    assert!(err.contains("stop it first"), "{err}");
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    drop(lock);
    assert_eq!(SqliteOutbox::open(&state).unwrap().export().unwrap(), before);
}
