//! The SQLite side of readers' choices: overrides and requests for the
//! operator (`outbox::overrides` has the types).

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{instant, maybe_instant};
use crate::key::AddressKey;
use crate::outbox::{Asked, NewRequest, Override, Request};

const OVERRIDE_COLUMNS: &str = "address, language, zone, since";

fn override_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Override> {
    Ok(Override {
        address: AddressKey::of(&row.get::<_, String>(0)?),
        language: row.get(1)?,
        zone: row.get(2)?,
        since: instant(row, 3)?,
    })
}

pub(super) fn all(c: &Connection) -> rusqlite::Result<Vec<Override>> {
    let mut statement = c.prepare(&format!(
        "SELECT {OVERRIDE_COLUMNS} FROM overrides ORDER BY address"
    ))?;
    let rows = statement.query_map([], override_from_row)?;
    rows.collect()
}

pub(super) fn of(c: &Connection, address: &AddressKey) -> rusqlite::Result<Option<Override>> {
    c.query_row(
        &format!("SELECT {OVERRIDE_COLUMNS} FROM overrides WHERE address = ?1"),
        [address.as_str()],
        override_from_row,
    )
    .optional()
}

pub(super) fn set(tx: &Transaction<'_>, choice: &Override, since: i64) -> rusqlite::Result<()> {
    if choice.is_empty() {
        tx.execute(
            "DELETE FROM overrides WHERE address = ?1",
            [choice.address.as_str()],
        )?;
    } else {
        tx.execute(
            "INSERT INTO overrides (address, language, zone, since) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (address) DO UPDATE SET language = excluded.language, zone = excluded.zone,
                                                 since = excluded.since",
            params![choice.address.as_str(), choice.language, choice.zone, since],
        )?;
    }
    Ok(())
}

pub(super) fn remove(tx: &Transaction<'_>, addresses: &[AddressKey]) -> rusqlite::Result<usize> {
    let mut statement = tx.prepare_cached("DELETE FROM overrides WHERE address = ?1")?;
    let mut removed = 0;
    for address in addresses {
        removed += statement.execute([address.as_str()])?;
    }
    Ok(removed)
}

const REQUEST_COLUMNS: &str = "id, sender, list, successor_name, successor_email, asked, settled";

fn request_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Request> {
    Ok(Request {
        id: row.get(0)?,
        from: AddressKey::of(&row.get::<_, String>(1)?),
        list: row.get(2)?,
        successor_name: row.get(3)?,
        successor_email: row.get(4)?,
        asked: instant(row, 5)?,
        settled: maybe_instant(row, 6)?,
    })
}

pub(super) fn add_request(tx: &Transaction<'_>, request: &NewRequest, now: i64) -> rusqlite::Result<Asked> {
    // The same reader naming the same successor again (a form submitted
    // twice) is the same request; the successor's address is compared as
    // addresses are (`AddressKey`), the name as typed, trimmed.
    let name = request.successor_name.trim();
    let email = request.successor_email.trim();
    let open: Option<i64> = tx
        .query_row(
            "SELECT id FROM requests WHERE settled IS NULL AND sender = ?1 AND list IS ?2
             AND successor_name = ?3 AND lower(successor_email) = ?4 ORDER BY id LIMIT 1",
            params![
                request.from.as_str(),
                request.list,
                name,
                AddressKey::of(email).as_str()
            ],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(id) = open {
        return Ok(Asked { id, new: false });
    }
    tx.execute(
        "INSERT INTO requests (sender, list, successor_name, successor_email, asked) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![request.from.as_str(), request.list, name, email, now],
    )?;
    Ok(Asked {
        id: tx.last_insert_rowid(),
        new: true,
    })
}

pub(super) fn requests(c: &Connection, open_only: bool) -> rusqlite::Result<Vec<Request>> {
    let filter = if open_only { "WHERE settled IS NULL" } else { "" };
    let mut statement = c.prepare(&format!(
        "SELECT {REQUEST_COLUMNS} FROM requests {filter} ORDER BY asked, id"
    ))?;
    let rows = statement.query_map([], request_from_row)?;
    rows.collect()
}

pub(super) fn settle(tx: &Transaction<'_>, id: i64, now: i64) -> rusqlite::Result<bool> {
    let changed = tx.execute(
        "UPDATE requests SET settled = ?2 WHERE id = ?1 AND settled IS NULL",
        params![id, now],
    )?;
    Ok(changed == 1)
}
