//! Reloads the daemon when the configuration changes on disk.
//!
//! Watches the configuration directory, its `roadmaps/`, `lists/` and
//! `letters/`, and the template directory (with its language
//! subdirectories), and sends [`Control::Reload`] once a burst of changes
//! has settled. Directories are watched, never single files: an editor that
//! saves by writing a new file and renaming it over the old one (vim, sed -i,
//! most IDEs) would leave a watch on the old file deaf (deps.md P14).
//! Editor droppings (swap files, backups, vim's `4913` probe, hidden files)
//! and the daemon's own reads are not changes.
//!
//! A file is reloaded only once it is stable: after the burst, the changed
//! files must keep their size and modification time across two looks
//! [`STABLE`] apart. An editor that writes in place, or a slow copy, can
//! pause longer than the quiet time in the middle of a file; a roadmap
//! loaded cut short would lose its last events. (Notices of changes also
//! wait `notice_delay`, so a file caught half written all the same sends
//! nothing once it is whole again.)
//!
//! SIGHUP (`systemctl reload`) remains the sure way: inotify sees nothing on
//! NFS, and a watch limit can be reached.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::daemon::Control;

/// How long the directory must stay quiet before the reload: an editor's
/// save, or a `git pull`, is a burst of events.
pub const QUIET: Duration = Duration::from_millis(500);

/// The longest a reload waits for quiet, so a file that never stops
/// changing cannot hold every other edit back.
pub const LONGEST: Duration = Duration::from_secs(5);

/// How long the changed files must keep their size and modification time
/// before the reload: a save in progress that pauses this long is rare.
pub const STABLE: Duration = Duration::from_secs(2);

/// How the watch waits before it asks for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Quiet after the last change ([`QUIET`]).
    pub quiet: Duration,
    /// The longest wait for quiet ([`LONGEST`]).
    pub longest: Duration,
    /// The time between two looks at the changed files ([`STABLE`]).
    pub stable: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            quiet: QUIET,
            longest: LONGEST,
            stable: STABLE,
        }
    }
}

/// A running watch; dropping it stops watching.
pub struct Watch {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching `config_dir` (and the directories it uses), sending
/// [`Control::Reload`] on `control` after each settled burst of changes,
/// once the changed files are stable. Must be called inside a tokio runtime.
pub fn start(config_dir: &Path, control: mpsc::Sender<Control>) -> notify::Result<Watch> {
    start_with(config_dir, control, Timing::default())
}

/// [`start`], with its waits given (tests shorten them).
pub fn start_with(
    config_dir: &Path,
    control: mpsc::Sender<Control>,
    timing: Timing,
) -> notify::Result<Watch> {
    let (events, received) = mpsc::unbounded_channel();
    // notify calls this on a thread of its own.
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let _ = events.send(event);
    })?;
    let watched = Arc::new(Mutex::new(Watched {
        watcher,
        dirs: BTreeSet::new(),
    }));
    // notify reports absolute paths; the log names them relative to this.
    let config_dir = std::path::absolute(config_dir).unwrap_or_else(|_| config_dir.to_owned());
    lock(&watched).sync(&config_dir)?;
    let task = tokio::spawn(run(config_dir, watched, received, control, timing));
    Ok(Watch { task })
}

/// The watcher and what it watches now.
struct Watched {
    watcher: RecommendedWatcher,
    dirs: BTreeSet<(PathBuf, bool)>,
}

fn lock(watched: &Mutex<Watched>) -> std::sync::MutexGuard<'_, Watched> {
    watched.lock().unwrap_or_else(|p| p.into_inner())
}

impl Watched {
    /// Watches what `config_dir` uses now: herald.toml may have moved the
    /// templates, and a subdirectory may have been created or replaced.
    /// Fails only if the configuration directory itself cannot be watched.
    fn sync(&mut self, config_dir: &Path) -> notify::Result<()> {
        let wanted: BTreeSet<(PathBuf, bool)> = directories(config_dir).into_iter().collect();
        for (dir, recursive) in self.dirs.difference(&wanted) {
            // It may be gone already, which removed the watch with it.
            let _ = self.watcher.unwatch(dir);
            debug!(dir = %dir.display(), recursive, "no longer watched");
        }
        let mut dirs = BTreeSet::new();
        for (dir, recursive) in wanted {
            let mode = if recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            // Watching again replaces the watch, which also picks up a
            // directory that was replaced by another of the same name.
            match self.watcher.watch(&dir, mode) {
                Ok(()) => {
                    dirs.insert((dir, recursive));
                }
                Err(err) if dir == config_dir => return Err(err),
                // A missing subdirectory is fine: its creation is seen in
                // the configuration directory, and the next sync adds it.
                Err(err) if !dir.exists() => {
                    debug!(dir = %dir.display(), error = %err, "not watched: missing")
                }
                Err(err) => {
                    warn!(dir = %dir.display(), error = %err, "cannot watch; reload with SIGHUP after editing it")
                }
            }
        }
        self.dirs = dirs;
        Ok(())
    }
}

