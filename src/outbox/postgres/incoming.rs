//! The PostgreSQL side of the process's mailbox: incoming messages, the
//! suppressions they cause, and the temporary failures counted against an
//! address (`outbox::incoming` has the types).
//!
//! SQLite runs each of these writes alone (an immediate transaction takes
//! the file's write lock); here they run under PostgreSQL's read committed,
//! so those that read what another may be writing (the failures counted,
//! the suppressions a send falls under) first take one advisory lock,
//! [`lock_suppressions`], before they write anything.

use deadpool_postgres::Object;
use jiff::Timestamp;
use tokio_postgres::Transaction;

use super::{DbError, instant, secs, unreadable};
use crate::key::{AddressKey, SendKey};
use crate::outbox::{Effect, IncomingRow, Lifted, Suppression, Taken};

/// A send's `list` for a suppression of every list.
const EVERY_LIST: &str = "";

/// The advisory lock (in the two-key space, apart from the one-key locks
/// of the migrations and the relay) under which suppressions and failures
/// are written: "hera", "supp" in ASCII.
const SUPPRESSIONS_LOCK: (i32, i32) = (0x6865_7261, 0x7375_7070);

/// Takes the suppressions' lock for the rest of `tx`: writers of
/// suppressions and failures run one at a time, as on SQLite. Taken before
/// the transaction writes anything, so that no two transactions wait on
/// each other's rows and this lock at once.
pub(super) async fn lock_suppressions(tx: &Transaction<'_>) -> Result<(), DbError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&SUPPRESSIONS_LOCK.0, &SUPPRESSIONS_LOCK.1],
    )
    .await?;
    Ok(())
}

pub(super) async fn has_sent_to(c: &Object, address: &AddressKey) -> Result<bool, DbError> {
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM sends WHERE address = $1
                            AND (state IN ('sent', 'failed') OR sent_at IS NOT NULL OR (state = 'planned' AND attempts > 0)))",
            &[&address.as_str()],
        )
        .await?;
    Ok(row.try_get(0)?)
}

pub(super) async fn seen(c: &Object, message_id: &str) -> Result<bool, DbError> {
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM incoming WHERE message_id = $1)",
            &[&message_id],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// Records `row` and applies `effect`, unless a message with its
/// Message-ID is recorded already.
pub(super) async fn take(
    c: &mut Object,
    row: &IncomingRow,
    effect: &Effect,
    now: Timestamp,
) -> Result<Taken, DbError> {
    let tx = c.transaction().await?;
    if !matches!(effect, Effect::Nothing) {
        lock_suppressions(&tx).await?;
    }
    let taken = take_in(&tx, row, effect, now).await?;
    tx.commit().await?;
    Ok(taken)
}

async fn take_in(
    tx: &Transaction<'_>,
    row: &IncomingRow,
    effect: &Effect,
    now: Timestamp,
) -> Result<Taken, DbError> {
    let now_secs = secs(now);
    let inserted = tx
        .execute(
            "INSERT INTO incoming (message_id, received_at, source, kind, addresses, permanent, status, diagnostic,
                                   send_key, sender, subject, outcome, needs_human)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (message_id) DO NOTHING",
            &[
                &row.message_id,
                &secs(row.received_at),
                &row.source,
                &row.kind,
                &row.addresses.join("\n"),
                &row.permanent,
                &row.status,
                &row.diagnostic,
                &row.send.as_ref().map(SendKey::as_str),
                &row.from,
                &row.subject,
                &row.outcome,
                &row.needs_human,
            ],
        )
        .await?;
    if inserted == 0 {
        return Ok(Taken::Seen);
    }
    let (suppression, failures) = match effect {
        Effect::Nothing => (None, None),
        Effect::Suppress {
            address,
            list,
            reason,
        } => (
            Some(Suppression {
                address: address.clone(),
                list: list.clone(),
                reason: reason.clone(),
                since: now,
                message_id: Some(row.message_id.clone()),
            }),
            None,
        ),
        Effect::CountFailure {
            address,
            threshold,
            since,
            reason,
        } => {
            tx.execute(
                "INSERT INTO failures (address, at, message_id) VALUES ($1, $2, $3)",
                &[&address.as_str(), &now_secs, &row.message_id],
            )
            .await?;
            let count: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM failures WHERE address = $1 AND at >= $2",
                    &[&address.as_str(), &secs(*since)],
                )
                .await?
                .try_get(0)?;
            let count = u32::try_from(count).map_err(|err| unreadable("COUNT(*) of failures", err))?;
            let suppression = (count >= *threshold).then(|| Suppression {
                address: address.clone(),
                list: None,
                reason: format!("{count} temporary failures since {since}, the last: {reason}"),
                since: now,
                message_id: Some(row.message_id.clone()),
            });
            (suppression, Some(count))
        }
    };
    let Some(suppression) = suppression else {
        return Ok(Taken::Recorded {
            suppressed: None,
            sends: 0,
            failures,
        });
    };
    let added = tx
        .execute(
            "INSERT INTO suppressions (address, list, reason, since, message_id) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (address, list) DO NOTHING",
            &[
                &suppression.address.as_str(),
                &suppression.list.as_deref().unwrap_or(EVERY_LIST),
                &suppression.reason,
                &now_secs,
                &suppression.message_id,
            ],
        )
        .await?;
    let sends = suppress_planned(tx, Some(suppression.address.as_str()), now_secs).await?;
    Ok(Taken::Recorded {
        suppressed: (added > 0).then_some(suppression),
        sends,
        failures,
    })
}

