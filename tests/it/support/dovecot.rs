//! A real IMAP server for the inbox tests: Debian's Dovecot 2.3, started by
//! the test in a temporary directory with a configuration of its own
//! (nothing is read from /etc/dovecot), on a free loopback port, over TLS
//! with a throwaway certificate, and stopped when the [`Dovecot`] is dropped.
//!
//! It runs as root, as CI does: Dovecot refuses to give mail access to
//! UID 0, so the mail belongs to `nobody`. One account, [`USER`], whose
//! password lives in a passwd-file the test can rewrite
//! ([`Dovecot::set_password`]; Dovecot reads the file again when it
//! changes). Mail is delivered the way a local MTA does, into the
//! account's `Maildir/new/` through `tmp/`, and read back from the
//! maildir itself, so the tests' assertions do not go through the code
//! under test.
//!
//! A missing Dovecot fails the test with the command that installs it; a
//! Dovecot 2.4 (whose configuration syntax differs) fails it saying so.

use std::fs;
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::free_port;

/// The one account.
pub const USER: &str = "herald";
/// Its password when the server starts.
pub const PASSWORD: &str = "inbox secret";

/// A running Dovecot; see the module doc.
pub struct Dovecot {
    dir: TempDir,
    port: u16,
    /// IMAP with STARTTLS (required before LOGIN).
    starttls_port: u16,
    child: Option<Child>,
    /// nobody's user and group ids, which own the mail.
    owner: (u32, u32),
}

impl Dovecot {
    pub fn start() -> Dovecot {
        Dovecot::start_with("")
    }

    /// A server with `settings` (Dovecot configuration lines) added, e.g.
    /// `imap_capability = IMAP4rev1 UIDPLUS` for one without IDLE or MOVE.
    pub fn start_with(settings: &str) -> Dovecot {
        let version = match Command::new("dovecot").arg("--version").output() {
            Ok(output) => String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            Err(error) => panic!("cannot run dovecot ({error}): apt-get install dovecot-imapd"),
        };
        assert!(
            version.starts_with("2.3"),
            "Dovecot {version} found: this fixture writes Dovecot 2.3's configuration syntax, which 2.4 refuses \
             (it needs dovecot_config_version, named passdb blocks, mail_driver and mail_path): adapt tests/it/support/dovecot.rs"
        );
        assert!(
            is_root(),
            "the Dovecot fixture runs as root, as CI does (Dovecot then drops to `nobody` for the mail)"
        );
        let dir = tempfile::tempdir().expect("temporary directory");
        let d = dir.path();
        // Dovecot's processes run as nobody: they must reach the mail.
        fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
        let owner = nobody();
        let mail = d.join("mail");
        fs::create_dir(&mail).unwrap();
        chown(&mail, owner);
        certificate(d);
        let (port, starttls_port) = (free_port(), free_port());
        fs::write(
            d.join("dovecot.conf"),
            config(d, port, starttls_port) + settings + "\n",
        )
        .unwrap();
        let mut dovecot = Dovecot {
            dir,
            port,
            starttls_port,
            child: None,
            owner,
        };
        dovecot.set_password(PASSWORD);
        dovecot.run();
        dovecot
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The port of IMAP over TLS from the first byte.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of IMAP with STARTTLS, which the server requires before LOGIN.
    pub fn starttls_port(&self) -> u16 {
        self.starttls_port
    }

    /// The server's certificate, self-signed (`CA:FALSE`, with the
    /// loopback address as its subject name): trust it as a root.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// The password the server takes from now on.
    pub fn set_password(&self, password: &str) {
        let file = self.dir.path().join("passwd");
        let tmp = self.dir.path().join("passwd.new");
        fs::write(&tmp, format!("{USER}:{{PLAIN}}{password}::::::\n")).unwrap();
        fs::rename(tmp, file).unwrap();
    }

    /// The account's maildir (its INBOX; folders are `.<name>` inside).
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("mail").join(USER).join("Maildir")
    }

