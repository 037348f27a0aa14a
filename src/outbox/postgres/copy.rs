//! Copying whole tables in and out (`herald state migrate`).
//!
//! The rows are SQLite's as they are stored ([`Export`]): the tables and
//! columns of `export::LAYOUTS`, which PostgreSQL has too. Each value takes
//! the type PostgreSQL gives its column (SQLite's 0/1 become booleans); the
//! columns only PostgreSQL has (leases, the node of an attempt) and its own
//! tables (the planner, the relay's turns) are left empty.

use std::pin::pin;

use deadpool_postgres::Object;
use tokio_postgres::IsolationLevel;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::{DbError, Plain};
use crate::outbox::Export;
use crate::outbox::export::{LAYOUTS, Layout, POSTGRES_ONLY, Table, Value};

/// The tables whose `id` is a sequence's, set past the copied ids.
const SERIAL: &[&str] = &["attempts", "requests"];

fn plain(text: String) -> DbError {
    Box::new(Plain(text))
}

/// One statement telling whether any herald table holds a row.
fn anything_stored() -> String {
    let exists: Vec<String> = LAYOUTS
        .iter()
        .map(|layout| layout.name)
        .chain(POSTGRES_ONLY.iter().copied())
        .map(|table| format!("EXISTS (SELECT 1 FROM {table})"))
        .collect();
    format!("SELECT {}", exists.join(" OR "))
}

pub(super) async fn is_empty(c: &Object) -> Result<bool, DbError> {
    let row = c.query_one(&anything_stored(), &[]).await?;
    Ok(!row.try_get::<_, bool>(0)?)
}