pub(super) async fn since(c: &Object, since: Timestamp) -> Result<Vec<IncomingRow>, DbError> {
    // SQLite breaks ties (a batch read at one instant) by rowid, the order
    // the rows were written in; `seq` is that order here (not the rows'
    // place in the heap: each connection fills a page of its own).
    let rows = c
        .query(
            "SELECT message_id, received_at, source, kind, addresses, permanent, status, diagnostic, send_key, sender,
                    subject, outcome, needs_human
             FROM incoming WHERE received_at >= $1 ORDER BY received_at, seq",
            &[&secs(since)],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let addresses: String = row.try_get("addresses")?;
            let send = row
                .try_get::<_, Option<String>>("send_key")?
                .map(|key| SendKey::parse(&key).map_err(|err| unreadable("send_key", err)))
                .transpose()?;
            Ok(IncomingRow {
                message_id: row.try_get("message_id")?,
                received_at: instant(row, "received_at")?,
                source: row.try_get("source")?,
                kind: row.try_get("kind")?,
                addresses: addresses.lines().map(str::to_owned).collect(),
                permanent: row.try_get("permanent")?,
                status: row.try_get("status")?,
                diagnostic: row.try_get("diagnostic")?,
                send,
                from: row.try_get("sender")?,
                subject: row.try_get("subject")?,
                outcome: row.try_get("outcome")?,
                needs_human: row.try_get("needs_human")?,
            })
        })
        .collect()
}

pub(super) async fn suppressions(c: &Object) -> Result<Vec<Suppression>, DbError> {
    let rows = c
        .query(
            "SELECT address, list, reason, since, message_id FROM suppressions
             ORDER BY address COLLATE \"C\", list COLLATE \"C\"",
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let address: String = row.try_get("address")?;
            let list: String = row.try_get("list")?;
            Ok(Suppression {
                address: AddressKey::of(&address),
                list: (list != EVERY_LIST).then_some(list),
                reason: row.try_get("reason")?,
                since: instant(row, "since")?,
                message_id: row.try_get("message_id")?,
            })
        })
        .collect()
}

pub(super) async fn lift(c: &mut Object, address: &AddressKey, now: Timestamp) -> Result<Lifted, DbError> {
    let (address, now) = (address.as_str(), secs(now));
    let tx = c.transaction().await?;
    lock_suppressions(&tx).await?;
    let suppressions = tx
        .execute("DELETE FROM suppressions WHERE address = $1", &[&address])
        .await?;
    // The count starts again: the operator says the address works now.
    tx.execute("DELETE FROM failures WHERE address = $1", &[&address])
        .await?;
    tx.execute(
        "INSERT INTO attempts (key, at, outcome, reply)
         SELECT key, $2, 'revived', 'the suppression of its recipient was lifted' FROM sends
         WHERE address = $1 AND state = 'suppressed' AND due >= $2",
        &[&address, &now],
    )
    .await?;
    let revived = tx
        .execute(
            "UPDATE sends SET state = 'planned', reason = NULL, next_attempt = NULL, updated_at = $2
             WHERE address = $1 AND state = 'suppressed' AND due >= $2",
            &[&address, &now],
        )
        .await?;
    tx.commit().await?;
    Ok(Lifted {
        suppressions: suppressions as usize,
        revived: revived as usize,
    })
}

/// Whether `address` is suppressed on `list`, by a suppression of that
/// list or of every list.
async fn is_suppressed(c: &Object, address: &AddressKey, list: &str) -> Result<bool, DbError> {
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM suppressions WHERE address = $1 AND list IN ($2, $3))",
            &[&address.as_str(), &list, &EVERY_LIST],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// Suppresses `address` on `list` at a reader's own request (through
