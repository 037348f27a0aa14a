//! A real browser for the tests: Debian's headless Chromium, driven over
//! W3C WebDriver by Debian's `chromedriver` through fantoccini.
//!
//! The tests are synchronous, so a [`Browser`] carries a small tokio
//! runtime of its own and wraps fantoccini's calls in `block_on`. Each
//! browser gets its own chromedriver on a free loopback port and its own
//! profile directory, so tests running at once share nothing; dropping it
//! ends the session and kills its chromedriver.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::free_port;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long the driver may take to answer, and a page to do what is waited
/// for.
const DEADLINE: Duration = Duration::from_secs(30);

/// A headless Chromium session.
pub struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    // Kept for their lifetime: the driver's log and Chromium's profile.
    _dir: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session. Fails the test,
    /// saying what to install, when either program is missing.
    pub fn start() -> Browser {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: the browser tests need Debian's `chromium` and `chromium-driver` \
                 (run `.ci/run`, or `apt-get install chromium chromium-driver`)"
            );
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        let log = dir.path().join("chromedriver.log");
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {CHROMEDRIVER}: {err}"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let url = format!("http://127.0.0.1:{port}");
        let profile = dir.path().join("profile");
        let client = runtime.block_on(async {
            let deadline = Instant::now() + DEADLINE;
            loop {
                // The driver takes a moment to listen; until then the
                // connection is refused.
                match connect(&url, &profile).await {
                    Ok(client) => break client,
                    Err(err) => {
                        if let Ok(Some(status)) = driver.try_wait() {
                            panic!("{CHROMEDRIVER} exited ({status}); its log:\n{}", read_log(&log));
                        }
                        assert!(
                            Instant::now() < deadline,
                            "no WebDriver session from {CHROMEDRIVER} on port {port}: {err}; its log:\n{}",
                            read_log(&log)
                        );
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Browser {
            runtime,
            client: Some(client),
            driver,
            _dir: dir,
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("a session until drop")
    }

    /// Opens `url` and waits for the page to load.
    pub fn goto(&self, url: &str) {
        self.runtime
            .block_on(self.client().goto(url))
            .unwrap_or_else(|err| panic!("open {url}: {err}"));
    }

    /// The page's source as the browser has it now.
    pub fn source(&self) -> String {
        self.runtime
            .block_on(self.client().source())
            .expect("the page's source")
    }

    /// Chooses, in the `<select>` with this id, the option whose value is
    /// `value`.
    pub fn select(&self, id: &str, value: &str) {
        self.runtime.block_on(async {
            let select = self.find(&format!("#{id}")).await;
            select
                .select_by_value(value)
                .await
                .unwrap_or_else(|err| panic!("choose {value:?} in #{id}: {err}"));
        });
    }

    /// Clears the field with this id and types `text` into it, as a reader
    /// would.
    pub fn type_into(&self, id: &str, text: &str) {
        self.runtime.block_on(async {
            let field = self.find(&format!("#{id}")).await;
            field
                .clear()
                .await
                .unwrap_or_else(|err| panic!("clear #{id}: {err}"));
            field
                .send_keys(text)
                .await
                .unwrap_or_else(|err| panic!("type into #{id}: {err}"));
        });
    }

    /// Whether the checkbox or option `css` finds is chosen.
    pub fn is_selected(&self, css: &str) -> bool {
        self.runtime.block_on(async {
            self.find(css)
                .await
                .is_selected()
                .await
                .unwrap_or_else(|err| panic!("is {css} selected: {err}"))
        })
    }

    /// Clicks what `css` finds, and waits until a new page has replaced
    /// this one (a form's submission).
    pub fn click_and_wait(&self, css: &str) {
        self.runtime.block_on(async {
            let client = self.client();
            let before = client.find(Locator::Css("html")).await.expect("the page's root");
            self.find(css)
                .await
                .click()
                .await
                .unwrap_or_else(|err| panic!("click {css}: {err}"));
            // The old root goes stale once the next page has loaded.
            let deadline = Instant::now() + DEADLINE;
            while before.tag_name().await.is_ok() {
                assert!(Instant::now() < deadline, "no new page after clicking {css}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            client
                .wait()
                .at_most(DEADLINE)
                .for_element(Locator::Css("body"))
                .await
                .expect("the new page's body");
        });
    }

    /// A PNG of the window as it is now.
    pub fn screenshot(&self) -> Vec<u8> {
        self.runtime
            .block_on(self.client().screenshot())
            .expect("a screenshot")
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client()
            .wait()
            .at_most(DEADLINE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("nothing matches {css}: {err}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A session of headless Chromium with a profile of its own in `profile`.
async fn connect(url: &str, profile: &Path) -> Result<Client, fantoccini::error::NewSessionError> {
    let args = [
        "--headless=new".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--disable-quic".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--window-size=1024,900".to_owned(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({ "binary": CHROMIUM, "args": args }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(url)
        .await
}

fn read_log(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| format!("(unreadable: {err})"))
}
