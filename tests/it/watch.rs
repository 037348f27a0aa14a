//! The file watch's debounce: a burst of changes is one reload, and a file
//! that never settles cannot hold reloads back. On tokio's paused clock, so
//! seconds of quiet take no time.

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
