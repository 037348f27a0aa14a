//! Every row of an outbox as it is stored, to copy an SQLite outbox into a
//! PostgreSQL one (`herald state migrate`) and to check the copy.

/// A stored value, as both databases can take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Integer(i64),
    Text(String),
}

/// The rows of one table, each with the values of `columns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// Every table herald keeps, in the order they are copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Export {
    pub tables: Vec<Table>,
}

impl Export {
    /// The table named `name`, if the export has it.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|table| table.name == name)
    }

    /// How many rows in all.
    pub fn rows(&self) -> usize {
        self.tables.iter().map(|table| table.rows.len()).sum()
    }
}

impl Table {
    /// The index of `column` in each row.
    pub fn column(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|name| name == column)
    }
}

/// Where one herald table is, as both outboxes keep it: its columns as
/// SQLite has them (PostgreSQL has the same, and some of its own that
/// SQLite's rows leave empty), and an order of its rows that reads the same
/// in both (text byte by byte: SQLite's BINARY, PostgreSQL's "C").
pub(super) struct Layout {
    pub name: &'static str,
    pub columns: &'static [&'static str],
    /// `ORDER BY` in SQLite.
    pub sqlite_order: &'static str,
    /// `ORDER BY` in PostgreSQL.
    pub postgres_order: &'static str,
}

/// Every table herald keeps in both outboxes, in the order they are copied.
/// Attempts have no id in SQLite: their order is the rows' (`rowid`), and
/// PostgreSQL numbers them (`id`) in that order.
pub(super) const LAYOUTS: &[Layout] = &[
    Layout {
        name: "sends",
        columns: &[
            "key",
            "kind",
            "subject",
            "lead",
            "recipient",
            "list",
            "language",
            "template",
            "due",
            "zone",
            "revision",
            "state",
            "attempts",
            "next_attempt",
            "last_reply",
            "reason",
            "created_at",
            "updated_at",
            "sent_at",
            "claimed_by",
            "too_late",
            "release_at",
            "precedence",
            "urgent_by",
            "address",
            "token",
        ],
        sqlite_order: "key",
        postgres_order: "key COLLATE \"C\"",
    },
    Layout {
        name: "attempts",
        columns: &["key", "at", "outcome", "reply", "relay"],
        sqlite_order: "rowid",
        postgres_order: "id",
    },
    Layout {
        name: "kv",
        columns: &["name", "value"],
        sqlite_order: "name",
        postgres_order: "name COLLATE \"C\"",
    },
    Layout {
        name: "calendar",
        columns: &[
            "event",
            "sequence",
            "signature",
            "location",
            "snapshot",
            "previous",
            "removed",
            "notices",
            "held_until",
            "told",
        ],
        sqlite_order: "event",
        postgres_order: "event COLLATE \"C\"",
    },
    Layout {
        name: "incoming",
        columns: &[
            "message_id",
            "received_at",
            "source",
            "kind",
            "addresses",
            "permanent",
            "status",
            "diagnostic",
            "send_key",
            "sender",
            "subject",
            "outcome",
            "needs_human",
        ],
        // The order they were written in (ties of `received_at` are read
        // back in it): PostgreSQL numbers them in `seq` as they are copied.
        sqlite_order: "rowid",
        postgres_order: "seq",
    },
    Layout {
        name: "suppressions",
        columns: &["address", "list", "reason", "since", "message_id"],
        sqlite_order: "address, list",
        postgres_order: "address COLLATE \"C\", list COLLATE \"C\"",
    },
    Layout {
        name: "failures",
        columns: &["address", "at", "message_id"],
        sqlite_order: "address, at, message_id",
        postgres_order: "address COLLATE \"C\", at, message_id COLLATE \"C\"",
    },
    Layout {
        name: "overrides",
        columns: &["address", "language", "zone", "since"],
        sqlite_order: "address",
        postgres_order: "address COLLATE \"C\"",
    },
    Layout {
        name: "requests",
        columns: &[
            "id",
            "sender",
            "list",
            "successor_name",
            "successor_email",
            "asked",
            "settled",
        ],
        sqlite_order: "id",
        postgres_order: "id",
    },
];

/// The tables PostgreSQL has and SQLite does not: empty after a copy, and
/// empty for the database to be taken as empty.
pub(super) const POSTGRES_ONLY: &[&str] = &["planner", "relay_turns"];
