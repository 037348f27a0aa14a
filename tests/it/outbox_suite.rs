//! The outbox's behaviour, whatever stores it: every test here runs on the
//! SQLite outbox (a file in a temporary state directory) and on the
//! PostgreSQL one (a server of its own, [`Postgres`]), through the
//! [`Outbox`] trait alone, as `outbox_suite::sqlite::NAME` and
//! `outbox_suite::postgres::NAME`.
//!
//! A send goes planned → sending → sent (or back to planned, or failed,
//! skipped, cancelled, suppressed) the same way on both; incoming messages
//! suppress and lift the same; readers' overrides and requests are kept
//! the same, across a reopen too. What only one store has is tested where
//! it is: the SQLite file's modes and migrations in `src/outbox/sqlite*`,
//! the nodes sharing a PostgreSQL database in `outbox_nodes`.
//!
//! On PostgreSQL the outbox is opened as a command opens it
//! (`PostgresOutbox::open`), as `SqliteOutbox::open` is: its claims are
//! made in this process's name, with a lease long enough that none expires
//! during a test.

use std::ops::Deref;
use std::time::Duration;

use herald::key::{AddressKey, KeyPrefix, SendKey, SendKind};
use herald::outbox::{
    Asked, Changes, Claimant, Effect, IncomingRow, NewRequest, Outbox, Override, Pace, PostgresOutbox,
    Recorded, SendSpec, SqliteOutbox, State, Taken,
};
use jiff::Timestamp;
use tempfile::TempDir;

use crate::support::postgres::Postgres;

/// Where the outbox under test is stored; each test gets a new one.
enum Backend {
    /// A state directory.
    Sqlite(TempDir),
    /// A database on a server of its own.
    Postgres(Postgres),
}

impl Backend {
    fn sqlite() -> Backend {
        Backend::Sqlite(tempfile::tempdir().unwrap())
    }

    fn postgres() -> Backend {
        Backend::Postgres(Postgres::start())
    }

    /// Opens the outbox, as a command does; again after the last one was
    /// dropped, this is a reopen of the same store.
    fn open(&self) -> Opened {
        match self {
            Backend::Sqlite(dir) => Opened::Sqlite(SqliteOutbox::open(dir.path()).unwrap()),
            Backend::Postgres(postgres) => Opened::Postgres(Box::new(
                PostgresOutbox::open(&postgres.settings("test", Duration::from_secs(600))).unwrap(),
            )),
        }
    }
}

/// An open outbox: an [`Outbox`], and what both stores have besides.
enum Opened {
    Sqlite(SqliteOutbox),
    Postgres(Box<PostgresOutbox>),
}

impl Deref for Opened {
    type Target = dyn Outbox;

    fn deref(&self) -> &(dyn Outbox + 'static) {
        match self {
            Opened::Sqlite(outbox) => outbox,
            Opened::Postgres(outbox) => outbox.as_ref(),
        }
    }
}

impl Opened {
    /// The history of one send, oldest first: (at, outcome, reply).
    fn attempts(&self, key: &SendKey) -> Vec<(Timestamp, String, Option<String>)> {
        match self {
            Opened::Sqlite(outbox) => outbox.attempts(key.as_str()),
            Opened::Postgres(outbox) => outbox.attempts(key.as_str()),
        }
        .unwrap()
    }

    /// In whose name its claims are made.
    fn claimant(&self) -> Claimant {
        match self {
            // What `SqliteOutbox::open` claims as.
            Opened::Sqlite(_) => Claimant::this_command(),
            Opened::Postgres(outbox) => outbox.claimant().clone(),
        }
    }
}

/// Each test function, as `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&super::Backend::sqlite());
                }
            )+
        }

        mod postgres {
            $(
                #[test]
                fn $name() {
                    super::$name(&super::Backend::postgres());
                }
            )+
        }
    };
}

