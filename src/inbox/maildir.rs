//! The inbox as a maildir a local MTA delivers into.
//!
//! A message not yet handled is a file in `new/`, or in `cur/` without the
//! `S` (seen) flag; dotfiles are not messages, and `tmp/` holds deliveries
//! still being written. Handled messages are renamed into a Maildir++
//! subfolder (`.<processed>/cur/<id>:2,S`, created if missing), which
//! Dovecot and mbsync show as a folder of the same name; a message herald
//! cannot read goes to `.<unreadable>/cur/`, its flags unchanged, so it
//! stays unread for a human. A rename within one filesystem is atomic:
//! a message is always in exactly one place, and is never deleted.
//!
//! File names are read as Dovecot and mbsync write them: the unique part is
//! everything before `:2,` (Dovecot adds `,S=<size>,W=<vsize>` to it, which
//! is kept), the flags everything after, and a file in `new/` may already
//! carry flags.
//!
//! New mail is noticed by inotify on `new/` and `cur/` (the `notify`
//! crate, as the configuration watch uses); where that fails (a watch
//! limit, NFS) the maildir is polled.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use super::source::{FETCH_BATCH, Fetched, MessageRef, Place, SourceError, Woke};

/// A maildir inbox.
pub struct MaildirSource {
    dir: PathBuf,
    processed: String,
    unreadable: String,
    poll: Duration,
    /// inotify on `new/` and `cur/`, started at the first wait; `None` until
    /// then, or when it could not be started (then the maildir is polled).
    watch: Option<Watch>,
    watch_failed: bool,
}

struct Watch {
    /// Kept alive for the watch to go on.
    _watcher: RecommendedWatcher,
    /// One token stands for "something arrived since the last scan".
    arrived: mpsc::Receiver<()>,
}

impl MaildirSource {
    pub fn new(dir: PathBuf, processed: &str, unreadable: &str, poll: Duration) -> MaildirSource {
        MaildirSource {
            dir,
            processed: processed.to_owned(),
            unreadable: unreadable.to_owned(),
            poll,
            watch: None,
            watch_failed: false,
        }
    }

    pub async fn fetch_new(&mut self, limit: usize) -> Result<Vec<Fetched>, SourceError> {
        // What arrived before this scan is in it: a later wait must not
        // wake for it.
        if let Some(watch) = &mut self.watch {
            while watch.arrived.try_recv().is_ok() {}
        }
        let dir = self.dir.clone();
        blocking(move || scan(&dir, limit)).await
    }

    pub async fn done(&mut self, id: &MessageRef) -> Result<(), SourceError> {
        let (dir, folder, id) = (self.dir.clone(), self.processed.clone(), id.clone());
        blocking(move || move_to(&dir, &id, &folder, true)).await
    }

    pub async fn set_aside(&mut self, id: &MessageRef) -> Result<(), SourceError> {
        let (dir, folder, id) = (self.dir.clone(), self.unreadable.clone(), id.clone());
        blocking(move || move_to(&dir, &id, &folder, false)).await
    }

    pub async fn wait_for_mail(&mut self, timeout: Duration) -> Woke {
        if self.watch.is_none() && !self.watch_failed {
            match watch(&self.dir) {
                Ok(watch) => self.watch = Some(watch),
                Err(error) => {
                    self.watch_failed = true;
                    tracing::warn!(
                        maildir = %self.dir.display(),
                        %error,
                        poll = ?self.poll,
                        "cannot watch the inbox maildir; it is polled instead"
                    );
                }
            }
        }
        match &mut self.watch {
            Some(watch) => match tokio::time::timeout(timeout, watch.arrived.recv()).await {
                Ok(Some(())) => Woke::Mail,
                // The watcher's thread is gone: poll from now on.
                Ok(None) => {
                    self.watch = None;
                    self.watch_failed = true;
                    Woke::Timeout
                }
                Err(_) => Woke::Timeout,
            },
            None => {
                tokio::time::sleep(timeout.min(self.poll)).await;
                Woke::Timeout
            }
        }
    }
}

/// Runs file work on tokio's blocking threads, off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SourceError> + Send + 'static,
) -> Result<T, SourceError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|join| Err(SourceError::new(format!("the maildir work stopped: {join}"))))
}