/// The directories to watch, and whether recursively.
pub fn directories(config_dir: &Path) -> Vec<(PathBuf, bool)> {
    let mut dirs = vec![(config_dir.to_owned(), false)];
    for sub in crate::config::SUBDIRECTORIES {
        dirs.push((config_dir.join(sub), false));
    }
    // Templates live in language directories with partials below them.
    let templates = crate::config::templates_dir(config_dir);
    if templates != config_dir {
        dirs.push((templates, true));
    }
    dirs
}

async fn run(
    config_dir: PathBuf,
    watched: Arc<Mutex<Watched>>,
    mut events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    control: mpsc::Sender<Control>,
    timing: Timing,
) {
    let mut changes = Events(&mut events);
    loop {
        let Some(burst) = next_burst(&mut changes, timing.quiet, timing.longest).await else {
            return;
        };
        let Some(changed) = until_stable(&mut changes, burst, timing.stable, &config_dir).await else {
            return;
        };
        info!(
            files = %describe(&changed, &config_dir),
            "the configuration changed on disk; reloading"
        );
        if control.send(Control::Reload).await.is_err() {
            // The daemon is gone.
            return;
        }
        if let Err(err) = lock(&watched).sync(&config_dir) {
            warn!(
                dir = %config_dir.display(),
                error = %err,
                "cannot watch the configuration directory any more; reload with SIGHUP after an edit"
            );
            return;
        }
    }
}

/// Something that yields batches of changed paths, `None` at its end.
pub trait ChangeSource {
    /// The next batch. Must be cancel-safe: [`next_burst`] drops it when
    /// the quiet time is up first.
    fn next(&mut self) -> impl Future<Output = Option<Vec<PathBuf>>> + Send;
}

/// The changed paths of the relevant events from the watcher, as they arrive.
struct Events<'a>(&'a mut mpsc::UnboundedReceiver<notify::Result<notify::Event>>);

impl ChangeSource for Events<'_> {
    async fn next(&mut self) -> Option<Vec<PathBuf>> {
        loop {
            // `recv` is cancel-safe, and a relevant event is returned in
            // the same poll that received it.
            match self.0.recv().await? {
                Ok(event) => {
                    let paths = relevant_paths(&event);
                    if !paths.is_empty() {
                        return Some(paths);
                    }
                }
                Err(err) => warn!(error = %err, "the file watcher reported an error"),
            }
        }
    }
}

/// Waits for a change, then for `quiet` without one (but no longer than
/// `longest` in all), and returns every path changed meanwhile; `None` when
/// the source ends.
pub async fn next_burst(
    source: &mut impl ChangeSource,
    quiet: Duration,
    longest: Duration,
) -> Option<Vec<PathBuf>> {
    let mut changed: BTreeSet<PathBuf> = source.next().await?.into_iter().collect();
    let deadline = tokio::time::sleep(longest);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            more = source.next() => match more {
                Some(paths) => changed.extend(paths),
                None => break,
            },
            () = tokio::time::sleep(quiet) => break,
            () = &mut deadline => break,
        }
    }
    Some(changed.into_iter().collect())
}

/// Waits until the files of `changed`, and those changed meanwhile, keep
/// their size and modification time across two looks `interval` apart;
/// returns them all, or `None` when the source ends.
///
/// It waits as long as they change: a file loaded while it is written
/// would be loaded cut short.
pub async fn until_stable(
    source: &mut impl ChangeSource,
    changed: Vec<PathBuf>,
    interval: Duration,
    config_dir: &Path,
) -> Option<Vec<PathBuf>> {
    let mut changed: BTreeSet<PathBuf> = changed.into_iter().collect();
    // Said once per set of files, not at every look.
    let mut said = Vec::new();
    loop {
        let before = looks(&changed);
        let pause = tokio::time::sleep(interval);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                more = source.next() => changed.extend(more?),
                () = &mut pause => break,
            }
        }
        let after = looks(&changed);
        if after == before {
            return Some(changed.into_iter().collect());
        }
        let moving: Vec<PathBuf> = after
            .iter()
            .filter(|(path, look)| before.get(*path) != Some(look))
            .map(|(path, _)| path.clone())
            .collect();
        if moving != said {
            info!(
                files = %describe(&moving, config_dir),
                "waiting for files still being written"
            );
            said = moving;
        }
    }
}

