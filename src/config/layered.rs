//! Settings the environment can override: one resolver for "the
//! environment variable, else herald.toml's value, else a default", which
//! reports a refused value where it was written.
//!
//! A problem with a value from the environment is reported as `$NAME`; one
//! with a value from herald.toml, at its line and column.

use std::path::{Path, PathBuf};

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
}

impl Layered<'_> {
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
        toml::Spanned::new(start..start + text.len() + 2, text.to_owned())
    }

    fn problems(env: &Environment, file: Option<&Text>) -> Vec<String> {
        let src = SourceFile {
            path: Path::new("herald.toml"),
            text: TOML,
        };
        let layers = Layers::new(env, &src);
        let setting = layers.get(&["HERALD_A", "HERALD_B"], file);
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
        assert_eq!(problems(&none, None), Vec::<String>::new());
        assert_eq!(problems(&none, Some(&file)), ["herald.toml:2:8: bad x"]);
        let b = Environment::default().with("HERALD_B", "y");
        assert_eq!(problems(&b, Some(&file)), ["$HERALD_B: bad y"]);
        let a_and_b = b.clone().with("HERALD_A", "z").with("HERALD_B", "y");
        assert_eq!(problems(&a_and_b, None), ["$HERALD_A: bad z"]);
        let empty_a = b.clone().with("HERALD_A", "");
        assert_eq!(problems(&empty_a, None), ["$HERALD_B: bad y"]);
        let good = Environment::default().with("HERALD_A", "587");
        assert_eq!(problems(&good, Some(&file)), Vec::<String>::new());
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
