//! Checking one value as written in a TOML file: a validator from `values`
//! run on the value, a refusal reported at its line and column.

use toml::Spanned;

use crate::config::values;
use crate::diagnostics::{Diagnostic, SourceFile};
use crate::model::Lead;

/// Runs a validator on a spanned value, recording its message at the span.
pub(super) fn check<T>(
    src: &SourceFile,
    text: &Spanned<String>,
    validate: impl FnOnce(&str) -> Result<T, String>,
    d: &mut Vec<Diagnostic>,
) -> Option<T> {
    match validate(text.get_ref()) {
        Ok(value) => Some(value),
        Err(message) => {
            d.push(src.at(text.span(), message));
            None
        }
    }
}

/// Lead times, each checked; one written twice is kept once.
pub(super) fn leads_of(src: &SourceFile, leads: &[Spanned<String>], d: &mut Vec<Diagnostic>) -> Vec<Lead> {
    let mut result: Vec<Lead> = Vec::new();
    for text in leads {
        if let Some(lead) = check(src, text, values::lead, d)
            && !result.contains(&lead)
        {
            result.push(lead);
        }
    }
    result
}