on_both_backends!(
    // Sends: claims, outcomes, reconciles.
    a_send_goes_planned_sending_sent_once,
    sends_in_flight_survive_a_reopen_and_are_released,
    an_unclaimed_send_is_planned_again_as_it_was,
    retries_wait_and_failures_can_be_retried,
    reschedule_cancel_and_revive,
    an_outcome_is_recorded_only_on_a_send_in_flight,
    only_sends_skipped_as_too_late_and_due_again_are_revived,
    entries_under_a_prefix_are_those_of_its_slot_only,
    a_released_send_goes_early_and_the_most_urgent_is_claimed_first,
    the_relay_s_departures_are_the_attempts_that_reached_it,
    values_persist,
    // Incoming messages and suppressions.
    a_send_is_found_by_its_token,
    a_permanent_bounce_suppresses_every_planned_send_to_the_address_once,
    an_unsubscribe_suppresses_one_list_only_and_lifting_plans_the_sends_to_come_again,
    a_reader_s_unsubscribe_suppresses_one_list_once_and_lifting_it_plans_that_list_again,
    a_suppression_of_every_list_covers_an_unsubscribe_and_outlives_a_list_lifted,
    temporary_failures_suppress_at_the_threshold_within_the_period,
    only_an_address_herald_handed_to_the_relay_was_sent_to,
    // Readers' overrides and requests.
    an_override_is_kept_replaced_and_removed_across_reopens,
    removing_overrides_counts_those_there_were,
    the_same_open_request_is_not_recorded_twice,
    a_settled_request_leaves_the_open_ones_and_may_be_asked_again,
);

pub(crate) fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

/// The key of a reminder of event "e" to `name`@example.org.
pub(crate) fn key(name: &str) -> SendKey {
    SendKey::reminder("e", "1d", &AddressKey::of(&format!("{name}@example.org")))
}

pub(crate) fn spec(name: &str, due: i64) -> SendSpec {
    SendSpec {
        key: key(name),
        recipient: format!("{name}@example.org"),
        list: "l".to_owned(),
        language: "en".to_owned(),
        template: "reminder".to_owned(),
        due: at(due),
        zone: "UTC".to_owned(),
    }
}

/// Plans `specs` in a fresh outbox, as a first reconcile would.
pub(crate) fn plan(outbox: &dyn Outbox, specs: Vec<SendSpec>) {
    let changes = Changes {
        insert: specs,
        ..Changes::default()
    };
    outbox.apply(&changes, at(0)).unwrap();
}

pub(crate) fn sent() -> Recorded {
    Recorded::Sent {
        reply: "250 ok".to_owned(),
        left_at: None,
    }
}

fn a_send_goes_planned_sending_sent_once(backend: &Backend) {
    let outbox = backend.open();
    plan(&*outbox, vec![spec("a", 100), spec("b", 200)]);
    assert_eq!(outbox.next_due().unwrap(), Some(at(100)));
    assert!(outbox.claim_due(at(99), 10).unwrap().is_empty());
    let claimed = outbox.claim_due(at(150), 10).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].state, claimed[0].attempts), (State::Sending, 1));
    // A second claim does not see it again.
    assert!(outbox.claim_due(at(150), 10).unwrap().is_empty());
    outbox.record(&[(key("a"), sent())], at(151)).unwrap();
    let counts = outbox.counts().unwrap();
    assert_eq!((counts.sent, counts.planned), (1, 1));
    assert_eq!(outbox.attempts(&key("a")).len(), 1);
}

fn sends_in_flight_survive_a_reopen_and_are_released(backend: &Backend) {
    {
        let outbox = backend.open();
        plan(&*outbox, vec![spec("a", 100)]);
        assert_eq!(outbox.claim_due(at(100), 10).unwrap().len(), 1);
    }
    let outbox = backend.open();
    assert_eq!(outbox.counts().unwrap().sending, 1);
    assert_eq!(outbox.claimants_in_flight().unwrap(), vec![outbox.claimant()]);
    assert_eq!(
        outbox
            .release_claims(&[Claimant::daemon()], "not ours", at(200))
            .unwrap(),
        0
    );
    assert_eq!(
        outbox
            .release_claims(&[outbox.claimant()], "restarted", at(200))
            .unwrap(),
        1
    );
    assert_eq!(outbox.claim_due(at(200), 10).unwrap()[0].attempts, 2);
}

fn an_unclaimed_send_is_planned_again_as_it_was(backend: &Backend) {
    let outbox = backend.open();
    plan(&*outbox, vec![spec("a", 100), spec("b", 100)]);
    assert_eq!(outbox.claim_due(at(100), 10).unwrap().len(), 2);
    outbox.record(&[(key("b"), sent())], at(101)).unwrap();
    // Only a send still claimed goes back.
    assert_eq!(outbox.unclaim(&[key("a"), key("b")], at(102)).unwrap(), 1);
    let a = outbox.entries_for(&[&key("a")]).unwrap().remove(0);
    assert_eq!((a.state, a.attempts, a.next_attempt), (State::Planned, 0, None));
    assert!(outbox.attempts(&key("a")).is_empty());
    assert_eq!(outbox.claim_due(at(102), 10).unwrap()[0].attempts, 1);
}

