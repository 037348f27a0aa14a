//! Several nodes on one PostgreSQL outbox: what they guarantee each other.
//!
//! Each test starts its own server ([`Postgres`]) and opens two daemons'
//! outboxes on the same database, nodes "a" and "b", as two machines would.
//! What the database holds is read back through `psql`, not through herald.
//!
//! - Claims made at once from two threads are disjoint and together take
//!   every due send (`FOR UPDATE SKIP LOCKED`).
//! - A claim is leased: a send in flight on a node that stops renewing is
//!   taken over by another node once the lease has expired, never before,
//!   with the same key (the same Message-ID), and its history says so; the
//!   first node's outcome for it is then recorded nowhere.
//! - Renewals keep a claim; `may_send` says when a node must stop starting
//!   sends because its leases might have run out.
//! - One node plans at a time (`plan_as`), and only with the configuration
//!   the outbox was planned with.
//! - The relay's rate limit is one budget, whichever node takes the turn.
//! - A send the planner plans while another node suppresses its recipient
//!   ends up suppressed, whichever commits first.
//! - A node works again once a database that went away is back.

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use herald::key::{AddressKey, SendKey};
use herald::outbox::{Changes, Effect, IncomingRow, Outbox, Planning, PostgresOutbox, State};
use herald::pace::Limits;
use herald::render::message::message_id;
use jiff::{SignedDuration, Timestamp};

use crate::support::postgres::Postgres;

use crate::outbox_suite::{at, key, plan, sent, spec};

/// Nodes "a" and "b", as their daemons open the outbox.
fn nodes(postgres: &Postgres, lease: Duration) -> (PostgresOutbox, PostgresOutbox) {
    let a = PostgresOutbox::open_daemon(&postgres.settings("a", lease)).unwrap();
    let b = PostgresOutbox::open_daemon(&postgres.settings("b", lease)).unwrap();
    (a, b)
}

/// Sleeps until `instant` (at once if it is past).
fn sleep_until(instant: Instant) {
    if let Some(left) = instant.checked_duration_since(Instant::now()) {
        std::thread::sleep(left);
    }
}

