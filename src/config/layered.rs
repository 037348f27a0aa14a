//! Settings the environment can override: one resolver for "the
//! environment variable, else herald.toml's value, else a default", which
//! reports a refused value where it was written.
//!
//! A problem with a value from the environment is reported as `$NAME`; one
//! with a value from herald.toml, at its line and column.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::config::Environment;
use crate::config::raw::Text;
use crate::diagnostics::{Diagnostic, SourceFile};

/// The environment and the file that layered settings are read from.
pub(super) struct Layers<'a> {
    env: &'a Environment,
    src: &'a SourceFile<'a>,
}

impl<'a> Layers<'a> {
    pub(super) fn new(env: &'a Environment, src: &'a SourceFile<'a>) -> Layers<'a> {
        Layers { env, src }
    }

    /// The setting's value: the first of `vars` that is set (and not
    /// empty), else herald.toml's value `file`, else its default.
    pub(super) fn get(&self, vars: &[&'static str], file: Option<&'a Text>) -> Layered<'a> {
        let from_env = vars
            .iter()
            .find_map(|var| self.env.var(var).map(|text| Origin::Env { var, text }));
        let origin = match (from_env, file) {
            (Some(env), _) => env,
            (None, Some(text)) => Origin::File(text),
            (None, None) => Origin::Default,
        };
        Layered {
            src: self.src,
            origin,
            file,
            in_file: None,
        }
    }
}

/// Where a layered setting's value came from.
enum Origin<'a> {
    /// An environment variable: its name and its value.
    Env { var: &'static str, text: String },
    /// herald.toml, with the value's span.
    File(&'a Text),
    /// Neither: the setting's default.
    Default,
}

/// One setting, resolved; see [`Layers::get`].
pub(super) struct Layered<'a> {
    src: &'a SourceFile<'a>,
    origin: Origin<'a>,
    /// herald.toml's value, even when the environment overrides it.
    file: Option<&'a Text>,
    /// Set by [`Layered::reported_in_file`].
    in_file: Option<Range<usize>>,
}

impl Layered<'_> {
    /// Reports problems in herald.toml even when the value came from the
    /// environment (or is the default): at the file's value, else at
    /// `fallback` (its table). This is where the SMTP security, password
    /// file and CA file have always been reported.
    pub(super) fn reported_in_file(mut self, fallback: Range<usize>) -> Self {
        self.in_file = Some(fallback);
        self
    }

    /// The value as written; `None` when it is the default.
    pub(super) fn text(&self) -> Option<&str> {
        match &self.origin {
            Origin::Env { text, .. } => Some(text),
            Origin::File(text) => Some(text.get_ref()),
            Origin::Default => None,
        }
    }

    /// The value as a path: from the environment as given, from herald.toml
    /// relative to `base` when there is one; `None` when it is the default.
    pub(super) fn path(&self, base: Option<&Path>) -> Option<PathBuf> {
        match (&self.origin, base) {
            (Origin::File(text), Some(base)) => Some(base.join(text.get_ref())),
            _ => self.text().map(PathBuf::from),
        }
    }

    /// The value converted by `validate`, or `default()` when nothing sets
    /// it. A refused value is reported (see [`Layered::problem`]) and gives
    /// `None`.
    pub(super) fn check<T>(
        &self,
        d: &mut Vec<Diagnostic>,
        default: impl FnOnce() -> T,
        validate: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match self.text() {
            Some(text) => self.report(d, validate(text)),
            None => Some(default()),
        }
    }

    /// The value of `result`, or `None` with its error reported.
    pub(super) fn report<T>(&self, d: &mut Vec<Diagnostic>, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| d.push(self.problem(message))).ok()
    }

    /// A problem with this value, where the value came from: the environment
    /// variable, or the value's line and column in herald.toml.
    pub(super) fn problem(&self, message: impl Into<String>) -> Diagnostic {
        if let Some(fallback) = &self.in_file {
            let span = self.file.map_or(fallback.clone(), Spanned::span);
            return self.src.at(span, message);
        }
        match &self.origin {
            Origin::Env { var, .. } => Diagnostic::in_file(Path::new(&format!("${var}")), message),
            Origin::File(text) => self.src.at(text.span(), message),
            // A default is never refused; the start of the file is a place all the same.
            Origin::Default => self.src.at(0..0, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = "[delivery]\nport = \"x\"\n";

    /// herald.toml's `port = "x"`, with its span.
    fn value(text: &str) -> Text {
        let start = TOML.find(&format!("\"{text}\"")).unwrap();
        Spanned::new(start..start + text.len() + 2, text.to_owned())
    }

    fn problems(env: &Environment, file: Option<&Text>, reported_in_file: bool) -> Vec<String> {
        let src = SourceFile {
            path: Path::new("herald.toml"),
            text: TOML,
        };
        let layers = Layers::new(env, &src);
        let mut setting = layers.get(&["HERALD_A", "HERALD_B"], file);
        if reported_in_file {
            setting = setting.reported_in_file(0..0);
        }
        let mut d = Vec::new();
        let port = setting.check(
            &mut d,
            || 25,
            |text| text.parse::<u16>().map_err(|_| format!("bad {text}")),
        );
        assert_eq!(port.is_none(), !d.is_empty());
        d.iter()
            .map(|problem| format!("{}: {}", problem.location(), problem.message))
            .collect()
    }

    #[test]
    fn the_environment_then_the_file_then_the_default() {
        let file = value("x");
        let none = Environment::default();
        assert_eq!(problems(&none, None, false), Vec::<String>::new());
        assert_eq!(problems(&none, Some(&file), false), ["herald.toml:2:8: bad x"]);
        let b = Environment::default().with("HERALD_B", "y");
        assert_eq!(problems(&b, Some(&file), false), ["$HERALD_B: bad y"]);
        let a_and_b = b.clone().with("HERALD_A", "z").with("HERALD_B", "y");
        assert_eq!(problems(&a_and_b, None, false), ["$HERALD_A: bad z"]);
        let empty_a = b.clone().with("HERALD_A", "");
        assert_eq!(problems(&empty_a, None, false), ["$HERALD_B: bad y"]);
        let good = Environment::default().with("HERALD_A", "587");
        assert_eq!(problems(&good, Some(&file), false), Vec::<String>::new());
    }

    #[test]
    fn reported_in_file_places_an_environment_problem_in_the_file() {
        let file = value("x");
        let b = Environment::default().with("HERALD_B", "y");
        assert_eq!(problems(&b, Some(&file), true), ["herald.toml:2:8: bad y"]);
        assert_eq!(problems(&b, None, true), ["herald.toml:1:1: bad y"]);
    }

    #[test]
    fn only_a_path_from_the_file_is_relative_to_the_base() {
        let src = SourceFile {
            path: Path::new("herald.toml"),
            text: TOML,
        };
        let file = value("x");
        let none = Environment::default();
        let env = Environment::default().with("HERALD_A", "y");
        let base = Path::new("/etc/herald");
        let path = |env: &Environment, file| Layers::new(env, &src).get(&["HERALD_A"], file).path(Some(base));
        assert_eq!(path(&none, Some(&file)), Some(PathBuf::from("/etc/herald/x")));
        assert_eq!(path(&env, Some(&file)), Some(PathBuf::from("y")));
        assert_eq!(path(&none, None), None);
    }
}
