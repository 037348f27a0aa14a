//! A throwaway copy of the example configuration, and ways to run herald on
//! it: once (`ConfigDir::herald`) or as a daemon whose log can be waited for
//! (`Daemon`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use herald::config::Environment;
use herald::diagnostics::Diagnostics;
use herald::model::Model;

/// The repository root, where `config/` and `templates/` live.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A roadmap with one meeting far in the future, so a daemon has sends to
/// plan: 27 reminders (9 focal points, 7d, 1d and 2h before), the first due
/// at 2099-02-22T20:00Z.
pub const FUTURE_ROADMAP: &str = "id = \"future\"\ntitle = \"Future\"\nvenue = \"new-york\"\nlists = [\"member-states\"]\n\n[[events]]\nid = \"future-meeting\"\ntitle = \"A meeting\"\nkind = \"meeting\"\ndate = \"2099-03-01\"\nstart = \"15:00\"\nleads = [\"1d\", \"2h\", \"30m\"]\n";

/// A day before the meeting of [`FUTURE_ROADMAP`]: a daemon whose clock starts
/// here has its three reminders (2099-02-28T20:00Z, 2099-03-01T18:00Z and
/// 19:30Z) within the outbox's horizon, and none due yet.
pub const BEFORE_THE_FUTURE_MEETING: &str = "2099-02-28T15:00:00Z";

/// A focal point to add on the list of [`FUTURE_ROADMAP`]: 3 more reminders.
pub const NEW_FOCAL_POINT: &str = "[[focal_points]]\nname = \"Nour Haddad\"\nemail = \"nour.haddad@example.org\"\nlists = [\"member-states\"]\n";

/// A copy of `config/` and `templates/` in a temporary directory, laid out
/// as in the repository, so herald.toml's `templates = "../templates"` holds.
pub struct ConfigDir {
    root: tempfile::TempDir,
}

impl ConfigDir {
    pub fn example() -> ConfigDir {
        let root = tempfile::tempdir().expect("a temporary directory");
        copy_dir(&repo().join("config"), &root.path().join("config"));
        copy_dir(&repo().join("templates"), &root.path().join("templates"));
        ConfigDir { root }
    }

    /// The configuration directory (what `--config` takes).
    pub fn path(&self) -> PathBuf {
        self.root.path().join("config")
    }

    /// Writes a file relative to the configuration directory.
    pub fn write(&self, relative: &str, text: &str) -> &ConfigDir {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
        self
    }

    /// Removes a file or a directory (with its contents) relative to the
    /// configuration directory; fails the test if it is not there.
    pub fn remove(&self, relative: &str) -> &ConfigDir {
        let path = self.path().join(relative);
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.unwrap_or_else(|err| panic!("cannot remove {relative}: {err}"));
        self
    }

    /// Replaces `from` by `to` in a file relative to the temporary root;
    /// fails the test if `from` is not there, so an edit never silently misses.
    pub fn edit(&self, relative: &str, from: &str, to: &str) -> &ConfigDir {
        let path = self.root.path().join(relative);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains(from), "{relative} does not contain {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
        self
    }

    /// Only one focal point, Kenji Watanabe on member-states, with `leads`
    /// of his own if given: one send per event and lead.
    pub fn with_one_focal_point(&self, leads: Option<&str>) -> &ConfigDir {
        self.write("lists/civil-society.toml", "");
        let csv = match leads {
            Some(leads) => format!(
                "name,email,lists,leads\nKenji Watanabe,k.watanabe@japan-mission.example.org,member-states,{leads}\n"
            ),
            None => "name,email,lists\nKenji Watanabe,k.watanabe@japan-mission.example.org,member-states\n"
                .to_owned(),
        };
        self.write("lists/permanent-missions.csv", &csv)
    }

    /// Replaces a file relative to the configuration directory the way
    /// editors save: a new file next to it, renamed over the old one, so
    /// the old inode is never written.
    pub fn save_by_rename(&self, relative: &str, text: &str) -> &ConfigDir {
        let path = self.path().join(relative);
        let name = path.file_name().expect("a file name").to_string_lossy();
        let temporary = path.with_file_name(format!(".{name}.tmp"));
        std::fs::write(&temporary, text).expect("write");
        std::fs::rename(&temporary, &path).expect("rename");
        self
    }

