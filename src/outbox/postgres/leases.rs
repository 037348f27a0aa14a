//! What several nodes share: claims with leases, outcomes fenced by them,
//! the planner's role, and the relay's budget.
//!
//! Leases run on the database's clock (`now()`), which every node reads
//! alike; herald's own clock (`now` arguments) still decides what is due,
//! as on SQLite. A claim takes planned rows that are due and rows whose
//! lease has expired, under `FOR UPDATE SKIP LOCKED`, so that two nodes
//! claiming at once take different rows and neither waits for the other.

use deadpool_postgres::Object;
use jiff::Timestamp;

use super::{COLUMNS, DbError, GO_AT, entry_from_row, secs};
use crate::outbox::{Claimant, Entry, Planning, Recorded};
use crate::pace::{Gate, Limits};

/// The order a claim takes due sends in.
#[derive(Debug, Clone, Copy)]
pub(super) enum ClaimOrder {
    /// When they may go, then key.
    Due,
    /// Most urgent first (`key::Urgency`), then due, then key.
    Urgency,
}

/// Claims up to `limit` sends that may go at `now`: planned ones, and those
/// in flight on a node whose lease has expired (sent again, with the same
/// Message-ID: the message may or may not have left before that node
/// stopped). The same transaction renews this claimant's other leases.
pub(super) async fn claim(
    c: &mut Object,
    claimant: &Claimant,
    lease: f64,
    now: Timestamp,
    limit: usize,
    order: ClaimOrder,
) -> Result<Vec<Entry>, DbError> {
    let order_by = match order {
        ClaimOrder::Due => format!("{GO_AT}, key"),
        ClaimOrder::Urgency => "precedence, COALESCE(urgent_by, due), due, key".to_owned(),
    };
    let tx = c.transaction().await?;
    renew_in(&tx, claimant, lease).await?;
    // Expired leases first, in the order they would have gone: they are
    // late already. (A row in flight without a lease was copied from an
    // SQLite outbox by `herald state migrate`: its node is gone too.) Two
    // statements, each on its own index, rather than one with OR that
    // could use neither.
    let taken_over = tx
        .prepare_cached(&format!(
            "WITH c AS (SELECT key, claimed_by FROM sends WHERE state = 'sending' AND (lease_until IS NULL OR lease_until < now())
                        ORDER BY {order_by} LIMIT $2 FOR UPDATE SKIP LOCKED)
             UPDATE sends s SET attempts = s.attempts + 1, updated_at = $1, claimed_by = $3,
                    lease_until = now() + make_interval(secs => $4)
             FROM c WHERE s.key = c.key
             RETURNING c.claimed_by AS previous, {}, s.precedence, COALESCE(s.urgent_by, s.due) AS urgent_at",
            prefixed(COLUMNS, "s.")
        ))
        .await?;
    let taken_over = tx
        .query(
            &taken_over,
            &[&secs(now), &(limit as i64), &claimant.as_str(), &lease],
        )
        .await?;
    let left = limit.saturating_sub(taken_over.len());
    let planned = if left == 0 {
        Vec::new()
    } else {
        let statement = tx
            .prepare_cached(&format!(
                "WITH c AS (SELECT key FROM sends WHERE state = 'planned' AND {GO_AT} <= $1
                            ORDER BY {order_by} LIMIT $2 FOR UPDATE SKIP LOCKED)
                 UPDATE sends s SET state = 'sending', attempts = s.attempts + 1, updated_at = $1, claimed_by = $3,
                        lease_until = now() + make_interval(secs => $4)
                 FROM c WHERE s.key = c.key
                 RETURNING {}, s.precedence, COALESCE(s.urgent_by, s.due) AS urgent_at",
                prefixed(COLUMNS, "s.")
            ))
            .await?;
        tx.query(
            &statement,
            &[&secs(now), &(left as i64), &claimant.as_str(), &lease],
        )
        .await?
    };
    // The history of a send taken over says so.
    for row in &taken_over {
        let key: String = row.try_get("key")?;
        let previous: Option<String> = row.try_get("previous")?;
        tx.execute(
            "INSERT INTO attempts (key, at, outcome, reply, node) VALUES ($1, $2, 'taken over', $3, $4)",
            &[
                &key,
                &secs(now),
                &format!(
                    "in flight on {} whose lease expired: sent again by {}",
                    previous.as_deref().unwrap_or("another node"),
                    claimant
                ),
                &claimant.as_str(),
            ],
        )
        .await?;
    }
    tx.commit().await?;
    let mut claimed = Vec::with_capacity(taken_over.len() + planned.len());
    for row in taken_over.iter().chain(&planned) {
        let precedence: i32 = row.try_get("precedence")?;
        let urgent_at: i64 = row.try_get("urgent_at")?;
        claimed.push((entry_from_row(row)?, precedence, urgent_at));
    }
    // RETURNING gives the rows in no set order.
    match order {
        ClaimOrder::Due => claimed
            .sort_by(|a, b| (a.0.effective_due(), &a.0.spec.key).cmp(&(b.0.effective_due(), &b.0.spec.key))),
        ClaimOrder::Urgency => claimed.sort_by(|a, b| {
            (a.1, a.2, a.0.spec.due, &a.0.spec.key).cmp(&(b.1, b.2, b.0.spec.due, &b.0.spec.key))
        }),
    }
    Ok(claimed.into_iter().map(|(entry, _, _)| entry).collect())
}

