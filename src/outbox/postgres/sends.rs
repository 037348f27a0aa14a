//! The sends, their attempts, the calendar state and saved values: the
//! SQLite outbox's statements in PostgreSQL's dialect. (Claims, outcomes and
//! leases are `leases.rs`'s.)
//!
//! Text is ordered `COLLATE "C"`, byte by byte, as SQLite orders it
//! whatever the database's collation.

use deadpool_postgres::Object;
use jiff::Timestamp;

use super::{COLUMNS, DbError, entry_from_row, instant, maybe_instant, secs, unreadable};
use crate::outbox::{CalendarRow, Changes, Counts, Entry, Pace, State};

/// The `kv` entry behind `Outbox::planned_until` (Unix seconds, as text).
const PLANNED_UNTIL: &str = "planned_until";

fn entries_of(rows: &[tokio_postgres::Row]) -> Result<Vec<Entry>, DbError> {
    rows.iter().map(entry_from_row).collect()
}

pub(super) async fn entries(c: &Object) -> Result<Vec<Entry>, DbError> {
    let rows = c
        .query(
            &format!("SELECT {COLUMNS} FROM sends ORDER BY due, key COLLATE \"C\""),
            &[],
        )
        .await?;
    entries_of(&rows)
}

/// The entries with these keys, in their order (a key given twice, twice),
/// read in one statement: one snapshot, as SQLite's transaction.
pub(super) async fn entries_for(c: &Object, keys: &[String]) -> Result<Vec<Entry>, DbError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let rows = c
        .query(
            &format!(
                "SELECT {COLUMNS} FROM unnest($1::text[]) WITH ORDINALITY AS wanted (key, n)
                 JOIN sends USING (key) ORDER BY wanted.n"
            ),
            &[&keys],
        )
        .await?;
    entries_of(&rows)
}

pub(super) async fn entries_in(c: &Object, state: State) -> Result<Vec<Entry>, DbError> {
    let rows = c
        .query(
            &format!("SELECT {COLUMNS} FROM sends WHERE state = $1 ORDER BY due, key COLLATE \"C\""),
            &[&state.as_str()],
        )
        .await?;
    entries_of(&rows)
}

pub(super) async fn entries_under(c: &Object, prefix: &str) -> Result<Vec<Entry>, DbError> {
    // A range of keys: every key starting with the prefix sorts at or after
    // it and before the prefix with its last `/` raised to the next
    // character, `0` (in byte order, hence "C").
    let until = format!("{}0", prefix.strip_suffix('/').unwrap_or(prefix));
    let rows = c
        .query(
            &format!(
                "SELECT {COLUMNS} FROM sends WHERE key COLLATE \"C\" >= $1 AND key COLLATE \"C\" < $2
                 ORDER BY key COLLATE \"C\""
            ),
            &[&prefix, &until],
        )
        .await?;
    entries_of(&rows)
}

pub(super) async fn planned_until(c: &Object) -> Result<Option<Timestamp>, DbError> {
    let Some(text) = get_value(c, PLANNED_UNTIL).await? else {
        return Ok(None);
    };
    let secs: i64 = text.parse().map_err(|err| {
        unreadable(
            "value",
            format!("{text:?} for {PLANNED_UNTIL}, not a number of seconds ({err})"),
        )
    })?;
    Timestamp::from_second(secs)
        .map(Some)
        .map_err(|err| unreadable("value", format!("{text:?} for {PLANNED_UNTIL} ({err})")))
}