fn retries_wait_and_failures_can_be_retried(backend: &Backend) {
    let outbox = backend.open();
    plan(&*outbox, vec![spec("a", 100)]);
    outbox.claim_due(at(100), 1).unwrap();
    let retry = Recorded::Retry {
        reply: "451 later".to_owned(),
        retry_at: at(400),
        attempted: true,
    };
    outbox.record(&[(key("a"), retry)], at(100)).unwrap();
    assert!(outbox.claim_due(at(399), 1).unwrap().is_empty());
    assert_eq!(outbox.next_due().unwrap(), Some(at(400)));
    outbox.claim_due(at(400), 1).unwrap();
    let failed = Recorded::Failed {
        reply: Some("554 no".to_owned()),
        reason: "rejected".to_owned(),
    };
    outbox.record(&[(key("a"), failed)], at(400)).unwrap();
    let entry = &outbox.entries().unwrap()[0];
    assert_eq!(
        (entry.state, entry.last_reply.as_deref()),
        (State::Failed, Some("554 no"))
    );
    assert_eq!(outbox.retry_failed(None, at(500)).unwrap(), 1);
    assert_eq!(outbox.claim_due(at(500), 1).unwrap()[0].attempts, 1);
}

fn reschedule_cancel_and_revive(backend: &Backend) {
    let outbox = backend.open();
    plan(&*outbox, vec![spec("a", 100), spec("b", 100)]);
    let changes = Changes {
        reschedule: vec![spec("a", 300)],
        cancel: vec![(key("b"), "removed".to_owned())],
        ..Changes::default()
    };
    outbox.apply(&changes, at(1)).unwrap();
    let entries = outbox.entries().unwrap();
    let a = entries.iter().find(|e| e.spec.key == key("a")).unwrap();
    let b = entries.iter().find(|e| e.spec.key == key("b")).unwrap();
    assert_eq!((a.spec.due, a.revision, a.state), (at(300), 2, State::Planned));
    assert_eq!(
        (b.state, b.reason.as_deref()),
        (State::Cancelled, Some("removed"))
    );
    outbox
        .apply(
            &Changes {
                revive: vec![spec("b", 500)],
                ..Changes::default()
            },
            at(2),
        )
        .unwrap();
    assert_eq!(outbox.counts().unwrap().planned, 2);
}

fn an_outcome_is_recorded_only_on_a_send_in_flight(backend: &Backend) {
    let outbox = backend.open();
    plan(&*outbox, vec![spec("a", 100), spec("b", 100)]);
    assert_eq!(outbox.claim_due(at(100), 1).unwrap().len(), 1);
    let outcome = |name: &str| (key(name), sent());
    // "b" was never claimed: its row stays planned, with no attempt.
    assert_eq!(outbox.record(&[outcome("a"), outcome("b")], at(101)).unwrap(), 1);
    let counts = outbox.counts().unwrap();
    assert_eq!((counts.sent, counts.planned), (1, 1));
    assert!(outbox.attempts(&key("b")).is_empty());
    // Recorded twice (kept, then recorded again): the second is ignored.
    assert_eq!(outbox.record(&[outcome("a")], at(102)).unwrap(), 0);
    assert_eq!(outbox.attempts(&key("a")).len(), 1);
}

fn only_sends_skipped_as_too_late_and_due_again_are_revived(backend: &Backend) {
    let outbox = backend.open();
    plan(
        &*outbox,
        vec![spec("late", 100), spec("gone", 100), spec("old", 10)],
    );
    assert_eq!(outbox.claim_due(at(100), 10).unwrap().len(), 3);
    let too_late = Recorded::TooLate {
        reason: "missed".to_owned(),
    };
    let skipped = Recorded::Skipped {
        reason: "the event was cancelled".to_owned(),
    };
    outbox
        .record(
            &[
                (key("late"), too_late.clone()),
                (key("gone"), skipped),
                (key("old"), too_late),
            ],
            at(100_000),
        )
        .unwrap();
    // The clock comes back to 150: "late" (due at 100) is within a
    // window reaching back to 50; "old" (due at 10) is not, and "gone"
    // was skipped for another reason.
    assert_eq!(outbox.revive_too_late(at(50), at(150)).unwrap(), 1);
    let entries = outbox.entries().unwrap();
    let state = |name: &str| entries.iter().find(|e| e.spec.key == key(name)).unwrap().state;
    assert_eq!(
        (state("late"), state("gone"), state("old")),
        (State::Planned, State::Skipped, State::Skipped)
    );
    assert_eq!(outbox.revive_too_late(at(50), at(150)).unwrap(), 0);
    // Revived by a reconcile (its event moved later): planned at its
    // new instant, no longer marked too late, and the history says why.
    // "gone" is not revived this way.
    let changes = Changes {
        revive: vec![spec("old", 500), spec("gone", 500)],
        ..Changes::default()
    };
    outbox.apply(&changes, at(160)).unwrap();
    let entries = outbox.entries().unwrap();
    let old = entries.iter().find(|e| e.spec.key == key("old")).unwrap();
    assert_eq!(
        (old.state, old.spec.due, old.too_late, old.revision),
        (State::Planned, at(500), false, 2)
    );
    let gone = entries.iter().find(|e| e.spec.key == key("gone")).unwrap();
    assert_eq!((gone.state, gone.spec.due), (State::Skipped, at(100)));
    let attempts = outbox.attempts(&key("old"));
    assert_eq!(
        attempts
            .last()
            .map(|(_, outcome, reply)| (outcome.as_str(), reply.as_deref())),
        Some((
            "revived",
            Some("its date changed: now due at 1970-01-01T00:08:20Z, no longer too late")
        ))
    );
}

