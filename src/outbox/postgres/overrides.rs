//! Readers' overrides and their requests for the operator, in PostgreSQL.

use deadpool_postgres::Object;
use jiff::Timestamp;

use super::{DbError, instant, maybe_instant, secs};
use crate::key::AddressKey;
use crate::outbox::{Asked, NewRequest, Override, Request};

const OVERRIDE_COLUMNS: &str = "address, language, zone, since";

fn override_from_row(row: &tokio_postgres::Row) -> Result<Override, DbError> {
    let address: String = row.try_get("address")?;
    Ok(Override {
        address: AddressKey::of(&address),
        language: row.try_get("language")?,
        zone: row.try_get("zone")?,
        since: instant(row, "since")?,
    })
}

pub(super) async fn all(c: &Object) -> Result<Vec<Override>, DbError> {
    let rows = c
        .query(
            &format!("SELECT {OVERRIDE_COLUMNS} FROM overrides ORDER BY address COLLATE \"C\""),
            &[],
        )
        .await?;
    rows.iter().map(override_from_row).collect()
}

pub(super) async fn of(c: &Object, address: &AddressKey) -> Result<Option<Override>, DbError> {
    let row = c
        .query_opt(
            &format!("SELECT {OVERRIDE_COLUMNS} FROM overrides WHERE address = $1"),
            &[&address.as_str()],
        )
        .await?;
    row.as_ref().map(override_from_row).transpose()
}

/// Records a reader's choice, or removes their override when it
/// overrides nothing (one statement either way).
pub(super) async fn set(c: &Object, choice: &Override) -> Result<(), DbError> {
    if choice.is_empty() {
        c.execute(
            "DELETE FROM overrides WHERE address = $1",
            &[&choice.address.as_str()],
        )
        .await?;
    } else {
        c.execute(
            "INSERT INTO overrides (address, language, zone, since) VALUES ($1, $2, $3, $4)
             ON CONFLICT (address) DO UPDATE SET language = excluded.language, zone = excluded.zone,
                                                 since = excluded.since",
            &[
                &choice.address.as_str(),
                &choice.language,
                &choice.zone,
                &secs(choice.since),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Removes the overrides of `addresses`; returns how many there were (an
/// address named twice counts once, as SQLite's one delete per address).
pub(super) async fn remove(c: &Object, addresses: &[AddressKey]) -> Result<usize, DbError> {
    let addresses: Vec<&str> = addresses.iter().map(AddressKey::as_str).collect();
    let removed = c
        .execute("DELETE FROM overrides WHERE address = ANY($1)", &[&addresses])
        .await?;
    Ok(removed as usize)
}

const REQUEST_COLUMNS: &str = "id, sender, list, successor_name, successor_email, asked, settled";

fn request_from_row(row: &tokio_postgres::Row) -> Result<Request, DbError> {
    let sender: String = row.try_get("sender")?;
    Ok(Request {
        id: row.try_get("id")?,
        from: AddressKey::of(&sender),
        list: row.try_get("list")?,
        successor_name: row.try_get("successor_name")?,
        successor_email: row.try_get("successor_email")?,
        asked: instant(row, "asked")?,
        settled: maybe_instant(row, "settled")?,
    })
}

pub(super) async fn add_request(
    c: &mut Object,
    request: &NewRequest,
    now: Timestamp,
) -> Result<Asked, DbError> {
    // The same reader naming the same successor again (a form submitted
    // twice) is the same request; the successor's address is compared as
    // addresses are (`AddressKey`), the name as typed, trimmed.
    let name = request.successor_name.trim();
    let email = request.successor_email.trim();
    let tx = c.transaction().await?;
    // The look and the insert in one go, as SQLite's write lock makes
    // them: two submissions at once (on two nodes) make one request.
    tx.batch_execute("LOCK TABLE requests IN SHARE ROW EXCLUSIVE MODE")
        .await?;
    // SQLite's lower() folds ASCII letters only; so does this.
    let open = tx
        .query_opt(
            "SELECT id FROM requests WHERE settled IS NULL AND sender = $1 AND list IS NOT DISTINCT FROM $2::text
             AND successor_name = $3
             AND translate(successor_email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') = $4
             ORDER BY id LIMIT 1",
            &[
                &request.from.as_str(),
                &request.list,
                &name,
                &AddressKey::of(email).as_str(),
            ],
        )
        .await?;
    let asked = match open {
        Some(row) => Asked {
            id: row.try_get("id")?,
            new: false,
        },
        None => {
            let row = tx
                .query_one(
                    "INSERT INTO requests (sender, list, successor_name, successor_email, asked)
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    &[&request.from.as_str(), &request.list, &name, &email, &secs(now)],
                )
                .await?;
            Asked {
                id: row.try_get("id")?,
                new: true,
            }
        }
    };
    tx.commit().await?;
    Ok(asked)
}

pub(super) async fn requests(c: &Object, open_only: bool) -> Result<Vec<Request>, DbError> {
    let filter = if open_only { "WHERE settled IS NULL" } else { "" };
    let rows = c
        .query(
            &format!("SELECT {REQUEST_COLUMNS} FROM requests {filter} ORDER BY asked, id"),
            &[],
        )
        .await?;
    rows.iter().map(request_from_row).collect()
}

/// Settles an open request; `false` when there is none of that id, or it
/// was settled already.
pub(super) async fn settle(c: &Object, id: i64, now: Timestamp) -> Result<bool, DbError> {
    let changed = c
        .execute(
            "UPDATE requests SET settled = $2 WHERE id = $1 AND settled IS NULL",
            &[&id, &secs(now)],
        )
        .await?;
    Ok(changed == 1)
}
