//! The environment herald reads (HERALD_* overrides, systemd credentials),
//! and the secrets that never live in the config files: the SMTP password
//! and the link secrets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The environment variables herald reads, captured once so that loading
/// is a function of its inputs (and tests need not touch the process).
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

/// The variables herald reads; everything else is ignored.
const VARIABLES: &[&str] = &[
    "HERALD_TRANSPORT",
    "HERALD_MAILDIR",
    "HERALD_STATE_DIR",
    "HERALD_REDIRECT_TO",
    "HERALD_SMTP_HOST",
    "HERALD_SMTP_PORT",
    "HERALD_SMTP_SECURITY",
    "HERALD_SMTP_USERNAME",
    "HERALD_SMTP_PASSWORD_FILE",
    "HERALD_SMTP_CA_FILE",
    "HERALD_IMAP_PASSWORD_FILE",
    "HERALD_LINK_SECRET_FILE",
    "HERALD_DATABASE_PASSWORD_FILE",
    "HERALD_NODE",
    "CREDENTIALS_DIRECTORY",
    "STATE_DIRECTORY",
];

/// The name of the systemd credential holding the SMTP password
/// (`LoadCredential=smtp-password:/path/to/file`).
pub const PASSWORD_CREDENTIAL: &str = "smtp-password";

/// The name of the systemd credential holding the inbox's IMAP password.
pub const IMAP_PASSWORD_CREDENTIAL: &str = "imap-password";

/// The name of the systemd credential holding the link secrets
/// (`LoadCredential=link-secret:/path/to/file`).
pub const LINK_SECRET_CREDENTIAL: &str = "link-secret";

impl Environment {
    /// The process environment, filtered to the variables herald reads.
    pub fn from_process() -> Environment {
        let vars = VARIABLES
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|value| ((*name).to_owned(), value)))
            .collect();
        Environment { vars }
    }

    /// Sets a variable, for tests and embedding.
    pub fn with(mut self, name: &str, value: &str) -> Environment {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }

    pub fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).filter(|value| !value.is_empty()).cloned()
    }
}

/// The SMTP password in `path` (the `password_file` setting), without the
/// line break that ends it. The error says which file and why, never what
/// it holds.
pub fn password_file(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|text| text.trim_end_matches(['\r', '\n']).to_owned())
        .map_err(|err| format!("cannot read the password file {}: {err}", path.display()))
}

/// The SMTP password from the systemd credential `smtp-password`, if
/// systemd gave herald credentials (`$CREDENTIALS_DIRECTORY`) and that one
/// among them; `None` otherwise.
pub fn credential(env: &Environment) -> Result<Option<String>, String> {
    named_credential(env, PASSWORD_CREDENTIAL)
}

/// The systemd credential `name`, as [`credential`] reads `smtp-password`.
pub fn named_credential(env: &Environment, name: &str) -> Result<Option<String>, String> {
    let Some(path) = credential_path(env, name) else {
        return Ok(None);
    };
    std::fs::read_to_string(&path)
        .map(|text| Some(text.trim_end_matches(['\r', '\n']).to_owned()))
        .map_err(|err| format!("cannot read the credential {}: {err}", path.display()))
}

/// The file of the systemd credential `name`, if systemd gave herald
/// credentials (`$CREDENTIALS_DIRECTORY`) and that one among them.
pub fn credential_path(env: &Environment, name: &str) -> Option<PathBuf> {
    let path = Path::new(&env.var("CREDENTIALS_DIRECTORY")?).join(name);
    path.exists().then_some(path)
}

/// Whether herald runs with systemd credentials (`$CREDENTIALS_DIRECTORY`):
/// only then can a missing `smtp-password` credential be known at load.
pub fn has_credentials(env: &Environment) -> bool {
    env.var("CREDENTIALS_DIRECTORY").is_some()
}