/// `key, kind, …` → `s.key, s.kind, …`, for a statement with a join.
fn prefixed(columns: &str, prefix: &str) -> String {
    columns
        .split(',')
        .map(|column| format!("{prefix}{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Claims the given planned sends whatever their due instant.
pub(super) async fn claim_keys(
    c: &mut Object,
    claimant: &Claimant,
    lease: f64,
    keys: &[String],
    now: Timestamp,
) -> Result<Vec<Entry>, DbError> {
    let tx = c.transaction().await?;
    renew_in(&tx, claimant, lease).await?;
    let statement = tx
        .prepare(&format!(
            "UPDATE sends SET state = 'sending', attempts = attempts + 1, updated_at = $1, claimed_by = $3,
                    lease_until = now() + make_interval(secs => $4)
             WHERE key = $2 AND state = 'planned' RETURNING {COLUMNS}"
        ))
        .await?;
    let mut claimed = Vec::new();
    for key in keys {
        if let Some(row) = tx
            .query_opt(&statement, &[&secs(now), key, &claimant.as_str(), &lease])
            .await?
        {
            claimed.push(entry_from_row(&row)?);
        }
    }
    tx.commit().await?;
    Ok(claimed)
}

/// Renews every lease of `claimant`, in `tx`.
async fn renew_in(
    tx: &tokio_postgres::Transaction<'_>,
    claimant: &Claimant,
    lease: f64,
) -> Result<u64, DbError> {
    Ok(tx
        .execute(
            "UPDATE sends SET lease_until = now() + make_interval(secs => $2)
             WHERE state = 'sending' AND claimed_by = $1",
            &[&claimant.as_str(), &lease],
        )
        .await?)
}

/// Renews every lease of `claimant`; returns how many.
pub(super) async fn renew(c: &Object, claimant: &Claimant, lease: f64) -> Result<usize, DbError> {
    Ok(c.execute(
        "UPDATE sends SET lease_until = now() + make_interval(secs => $2)
         WHERE state = 'sending' AND claimed_by = $1",
        &[&claimant.as_str(), &lease],
    )
    .await? as usize)
}

/// Records outcomes, each only on a row still in flight under this
/// claimant's lease: a row another node has taken over keeps that node's
/// outcome. One statement for the whole batch (a burst records a group of
/// outcomes every few sends; a statement per outcome cost a round trip
/// each), whose rows go in as arrays.
pub(super) async fn record(
    c: &mut Object,
    claimant: &Claimant,
    outcomes: &[(crate::key::SendKey, Recorded)],
    now: Timestamp,
) -> Result<usize, DbError> {
    let mut columns = Outcomes::default();
    let mut seen = std::collections::HashSet::new();
    for (key, outcome) in outcomes {
        // The first outcome of a send wins, as when they are recorded one
        // after the other (the second finds the send no longer in flight).
        if seen.insert(key.as_str()) {
            columns.push(key.as_str(), outcome, now);
        }
    }
    let statement = c
        .prepare_cached(
            "WITH u AS (
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
                                      $7::bool[], $8::bigint[], $9::text[], $10::bool[])
                     AS u(key, state, reply, reason, next_attempt, sent_at, too_late, at, label, relay)),
             updated AS (
                 UPDATE sends s SET state = u.state, last_reply = COALESCE(u.reply, s.last_reply), reason = u.reason,
                        next_attempt = u.next_attempt, sent_at = COALESCE(u.sent_at, s.sent_at), updated_at = $11,
                        too_late = u.too_late, claimed_by = NULL, lease_until = NULL,
                        -- A pause: the claim counted an attempt the relay never saw.
                        attempts = CASE WHEN u.label = 'paused' THEN GREATEST(s.attempts - 1, 0) ELSE s.attempts END
                 FROM u WHERE s.key = u.key AND s.state = 'sending' AND s.claimed_by = $12
                 RETURNING s.key)
             INSERT INTO attempts (key, at, outcome, reply, relay, node)
             SELECT u.key, u.at, u.label, COALESCE(u.reply, u.reason), u.relay, $12
             FROM u JOIN updated ON updated.key = u.key
             ORDER BY u.key",
        )
        .await?;
    let recorded = c
        .execute(
            &statement,
            &[
                &columns.keys,
                &columns.states,
                &columns.replies,
                &columns.reasons,
                &columns.next_attempts,
                &columns.sent_ats,
                &columns.too_late,
                &columns.ats,
                &columns.labels,
                &columns.relay,
                &secs(now),
                &claimant.as_str(),
            ],
        )
        .await?;
    Ok(recorded as usize)
}

/// The outcomes to record, column by column (`record`'s arrays).
#[derive(Default)]
struct Outcomes<'a> {
    keys: Vec<&'a str>,
    states: Vec<&'static str>,
    replies: Vec<Option<&'a str>>,
    reasons: Vec<Option<&'a str>>,
    next_attempts: Vec<Option<i64>>,
    sent_ats: Vec<Option<i64>>,
    too_late: Vec<bool>,
    ats: Vec<i64>,
    labels: Vec<&'static str>,
    relay: Vec<bool>,
}

