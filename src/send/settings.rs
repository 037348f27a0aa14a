//! How and where mail leaves herald: the `[delivery]` settings of
//! herald.toml, validated by `config` and used by the mailers and the
//! daemon. They are not part of the model: the planner and the renderer
//! never need to know how mail travels.

use std::path::PathBuf;

/// How and where mail is delivered; used by the daemon, not by the planner.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub transport: Transport,
    /// Where the outbox database lives (and the daemon's lock, and a
    /// maildir given as a relative path).
    pub state_dir: PathBuf,
    /// The PostgreSQL database several nodes share (`[state]`), instead of
    /// the SQLite file in `state_dir`.
    pub database: Option<crate::outbox::PostgresSettings>,
    /// A send that is late by less than this after downtime still goes out.
    pub late_window: jiff::SignedDuration,
    /// Every mail goes to this address instead, for rehearsals.
    pub redirect_to: Option<lettre::Address>,
    /// The size (encoded, in bytes) over which `herald check` warns that
    /// a message carrying attachments is likely to be refused.
    pub max_message_size: u64,
}

/// The way messages leave herald.
#[derive(Debug, Clone)]
pub enum Transport {
    Smtp(SmtpSettings),
    /// One file per message in a maildir (`new/`), for rehearsals and
    /// machines with no relay. A relative path is inside the state directory.
    Maildir(PathBuf),
}

/// Connection settings for an SMTP relay. The password is never stored here
/// in clear in the config: it comes from a file or a systemd credential.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<String>,
    pub allow_plaintext_auth: bool,
    /// Root certificates (PEM) to trust besides the system's, for a relay
    /// whose certificate comes from a private CA.
    pub ca_file: Option<PathBuf>,
    pub timeout: std::time::Duration,
    pub max_connections: usize,
    /// At most this many messages per minute; `None` is unlimited.
    pub per_minute: Option<u32>,
    /// At most this many in any rolling hour, and day (see `crate::pace`).
    pub per_hour: Option<u32>,
    pub per_day: Option<u32>,
    /// How long before its due instant a burst the limits slow down may
    /// start, so that its last message leaves on time.
    pub max_early: jiff::SignedDuration,
}

impl std::fmt::Debug for SmtpSettings {
    // Written by hand so that the password never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("allow_plaintext_auth", &self.allow_plaintext_auth)
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .field("max_connections", &self.max_connections)
            .field("per_minute", &self.per_minute)
            .field("per_hour", &self.per_hour)
            .field("per_day", &self.per_day)
            .field("max_early", &self.max_early)
            .finish()
    }
}

impl SmtpSettings {
    /// The relay's limits, as the pacing arithmetic takes them.
    pub fn limits(&self) -> crate::pace::Limits {
        crate::pace::Limits {
            per_minute: self.per_minute,
            per_hour: self.per_hour,
            per_day: self.per_day,
        }
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (usually port 465).
    Tls,
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    StartTls,
    /// No encryption at all; only sensible on loopback.
    None,
}
