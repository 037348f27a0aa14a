//! Where the loader reads the configuration directory and the templates
//! from: the disk, or a set of files held in memory ([`MemoryFiles`]).
//!
//! The memory form exists so that the loader can be run on text that never
//! touched a disk: the fuzz targets under `fuzz/` and the test that replays
//! their corpora load thousands of configurations a second through it. It
//! is the same loader either way; only the reading of files differs. The
//! SMTP password file and CA file are files of the machine, not of the
//! configuration, and are always looked up on the disk.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// A configuration directory (and its templates) held in memory: each file's
/// path and text. Directories are the paths that files are under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryFiles {
    files: BTreeMap<PathBuf, String>,
}

impl MemoryFiles {
    /// No files.
    pub fn new() -> MemoryFiles {
        MemoryFiles::default()
    }

    /// Adds a file, or replaces its text.
    pub fn insert(&mut self, path: impl Into<PathBuf>, text: impl Into<String>) {
        self.files.insert(path.into(), text.into());
    }

    /// Removes a file; true if it was there.
    pub fn remove(&mut self, path: &Path) -> bool {
        self.files.remove(path).is_some()
    }

    /// Every file, in path order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.keys().map(PathBuf::as_path)
    }

    /// Reads every file under `dir` on the disk, recursively, with its path
    /// as `under` joined with its path below `dir`. Files that are not UTF-8
    /// are read with replacement characters.
    pub fn read_dir_into(&mut self, dir: &Path, under: &Path) -> io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let name = under.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                self.read_dir_into(&path, &name)?;
            } else {
                let bytes = std::fs::read(&path)?;
                self.insert(name, String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        Ok(())
    }
}

/// One entry of a directory listing.
pub(crate) struct Entry {
    pub path: PathBuf,
    pub is_dir: bool,
}

/// The file system the loader reads.
#[derive(Clone, Copy)]
pub(crate) enum Files<'a> {
    Disk,
    Memory(&'a MemoryFiles),
}

impl Files<'_> {
    pub fn read_to_string(&self, path: &Path) -> io::Result<String> {
        match self {
            Files::Disk => std::fs::read_to_string(path),
            Files::Memory(memory) => memory
                .files
                .get(path)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    /// A file's bytes (an attachment's).
    pub fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self {
            Files::Disk => std::fs::read(path),
            Files::Memory(_) => self.read_to_string(path).map(String::into_bytes),
        }
    }

    /// The path with every symbolic link followed and `.` and `..` gone;
    /// an error when nothing is there. A configuration in memory has no
    /// links: its paths are only normalised.
    pub fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        match self {
            Files::Disk => std::fs::canonicalize(path),
            Files::Memory(_) => {
                let path = super::normalize(path);
                if self.is_file(&path) || self.is_dir(&path) {
                    Ok(path)
                } else {
                    Err(io::Error::from(io::ErrorKind::NotFound))
                }
            }
        }
    }

    pub fn is_dir(&self, path: &Path) -> bool {
        match self {
            Files::Disk => path.is_dir(),
            Files::Memory(memory) => memory
                .files
                .keys()
                .any(|file| file != path && file.starts_with(path)),
        }
    }

    pub fn is_file(&self, path: &Path) -> bool {
        match self {
            Files::Disk => path.is_file(),
            Files::Memory(memory) => memory.files.contains_key(path),
        }
    }

    /// The entries of a directory, in no particular order (callers sort).
    /// A directory with nothing in it, in memory, does not exist.
    pub fn read_dir(&self, dir: &Path) -> io::Result<Vec<Entry>> {
        match self {
            Files::Disk => std::fs::read_dir(dir)?
                .filter_map(Result::ok)
                .map(|entry| {
                    Ok(Entry {
                        path: entry.path(),
                        is_dir: entry.path().is_dir(),
                    })
                })
                .collect(),
            Files::Memory(memory) => {
                let mut entries: BTreeMap<PathBuf, bool> = BTreeMap::new();
                for file in memory.files.keys() {
                    let Ok(rest) = file.strip_prefix(dir) else {
                        continue;
                    };
                    let mut components = rest.components();
                    let Some(first) = components.next() else {
                        continue;
                    };
                    let is_dir = components.next().is_some();
                    *entries.entry(dir.join(first)).or_default() |= is_dir;
                }
                if entries.is_empty() {
                    return Err(io::Error::from(io::ErrorKind::NotFound));
                }
                Ok(entries
                    .into_iter()
                    .map(|(path, is_dir)| Entry { path, is_dir })
                    .collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> MemoryFiles {
        let mut files = MemoryFiles::new();
        files.insert("config/herald.toml", "a");
        files.insert("config/lists/x.csv", "b");
        files.insert("templates/en/partials/p.txt.hbs", "c");
        files
    }

    #[test]
    fn memory_directories_are_the_paths_files_are_under() {
        let files = files();
        let memory = Files::Memory(&files);
        assert!(memory.is_dir(Path::new("config")));
        assert!(memory.is_dir(Path::new("templates/en")));
        assert!(!memory.is_dir(Path::new("config/herald.toml")));
        assert!(memory.is_file(Path::new("config/herald.toml")));
        assert!(!memory.is_file(Path::new("config")));
        let mut listing: Vec<(String, bool)> = memory
            .read_dir(Path::new("config"))
            .unwrap()
            .into_iter()
            .map(|entry| (entry.path.display().to_string(), entry.is_dir))
            .collect();
        listing.sort();
        assert_eq!(
            listing,
            [
                ("config/herald.toml".to_string(), false),
                ("config/lists".to_string(), true)
            ]
        );
        let missing = memory.read_dir(Path::new("config/roadmaps")).err().unwrap();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            memory.read_to_string(Path::new("config/lists/x.csv")).unwrap(),
            "b"
        );
        let missing = memory.read_to_string(Path::new("config/x")).err().unwrap();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }
}