fn entries_under_a_prefix_are_those_of_its_slot_only(backend: &Backend) {
    let outbox = backend.open();
    let other = |event: &str, lead: &str| SendSpec {
        key: SendKey::reminder(event, lead, &AddressKey::of("a@example.org")),
        ..spec("a", 100)
    };
    // Keys sorting just around the slot's: a longer lead, a longer
    // event id, the next event id.
    plan(
        &*outbox,
        vec![
            spec("a", 100),
            spec("b", 100),
            other("e", "1d0"),
            other("e", "10d"),
            other("e0", "1d"),
            other("e-2", "1d"),
            other("d", "1d"),
        ],
    );
    let keys: Vec<SendKey> = outbox
        .entries_under(&KeyPrefix::reminder("e", "1d"))
        .unwrap()
        .into_iter()
        .map(|e| e.spec.key)
        .collect();
    assert_eq!(keys, [key("a"), key("b")]);
}

fn a_released_send_goes_early_and_the_most_urgent_is_claimed_first(backend: &Backend) {
    let outbox = backend.open();
    let mut cancellation = spec("c", 100);
    cancellation.key = SendKey::notice(SendKind::Cancellation, "e", 1, &AddressKey::of("c@example.org"));
    plan(
        &*outbox,
        vec![spec("a", 100), spec("b", 100), cancellation.clone()],
    );
    let pace = |name: &str, release: i64, by: i64| Pace {
        key: key(name),
        release_at: Some(at(release)),
        urgent_by: Some(at(by)),
    };
    // "b"'s event starts sooner than "a"'s; both may leave from 60.
    outbox
        .set_pace(&[pace("a", 60, 500), pace("b", 60, 300)])
        .unwrap();
    assert_eq!(outbox.next_due().unwrap(), Some(at(60)));
    let claimed = outbox.claim_most_urgent(at(60), 1).unwrap();
    assert_eq!(claimed[0].spec.key, key("b"));
    // At its due instant the cancellation goes before the reminder left.
    let claimed = outbox.claim_most_urgent(at(100), 10).unwrap();
    let keys: Vec<&SendKey> = claimed.iter().map(|e| &e.spec.key).collect();
    assert_eq!(keys, [&cancellation.key, &key("a")]);
}

fn the_relay_s_departures_are_the_attempts_that_reached_it(backend: &Backend) {
    let outbox = backend.open();
    plan(
        &*outbox,
        ["sent", "refused", "unsent", "paused", "old"]
            .map(|name| spec(name, 10))
            .to_vec(),
    );
    let claimed = outbox.claim_due(at(10), 10).unwrap();
    assert_eq!(claimed.len(), 5);
    let outcomes = [
        (
            "old",
            Recorded::Sent {
                reply: "250".into(),
                left_at: None,
            },
            20,
        ),
        (
            "sent",
            Recorded::Sent {
                reply: "250".into(),
                left_at: None,
            },
            100,
        ),
        (
            "refused",
            Recorded::Failed {
                reply: Some("550 no".into()),
                reason: "rejected".into(),
            },
            101,
        ),
        (
            "unsent",
            Recorded::Retry {
                reply: "not sent: herald was stopping".into(),
                retry_at: at(200),
                attempted: false,
            },
            102,
        ),
        (
            "paused",
            Recorded::Paused {
                reply: "no STARTTLS".into(),
                retry_at: at(300),
            },
            103,
        ),
    ];
    for (name, outcome, when) in outcomes {
        outbox.record(&[(key(name), outcome)], at(when)).unwrap();
    }
    assert_eq!(outbox.departures_since(at(50)).unwrap(), [at(100), at(101)]);
}

