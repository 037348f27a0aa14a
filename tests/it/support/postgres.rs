//! A real PostgreSQL server for the outbox tests: Debian's (found under
//! `/usr/lib/postgresql/*/bin`, the newest there), initialised by the test
//! in a temporary directory of its own (nothing is read from
//! /etc/postgresql, and no cluster of the system is touched), listening on
//! a free loopback port, and stopped and removed when the [`Postgres`] is
//! dropped.
//!
//! One role, [`USER`], the superuser, which logs in with a password
//! ([`PASSWORD`], checked with SCRAM-SHA-256 even on loopback), so that
//! herald's password path is the one exercised; one database, [`DATABASE`].
//! [`Postgres::psql`] runs SQL through Debian's `psql`, so that the tests'
//! assertions about what the database holds do not go through the code
//! under test. [`Postgres::stop`] and [`Postgres::start_again`] take the
//! server away and bring it back on the same port with the same data, for
//! the tests of a database that goes away.
//!
//! PostgreSQL refuses to run as root, and CI runs the tests as root: then
//! `initdb` and `pg_ctl` run as the `postgres` user the package created
//! (through `runuser`), and the directory belongs to it. The server's own
//! log is in the directory, and shown when it does not start.
//!
//! A missing PostgreSQL fails the test with the command that installs it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use herald::outbox::PostgresSettings;
use tempfile::TempDir;

use super::free_port;

/// The role herald logs in as (the cluster's superuser).
pub const USER: &str = "herald";
/// Its password.
pub const PASSWORD: &str = "outbox secret";
/// The database herald's URL names.
pub const DATABASE: &str = "herald";

/// A running PostgreSQL server; see the module doc.
pub struct Postgres {
    dir: TempDir,
    /// Where Debian's binaries are (`/usr/lib/postgresql/15/bin`).
    bin: PathBuf,
    port: u16,
    running: bool,
}

impl Postgres {
    /// Initialises a cluster in a temporary directory, starts its server
    /// and creates the database [`DATABASE`].
    pub fn start() -> Postgres {
        let bin = binaries();
        let dir = tempfile::Builder::new()
            .prefix("herald-postgres")
            .tempdir_in(std::env::temp_dir())
            .expect("temporary directory");
        let d = dir.path();
        fs::set_permissions(d, fs::Permissions::from_mode(0o700)).unwrap();
        let password_file = d.join("password");
        fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
        if is_root() {
            let owner = postgres_user();
            for path in [d, &password_file] {
                std::os::unix::fs::chown(path, Some(owner.0), Some(owner.1)).unwrap();
            }
        }
        let mut postgres = Postgres {
            dir,
            bin,
            port: free_port(),
            running: false,
        };
        let data = postgres.data();
        let output = postgres
            .server_command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "--auth=scram-sha-256"])
            .arg(format!("--pwfile={}", password_file.display()))
            .args(["--no-sync", "-E", "UTF8", "--locale=C.UTF-8"])
            .output()
            .expect("initdb runs");
        assert!(
            output.status.success(),
            "initdb failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        fs::remove_file(&password_file).unwrap();
        postgres.start_again();
        postgres.psql_in("postgres", &format!("CREATE DATABASE {DATABASE}"));
        postgres
    }

    /// herald's URL of the database: `postgres://herald@127.0.0.1:PORT/herald`,
    /// without the password (herald refuses one in the URL).
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    pub fn password(&self) -> &'static str {
        PASSWORD
    }

    /// The settings of a node named `node` whose claims last `lease`.
    pub fn settings(&self, node: &str, lease: Duration) -> PostgresSettings {
        PostgresSettings::new(&self.url(), Some(PASSWORD.to_owned()), node, lease)
            .expect("the fixture's URL is valid")
    }

    /// Runs `sql` in the database through `psql`, and returns what it
    /// printed: unaligned, tuples only (`a|b` a row, one row a line), the
    /// last newline trimmed. A failing statement fails the test.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_in(DATABASE, sql)
    }

    /// A `psql` session kept open, fed statements as the test goes: to
    /// hold a lock or a transaction open while herald works.
    pub fn session(&self) -> Session {
        let child = self
            .psql_command(DATABASE)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("psql runs");
        Session { child: Some(child) }
    }

    fn psql_in(&self, database: &str, sql: &str) -> String {
        let output = self
            .psql_command(database)
            .arg("-c")
            .arg(sql)
            .stdin(Stdio::null())
            .output()
            .expect("psql runs");
        assert!(
            output.status.success(),
            "psql failed ({}) on {sql:?}:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let mut text = String::from_utf8(output.stdout).expect("psql prints UTF-8");
        if text.ends_with('\n') {
            text.pop();
        }
        text
    }

    /// Debian's `psql`, logged in to `database` with the password, stopping
    /// at the first error, printing rows unaligned without headers.
    fn psql_command(&self, database: &str) -> Command {
        let mut command = Command::new(self.bin.join("psql"));
        command
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                database,
            ])
            .env("PGPASSWORD", PASSWORD)
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGSERVICE")
            .env_remove("PGOPTIONS");
        command
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are ended, the
    /// data is kept), and waits until it is gone.
    pub fn stop(&mut self) {
        if self.running {
            self.pg_ctl_stop("fast");
        }
    }

    /// Starts the server (again), on the same port with the same data, and
    /// waits until it takes connections.
    pub fn start_again(&mut self) {
        if self.running {
            return;
        }
        let d = self.dir.path();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k '{}' -c fsync=off",
            self.port,
            d.display()
        );
        let output = self
            .server_command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.log_file())
            .args(["-o", &options, "-w", "-t", "60", "start"])
            .stdin(Stdio::null())
            .output()
            .expect("pg_ctl runs");
        assert!(
            output.status.success(),
            "the PostgreSQL server did not start ({}):\n{}{}\nits log:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        self.running = true;
    }

    /// The server's own log, for a failing test's message.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn pg_ctl_stop(&mut self, mode: &str) {
        let output = self
            .server_command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", mode, "-w", "-t", "60", "stop"])
            .stdin(Stdio::null())
            .output()
            .expect("pg_ctl runs");
        self.running = false;
        assert!(
            output.status.success(),
            "the PostgreSQL server did not stop ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// One of the server's programs, run as `postgres` when the tests run
    /// as root.
    fn server_command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let _ = self
                .server_command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            self.running = false;
        }
    }
}

