//! Guessing an event's kind (meeting, deadline, circulation, other) from the
//! words of its title.
//!
//! Titles name their action first: "Circulation of zero draft" is a
//! circulation, "Consultations on zero draft" a meeting, "Conclusion of the
//! negotiations and submission of the resolution" a deadline. So the keyword
//! that comes *first* in the title decides, not a fixed priority of kinds.

use super::model::EventKind;
use super::slug::fold;

/// Keywords, matched at the start of a word of the folded title ("meeting"
/// matches "meetings", "circulat" matches "circulation" and "circulated").
/// A keyword ending in a space must be a whole word ("due ", not "duet").
const KEYWORDS: &[(&str, EventKind)] = &[
    ("circulat", EventKind::Circulation),
    ("zero draft", EventKind::Circulation),
    ("zero-draft", EventKind::Circulation),
    ("0-draft", EventKind::Circulation),
    ("0 draft", EventKind::Circulation),
    ("submi", EventKind::Deadline),
    ("deadline", EventKind::Deadline),
    ("conclusion", EventKind::Deadline),
    ("due ", EventKind::Deadline),
    ("consultation", EventKind::Meeting),
    ("meeting", EventKind::Meeting),
    ("reading", EventKind::Meeting),
    ("exchange", EventKind::Meeting),
    ("negotiation", EventKind::Meeting),
    ("session", EventKind::Meeting),
    ("briefing", EventKind::Meeting),
    ("conference", EventKind::Meeting),
    ("hearing", EventKind::Meeting),
    ("workshop", EventKind::Meeting),
    ("dialogue", EventKind::Meeting),
];

/// The kind of the keyword that appears first in the title, or `Other`.
pub(crate) fn guess_kind(title: &str) -> EventKind {
    // Padding with spaces lets "due " match at the very end of a title, and
    // punctuation counts as a word break ("due." ends a word too).
    let text: String = fold(title)
        .chars()
        .map(|c| if c.is_alphanumeric() || c == '-' { c } else { ' ' })
        .collect();
    let text = format!(" {text} ");
    let mut best: Option<(usize, EventKind)> = None;
    for &(keyword, kind) in KEYWORDS {
        let pattern = format!(" {keyword}");
        if let Some(position) = text.find(&pattern)
            && best.is_none_or(|(earliest, _)| position < earliest)
        {
            best = Some((position, kind));
        }
    }
    best.map_or(EventKind::Other, |(_, kind)| kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_keyword_decides() {
        let cases = [
            (
                "Submission of the Note on the organization of work",
                EventKind::Deadline,
            ),
            ("Circulation of zero draft", EventKind::Circulation),
            (
                "Circulation of a 0-draft of the modalities resolution",
                EventKind::Circulation,
            ),
            (
                "Consultations on zero draft with Member States",
                EventKind::Meeting,
            ),
            (
                "Conclusion of the negotiations and submission of the resolution",
                EventKind::Deadline,
            ),
            ("Zero draft circulated", EventKind::Circulation),
            ("Comments due", EventKind::Deadline),
            ("Member States submit comments", EventKind::Deadline),
            ("1 st reading", EventKind::Meeting),
            ("Open exchange with civil society", EventKind::Meeting),
            ("Informal meetings with regional groups", EventKind::Meeting),
            ("Briefing by the Secretariat", EventKind::Meeting),
            ("Opening of the conference", EventKind::Meeting),
            ("High-level event", EventKind::Other),
            ("Spreading the word", EventKind::Other),
            ("Duet", EventKind::Other),
        ];
        for (title, kind) in cases {
            assert_eq!(guess_kind(title), kind, "{title}");
        }
    }
}
