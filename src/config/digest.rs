//! herald.toml's `[digest]`: who gets the operator's daily digest, at what
//! time of day, in which time zone and language.

use toml::Spanned;

use crate::config::spanned::check;
use crate::config::{raw, values};
use crate::diagnostics::{Diagnostic, SourceFile};
use crate::model::{DigestSettings, Zone};

/// The time zone of a digest without `time_zone`: UTC, the one zone that
/// means the same to every operator (a venue's zone would change with the
/// first venue of the file).
const DEFAULT_ZONE: &str = "UTC";

/// Checks `[digest]`, each value at its line and column; `None` once any
/// value is refused.
pub(super) fn digest(
    src: &SourceFile,
    table: &Spanned<raw::DigestTable>,
    default_language: &str,
    d: &mut Vec<Diagnostic>,
) -> Option<DigestSettings> {
    let raw = table.get_ref();
    let before = d.len();
    if raw.to.is_empty() {
        d.push(src.at(
            table.span(),
            "[digest] has no address in `to`: write to = [\"ops@example.org\"], or remove [digest] to send no digest",
        ));
    }
    let mut to: Vec<lettre::Address> = Vec::new();
    for text in &raw.to {
        if let Some(address) = check(src, text, values::address, d) {
            if to
                .iter()
                .any(|known| AsRef::<str>::as_ref(known).eq_ignore_ascii_case(address.as_ref()))
            {
                d.push(src.at(
                    text.span(),
                    format!("{address} is in [digest] `to` twice; list each address once"),
                ));
            } else {
                to.push(address);
            }
        }
    }
    let at = match &raw.at {
        Some(text) => check(src, text, values::time, d),
        None => Some(jiff::civil::time(8, 0, 0, 0)),
    };
    let zone = match &raw.time_zone {
        Some(text) => check(src, text, values::zone, d),
        None => Zone::named(DEFAULT_ZONE).ok(),
    };
    let language = match &raw.language {
        Some(text) => check(src, text, values::language, d),
        None => Some(default_language.to_owned()),
    };
    if d.len() > before {
        return None;
    }
    Some(DigestSettings {
        to,
        at: at?,
        zone: zone?,
        language: language?,
    })
}
