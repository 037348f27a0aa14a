//! The PostgreSQL schema: numbered migrations, applied in order, all of
//! them in one transaction under an advisory lock, so that nodes starting
//! together migrate once (PostgreSQL's DDL is transactional: a migration
//! that fails leaves nothing behind).
//!
//! The tables are SQLite's (`outbox::sqlite::MIGRATIONS`, as of its version
//! 8) with PostgreSQL's types, plus what several nodes need: a lease on
//! every send in flight, the planner's lease, and the relay's shared budget.
//! Instants herald's clock decides (due, attempts, suppressions) are Unix
//! seconds, as in SQLite; leases are `timestamptz` on the database's own
//! clock, the one clock every node agrees on.

use tokio_postgres::Transaction;

/// The key of the advisory lock migrations take (any constant the
/// database's other users do not take; "herald" in ASCII).
const MIGRATION_LOCK: i64 = 0x6865_7261_6c64;

/// The migrations, in order; the schema's version is their count.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: everything SQLite's eight migrations made, and the leases.
    "CREATE TABLE sends (
        key          TEXT PRIMARY KEY,
        kind         TEXT NOT NULL,
        subject      TEXT NOT NULL,
        lead         TEXT,
        recipient    TEXT NOT NULL,
        list         TEXT NOT NULL,
        language     TEXT NOT NULL,
        template     TEXT NOT NULL,
        due          BIGINT NOT NULL,
        zone         TEXT NOT NULL,
        revision     BIGINT NOT NULL DEFAULT 1,
        state        TEXT NOT NULL,
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_attempt BIGINT,
        last_reply   TEXT,
        reason       TEXT,
        created_at   BIGINT NOT NULL,
        updated_at   BIGINT NOT NULL,
        sent_at      BIGINT,
        claimed_by   TEXT,
        too_late     BOOLEAN NOT NULL DEFAULT false,
        release_at   BIGINT,
        precedence   INTEGER NOT NULL DEFAULT 2,
        urgent_by    BIGINT,
        address      TEXT NOT NULL,
        token        TEXT NOT NULL,
        lease_until  TIMESTAMPTZ
    );
    CREATE INDEX sends_by_state_due ON sends (state, due);
    CREATE INDEX sends_planned_go_at ON sends ((COALESCE(next_attempt, release_at, due)), key) WHERE state = 'planned';
    CREATE INDEX sends_in_flight ON sends (claimed_by, lease_until) WHERE state = 'sending';
    CREATE UNIQUE INDEX sends_by_token ON sends (token);
    CREATE INDEX sends_by_address ON sends (address, state);
    CREATE INDEX sends_settled ON sends (updated_at) WHERE state IN ('sent', 'failed', 'skipped', 'suppressed');
    CREATE TABLE attempts (
        id      BIGSERIAL PRIMARY KEY,
        key     TEXT NOT NULL,
        at      BIGINT NOT NULL,
        outcome TEXT NOT NULL,
        reply   TEXT,
        relay   BOOLEAN NOT NULL DEFAULT false,
        node    TEXT
    );
    CREATE INDEX attempts_by_key ON attempts (key);
    CREATE INDEX attempts_at_the_relay ON attempts (at) WHERE relay;
    CREATE TABLE kv (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE calendar (
        event      TEXT PRIMARY KEY,
        sequence   BIGINT NOT NULL,
        signature  TEXT NOT NULL,
        location   TEXT,
        snapshot   TEXT NOT NULL,
        previous   TEXT,
        removed    BOOLEAN NOT NULL DEFAULT false,
        notices    BIGINT NOT NULL DEFAULT 0,
        held_until BIGINT,
        told       TEXT
    );
    CREATE TABLE incoming (
        seq         BIGSERIAL,
        message_id  TEXT PRIMARY KEY,
        received_at BIGINT NOT NULL,
        source      TEXT NOT NULL,
        kind        TEXT NOT NULL,
        addresses   TEXT NOT NULL,
        permanent   BOOLEAN,
        status      TEXT,
        diagnostic  TEXT,
        send_key    TEXT,
        sender      TEXT,
        subject     TEXT,
        outcome     TEXT NOT NULL,
        needs_human BOOLEAN NOT NULL
    );
    CREATE INDEX incoming_by_time ON incoming (received_at);
    CREATE TABLE suppressions (
        address    TEXT NOT NULL,
        list       TEXT NOT NULL,
        reason     TEXT NOT NULL,
        since      BIGINT NOT NULL,
        message_id TEXT,
        PRIMARY KEY (address, list)
    );
    CREATE TABLE failures (address TEXT NOT NULL, at BIGINT NOT NULL, message_id TEXT NOT NULL);
    CREATE INDEX failures_by_address ON failures (address, at);
    CREATE TABLE overrides (
        address  TEXT PRIMARY KEY,
        language TEXT,
        zone     TEXT,
        since    BIGINT NOT NULL
    );
    CREATE TABLE requests (
        id              BIGSERIAL PRIMARY KEY,
        sender          TEXT NOT NULL,
        list            TEXT,
        successor_name  TEXT NOT NULL,
        successor_email TEXT NOT NULL,
        asked           BIGINT NOT NULL,
        settled         BIGINT
    );
    CREATE INDEX requests_open ON requests (sender) WHERE settled IS NULL;
    -- Who plans: one row, held by one node at a time for its lease,
    -- with the hash of the configuration that planned last.
    CREATE TABLE planner (
        one         BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
        node        TEXT NOT NULL,
        term        BIGINT NOT NULL,
        lease_until TIMESTAMPTZ NOT NULL,
        config_hash TEXT
    );
    -- The relay's limits, one budget for every node: each moment a node
    -- takes at the relay, taken under an advisory lock.
    CREATE TABLE relay_turns (at_ms BIGINT NOT NULL, node TEXT NOT NULL);
    CREATE INDEX relay_turns_at ON relay_turns (at_ms);",
    // 2: which process holds each node's name, until when: two nodes given
    // the same name (a cloned machine keeps its host name) would renew,
    // and release at their start, each other's claims.
    "CREATE TABLE nodes (
        node        TEXT PRIMARY KEY,
        incarnation TEXT NOT NULL,
        seen_until  TIMESTAMPTZ NOT NULL
    );",
];

/// Brings the schema up to date, in `tx`, which the caller commits, and
/// returns the version it found. A version above [`current_version`] (a
/// newer herald migrated the database) is left alone: the caller refuses it.
pub(super) async fn migrate(tx: &Transaction<'_>) -> Result<i32, tokio_postgres::Error> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .await?;
    let version: i32 = match tx.query_opt("SELECT version FROM schema_version", &[]).await? {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO schema_version (version) VALUES (0)", &[])
                .await?;
            0
        }
    };
    if version > current_version() {
        return Ok(version);
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.batch_execute(migration).await?;
        let version = (index + 1) as i32;
        tx.execute("UPDATE schema_version SET version = $1", &[&version])
            .await?;
    }
    Ok(version)
}

/// The schema version this herald writes.
pub(super) fn current_version() -> i32 {
    MIGRATIONS.len() as i32
}
