//! Files -> [`Model`]: the only code that reads the configuration directory.
//!
//! Loading is two-staged: serde reads each file into the structs of
//! `raw`, shaped like the files, then each file's values and its
//! references to other files are checked while building the model
//! (`settings`, `delivery`, `roadmaps`, `lists`, `letters`). This module
//! is the public API and the walk: read each file, parse it, build. It
//! never stops at the first problem, and it returns either a whole model or
//! every problem, each naming its file and place, so a bad edit can never
//! half-load.

mod attachments;
mod delivery;
mod digest;
mod files;
mod http;
mod inbox;
mod layered;
mod letters;
mod lists;
mod notes;
mod raw;
mod roadmaps;
mod secrets;
mod settings;
mod spanned;
mod state;
mod templates;
mod values;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::diagnostics::{Diagnostic, Diagnostics, SourceFile};
use crate::inbox::InboxSettings;
use crate::model::{Letter, Model, ModelParts, Roadmap};
use crate::send::Delivery;
use settings::SettingsParts;

pub use files::MemoryFiles;
pub use secrets::{Environment, IMAP_PASSWORD_CREDENTIAL, LINK_SECRET_CREDENTIAL, PASSWORD_CREDENTIAL};

use files::Files;

/// The file of daemon-wide settings inside the configuration directory.
pub const SETTINGS_FILE: &str = "herald.toml";

/// The subdirectories of the configuration directory that hold its files.
pub const SUBDIRECTORIES: [&str; 3] = ["roadmaps", "lists", "letters"];

/// The template directory that herald.toml names (default `templates`),
/// read leniently: the file watcher must know where to look even while
/// herald.toml has problems, or is missing.
pub fn templates_dir(dir: &Path) -> PathBuf {
    let setting = std::fs::read_to_string(dir.join(SETTINGS_FILE))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|table| table.get("templates")?.as_str().map(str::to_owned));
    resolve_templates(dir, setting.as_deref())
}

/// The template directory for herald.toml's `templates` setting.
fn resolve_templates(dir: &Path, setting: Option<&str>) -> PathBuf {
    normalize(&dir.join(setting.unwrap_or("templates")))
}

/// A whole, valid configuration: what herald knows ([`Model`]) and how its
/// mail leaves ([`Delivery`], which the planner and the renderer never see).
#[derive(Debug, Clone)]
pub struct Config {
    pub model: Model,
    pub delivery: Delivery,
    /// The process's mailbox (`[inbox]`), when herald reads one.
    pub inbox: Option<InboxSettings>,
    /// The web listeners (`[http]`), when herald serves pages.
    pub http: Option<crate::web::HttpSettings>,
    /// What the configuration allows but should not be left as it is (an
    /// attachment making messages larger than `max_message_size`), each at
    /// its place: `herald check` prints them, the daemon logs them.
    pub warnings: Diagnostics,
    /// A digest of every file of the configuration directory and of the
    /// templates: nodes sharing a database plan only with the configuration
    /// that planned (`Outbox::plan_as`). Empty for a configuration held in
    /// memory.
    pub fingerprint: String,
}

/// Reads and validates the whole configuration directory.
pub fn load(dir: &Path, env: &Environment) -> Result<Config, Diagnostics> {
    load_from(Files::Disk, dir, env)
}

/// Validates a configuration directory held in memory: `dir` is where it
/// is among `files`, and the templates are where its herald.toml says,
/// among `files` too. The same loader as [`load`], for the fuzz targets and
/// the test that replays their corpora.
pub fn load_in_memory(files: &MemoryFiles, dir: &Path, env: &Environment) -> Result<Config, Diagnostics> {
    load_from(Files::Memory(files), dir, env)
}

