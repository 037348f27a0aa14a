//! herald.toml's `[state]` -> where the outbox lives: the SQLite file in
//! the state directory (without the table), or a PostgreSQL database that
//! several nodes share ([`PostgresSettings`]).
//!
//! Every node reads the same configuration directory, so nothing here is a
//! node's own: its name comes from `$HERALD_NODE`, else the host's name.
//! The password comes from `password_file`, `$HERALD_DATABASE_PASSWORD_FILE`
//! or the systemd credential `database-password`, never from herald.toml.

use std::time::Duration;

use toml::Spanned;

use crate::config::layered::Layers;
use crate::config::spanned::check;
use crate::config::{Loader, raw, secrets, values};
use crate::diagnostics::{Diagnostic, SourceFile};
use crate::outbox::PostgresSettings;

/// The systemd credential holding the database's password.
pub const DATABASE_PASSWORD_CREDENTIAL: &str = "database-password";

/// How long a claim lasts unless renewed, unless `lease` says.
const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// The shortest lease: renewals go every sixth of it, and a node cut off
/// stops sending after half of it.
const MIN_LEASE: Duration = Duration::from_secs(6);

impl Loader<'_> {
    /// Checks `[state]`: `Some(None)` without it (SQLite), `None` once a
    /// value is refused.
    pub(super) fn database(
        &self,
        src: &SourceFile,
        table: Option<&Spanned<raw::StateTable>>,
        d: &mut Vec<Diagnostic>,
    ) -> Option<Option<PostgresSettings>> {
        let Some(spanned) = table else {
            return Some(None);
        };
        let raw = spanned.get_ref();
        let before = d.len();
        let Some(url) = &raw.database else {
            d.push(src.at(
                spanned.span(),
                "[state] needs database = \"postgres://USER@HOST:PORT/DATABASE\"; without the table, the outbox is the SQLite file in the state directory",
            ));
            return None;
        };
        let lease = match &raw.lease {
            Some(text) => check(src, text, lease, d),
            None => Some(DEFAULT_LEASE),
        };
        let ca_file = raw.ca_file.as_ref().map(|text| self.dir.join(text.get_ref()));
        if let (Some(text), Some(path)) = (&raw.ca_file, &ca_file)
            && let Err(why) = crate::tls::client_config(Some(path))
        {
            d.push(src.at(
                text.span(),
                format!("cannot use ca_file {}: {why}", path.display()),
            ));
        }
        let layers = Layers::new(self.env, src);
        let password_file = layers.get(&["HERALD_DATABASE_PASSWORD_FILE"], raw.password_file.as_ref());
        let password = match password_file.path(Some(&self.dir)) {
            Some(path) => password_file.report(d, secrets::password_file(&path)).map(Some),
            None => secrets::named_credential(self.env, DATABASE_PASSWORD_CREDENTIAL)
                .map_err(|message| {
                    d.push(Diagnostic::in_file(
                        std::path::Path::new("$CREDENTIALS_DIRECTORY"),
                        message,
                    ));
                })
                .ok(),
        };
        let node = match self.env.var("HERALD_NODE") {
            Some(node) => node,
            None => hostname::get()
                .ok()
                .and_then(|name| name.into_string().ok())
                .unwrap_or_else(|| "herald".to_owned()),
        };
        if let Err(why) = node_name(&node) {
            d.push(Diagnostic::in_file(std::path::Path::new("$HERALD_NODE"), why));
        }
        // The URL is checked whatever else was refused, so that every
        // problem is said at once.
        let settings = check(
            src,
            url,
            |text| {
                let password = password.clone().flatten();
                PostgresSettings::new(text.trim(), password, &node, lease.unwrap_or(DEFAULT_LEASE))
            },
            d,
        );
        if d.len() > before {
            return None;
        }
        settings.map(|mut settings| {
            settings.ca_file = ca_file;
            Some(settings)
        })
    }
}

fn lease(text: &str) -> Result<Duration, String> {
    let duration = values::duration(text)?;
    let duration = duration.unsigned_abs();
    if duration < MIN_LEASE {
        return Err(format!(
            "the lease must be at least {} s: a node renews it every sixth of it and stops sending after half of it without a renewal",
            MIN_LEASE.as_secs()
        ));
    }
    Ok(duration)
}

/// A node's name: what its claims and the planner's role are recorded
/// under, so it must be unique among the nodes and readable in a log.
fn node_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid node name {name:?}: letters, digits, '-', '_' and '.', at most 64; set HERALD_NODE to one unique among the nodes"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_a_duration_of_at_least_six_seconds() {
        assert_eq!(lease("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(lease("2m"), Ok(Duration::from_secs(120)));
        assert!(lease("5s").unwrap_err().contains("at least 6 s"));
        assert!(lease("soon").is_err());
    }

    #[test]
    fn a_node_name_is_short_and_plain() {
        assert!(node_name("herald-1.example.org").is_ok());
        assert!(node_name("").is_err());
        assert!(node_name("a b").is_err());
        assert!(node_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn a_url_with_a_password_is_refused_and_one_without_a_user_too() {
        let refused = PostgresSettings::new("postgres://herald:secret@db/herald", None, "a", DEFAULT_LEASE);
        assert!(refused.unwrap_err().contains("holds a password"));
        let no_user = PostgresSettings::new("postgres://db/herald", None, "a", DEFAULT_LEASE);
        assert!(no_user.unwrap_err().contains("names no user"));
        let good = PostgresSettings::new(
            "postgres://herald@db:5433/herald",
            Some("pw".into()),
            "a",
            DEFAULT_LEASE,
        )
        .unwrap();
        assert_eq!(good.config.get_password(), Some(&b"pw"[..]));
        assert_eq!(good.config.get_ports(), &[5433]);
    }
}
