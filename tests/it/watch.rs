//! The file watch's debounce: a burst of changes is one reload, and a file
//! that never settles cannot hold reloads back. On tokio's paused clock, so
//! seconds of quiet take no time. And, on real files with the real watcher
//! (a few real seconds), a file still being written is not reloaded until
//! it is stable.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use herald::watch::{ChangeSource, next_burst};
use tokio::time::Instant;

/// Changes arriving at set times after the start. Dropping a pending
/// `next` loses nothing, as the watcher's channel does not.
struct Script {
    start: Instant,
    at: Vec<(u64, &'static str)>,
    taken: Arc<AtomicUsize>,
}

impl Script {
    fn new(at: Vec<(u64, &'static str)>) -> Script {
        Script {
            start: Instant::now(),
            at,
            taken: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl ChangeSource for Script {
    fn next(&mut self) -> impl Future<Output = Option<Vec<PathBuf>>> + Send {
        let index = self.taken.load(Ordering::SeqCst);
        let next = self.at.get(index).copied();
        let (start, taken) = (self.start, self.taken.clone());
        async move {
            match next {
                Some((millis, path)) => {
                    tokio::time::sleep_until(start + Duration::from_millis(millis)).await;
                    taken.fetch_add(1, Ordering::SeqCst);
                    Some(vec![PathBuf::from(path)])
                }
                // Then a quiet directory, for ever.
                None => std::future::pending().await,
            }
        }
    }
}

const QUIET: Duration = Duration::from_millis(500);
const LONGEST: Duration = Duration::from_secs(5);

#[tokio::test(start_paused = true)]
async fn a_burst_of_changes_is_one_reload() {
    // An editor's save (a, b, a again within 500 ms of each other), then
    // another edit after a pause.
    let mut source = Script::new(vec![(0, "a"), (100, "b"), (500, "a"), (1100, "c")]);
    let first = next_burst(&mut source, QUIET, LONGEST).await.unwrap();
    assert_eq!(first, vec![PathBuf::from("a"), PathBuf::from("b")]);
    assert_eq!(source.start.elapsed(), Duration::from_millis(1000));
    let second = next_burst(&mut source, QUIET, LONGEST).await.unwrap();
    assert_eq!(second, vec![PathBuf::from("c")]);
    assert_eq!(source.start.elapsed(), Duration::from_millis(1600));
}

#[tokio::test(start_paused = true)]
async fn a_file_that_never_settles_does_not_hold_the_reload_for_ever() {
    let busy: Vec<(u64, &str)> = (0..100).map(|i| (i * 300, "busy")).collect();
    let mut source = Script::new(busy);
    let burst = next_burst(&mut source, QUIET, LONGEST).await.unwrap();
    assert_eq!(burst, vec![PathBuf::from("busy")]);
    // The first change at 0, then the longest wait.
    assert_eq!(source.start.elapsed(), LONGEST);
    assert_eq!(source.taken.load(Ordering::SeqCst), 17);
}

#[tokio::test(start_paused = true)]
async fn the_end_of_the_source_ends_the_watch() {
    struct Closed;
    impl ChangeSource for Closed {
        fn next(&mut self) -> impl Future<Output = Option<Vec<PathBuf>>> + Send {
            std::future::ready(None)
        }
    }
    assert_eq!(next_burst(&mut Closed, QUIET, LONGEST).await, None);
}

/// A roadmap written in two parts with a pause longer than the quiet time
/// (an editor saving in place, a slow copy): no reload while it is half
/// written, one once it is whole and has kept still.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_still_being_written_is_not_reloaded_until_it_is_stable() {
    use herald::daemon::Control;
    use herald::watch::{Timing, start_with};

    let config = crate::harness::ConfigDir::example();
    let (control, mut reloads) = tokio::sync::mpsc::channel(8);
    let timing = Timing {
        quiet: QUIET,
        longest: LONGEST,
        stable: Duration::from_secs(2),
    };
    let _watch = start_with(&config.path(), control, timing).unwrap();
    let whole = crate::harness::FUTURE_ROADMAP;
    let (first, rest) = whole.split_at(whole.len() / 2);
    let path = config.path().join("roadmaps/future.toml");
    let started = std::time::Instant::now();
    std::fs::write(&path, first).unwrap();
    // Longer than the quiet time, shorter than two looks.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        reloads.try_recv().is_err(),
        "reloaded while the file was half written"
    );
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(rest.as_bytes()).unwrap();
    drop(file);
    let whole_at = started.elapsed();
    let reload = tokio::time::timeout(Duration::from_secs(15), reloads.recv())
        .await
        .expect("a reload once the file is whole");
    assert_eq!(reload, Some(Control::Reload));
    let reloaded_at = started.elapsed();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), whole);
    eprintln!("written whole at {whole_at:?}, reloaded at {reloaded_at:?}");
    assert!(
        reloaded_at >= whole_at + timing.stable,
        "reloaded {reloaded_at:?}, less than a look after the last write at {whole_at:?}"
    );
    // One reload for the whole save.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(reloads.try_recv().is_err(), "a second reload");
}