impl<'a> Outcomes<'a> {
    fn push(&mut self, key: &'a str, outcome: &'a Recorded, now: Timestamp) {
        let stored = outcome.stored(now);
        self.keys.push(key);
        self.states.push(stored.state.as_str());
        self.replies.push(stored.reply);
        self.reasons.push(stored.reason);
        self.next_attempts.push(stored.next_attempt.map(secs));
        self.sent_ats.push(stored.sent_at.map(secs));
        self.too_late.push(stored.too_late);
        self.ats.push(secs(stored.at));
        self.labels.push(stored.label);
        self.relay.push(outcome.reached_relay());
    }
}

/// The earliest instant a planned send may go, or a lease in flight ends
/// (its send may then be taken over: the node that holds it may be gone).
/// Leases end on the database's clock, read here as seconds since the
/// epoch: herald's clock and the database's agree but for the skew of two
/// machines' clocks, and a node that wakes a moment early claims nothing
/// and sleeps again.
pub(super) async fn next_due(c: &Object) -> Result<Option<Timestamp>, DbError> {
    let row = c
        .query_one(
            &format!(
                "SELECT LEAST((SELECT MIN({GO_AT}) FROM sends WHERE state = 'planned'),
                              (SELECT CEIL(EXTRACT(EPOCH FROM MIN(lease_until)))::bigint FROM sends
                               WHERE state = 'sending'))"
            ),
            &[],
        )
        .await?;
    let secs: Option<i64> = row.try_get(0)?;
    secs.map(|secs| Timestamp::from_second(secs).map_err(|err| super::unreadable("due", err)))
        .transpose()
}

pub(super) async fn claimants_in_flight(c: &Object) -> Result<Vec<Claimant>, DbError> {
    let rows = c
        .query(
            "SELECT DISTINCT COALESCE(claimed_by, 'daemon') FROM sends WHERE state = 'sending'",
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| Ok(Claimant::from_stored(row.try_get(0)?)))
        .collect()
}

