//! The SQLite side of the process's mailbox: incoming messages, the
//! suppressions they cause, and the temporary failures counted against an
//! address (`outbox::incoming` has the types).

use rusqlite::{Connection, Transaction, params};

use super::{from_secs, instant, unreadable};
use crate::key::{AddressKey, SendKey};
use crate::outbox::{Effect, IncomingRow, Lifted, Suppression, Taken};

/// A send's `list` for a suppression of every list.
const EVERY_LIST: &str = "";

pub(super) fn has_sent_to(c: &Connection, address: &AddressKey) -> rusqlite::Result<bool> {
    c.query_row(
        "SELECT EXISTS (SELECT 1 FROM sends WHERE address = ?1
                        AND (state IN ('sent', 'failed') OR sent_at IS NOT NULL OR (state = 'planned' AND attempts > 0)))",
        [address.as_str()],
        |row| row.get(0),
    )
}

/// Records `row` and applies `effect`, unless a message with its
/// Message-ID is recorded already.
pub(super) fn take(
    tx: &Transaction<'_>,
    row: &IncomingRow,
    effect: &Effect,
    now: i64,
) -> rusqlite::Result<Taken> {
    let inserted = tx.execute(
        "INSERT INTO incoming (message_id, received_at, source, kind, addresses, permanent, status, diagnostic,
                               send_key, sender, subject, outcome, needs_human)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (message_id) DO NOTHING",
        params![
            row.message_id,
            row.received_at.as_second(),
            row.source,
            row.kind,
            row.addresses.join("\n"),
            row.permanent,
            row.status,
            row.diagnostic,
            row.send.as_ref().map(SendKey::as_str),
            row.from,
            row.subject,
            row.outcome,
            row.needs_human,
        ],
    )?;
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
                since: from_secs(now).map_err(|err| unreadable(0, err))?,
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
                "INSERT INTO failures (address, at, message_id) VALUES (?1, ?2, ?3)",
                params![address.as_str(), now, row.message_id],
            )?;
            let count: u32 = tx.query_row(
                "SELECT COUNT(*) FROM failures WHERE address = ?1 AND at >= ?2",
                params![address.as_str(), since.as_second()],
                |row| row.get(0),
            )?;
            let suppression = (count >= *threshold).then(|| Suppression {
                address: address.clone(),
                list: None,
                reason: format!("{count} temporary failures since {since}, the last: {reason}"),
                since: from_secs(now).unwrap_or(*since),
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
    let added = tx.execute(
        "INSERT INTO suppressions (address, list, reason, since, message_id) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (address, list) DO NOTHING",
        params![
            suppression.address.as_str(),
            suppression.list.as_deref().unwrap_or(EVERY_LIST),
            suppression.reason,
            now,
            suppression.message_id,
        ],
    )?;
    let sends = suppress_planned(tx, Some(&suppression.address), now)?;
    Ok(Taken::Recorded {
        suppressed: (added > 0).then_some(suppression),
        sends,
        failures,
    })
}

/// Suppresses the planned sends of `address` (or of every address) that a
/// suppression covers, each with its suppression's reason and date.
pub(crate) fn suppress_planned(
    tx: &Transaction<'_>,
    address: Option<&AddressKey>,
    now: i64,
) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "UPDATE sends SET state = 'suppressed', next_attempt = NULL, release_at = NULL, updated_at = ?2,
                reason = (SELECT 'suppressed since ' || date(s.since, 'unixepoch') || ': ' || s.reason
                          FROM suppressions s WHERE s.address = sends.address AND s.list IN ('', sends.list)
                          ORDER BY s.list LIMIT 1)
         WHERE state = 'planned' AND address IN (SELECT address FROM suppressions WHERE ?1 IS NULL OR address = ?1)
           AND EXISTS (SELECT 1 FROM suppressions s WHERE s.address = sends.address AND s.list IN ('', sends.list))",
    )?
    .execute(params![address.map(AddressKey::as_str), now])
}

pub(super) fn lift(tx: &Transaction<'_>, address: &AddressKey, now: i64) -> rusqlite::Result<Lifted> {
    let suppressions = tx.execute("DELETE FROM suppressions WHERE address = ?1", [address.as_str()])?;
    // The count starts again: the operator says the address works now.
    tx.execute("DELETE FROM failures WHERE address = ?1", [address.as_str()])?;
    tx.execute(
        "INSERT INTO attempts (key, at, outcome, reply)
         SELECT key, ?2, 'revived', 'the suppression of its recipient was lifted' FROM sends
         WHERE address = ?1 AND state = 'suppressed' AND due >= ?2",
        params![address.as_str(), now],
    )?;
    let revived = tx.execute(
        "UPDATE sends SET state = 'planned', reason = NULL, next_attempt = NULL, updated_at = ?2
         WHERE address = ?1 AND state = 'suppressed' AND due >= ?2",
        params![address.as_str(), now],
    )?;
    Ok(Lifted {
        suppressions,
        revived,
    })
}

/// Whether `address` is suppressed on `list`, by a suppression of that
/// list or of every list.
pub(super) fn is_suppressed(c: &Connection, address: &AddressKey, list: &str) -> rusqlite::Result<bool> {
    c.prepare_cached("SELECT EXISTS (SELECT 1 FROM suppressions WHERE address = ?1 AND list IN (?2, ?3))")?
        .query_row(params![address.as_str(), list, EVERY_LIST], |row| row.get(0))
}