fn values_persist(backend: &Backend) {
    backend.open().set_value("rate", "1.5@10").unwrap();
    assert_eq!(
        backend.open().get_value("rate").unwrap().as_deref(),
        Some("1.5@10")
    );
}

// Incoming messages and suppressions.

/// A reminder to `name`@example.org on `list`, of an event of its own.
fn spec_on(name: &str, list: &str, lead: &str, due: i64) -> SendSpec {
    let address = format!("{name}@example.org");
    SendSpec {
        key: SendKey::reminder(&format!("event-{list}"), lead, &AddressKey::of(&address)),
        recipient: address,
        list: list.to_owned(),
        language: "en".to_owned(),
        template: "reminder".to_owned(),
        due: at(due),
        zone: "UTC".to_owned(),
    }
}

fn message(id: &str, kind: &str) -> IncomingRow {
    IncomingRow {
        message_id: id.to_owned(),
        received_at: at(50),
        source: "maildir".to_owned(),
        kind: kind.to_owned(),
        addresses: vec!["a@example.org".to_owned()],
        permanent: Some(true),
        status: Some("5.1.1".to_owned()),
        diagnostic: Some("550 5.1.1 no such user".to_owned()),
        send: None,
        from: Some("mailer-daemon@example.net".to_owned()),
        subject: Some("Undelivered Mail Returned to Sender".to_owned()),
        outcome: "test".to_owned(),
        needs_human: false,
    }
}

/// The outbox, with `specs` planned.
fn outbox_with(backend: &Backend, specs: Vec<SendSpec>) -> Opened {
    let outbox = backend.open();
    plan(&*outbox, specs);
    outbox
}

fn states(outbox: &dyn Outbox) -> Vec<(String, State)> {
    let mut states: Vec<_> = outbox
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| (e.spec.key.to_string(), e.state))
        .collect();
    states.sort_by(|a, b| a.0.cmp(&b.0));
    states
}

fn a_send_is_found_by_its_token(backend: &Backend) {
    let outbox = outbox_with(
        backend,
        vec![spec_on("a", "l", "1d", 100), spec_on("b", "l", "1d", 100)],
    );
    let key = spec_on("b", "l", "1d", 100).key;
    let found = outbox.entry_by_token(&key.token()).unwrap().unwrap();
    assert_eq!(found.spec.key, key);
    assert_eq!(outbox.entry_by_token("0123456789abcdef01234567").unwrap(), None);
}

fn a_permanent_bounce_suppresses_every_planned_send_to_the_address_once(backend: &Backend) {
    let outbox = outbox_with(
        backend,
        vec![
            spec_on("a", "l", "1d", 100),
            spec_on("a", "m", "7d", 200),
            spec_on("b", "l", "1d", 100),
        ],
    );
    let address = AddressKey::of("A@example.org");
    let effect = Effect::Suppress {
        address: address.clone(),
        list: None,
        reason: "a permanent bounce: 5.1.1".to_owned(),
    };
    let taken = outbox
        .take_incoming(&message("m1", "bounce"), &effect, at(60))
        .unwrap();
    let Taken::Recorded {
        suppressed, sends, ..
    } = taken
    else {
        panic!("{taken:?}")
    };
    assert_eq!(sends, 2);
    assert_eq!(suppressed.unwrap().address, address);
    let entries = outbox.entries().unwrap();
    let a: Vec<_> = entries
        .iter()
        .filter(|e| e.spec.recipient.starts_with("a@"))
        .collect();
    assert!(a.iter().all(|e| e.state == State::Suppressed), "{a:?}");
    assert!(
        a[0].reason
            .as_deref()
            .unwrap()
            .contains("a permanent bounce: 5.1.1"),
        "{:?}",
        a[0].reason
    );
    // Word for word, with the suppression's date in UTC, on either store.
    assert_eq!(
        a[0].reason.as_deref(),
        Some("suppressed since 1970-01-01: a permanent bounce: 5.1.1")
    );
    assert_eq!(outbox.counts().unwrap().suppressed, 2);
    // The same message again changes nothing.
    assert_eq!(
        outbox
            .take_incoming(&message("m1", "bounce"), &effect, at(70))
            .unwrap(),
        Taken::Seen
    );
    assert!(outbox.incoming_seen("m1").unwrap());
    assert_eq!(outbox.incoming_since(at(0)).unwrap().len(), 1);
    assert_eq!(outbox.suppressions().unwrap().len(), 1);
    // A send planned later for the address is suppressed as it is planned.
    let changes = Changes {
        insert: vec![spec_on("a", "l", "2h", 300)],
        ..Changes::default()
    };
    outbox.apply(&changes, at(80)).unwrap();
    assert_eq!(outbox.counts().unwrap().suppressed, 3);
    assert_eq!(
        outbox.claim_due(at(1000), 10).unwrap().len(),
        1,
        "only b's send goes"
    );
}