/// The unique part of a maildir file name and its flags: `1700000000.M1P2.host,S=28,W=32:2,RS`
/// → (`1700000000.M1P2.host,S=28,W=32`, `RS`). A name without `:2,` has no
/// flags (a file just delivered to `new/`).
pub(super) fn split_name(name: &str) -> (&str, &str) {
    match name.rfind(":2,") {
        Some(at) => (&name[..at], &name[at + 3..]),
        None => (name, ""),
    }
}

/// `flags` with `S` added when `seen`, in the ASCII order the maildir
/// convention asks for, each once.
fn flags_with(flags: &str, seen: bool) -> String {
    let mut flags: Vec<char> = flags.chars().filter(|c| c.is_ascii_alphabetic()).collect();
    if seen {
        flags.push('S');
    }
    flags.sort_unstable();
    flags.dedup();
    flags.into_iter().collect()
}

/// The messages of `new/` and the unseen ones of `cur/`, by name (in a
/// maildir, names start with the delivery time), at most [`FETCH_BATCH`].
fn scan(dir: &Path, limit: usize) -> Result<Vec<Fetched>, SourceError> {
    let mut found = Vec::new();
    for (sub, in_new) in [("new", true), ("cur", false)] {
        let path = dir.join(sub);
        let entries = fs::read_dir(&path).map_err(|error| {
            SourceError::new(format!("cannot read the maildir {}: {error}", path.display()))
        })?;
        for entry in entries {
            let entry = entry.map_err(|error| {
                SourceError::new(format!("cannot read the maildir {}: {error}", path.display()))
            })?;
            let Ok(name) = entry.file_name().into_string() else {
                // Not a name any maildir writer makes; left where it is.
                tracing::warn!(file = %entry.path().display(), "an inbox file whose name is not UTF-8 is ignored");
                continue;
            };
            // Seen, or trashed (IMAP's \\Deleted, which the IMAP source
            // skips too).
            let flags = split_name(&name).1;
            if name.starts_with('.') || flags.contains('S') || flags.contains('T') {
                continue;
            }
            found.push((in_new, name));
        }
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    found.truncate(FETCH_BATCH);
    let mut fetched = Vec::with_capacity(found.len());
    for (in_new, name) in found {
        let path = dir.join(if in_new { "new" } else { "cur" }).join(&name);
        let id = MessageRef(Place::Maildir { in_new, name });
        match read_at_most(&path, limit) {
            Ok(Some(bytes)) => fetched.push(Fetched {
                id,
                bytes,
                too_big: None,
            }),
            Ok(None) => {
                let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(limit as u64 + 1);
                fetched.push(Fetched {
                    id,
                    bytes: Vec::new(),
                    too_big: Some(size),
                });
            }
            // Moved away between the listing and the read (a mail client
            // marking it read): the next scan finds it where it is now.
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(SourceError::new(format!(
                    "cannot read the message {}: {error}",
                    path.display()
                )));
            }
        }
    }
    Ok(fetched)
}

/// The file's bytes, or `None` when it holds more than `limit` (then no
/// more than `limit + 1` bytes were read).
fn read_at_most(path: &Path, limit: usize) -> io::Result<Option<Vec<u8>>> {
    let file = fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() <= limit).then_some(bytes))
}

/// Renames the message into the Maildir++ subfolder `.<folder>/cur/`,
/// flagged seen when `seen`, creating the folder as Dovecot does (`cur/`,
/// `new/`, `tmp/` and the `maildirfolder` marker).
fn move_to(dir: &Path, id: &MessageRef, folder: &str, seen: bool) -> Result<(), SourceError> {
    let Place::Maildir { in_new, name } = &id.0 else {
        return Err(SourceError::new(format!("{id} is not a maildir message")));
    };
    let from = dir.join(if *in_new { "new" } else { "cur" }).join(name);
    let target = dir.join(format!(".{folder}"));
    create_folder(&target).map_err(|error| {
        SourceError::new(format!("cannot create the folder {}: {error}", target.display()))
    })?;
    let (unique, flags) = split_name(name);
    let to = target
        .join("cur")
        .join(format!("{unique}:2,{}", flags_with(flags, seen)));
    fs::rename(&from, &to).map_err(|error| {
        SourceError::new(format!(
            "cannot move {} to {}: {error}",
            from.display(),
            to.display()
        ))
    })
}

