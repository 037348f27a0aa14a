//! Known venues and finding the one a row's title names ("Consultations in
//! Geneva" -> geneva).

use super::slug::fold;

/// A venue from the configuration's `[venues]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownVenue {
    /// The venue's id in the configuration ("geneva").
    pub id: String,
    /// The city, matched in titles like an alias.
    pub city: String,
    /// IANA time zone ("Europe/Zurich").
    pub time_zone: String,
    /// Other names that mean this venue in a title.
    pub aliases: Vec<String>,
}

impl KnownVenue {
    /// The venues of the United Nations' two main seats for this work, as in
    /// the example configuration.
    pub fn defaults() -> Vec<KnownVenue> {
        let venue = |id: &str, city: &str, time_zone: &str, aliases: &[&str]| KnownVenue {
            id: id.to_string(),
            city: city.to_string(),
            time_zone: time_zone.to_string(),
            aliases: aliases.iter().map(|alias| alias.to_string()).collect(),
        };
        vec![
            venue(
                "new-york",
                "New York",
                "America/New_York",
                &["New York", "UN Headquarters", "UNHQ"],
            ),
            // Geneva keeps the time of Zurich; there is no Europe/Geneva.
            venue(
                "geneva",
                "Geneva",
                "Europe/Zurich",
                &["Geneva", "Genève", "Palais des Nations"],
            ),
        ]
    }
}

/// The venue whose city or alias appears first in the title, as a whole
/// word or phrase, ignoring case and accents. `None` when the title names
/// no known venue.
pub(crate) fn venue_named_in<'v>(title: &str, venues: &'v [KnownVenue]) -> Option<&'v KnownVenue> {
    let text = words_only(title);
    venues
        .iter()
        .filter_map(|venue| {
            std::iter::once(&venue.city)
                .chain(&venue.aliases)
                .map(|name| words_only(name))
                .filter(|name| !name.trim().is_empty())
                .filter_map(|name| text.find(&name))
                .min()
                .map(|position| (position, venue))
        })
        .min_by_key(|(position, _)| *position)
        .map(|(_, venue)| venue)
}

/// Folded text with every run of non-alphanumerics made one space and a
/// space at each end, so that `find(" geneva ")` matches whole words only.
fn words_only(text: &str) -> String {
    let folded = fold(text);
    let words: Vec<&str> = folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect();
    format!(" {} ", words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(title: &str) -> Option<String> {
        venue_named_in(title, &KnownVenue::defaults()).map(|venue| venue.id.clone())
    }

    #[test]
    fn names_in_titles() {
        assert_eq!(
            named("Consultations in Geneva with Member States and I.O."),
            Some("geneva".into())
        );
        assert_eq!(
            named("Consultations in New York with Member States"),
            Some("new-york".into())
        );
        assert_eq!(named("Retreat at the Palais des Nations"), Some("geneva".into()));
        assert_eq!(named("Réunion à Genève"), Some("geneva".into()));
        assert_eq!(named("Réunion à GENEVE"), Some("geneva".into()));
        assert_eq!(named("Briefing at UNHQ"), Some("new-york".into()));
        assert_eq!(named("Circulation of zero draft"), None);
        // Whole words only.
        assert_eq!(named("Genevan delegates"), None);
        // The first named wins.
        assert_eq!(named("Video link Geneva - New York"), Some("geneva".into()));
    }
}