fn an_unsubscribe_suppresses_one_list_only_and_lifting_plans_the_sends_to_come_again(backend: &Backend) {
    let outbox = outbox_with(
        backend,
        vec![
            spec_on("a", "l", "1d", 100),
            spec_on("a", "m", "7d", 200),
            spec_on("a", "l", "7d", 20),
        ],
    );
    let address = AddressKey::of("a@example.org");
    let effect = Effect::Suppress {
        address: address.clone(),
        list: Some("l".to_owned()),
        reason: "unsubscribed by mail".to_owned(),
    };
    outbox
        .take_incoming(&message("u1", "unsubscribe"), &effect, at(10))
        .unwrap();
    assert_eq!(
        states(&*outbox),
        vec![
            (spec_on("a", "l", "1d", 0).key.to_string(), State::Suppressed),
            (spec_on("a", "l", "7d", 0).key.to_string(), State::Suppressed),
            (spec_on("a", "m", "7d", 0).key.to_string(), State::Planned),
        ]
    );
    let lifted = outbox.lift_suppressions(&address, at(50)).unwrap();
    // The send due at 20 is in the past at 50: it stays suppressed.
    assert_eq!((lifted.suppressions, lifted.revived), (1, 1));
    assert!(outbox.suppressions().unwrap().is_empty());
    assert_eq!(outbox.counts().unwrap().suppressed, 1);
}

fn a_reader_s_unsubscribe_suppresses_one_list_once_and_lifting_it_plans_that_list_again(backend: &Backend) {
    let outbox = outbox_with(
        backend,
        vec![
            spec_on("a", "l", "1d", 100),
            spec_on("a", "m", "7d", 200),
            spec_on("a", "l", "7d", 20),
            spec_on("b", "l", "1d", 100),
        ],
    );
    let a = AddressKey::of("A@example.org");
    let reason = "unsubscribed by the link in a message";
    assert!(outbox.suppress(&a, "l", reason, at(10)).unwrap());
    assert_eq!(
        states(&*outbox),
        vec![
            (spec_on("a", "l", "1d", 0).key.to_string(), State::Suppressed),
            (spec_on("b", "l", "1d", 0).key.to_string(), State::Planned),
            (spec_on("a", "l", "7d", 0).key.to_string(), State::Suppressed),
            (spec_on("a", "m", "7d", 0).key.to_string(), State::Planned),
        ]
    );
    let suppressions = outbox.suppressions().unwrap();
    assert_eq!(suppressions.len(), 1);
    assert_eq!(suppressions[0].list.as_deref(), Some("l"));
    assert_eq!(
        (suppressions[0].reason.as_str(), suppressions[0].since),
        (reason, at(10))
    );
    // The request is among the incoming ones, for the digest.
    let requests = outbox.incoming_since(at(0)).unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].kind.as_str(), requests[0].source.as_str()),
        ("unsubscribe", "web")
    );
    assert_eq!(requests[0].addresses, ["a@example.org"]);
    assert_eq!(requests[0].received_at, at(10));
    assert!(!requests[0].needs_human);
    assert_eq!(
        suppressions[0].message_id.as_deref(),
        Some(requests[0].message_id.as_str())
    );
    // Again: nothing new, and the first date stays.
    assert!(!outbox.suppress(&a, "l", "again", at(30)).unwrap());
    assert_eq!(outbox.suppressions().unwrap(), suppressions);
    assert_eq!(outbox.incoming_since(at(0)).unwrap(), requests);
    // A send planned later on the list is suppressed as it is planned.
    let changes = Changes {
        insert: vec![spec_on("a", "l", "2h", 300)],
        ..Changes::default()
    };
    assert_eq!(outbox.apply(&changes, at(40)).unwrap(), 1);
    // Lifting it plans again what is still to come on that list.
    assert!(outbox.lift_list_suppression(&a, "l", at(50)).unwrap());
    assert!(!outbox.lift_list_suppression(&a, "l", at(50)).unwrap());
    assert!(outbox.suppressions().unwrap().is_empty());
    assert_eq!(
        outbox.counts().unwrap().suppressed,
        1,
        "the send due at 20 is past"
    );
}