/// What a look at a file sees: its size and modification time, or nothing
/// when it is gone (a removal is stable too).
type Look = Option<(u64, std::time::SystemTime)>;

fn looks(paths: &BTreeSet<PathBuf>) -> BTreeMap<PathBuf, Look> {
    paths
        .iter()
        .map(|path| {
            let look = std::fs::metadata(path)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)));
            (path.clone(), look)
        })
        .collect()
}

/// The paths of an event that are changes to the configuration.
pub fn relevant_paths(event: &notify::Event) -> Vec<PathBuf> {
    let changes = match event.kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        // Contents written or files renamed; not attributes (atime, chmod).
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        // A file closed after writing; opening and reading (the daemon's
        // own reload reads every file) is no change.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    };
    if !changes {
        return Vec::new();
    }
    event
        .paths
        .iter()
        .filter(|path| is_configuration(path))
        .cloned()
        .collect()
}

/// Whether a changed path can be part of the configuration: a file herald
/// reads (`.toml`, `.csv`, `.hbs`) or a directory of them. Not editor swap,
/// backup and probe files, hidden files (where editors write before
/// renaming), temporary files (`sed -i`), nor the daemon's own outbox
/// should the state directory be inside the configuration.
pub fn is_configuration(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(OsStr::to_str) else {
        return false;
    };
    if name.starts_with('.') || name.ends_with('~') || name.starts_with('#') {
        return false;
    }
    match Path::new(name).extension().and_then(OsStr::to_str) {
        Some(extension) => matches!(extension, "toml" | "csv" | "hbs"),
        // A directory: roadmaps/ (also once removed), or en/ or partials/
        // among the templates.
        None => crate::config::SUBDIRECTORIES.contains(&name) || path.is_dir(),
    }
}

/// "roadmaps/future.toml, lists/new.toml", relative to the configuration
/// directory where possible.
fn describe(paths: &[PathBuf], config_dir: &Path) -> String {
    let mut names: Vec<String> = paths
        .iter()
        .map(|path| {
            path.strip_prefix(config_dir)
                .unwrap_or(path)
                .display()
                .to_string()
        })
        .collect();
    names.dedup();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, ModifyKind, RenameMode};

    fn event(kind: EventKind, paths: &[&str]) -> notify::Event {
        let mut event = notify::Event::new(kind);
        for path in paths {
            event = event.add_path(PathBuf::from(path));
        }
        event
    }

    #[test]
    fn editor_files_and_reads_are_not_changes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("en")).unwrap();
        for name in [
            ".future.toml.swp",
            "future.toml~",
            "4913",
            "sedtLYUEH",
            ".#future.toml",
            "#future.toml#",
            "outbox.sqlite",
            "outbox.sqlite-wal",
            "notes.txt",
        ] {
            assert!(!is_configuration(&dir.path().join(name)), "{name}");
        }
        for name in ["herald.toml", "people.csv", "reminder.txt.hbs", "roadmaps", "en"] {
            assert!(is_configuration(&dir.path().join(name)), "{name}");
        }
        let open = event(
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            &["/c/herald.toml"],
        );
        assert!(relevant_paths(&open).is_empty());
        let read = event(
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            &["/c/herald.toml"],
        );
        assert!(relevant_paths(&read).is_empty());
    }

    #[test]
    fn writes_creations_and_renames_are_changes() {
        let renamed = event(
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            &["/c/roadmaps/.future.toml.tmp", "/c/roadmaps/future.toml"],
        );
        assert_eq!(
            relevant_paths(&renamed),
            vec![PathBuf::from("/c/roadmaps/future.toml")]
        );
        let written = event(
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            &["/c/herald.toml"],
        );
        assert_eq!(relevant_paths(&written).len(), 1);
        let created = event(EventKind::Create(CreateKind::Folder), &["/c/letters"]);
        assert_eq!(relevant_paths(&created).len(), 1);
    }

    #[test]
    fn the_template_directory_is_watched_where_herald_toml_puts_it() {
        let root = tempfile::tempdir().unwrap();
        let config = root.path().join("config");
        std::fs::create_dir(&config).unwrap();
        let dirs = directories(&config);
        assert_eq!(dirs[0], (config.clone(), false));
        assert_eq!(dirs.last().unwrap(), &(config.join("templates"), true));
        std::fs::write(config.join("herald.toml"), "templates = \"../templates\"\n").unwrap();
        assert_eq!(
            directories(&config).last().unwrap(),
            &(root.path().join("templates"), true)
        );
    }
}
