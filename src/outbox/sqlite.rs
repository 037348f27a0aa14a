//! The outbox in an SQLite file under the state directory.
//!
//! Settings chosen for durability over speed: WAL with `synchronous=FULL`
//! (with `NORMAL` a power loss can roll back the last commits, which would
//! send those mails again), `BEGIN IMMEDIATE` for every write so two herald
//! processes on one file never deadlock on a lock upgrade, and a busy
//! timeout. Calls are synchronous and short; the daemon makes them from its
//! own task. Schema changes are numbered migrations, applied in order.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jiff::Timestamp;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

mod incoming;
mod overrides;

use super::export::{Export, LAYOUTS, Table, Value};
use crate::key::{AddressKey, KeyPrefix, SendKey};
use crate::outbox::{
    Asked, CalendarRow, Changes, Claimant, Counts, Effect, Entry, IncomingRow, Lifted, NewRequest, Outbox,
    OutboxError, Override, Pace, Recorded, Request, SendSpec, State, Suppression, Taken,
};
use crate::state;

/// The `kv` entry behind `Outbox::planned_until` (Unix seconds).
const PLANNED_UNTIL: &str = "planned_until";

/// The migrations, in order; the schema's version is their count.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the outbox itself, and a key-value table for state that must
    // survive a restart.
    "CREATE TABLE sends (
        key          TEXT PRIMARY KEY,
        kind         TEXT NOT NULL,
        subject      TEXT NOT NULL,
        lead         TEXT,
        recipient    TEXT NOT NULL,
        list         TEXT NOT NULL,
        language     TEXT NOT NULL,
        template     TEXT NOT NULL,
        due          INTEGER NOT NULL,
        zone         TEXT NOT NULL,
        revision     INTEGER NOT NULL DEFAULT 1,
        state        TEXT NOT NULL,
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER,
        last_reply   TEXT,
        reason       TEXT,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        sent_at      INTEGER
    );
    CREATE INDEX sends_by_state_due ON sends (state, due);
    CREATE TABLE attempts (
        key     TEXT NOT NULL,
        at      INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        reply   TEXT
    );
    CREATE INDEX attempts_by_key ON attempts (key);
    CREATE TABLE kv (name TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 2: what calendars know of each event, for invitation SEQUENCEs and
    // update and cancellation notices.
    "CREATE TABLE calendar (
        event     TEXT PRIMARY KEY,
        sequence  INTEGER NOT NULL,
        signature TEXT NOT NULL,
        location  TEXT,
        snapshot  TEXT NOT NULL,
        previous  TEXT,
        removed   INTEGER NOT NULL DEFAULT 0,
        notices   INTEGER NOT NULL DEFAULT 0
    );",
    // 3: the planned sends in the order they fall due (a retry at its
    // next attempt), so that finding the next due send and claiming the
    // due ones read only those, not every planned row. The expression is
    // the one `next_due` and `claim_due` use, as SQLite requires.
    "CREATE INDEX sends_by_state_effective_due ON sends (state, COALESCE(next_attempt, due), key);",
    // 4: who claimed a send in flight (`state::Claimant`), so that only its
    // claimant, or a daemon starting after it is gone, releases it (rows in
    // flight before this column were the daemon's); and which skipped sends
    // were skipped as too late, so that a clock set back revives them (the
    // reasons written before this column say so in words).
    "ALTER TABLE sends ADD COLUMN claimed_by TEXT;
    UPDATE sends SET claimed_by = 'daemon' WHERE state = 'sending';
    ALTER TABLE sends ADD COLUMN too_late INTEGER NOT NULL DEFAULT 0;
    UPDATE sends SET too_late = 1 WHERE state = 'skipped'
        AND (reason LIKE 'missed: due at %' OR reason LIKE 'due at % but planned only at %');",
    // 5: notices held for `notice_delay` after the change that caused
    // them, and what calendars knew before it, so that a change undone in
    // that time withdraws them, also across a restart.
    "ALTER TABLE calendar ADD COLUMN held_until INTEGER;
    ALTER TABLE calendar ADD COLUMN told TEXT;",
    // 6: the relay's limits. A send may be released before its due instant
    // (`release_at`, so that a burst ends on time) and is claimed in the
    // order of its urgency (`precedence` from its kind, then `urgent_by`:
    // its event's start, or its due instant when null); the claim's index
    // follows the new expression of when a send may go. Which attempts
    // reached the relay (`relay`), so that a restart, or another daemon,
    // counts what the relay has taken today (those before this column:
    // the sends). The saved token bucket that did this before is dropped.
    "ALTER TABLE sends ADD COLUMN release_at INTEGER;
    ALTER TABLE sends ADD COLUMN precedence INTEGER NOT NULL DEFAULT 2;
    ALTER TABLE sends ADD COLUMN urgent_by INTEGER;
    UPDATE sends SET precedence = CASE kind WHEN 'cancellation' THEN 0 WHEN 'update' THEN 1
                                            WHEN 'reminder' THEN 2 ELSE 3 END;
    DROP INDEX sends_by_state_effective_due;
    CREATE INDEX sends_by_state_go_at ON sends (state, COALESCE(next_attempt, release_at, due), key);
    ALTER TABLE attempts ADD COLUMN relay INTEGER NOT NULL DEFAULT 0;
    UPDATE attempts SET relay = 1 WHERE outcome = 'sent';
    CREATE INDEX attempts_at_the_relay ON attempts (at) WHERE relay = 1;
    DELETE FROM kv WHERE name = 'rate_limit';",
    // 7: the process's mailbox. Each send's recipient as its key has it
    // (`address`, for suppressions) and its token (`key::token_of`, what a
    // bounce names it by), both filled for older rows by `backfill_7`; the
    // incoming messages, once each; the suppressions; and the temporary
    // failures counted against an address.
    "ALTER TABLE sends ADD COLUMN address TEXT;
    ALTER TABLE sends ADD COLUMN token TEXT;
    CREATE TABLE incoming (
        message_id  TEXT PRIMARY KEY,
        received_at INTEGER NOT NULL,
        source      TEXT NOT NULL,
        kind        TEXT NOT NULL,
        addresses   TEXT NOT NULL,
        permanent   INTEGER,
        status      TEXT,
        diagnostic  TEXT,
        send_key    TEXT,
        sender      TEXT,
        subject     TEXT,
        outcome     TEXT NOT NULL,
        needs_human INTEGER NOT NULL
    );
    CREATE INDEX incoming_by_time ON incoming (received_at);
    CREATE TABLE suppressions (
        address    TEXT NOT NULL,
        list       TEXT NOT NULL,
        reason     TEXT NOT NULL,
        since      INTEGER NOT NULL,
        message_id TEXT,
        PRIMARY KEY (address, list)
    );
    CREATE TABLE failures (address TEXT NOT NULL, at INTEGER NOT NULL, message_id TEXT NOT NULL);
    CREATE INDEX failures_by_address ON failures (address, at);
    CREATE INDEX sends_settled ON sends (updated_at) WHERE state IN ('sent', 'failed', 'skipped', 'suppressed');",
    // 8: readers' choices. Their overrides of a focal point's language and
    // time zone (by address as `AddressKey` has it), and their requests
    // for the operator (a successor), open until settled.
    "CREATE TABLE overrides (
        address  TEXT PRIMARY KEY,
        language TEXT,
        zone     TEXT,
        since    INTEGER NOT NULL
    );
    CREATE TABLE requests (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        sender          TEXT NOT NULL,
        list            TEXT,
        successor_name  TEXT NOT NULL,
        successor_email TEXT NOT NULL,
        asked           INTEGER NOT NULL,
        settled         INTEGER
    );
    CREATE INDEX requests_open ON requests (sender) WHERE settled IS NULL;",
];