fn a_suppression_of_every_list_covers_an_unsubscribe_and_outlives_a_list_lifted(backend: &Backend) {
    let outbox = outbox_with(
        backend,
        vec![spec_on("a", "l", "1d", 100), spec_on("a", "m", "1d", 100)],
    );
    let a = AddressKey::of("a@example.org");
    assert!(outbox.suppress(&a, "l", "unsubscribed", at(5)).unwrap());
    let bounce = Effect::Suppress {
        address: a.clone(),
        list: None,
        reason: "a permanent bounce: 5.1.1".to_owned(),
    };
    outbox
        .take_incoming(&message("b1", "bounce"), &bounce, at(10))
        .unwrap();
    // Already suppressed on every list: an unsubscribe from m adds nothing.
    assert!(!outbox.suppress(&a, "m", "unsubscribed", at(20)).unwrap());
    assert_eq!(outbox.suppressions().unwrap().len(), 2);
    // The list's own suppression goes; the bounce's stays, and so do the sends.
    assert!(outbox.lift_list_suppression(&a, "l", at(30)).unwrap());
    let left = outbox.suppressions().unwrap();
    assert_eq!((left.len(), left[0].list.clone()), (1, None));
    assert_eq!(outbox.counts().unwrap().suppressed, 2);
    assert_eq!(outbox.claim_due(at(1000), 10).unwrap().len(), 0);
}

fn temporary_failures_suppress_at_the_threshold_within_the_period(backend: &Backend) {
    let outbox = outbox_with(backend, vec![spec_on("a", "l", "1d", 1_000_000)]);
    let address = AddressKey::of("a@example.org");
    let fail = |id: &str, now: i64| {
        let effect = Effect::CountFailure {
            address: address.clone(),
            threshold: 3,
            since: at(now - 100),
            reason: "452 4.2.2 mailbox full".to_owned(),
        };
        outbox
            .take_incoming(&message(id, "bounce"), &effect, at(now))
            .unwrap()
    };
    // The first falls out of the period before the third comes.
    assert!(matches!(
        fail("f1", 0),
        Taken::Recorded {
            failures: Some(1),
            suppressed: None,
            ..
        }
    ));
    assert!(matches!(
        fail("f2", 150),
        Taken::Recorded {
            failures: Some(1),
            suppressed: None,
            ..
        }
    ));
    assert!(matches!(
        fail("f3", 200),
        Taken::Recorded {
            failures: Some(2),
            suppressed: None,
            ..
        }
    ));
    let Taken::Recorded {
        suppressed,
        sends,
        failures,
    } = fail("f4", 210)
    else {
        panic!()
    };
    assert_eq!((failures, sends), (Some(3), 1));
    assert!(
        suppressed
            .unwrap()
            .reason
            .starts_with("3 temporary failures since")
    );
}

fn only_an_address_herald_handed_to_the_relay_was_sent_to(backend: &Backend) {
    let outbox = outbox_with(
        backend,
        vec![spec_on("a", "l", "1d", 100), spec_on("b", "l", "1d", 100)],
    );
    let a = AddressKey::of("a@example.org");
    assert!(!outbox.has_sent_to(&a).unwrap());
    outbox.claim_due(at(100), 1).unwrap();
    outbox
        .record(&[(spec_on("a", "l", "1d", 100).key, sent())], at(101))
        .unwrap();
    assert!(outbox.has_sent_to(&a).unwrap());
    assert!(!outbox.has_sent_to(&AddressKey::of("b@example.org")).unwrap());
    assert!(!outbox.has_sent_to(&AddressKey::of("c@example.org")).unwrap());
    let settled = outbox.settled_since(at(100)).unwrap();
    assert_eq!(settled.len(), 1);
}

// Readers' overrides and requests.

fn choice(address: &str, language: Option<&str>, zone: Option<&str>, since: i64) -> Override {
    Override {
        address: AddressKey::of(address),
        language: language.map(str::to_owned),
        zone: zone.map(str::to_owned),
        since: at(since),
    }
}

fn successor(from: &str, list: Option<&str>, email: &str) -> NewRequest {
    NewRequest {
        from: AddressKey::of(from),
        list: list.map(str::to_owned),
        successor_name: "Kofi Mensah".to_owned(),
        successor_email: email.to_owned(),
    }
}

