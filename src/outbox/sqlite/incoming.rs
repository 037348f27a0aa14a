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

/// Suppresses `address` on `list` (no incoming message caused it), and its
/// planned sends with it; `false` when it already was.
pub(super) fn suppress_on_list(
    tx: &Transaction<'_>,
    address: &AddressKey,
    list: &str,
    reason: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    let added = tx.execute(
        "INSERT INTO suppressions (address, list, reason, since, message_id) VALUES (?1, ?2, ?3, ?4, NULL)
         ON CONFLICT (address, list) DO NOTHING",
        params![address.as_str(), list, reason, now],
    )?;
    if added > 0 {
        suppress_planned(tx, Some(address), now)?;
    }
    Ok(added > 0)
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
mod tests {
    use jiff::Timestamp;

    use crate::key::{AddressKey, SendKey};
    use crate::outbox::{
        Changes, Effect, IncomingRow, Outbox, Recorded, SendSpec, SqliteOutbox, State, Taken,
    };

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    /// A reminder to `name`@example.org on `list`, of an event of its own.
    fn spec(name: &str, list: &str, lead: &str, due: i64) -> SendSpec {
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

    fn outbox_with(specs: Vec<SendSpec>) -> (tempfile::TempDir, SqliteOutbox) {
        let dir = tempfile::tempdir().unwrap();
        let outbox = SqliteOutbox::open(dir.path()).unwrap();
        let changes = Changes {
            insert: specs,
            ..Changes::default()
        };
        outbox.apply(&changes, at(0)).unwrap();
        (dir, outbox)
    }

    fn states(outbox: &SqliteOutbox) -> Vec<(String, State)> {
        let mut states: Vec<_> = outbox
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| (e.spec.key.to_string(), e.state))
            .collect();
        states.sort_by(|a, b| a.0.cmp(&b.0));
        states
    }

    #[test]
    fn a_send_is_found_by_its_token() {
        let (_dir, outbox) = outbox_with(vec![spec("a", "l", "1d", 100), spec("b", "l", "1d", 100)]);
        let key = spec("b", "l", "1d", 100).key;
        let found = outbox.entry_by_token(&key.token()).unwrap().unwrap();
        assert_eq!(found.spec.key, key);
        assert_eq!(outbox.entry_by_token("0123456789abcdef01234567").unwrap(), None);
    }

    #[test]
    fn a_permanent_bounce_suppresses_every_planned_send_to_the_address_once() {
        let (_dir, outbox) = outbox_with(vec![
            spec("a", "l", "1d", 100),
            spec("a", "m", "7d", 200),
            spec("b", "l", "1d", 100),
        ]);
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
            insert: vec![spec("a", "l", "2h", 300)],
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

    #[test]
    fn an_unsubscribe_suppresses_one_list_only_and_lifting_plans_the_sends_to_come_again() {
        let (_dir, outbox) = outbox_with(vec![
            spec("a", "l", "1d", 100),
            spec("a", "m", "7d", 200),
            spec("a", "l", "7d", 20),
        ]);
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
            states(&outbox),
            vec![
                (spec("a", "l", "1d", 0).key.to_string(), State::Suppressed),
                (spec("a", "l", "7d", 0).key.to_string(), State::Suppressed),
                (spec("a", "m", "7d", 0).key.to_string(), State::Planned),
            ]
        );
        let lifted = outbox.lift_suppressions(&address, at(50)).unwrap();
        // The send due at 20 is in the past at 50: it stays suppressed.
        assert_eq!((lifted.suppressions, lifted.revived), (1, 1));
        assert!(outbox.suppressions().unwrap().is_empty());
        assert_eq!(outbox.counts().unwrap().suppressed, 1);
    }

    #[test]
    fn a_reader_s_unsubscribe_suppresses_one_list_once_and_lifting_it_plans_that_list_again() {
        let (_dir, outbox) = outbox_with(vec![
            spec("a", "l", "1d", 100),
            spec("a", "m", "7d", 200),
            spec("a", "l", "7d", 20),
            spec("b", "l", "1d", 100),
        ]);
        let a = AddressKey::of("A@example.org");
        let reason = "unsubscribed by the link in a message";
        assert!(outbox.suppress(&a, "l", reason, at(10)).unwrap());
        assert_eq!(
            states(&outbox),
            vec![
                (spec("a", "l", "1d", 0).key.to_string(), State::Suppressed),
                (spec("b", "l", "1d", 0).key.to_string(), State::Planned),
                (spec("a", "l", "7d", 0).key.to_string(), State::Suppressed),
                (spec("a", "m", "7d", 0).key.to_string(), State::Planned),
            ]
        );
        let suppressions = outbox.suppressions().unwrap();
        assert_eq!(suppressions.len(), 1);
        assert_eq!(suppressions[0].list.as_deref(), Some("l"));
        assert_eq!(
            (suppressions[0].reason.as_str(), suppressions[0].since),
            (reason, at(10))
        );
        assert_eq!(suppressions[0].message_id, None);
        // Again: nothing new, and the first date stays.
        assert!(!outbox.suppress(&a, "l", "again", at(30)).unwrap());
        assert_eq!(outbox.suppressions().unwrap(), suppressions);
        // A send planned later on the list is suppressed as it is planned.
        let changes = Changes {
            insert: vec![spec("a", "l", "2h", 300)],
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

    #[test]
    fn a_suppression_of_every_list_covers_an_unsubscribe_and_outlives_a_list_lifted() {
        let (_dir, outbox) = outbox_with(vec![spec("a", "l", "1d", 100), spec("a", "m", "1d", 100)]);
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

    #[test]
    fn temporary_failures_suppress_at_the_threshold_within_the_period() {
        let (_dir, outbox) = outbox_with(vec![spec("a", "l", "1d", 1_000_000)]);
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

    #[test]
    fn only_an_address_herald_handed_to_the_relay_was_sent_to() {
        let (_dir, outbox) = outbox_with(vec![spec("a", "l", "1d", 100), spec("b", "l", "1d", 100)]);
        let a = AddressKey::of("a@example.org");
        assert!(!outbox.has_sent_to(&a).unwrap());
        outbox.claim_due(at(100), 1).unwrap();
        let sent = Recorded::Sent {
            reply: "250 ok".to_owned(),
            left_at: None,
        };
        outbox
            .record(&[(spec("a", "l", "1d", 100).key, sent)], at(101))
            .unwrap();
        assert!(outbox.has_sent_to(&a).unwrap());
        assert!(!outbox.has_sent_to(&AddressKey::of("b@example.org")).unwrap());
        assert!(!outbox.has_sent_to(&AddressKey::of("c@example.org")).unwrap());
        let settled = outbox.settled_since(at(100)).unwrap();
        assert_eq!(settled.len(), 1);
    }
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
