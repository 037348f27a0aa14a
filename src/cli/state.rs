//! `herald state migrate`: copies the SQLite outbox of a state directory
//! into an empty PostgreSQL database, for nodes that are to share it.
//!
//! The copy is one transaction (all or nothing), made while the state
//! directory is locked as a daemon locks it, so that no daemon sends from
//! the SQLite file meanwhile (one already running makes the command refuse,
//! naming it). The database must hold no herald state: the command never
//! merges. Once copied, every table is read back from the database and
//! compared with what was read from SQLite, row by row; the SQLite file is
//! left as it was.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::outbox::{Export, PostgresOutbox, PostgresSettings, SqliteOutbox};
use crate::state::{LockError, StateLock};

/// The node name the copy connects as (claims none).
const NODE: &str = "migrate";

/// The lease of its settings (it takes none).
const LEASE: Duration = Duration::from_secs(30);

/// What `herald state migrate` was given.
pub struct Args<'a> {
    /// `sqlite:PATH`: the state directory, or its outbox file.
    pub from: &'a str,
    /// `postgres://USER@HOST:PORT/DATABASE`.
    pub to: &'a str,
    pub password_file: Option<&'a Path>,
    pub ca_file: Option<&'a Path>,
}

pub fn migrate(args: &Args) -> super::CommandResult {
    let (dir, file) = source(args.from)?;
    let settings = target(args)?;
    let _lock = StateLock::acquire(&dir).map_err(|err| match err {
        LockError::Held { pid, .. } => anyhow::anyhow!(
            "{} is running on the state directory {}; stop it first (`systemctl stop herald`), then run `herald state migrate` again",
            match pid {
                Some(pid) => format!("a herald daemon (pid {pid})"),
                None => "a herald daemon".to_owned(),
            },
            dir.display()
        ),
        other => anyhow::Error::new(other).context(format!(
            "cannot lock the state directory {}; run herald state migrate as the user the daemon runs as (herald)",
            dir.display()
        )),
    })?;
    let outbox =
        SqliteOutbox::open(&dir).with_context(|| format!("cannot open the outbox {}", file.display()))?;
    let rows = outbox
        .export()
        .with_context(|| format!("cannot read the outbox {}", file.display()))?;
    drop(outbox);

    let database = PostgresOutbox::open(&settings)
        .with_context(|| format!("cannot use the database {}", settings.url))?;
    if !database.is_empty()? {
        bail!(
            "the database {} already holds herald state; herald state migrate copies only into an empty database: give it a new one (`createdb`), or empty this one if what it holds is not needed, and run it again",
            settings.url
        );
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "copying {} from {} into {}",
        rows_of(rows.rows()),
        file.display(),
        settings.url
    )?;
    database.import(rows.clone()).with_context(|| {
        format!(
            "cannot copy the outbox into {}; nothing was copied (the copy is one transaction), and the SQLite outbox is as it was",
            settings.url
        )
    })?;
    let copy = database
        .export()
        .with_context(|| format!("cannot read the copy back from {}", settings.url))?;
    for table in &rows.tables {
        if let Err(why) = verify(&rows, &copy, &table.name) {
            bail!(
                "{why}; the SQLite outbox {} is as it was: keep using it, drop and create the database {} again, and report this as a bug",
                file.display(),
                settings.url
            );
        }
        writeln!(out, "{}: {} copied", table.name, rows_of(table.rows.len()))?;
    }
    writeln!(
        out,
        "herald: migrated {} in {} tables from {} into {}, each table read back and checked; \
         next: set `database = \"{}\"` (and `password_file`) under `[state]` in herald.toml and start herald \
         (the SQLite outbox is left as it was)",
        rows_of(rows.rows()),
        rows.tables.len(),
        file.display(),
        settings.url,
        settings.url
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The state directory and the outbox file of `--from sqlite:PATH`, PATH
/// being either.
fn source(from: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let Some(path) = from.strip_prefix("sqlite:").filter(|path| !path.is_empty()) else {
        bail!(
            "--from {from:?} is not an SQLite outbox: write --from sqlite:PATH, PATH being the state directory (/var/lib/herald by default) or its {}",
            SqliteOutbox::FILE
        );
    };
    let path = Path::new(path);
    let (dir, file) = if path.is_dir() {
        (path.to_owned(), path.join(SqliteOutbox::FILE))
    } else if path.file_name().is_some_and(|name| name == SqliteOutbox::FILE) {
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        (dir, path.to_owned())
    } else if path.exists() {
        bail!(
            "{} is not a state directory nor an outbox ({}): give the state directory herald ran with",
            path.display(),
            SqliteOutbox::FILE
        );
    } else {
        bail!(
            "{} does not exist: give the state directory herald ran with (herald.toml's state_dir, /var/lib/herald by default)",
            path.display()
        );
    };
    if !file.is_file() {
        bail!(
            "there is no outbox {}: herald has not run with the state directory {}; give the one it ran with (herald.toml's state_dir, /var/lib/herald by default)",
            file.display(),
            dir.display()
        );
    }
    Ok((dir, file))
}

/// The database of `--to`, with the password of `--password-file` (or
/// `$HERALD_DATABASE_PASSWORD_FILE`), if any.
fn target(args: &Args) -> anyhow::Result<PostgresSettings> {
    let password = match args.password_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map(|text| text.trim_end_matches(['\r', '\n']).to_owned())
                .with_context(|| format!("cannot read the password file {}", path.display()))?,
        ),
        None => None,
    };
    let mut settings = PostgresSettings::new(args.to, password, NODE, LEASE)
        .map_err(|why| anyhow::anyhow!("--to: {why}; here, name the password's file with --password-file"))?;
    settings.ca_file = args.ca_file.map(Path::to_owned);
    Ok(settings)
}