/// Fills the columns migration 7 adds for the rows already there: the
/// address and the token are computed from the key, which SQL cannot do.
/// The indexes on them are made after, in the same transaction.
fn backfill_7(connection: &Connection) -> rusqlite::Result<()> {
    let keys: Vec<String> = {
        let mut statement = connection.prepare("SELECT key FROM sends")?;
        let rows = statement.query_map([], |row| row.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut update = connection.prepare("UPDATE sends SET address = ?2, token = ?3 WHERE key = ?1")?;
    for text in keys {
        let key = SendKey::parse(&text).map_err(|err| unreadable(0, err))?;
        update.execute(params![text, key.address(), key.token()])?;
    }
    connection.execute_batch(
        "CREATE UNIQUE INDEX sends_by_token ON sends (token);
         CREATE INDEX sends_by_address ON sends (address, state);",
    )
}

/// When a planned send may go: a retry at its next attempt, else at its
/// release (early, for a burst the relay's limits spread), else when due.
/// Written once, as the index of migration 6 has it (SQLite uses an index
/// on an expression only for the same expression).
const GO_AT: &str = "COALESCE(next_attempt, release_at, due)";

const COLUMNS: &str = "key, kind, subject, lead, recipient, list, language, template, due, zone, \
                       revision, state, attempts, next_attempt, last_reply, reason, updated_at, sent_at, too_late";

/// The order a claim takes due sends in.
#[derive(Debug, Clone, Copy)]
enum ClaimOrder {
    /// When they may go, then key.
    Due,
    /// Most urgent first (`key::Urgency`), then due, then key.
    Urgency,
}

/// The SQLite outbox.
pub struct SqliteOutbox {
    path: PathBuf,
    connection: Mutex<Connection>,
    /// Whose name claims are made in.
    claimant: Claimant,
}

impl std::fmt::Debug for SqliteOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteOutbox").field("path", &self.path).finish()
    }
}

