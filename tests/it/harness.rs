//! A throwaway copy of the example configuration, and ways to run herald on it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use herald::config::Environment;
use herald::diagnostics::Diagnostics;
use herald::model::Model;

/// The repository root, where `config/` and `templates/` live.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

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

    /// Replaces `from` by `to` in a file relative to the temporary root;
    /// fails the test if `from` is not there, so an edit never silently misses.
    pub fn edit(&self, relative: &str, from: &str, to: &str) -> &ConfigDir {
        let path = self.root.path().join(relative);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains(from), "{relative} does not contain {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
        self
    }

    /// A roadmap with one meeting on 2 March 2099, 15:00 to 18:00 New York,
    /// for the member-states list: sends to plan for a running daemon.
    pub fn with_future_meeting(&self) -> &ConfigDir {
        self.write(
            "roadmaps/future.toml",
            "id = \"future\"\ntitle = \"Future\"\nvenue = \"new-york\"\nlists = [\"member-states\"]\n\n[[events]]\nid = \"future-meeting\"\ntitle = \"A meeting\"\nkind = \"meeting\"\ndate = \"2099-03-02\"\nstart = \"15:00\"\nend = \"18:00\"\n",
        )
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

    pub fn load(&self) -> Result<Model, Diagnostics> {
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

    pub fn herald(&self, args: &[&str]) -> Output {
        herald_command(&self.path())
            .args(args)
            .output()
            .expect("run herald")
    }
}

/// The herald binary with `--config DIR` and a clean environment.
pub fn herald_command(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command.arg("--config").arg(config);
    for (name, _) in std::env::vars() {
        if name.starts_with("HERALD_") || name == "CREDENTIALS_DIRECTORY" || name == "STATE_DIRECTORY" {
            command.env_remove(name);
        }
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