#[test]
fn claims_from_two_nodes_at_once_are_disjoint_and_take_every_due_send() {
    let postgres = Postgres::start();
    let (a, b) = nodes(&postgres, Duration::from_secs(60));
    let names: Vec<String> = (0..2000).map(|n| format!("r{n:04}")).collect();
    plan(&a, names.iter().map(|name| spec(name, 100)).collect());
    let start = Arc::new(Barrier::new(2));
    let claimed: Vec<Vec<SendKey>> = std::thread::scope(|scope| {
        let threads: Vec<_> = [&a, &b]
            .into_iter()
            .map(|outbox| {
                let start = Arc::clone(&start);
                scope.spawn(move || {
                    start.wait();
                    let mut keys = Vec::new();
                    loop {
                        let batch = outbox.claim_due(at(1000), 20).unwrap();
                        if batch.is_empty() {
                            return keys;
                        }
                        assert!(batch.iter().all(|e| e.state == State::Sending));
                        keys.extend(batch.into_iter().map(|e| e.spec.key));
                    }
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let (by_a, by_b) = (&claimed[0], &claimed[1]);
    assert!(
        !by_a.is_empty() && !by_b.is_empty(),
        "both nodes claimed: a {}, b {}",
        by_a.len(),
        by_b.len()
    );
    let set_a: BTreeSet<&SendKey> = by_a.iter().collect();
    let set_b: BTreeSet<&SendKey> = by_b.iter().collect();
    assert_eq!(set_a.len(), by_a.len(), "a claimed a send twice");
    assert_eq!(set_b.len(), by_b.len(), "b claimed a send twice");
    let both: Vec<_> = set_a.intersection(&set_b).collect();
    assert!(both.is_empty(), "claimed by both nodes: {both:?}");
    let all: BTreeSet<SendKey> = names.iter().map(|name| key(name)).collect();
    let union: BTreeSet<SendKey> = set_a.union(&set_b).map(|key| (*key).clone()).collect();
    assert_eq!(union, all);
    // The database agrees: every send in flight, each in the name of the
    // node that got it, claimed once.
    assert_eq!(
        postgres.psql(
            "SELECT claimed_by, count(*), max(attempts) FROM sends WHERE state = 'sending' \
             GROUP BY claimed_by ORDER BY claimed_by"
        ),
        format!("node:a|{}|1\nnode:b|{}|1", by_a.len(), by_b.len())
    );
    assert_eq!(
        postgres.psql("SELECT count(*) FROM sends WHERE state <> 'sending'"),
        "0"
    );
}

#[test]
fn a_send_whose_lease_expired_is_taken_over_with_its_key_and_the_first_node_records_nothing() {
    let postgres = Postgres::start();
    let lease = Duration::from_secs(2);
    let (a, b) = nodes(&postgres, lease);
    plan(&a, vec![spec("r", 100)]);
    let claimed_at = Instant::now();
    let by_a = a.claim_due(at(1000), 10).unwrap();
    assert_eq!(by_a.len(), 1);
    assert_eq!((by_a[0].state, by_a[0].attempts), (State::Sending, 1));
    // Within the lease, b takes nothing, though a renews nothing.
    assert!(b.claim_due(at(1000), 10).unwrap().is_empty());
    sleep_until(claimed_at + Duration::from_millis(1200));
    assert!(
        b.claim_due(at(1001), 10).unwrap().is_empty(),
        "taken over before the lease expired"
    );
    sleep_until(claimed_at + lease + Duration::from_millis(500));
    let by_b = b.claim_due(at(1002), 10).unwrap();
    assert_eq!(by_b.len(), 1, "not taken over after the lease expired");
    let (first, again) = (&by_a[0], &by_b[0]);
    assert_eq!(again.spec.key, first.spec.key);
    assert_eq!(
        message_id(again.spec.key.as_str(), "example.org"),
        message_id(first.spec.key.as_str(), "example.org")
    );
    assert_eq!((again.state, again.attempts), (State::Sending, 2));
    assert_eq!(
        postgres.psql("SELECT claimed_by FROM sends"),
        "node:b",
        "the row is b's now"
    );
    // Its history says it was taken over, from whom, by whom.
    let history = b.attempts(key("r").as_str()).unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    let (when, outcome, reply) = &history[0];
    assert_eq!((*when, outcome.as_str()), (at(1002), "taken over"));
    let reply = reply.as_deref().unwrap_or_default();
    assert!(reply.contains("node:a") && reply.contains("node:b"), "{reply}");
    // a's outcome comes too late: the row is b's, and a records nothing.
    assert_eq!(a.record(&[(key("r"), sent())], at(1003)).unwrap(), 0);
    assert_eq!(
        postgres.psql("SELECT state, claimed_by FROM sends"),
        "sending|node:b"
    );
    assert_eq!(b.record(&[(key("r"), sent())], at(1004)).unwrap(), 1);
    assert_eq!(
        postgres.psql("SELECT state, attempts, sent_at FROM sends"),
        "sent|2|1004"
    );
    assert_eq!(
        postgres.psql("SELECT outcome, node FROM attempts ORDER BY id"),
        "taken over|node:b\nsent|node:b"
    );
}

#[test]
fn renewals_keep_a_claim_and_may_send_stops_before_the_lease_runs_out() {
    let postgres = Postgres::start();
    let lease = Duration::from_secs(2);
    let margin = Duration::from_millis(500);
    let (a, b) = nodes(&postgres, lease);
    plan(&a, vec![spec("r", 100)]);
    let claimed_at = Instant::now();
    assert_eq!(a.claim_due(at(1000), 10).unwrap().len(), 1);
    assert!(a.may_send(margin), "right after a claim");
    // a renews every second, and b finds nothing to take long past the
    // first lease.
    for second in 1..=3 {
        sleep_until(claimed_at + Duration::from_secs(second));
        assert_eq!(a.renew_leases().unwrap(), 1);
        assert!(a.may_send(margin), "right after a renewal");
        sleep_until(claimed_at + Duration::from_secs(second) + Duration::from_millis(500));
        assert!(
            b.claim_due(at(1000), 10).unwrap().is_empty(),
            "taken over {second}.5 s after the claim, though renewed"
        );
    }
    assert_eq!(
        postgres.psql("SELECT state, claimed_by FROM sends"),
        "sending|node:a"
    );
    // Without renewal: a may still send until the lease minus the margin…
    let renewed_at = Instant::now();
    assert_eq!(a.renew_leases().unwrap(), 1);
    sleep_until(renewed_at + lease - margin - Duration::from_millis(400));
    assert!(a.may_send(margin), "{:?} after a renewal", renewed_at.elapsed());
    // …and not after.
    sleep_until(renewed_at + lease - margin + Duration::from_millis(50));
    assert!(
        !a.may_send(margin),
        "{:?} after the last renewal, with a lease of {lease:?} and a margin of {margin:?}",
        renewed_at.elapsed()
    );
    // Then the lease expires and b takes the send over.
    sleep_until(renewed_at + lease + Duration::from_millis(500));
    assert_eq!(b.claim_due(at(1000), 10).unwrap().len(), 1);
    assert_eq!(
        a.renew_leases().unwrap(),
        0,
        "a renews no lease of a send it lost"
    );
    assert_eq!(
        postgres.psql("SELECT state, claimed_by FROM sends"),
        "sending|node:b"
    );
}

#[test]
fn one_node_plans_and_only_with_the_configuration_the_outbox_was_planned_with() {
    let postgres = Postgres::start();
    let lease = Duration::from_secs(2);
    let (a, b) = nodes(&postgres, lease);
    assert_eq!(a.plan_as("one").unwrap(), Planning::Plans);
    assert_eq!(
        b.plan_as("one").unwrap(),
        Planning::Another { node: "a".to_owned() }
    );
    assert_eq!(
        b.plan_as("two").unwrap(),
        Planning::Differs {
            node: "a".to_owned(),
            planned_with: "one".to_owned()
        }
    );
    // The planner reloads an edited configuration: it keeps the role, and
    // the outbox is now planned with that one.
    assert_eq!(a.plan_as("two").unwrap(), Planning::Plans);
    assert_eq!(postgres.psql("SELECT node, config_hash FROM planner"), "a|two");
    assert_eq!(
        b.plan_as("one").unwrap(),
        Planning::Differs {
            node: "a".to_owned(),
            planned_with: "two".to_owned()
        }
    );
    assert_eq!(
        b.plan_as("two").unwrap(),
        Planning::Another { node: "a".to_owned() }
    );
    let renewed_at = Instant::now();
    assert_eq!(a.plan_as("two").unwrap(), Planning::Plans);
    sleep_until(renewed_at + Duration::from_millis(1200));
    assert_eq!(
        b.plan_as("two").unwrap(),
        Planning::Another { node: "a".to_owned() },
        "the role taken before the planner's lease expired"
    );
    // a stops renewing. Once its lease has expired, a node whose
    // configuration differs does not take the role…
    sleep_until(renewed_at + lease + Duration::from_millis(500));
    assert_eq!(
        b.plan_as("three").unwrap(),
        Planning::Differs {
            node: "a".to_owned(),
            planned_with: "two".to_owned()
        }
    );
    assert_eq!(
        postgres.psql("SELECT node, term, config_hash FROM planner"),
        "a|1|two"
    );
    // …one with the same configuration does.
    assert_eq!(b.plan_as("two").unwrap(), Planning::Plans);
    assert_eq!(
        postgres.psql("SELECT node, term, config_hash FROM planner"),
        "b|2|two"
    );
    assert_eq!(
        a.plan_as("two").unwrap(),
        Planning::Another { node: "b".to_owned() }
    );
}

/// The gaps between consecutive turns, sorted by time.
fn gaps(turns: &mut [Timestamp]) -> Vec<SignedDuration> {
    turns.sort();
    turns
        .windows(2)
        .map(|pair| pair[1].duration_since(pair[0]))
        .collect()
}

#[test]
fn the_relay_s_rate_limit_is_one_budget_for_every_node() {
    let postgres = Postgres::start();
    let (a, b) = nodes(&postgres, Duration::from_secs(60));
    let limits = Limits {
        per_minute: Some(60),
        ..Limits::default()
    };
    // Whole milliseconds: the turns are kept to the millisecond.
    let now = Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap();
    // Ten turns asked for at the same instant, the nodes taking turns: one
    // a second, as one node alone would get them.
    let mut turns: Vec<Timestamp> = (0..10)
        .map(|n| {
            let node = if n % 2 == 0 { &a } else { &b };
            node.take_turn(&limits, now)
                .unwrap()
                .expect("a shared outbox keeps the relay's budget")
        })
        .collect();
    let expected: Vec<Timestamp> = (0..10).map(|n| now + SignedDuration::from_secs(n)).collect();
    assert_eq!(turns, expected);
    assert!(
        gaps(&mut turns)
            .iter()
            .all(|gap| *gap == SignedDuration::from_secs(1))
    );
    assert_eq!(
        postgres.psql("SELECT node, count(*) FROM relay_turns GROUP BY node ORDER BY node"),
        "a|5\nb|5"
    );
    // Twenty more asked for from both nodes at once: still one a second
    // after the last, none twice.
    let later = now + SignedDuration::from_secs(10);
    let start = Arc::new(Barrier::new(2));
    let mut more: Vec<Timestamp> = std::thread::scope(|scope| {
        let threads: Vec<_> = [&a, &b]
            .into_iter()
            .map(|outbox| {
                let start = Arc::clone(&start);
                scope.spawn(move || {
                    start.wait();
                    (0..10)
                        .map(|_| {
                            outbox
                                .take_turn(&limits, later)
                                .unwrap()
                                .expect("a shared outbox keeps the relay's budget")
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    });
    let gaps = gaps(&mut more);
    assert!(
        gaps.iter().all(|gap| *gap >= SignedDuration::from_secs(1)),
        "turns closer than a second apart: {more:?}"
    );
    assert_eq!(more.first(), Some(&later));
    assert_eq!(more.last(), Some(&(later + SignedDuration::from_secs(19))));
}

#[test]
fn a_node_works_again_once_the_database_is_back() {
    let mut postgres = Postgres::start();
    let (a, _b) = nodes(&postgres, Duration::from_secs(60));
    a.set_value("rate", "1.5@10").unwrap();
    assert_eq!(
        postgres.psql("SELECT value FROM kv WHERE name = 'rate'"),
        "1.5@10"
    );
    postgres.stop();
    let failed = a.get_value("rate").unwrap_err();
    assert_eq!(failed.to_string(), "reading saved state");
    postgres.start_again();
    assert_eq!(a.get_value("rate").unwrap().as_deref(), Some("1.5@10"));
}

/// Waits (up to 5 s) until `ready` says so.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ready() {
        assert!(Instant::now() < deadline, "waited 5 s for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many locks on `kv` are held (`granted`) or waited for.
fn kv_locks(postgres: &Postgres, granted: bool) -> String {
    postgres.psql(&format!(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
         WHERE c.relname = 'kv' AND l.granted = {granted} AND l.pid <> pg_backend_pid()"
    ))
}

#[test]
fn a_send_planned_while_another_node_suppresses_its_recipient_is_suppressed() {
    let postgres = Postgres::start();
    let (a, b) = nodes(&postgres, Duration::from_secs(60));
    // The planner's reconcile is held up after it has planned its sends
    // (at the end of the plan it records, in `kv`) by a session holding
    // that table, while node b takes in a permanent bounce of the
    // recipient of one of them.
    let mut holder = postgres.session();
    holder.send("BEGIN;");
    holder.send("LOCK TABLE kv IN ACCESS EXCLUSIVE MODE;");
    wait_until("the session to hold kv", || kv_locks(&postgres, true) == "1");
    let bounce = IncomingRow {
        message_id: "bounce-1".to_owned(),
        received_at: at(50),
        source: "imap".to_owned(),
        kind: "bounce".to_owned(),
        addresses: vec!["r@example.org".to_owned()],
        permanent: Some(true),
        status: Some("5.1.1".to_owned()),
        diagnostic: Some("550 5.1.1 no such user".to_owned()),
        send: None,
        from: Some("mailer-daemon@example.net".to_owned()),
        subject: Some("Undelivered Mail Returned to Sender".to_owned()),
        outcome: "test".to_owned(),
        needs_human: false,
    };
    let effect = Effect::Suppress {
        address: AddressKey::of("r@example.org"),
        list: None,
        reason: "a permanent bounce: 5.1.1".to_owned(),
    };
    std::thread::scope(|scope| {
        let planning = scope.spawn(|| {
            let changes = Changes {
                insert: vec![spec("r", 100), spec("s", 100)],
                planned_until: Some(at(10_000)),
                ..Changes::default()
            };
            a.apply(&changes, at(40)).unwrap()
        });
        wait_until("the reconcile to wait for kv", || {
            kv_locks(&postgres, false) == "1"
        });
        let taking = scope.spawn(|| b.take_incoming(&bounce, &effect, at(60)).unwrap());
        // b is done, or waits for the reconcile to end: either way, the
        // reconcile may end now.
        wait_until("the bounce to be taken in, or to wait", || {
            taking.is_finished()
                || postgres.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                    != "0"
        });
        holder.send("COMMIT;");
        planning.join().unwrap();
        taking.join().unwrap();
    });
    holder.finish();
    assert_eq!(
        postgres.psql("SELECT address, list FROM suppressions"),
        "r@example.org|"
    );
    // The suppression and the send both committed: the send is suppressed,
    // whichever came first.
    assert_eq!(
        postgres.psql("SELECT recipient, state FROM sends ORDER BY recipient"),
        "r@example.org|suppressed\ns@example.org|planned",
        "a send planned for a recipient suppressed meanwhile"
    );
    let claimed: Vec<SendKey> = a
        .claim_due(at(1000), 10)
        .unwrap()
        .into_iter()
        .map(|e| e.spec.key)
        .collect();
    assert_eq!(claimed, [key("s")]);
}

#[test]
fn incoming_messages_of_the_same_instant_read_back_in_the_order_the_nodes_took_them_in() {
    let postgres = Postgres::start();
    let (a, b) = nodes(&postgres, Duration::from_secs(60));
    // Both nodes' inboxes take in messages received within the same second,
    // in turn: a short one on a, a long one on b (a long diagnostic, as
    // bounces carry), forty times over.
    let mut taken = Vec::new();
    for n in 0..40 {
        let (node, diagnostic) = if n % 2 == 0 {
            (&a, "550 5.1.1 no such user".to_owned())
        } else {
            (
                &b,
                format!(
                    "550 5.7.1 {n}: {}",
                    "the message was refused by policy; ".repeat(40)
                ),
            )
        };
        let row = IncomingRow {
            message_id: format!("message-{n:02}"),
            received_at: at(50),
            source: "imap".to_owned(),
            kind: "bounce".to_owned(),
            addresses: vec![format!("r{n}@example.org")],
            permanent: Some(true),
            status: Some("5.1.1".to_owned()),
            diagnostic: Some(diagnostic),
            send: None,
            from: Some("mailer-daemon@example.net".to_owned()),
            subject: Some("Undelivered Mail Returned to Sender".to_owned()),
            outcome: "test".to_owned(),
            needs_human: false,
        };
        node.take_incoming(&row, &Effect::Nothing, at(50)).unwrap();
        taken.push(row.message_id);
    }
    let read: Vec<String> = a
        .incoming_since(at(0))
        .unwrap()
        .into_iter()
        .map(|row| row.message_id)
        .collect();
    assert_eq!(read, taken);
}

/// Two daemons given the same node name (a cloned machine keeps its host
/// name) would renew, and release at their start, each other's claims: the
/// second waits for the first's hold on the name, a lease at most, and is
/// refused while it lasts; once the first stops, the name is free at once.
#[test]
fn a_node_name_is_held_by_one_daemon_at_a_time() {
    let postgres = Postgres::start();
    let lease = Duration::from_secs(6);
    let first = PostgresOutbox::open_daemon(&postgres.settings("a", lease)).unwrap();
    let asked = Instant::now();
    // The first renews its hold, as its daemon does, while the second waits.
    let done = std::sync::atomic::AtomicBool::new(false);
    let (second, waited) = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                first.renew_leases().unwrap();
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        let second = PostgresOutbox::open_daemon(&postgres.settings("a", lease));
        let waited = asked.elapsed();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        (second, waited)
    });
    let refusal = format!("{:#}", anyhow::Error::from(second.expect_err("the name is held")));
    assert!(
        refusal.contains("another herald process holds it") && refusal.contains("HERALD_NODE"),
        "{refusal}"
    );
    assert!(
        waited >= lease,
        "refused after {waited:?}, before the hold could have ended"
    );
    drop(first);
    let asked = Instant::now();
    let again = PostgresOutbox::open_daemon(&postgres.settings("a", lease)).unwrap();
    assert!(asked.elapsed() < lease, "the name was not let go of at stop");
    // Another name is another node.
    PostgresOutbox::open_daemon(&postgres.settings("b", lease)).unwrap();
    again.renew_leases().unwrap();
}
