//! Where a command finds the outbox: the SQLite file of a state directory,
//! or the PostgreSQL database that herald.toml's `[state]` names.
//!
//! `--state-dir` always means the SQLite file of that directory, even when
//! the configuration names a database: the explicit option wins.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::diagnostics::Chain;
use crate::outbox::{Opener, Outbox, OutboxError, PostgresSettings, SqliteOutbox};
use crate::send::Delivery;

/// What to do when the database cannot be reached.
const DATABASE_ADVICE: &str = "check [state] in herald.toml and that the server is up";

/// Where the outbox is; shown as what follows "the outbox in".
#[derive(Debug, Clone)]
pub enum Place {
    /// The SQLite file in this state directory.
    Dir(PathBuf),
    /// The database of `[state]` (with the state directory, which holds
    /// nothing of the outbox then).
    Database {
        settings: Box<PostgresSettings>,
        state_dir: PathBuf,
    },
}

impl Place {
    /// The configuration's outbox: `[state]`'s database, else the SQLite
    /// file of its state directory.
    pub fn of(delivery: &Delivery) -> Place {
        match &delivery.database {
            Some(settings) => Place::Database {
                settings: Box::new(settings.clone()),
                state_dir: delivery.state_dir.clone(),
            },
            None => Place::Dir(delivery.state_dir.clone()),
        }
    }

    /// Whether there is an outbox to open: the SQLite file exists (herald
    /// has run with this state directory); a database is always there to
    /// be asked (opening it says when it cannot be reached).
    pub fn exists(&self) -> bool {
        match self {
            Place::Dir(dir) => dir.join(SqliteOutbox::FILE).exists(),
            Place::Database { .. } => true,
        }
    }

    /// Opens the outbox as a command does (creating the SQLite file, or
    /// the database's tables, if need be).
    pub fn open(&self) -> Result<Box<dyn Outbox>, OutboxError> {
        match self {
            Place::Dir(dir) => crate::outbox::open(dir, None, Opener::Command),
            Place::Database { settings, state_dir } => {
                crate::outbox::open(state_dir, Some(settings), Opener::Command)
            }
        }
    }

    /// Opens the outbox, or says why it cannot and what to do.
    pub fn open_or_explain(&self) -> anyhow::Result<Box<dyn Outbox>> {
        self.open().map_err(|err| self.cannot_open(err))
    }

    /// Why the outbox cannot be opened, and what to do.
    pub fn cannot_open(&self, err: OutboxError) -> anyhow::Error {
        match self {
            Place::Dir(dir) => {
                anyhow::Error::new(err).context(format!("cannot open the outbox in {}", dir.display()))
            }
            // The context names the database again: its cause is enough.
            Place::Database { settings, .. } => anyhow::anyhow!(
                "cannot use the database {}: {}; {DATABASE_ADVICE}",
                settings.url,
                Chain(&*err.source)
            ),
        }
    }

    /// What to do when the outbox cannot be read, as the end of a
    /// sentence ("; check …"): nothing for an SQLite file, whose error
    /// says enough.
    pub fn advice(&self) -> String {
        match self {
            Place::Dir(_) => String::new(),
            Place::Database { .. } => format!("; {DATABASE_ADVICE}"),
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Dir(dir) => write!(f, "{}", dir.display()),
            Place::Database { settings, .. } => write!(f, "the database {}", settings.url),
        }
    }
}

/// Whether the herald.toml of `config` has a `[state]` table, read as
/// plainly as can be: for a configuration that does not load, so that a
/// command does not take the SQLite file of `$HERALD_STATE_DIR` (perhaps
/// one left behind by `herald state migrate`) for the outbox.
pub fn names_database(config: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(config.join(crate::config::SETTINGS_FILE)) else {
        return false;
    };
    match text.parse::<toml::Table>() {
        Ok(table) => table.contains_key("state"),
        Err(_) => text.lines().any(|line| {
            let line = line.trim_start();
            line.starts_with("[state]") || line.starts_with("[state.") || line.starts_with("state =")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_table_is_found_even_in_a_herald_toml_that_does_not_parse() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(crate::config::SETTINGS_FILE);
        assert!(!names_database(dir.path()));
        std::fs::write(&file, "from = \"a@b\"\n[smtp]\nhost = \"h\"\n").unwrap();
        assert!(!names_database(dir.path()));
        std::fs::write(
            &file,
            "from = \"a@b\"\n[state]\ndatabase = \"postgres://h@db/h\"\n",
        )
        .unwrap();
        assert!(names_database(dir.path()));
        std::fs::write(&file, "from = = broken\n  [state]  \ndatabase = 1\n").unwrap();
        assert!(names_database(dir.path()));
    }

    #[test]
    fn a_place_reads_after_the_outbox_in() {
        let dir = Place::Dir(PathBuf::from("/var/lib/herald"));
        assert_eq!(format!("the outbox in {dir}"), "the outbox in /var/lib/herald");
        assert_eq!(dir.advice(), "");
    }
}