fn error(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> OutboxError {
    let context = context.into();
    move |source| OutboxError {
        context,
        source: Box::new(source),
    }
}

impl SqliteOutbox {
    /// The file name of the outbox inside the state directory.
    pub const FILE: &'static str = "outbox.sqlite3";

    /// Opens (or creates) the outbox in `state_dir`, migrating it; claims
    /// are made in the name of this process as a command (see
    /// [`SqliteOutbox::open_as`]).
    pub fn open(state_dir: &Path) -> Result<SqliteOutbox, OutboxError> {
        SqliteOutbox::open_as(state_dir, Claimant::this_command())
    }

    /// Opens (or creates) the outbox in `state_dir`, migrating it, to claim
    /// sends as `claimant`. The directory is created 0700 and the files
    /// 0600, whatever the umask (see [`crate::state`]).
    pub fn open_as(state_dir: &Path, claimant: Claimant) -> Result<SqliteOutbox, OutboxError> {
        let io_error = |context: String| {
            move |source: std::io::Error| OutboxError {
                context,
                source: Box::new(source),
            }
        };
        state::create_private_dir(state_dir).map_err(io_error(format!(
            "creating the state directory {}",
            state_dir.display()
        )))?;
        let path = state_dir.join(Self::FILE);
        // SQLite creates its database under the umask, and its -wal and
        // -shm files with the database's mode: made 0600 first, all three
        // are. Those of an older herald are made 0600 too.
        state::make_private_file(&path)
            .map_err(io_error(format!("creating the outbox {}", path.display())))?;
        for suffix in ["-wal", "-shm"] {
            let mut name = path.clone().into_os_string();
            name.push(suffix);
            let file = PathBuf::from(name);
            state::tighten_if_present(&file)
                .map_err(io_error(format!("making {} private", file.display())))?;
        }
        let context = format!("opening the outbox {}", path.display());
        let connection = Connection::open(&path).map_err(error(&context))?;
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(error(&context))?;
        connection
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(error(&context))?;
        migrate(&connection).map_err(error(format!("migrating the outbox {}", path.display())))?;
        Ok(SqliteOutbox {
            path,
            connection: Mutex::new(connection),
            claimant,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(
        &self,
        context: &str,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, OutboxError> {
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut connection).map_err(error(context))
    }

    /// Claims up to `limit` planned sends that may go at `now`, in `order`.
    fn claim(&self, now: Timestamp, limit: usize, order: ClaimOrder) -> Result<Vec<Entry>, OutboxError> {
        let now = secs(now);
        let claimant = &self.claimant;
        // By when they may go, the index's order: a claim reads only what
        // it takes. By urgency, every due row is read and sorted, which
        // only a relay's limits make worth it (the batches are small then,
        // and what is due is what the limits hold back).
        let order_by = match order {
            ClaimOrder::Due => format!("{GO_AT}, key"),
            ClaimOrder::Urgency => "precedence, COALESCE(urgent_by, due), due, key".to_owned(),
        };
        self.with("claiming due sends", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let claimed = {
                let mut statement = tx.prepare_cached(&format!(
                    "UPDATE sends SET state = 'sending', attempts = attempts + 1, updated_at = ?1, claimed_by = ?3
                     WHERE key IN (SELECT key FROM sends WHERE state = 'planned' AND {GO_AT} <= ?1
                                   ORDER BY {order_by} LIMIT ?2)
                     RETURNING {COLUMNS}, precedence, COALESCE(urgent_by, due) AS urgent_at"
                ))?;
                let rows = statement.query_map(params![now, limit as i64, claimant.as_str()], |row| {
                    Ok((entry_from_row(row)?, row.get::<_, i64>("precedence")?, row.get::<_, i64>("urgent_at")?))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            tx.commit()?;
            Ok(claimed)
        })
        .map(|mut claimed| {
            // RETURNING gives the rows in no set order.
            match order {
                ClaimOrder::Due => claimed.sort_by(|a, b| {
                    (a.0.effective_due(), &a.0.spec.key).cmp(&(b.0.effective_due(), &b.0.spec.key))
                }),
                ClaimOrder::Urgency => claimed.sort_by(|a, b| {
                    (a.1, a.2, a.0.spec.due, &a.0.spec.key).cmp(&(b.1, b.2, b.0.spec.due, &b.0.spec.key))
                }),
            }
            claimed.into_iter().map(|(entry, _, _)| entry).collect()
        })
    }

    /// The attempts of one send, oldest first: (at, outcome, reply).
    pub fn attempts(&self, key: &str) -> Result<Vec<(Timestamp, String, Option<String>)>, OutboxError> {
        self.with("reading attempts", |c| {
            let mut statement =
                c.prepare("SELECT at, outcome, reply FROM attempts WHERE key = ?1 ORDER BY rowid")?;
            let rows = statement.query_map([key], |row| {
                Ok((
                    instant(row, 0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                ))
            })?;
            rows.collect()
        })
    }
}

impl SqliteOutbox {
    /// Every row of every table herald keeps, as stored, in one read
    /// transaction (`herald state migrate`): the tables and columns of
    /// `export::LAYOUTS`, rows in their order (attempts in the order they were
    /// written). A table whose columns are not those (a file of another
    /// herald) is an error, never a partial copy.
    pub fn export(&self) -> Result<Export, OutboxError> {
        self.with("reading the whole outbox", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let mut tables = Vec::with_capacity(LAYOUTS.len());
            for layout in LAYOUTS {
                let stored: Vec<String> = {
                    let mut statement = tx.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
                    let names = statement.query_map([layout.name], |row| row.get(0))?;
                    names.collect::<rusqlite::Result<_>>()?
                };
                if stored != layout.columns {
                    return Err(unreadable(
                        0,
                        ForeignTable {
                            table: layout.name,
                            columns: stored,
                        },
                    ));
                }
                let mut statement = tx.prepare(&format!(
                    "SELECT {} FROM {} ORDER BY {}",
                    layout.columns.join(", "),
                    layout.name,
                    layout.sqlite_order
                ))?;
                let width = layout.columns.len();
                let rows = statement.query_map([], |row| {
                    (0..width)
                        .map(|column| match row.get_ref(column)? {
                            ValueRef::Null => Ok(Value::Null),
                            ValueRef::Integer(value) => Ok(Value::Integer(value)),
                            ValueRef::Text(text) => std::str::from_utf8(text)
                                .map(|text| Value::Text(text.to_owned()))
                                .map_err(|err| unreadable(column, err)),
                            other => Err(rusqlite::Error::InvalidColumnType(
                                column,
                                layout.columns[column].to_owned(),
                                other.data_type(),
                            )),
                        })
                        .collect::<rusqlite::Result<Vec<Value>>>()
                })?;
                tables.push(Table {
                    name: layout.name.to_owned(),
                    columns: layout.columns.iter().map(|&name| name.to_owned()).collect(),
                    rows: rows.collect::<rusqlite::Result<_>>()?,
                });
            }
            Ok(Export { tables })
        })
    }
}

/// A table whose columns are not the ones this herald writes.
#[derive(Debug)]
struct ForeignTable {
    table: &'static str,
    columns: Vec<String>,
}

impl std::fmt::Display for ForeignTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the table {} has the columns ({}), not those this herald writes",
            self.table,
            self.columns.join(", ")
        )
    }
}

impl std::error::Error for ForeignTable {}

fn migrate(connection: &Connection) -> rusqlite::Result<()> {
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        connection.execute_batch("BEGIN IMMEDIATE")?;
        let applied = connection
            .execute_batch(migration)
            .and_then(|()| match index + 1 {
                7 => backfill_7(connection),
                _ => Ok(()),
            });
        let applied = applied.and_then(|()| {
            connection.execute_batch(&format!("PRAGMA user_version = {}; COMMIT;", index + 1))
        });
        if let Err(err) = applied {
            // Nothing of a migration that failed stays: the next start tries it again.
            let _ = connection.execute_batch("ROLLBACK");
            return Err(err);
        }
    }
    Ok(())
}

fn secs(at: Timestamp) -> i64 {
    at.as_second()
}

/// A stored instant, in seconds since the epoch; one out of jiff's range
/// (a damaged file) is an error, not a silent 1970.
fn from_secs(secs: i64) -> Result<Timestamp, jiff::Error> {
    Timestamp::from_second(secs)
}

/// A stored value that does not read back (a damaged or foreign file):
/// an error naming the column, never a silent default.
fn unreadable<E: std::error::Error + Send + Sync + 'static>(column: usize, err: E) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(err))
}

/// The instant in `column`.
fn instant(row: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<Timestamp> {
    from_secs(row.get(column)?).map_err(|err| unreadable(column, err))
}

/// The instant in `column`, if any.
fn maybe_instant(row: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<Option<Timestamp>> {
    row.get::<_, Option<i64>>(column)?
        .map(|secs| from_secs(secs).map_err(|err| unreadable(column, err)))
        .transpose()
}

/// A row of `sends`, in the order of [`COLUMNS`]. The kind, subject and
/// lead columns are not read: the key says them.
fn entry_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let key: String = row.get(0)?;
    let state: String = row.get(11)?;
    Ok(Entry {
        spec: SendSpec {
            key: SendKey::parse(&key).map_err(|err| unreadable(0, err))?,
            recipient: row.get(4)?,
            list: row.get(5)?,
            language: row.get(6)?,
            template: row.get(7)?,
            due: instant(row, 8)?,
            zone: row.get(9)?,
        },
        revision: row.get(10)?,
        state: State::parse(&state).ok_or_else(|| unreadable(11, UnknownState(state)))?,
        attempts: row.get(12)?,
        next_attempt: maybe_instant(row, 13)?,
        last_reply: row.get(14)?,
        reason: row.get(15)?,
        updated_at: instant(row, 16)?,
        sent_at: maybe_instant(row, 17)?,
        too_late: row.get(18)?,
    })
}

/// A state column holding none of the states herald writes.
#[derive(Debug)]
struct UnknownState(String);

impl std::fmt::Display for UnknownState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown state {:?}", self.0)
    }
}