fn load_from(files: Files<'_>, dir: &Path, env: &Environment) -> Result<Config, Diagnostics> {
    let mut loader = Loader {
        files,
        dir: dir.to_owned(),
        env,
        diagnostics: Diagnostics::default(),
        event_ids: HashMap::new(),
        roadmap_ids: Vec::new(),
        roadmaps_unreadable: false,
        attachments: attachments::ReadAttachments::default(),
        canonical_dir: None,
        max_message_size: None,
        warnings: Diagnostics::default(),
    };
    let model = loader.load();
    match model {
        Some(model) if loader.diagnostics.is_empty() => Ok(model),
        _ => Err(loader.diagnostics),
    }
}

/// Carries the diagnostics and the cross-file indexes while loading.
struct Loader<'a> {
    files: Files<'a>,
    dir: PathBuf,
    env: &'a Environment,
    diagnostics: Diagnostics,
    /// Where each event id was first defined, to report duplicates.
    event_ids: HashMap<String, Diagnostic>,
    /// Every roadmap id read, valid or not, so that a letter naming a
    /// roadmap with a problem of its own is not reported a second time.
    roadmap_ids: Vec<String>,
    /// Set when a roadmap file could not be parsed at all.
    roadmaps_unreadable: bool,
    /// Every attachment read so far, so a file listed twice is read once.
    attachments: attachments::ReadAttachments,
    /// The configuration directory with its links followed, found once.
    canonical_dir: Option<PathBuf>,
    /// `[delivery]`'s `max_message_size`, once herald.toml is read.
    max_message_size: Option<u64>,
    warnings: Diagnostics,
}

/// A file's text with its path, parsed lazily by the caller.
struct Loaded {
    path: PathBuf,
    text: String,
}

impl Loaded {
    fn source(&self) -> SourceFile<'_> {
        SourceFile {
            path: &self.path,
            text: &self.text,
        }
    }
}

impl Loader<'_> {
    fn load(&mut self) -> Option<Config> {
        if !self.files.is_dir(&self.dir) {
            self.diagnostics.file(
                &self.dir,
                "no such configuration directory: pass --config DIR or set HERALD_CONFIG",
            );
            return None;
        }
        let settings_file = self.read(&self.dir.join(SETTINGS_FILE));
        let herald: Option<(Loaded, raw::HeraldFile)> =
            settings_file.and_then(|file| self.parse(&file).map(|raw| (file, raw)));

        // Even without valid settings, the other files are parsed so that
        // every syntax error is reported in one run.
        let parts = herald.as_ref().map(|(file, raw)| self.settings_parts(file, raw));
        let roadmap_files = self.files_in("roadmaps", &["toml"]);
        let list_files = self.files_in("lists", &["toml", "csv"]);
        let letter_files = self.files_in("letters", &["toml"]);

        let unread = SettingsParts::unread();
        let parts_ref = parts.as_ref().unwrap_or(&unread);
        self.max_message_size = parts_ref
            .settings
            .as_ref()
            .map(|(_, delivery, _, _)| delivery.max_message_size);
        let roadmaps: Vec<Roadmap> = roadmap_files
            .iter()
            .filter_map(|path| self.roadmap(path, parts_ref))
            .collect();
        self.check_roadmap_ids(&roadmaps);
        let default_language = parts_ref.default_language.clone();
        let focal_points = lists::load_all(
            self.files,
            &list_files,
            parts_ref.parsed.then_some(&parts_ref.lists),
            &default_language,
            &mut self.diagnostics,
        );
        let letters: Vec<Letter> = letter_files
            .iter()
            .filter_map(|path| self.letter(path, parts_ref, &roadmaps))
            .collect();

        let (_, raw) = herald?;
        let parts = parts?;
        let templates_dir = resolve_templates(
            &self.dir,
            raw.templates.as_ref().map(|dir| dir.get_ref().as_str()),
        );
        let templates = templates::load(
            self.files,
            &templates_dir,
            &parts.default_language,
            &mut self.diagnostics,
        );
        let (settings, delivery, inbox, http) = parts.settings?;
        let model = Model::new(ModelParts {
            settings,
            venues: parts.venues,
            lists: parts.lists,
            roadmaps,
            focal_points,
            letters,
            templates,
        });
        let fingerprint = match self.files {
            Files::Disk => fingerprint(&[&self.dir, &templates_dir]),
            Files::Memory(_) => String::new(),
        };
        Some(Config {
            model,
            delivery,
            inbox,
            http,
            warnings: std::mem::take(&mut self.warnings),
            fingerprint,
        })
    }

    fn read(&mut self, path: &Path) -> Option<Loaded> {
        match self.files.read_to_string(path) {
            Ok(text) => Some(Loaded {
                path: path.to_owned(),
                text,
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                self.diagnostics.file(
                    path,
                    "missing; herald needs this file (see config/ in herald's sources for an example)",
                );
                None
            }
            Err(err) => {
                self.diagnostics.file(path, format!("cannot read: {err}"));
                None
            }
        }
    }

    fn parse<T: DeserializeOwned>(&mut self, file: &Loaded) -> Option<T> {
        match toml::from_str::<T>(&file.text) {
            Ok(value) => Some(value),
            Err(err) => {
                self.diagnostics.push(toml_error(&file.source(), &err));
                None
            }
        }
    }

    /// The files of a subdirectory with one of `extensions`, sorted by name;
    /// editor backups and hidden files are skipped.
    fn files_in(&mut self, subdir: &str, extensions: &[&str]) -> Vec<PathBuf> {
        let dir = self.dir.join(subdir);
        let entries = match self.files.read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(err) => {
                self.diagnostics
                    .file(&dir, format!("cannot read the directory: {err}"));
                return Vec::new();
            }
        };
        let mut files: Vec<PathBuf> = entries
            .into_iter()
            .map(|entry| entry.path)
            .filter(|path| {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                !name.starts_with('.') && extensions.contains(&extension) && self.files.is_file(path)
            })
            .collect();
        files.sort();
        files
    }

    /// Records the problems found in one file; true when there were any.
    fn report(&mut self, d: Vec<Diagnostic>) -> bool {
        let failed = !d.is_empty();
        for diagnostic in d {
            self.diagnostics.push(diagnostic);
        }
        failed
    }
}