fn an_override_is_kept_replaced_and_removed_across_reopens(backend: &Backend) {
    {
        let outbox = backend.open();
        outbox
            .set_override(&choice("B@example.org", Some("fr"), None, 100))
            .unwrap();
        outbox
            .set_override(&choice("a@example.org", None, Some("Asia/Tokyo"), 90))
            .unwrap();
    }
    let outbox = backend.open();
    assert_eq!(
        outbox.overrides().unwrap(),
        vec![
            choice("a@example.org", None, Some("Asia/Tokyo"), 90),
            choice("b@example.org", Some("fr"), None, 100),
        ]
    );
    // A new choice replaces the old one whole.
    outbox
        .set_override(&choice("b@example.org", None, Some("Europe/Zurich"), 200))
        .unwrap();
    assert_eq!(
        outbox.override_of(&AddressKey::of(" b@EXAMPLE.org")).unwrap(),
        Some(choice("b@example.org", None, Some("Europe/Zurich"), 200))
    );
    // Choosing the configuration's values again removes the override.
    outbox
        .set_override(&choice("b@example.org", None, None, 300))
        .unwrap();
    assert_eq!(
        outbox.override_of(&AddressKey::of("b@example.org")).unwrap(),
        None
    );
    assert_eq!(outbox.overrides().unwrap().len(), 1);
}

fn removing_overrides_counts_those_there_were(backend: &Backend) {
    let outbox = backend.open();
    for name in ["a", "b", "c"] {
        outbox
            .set_override(&choice(&format!("{name}@example.org"), Some("es"), None, 1))
            .unwrap();
    }
    let gone = [
        AddressKey::of("a@example.org"),
        AddressKey::of("c@example.org"),
        AddressKey::of("nobody@example.org"),
    ];
    assert_eq!(outbox.remove_overrides(&gone).unwrap(), 2);
    assert_eq!(outbox.remove_overrides(&gone).unwrap(), 0);
    assert_eq!(outbox.remove_overrides(&[]).unwrap(), 0);
    let left: Vec<_> = outbox
        .overrides()
        .unwrap()
        .into_iter()
        .map(|o| o.address)
        .collect();
    assert_eq!(left, vec![AddressKey::of("b@example.org")]);
}

fn the_same_open_request_is_not_recorded_twice(backend: &Backend) {
    let outbox = backend.open();
    let first = outbox
        .add_request(
            &successor("a@example.org", Some("gcm"), "k.mensah@example.org"),
            at(10),
        )
        .unwrap();
    assert!(first.new);
    // The same form again, the address typed differently: the same request.
    let again = outbox
        .add_request(
            &successor("A@example.org", Some("gcm"), " K.Mensah@example.org "),
            at(20),
        )
        .unwrap();
    assert_eq!(
        again,
        Asked {
            id: first.id,
            new: false
        }
    );
    // Another list, or every list, is another request.
    let other = outbox
        .add_request(&successor("a@example.org", None, "k.mensah@example.org"), at(30))
        .unwrap();
    assert!(other.new);
    assert_ne!(other.id, first.id);
    let open = outbox.requests(true).unwrap();
    assert_eq!(open.len(), 2);
    assert_eq!(open[0].id, first.id);
    assert_eq!(open[0].asked, at(10));
    assert_eq!(open[0].list.as_deref(), Some("gcm"));
    assert_eq!(open[0].successor_email, "k.mensah@example.org");
    assert_eq!(open[1].list, None);
}

fn a_settled_request_leaves_the_open_ones_and_may_be_asked_again(backend: &Backend) {
    let outbox = backend.open();
    let asked = outbox
        .add_request(&successor("a@example.org", None, "k@example.org"), at(10))
        .unwrap();
    assert!(outbox.settle_request(asked.id, at(50)).unwrap());
    // Settled once: settling again, or an unknown id, changes nothing.
    assert!(!outbox.settle_request(asked.id, at(60)).unwrap());
    assert!(!outbox.settle_request(asked.id + 100, at(60)).unwrap());
    assert!(outbox.requests(true).unwrap().is_empty());
    let all = outbox.requests(false).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].settled, Some(at(50)));
    // Asked again after the operator settled it: a new request.
    let again = outbox
        .add_request(&successor("a@example.org", None, "k@example.org"), at(70))
        .unwrap();
    assert!(again.new);
    assert_eq!(outbox.requests(false).unwrap().len(), 2);
}