impl std::error::Error for UnknownState {}

fn insert(
    tx: &rusqlite::Transaction<'_>,
    spec: &SendSpec,
    state: State,
    reason: Option<&str>,
    now: i64,
) -> rusqlite::Result<()> {
    // Cached: a reconcile inserts thousands of rows with this statement.
    tx.prepare_cached(
        "INSERT INTO sends (key, kind, subject, lead, recipient, list, language, template, due, zone, state, reason, created_at, updated_at, precedence, address, token)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
            spec.key.as_str(),
            spec.key.kind().as_str(),
            spec.key.subject(),
            spec.key.lead(),
            spec.recipient,
            spec.list,
            spec.language,
            spec.template,
            secs(spec.due),
            spec.zone,
            state.as_str(),
            reason,
            now,
            spec.key.kind().precedence(),
            spec.key.address(),
            spec.key.token()
    ])?;
    Ok(())
}

impl Outbox for SqliteOutbox {
    fn claimant(&self) -> Claimant {
        self.claimant.clone()
    }

    fn entries(&self) -> Result<Vec<Entry>, OutboxError> {
        self.with("reading the outbox", |c| {
            let mut statement = c.prepare(&format!("SELECT {COLUMNS} FROM sends ORDER BY due, key"))?;
            let rows = statement.query_map([], entry_from_row)?;
            rows.collect()
        })
    }

    fn entries_for(&self, keys: &[&SendKey]) -> Result<Vec<Entry>, OutboxError> {
        self.with("reading the outbox", |c| {
            let tx = c.transaction()?;
            let mut found = Vec::new();
            {
                let mut statement = tx.prepare(&format!("SELECT {COLUMNS} FROM sends WHERE key = ?1"))?;
                for key in keys {
                    if let Some(entry) = statement.query_row([key.as_str()], entry_from_row).optional()? {
                        found.push(entry);
                    }
                }
            }
            tx.commit()?;
            Ok(found)
        })
    }