/// Puts the sends in flight of these claimants back to planned.
pub(super) async fn release_claims(
    c: &mut Object,
    claimants: &[Claimant],
    reason: &str,
    now: Timestamp,
) -> Result<usize, DbError> {
    let now = secs(now);
    let tx = c.transaction().await?;
    let mut released = 0;
    for claimant in claimants {
        // The attempts first, while the rows still say whose they are.
        tx.execute(
            "INSERT INTO attempts (key, at, outcome, reply, node)
             SELECT key, $1, 'released', $2, claimed_by FROM sends
             WHERE state = 'sending' AND COALESCE(claimed_by, 'daemon') = $3",
            &[&now, &reason, &claimant.as_str()],
        )
        .await?;
        released += tx
            .execute(
                "UPDATE sends SET state = 'planned', next_attempt = NULL, updated_at = $1, claimed_by = NULL,
                        lease_until = NULL
                 WHERE state = 'sending' AND COALESCE(claimed_by, 'daemon') = $2",
                &[&now, &claimant.as_str()],
            )
            .await?;
    }
    tx.commit().await?;
    Ok(released as usize)
}

/// Puts sends this claimant claimed but never started back to planned.
pub(super) async fn unclaim(
    c: &mut Object,
    claimant: &Claimant,
    keys: &[String],
    now: Timestamp,
) -> Result<usize, DbError> {
    let tx = c.transaction().await?;
    let statement = tx
        .prepare(
            "UPDATE sends SET state = 'planned', attempts = GREATEST(attempts - 1, 0), updated_at = $2,
                    claimed_by = NULL, lease_until = NULL
             WHERE key = $1 AND state = 'sending' AND claimed_by = $3",
        )
        .await?;
    let mut unclaimed = 0;
    for key in keys {
        unclaimed += tx
            .execute(&statement, &[key, &secs(now), &claimant.as_str()])
            .await?;
    }
    tx.commit().await?;
    Ok(unclaimed as usize)
}

