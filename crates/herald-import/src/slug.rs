//! Readable ASCII identifiers from titles: folding accents ("Gómez" ->
//! "gomez"), slugs for event and roadmap ids, and making event ids unique.

use std::collections::{HashMap, HashSet};

/// Lowercases and folds the accented Latin letters of names and places to
/// ASCII ("Genève" -> "geneve", "Lajčák" -> "lajcak"). Other characters are
/// kept as they are (lowercased); callers decide what to do with them.
pub(crate) fn fold(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        let ascii = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
            'æ' => "ae",
            'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
            'ď' | 'đ' | 'ð' => "d",
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
            'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
            'ĥ' | 'ħ' => "h",
            'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
            'ĵ' => "j",
            'ķ' => "k",
            'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
            'ñ' | 'ń' | 'ņ' | 'ň' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => "o",
            'œ' => "oe",
            'ŕ' | 'ŗ' | 'ř' => "r",
            'ś' | 'ŝ' | 'ş' | 'š' | 'ș' => "s",
            'ß' => "ss",
            'ţ' | 'ť' | 'ŧ' | 'ț' => "t",
            'þ' => "th",
            'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
            'ŵ' => "w",
            'ý' | 'ÿ' | 'ŷ' => "y",
            'ź' | 'ż' | 'ž' => "z",
            other => {
                folded.push(other);
                continue;
            }
        };
        folded.push_str(ascii);
    }
    folded
}

/// Small words that make ids long without making them clearer.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "of", "on", "or", "the", "to", "with",
];

/// At most this many words of a title go into a slug...
pub(crate) const MAX_WORDS: usize = 6;
/// ...and at most this many characters.
pub(crate) const MAX_CHARS: usize = 48;

/// A slug of a title: folded to lowercase ASCII, small words dropped,
/// ordinals spelt out ("1st reading" -> "first-reading"), the remaining words
/// joined by '-', cut at whole words to `max_words` and `MAX_CHARS`.
/// Empty when the title has no ASCII letters or digits at all.
pub(crate) fn slug(title: &str, max_words: usize) -> String {
    // Dots and apostrophes join rather than split: "I.O." -> "io",
    // "Secretary-General's" -> "secretary-generals".
    let folded: String = fold(title)
        .chars()
        .filter(|c| !matches!(c, '.' | '\'' | '\u{2019}'))
        .collect();
    let words: Vec<&str> = folded
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect();
    let meaningful: Vec<&str> = words
        .iter()
        .copied()
        .filter(|word| !STOPWORDS.contains(word))
        .collect();
    // A title of nothing but small words keeps them.
    let chosen = if meaningful.is_empty() { words } else { meaningful };

    let mut slug = String::new();
    for word in chosen.into_iter().take(max_words) {
        let word = spelt_ordinal(word).unwrap_or(word);
        let needed = if slug.is_empty() {
            word.len()
        } else {
            word.len() + 1
        };
        if slug.len() + needed > MAX_CHARS {
            if slug.is_empty() {
                // One very long word: cut it (it is ASCII, so any byte is a
                // character boundary).
                slug.push_str(&word[..MAX_CHARS]);
            }
            break;
        }
        if !slug.is_empty() {
            slug.push('-');
        }
        slug.push_str(word);
    }
    slug
}

fn spelt_ordinal(word: &str) -> Option<&'static str> {
    let spelt = match word {
        "1st" => "first",
        "2nd" => "second",
        "3rd" => "third",
        "4th" => "fourth",
        "5th" => "fifth",
        "6th" => "sixth",
        "7th" => "seventh",
        "8th" => "eighth",
        "9th" => "ninth",
        "10th" => "tenth",
        _ => return None,
    };
    Some(spelt)
}

