//! Delivery into a local maildir, for rehearsals and machines with no relay.
//!
//! The maildir protocol makes each delivery atomic: the message is written
//! under `tmp/`, flushed to disk, then renamed into `new/`, so a reader of
//! `new/` never sees half a message and a crash leaves at most a stray file
//! in `tmp/`. Every send makes a new file, even for the same message twice:
//! whoever counts duplicates must be able to see them. Reading the maildir
//! is left to a mail client. The messages are private: directories herald
//! creates are 0700 and message files 0600, whatever the umask.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{Outcome, Outgoing, one_recipient};
use crate::clock::Clock;

/// Process-wide, so that two mailers on the same directory (the old and the
/// new one across a reload) never pick the same name.
static DELIVERIES: AtomicU64 = AtomicU64::new(0);

/// Writes each message as one file in `<dir>/new/`.
pub struct MaildirMailer {
    dir: PathBuf,
    host: String,
    clock: Arc<dyn Clock>,
    closed: AtomicBool,
}

impl MaildirMailer {
    /// The directory and its `cur/ new/ tmp/` are created at the first send.
    pub fn new(dir: PathBuf, clock: Arc<dyn Clock>) -> MaildirMailer {
        // Any name will do when the host has none that fits a file name:
        // the pid and the counter still keep names apart on this host.
        let host = hostname::get()
            .ok()
            .and_then(|name| name.into_string().ok())
            .map(|name| safe_host(&name))
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "herald".to_owned());
        MaildirMailer {
            dir,
            host,
            clock,
            closed: AtomicBool::new(false),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sends one message; see [`super::Mailer::send`]. The write runs on
    /// tokio's blocking pool; if this future is dropped meanwhile, the file
    /// may still land.
    pub async fn send(&self, message: &Outgoing) -> Outcome {
        if let Err(refused) = one_recipient(message) {
            return refused;
        }
        if self.closed.load(Ordering::Acquire) {
            return Outcome::Transient {
                reply: "not sent: herald is shutting down".into(),
            };
        }
        let name = self.unique_name();
        let bytes = message.to_bytes();
        let dir = self.dir.clone();
        match tokio::task::spawn_blocking(move || deliver(&dir, &name, &bytes)).await {
            Ok(Ok(Written { path, unsynced: None })) => Outcome::Delivered {
                reply: format!("written to {}", path.display()),
            },
            // In new/ and flushed: delivered, with the risk said.
            Ok(Ok(Written {
                path,
                unsynced: Some(error),
            })) => Outcome::Delivered {
                reply: format!(
                    "written to {}, but the directory could not be flushed ({error}): a power loss may still lose it",
                    path.display()
                ),
            },
            Ok(Err(error)) => Outcome::Transient {
                reply: format!("cannot write to the maildir: {error}"),
            },
            Err(error) => Outcome::Transient {
                reply: format!("the maildir write did not finish: {error}"),
            },
        }
    }

    pub fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
    }

    pub fn describe(&self) -> String {
        format!("maildir {}", self.dir.display())
    }

    /// `<unix-secs>.<counter>_<pid>.<host>`, the classic maildir form: the
    /// counter makes names unique within the process, the pid across
    /// processes on this host, and the host across hosts sharing a disk.
    fn unique_name(&self) -> String {
        let seconds = self.clock.now().as_second();
        let counter = DELIVERIES.fetch_add(1, Ordering::Relaxed);
        format!("{seconds}.{counter}_{}.{}", std::process::id(), self.host)
    }
}

impl std::fmt::Debug for MaildirMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaildirMailer")
            .field("dir", &self.dir)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// A message written into `new/`.
struct Written {
    path: PathBuf,
    /// Why `new/` itself could not be flushed, if it could not.
    unsynced: Option<io::Error>,
}

/// Writes `bytes` to `tmp/<name>`, flushes it, and renames it into
/// `new/<name>`. Errors name the file they are about.
fn deliver(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<Written> {
    for sub in ["tmp", "new", "cur"] {
        let path = dir.join(sub);
        crate::state::create_private_dir(&path).map_err(|error| about(&path, error))?;
    }
    let tmp = dir.join("tmp").join(name);
    let new = dir.join("new").join(name);
    let written = (|| {
        // create_new: a name is never reused, even if the counter were.
        // 0600 even under a umask of 0: the umask can only take bits away.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(crate::state::FILE_MODE)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    // On failure the half-written file is removed as far as it can be; the
    // error that matters is the write's, and a stray file in tmp/ is one
    // that maildir readers never look at.
    if let Err(error) = written {
        let _ = fs::remove_file(&tmp);
        return Err(about(&tmp, error));
    }
    if let Err(error) = fs::rename(&tmp, &new) {
        let _ = fs::remove_file(&tmp);
        return Err(about(&new, error));
    }
    // The rename is durable only once the directory is. The message is in
    // new/ already, so a failure here is not a failed delivery (a retry
    // would write it twice), but the reply says so.
    let new_dir = dir.join("new");
    let unsynced = File::open(&new_dir)
        .and_then(|new_dir| new_dir.sync_all())
        .err()
        .map(|error| about(&new_dir, error));
    Ok(Written { path: new, unsynced })
}

fn about(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

/// A host name fit for a file name: maildir names use `/` never and `:`
/// for flags, so only letters, digits, `-` and `.` are kept.
fn safe_host(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn names_are_unique_and_safe() {
        let clock = Arc::new(ManualClock::new("2017-09-14T10:00:00Z".parse().unwrap()));
        let mailer = MaildirMailer::new(PathBuf::from("/unused"), clock);
        let first = mailer.unique_name();
        let second = mailer.unique_name();
        assert_ne!(first, second);
        assert!(first.starts_with("1505383200."), "{first}");
        assert!(!first.contains('/') && !first.contains(':'), "{first}");
        assert_eq!(safe_host("mail/host:1"), "mail_host_1");
    }
}