pub(super) async fn apply(c: &mut Object, changes: &Changes, now: Timestamp) -> Result<usize, DbError> {
    let now = secs(now);
    let tx = c.transaction().await?;
    let plans = !changes.insert.is_empty() || !changes.reschedule.is_empty() || !changes.revive.is_empty();
    if plans {
        // Before any write: a suppression taken at the same time by another
        // transaction (a bounce, a reader's click) would otherwise miss the
        // sends planned here, and this would miss it.
        super::incoming::lock_suppressions(&tx).await?;
    }
    // Each statement prepared once, before its loop: a reconcile inserts
    // thousands of rows. A send skipped as too late is inserted so
    // (SQLite inserts it, then sets `too_late`).
    if !changes.insert.is_empty() || !changes.insert_skipped.is_empty() {
        let insert = tx
            .prepare(
                "INSERT INTO sends (key, kind, subject, lead, recipient, list, language, template, due, zone, state,
                                    reason, created_at, updated_at, precedence, address, token, too_late)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14, $15, $16, $17)",
            )
            .await?;
        let planned = changes
            .insert
            .iter()
            .map(|spec| (spec, State::Planned, None, false));
        let skipped = changes
            .insert_skipped
            .iter()
            .map(|(spec, reason)| (spec, State::Skipped, Some(reason.as_str()), true));
        for (spec, state, reason, too_late) in planned.chain(skipped) {
            tx.execute(
                &insert,
                &[
                    &spec.key.as_str(),
                    &spec.key.kind().as_str(),
                    &spec.key.subject(),
                    &spec.key.lead(),
                    &spec.recipient,
                    &spec.list,
                    &spec.language,
                    &spec.template,
                    &secs(spec.due),
                    &spec.zone,
                    &state.as_str(),
                    &reason,
                    &now,
                    &i32::from(spec.key.kind().precedence()),
                    &spec.key.address(),
                    &spec.key.token(),
                    &too_late,
                ],
            )
            .await?;
        }
    }
    if !changes.revive.is_empty() {
        // The history of a send skipped as too late says why it is planned
        // again (a cancelled one had no attempt).
        let revived = tx
            .prepare(
                "INSERT INTO attempts (key, at, outcome, reply)
                 SELECT key, $2::bigint, 'revived', 'its date changed: now due at ' || $3::text || ', no longer too late'
                 FROM sends WHERE key = $1 AND state = 'skipped' AND too_late",
            )
            .await?;
        for spec in &changes.revive {
            tx.execute(&revived, &[&spec.key.as_str(), &now, &spec.due.to_string()])
                .await?;
        }
    }
    if !changes.reschedule.is_empty() || !changes.revive.is_empty() {
        let reschedule = tx
            .prepare(
                "UPDATE sends SET due = $2, zone = $3, list = $4, language = $5, template = $6, lead = $7,
                        revision = revision + 1, state = 'planned', next_attempt = NULL, release_at = NULL, reason = NULL,
                        updated_at = $8, too_late = false
                 WHERE key = $1 AND (state IN ('planned', 'cancelled') OR (state = 'skipped' AND too_late))",
            )
            .await?;
        for spec in changes.reschedule.iter().chain(&changes.revive) {
            tx.execute(
                &reschedule,
                &[
                    &spec.key.as_str(),
                    &secs(spec.due),
                    &spec.zone,
                    &spec.list,
                    &spec.language,
                    &spec.template,
                    &spec.key.lead(),
                    &now,
                ],
            )
            .await?;
        }
    }
    if !changes.calendar.is_empty() {
        let calendar = tx
            .prepare(
                "INSERT INTO calendar (event, sequence, signature, location, snapshot, previous, removed, notices, held_until, told)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (event) DO UPDATE SET sequence = excluded.sequence, signature = excluded.signature,
                    location = excluded.location, snapshot = excluded.snapshot, previous = excluded.previous,
                    removed = excluded.removed, notices = excluded.notices, held_until = excluded.held_until,
                    told = excluded.told",
            )
            .await?;
        for row in &changes.calendar {
            tx.execute(
                &calendar,
                &[
                    &row.event,
                    &i64::from(row.sequence),
                    &row.signature,
                    &row.location,
                    &row.snapshot,
                    &row.previous,
                    &row.removed,
                    &i64::from(row.notices),
                    &row.held_until.map(secs),
                    &row.told,
                ],
            )
            .await?;
        }
    }
    if !changes.cancel.is_empty() {
        let cancel = tx
            .prepare(
                "UPDATE sends SET state = 'cancelled', reason = $2, updated_at = $3 WHERE key = $1 AND state = 'planned'",
            )
            .await?;
        for (key, reason) in &changes.cancel {
            tx.execute(&cancel, &[&key.as_str(), reason, &now]).await?;
        }
    }
    // A send planned (or planned again) for a suppressed recipient is
    // suppressed at once, so that `plan` and `history` say so.
    let suppressed =
        if changes.insert.is_empty() && changes.reschedule.is_empty() && changes.revive.is_empty() {
            0
        } else {
            super::incoming::suppress_planned(&tx, None, now).await?
        };
    // In the same transaction as the sends it vouches for.
    if let Some(until) = changes.planned_until {
        tx.execute(
            "INSERT INTO kv (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            &[&PLANNED_UNTIL, &secs(until).to_string()],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(suppressed)
}

pub(super) async fn departures_since(c: &Object, since: Timestamp) -> Result<Vec<Timestamp>, DbError> {
    let rows = c
        .query(
            "SELECT at FROM attempts WHERE relay AND at >= $1 ORDER BY at",
            &[&secs(since)],
        )
        .await?;
    rows.iter().map(|row| instant(row, "at")).collect()
}

pub(super) async fn set_pace(c: &mut Object, pace: &[Pace]) -> Result<(), DbError> {
    let tx = c.transaction().await?;
    if !pace.is_empty() {
        // Only a planned row: one claimed meanwhile keeps its claim.
        let statement = tx
            .prepare("UPDATE sends SET release_at = $2, urgent_by = $3 WHERE key = $1 AND state = 'planned'")
            .await?;
        for pace in pace {
            tx.execute(
                &statement,
                &[
                    &pace.key.as_str(),
                    &pace.release_at.map(secs),
                    &pace.urgent_by.map(secs),
                ],
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn clear_releases(c: &Object) -> Result<usize, DbError> {
    let cleared = c
        .execute(
            "UPDATE sends SET release_at = NULL WHERE state = 'planned' AND release_at IS NOT NULL",
            &[],
        )
        .await?;
    Ok(cleared as usize)
}

pub(super) async fn revive_too_late(
    c: &mut Object,
    since: Timestamp,
    now: Timestamp,
) -> Result<usize, DbError> {
    let (since, now) = (secs(since), secs(now));
    let tx = c.transaction().await?;
    tx.execute(
        "INSERT INTO attempts (key, at, outcome, reply)
         SELECT key, $2::bigint, 'revived', 'the clock was set back: no longer too late' FROM sends
         WHERE state = 'skipped' AND too_late AND due >= $1",
        &[&since, &now],
    )
    .await?;
    let revived = tx
        .execute(
            "UPDATE sends SET state = 'planned', too_late = false, reason = NULL, next_attempt = NULL, updated_at = $2
             WHERE state = 'skipped' AND too_late AND due >= $1",
            &[&since, &now],
        )
        .await?;
    tx.commit().await?;
    Ok(revived as usize)
}

pub(super) async fn retry_failed(c: &Object, key: Option<&str>, now: Timestamp) -> Result<usize, DbError> {
    let retried = c
        .execute(
            "UPDATE sends SET state = 'planned', attempts = 0, next_attempt = $1, reason = NULL, updated_at = $1
             WHERE state = 'failed' AND ($2::text IS NULL OR key = $2::text)",
            &[&secs(now), &key],
        )
        .await?;
    Ok(retried as usize)
}

pub(super) async fn counts(c: &Object) -> Result<Counts, DbError> {
    let rows = c
        .query("SELECT state, COUNT(*) AS n FROM sends GROUP BY state", &[])
        .await?;
    let mut counts = Counts::default();
    for row in &rows {
        let state: String = row.try_get("state")?;
        let n: i64 = row.try_get("n")?;
        let n = n as usize;
        match State::parse(&state) {
            Some(State::Planned) => counts.planned = n,
            Some(State::Sending) => counts.sending = n,
            Some(State::Sent) => counts.sent = n,
            Some(State::Failed) => counts.failed = n,
            Some(State::Skipped) => counts.skipped = n,
            Some(State::Cancelled) => counts.cancelled = n,
            Some(State::Suppressed) => counts.suppressed = n,
            None => return Err(unreadable("state", format!("unknown state {state:?}"))),
        }
    }
    Ok(counts)
}

pub(super) async fn pending(c: &Object) -> Result<usize, DbError> {
    let row = c
        .query_one("SELECT COUNT(*) FROM sends WHERE state = 'planned'", &[])
        .await?;
    let n: i64 = row.try_get(0)?;
    Ok(n as usize)
}

pub(super) async fn suppressed_from(c: &Object, now: Timestamp) -> Result<usize, DbError> {
    let row = c
        .query_one(
            "SELECT COUNT(*) FROM sends WHERE state = 'suppressed' AND due >= $1",
            &[&secs(now)],
        )
        .await?;
    let n: i64 = row.try_get(0)?;
    Ok(n as usize)
}

/// A count stored as BIGINT that Rust keeps as `u32`; one out of range is
/// an error, as SQLite's read of it is.
fn count_u32(row: &tokio_postgres::Row, column: &str) -> Result<u32, DbError> {
    let n: i64 = row.try_get(column)?;
    u32::try_from(n).map_err(|err| unreadable(column, format!("{n} ({err})")))
}

pub(super) async fn calendar_rows(c: &Object) -> Result<Vec<CalendarRow>, DbError> {
    let rows = c
        .query(
            "SELECT event, sequence, signature, location, snapshot, previous, removed, notices, held_until, told
             FROM calendar ORDER BY event COLLATE \"C\"",
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(CalendarRow {
                event: row.try_get("event")?,
                sequence: count_u32(row, "sequence")?,
                signature: row.try_get("signature")?,
                location: row.try_get("location")?,
                snapshot: row.try_get("snapshot")?,
                previous: row.try_get("previous")?,
                removed: row.try_get("removed")?,
                notices: count_u32(row, "notices")?,
                held_until: maybe_instant(row, "held_until")?,
                told: row.try_get("told")?,
            })
        })
        .collect()
}

pub(super) async fn entry_by_token(c: &Object, token: &str) -> Result<Option<Entry>, DbError> {
    let row = c
        .query_opt(
            &format!("SELECT {COLUMNS} FROM sends WHERE token = $1"),
            &[&token],
        )
        .await?;
    row.as_ref().map(entry_from_row).transpose()
}

pub(super) async fn settled_since(c: &Object, since: Timestamp) -> Result<Vec<Entry>, DbError> {
    let rows = c
        .query(
            &format!(
                "SELECT {COLUMNS} FROM sends WHERE state IN ('sent', 'failed', 'skipped', 'suppressed') AND updated_at >= $1
                 ORDER BY updated_at, key COLLATE \"C\""
            ),
            &[&secs(since)],
        )
        .await?;
    entries_of(&rows)
}

pub(super) async fn get_value(c: &Object, name: &str) -> Result<Option<String>, DbError> {
    let row = c
        .query_opt("SELECT value FROM kv WHERE name = $1", &[&name])
        .await?;
    Ok(row.map(|row| row.try_get("value")).transpose()?)
}

pub(super) async fn set_value(c: &Object, name: &str, value: &str) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO kv (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        &[&name, &value],
    )
    .await?;
    Ok(())
}

/// The attempts of one send, oldest first: (at, outcome, reply).
pub(super) async fn attempts(
    c: &Object,
    key: &str,
) -> Result<Vec<(Timestamp, String, Option<String>)>, DbError> {
    let rows = c
        .query(
            "SELECT at, outcome, reply FROM attempts WHERE key = $1 ORDER BY id",
            &[&key],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                instant(row, "at")?,
                row.try_get("outcome")?,
                row.try_get("reply")?,
            ))
        })
        .collect()
}