/// Whether a string is already a valid id: lowercase ASCII letters, digits
/// and single '-' between them.
pub(crate) fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.split('-').all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// Makes ids unique. `candidates` holds each event's slug and the day that
/// tells it apart (its date or week, if any). Every event whose slug is
/// shared gets its day appended, not just the second one, so an id does not
/// change when an earlier namesake is removed from the letter. When even
/// that collides (same title, same day, or no day), a counter follows.
pub(crate) fn unique_ids(candidates: &[(String, Option<String>)]) -> Vec<String> {
    // Counted and looked up by hash: a letter of tens of thousands of rows
    // took seconds when each id was checked against every other.
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for (slug, _) in candidates {
        *uses.entry(slug).or_default() += 1;
    }
    let with_days: Vec<String> = candidates
        .iter()
        .map(|(slug, day)| match day {
            Some(day) if uses[slug.as_str()] > 1 => format!("{slug}-{day}"),
            _ => slug.clone(),
        })
        .collect();

    let mut taken: HashSet<String> = HashSet::with_capacity(with_days.len());
    // The next counter to try for an id: every smaller one is taken already
    // (ids are only ever added), so namesakes do not count up from 2 again.
    let mut next_counter: HashMap<&str, usize> = HashMap::new();
    let mut ids: Vec<String> = Vec::with_capacity(with_days.len());
    for id in &with_days {
        let mut unique = id.clone();
        if taken.contains(&unique) {
            let counter = next_counter.entry(id).or_insert(2);
            loop {
                unique = format!("{id}-{counter}");
                *counter += 1;
                if !taken.contains(&unique) {
                    break;
                }
            }
        }
        taken.insert(unique.clone());
        ids.push(unique);
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_accents() {
        assert_eq!(fold("Juan José Gómez"), "juan jose gomez");
        assert_eq!(fold("Jürg Lauber, Genève, Lajčák"), "jurg lauber, geneve, lajcak");
        assert_eq!(fold("Straße Œuvre"), "strasse oeuvre");
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("1st reading", MAX_WORDS), "first-reading");
        assert_eq!(slug("1 st reading", MAX_WORDS), "1-st-reading");
        assert_eq!(
            slug("Circulation of zero draft", MAX_WORDS),
            "circulation-zero-draft"
        );
        assert_eq!(
            slug("Consultations in Geneva with Member States and I.O.", MAX_WORDS),
            "consultations-geneva-member-states-io"
        );
        assert_eq!(slug("Meeting with Mr. Gómez", MAX_WORDS), "meeting-mr-gomez");
        // Cut at whole words to 48 characters, never ending in '-'.
        let long = slug(
            "Submission of the Note on the organization of work, prepared by the Secretariat",
            MAX_WORDS,
        );
        assert_eq!(long, "submission-note-organization-work-prepared");
        assert!(long.len() <= MAX_CHARS);
        assert_eq!(slug("Of the", MAX_WORDS), "of-the");
        assert_eq!(slug("会议", MAX_WORDS), "");
        assert_eq!(slug(&"x".repeat(60), MAX_WORDS).len(), MAX_CHARS);
    }

    #[test]
    fn valid_ids() {
        assert!(is_valid_id("gcm-modalities-2017"));
        assert!(!is_valid_id("GCM"));
        assert!(!is_valid_id("a--b"));
        assert!(!is_valid_id("-a"));
        assert!(!is_valid_id(""));
    }

    #[test]
    fn unique_ids_append_the_day_to_every_namesake() {
        let candidates = vec![
            ("consultations".to_string(), Some("2017-10-05".to_string())),
            ("reading".to_string(), Some("2017-10-02".to_string())),
            ("consultations".to_string(), Some("2017-10-12".to_string())),
            ("meetings".to_string(), None),
            ("meetings".to_string(), None),
            ("same".to_string(), Some("2017-10-12".to_string())),
            ("same".to_string(), Some("2017-10-12".to_string())),
        ];
        assert_eq!(
            unique_ids(&candidates),
            vec![
                "consultations-2017-10-05",
                "reading",
                "consultations-2017-10-12",
                "meetings",
                "meetings-2",
                "same-2017-10-12",
                "same-2017-10-12-2",
            ]
        );
        // A counter never gives an id a slug already has, before or after.
        let candidates: Vec<(String, Option<String>)> = ["x", "x-2", "x", "x", "x-3"]
            .iter()
            .map(|s| (s.to_string(), None))
            .collect();
        assert_eq!(unique_ids(&candidates), vec!["x", "x-2", "x-3", "x-4", "x-3-2"]);
    }
}