/// Suppresses `address` on `list` at a reader's own request (through
/// their link, not by mail), and its planned sends with it; `false` when
/// it already was. The request is recorded with the incoming messages, as
/// one by mail is, so that the operator's digest counts it among the
/// unsubscribes; the suppression names that record.
pub(super) fn suppress_on_list(
    tx: &Transaction<'_>,
    address: &AddressKey,
    list: &str,
    reason: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    // No Message-ID: the request is named by what it did and when (one
    // address is suppressed on one list once at a time).
    let request = format!("link/{list}/{}/{now}", address.as_str());
    let added = tx.execute(
        "INSERT INTO suppressions (address, list, reason, since, message_id) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (address, list) DO NOTHING",
        params![address.as_str(), list, reason, now, request],
    )?;
    if added == 0 {
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO incoming (message_id, received_at, source, kind, addresses, send_key, sender, subject, outcome,
                               needs_human)
         VALUES (?1, ?2, 'web', 'unsubscribe', ?3, NULL, NULL, NULL, ?4, 0)
         ON CONFLICT (message_id) DO NOTHING",
        params![
            request,
            now,
            address.as_str(),
            format!("unsubscribed {} from the list {list} ({reason})", address.as_str()),
        ],
    )?;
    suppress_planned(tx, Some(address), now)?;
    Ok(true)
}

/// Lifts the suppression of `address` on `list` only, and plans again the
/// sends on that list still to come that no suppression of every list
/// holds back.
pub(super) fn lift_on_list(
    tx: &Transaction<'_>,
    address: &AddressKey,
    list: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    // A list id is never empty: the empty list is every list's row.
    if list == EVERY_LIST {
        return Ok(false);
    }
    let lifted = tx.execute(
        "DELETE FROM suppressions WHERE address = ?1 AND list = ?2",
        params![address.as_str(), list],
    )?;
    if lifted == 0 {
        return Ok(false);
    }
    let revivable = "address = ?1 AND list = ?2 AND state = 'suppressed' AND due >= ?3
                     AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.address = ?1 AND s.list = ?4)";
    tx.execute(
        &format!(
            "INSERT INTO attempts (key, at, outcome, reply)
             SELECT key, ?3, 'revived', 'its recipient chose the list again' FROM sends WHERE {revivable}"
        ),
        params![address.as_str(), list, now, EVERY_LIST],
    )?;
    tx.execute(
        &format!(
            "UPDATE sends SET state = 'planned', reason = NULL, next_attempt = NULL, updated_at = ?3 WHERE {revivable}"
        ),
        params![address.as_str(), list, now, EVERY_LIST],
    )?;
    Ok(true)
}

pub(super) fn suppressions(c: &mut Connection) -> rusqlite::Result<Vec<Suppression>> {
    let mut statement = c.prepare(
        "SELECT address, list, reason, since, message_id FROM suppressions ORDER BY address, list",
    )?;
    let rows = statement.query_map([], |row| {
        let list: String = row.get(1)?;
        Ok(Suppression {
            address: AddressKey::of(&row.get::<_, String>(0)?),
            list: (list != EVERY_LIST).then_some(list),
            reason: row.get(2)?,
            since: instant(row, 3)?,
            message_id: row.get(4)?,
        })
    })?;
    rows.collect()
}

pub(super) fn since(c: &mut Connection, since: i64) -> rusqlite::Result<Vec<IncomingRow>> {
    let mut statement = c.prepare(
        "SELECT message_id, received_at, source, kind, addresses, permanent, status, diagnostic, send_key, sender,
                subject, outcome, needs_human
         FROM incoming WHERE received_at >= ?1 ORDER BY received_at, rowid",
    )?;
    let rows = statement.query_map([since], |row| {
        let addresses: String = row.get(4)?;
        let send = row
            .get::<_, Option<String>>(8)?
            .map(|key| SendKey::parse(&key).map_err(|err| unreadable(8, err)))
            .transpose()?;
        Ok(IncomingRow {
            message_id: row.get(0)?,
            received_at: instant(row, 1)?,
            source: row.get(2)?,
            kind: row.get(3)?,
            addresses: addresses.lines().map(str::to_owned).collect(),
            permanent: row.get(5)?,
            status: row.get(6)?,
            diagnostic: row.get(7)?,
            send,
            from: row.get(9)?,
            subject: row.get(10)?,
            outcome: row.get(11)?,
            needs_human: row.get(12)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod migration {
    use rusqlite::Connection;

    use crate::key::{AddressKey, SendKey};
    use crate::outbox::sqlite::MIGRATIONS;
    use crate::outbox::{Outbox, SqliteOutbox};

    #[test]
    fn an_outbox_of_version_6_gets_each_send_s_address_and_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SqliteOutbox::FILE);
        let key = SendKey::letter("circular", &AddressKey::of("Ana@Example.org"));
        {
            let connection = Connection::open(&path).unwrap();
            for migration in &MIGRATIONS[..6] {
                connection.execute_batch(migration).unwrap();
            }
            connection.execute_batch("PRAGMA user_version = 6").unwrap();
            connection
                .execute(
                    "INSERT INTO sends (key, kind, subject, recipient, list, language, template, due, zone, state,
                                        created_at, updated_at)
                     VALUES (?1, 'letter', 'circular', 'Ana@Example.org', 'l', 'en', 'letter', 100, 'UTC', 'sent', 0, 0)",
                    [key.as_str()],
                )
                .unwrap();
        }
        let outbox = SqliteOutbox::open(dir.path()).unwrap();
        assert_eq!(
            outbox.entry_by_token(&key.token()).unwrap().unwrap().spec.key,
            key
        );
        assert!(outbox.has_sent_to(&AddressKey::of("ana@example.org")).unwrap());
    }
}
