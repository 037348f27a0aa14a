//! Starts `aiosmtpd_sink.py` (Python's aiosmtpd, a real SMTP server) for a
//! test, and reads back what it received.
//!
//! A missing `python3` or `aiosmtpd` fails the test with the command that
//! fixes it; it is never skipped, so a green run means the real server was
//! there. The server lives as long as the [`Sink`]: it is killed on drop, and
//! exits by itself if the test process dies (its standard input closes).

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tempfile::TempDir;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/support/aiosmtpd_sink.py");

/// The one user the sink accepts, when started with [`Sink::with_starttls_and_auth`].
pub const USER: &str = "secretariat";
pub const PASSWORD: &str = "correct horse battery staple";

/// A running aiosmtpd; see the module doc.
#[derive(Debug)]
pub struct Sink {
    child: Child,
    port: u16,
    dir: TempDir,
}

/// One message as the sink received it.
#[derive(Debug)]
pub struct Received {
    pub bytes: Vec<u8>,
    /// The envelope sender (MAIL FROM), where bounces would go.
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// Whether it came over TLS.
    pub tls: bool,
    /// Who had logged in, if anyone.
    pub login: Option<String>,
}

impl Sink {
    /// Plain SMTP, no AUTH.
    pub fn plain() -> Sink {
        Sink::start(&[])
    }

    /// STARTTLS required, then AUTH PLAIN/LOGIN as [`USER`].
    pub fn with_starttls_and_auth() -> Sink {
        Sink::start(&["--starttls", "--user", USER, "--password", PASSWORD])
    }

    fn start(options: &[&str]) -> Sink {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut child = match Command::new("python3")
            .arg(SCRIPT)
            .arg("--dir")
            .arg(dir.path())
            .args(options)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(error) => {
                panic!("cannot run python3 ({error}): install Python 3, then `pip install aiosmtpd`")
            }
        };
        let stdout = child.stdout.take().expect("piped stdout");
        // Read the port on a thread, so that a sink that never starts fails
        // the test instead of hanging it.
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        match line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|port| port.parse().ok())
        {
            Some(port) => Sink { child, port, dir },
            None => {
                let _ = child.kill();
                let status = child.wait().ok();
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                if status.and_then(|status| status.code()) == Some(3) {
                    panic!("aiosmtpd is missing, and these tests need it: pip install aiosmtpd\n{stderr}");
                }
                panic!("aiosmtpd_sink.py did not start (status {status:?}):\n{stderr}");
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory the messages are written to (`NNNN.eml`, each
    /// written before the server's 250 reply: its modification time is when
    /// the message arrived).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The CA that signed the sink's certificate (STARTTLS only).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("tls/ca.pem")
    }

    /// Every message received so far, in order of arrival.
    pub fn received(&self) -> Vec<Received> {
        let mut stems: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("sink directory")
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .map(|path| path.with_extension(""))
            .collect();
        stems.sort();
        stems
            .into_iter()
            .map(|stem| {
                let meta: serde_json::Value = serde_json::from_slice(
                    &std::fs::read(stem.with_extension("json")).expect("envelope file"),
                )
                .expect("envelope JSON");
                Received {
                    bytes: std::fs::read(stem.with_extension("eml")).expect("message file"),
                    mail_from: meta["mail_from"].as_str().unwrap_or_default().to_owned(),
                    rcpt_tos: meta["rcpt_tos"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|to| to.as_str().map(str::to_owned))
                        .collect(),
                    tls: meta["tls"].as_bool().unwrap_or(false),
                    login: meta["login"].as_str().map(str::to_owned),
                }
            })
            .collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