/// Whether the copy of `table` holds what was read from SQLite: as many
/// rows, and the same ones. The error names the table and says how they
/// differ.
fn verify(source: &Export, copy: &Export, table: &str) -> Result<(), String> {
    let Some(read) = source.table(table) else {
        return Ok(());
    };
    let Some(copied) = copy.table(table) else {
        return Err(format!("the database has no table {table} after the copy"));
    };
    if read.rows.len() != copied.rows.len() {
        return Err(format!(
            "{table}: the database has {} where the SQLite outbox has {}",
            rows_of(copied.rows.len()),
            rows_of(read.rows.len())
        ));
    }
    if read.columns != copied.columns {
        return Err(format!(
            "{table}: the database has the columns ({}) where the SQLite outbox has ({})",
            copied.columns.join(", "),
            read.columns.join(", ")
        ));
    }
    let differing = read
        .rows
        .iter()
        .zip(&copied.rows)
        .enumerate()
        .find(|(_, (a, b))| a != b);
    if let Some((index, (a, b))) = differing {
        let (column, was, is) = a
            .iter()
            .zip(b)
            .zip(&read.columns)
            .find(|((was, is), _)| was != is)
            .map(|((was, is), column)| (column.as_str(), format!("{was:?}"), format!("{is:?}")))
            .unwrap_or(("?", String::new(), String::new()));
        return Err(format!(
            "{table}: row {} differs from the SQLite outbox's (column {column}: {is} where SQLite has {was})",
            index + 1
        ));
    }
    Ok(())
}

/// 1 → "1 row", 10000 → "10,000 rows".
fn rows_of(n: usize) -> String {
    use crate::diagnostics::thousands;
    format!("{} row{}", thousands(n), if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{Table, Value};

    fn export(rows: Vec<Vec<Value>>) -> Export {
        Export {
            tables: vec![Table {
                name: "kv".into(),
                columns: vec!["name".into(), "value".into()],
                rows,
            }],
        }
    }

    fn kv(name: &str, value: &str) -> Vec<Value> {
        vec![Value::Text(name.into()), Value::Text(value.into())]
    }

    #[test]
    fn a_copy_is_checked_by_count_then_row_by_row() {
        let source = export(vec![kv("a", "1"), kv("b", "2")]);
        assert_eq!(verify(&source, &source.clone(), "kv"), Ok(()));
        let short = export(vec![kv("a", "1")]);
        assert_eq!(
            verify(&source, &short, "kv").unwrap_err(),
            "kv: the database has 1 row where the SQLite outbox has 2 rows"
        );
        let changed = export(vec![kv("a", "1"), kv("b", "3")]);
        let why = verify(&source, &changed, "kv").unwrap_err();
        assert!(why.starts_with("kv: row 2 differs"), "{why}");
        assert!(why.contains("column value"), "{why}");
        assert!(verify(&source, &Export::default(), "kv").is_err());
    }

    #[test]
    fn a_new_outbox_exports_every_table_empty_with_its_columns() {
        let dir = tempfile::tempdir().unwrap();
        let export = SqliteOutbox::open(dir.path()).unwrap().export().unwrap();
        let names: Vec<&str> = export.tables.iter().map(|table| table.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "sends",
                "attempts",
                "kv",
                "calendar",
                "incoming",
                "suppressions",
                "failures",
                "overrides",
                "requests"
            ]
        );
        assert_eq!(export.rows(), 0);
        assert_eq!(export.table("sends").unwrap().columns.len(), 26);
        assert_eq!(export.table("attempts").unwrap().column("relay"), Some(4));
    }

    #[test]
    fn the_source_is_a_state_directory_or_its_outbox() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().display().to_string();
        let err = source(&format!("sqlite:{path}")).unwrap_err().to_string();
        assert!(err.contains("there is no outbox"), "{err}");
        std::fs::write(dir.path().join(SqliteOutbox::FILE), "").unwrap();
        let expected = (dir.path().to_owned(), dir.path().join(SqliteOutbox::FILE));
        assert_eq!(source(&format!("sqlite:{path}")).unwrap(), expected);
        assert_eq!(
            source(&format!("sqlite:{path}/{}", SqliteOutbox::FILE)).unwrap(),
            expected
        );
        let err = source(&format!("sqlite:{path}/nowhere")).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        let err = source(&path).unwrap_err().to_string();
        assert!(err.contains("write --from sqlite:PATH"), "{err}");
    }
}