    /// [`ConfigDir::edit`] saved by rename; `relative` to the configuration
    /// directory.
    pub fn edit_by_rename(&self, relative: &str, from: &str, to: &str) -> &ConfigDir {
        let text = std::fs::read_to_string(self.path().join(relative)).expect("read");
        assert!(text.contains(from), "{relative} does not contain {from:?}");
        self.save_by_rename(relative, &text.replacen(from, to, 1))
    }

    /// `herald run` on this configuration with its outbox in `state`.
    pub fn run_command(&self, state: &Path) -> Command {
        let mut command = herald_command(&self.path());
        command.arg("run").arg("--state-dir").arg(state);
        command
    }

    /// `herald run`, its clock starting at [`BEFORE_THE_FUTURE_MEETING`]
    /// and running at the speed of the real one.
    pub fn run_before_the_future_meeting(&self, state: &Path) -> Command {
        let mut command = self.run_command(state);
        command.args(["--rehearse-from", BEFORE_THE_FUTURE_MEETING]);
        command
    }

    /// The model of the configuration (see [`ConfigDir::load_config`]).
    pub fn load(&self) -> Result<Model, Diagnostics> {
        self.load_config().map(|config| config.model)
    }

    /// The model of a configuration that must load: a failure fails the
    /// test with every problem the loader reports.
    #[track_caller]
    pub fn model(&self) -> Model {
        match self.load() {
            Ok(model) => model,
            Err(diagnostics) => panic!("the configuration does not load:\n{diagnostics}"),
        }
    }

    /// The whole configuration: the model and the delivery settings.
    pub fn load_config(&self) -> Result<herald::config::Config, Diagnostics> {
        herald::config::load(&self.path(), &Environment::default())
    }

    /// Loads and checks the templates, as `herald check` does.
    pub fn check(&self) -> Result<Model, Diagnostics> {
        let model = self.load()?;
        herald::render::prepare(&model)?;
        Ok(model)
    }

    /// The problems `check` reports, one string each, with the temporary
    /// root replaced by `ROOT` so they can be compared literally.
    pub fn problems(&self) -> Vec<String> {
        match self.check() {
            Ok(_) => Vec::new(),
            Err(diagnostics) => diagnostics
                .iter()
                .map(|d| {
                    d.to_string()
                        .replace(&self.root.path().display().to_string(), "ROOT")
                })
                .collect(),
        }
    }

    /// `herald preview ARGS`: the raw message; a failure fails the test.
    pub fn preview(&self, args: &[&str]) -> Vec<u8> {
        let mut all = vec!["preview"];
        all.extend_from_slice(args);
        let output = self.herald(&all);
        assert!(output.status.success(), "{}", stderr(&output));
        output.stdout
    }

    pub fn herald(&self, args: &[&str]) -> Output {
        herald_command(&self.path())
            .args(args)
            .output()
            .expect("run herald")
    }
}

/// The herald binary with `--config DIR` and a clean environment: none of
/// herald's variables, and none of systemd's, so tests run under a service
/// neither notify nor log to it unless they say so.
pub fn herald_command(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command.arg("--config").arg(config);
    for (name, _) in std::env::vars() {
        if name.starts_with("HERALD_") || name == "CREDENTIALS_DIRECTORY" || name == "STATE_DIRECTORY" {
            command.env_remove(name);
        }
    }
    for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"] {
        command.env_remove(name);
    }
    command
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// A daemon process whose log lines can be waited for.
pub struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    /// Runs `command`, reading its stderr line by line.
    pub fn spawn(command: &mut Command) -> Daemon {
        let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (up to 20 s) for a log line containing `text`.
    pub fn wait_for(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no log line with {text:?}; the log was:\n{}",
            self.seen.join("\n")
        );
    }

    /// The daemon's pid.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the daemon to exit.
    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
