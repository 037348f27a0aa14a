//! The state directory: private to herald, and used by one daemon at a time.
//!
//! The outbox holds every recipient's address and the history of what was
//! sent to them; the maildir holds the messages. Outside systemd (whose
//! `StateDirectoryMode=0700` does it for the unit) nothing else made them
//! private, and a umask of 022 left them readable by every local user. So
//! herald creates its directories 0700 and its files 0600 itself, setting
//! the mode explicitly rather than trusting the umask.
//!
//! `herald run` holds an exclusive lock (flock) on `herald.lock` in the
//! state directory for as long as it runs: a second daemon on the same
//! directory would release the first one's sends in flight and send them
//! again. The lock file holds the holder's pid, for the message that tells
//! the second one who is there. Commands that write to the outbox (`retry`,
//! `send --letter`) do not take it: they work alongside the daemon.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of every directory herald creates for its state.
pub const DIR_MODE: u32 = 0o700;
/// The mode of every file herald writes in its state directory.
pub const FILE_MODE: u32 = 0o600;

/// The lock file's name inside the state directory.
pub const LOCK_FILE: &str = "herald.lock";

/// Creates `dir` (and any missing parent) with mode 0700 whatever the
/// umask. A directory that exists already keeps its mode: it is the
/// administrator's (systemd's `StateDirectory=`, or one made on purpose).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)?;
    // The umask may have taken bits away (never added any); set it exactly.
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
}

/// Creates `path` 0600 if it does not exist, or makes it 0600 if it does
/// (see [`tighten_if_present`]). For files herald's libraries create
/// themselves (SQLite's database, from whose mode SQLite derives that of
/// its `-wal` and `-shm` files).
pub fn make_private_file(path: &Path) -> io::Result<()> {
    if path.exists() {
        return tighten_if_present(path);
    }
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path);
    match created {
        // The umask may have taken bits away (never added any); set it exactly.
        Ok(file) => file.set_permissions(fs::Permissions::from_mode(FILE_MODE)),
        // Made by another process in the meantime: theirs is made private.
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => tighten_if_present(path),
        Err(err) => Err(err),
    }
}

/// Makes `path` 0600 if it exists and is not (a file left by an older
/// herald, or made by a library under the umask). A file that is not this
/// user's to change (`herald history` run by root on the daemon's outbox
/// is; by another user who may read it, is not) is left as it is: reading
/// it is no reason to fail, and its owner, the daemon, tightens it at its
/// next start.
pub fn tighten_if_present(path: &Path) -> io::Result<()> {
    let mode = match fs::metadata(path) {
        Ok(metadata) => metadata.permissions().mode() & 0o777,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    if mode == FILE_MODE {
        return Ok(());
    }
    match fs::set_permissions(path, fs::Permissions::from_mode(FILE_MODE)) {
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// The lock a running daemon holds on its state directory; released when
/// dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
}

impl StateLock {
    /// Takes the lock of `dir`, creating the directory if needed, and
    /// writes this process's pid into the lock file.
    pub fn acquire(dir: &Path) -> Result<StateLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let failed = |source: io::Error| LockError::Io {
            path: path.clone(),
            source,
        };
        create_private_dir(dir).map_err(failed)?;
        // Not truncated on open: the holder's pid must stay readable by the
        // process that finds the lock taken.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(failed)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let holder = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse::<u32>().ok());
                return Err(LockError::Held {
                    dir: dir.to_owned(),
                    pid: holder,
                });
            }
            Err(fs::TryLockError::Error(source)) => return Err(failed(source)),
        }
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))
            .and_then(|()| file.set_len(0))
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .and_then(|()| file.flush())
            .map_err(failed)?;
        Ok(StateLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Why the state directory could not be locked.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it: a daemon already runs on this directory.
    Held { dir: PathBuf, pid: Option<u32> },
    /// The lock file could not be made or locked.
    Io { path: PathBuf, source: io::Error },
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Held { dir, pid } => {
                let who = match pid {
                    Some(pid) => format!("another herald daemon (pid {pid})"),
                    None => "another herald daemon".to_owned(),
                };
                write!(
                    f,
                    "{who} is running on the state directory {}; stop it first (`systemctl stop herald`), or give this one a state directory of its own (--state-dir)",
                    dir.display()
                )
            }
            LockError::Io { path, .. } => write!(f, "cannot lock {}", path.display()),
        }
    }
}

impl std::error::Error for LockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Held { .. } => None,
            LockError::Io { source, .. } => Some(source),
        }
    }
}

/// Who claimed a send, as the outbox records it, so that sends in flight
/// are only ever released by the one who may: the daemon releases its own
/// at stop, and at start (holding the lock) those of a daemon that is gone
/// and of commands that are no longer running; a command releases nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Claimant(String);

impl Claimant {
    /// The daemon: there is one at a time (the lock), so its claims need no
    /// process of their own to name.
    pub fn daemon() -> Claimant {
        Claimant("daemon".to_owned())
    }

    /// This process, as a command (`send --letter`): its pid and its start
    /// time, so that a later process with the same pid is not taken for it.
    pub fn this_command() -> Claimant {
        let pid = std::process::id();
        Claimant(format!("command:{pid}:{}", process_start(pid).unwrap_or(0)))
    }

    pub fn from_stored(text: String) -> Claimant {
        Claimant(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the claimant is the daemon.
    pub fn is_daemon(&self) -> bool {
        self.0 == "daemon"
    }

    /// Whether the claimant is a command still running. A claimant that
    /// cannot be read (not written by this herald) is not running.
    pub fn is_running_command(&self) -> bool {
        let mut parts = self.0.split(':');
        let (Some("command"), Some(pid), Some(started), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let (Ok(pid), Ok(started)) = (pid.parse::<u32>(), started.parse::<u64>()) else {
            return false;
        };
        process_start(pid) == Some(started)
    }
}

impl fmt::Display for Claimant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// When process `pid` started (field 22 of `/proc/PID/stat`, in clock ticks
/// since boot), or `None` if there is no such process (or it cannot be
/// seen: under `ProtectProc=invisible` another user's process cannot).
fn process_start(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or
    // parentheses itself: count the fields from the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    // rest starts with field 3 (the state); field 22 is the 20th from there.
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_a_running_command_and_a_made_up_one_is_not() {
        assert!(Claimant::this_command().is_running_command());
        assert!(!Claimant::from_stored("command:4194305:1".into()).is_running_command());
        assert!(!Claimant::daemon().is_running_command());
        assert!(Claimant::daemon().is_daemon());
        assert!(!Claimant::from_stored("garbage".into()).is_running_command());
    }

    #[test]
    fn a_second_lock_on_the_same_directory_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = StateLock::acquire(&state).unwrap();
        let second = StateLock::acquire(&state).unwrap_err();
        assert!(
            matches!(&second, LockError::Held { pid: Some(pid), .. } if *pid == std::process::id()),
            "{second:?}"
        );
        assert!(
            second
                .to_string()
                .contains(&format!("(pid {})", std::process::id()))
        );
        drop(first);
        StateLock::acquire(&state).unwrap();
    }
}
