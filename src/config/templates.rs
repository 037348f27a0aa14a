//! Reads the template directory: `<lang>/<name>.<part>.hbs`,
//! `<lang>/partials/<name>.<part>.hbs`, the web pages
//! `<lang>/web/<page>.html.hbs` and `<lang>/phrases.toml`.
//!
//! Only the files are read here; compiling and checking them is the
//! renderer's job, so rendering never touches the disk.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::files::Files;
use crate::config::values;
use crate::diagnostics::{Diagnostics, SourceFile};
use crate::model::{COUNTED_PHRASES, PLURAL_CATEGORIES, Phrase, TemplateFile, TemplateSources};

/// The largest template file herald reads, in bytes (32 KiB; the default
/// templates are under 2 KiB). Handlebars takes time in the square of a
/// template's size to compile it (its parser finds the line and column of
/// every element by counting from the start of the text): a 170 KB template
/// kept `herald check`, and the daemon's start and reloads, busy for
/// minutes.
pub const MAX_TEMPLATE_BYTES: usize = 32 * 1024;

pub fn load(
    files: Files<'_>,
    dir: &Path,
    default_language: &str,
    diagnostics: &mut Diagnostics,
) -> TemplateSources {
    let mut sources = TemplateSources::default();
    let entries = match files.read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            diagnostics.file(
                dir,
                format!("cannot read the template directory: {err}; set `templates` in herald.toml"),
            );
            return sources;
        }
    };
    let mut languages: Vec<_> = entries
        .into_iter()
        .filter(|entry| entry.is_dir)
        .filter_map(|entry| entry.path.file_name()?.to_str().map(str::to_owned))
        .filter(|name| !name.starts_with('.'))
        .collect();
    languages.sort();
    for language in &languages {
        if values::language(language).is_err() {
            diagnostics.file(
                &dir.join(language),
                "a template directory must be named by a language tag, like \"en\" or \"fr\"",
            );
            continue;
        }
        let language_dir = dir.join(language);
        read_templates(files, &language_dir, "", language, &mut sources, diagnostics);
        let phrases_path = language_dir.join("phrases.toml");
        if let Ok(text) = files.read_to_string(&phrases_path) {
            let src = SourceFile {
                path: &phrases_path,
                text: &text,
            };
            if let Some(phrases) = phrases(&src, diagnostics) {
                sources.phrases.insert(language.clone(), phrases);
            }
        }
    }
    if !languages.iter().any(|l| l == default_language) {
        diagnostics.file(
            dir,
            format!("no templates for the default language {default_language:?}: expected a directory {default_language}/ here"),
        );
    }
    sources
}

/// A `phrases.toml`: each phrase a text, or for a phrase with a count a
/// table of plural forms (`in_days = { one = "…", few = "…", other = "…" }`).
fn phrases(src: &SourceFile<'_>, diagnostics: &mut Diagnostics) -> Option<BTreeMap<String, Phrase>> {
    let raw = match toml::from_str::<BTreeMap<String, toml::Spanned<toml::Value>>>(src.text) {
        Ok(raw) => raw,
        Err(err) => {
            let span = err.span().unwrap_or(0..0);
            diagnostics.push(src.at(span, err.message().trim_end().to_owned()));
            return None;
        }
    };
    let mut phrases = BTreeMap::new();
    let mut problems = Vec::new();
    for (key, value) in raw {
        let span = value.span();
        match value.into_inner() {
            toml::Value::String(text) => {
                phrases.insert(key, Phrase::Text(text));
            }
            toml::Value::Table(table) if COUNTED_PHRASES.contains(&key.as_str()) => {
                match plural_forms(&key, table) {
                    Ok(forms) => {
                        phrases.insert(key, Phrase::Plural(forms));
                    }
                    Err(message) => problems.push(src.at(span, message)),
                }
            }
            toml::Value::Table(_) => problems.push(src.at(
                span,
                format!(
                    "{key}: only the phrases with a count ({}) may give plural forms; write it as one text in quotes",
                    COUNTED_PHRASES.join(", ")
                ),
            )),
            _ => problems.push(src.at(
                span,
                format!("{key}: a phrase is a text in quotes (or, for a phrase with a count, a table of plural forms like {{ one = \"…\", other = \"…\" }})"),
            )),
        }
    }
    if problems.is_empty() {
        Some(phrases)
    } else {
        for problem in problems {
            diagnostics.push(problem);
        }
        None
    }
}

/// A table of plural forms, checked: CLDR's category names, texts, and
/// `other`, the form of every count the table has no category for.
fn plural_forms(key: &str, table: toml::Table) -> Result<BTreeMap<String, String>, String> {
    let mut forms = BTreeMap::new();
    for (category, form) in table {
        if !PLURAL_CATEGORIES.contains(&category.as_str()) {
            return Err(format!(
                "{key}: unknown plural category {category:?}; the categories are CLDR's: {}",
                PLURAL_CATEGORIES.join(", ")
            ));
        }
        let toml::Value::String(form) = form else {
            return Err(format!("{key}.{category}: a plural form is a text in quotes"));
        };
        forms.insert(category, form);
    }
    if !forms.contains_key("other") {
        return Err(format!(
            "{key} has no `other` form: add one, for the counts its other forms do not cover"
        ));
    }
    Ok(forms)
}

fn read_templates(
    files: Files<'_>,
    dir: &Path,
    prefix: &str,
    language: &str,
    sources: &mut TemplateSources,
    diagnostics: &mut Diagnostics,
) {
    let Ok(entries) = files.read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.into_iter().map(|e| (e.path, e.is_dir)).collect();
    entries.sort();
    for (path, is_dir) in entries {
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if file_name.starts_with('.') {
            continue;
        }
        if is_dir {
            if prefix.is_empty() && (file_name == "partials" || file_name == "web") {
                let prefix = format!("{file_name}/");
                read_templates(files, &path, &prefix, language, sources, diagnostics);
            }
            continue;
        }
        let Some(name) = file_name.strip_suffix(".hbs") else {
            continue;
        };
        match files.read_to_string(&path) {
            Ok(source) if source.len() > MAX_TEMPLATE_BYTES => diagnostics.file(
                &path,
                format!(
                    "the template is {} KiB; templates may be at most {} KiB (keep long texts in partials)",
                    source.len().div_ceil(1024),
                    MAX_TEMPLATE_BYTES / 1024
                ),
            ),
            Ok(source) => {
                sources.files.insert(
                    (language.to_owned(), format!("{prefix}{name}")),
                    TemplateFile {
                        path: path.clone(),
                        source,
                    },
                );
            }
            Err(err) => diagnostics.file(&path, format!("cannot read: {err}")),
        }
    }
}
