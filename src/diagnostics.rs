//! Problems found in the operator's files, each with its file and place.
//!
//! Loading never stops at the first problem: every check runs, and the
//! operator gets the whole list at once (`herald check`).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where in a file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// The file as a whole (it is missing, unreadable, …).
    File,
    /// A line and column, both 1-based.
    At { line: usize, column: usize },
    /// A line of a CSV file, 1-based, counting the header.
    Line(usize),
}

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub place: Place,
    pub message: String,
    /// The offending source line, for display under the message.
    pub snippet: Option<String>,
}

impl Diagnostic {
    /// A problem with a whole file (or an environment variable, named like `$NAME`).
    pub fn in_file(file: &Path, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.to_owned(),
            place: Place::File,
            message: message.into(),
            snippet: None,
        }
    }

    /// Where the problem is, as messages name a place: `file:line:column`,
    /// `file:line` or `file`.
    pub fn location(&self) -> String {
        let file = self.file.display();
        match &self.place {
            Place::File => file.to_string(),
            Place::At { line, column } => format!("{file}:{line}:{column}"),
            Place::Line(line) => format!("{file}:{line}"),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location(), self.message)?;
        if let (Some(snippet), Place::At { column, .. }) = (&self.snippet, &self.place) {
            let pad: String = snippet
                .chars()
                .take(column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n    | {snippet}\n    | {pad}^")?;
        }
        Ok(())
    }
}

/// Every problem found while loading; never empty when returned as an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    /// A problem with a whole file.
    pub fn file(&mut self, file: &Path, message: impl Into<String>) {
        self.push(Diagnostic::in_file(file, message));
    }

    /// A problem at a line of a file without a source map (CSV).
    pub fn line(&mut self, file: &Path, line: usize, message: impl Into<String>) {
        self.push(Diagnostic {
            file: file.to_owned(),
            place: Place::Line(line),
            message: message.into(),
            snippet: None,
        });
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// A file's text, kept to turn byte spans into lines and columns.
pub struct SourceFile<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl SourceFile<'_> {
    /// A diagnostic at the start of `span`.
    pub fn at(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        let offset = span.start.min(self.text.len());
        let before = &self.text[..floor_char_boundary(self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        let snippet = self.text[line_start..].lines().next().map(hide_secrets);
        Diagnostic {
            file: self.path.to_owned(),
            place: Place::At { line, column },
            message: message.into(),
            snippet,
        }
    }
}

/// A source line as it may be shown: a value given to a key that names a
/// password (`password = "…"`, but not `password_file = "…"`) is hidden,
/// whatever the problem on that line is (the refusal of a password in
/// herald.toml, a syntax error in it, …), so that no log or terminal ever
/// shows a secret.
fn hide_secrets(line: &str) -> String {
    let line = &hide_url_password(line);
    let lower = line.to_ascii_lowercase();
    let mut search = 0;
    while let Some(found) = lower[search..].find("password") {
        let after_key = search + found + "password".len();
        let rest = lower[after_key..].trim_start_matches(['"', '\'', ' ', '\t']);
        if let Some(value) = rest.strip_prefix('=') {
            let value_start = lower.len() - value.len();
            return format!("{} <hidden>", line[..value_start].trim_end());
        }
        search = after_key;
    }
    line.to_owned()
}

/// `scheme://user:secret@host` → `scheme://user:<hidden>@host`: a
/// password written into a URL (which `[state] database` refuses).
fn hide_url_password(line: &str) -> String {
    let Some(scheme_end) = line.find("://") else {
        return line.to_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = &line[authority_start..];
    let authority_end = rest.find(['/', '"', '\'', ' ', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}<hidden>{}",
            &line[..authority_start],
            &authority[..=colon],
            &line[authority_start + at..]
        ),
        _ => line.to_owned(),
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// A count as people read it: 10000 → "10,000".
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// An error with its causes, "context: cause: …", as anyhow's `{:#}` shows
/// them: for log fields and warnings, where `%err` would show only the
/// context.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// An error and its first cause only, for a status line ("recording
/// outcomes: database is locked"): what herald was doing and the storage's
/// own word for what went wrong. The log gets the whole [`Chain`].
pub struct Brief<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Brief<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        if let Some(cause) = self.0.source() {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_said_with_thousands_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(10_000), "10,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn a_password_in_a_url_is_hidden_and_the_rest_kept() {
        assert_eq!(
            hide_secrets("database = \"postgres://herald:hunter2@db:5432/herald\""),
            "database = \"postgres://herald:<hidden>@db:5432/herald\""
        );
        assert_eq!(
            hide_secrets("database = \"postgres://herald@db:5432/herald\""),
            "database = \"postgres://herald@db:5432/herald\""
        );
        assert_eq!(
            hide_secrets("public_url = \"https://example.org:8443/\""),
            "public_url = \"https://example.org:8443/\""
        );
    }

    #[test]
    fn spans_become_lines_and_columns() {
        let text = "a = 1\nbb = \"x\"\n";
        let file = SourceFile {
            path: Path::new("f.toml"),
            text,
        };
        let d = file.at(11..12, "bad");
        assert_eq!(d.place, Place::At { line: 2, column: 6 });
        assert_eq!(d.to_string(), "f.toml:2:6: bad\n    | bb = \"x\"\n    |      ^");
    }

    #[test]
    fn a_password_is_never_shown_in_a_source_line() {
        let text = "host = \"h\"\npassword = \"hunter2\" # x\nsmtp = { Password= 'p2', a = 1 }\npassword_file = \"f\"\n";
        let file = SourceFile {
            path: Path::new("f.toml"),
            text,
        };
        let shown = |offset| file.at(offset..offset, "bad").to_string();
        assert!(shown(12).contains("| password = <hidden>"), "{}", shown(12));
        assert!(
            shown(40).contains("| smtp = { Password= <hidden>"),
            "{}",
            shown(40)
        );
        assert!(shown(text.len() - 3).contains("password_file = \"f\""));
    }

    #[test]
    fn a_chain_shows_each_cause_once() {
        let err = anyhow::anyhow!("disk on fire").context("cannot save");
        assert_eq!(Chain(&*err).to_string(), "cannot save: disk on fire");
    }

    #[test]
    fn a_brief_shows_the_first_cause_only() {
        let err = anyhow::anyhow!("sector 7")
            .context("disk on fire")
            .context("cannot save");
        assert_eq!(Brief(&*err).to_string(), "cannot save: disk on fire");
        assert_eq!(Chain(&*err).to_string(), "cannot save: disk on fire: sector 7");
    }
}