/// A TOML syntax or shape error, at its place when toml gives one.
fn toml_error(src: &SourceFile, err: &toml::de::Error) -> Diagnostic {
    let message = err.message().trim_end().to_owned();
    match err.span() {
        Some(span) => src.at(span, message),
        None => Diagnostic::in_file(src.path, message),
    }
}

/// Removes `.` and `dir/..` from a path without touching the file system,
/// so that messages name `templates/en/x.hbs`, not `config/../templates/en/x.hbs`.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut result = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if matches!(result.components().next_back(), Some(Component::Normal(_))) => {
                result.pop();
            }
            other => result.push(other),
        }
    }
    result
}

/// The example configuration's model (the repository's `config/`), for the
/// unit tests of the modules that take a model.
#[cfg(test)]
pub(crate) fn example_model() -> crate::model::Model {
    load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        &Environment::default(),
    )
    .expect("the example configuration loads")
    .model
}

/// SHA-256 over the files under `dirs` (each file's path relative to its
/// directory, then its bytes), in a fixed order. Hidden files and editors'
/// backups (`.name`, `name~`) are left out: an editor's swap file is no
/// change of configuration. A file that cannot be read counts as its name.
fn fingerprint(dirs: &[&Path]) -> String {
    fn walk(dir: &Path, base: &Path, files: &mut Vec<(PathBuf, PathBuf)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name.ends_with('~') {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                walk(&path, base, files);
            } else {
                let relative = path.strip_prefix(base).unwrap_or(&path).to_owned();
                files.push((relative, path));
            }
        }
    }
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for (index, dir) in dirs.iter().enumerate() {
        let mut files = Vec::new();
        walk(dir, dir, &mut files);
        files.sort();
        for (relative, path) in files {
            context.update(format!("{index}/{}\0", relative.display()).as_bytes());
            if let Ok(bytes) = std::fs::read(&path) {
                context.update(&(bytes.len() as u64).to_be_bytes());
                context.update(&bytes);
            }
        }
    }
    context
        .finish()
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