    /// Delivers `message` into the INBOX as a local MTA does: written in
    /// `tmp/`, renamed into `new/`, owned by the mail's owner.
    pub fn deliver(&self, name: &str, message: &[u8]) {
        let maildir = self.maildir();
        let home = maildir.parent().unwrap().to_owned();
        for dir in [home.clone(), maildir.clone()] {
            if !dir.exists() {
                fs::create_dir(&dir).unwrap();
                chown(&dir, self.owner);
            }
        }
        for sub in ["cur", "new", "tmp"] {
            let dir = maildir.join(sub);
            if !dir.exists() {
                fs::create_dir(&dir).unwrap();
                chown(&dir, self.owner);
            }
        }
        let tmp = maildir.join("tmp").join(name);
        fs::write(&tmp, message).unwrap();
        chown(&tmp, self.owner);
        fs::rename(&tmp, maildir.join("new").join(name)).unwrap();
    }

    /// The messages of a folder ("INBOX" or a folder's name) as Dovecot
    /// stores them: each file's bytes and its maildir flags, by name.
    pub fn messages(&self, folder: &str) -> Vec<Stored> {
        let dir = match folder {
            "INBOX" => self.maildir(),
            folder => self.maildir().join(format!(".{folder}")),
        };
        let mut stored = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = fs::read_dir(dir.join(sub)) else {
                continue;
            };
            for entry in entries {
                let entry = entry.unwrap();
                let name = entry.file_name().into_string().unwrap();
                let flags = name
                    .rsplit_once(":2,")
                    .map(|(_, flags)| flags.to_owned())
                    .unwrap_or_default();
                stored.push(Stored {
                    bytes: fs::read(entry.path()).unwrap(),
                    flags,
                });
            }
        }
        stored.sort_by(|a, b| a.bytes.cmp(&b.bytes));
        stored
    }

    /// Stops the server (SIGTERM to its master), dropping every connection.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
        // Its processes are gone once the port is free again.
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("Dovecot still answers on port {} after being stopped", self.port);
    }

    /// Starts the server again, on the same port with the same mail.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    fn run(&mut self) {
        let d = self.dir.path();
        let child = Command::new("dovecot")
            .arg("-c")
            .arg(d.join("dovecot.conf"))
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dovecot starts");
        self.child = Some(child);
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let log = fs::read_to_string(d.join("dovecot.log")).unwrap_or_default();
                panic!("dovecot exited ({status}) before listening:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("dovecot did not listen on port {} within 10 s", self.port);
    }

    /// Dovecot's own log, for a failing test's message.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

/// One stored message.
#[derive(Debug)]
pub struct Stored {
    pub bytes: Vec<u8>,
    /// Its maildir flags: `S` is `\Seen`.
    pub flags: String,
}

/// Dovecot 2.3's configuration (deps-wave2 §7), with a passwd-file so
/// that the password can change while the server runs.
fn config(d: &Path, port: u16, starttls_port: u16) -> String {
    let d = d.display();
    format!(
        "base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/mail/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    port = {starttls_port}
  }}
  inet_listener imaps {{
    port = {port}
  }}
}}
"
    )
}

/// A self-signed certificate rustls accepts as an end entity: `CA:FALSE`
/// and the loopback address as a subject name (deps-wave2 W3).
fn certificate(d: &Path) {
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(d.join("key.pem"))
        .arg("-out")
        .arg(d.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs (apt-get install openssl)");
    assert!(status.success(), "openssl could not make the test certificate");
}

fn is_root() -> bool {
    fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// nobody's user and group ids (nogroup's, as the userdb says).
fn nobody() -> (u32, u32) {
    let id = |args: &[&str]| -> u32 {
        let output = Command::new("id").args(args).output().expect("id runs");
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("a numeric id")
    };
    (id(&["-u", "nobody"]), id(&["-g", "nobody"]))
}

fn chown(path: &Path, (uid, gid): (u32, u32)) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}