/// Copies `rows` in one transaction, into a database that holds nothing
/// yet: looked at again inside the transaction, with the tables locked
/// against writers, so that two copies at once (or a node started too
/// early) cannot both find it empty.
pub(super) async fn import(c: &mut Object, rows: Export) -> Result<(), DbError> {
    let tx = c.transaction().await?;
    // A large outbox takes longer than the statements of a running node
    // may (the connection's statement_timeout); the caller bounds the copy.
    tx.batch_execute("SET LOCAL statement_timeout = 0").await?;
    let every: Vec<&str> = LAYOUTS
        .iter()
        .map(|layout| layout.name)
        .chain(POSTGRES_ONLY.iter().copied())
        .collect();
    tx.batch_execute(&format!(
        "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
        every.join(", ")
    ))
    .await?;
    if tx
        .query_one(&anything_stored(), &[])
        .await?
        .try_get::<_, bool>(0)?
    {
        return Err(plain(
            "the database is not empty: herald state is already in it".to_owned(),
        ));
    }
    for table in &rows.tables {
        let layout = LAYOUTS
            .iter()
            .find(|layout| layout.name == table.name)
            .ok_or_else(|| plain(format!("herald keeps no table {:?}", table.name)))?;
        if table.columns != layout.columns {
            return Err(plain(format!(
                "the rows of {} have the columns ({}), not ({})",
                table.name,
                table.columns.join(", "),
                layout.columns.join(", ")
            )));
        }
        // SQLite's attempts have no id: they are numbered here, in their
        // order, as PostgreSQL would have numbered them as they came.
        let numbered = SERIAL.contains(&table.name.as_str()) && table.column("id").is_none();
        let mut columns: Vec<&str> = table.columns.iter().map(String::as_str).collect();
        if numbered {
            columns.insert(0, "id");
        }
        // The statement tells each column's type; the rows go in through
        // COPY (binary), an order of magnitude faster than one INSERT each,
        // so that a large outbox fits in one call's time.
        let placeholders: Vec<String> = (1..=columns.len()).map(|n| format!("${n}")).collect();
        let statement = tx
            .prepare(&format!(
                "INSERT INTO {} ({}) VALUES ({})",
                table.name,
                columns.join(", "),
                placeholders.join(", ")
            ))
            .await?;
        let types = statement.params().to_vec();
        let sink = tx
            .copy_in(&format!(
                "COPY {} ({}) FROM STDIN (FORMAT binary)",
                table.name,
                columns.join(", ")
            ))
            .await?;
        let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
        for (number, row) in table.rows.iter().enumerate() {
            if row.len() != table.columns.len() {
                return Err(plain(format!(
                    "row {} of {} has {} values for {} columns",
                    number + 1,
                    table.name,
                    row.len(),
                    table.columns.len()
                )));
            }
            let mut values: Vec<Param> = Vec::with_capacity(columns.len());
            if numbered {
                values.push(Box::new(number as i64 + 1));
            }
            for (column, value) in row.iter().enumerate() {
                let at = column + usize::from(numbered);
                values.push(param(value, &types[at]).map_err(|why| {
                    plain(format!(
                        "row {} of {}, column {}: {why}",
                        number + 1,
                        table.name,
                        table.columns[column]
                    ))
                })?);
            }
            let values: Vec<&(dyn ToSql + Sync)> = values
                .iter()
                .map(|value| value.as_ref() as &(dyn ToSql + Sync))
                .collect();
            writer.as_mut().write(&values).await?;
        }
        let written = writer.as_mut().finish().await?;
        if written != table.rows.len() as u64 {
            return Err(plain(format!(
                "{}: the database took {written} rows of {}",
                table.name,
                table.rows.len()
            )));
        }
        if SERIAL.contains(&table.name.as_str()) {
            tx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{0}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {0}",
                    table.name
                ),
                &[],
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Every herald table SQLite has too, with SQLite's columns, in one
/// snapshot; each table's rows in the order SQLite's export gives them
/// (text byte by byte, attempts by id), booleans as 0 and 1.
pub(super) async fn export(c: &mut Object) -> Result<Export, DbError> {
    let tx = c
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    tx.batch_execute("SET LOCAL statement_timeout = 0").await?;
    let mut tables = Vec::with_capacity(LAYOUTS.len());
    for layout in LAYOUTS {
        tables.push(read_table(&tx, layout).await?);
    }
    tx.commit().await?;
    Ok(Export { tables })
}

async fn read_table(tx: &tokio_postgres::Transaction<'_>, layout: &Layout) -> Result<Table, DbError> {
    let rows = tx
        .query(
            &format!(
                "SELECT {} FROM {} ORDER BY {}",
                layout.columns.join(", "),
                layout.name,
                layout.postgres_order
            ),
            &[],
        )
        .await?;
    let rows = rows
        .iter()
        .map(|row| {
            row.columns()
                .iter()
                .enumerate()
                .map(|(index, column)| value_of(row, index, column.type_()))
                .collect::<Result<Vec<Value>, DbError>>()
        })
        .collect::<Result<_, _>>()?;
    Ok(Table {
        name: layout.name.to_owned(),
        columns: layout.columns.iter().map(|&name| name.to_owned()).collect(),
        rows,
    })
}

/// A stored value as SQLite keeps it.
fn value_of(row: &tokio_postgres::Row, index: usize, kind: &Type) -> Result<Value, DbError> {
    let integer = |value: Option<i64>| value.map_or(Value::Null, Value::Integer);
    Ok(match *kind {
        Type::BOOL => integer(row.try_get::<_, Option<bool>>(index)?.map(i64::from)),
        Type::INT2 => integer(row.try_get::<_, Option<i16>>(index)?.map(i64::from)),
        Type::INT4 => integer(row.try_get::<_, Option<i32>>(index)?.map(i64::from)),
        Type::INT8 => integer(row.try_get::<_, Option<i64>>(index)?),
        Type::TEXT | Type::VARCHAR => row
            .try_get::<_, Option<String>>(index)?
            .map_or(Value::Null, Value::Text),
        ref other => {
            return Err(plain(format!(
                "the column {} is of type {other}, which herald does not copy",
                row.columns()[index].name()
            )));
        }
    })
}

/// A parameter, of the type PostgreSQL gives its column.
type Param = Box<dyn ToSql + Sync + Send>;

/// `value` as the type `kind` PostgreSQL reports for its parameter:
/// booleans from SQLite's 0 and 1, integers of the column's width, text.
fn param(value: &Value, kind: &Type) -> Result<Param, String> {
    let out_of_range = |n: i64| format!("{n} does not fit in {kind}");
    let refused = || format!("{value:?} cannot be stored as {kind}");
    Ok(match *kind {
        Type::BOOL => match value {
            Value::Null => Box::new(None::<bool>),
            Value::Integer(0) => Box::new(Some(false)),
            Value::Integer(1) => Box::new(Some(true)),
            _ => return Err(refused()),
        },
        Type::INT2 => match *value {
            Value::Null => Box::new(None::<i16>),
            Value::Integer(n) => Box::new(Some(i16::try_from(n).map_err(|_| out_of_range(n))?)),
            _ => return Err(refused()),
        },
        Type::INT4 => match *value {
            Value::Null => Box::new(None::<i32>),
            Value::Integer(n) => Box::new(Some(i32::try_from(n).map_err(|_| out_of_range(n))?)),
            _ => return Err(refused()),
        },
        Type::INT8 => match *value {
            Value::Null => Box::new(None::<i64>),
            Value::Integer(n) => Box::new(Some(n)),
            _ => return Err(refused()),
        },
        Type::TEXT | Type::VARCHAR => match value {
            Value::Null => Box::new(None::<String>),
            Value::Text(text) => Box::new(Some(text.clone())),
            _ => return Err(refused()),
        },
        _ => return Err(refused()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(value: Value, kind: Type) -> Result<String, String> {
        param(&value, &kind).map(|param| format!("{param:?}"))
    }

    #[test]
    fn values_take_the_type_of_their_column() {
        assert_eq!(shown(Value::Integer(1), Type::BOOL).unwrap(), "Some(true)");
        assert_eq!(shown(Value::Integer(0), Type::BOOL).unwrap(), "Some(false)");
        assert_eq!(shown(Value::Null, Type::BOOL).unwrap(), "None");
        assert!(shown(Value::Integer(2), Type::BOOL).is_err());
        assert_eq!(shown(Value::Integer(7), Type::INT4).unwrap(), "Some(7)");
        assert!(shown(Value::Integer(i64::MAX), Type::INT4).is_err());
        assert_eq!(
            shown(Value::Integer(i64::MAX), Type::INT8).unwrap(),
            format!("Some({})", i64::MAX)
        );
        assert_eq!(shown(Value::Text("x".into()), Type::TEXT).unwrap(), "Some(\"x\")");
        assert!(shown(Value::Text("x".into()), Type::INT8).is_err());
        assert!(shown(Value::Integer(1), Type::TEXT).is_err());
        assert!(shown(Value::Integer(1), Type::TIMESTAMPTZ).is_err());
    }

    #[test]
    fn emptiness_looks_at_every_table() {
        let query = anything_stored();
        for table in LAYOUTS
            .iter()
            .map(|layout| layout.name)
            .chain(POSTGRES_ONLY.iter().copied())
        {
            assert!(query.contains(&format!("FROM {table})")), "{query}");
        }
    }
}
