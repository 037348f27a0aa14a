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

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use crate::key::AddressKey;
    use crate::outbox::{Asked, NewRequest, Outbox, Override, SqliteOutbox};

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

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

    #[test]
    fn an_override_is_kept_replaced_and_removed_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        {
            let outbox = SqliteOutbox::open(dir.path()).unwrap();
            outbox
                .set_override(&choice("B@example.org", Some("fr"), None, 100))
                .unwrap();
            outbox
                .set_override(&choice("a@example.org", None, Some("Asia/Tokyo"), 90))
                .unwrap();
        }
        let outbox = SqliteOutbox::open(dir.path()).unwrap();
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

    #[test]
    fn removing_overrides_counts_those_there_were() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = SqliteOutbox::open(dir.path()).unwrap();
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

    #[test]
    fn the_same_open_request_is_not_recorded_twice() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = SqliteOutbox::open(dir.path()).unwrap();
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

    #[test]
    fn a_settled_request_leaves_the_open_ones_and_may_be_asked_again() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = SqliteOutbox::open(dir.path()).unwrap();
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
}
