//! What each fuzz target checks, written once: the targets in
//! `fuzz/fuzz_targets/` call these on libFuzzer's inputs, and herald's test
//! `tests/it/fuzz_corpus.rs` includes this file and replays the committed
//! corpora (`fuzz/corpus/<target>/`) through them under `cargo test`.
//!
//! Each check hands the input to herald's own code, in the example
//! configuration (`config/` and `templates/`, read once into memory), and
//! passes when that code returns, a value or a proper error: a panic, a
//! stack overflow or a hang is a finding. Some also check a promise about
//! what is returned (an imported roadmap loads; every problem is printable).
//!
//! The inputs of the configuration and template targets start with one
//! byte that chooses which file of the example the rest replaces (the byte
//! modulo the number of files, so `'0'`, `'1'`, … in a seed name the first,
//! second, …); the rest must be UTF-8, as the loader reads text.

use std::path::{Path, PathBuf};

use herald::config::{self, Config, Environment, MemoryFiles};
use herald::diagnostics::Diagnostics;
use herald::inbox::{Kind, MAX_ADDRESSES, classify};
use herald::plan::{Planner, Source, Window};
use herald::render::{self, message};
use herald::resolve::{Calendars, resolve};
use herald_import::{ImportOptions, import_letter, schema::RoadmapFile};

/// Where the example configuration is among the files in memory.
const CONFIG_DIR: &str = "config";

/// The TOML files of the example that `config_toml` inputs replace.
pub const TOML_FILES: [&str; 4] = [
    "config/herald.toml",
    "config/roadmaps/2017-modalities-resolution.toml",
    "config/lists/civil-society.toml",
    "config/letters/2017-09-14-modalities-roadmap.toml",
];

/// The list CSV of the example that `config_csv` inputs replace.
pub const CSV_FILE: &str = "config/lists/permanent-missions.csv";

/// The example configuration and templates, in memory, and what the checks
/// derive from them once.
pub struct Example {
    files: MemoryFiles,
    /// The template files (`templates/…`, phrases included), in path order:
    /// what `templates` inputs replace.
    template_files: Vec<PathBuf>,
    /// The example without its roadmaps and its letter, which names one of
    /// them: an imported roadmap is loaded alone into it, so its event ids
    /// cannot clash with the example's. Without the templates too, but one.
    without_roadmaps: MemoryFiles,
    /// The options of `herald import-roadmap LETTER --venue new-york --list
    /// member-states --skip-bad-rows` on the example configuration.
    import_options: ImportOptions,
}

impl Example {
    /// Reads `config/` and `templates/` of the repository at `repo`.
    ///
    /// # Panics
    ///
    /// If they cannot be read or the example does not load: the checks mean
    /// nothing without it.
    pub fn read(repo: &Path) -> Example {
        let mut files = MemoryFiles::new();
        for dir in [CONFIG_DIR, "templates"] {
            files
                .read_dir_into(&repo.join(dir), Path::new(dir))
                .unwrap_or_else(|err| panic!("cannot read {dir}/ of {}: {err}", repo.display()));
        }
        let template_files = files
            .paths()
            .filter(|path| path.starts_with("templates"))
            .map(Path::to_owned)
            .collect();
        let config = load(&files).unwrap_or_else(|problems| panic!("the example does not load:\n{problems}"));
        let (venues, parts_of_day) = herald::cli::import::venues_and_parts_of_day(&config.model);
        let import_options = ImportOptions {
            default_venue: Some("new-york".to_string()),
            venues,
            skip_bad_rows: true,
            lists: vec!["member-states".to_string()],
            parts_of_day,
            ..ImportOptions::default()
        };
        let mut without_roadmaps = files.clone();
        // Nor the templates, which loading only reads (the renderer checks
        // them): the default language's directory is enough.
        let roadmaps: Vec<PathBuf> = files
            .paths()
            .filter(|path| {
                path.starts_with("config/roadmaps")
                    || path.starts_with("config/letters")
                    || (path.starts_with("templates") && !path.ends_with("templates/en/reminder.txt.hbs"))
            })
            .map(Path::to_owned)
            .collect();
        for path in roadmaps {
            without_roadmaps.remove(&path);
        }
        Example {
            files,
            template_files,
            without_roadmaps,
            import_options,
        }
    }

