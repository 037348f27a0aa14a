//! The environment herald reads (HERALD_* overrides, systemd credentials),
//! and the SMTP password, which never lives in the config files.

use std::collections::BTreeMap;
use std::path::Path;

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
    "CREDENTIALS_DIRECTORY",
    "STATE_DIRECTORY",
];

/// The name of the systemd credential holding the SMTP password
/// (`LoadCredential=smtp-password:/path/to/file`).
pub const PASSWORD_CREDENTIAL: &str = "smtp-password";

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

/// The SMTP password: from `password_file` (relative to the config
/// directory) if set, else from the systemd credential, else none.
pub fn password(
    env: &Environment,
    password_file: Option<&str>,
    config_dir: &Path,
) -> Result<Option<String>, String> {
    if let Some(file) = password_file {
        let path = config_dir.join(file);
        return std::fs::read_to_string(&path)
            .map(|text| Some(text.trim_end_matches(['\r', '\n']).to_owned()))
            .map_err(|err| format!("cannot read the password file {}: {err}", path.display()));
    }
    if let Some(dir) = env.var("CREDENTIALS_DIRECTORY") {
        let path = Path::new(&dir).join(PASSWORD_CREDENTIAL);
        if path.exists() {
            return std::fs::read_to_string(&path)
                .map(|text| Some(text.trim_end_matches(['\r', '\n']).to_owned()))
                .map_err(|err| format!("cannot read the credential {}: {err}", path.display()));
        }
    }
    Ok(None)
}