    fn entries_in(&self, state: State) -> Result<Vec<Entry>, OutboxError> {
        self.with("reading the outbox", |c| {
            let mut statement = c.prepare(&format!(
                "SELECT {COLUMNS} FROM sends WHERE state = ?1 ORDER BY due, key"
            ))?;
            let rows = statement.query_map([state.as_str()], entry_from_row)?;
            rows.collect()
        })
    }

    fn entries_under(&self, prefix: &KeyPrefix) -> Result<Vec<Entry>, OutboxError> {
        // A range of the primary key: every key starting with the prefix
        // sorts at or after it and before the prefix with its last `/`
        // raised to the next character, `0`.
        let from = prefix.as_str();
        let until = format!("{}0", from.strip_suffix('/').unwrap_or(from));
        self.with("reading the outbox", |c| {
            let mut statement = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM sends WHERE key >= ?1 AND key < ?2 ORDER BY key"
            ))?;
            let rows = statement.query_map(params![from, until], entry_from_row)?;
            rows.collect()
        })
    }

    fn planned_until(&self) -> Result<Option<Timestamp>, OutboxError> {
        let Some(text) = self.get_value(PLANNED_UNTIL)? else {
            return Ok(None);
        };
        let until = text
            .parse::<i64>()
            .map_err(|err| Box::new(err) as Box<dyn std::error::Error + Send + Sync>)
            .and_then(|secs| from_secs(secs).map_err(|err| Box::new(err) as _));
        until.map(Some).map_err(|source| OutboxError {
            context: format!("reading how far the plan is in the outbox ({PLANNED_UNTIL} = {text:?})"),
            source,
        })
    }

    fn apply(&self, changes: &Changes, now: Timestamp) -> Result<usize, OutboxError> {
        if changes.is_empty() && changes.planned_until.is_none() {
            return Ok(0);
        }
        let now = secs(now);
        self.with("updating the outbox with the new plan", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for spec in &changes.insert {
                insert(&tx, spec, State::Planned, None, now)?;
            }
            for (spec, reason) in &changes.insert_skipped {
                insert(&tx, spec, State::Skipped, Some(reason), now)?;
                tx.prepare_cached("UPDATE sends SET too_late = 1 WHERE key = ?1")?
                    .execute(params![spec.key.as_str()])?;
            }
            for spec in &changes.revive {
                // The history of a send skipped as too late says why it
                // is planned again (a cancelled one had no attempt).
                tx.prepare_cached(
                    "INSERT INTO attempts (key, at, outcome, reply)
                     SELECT key, ?2, 'revived', 'its date changed: now due at ' || ?3 || ', no longer too late' FROM sends
                     WHERE key = ?1 AND state = 'skipped' AND too_late = 1",
                )?
                .execute(params![spec.key.as_str(), now, spec.due.to_string()])?;
            }
            for spec in changes.reschedule.iter().chain(&changes.revive) {
                tx.prepare_cached(
                    "UPDATE sends SET due = ?2, zone = ?3, list = ?4, language = ?5, template = ?6, lead = ?7,
                            revision = revision + 1, state = 'planned', next_attempt = NULL, release_at = NULL, reason = NULL,
                            updated_at = ?8, too_late = 0
                     WHERE key = ?1 AND (state IN ('planned', 'cancelled') OR (state = 'skipped' AND too_late = 1))",
                )?
                .execute(params![
                    spec.key.as_str(),
                    secs(spec.due),
                    spec.zone,
                    spec.list,
                    spec.language,
                    spec.template,
                    spec.key.lead(),
                    now
                ])?;
            }
            for row in &changes.calendar {
                tx.prepare_cached(
                    "INSERT INTO calendar (event, sequence, signature, location, snapshot, previous, removed, notices, held_until, told)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (event) DO UPDATE SET sequence = excluded.sequence, signature = excluded.signature,
                        location = excluded.location, snapshot = excluded.snapshot, previous = excluded.previous,
                        removed = excluded.removed, notices = excluded.notices, held_until = excluded.held_until,
                        told = excluded.told",
                )?
                .execute(params![
                        row.event,
                        row.sequence,
                        row.signature,
                        row.location,
                        row.snapshot,
                        row.previous,
                        row.removed,
                        row.notices,
                        row.held_until.map(secs),
                        row.told
                    ])?;
            }
            for (key, reason) in &changes.cancel {
                tx.prepare_cached(
                    "UPDATE sends SET state = 'cancelled', reason = ?2, updated_at = ?3 WHERE key = ?1 AND state = 'planned'",
                )?
                .execute(params![key.as_str(), reason, now])?;
            }
            // A send planned (or planned again) for a suppressed recipient
            // is suppressed at once, so that `plan` and `history` say so.
            let suppressed =
                if changes.insert.is_empty() && changes.reschedule.is_empty() && changes.revive.is_empty() {
                    0
                } else {
                    incoming::suppress_planned(&tx, None, now)?
                };
            // In the same transaction as the sends it vouches for.
            if let Some(until) = changes.planned_until {
                tx.prepare_cached(
                    "INSERT INTO kv (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![PLANNED_UNTIL, secs(until).to_string()])?;
            }
            tx.commit()?;
            Ok(suppressed)
        })
    }

    fn claim_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Entry>, OutboxError> {
        self.claim(now, limit, ClaimOrder::Due)
    }

    fn claim_most_urgent(&self, now: Timestamp, limit: usize) -> Result<Vec<Entry>, OutboxError> {
        self.claim(now, limit, ClaimOrder::Urgency)
    }

    fn claim_keys(&self, keys: &[SendKey], now: Timestamp) -> Result<Vec<Entry>, OutboxError> {
        let now = secs(now);
        let claimant = &self.claimant;
        self.with("claiming sends", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut claimed = Vec::new();
            {
                let mut statement = tx.prepare(&format!(
                    "UPDATE sends SET state = 'sending', attempts = attempts + 1, updated_at = ?1, claimed_by = ?3
                     WHERE key = ?2 AND state = 'planned' RETURNING {COLUMNS}"
                ))?;
                for key in keys {
                    if let Some(entry) = statement
                        .query_row(params![now, key.as_str(), claimant.as_str()], entry_from_row)
                        .optional()?
                    {
                        claimed.push(entry);
                    }
                }
            }
            tx.commit()?;
            Ok(claimed)
        })
    }

    fn record(&self, outcomes: &[(SendKey, Recorded)], now: Timestamp) -> Result<usize, OutboxError> {
        if outcomes.is_empty() {
            return Ok(0);
        }
        self.with("recording outcomes", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut recorded = 0;
            for (key, outcome) in outcomes {
                let key = key.as_str();
                let stored = outcome.stored(now);
                if matches!(outcome, Recorded::Paused { .. }) {
                    // Claiming counted an attempt; the relay took none.
                    // Guarded as the outcome is: only a send in flight.
                    tx.prepare_cached(
                        "UPDATE sends SET attempts = MAX(attempts - 1, 0) WHERE key = ?1 AND state = 'sending'",
                    )?
                    .execute(params![key])?;
                }
                // Cached statements: recording runs after every few sends,
                // and parsing the SQL anew each time cost more than running it.
                // Only a send in flight takes an outcome: one released in
                // the meantime is planned again, and neither a planned nor a
                // final row may be overwritten by an attempt that is over.
                let updated = tx
                    .prepare_cached(
                        "UPDATE sends SET state = ?2, last_reply = COALESCE(?3, last_reply), reason = ?4, next_attempt = ?5,
                                sent_at = COALESCE(?6, sent_at), updated_at = ?7, too_late = ?8, claimed_by = NULL
                         WHERE key = ?1 AND state = 'sending'",
                    )?
                    .execute(params![
                        key,
                        stored.state.as_str(),
                        stored.reply,
                        stored.reason,
                        stored.next_attempt.map(secs),
                        stored.sent_at.map(secs),
                        secs(now),
                        stored.too_late
                    ])?;
                if updated == 0 {
                    continue;
                }
                recorded += 1;
                tx.prepare_cached("INSERT INTO attempts (key, at, outcome, reply, relay) VALUES (?1, ?2, ?3, ?4, ?5)")?
                    .execute(params![
                        key,
                        secs(stored.at),
                        stored.label,
                        stored.reply.or(stored.reason),
                        outcome.reached_relay()
                    ])?;
            }
            tx.commit()?;
            Ok(recorded)
        })
    }

    fn next_due(&self) -> Result<Option<Timestamp>, OutboxError> {
        self.with("finding the next due send", |c| {
            c.query_row(
                &format!("SELECT MIN({GO_AT}) FROM sends WHERE state = 'planned'"),
                [],
                |row| maybe_instant(row, 0),
            )
        })
    }

    fn claimants_in_flight(&self) -> Result<Vec<Claimant>, OutboxError> {
        self.with("reading who has sends in flight", |c| {
            let mut statement = c.prepare(
                "SELECT DISTINCT COALESCE(claimed_by, 'daemon') FROM sends WHERE state = 'sending'",
            )?;
            let rows = statement.query_map([], |row| row.get::<_, String>(0).map(Claimant::from_stored))?;
            rows.collect()
        })
    }

    fn release_claims(
        &self,
        claimants: &[Claimant],
        reason: &str,
        now: Timestamp,
    ) -> Result<usize, OutboxError> {
        let now = secs(now);
        self.with("releasing sends in flight", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut released = 0;
            for claimant in claimants {
                // The attempts first, while the rows still say whose they are.
                tx.prepare_cached(
                    "INSERT INTO attempts (key, at, outcome, reply)
                     SELECT key, ?1, 'released', ?2 FROM sends
                     WHERE state = 'sending' AND COALESCE(claimed_by, 'daemon') = ?3",
                )?
                .execute(params![now, reason, claimant.as_str()])?;
                released += tx
                    .prepare_cached(
                        "UPDATE sends SET state = 'planned', next_attempt = NULL, updated_at = ?1, claimed_by = NULL
                         WHERE state = 'sending' AND COALESCE(claimed_by, 'daemon') = ?2",
                    )?
                    .execute(params![now, claimant.as_str()])?;
            }
            tx.commit()?;
            Ok(released)
        })
    }

    fn revive_too_late(&self, since: Timestamp, now: Timestamp) -> Result<usize, OutboxError> {
        let (since, now) = (secs(since), secs(now));
        self.with("reviving sends skipped as too late", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO attempts (key, at, outcome, reply)
                 SELECT key, ?2, 'revived', 'the clock was set back: no longer too late' FROM sends
                 WHERE state = 'skipped' AND too_late = 1 AND due >= ?1",
                params![since, now],
            )?;
            let revived = tx.execute(
                "UPDATE sends SET state = 'planned', too_late = 0, reason = NULL, next_attempt = NULL, updated_at = ?2
                 WHERE state = 'skipped' AND too_late = 1 AND due >= ?1",
                params![since, now],
            )?;
            tx.commit()?;
            Ok(revived)
        })
    }

    fn unclaim(&self, keys: &[SendKey], now: Timestamp) -> Result<usize, OutboxError> {
        let now = secs(now);
        self.with("putting claimed sends back", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut unclaimed = 0;
            {
                // The claim counted an attempt that was never made.
                let mut statement = tx.prepare_cached(
                    "UPDATE sends SET state = 'planned', attempts = MAX(attempts - 1, 0), updated_at = ?2, claimed_by = NULL
                     WHERE key = ?1 AND state = 'sending'",
                )?;
                for key in keys {
                    unclaimed += statement.execute(params![key.as_str(), now])?;
                }
            }
            tx.commit()?;
            Ok(unclaimed)
        })
    }

    fn retry_failed(&self, key: Option<&SendKey>, now: Timestamp) -> Result<usize, OutboxError> {
        let now = secs(now);
        self.with("planning failed sends again", |c| {
            c.execute(
                "UPDATE sends SET state = 'planned', attempts = 0, next_attempt = ?1, reason = NULL, updated_at = ?1
                 WHERE state = 'failed' AND (?2 IS NULL OR key = ?2)",
                params![now, key.map(SendKey::as_str)],
            )
        })
    }

    fn counts(&self) -> Result<Counts, OutboxError> {
        self.with("counting sends", |c| {
            let mut counts = Counts::default();
            let mut statement = c.prepare("SELECT state, COUNT(*) FROM sends GROUP BY state")?;
            let rows =
                statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?;
            for row in rows {
                let (state, n) = row?;
                let n = n as usize;
                match State::parse(&state) {
                    Some(State::Planned) => counts.planned = n,
                    Some(State::Sending) => counts.sending = n,
                    Some(State::Sent) => counts.sent = n,
                    Some(State::Failed) => counts.failed = n,
                    Some(State::Skipped) => counts.skipped = n,
                    Some(State::Cancelled) => counts.cancelled = n,
                    Some(State::Suppressed) => counts.suppressed = n,
                    None => return Err(unreadable(0, UnknownState(state))),
                }
            }
            Ok(counts)
        })
    }

    fn pending(&self) -> Result<usize, OutboxError> {
        self.with("counting planned sends", |c| {
            c.query_row("SELECT COUNT(*) FROM sends WHERE state = 'planned'", [], |row| {
                row.get::<_, i64>(0)
            })
            .map(|n| n as usize)
        })
    }

    fn suppressed_from(&self, now: Timestamp) -> Result<usize, OutboxError> {
        self.with("counting suppressed sends", |c| {
            c.query_row(
                "SELECT COUNT(*) FROM sends WHERE state = 'suppressed' AND due >= ?1",
                [secs(now)],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n as usize)
        })
    }

    fn calendar_rows(&self) -> Result<Vec<CalendarRow>, OutboxError> {
        self.with("reading the calendar state", |c| {
            let mut statement = c.prepare(
                "SELECT event, sequence, signature, location, snapshot, previous, removed, notices, held_until, told
                 FROM calendar ORDER BY event",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(CalendarRow {
                    event: row.get(0)?,
                    sequence: row.get(1)?,
                    signature: row.get(2)?,
                    location: row.get(3)?,
                    snapshot: row.get(4)?,
                    previous: row.get(5)?,
                    removed: row.get(6)?,
                    notices: row.get(7)?,
                    held_until: maybe_instant(row, 8)?,
                    told: row.get(9)?,
                })
            })?;
            rows.collect()
        })
    }

    fn departures_since(&self, since: Timestamp) -> Result<Vec<Timestamp>, OutboxError> {
        self.with("reading what the relay took", |c| {
            let mut statement =
                c.prepare_cached("SELECT at FROM attempts WHERE relay = 1 AND at >= ?1 ORDER BY at")?;
            let rows = statement.query_map([secs(since)], |row| instant(row, 0))?;
            rows.collect()
        })
    }

    fn set_pace(&self, pace: &[Pace]) -> Result<(), OutboxError> {
        self.with("writing when sends are released", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                // Only a planned row: one claimed meanwhile keeps its claim.
                let mut statement = tx.prepare_cached(
                    "UPDATE sends SET release_at = ?2, urgent_by = ?3 WHERE key = ?1 AND state = 'planned'",
                )?;
                for pace in pace {
                    statement.execute(params![
                        pace.key.as_str(),
                        pace.release_at.map(secs),
                        pace.urgent_by.map(secs)
                    ])?;
                }
            }
            tx.commit()
        })
    }

    fn clear_releases(&self) -> Result<usize, OutboxError> {
        self.with("clearing early releases", |c| {
            c.execute(
                "UPDATE sends SET release_at = NULL WHERE state = 'planned' AND release_at IS NOT NULL",
                [],
            )
        })
    }

    fn entry_by_token(&self, token: &str) -> Result<Option<Entry>, OutboxError> {
        self.with("finding a send by its token", |c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM sends WHERE token = ?1"),
                [token],
                entry_from_row,
            )
            .optional()
        })
    }

    fn has_sent_to(&self, address: &AddressKey) -> Result<bool, OutboxError> {
        self.with("looking for sends to an address", |c| {
            incoming::has_sent_to(c, address)
        })
    }

    fn incoming_seen(&self, message_id: &str) -> Result<bool, OutboxError> {
        self.with("looking up an incoming message", |c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM incoming WHERE message_id = ?1)",
                [message_id],
                |row| row.get(0),
            )
        })
    }

    fn take_incoming(
        &self,
        row: &IncomingRow,
        effect: &Effect,
        now: Timestamp,
    ) -> Result<Taken, OutboxError> {
        self.with("recording an incoming message", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let taken = incoming::take(&tx, row, effect, secs(now))?;
            tx.commit()?;
            Ok(taken)
        })
    }

    fn incoming_since(&self, since: Timestamp) -> Result<Vec<IncomingRow>, OutboxError> {
        self.with("reading incoming messages", |c| incoming::since(c, secs(since)))
    }

    fn suppressions(&self) -> Result<Vec<Suppression>, OutboxError> {
        self.with("reading suppressions", incoming::suppressions)
    }

    fn lift_suppressions(&self, address: &AddressKey, now: Timestamp) -> Result<Lifted, OutboxError> {
        self.with("lifting suppressions", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let lifted = incoming::lift(&tx, address, secs(now))?;
            tx.commit()?;
            Ok(lifted)
        })
    }

    fn suppress(
        &self,
        address: &AddressKey,
        list: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<bool, OutboxError> {
        self.with("suppressing an address on a list", |c| {
            // A read first: a reader's repeated click, or a mailbox
            // provider's retried POST, takes no write lock.
            if incoming::is_suppressed(c, address, list)? {
                return Ok(false);
            }
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let added = incoming::suppress_on_list(&tx, address, list, reason, secs(now))?;
            tx.commit()?;
            Ok(added)
        })
    }

    fn lift_list_suppression(
        &self,
        address: &AddressKey,
        list: &str,
        now: Timestamp,
    ) -> Result<bool, OutboxError> {
        self.with("lifting a suppression on a list", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let lifted = incoming::lift_on_list(&tx, address, list, secs(now))?;
            tx.commit()?;
            Ok(lifted)
        })
    }

    fn settled_since(&self, since: Timestamp) -> Result<Vec<Entry>, OutboxError> {
        self.with("reading the sends settled lately", |c| {
            let mut statement = c.prepare(&format!(
                "SELECT {COLUMNS} FROM sends WHERE state IN ('sent', 'failed', 'skipped', 'suppressed') AND updated_at >= ?1
                 ORDER BY updated_at, key"
            ))?;
            let rows = statement.query_map([secs(since)], entry_from_row)?;
            rows.collect()
        })
    }

    fn get_value(&self, name: &str) -> Result<Option<String>, OutboxError> {
        self.with("reading saved state", |c| {
            c.query_row("SELECT value FROM kv WHERE name = ?1", [name], |row| row.get(0))
                .optional()
        })
    }

    fn set_value(&self, name: &str, value: &str) -> Result<(), OutboxError> {
        self.with("saving state", |c| {
            c.execute(
                "INSERT INTO kv (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![name, value],
            )
            .map(|_| ())
        })
    }

    fn overrides(&self) -> Result<Vec<Override>, OutboxError> {
        self.with("reading readers' overrides", |c| overrides::all(c))
    }

    fn override_of(&self, address: &AddressKey) -> Result<Option<Override>, OutboxError> {
        self.with("reading a reader's override", |c| overrides::of(c, address))
    }

    fn set_override(&self, choice: &Override) -> Result<(), OutboxError> {
        self.with("recording a reader's override", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            overrides::set(&tx, choice, secs(choice.since))?;
            tx.commit()
        })
    }

    fn remove_overrides(&self, addresses: &[AddressKey]) -> Result<usize, OutboxError> {
        if addresses.is_empty() {
            return Ok(0);
        }
        self.with("removing readers' overrides", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let removed = overrides::remove(&tx, addresses)?;
            tx.commit()?;
            Ok(removed)
        })
    }

    fn add_request(&self, request: &NewRequest, now: Timestamp) -> Result<Asked, OutboxError> {
        self.with("recording a request for the operator", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let asked = overrides::add_request(&tx, request, secs(now))?;
            tx.commit()?;
            Ok(asked)
        })
    }

    fn requests(&self, open_only: bool) -> Result<Vec<Request>, OutboxError> {
        self.with("reading requests for the operator", |c| {
            overrides::requests(c, open_only)
        })
    }

    fn settle_request(&self, id: i64, now: Timestamp) -> Result<bool, OutboxError> {
        self.with("settling a request", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let settled = overrides::settle(&tx, id, secs(now))?;
            tx.commit()?;
            Ok(settled)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::AddressKey;

    fn at(secs: i64) -> Timestamp {
        from_secs(secs).unwrap()
    }

    /// The key of a reminder of event "e" to `name`@example.org.
    fn key(name: &str) -> SendKey {
        SendKey::reminder("e", "1d", &AddressKey::of(&format!("{name}@example.org")))
    }

    fn spec(name: &str, due: i64) -> SendSpec {
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
    fn plan(outbox: &SqliteOutbox, specs: Vec<SendSpec>) {
        let changes = Changes {
            insert: specs,
            ..Changes::default()
        };
        outbox.apply(&changes, at(0)).unwrap();
    }

    #[test]
    fn the_outbox_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let outbox = SqliteOutbox::open(&state).unwrap();
        plan(&outbox, vec![spec("a", 100)]);
        let mode = |name: &str| std::fs::metadata(state.join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(""), 0o700);
        for name in ["outbox.sqlite3", "outbox.sqlite3-wal", "outbox.sqlite3-shm"] {
            assert_eq!(mode(name), 0o600, "{name}");
        }
        drop(outbox);
        // An outbox an older herald left readable by all is made private.
        let database = state.join(SqliteOutbox::FILE);
        std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();
        SqliteOutbox::open(&state).unwrap();
        assert_eq!(mode(SqliteOutbox::FILE), 0o600);
    }
}