fn create_folder(folder: &Path) -> io::Result<()> {
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(folder.join(sub))?;
    }
    let marker = folder.join("maildirfolder");
    if !marker.exists() {
        fs::File::create(marker)?;
    }
    Ok(())
}

/// inotify on `new/` and `cur/`: a file created or renamed into either is
/// mail (an MTA writes into `tmp/` and renames into `new/`).
fn watch(dir: &Path) -> notify::Result<Watch> {
    let (sender, arrived) = mpsc::channel(1);
    // notify calls this on a thread of its own; a full channel already
    // says that something arrived.
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let arrival = match event {
            Ok(event) => matches!(
                event.kind,
                EventKind::Create(_)
                    | EventKind::Modify(ModifyKind::Name(
                        RenameMode::To | RenameMode::Both | RenameMode::Any
                    ))
            ),
            // An overflowed queue may have lost an arrival: look again.
            Err(_) => true,
        };
        if arrival {
            let _ = sender.try_send(());
        }
    })?;
    for sub in ["new", "cur"] {
        watcher.watch(&dir.join(sub), RecursiveMode::NonRecursive)?;
    }
    Ok(Watch {
        _watcher: watcher,
        arrived,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maildir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        dir
    }

    fn deliver(dir: &Path, sub: &str, name: &str, text: &str) {
        fs::write(dir.join(sub).join(name), text).unwrap();
    }

    fn source(dir: &Path) -> MaildirSource {
        MaildirSource::new(
            dir.to_owned(),
            "herald.processed",
            "herald.unreadable",
            Duration::from_secs(300),
        )
    }

    fn names(dir: &Path, sub: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir.join(sub))
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn names_are_read_as_dovecot_and_mbsync_write_them() {
        assert_eq!(
            split_name("1700.M1P2.host,S=28,W=32:2,RS"),
            ("1700.M1P2.host,S=28,W=32", "RS")
        );
        assert_eq!(split_name("1700.M1P2.host"), ("1700.M1P2.host", ""));
        assert_eq!(split_name("1700.M1P2.host:2,"), ("1700.M1P2.host", ""));
        assert_eq!(flags_with("RF", true), "FRS");
        assert_eq!(flags_with("S", true), "S");
        assert_eq!(flags_with("", false), "");
    }

    #[tokio::test]
    async fn new_and_unseen_messages_are_fetched_and_the_rest_left_alone() {
        let dir = maildir();
        let d = dir.path();
        deliver(d, "new", "1.a.host", "Subject: one\n\n1");
        deliver(d, "new", "2.b.host:2,F", "Subject: two\n\n2");
        deliver(d, "cur", "3.c.host,S=20,W=21:2,R", "Subject: three\n\n3");
        deliver(d, "cur", "4.d.host:2,RS", "Subject: read\n\n4");
        deliver(d, "new", ".hidden", "x");
        deliver(d, "tmp", "5.e.host", "being written");
        let fetched = source(d).fetch_new(1024).await.unwrap();
        let ids: Vec<String> = fetched.iter().map(|f| f.id.to_string()).collect();
        assert_eq!(
            ids,
            ["new/1.a.host", "new/2.b.host:2,F", "cur/3.c.host,S=20,W=21:2,R"]
        );
        assert_eq!(fetched[0].bytes, b"Subject: one\n\n1");
        assert!(fetched.iter().all(|f| f.too_big.is_none()));
    }

    #[tokio::test]
    async fn done_moves_into_the_processed_folder_flagged_seen_and_it_is_not_fetched_again() {
        let dir = maildir();
        let d = dir.path();
        deliver(d, "new", "1.a.host", "one");
        deliver(d, "cur", "2.b.host,S=3:2,R", "two");
        let mut source = source(d);
        for fetched in source.fetch_new(1024).await.unwrap() {
            source.done(&fetched.id).await.unwrap();
        }
        assert_eq!(
            names(d, ".herald.processed/cur"),
            ["1.a.host:2,S", "2.b.host,S=3:2,RS"]
        );
        assert!(d.join(".herald.processed/maildirfolder").is_file());
        assert!(d.join(".herald.processed/tmp").is_dir());
        assert!(names(d, "new").is_empty() && names(d, "cur").is_empty());
        assert!(source.fetch_new(1024).await.unwrap().is_empty());
        assert_eq!(
            fs::read_to_string(d.join(".herald.processed/cur/1.a.host:2,S")).unwrap(),
            "one"
        );
    }

    #[tokio::test]
    async fn a_message_over_the_limit_is_not_read_and_can_be_set_aside_unseen() {
        let dir = maildir();
        let d = dir.path();
        deliver(d, "new", "1.big.host", &"x".repeat(2000));
        let mut source = source(d);
        let fetched = source.fetch_new(1000).await.unwrap();
        assert_eq!(fetched.len(), 1);
        assert_eq!(fetched[0].too_big, Some(2000));
        assert!(fetched[0].bytes.is_empty());
        source.set_aside(&fetched[0].id).await.unwrap();
        assert_eq!(names(d, ".herald.unreadable/cur"), ["1.big.host:2,"]);
        assert!(source.fetch_new(1000).await.unwrap().is_empty());
        // Exactly at the limit is read.
        deliver(d, "new", "2.edge.host", &"y".repeat(1000));
        let fetched = source.fetch_new(1000).await.unwrap();
        assert_eq!((fetched[0].too_big, fetched[0].bytes.len()), (None, 1000));
    }

    #[tokio::test]
    async fn a_backlog_comes_in_batches_oldest_first_and_trashed_messages_are_left_alone() {
        let dir = maildir();
        let d = dir.path();
        for n in 0..FETCH_BATCH + 5 {
            deliver(d, "new", &format!("{:010}.m{n}.host", 1_700_000_000 + n), "x");
        }
        deliver(
            d,
            "cur",
            "1600000000.trashed.host:2,T",
            "deleted in a mail client",
        );
        let mut source = source(d);
        let first = source.fetch_new(1024).await.unwrap();
        assert_eq!(first.len(), FETCH_BATCH);
        assert_eq!(first[0].id.to_string(), "new/1700000000.m0.host");
        for fetched in &first {
            source.done(&fetched.id).await.unwrap();
        }
        let rest = source.fetch_new(1024).await.unwrap();
        assert_eq!(rest.len(), 5);
        assert_eq!(
            rest[0].id.to_string(),
            format!("new/{}.m{FETCH_BATCH}.host", 1_700_000_000 + FETCH_BATCH)
        );
    }

    #[tokio::test]
    async fn a_message_gone_before_done_is_an_error_naming_it() {
        let dir = maildir();
        let d = dir.path();
        deliver(d, "new", "1.a.host", "one");
        let mut source = source(d);
        let fetched = source.fetch_new(1024).await.unwrap();
        fs::remove_file(d.join("new/1.a.host")).unwrap();
        let error = source.done(&fetched[0].id).await.unwrap_err();
        assert!(
            error.cause.contains("cannot move") && error.cause.contains("1.a.host"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_missing_maildir_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nowhere");
        let error = source(&missing).fetch_new(1024).await.unwrap_err();
        assert!(
            error.cause.contains("cannot read the maildir") && error.cause.contains("nowhere"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_delivery_wakes_the_wait_and_the_moves_of_a_scan_do_not() {
        let dir = maildir();
        let d = dir.path().to_owned();
        let mut source = source(&d);
        // Nothing there: the wait runs out.
        assert_eq!(
            source.wait_for_mail(Duration::from_millis(200)).await,
            Woke::Timeout
        );
        // An MTA's delivery: written in tmp/, renamed into new/.
        let writer = d.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            fs::write(writer.join("tmp/9.z.host"), "hello").unwrap();
            fs::rename(writer.join("tmp/9.z.host"), writer.join("new/9.z.host")).unwrap();
        });
        // Woken by the delivery, long before the wait's 60 s.
        let woke = tokio::time::timeout(
            Duration::from_secs(5),
            source.wait_for_mail(Duration::from_secs(60)),
        )
        .await
        .expect("the delivery wakes the wait");
        assert_eq!(woke, Woke::Mail);
        let fetched = source.fetch_new(1024).await.unwrap();
        source.done(&fetched[0].id).await.unwrap();
        // The scan and herald's own move are not news.
        assert_eq!(source.fetch_new(1024).await.unwrap().len(), 0);
        assert_eq!(
            source.wait_for_mail(Duration::from_millis(300)).await,
            Woke::Timeout
        );
    }
}
