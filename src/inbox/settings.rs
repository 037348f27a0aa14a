//! herald.toml's `[inbox]`: where the process's mailbox is and what herald
//! does with what it has read, validated by `config` and carried by the
//! daemon next to `send::Delivery`. The model knows nothing of mailboxes.

use std::path::PathBuf;
use std::time::Duration;

use crate::send::Security;

/// The folder handled messages are moved to, unless `processed` says.
pub const DEFAULT_PROCESSED: &str = "Processed";

/// The folder a message herald cannot read is moved to, unless
/// `unreadable` says.
pub const DEFAULT_UNREADABLE: &str = "Unreadable";

/// How often the mailbox is looked at when nothing tells herald that mail
/// came (an IMAP server without IDLE; a maildir inotify cannot watch).
pub const DEFAULT_POLL: Duration = Duration::from_secs(5 * 60);

/// The longest one IMAP command may take before the connection is given
/// up and opened again.
pub const DEFAULT_IMAP_TIMEOUT: Duration = Duration::from_secs(60);

/// The inbox: the mailbox, its folders, and the bounce policy.
#[derive(Debug, Clone)]
pub struct InboxSettings {
    pub mailbox: Mailbox,
    /// The folder handled messages go to, flagged as seen (a Maildir++
    /// subfolder for a maildir, an IMAP folder otherwise). Created if
    /// missing.
    pub processed: String,
    /// The folder a message herald cannot read goes to.
    pub unreadable: String,
    /// How often to look when the mailbox cannot say that mail came.
    pub poll: Duration,
    /// Temporary failures within `bounce_period` that suppress an address.
    pub bounce_threshold: u32,
    pub bounce_period: jiff::SignedDuration,
}

/// Where the process's mail is read from.
#[derive(Debug, Clone)]
pub enum Mailbox {
    /// A maildir a local MTA delivers into (absolute: a relative path in
    /// herald.toml is inside the state directory).
    Maildir(PathBuf),
    Imap(ImapSettings),
}

/// An IMAP account. The password never comes from herald.toml: from a
/// file, or the systemd credential `imap-password`.
#[derive(Clone)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    /// TLS from the first byte, STARTTLS (required), or none (loopback only).
    pub security: Security,
    pub username: String,
    /// `None` when it could not be known at load (a credential only the
    /// service is given): the source refuses to log in without one.
    pub password: Option<String>,
    /// Root certificates (PEM) to trust besides the system's.
    pub ca_file: Option<PathBuf>,
    /// The folder new mail arrives in.
    pub folder: String,
    /// The longest one command may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for ImapSettings {
    // Written by hand so that the password never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ca_file", &self.ca_file)
            .field("folder", &self.folder)
            .field("timeout", &self.timeout)
            .finish()
    }
}