/// A name for this process's hold on its node's name: random, so that a
/// restart is another incarnation.
pub(super) fn incarnation() -> String {
    let mut bytes = [0u8; 12];
    let random = ring::rand::SystemRandom::new();
    // On failure (no entropy at all) the time tells incarnations apart.
    if ring::rand::SecureRandom::fill(&random, &mut bytes).is_err() {
        use crate::clock::{Clock, SystemClock};
        bytes[..8].copy_from_slice(&SystemClock.now().as_nanosecond().to_le_bytes()[..8]);
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Takes `node`'s name for the process `me`, unless another process holds
/// it: then `Some(until when)`, on the database's clock.
pub(super) async fn take_name(
    c: &Object,
    node: &str,
    me: &str,
    lease: f64,
) -> Result<Option<String>, DbError> {
    let taken = c
        .query_opt(
            "INSERT INTO nodes (node, incarnation, seen_until) VALUES ($1, $2, now() + make_interval(secs => $3))
             ON CONFLICT (node) DO UPDATE SET incarnation = excluded.incarnation, seen_until = excluded.seen_until
             WHERE nodes.seen_until < now() OR nodes.incarnation = excluded.incarnation
             RETURNING node",
            &[&node, &me, &lease],
        )
        .await?;
    if taken.is_some() {
        return Ok(None);
    }
    let row = c
        .query_one("SELECT seen_until::text FROM nodes WHERE node = $1", &[&node])
        .await?;
    Ok(Some(row.try_get(0)?))
}

/// Keeps `node`'s name for `me` another lease; an error if another process
/// has taken it meanwhile (this one was cut off for longer than a lease):
/// then the leases are not renewed either, and this node stops sending.
pub(super) async fn keep_name(c: &Object, node: &str, me: &str, lease: f64) -> Result<(), DbError> {
    let kept = c
        .execute(
            "UPDATE nodes SET seen_until = now() + make_interval(secs => $3) WHERE node = $1 AND incarnation = $2",
            &[&node, &me, &lease],
        )
        .await?;
    if kept == 0 {
        return Err(Box::new(super::Plain(format!(
            "another herald process has taken the node name {node:?}: give each node its own name with HERALD_NODE"
        ))));
    }
    Ok(())
}

/// Lets go of a node's name held by `me`.
pub(super) async fn let_go_of_name(c: &Object, me: &str) -> Result<(), DbError> {
    c.execute(
        "UPDATE nodes SET seen_until = now() WHERE incarnation = $1",
        &[&me],
    )
    .await?;
    Ok(())
}

/// Takes or keeps the planner's role for `node`, whose configuration's
/// hash is `hash`.
///
/// - Nobody holds it, or its holder's lease expired: `node` takes it if its
///   configuration is the one that planned last (or none did); otherwise it
///   does not take it, so that a node with the planned configuration can.
/// - `node` holds it: it keeps it, and a new hash is recorded (the planner
///   reloaded an edited configuration: that is now the one that plans).
/// - Another node holds it: `node` sends only.
pub(super) async fn plan_as(c: &mut Object, node: &str, hash: &str, lease: f64) -> Result<Planning, DbError> {
    let tx = c.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT node, config_hash, lease_until < now() AS expired FROM planner FOR UPDATE",
            &[],
        )
        .await?;
    let planning = match row {
        None => {
            tx.execute(
                "INSERT INTO planner (node, term, lease_until, config_hash)
                 VALUES ($1, 1, now() + make_interval(secs => $3), $2)",
                &[&node, &hash, &lease],
            )
            .await?;
            Planning::Plans
        }
        Some(row) => {
            let holder: String = row.try_get("node")?;
            let planned_with: Option<String> = row.try_get("config_hash")?;
            let expired: bool = row.try_get("expired")?;
            let same = planned_with.as_deref().is_none_or(|planned| planned == hash);
            if holder == node {
                tx.execute(
                    "UPDATE planner SET lease_until = now() + make_interval(secs => $2), config_hash = $1",
                    &[&hash, &lease],
                )
                .await?;
                Planning::Plans
            } else if !expired {
                if same {
                    Planning::Another { node: holder }
                } else {
                    Planning::Differs {
                        node: holder,
                        planned_with: planned_with.unwrap_or_default(),
                    }
                }
            } else if same {
                tx.execute(
                    "UPDATE planner SET node = $1, term = term + 1, lease_until = now() + make_interval(secs => $3),
                            config_hash = $2",
                    &[&node, &hash, &lease],
                )
                .await?;
                Planning::Plans
            } else {
                Planning::Differs {
                    node: holder,
                    planned_with: planned_with.unwrap_or_default(),
                }
            }
        }
    };
    tx.commit().await?;
    Ok(planning)
}

/// The advisory lock under which moments at the relay are taken.
const RELAY_LOCK: i64 = 0x6865_7261_6c65;

/// The longest window of `limits`, in microseconds: how far back the
/// moments taken count.
fn window_us(limits: &Limits) -> i64 {
    if limits.per_day.is_some() {
        86_400_000_000
    } else if limits.per_hour.is_some() {
        3_600_000_000
    } else {
        60_000_000
    }
}

/// Takes the earliest moment the limits allow at or after `now`, counting
/// every moment any node took, under a lock (the budget is one).
pub(super) async fn take_turn(
    c: &mut Object,
    limits: &Limits,
    now: Timestamp,
    node: &str,
) -> Result<Timestamp, DbError> {
    let now_us = now.as_microsecond();
    let since = now_us.saturating_sub(window_us(limits));
    let tx = c.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&RELAY_LOCK])
        .await?;
    // Moments older than a day count for no limit: gone, now and then.
    tx.execute(
        "DELETE FROM relay_turns WHERE at_ms < $1",
        &[&((now_us - 86_400_000_000) / 1000)],
    )
    .await?;
    let rows = tx
        .query(
            "SELECT at_ms FROM relay_turns WHERE at_ms >= $1 ORDER BY at_ms",
            &[&(since / 1000)],
        )
        .await?;
    let taken: Vec<Timestamp> = rows
        .iter()
        .map(|row| {
            let ms: i64 = row.try_get(0)?;
            Timestamp::from_millisecond(ms).map_err(|err| super::unreadable("at_ms", err))
        })
        .collect::<Result<_, DbError>>()?;
    let gate = Gate::with_history(limits, taken);
    let at = gate.earliest(now);
    tx.execute(
        "INSERT INTO relay_turns (at_ms, node) VALUES ($1, $2)",
        &[&at.as_millisecond(), &node],
    )
    .await?;
    tx.commit().await?;
    Ok(at)
}
