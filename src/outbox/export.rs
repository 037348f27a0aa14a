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