    /// `import_roadmap`: the input as a letter, imported as `herald
    /// import-roadmap --skip-bad-rows` does. What it writes must read back as
    /// a roadmap file and load into the configuration.
    pub fn import_roadmap(&self, data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let report = import_letter(text, &self.import_options);
        if report.toml.is_empty() {
            assert!(!report.problems.is_empty(), "no TOML and no problem saying why");
            return;
        }
        if let Err(err) = toml::from_str::<RoadmapFile>(&report.toml) {
            panic!("the imported roadmap does not read back: {err}\n{}", report.toml);
        }
        let mut files = self.without_roadmaps.clone();
        files.insert("config/roadmaps/imported.toml", report.toml.as_str());
        if let Err(problems) = load(&files) {
            panic!("the imported roadmap does not load:\n{problems}\n{}", report.toml);
        }
    }

    /// `config_toml`: the input as one of [`TOML_FILES`], loaded and, if it
    /// loads, planned as `herald check` does.
    pub fn config_toml(&self, data: &[u8]) {
        let Some((file, text)) = choose(&TOML_FILES, data) else {
            return;
        };
        self.load_and_plan(file, text);
    }

    /// `config_csv`: the input as the example's list CSV, loaded and, if it
    /// loads, planned as `herald check` does.
    pub fn config_csv(&self, data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        self.load_and_plan(Path::new(CSV_FILE), text);
    }

    /// `classify`: the input as an incoming message, classified as the
    /// inbox does. Whatever it is, the lists a classification holds stay
    /// within their bounds.
    pub fn classify(&self, data: &[u8]) {
        let classification = classify::classify(data);
        assert!(classification.addresses.len() <= MAX_ADDRESSES);
        assert!(classification.clues.original_message_ids.len() <= classify::MAX_IDS);
        assert!(
            (classification.kind == Kind::Bounce || classification.kind == Kind::Delay)
                == classification.permanent.is_some(),
            "permanent is said for bounces and delays only: {classification:?}"
        );
    }

    /// `templates`: the input as one of the template files, loaded, compiled
    /// and checked against every event and letter as `herald check` does,
    /// then a reminder and a letter rendered into messages as `herald
    /// preview` does.
    pub fn templates(&self, data: &[u8]) {
        let Some((file, text)) = choose(&self.template_files, data) else {
            return;
        };
        let mut files = self.files.clone();
        files.insert(file, text);
        let config = match load(&files) {
            Ok(config) => config,
            Err(problems) => {
                printable(&problems);
                return;
            }
        };
        let model = &config.model;
        let renderer = match render::prepare(model) {
            Ok(renderer) => renderer,
            Err(problems) => {
                printable(&problems);
                return;
            }
        };
        let planner = Planner::new(model);
        let calendars = Calendars::new(Vec::new());
        let slots = planner.slots(Window::default());
        let reminder = slots
            .iter()
            .find(|slot| matches!(slot.source, Source::Reminder { .. }));
        let letter = slots.iter().find(|slot| matches!(slot.source, Source::Letter(_)));
        for slot in reminder.into_iter().chain(letter) {
            let Some(send) = planner.sends(slot).next() else {
                continue;
            };
            let date = send.due.timestamp();
            let Ok(resolved) = resolve(model, &calendars, send) else {
                continue;
            };
            let rendered = match renderer.render(model, &resolved, date) {
                Ok(rendered) => rendered,
                Err(err) => {
                    let _ = err.to_string();
                    continue;
                }
            };
            match message::build(model, &resolved, &rendered, date) {
                Ok(message) => drop(message.to_bytes()),
                Err(err) => drop(err.to_string()),
            }
        }
    }

    /// The example with `file` replaced by `text`, loaded; its problems
    /// printed, or its plan counted.
    fn load_and_plan(&self, file: &Path, text: &str) {
        let mut files = self.files.clone();
        files.insert(file, text);
        match load(&files) {
            Ok(config) => {
                let planner = Planner::new(&config.model);
                let mut sends = 0usize;
                for slot in planner.slots(Window::default()) {
                    sends += planner.recipients(&slot).len();
                }
                std::hint::black_box(sends);
            }
            Err(problems) => printable(&problems),
        }
    }
}

/// The file the first byte of `data` chooses among `files`, and the rest of
/// `data` as text (none if it is not UTF-8).
fn choose<'f, P: AsRef<Path>>(files: &'f [P], data: &'f [u8]) -> Option<(&'f Path, &'f str)> {
    let (&selector, rest) = data.split_first()?;
    let file = files.get(usize::from(selector) % files.len())?;
    Some((file.as_ref(), std::str::from_utf8(rest).ok()?))
}

fn load(files: &MemoryFiles) -> Result<Config, Diagnostics> {
    config::load_in_memory(files, Path::new(CONFIG_DIR), &Environment::default())
}

/// Every problem must be printable, as `herald check` prints them.
fn printable(problems: &Diagnostics) {
    assert!(!problems.is_empty(), "an error without a problem");
    std::hint::black_box(problems.to_string());
}