/// their link, not by mail), and its planned sends with it; `false` when
/// it already was. The request is recorded with the incoming messages, as
/// one by mail is, so that the operator's digest counts it among the
/// unsubscribes; the suppression names that record.
pub(super) async fn suppress_on_list(
    c: &mut Object,
    address: &AddressKey,
    list: &str,
    reason: &str,
    now: Timestamp,
) -> Result<bool, DbError> {
    // A read first: a reader's repeated click, or a mailbox provider's
    // retried POST, writes nothing.
    if is_suppressed(c, address, list).await? {
        return Ok(false);
    }
    let now = secs(now);
    let tx = c.transaction().await?;
    lock_suppressions(&tx).await?;
    // No Message-ID: the request is named by what it did and when (one
    // address is suppressed on one list once at a time).
    let request = format!("link/{list}/{}/{now}", address.as_str());
    let added = tx
        .execute(
            "INSERT INTO suppressions (address, list, reason, since, message_id) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (address, list) DO NOTHING",
            &[&address.as_str(), &list, &reason, &now, &request],
        )
        .await?;
    if added == 0 {
        tx.commit().await?;
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO incoming (message_id, received_at, source, kind, addresses, send_key, sender, subject, outcome,
                               needs_human)
         VALUES ($1, $2, 'web', 'unsubscribe', $3, NULL, NULL, NULL, $4, false)
         ON CONFLICT (message_id) DO NOTHING",
        &[
            &request,
            &now,
            &address.as_str(),
            &format!("unsubscribed {} from the list {list} ({reason})", address.as_str()),
        ],
    )
    .await?;
    suppress_planned(&tx, Some(address.as_str()), now).await?;
    tx.commit().await?;
    Ok(true)
}

/// Lifts the suppression of `address` on `list` only, and plans again the
/// sends on that list still to come that no suppression of every list
/// holds back.
pub(super) async fn lift_on_list(
    c: &mut Object,
    address: &AddressKey,
    list: &str,
    now: Timestamp,
) -> Result<bool, DbError> {
    // A list id is never empty: the empty list is every list's row.
    if list == EVERY_LIST {
        return Ok(false);
    }
    let now = secs(now);
    let tx = c.transaction().await?;
    lock_suppressions(&tx).await?;
    let lifted = tx
        .execute(
            "DELETE FROM suppressions WHERE address = $1 AND list = $2",
            &[&address.as_str(), &list],
        )
        .await?;
    if lifted == 0 {
        tx.commit().await?;
        return Ok(false);
    }
    let revivable = "address = $1 AND list = $2 AND state = 'suppressed' AND due >= $3
                     AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.address = $1 AND s.list = $4)";
    tx.execute(
        &format!(
            "INSERT INTO attempts (key, at, outcome, reply)
             SELECT key, $3, 'revived', 'its recipient chose the list again' FROM sends WHERE {revivable}"
        ),
        &[&address.as_str(), &list, &now, &EVERY_LIST],
    )
    .await?;
    tx.execute(
        &format!(
            "UPDATE sends SET state = 'planned', reason = NULL, next_attempt = NULL, updated_at = $3 WHERE {revivable}"
        ),
        &[&address.as_str(), &list, &now, &EVERY_LIST],
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Suppresses the planned sends whose recipients are suppressed (all, or
/// those of `address`), in the caller's transaction; returns how many.
/// Each takes its suppression's reason and date (UTC, as SQLite's
/// `date(since, 'unixepoch')`), the one of every list first.
pub(super) async fn suppress_planned(
    tx: &Transaction<'_>,
    address: Option<&str>,
    now: i64,
) -> Result<usize, DbError> {
    let suppressed = tx
        .execute(
            "UPDATE sends SET state = 'suppressed', next_attempt = NULL, release_at = NULL, updated_at = $2,
                    reason = (SELECT 'suppressed since ' || to_char(to_timestamp(s.since) AT TIME ZONE 'UTC', 'YYYY-MM-DD')
                                     || ': ' || s.reason
                              FROM suppressions s WHERE s.address = sends.address AND s.list IN ('', sends.list)
                              ORDER BY s.list COLLATE \"C\" LIMIT 1)
             WHERE state = 'planned'
               AND address IN (SELECT address FROM suppressions WHERE $1::text IS NULL OR address = $1::text)
               AND EXISTS (SELECT 1 FROM suppressions s WHERE s.address = sends.address AND s.list IN ('', sends.list))",
            &[&address, &now],
        )
        .await?;
    Ok(suppressed as usize)
}