/// An open `psql` session ([`Postgres::session`]).
pub struct Session {
    /// `None` once finished.
    child: Option<Child>,
}

impl Session {
    /// Sends `sql` to the session, without waiting for it to run (look at
    /// what it did through [`Postgres::psql`]).
    pub fn send(&mut self, sql: &str) {
        let child = self.child.as_mut().expect("the session is open");
        let stdin = child.stdin.as_mut().expect("psql's input is a pipe");
        writeln!(stdin, "{sql}").expect("psql reads its input");
        stdin.flush().unwrap();
    }

    /// Ends the session (psql runs what it was sent, then quits at the end
    /// of its input), and fails the test if a statement failed.
    pub fn finish(mut self) {
        let mut child = self.child.take().expect("the session is open");
        drop(child.stdin.take());
        let output = child.wait_with_output().expect("psql ends");
        assert!(
            output.status.success(),
            "psql failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The directory of Debian's PostgreSQL binaries: the newest major
/// version under `/usr/lib/postgresql`.
fn binaries() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let newest = fs::read_dir(root).ok().and_then(|entries| {
        entries
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                let version: u32 = entry.file_name().to_str()?.parse().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").exists().then_some((version, bin))
            })
            .max_by_key(|(version, _)| *version)
    });
    match newest {
        Some((_, bin)) => bin,
        None => panic!(
            "no PostgreSQL server found under /usr/lib/postgresql/*/bin (initdb, pg_ctl, psql): apt-get install postgresql"
        ),
    }
}

fn is_root() -> bool {
    fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// The `postgres` user's and group's ids, which own the cluster when the
/// tests run as root.
fn postgres_user() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let output = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("id runs");
        assert!(
            output.status.success(),
            "no `postgres` user, which runs the server when the tests run as root: apt-get install postgresql"
        );
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("a numeric id")
    };
    (id("-u"), id("-g"))
}
