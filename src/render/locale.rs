//! Dates and phrases in the reader's language.
//!
//! Month and weekday names and the order of day, month and year come from
//! CLDR through ICU4X, for every language herald may meet. The few phrases
//! CLDR has no pattern for ("Week of …", "morning", "in 7 days") come from
//! the templates' `phrases.toml` of the language, falling back to the
//! default language and then to the English built in here. A phrase with a
//! count may give a form per plural category; which category a count is in
//! is CLDR's rule for the language (ICU4X's plural rules), not ours.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::rc::Rc;

use icu_calendar::{Date as IcuDate, Iso};
use icu_datetime::DateTimeFormatter;
use icu_datetime::fieldsets::enums::DateFieldSet;
use icu_datetime::fieldsets::{MD, MDE, YMD, YMDE};
use icu_locale_core::Locale;
use icu_plurals::{PluralCategory, PluralRules};
use jiff::civil::{Date, Time};

use crate::model::Phrase;

/// How much of a date to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateStyle {
    /// "Tuesday, 5 December 2016"
    Full,
    /// "5 December 2016"
    Long,
    /// "Tuesday, 5 December"
    WeekdayDayMonth,
    /// "5 December", as in roadmap tables.
    DayMonth,
}

impl DateStyle {
    /// The names templates use with the `date` helper.
    pub fn from_name(name: &str) -> Option<DateStyle> {
        Some(match name {
            "full" => DateStyle::Full,
            "long" => DateStyle::Long,
            "weekday" => DateStyle::WeekdayDayMonth,
            "short" | "day-month" => DateStyle::DayMonth,
            _ => return None,
        })
    }
}

/// English phrases, used when no `phrases.toml` says otherwise.
const BUILT_IN_PHRASES: &[(&str, &str)] = &[
    ("ongoing", "Ongoing"),
    ("week_of", "Week of {date}"),
    ("date_range", "{first} to {last}"),
    ("time_range", "from {start} to {end}"),
    ("time_from", "from {start}"),
    ("with_hours", "{date}, {hours}"),
    ("with_part", "{date} ({part})"),
    ("with_part_hours", "{date}, {part}, {hours}"),
    ("zone_time", "{city} time"),
    ("with_zone", "{when} ({zone})"),
    ("in_minutes", "in {n} minutes"),
    ("in_hours", "in {n} hours"),
    ("in_one_hour", "in one hour"),
    ("in_days", "in {n} days"),
    ("in_one_day", "tomorrow"),
    ("in_weeks", "in {n} weeks"),
    ("in_one_week", "in one week"),
    ("morning", "morning"),
    ("afternoon", "afternoon"),
    ("evening", "evening"),
];

type FormatterCache = HashMap<(String, DateStyle), Rc<DateTimeFormatter<DateFieldSet>>>;

thread_local! {
    // ICU4X formatters are neither Send nor Sync, and making one costs far
    // more than using it, so each thread keeps the ones it has made.
    static FORMATTERS: RefCell<FormatterCache> = RefCell::new(HashMap::new());
    // The same for plural rules, by locale.
    static PLURAL_RULES: RefCell<HashMap<String, Option<Rc<PluralRules>>>> = RefCell::new(HashMap::new());
}

/// Formats dates and phrases in a language.
#[derive(Default)]
pub struct Localizer {
    phrases: BTreeMap<String, BTreeMap<String, Phrase>>,
    default_language: String,
}

impl std::fmt::Debug for Localizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Localizer")
            .field("languages", &self.phrases.keys())
            .finish()
    }
}

impl Localizer {
    pub fn new(phrases: BTreeMap<String, BTreeMap<String, Phrase>>, default_language: &str) -> Localizer {
        Localizer {
            phrases,
            default_language: default_language.to_owned(),
        }
    }

    /// The languages whose text serves a reader of `language`, most
    /// specific first, ending in the default language ("fr-CH" -> fr-CH,
    /// fr, en): what an operator's text by language is looked up in.
    pub fn chain(&self, language: &str) -> Vec<String> {
        language_chain(language, &self.default_language)
    }

    /// A phrase in `language`, with `{name}` placeholders filled in. A
    /// phrase given as plural forms is written in its `other` form.
    pub fn phrase(&self, language: &str, key: &str, args: &[(&str, &str)]) -> String {
        let template = match self.find(language, key) {
            Some(Phrase::Text(text)) => text.as_str(),
            Some(Phrase::Plural(forms)) => forms.get("other").map_or(key, String::as_str),
            None => built_in(key),
        };
        fill(template, args)
    }

    /// A phrase with a count `n` (`{n}` in it) in `language`: the form of
    /// `n`'s plural category when the phrase gives forms ("через 5 дней"),
    /// else its one text.
    pub fn counted(&self, language: &str, key: &str, n: i64) -> String {
        let n_text = n.to_string();
        let args = [("n", n_text.as_str())];
        let forms = match self.find(language, key) {
            Some(Phrase::Plural(forms)) => forms,
            Some(Phrase::Text(text)) => return fill(text, &args),
            None => return fill(built_in(key), &args),
        };
        let category =
            plural_rules(&self.locale(language)).map_or(PluralCategory::Other, |rules| rules.category_for(n));
        let form = forms
            .iter()
            .find(|(name, _)| PluralCategory::get_for_cldr_string(name) == Some(category))
            .or_else(|| forms.get_key_value("other"))
            .map_or(key, |(_, form)| form.as_str());
        fill(form, &args)
    }

    /// The phrase `key` of `language`, or of the languages it falls back to.
    fn find(&self, language: &str, key: &str) -> Option<&Phrase> {
        language_chain(language, &self.default_language)
            .iter()
            .find_map(|lang| self.phrases.get(lang).and_then(|p| p.get(key)))
    }

    /// The CLDR locale of `language`'s dates and plural rules:
    /// phrases.toml's `locale` ("en" -> "en-GB", for day-month order as
    /// United Nations texts use; "ar" -> "ar-u-nu-latn", for the digits
    /// United Nations Arabic texts use), else the language itself.
    fn locale(&self, language: &str) -> String {
        match self.find(language, "locale") {
            Some(Phrase::Text(locale)) => locale.clone(),
            _ => language.to_owned(),
        }
    }

    /// A date in `language`, as CLDR writes it.
    pub fn date(&self, date: Date, language: &str, style: DateStyle) -> String {
        let locale = self.locale(language);
        let Some(formatter) = formatter(&locale, style) else {
            return date.to_string();
        };
        match IcuDate::<Iso>::try_new_iso(i32::from(date.year()), date.month() as u8, date.day() as u8) {
            Ok(icu_date) => formatter.format(&icu_date).to_string(),
            Err(_) => date.to_string(),
        }
    }

    /// "in one week", "tomorrow", "in 2 hours" for a lead time.
    pub fn lead_in_words(&self, lead: jiff::Span, language: &str) -> String {
        let (n, one, many) = if lead.get_weeks() > 0 && lead.get_days() == 0 && lead.get_hours() == 0 {
            (i64::from(lead.get_weeks()), "in_one_week", "in_weeks")
        } else if lead.get_days() > 0 || lead.get_weeks() > 0 {
            let days = i64::from(lead.get_weeks()) * 7 + i64::from(lead.get_days());
            if days % 7 == 0 && lead.get_hours() == 0 {
                (days / 7, "in_one_week", "in_weeks")
            } else {
                (days, "in_one_day", "in_days")
            }
        } else if lead.get_hours() > 0 {
            (i64::from(lead.get_hours()), "in_one_hour", "in_hours")
        } else {
            (lead.get_minutes(), "in_minutes", "in_minutes")
        };
        // Minutes have no phrase of their own for one.
        if n == 1 && one != many {
            self.phrase(language, one, &[])
        } else {
            self.counted(language, many, n)
        }
    }
}

/// The English phrase built in for `key`, or the key itself.
fn built_in(key: &str) -> &str {
    BUILT_IN_PHRASES
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(key, |(_, v)| *v)
}

/// `template` with its `{name}` placeholders filled in.
fn fill(template: &str, args: &[(&str, &str)]) -> String {
    let mut text = template.to_owned();
    for (name, value) in args {
        text = text.replace(&format!("{{{name}}}"), value);
    }
    text
}

/// The cardinal plural rules of `locale`, made once per thread; `None` for
/// a locale that does not parse (every count is then "other").
fn plural_rules(locale: &str) -> Option<Rc<PluralRules>> {
    if let Some(rules) = PLURAL_RULES.with(|cache| cache.borrow().get(locale).cloned()) {
        return rules;
    }
    let rules = locale
        .parse::<Locale>()
        .ok()
        .and_then(|parsed| PluralRules::try_new_cardinal(parsed.into()).ok())
        .map(Rc::new);
    PLURAL_RULES.with(|cache| cache.borrow_mut().insert(locale.to_owned(), rules.clone()));
    rules
}

/// The formatter of `language` and `style`, made once per thread.
fn formatter(language: &str, style: DateStyle) -> Option<Rc<DateTimeFormatter<DateFieldSet>>> {
    let key = (language.to_owned(), style);
    if let Some(formatter) = FORMATTERS.with(|cache| cache.borrow().get(&key).cloned()) {
        return Some(formatter);
    }
    let locale: Locale = language.parse().ok()?;
    let field_set = match style {
        DateStyle::Full => DateFieldSet::YMDE(YMDE::long()),
        DateStyle::Long => DateFieldSet::YMD(YMD::long()),
        DateStyle::WeekdayDayMonth => DateFieldSet::MDE(MDE::long()),
        DateStyle::DayMonth => DateFieldSet::MD(MD::long()),
    };
    let formatter = Rc::new(DateTimeFormatter::try_new(locale.into(), field_set).ok()?);
    FORMATTERS.with(|cache| cache.borrow_mut().insert(key, formatter.clone()));
    Some(formatter)
}

/// "fr-CH" -> ["fr-CH", "fr", default].
pub fn language_chain(language: &str, default: &str) -> Vec<String> {
    let mut chain = vec![language.to_owned()];
    let mut current = language;
    while let Some((parent, _)) = current.rsplit_once('-') {
        chain.push(parent.to_owned());
        current = parent;
    }
    if !chain.iter().any(|l| l == default) {
        chain.push(default.to_owned());
    }
    chain
}

/// Times are written on the 24-hour clock, as United Nations documents do.
pub fn time(time: Time) -> String {
    format!("{:02}:{:02}", time.hour(), time.minute())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn localizer() -> Localizer {
        let mut phrases = BTreeMap::new();
        phrases.insert(
            "fr".to_owned(),
            BTreeMap::from([("week_of".to_owned(), Phrase::Text("Semaine du {date}".to_owned()))]),
        );
        Localizer::new(phrases, "en")
    }

    #[test]
    fn dates_follow_the_language() {
        let l = localizer();
        let d = date(2017, 10, 2);
        assert_eq!(l.date(d, "en", DateStyle::Full), "Monday, October 2, 2017");
        assert_eq!(l.date(d, "en-GB", DateStyle::Full), "Monday, 2 October 2017");
        assert_eq!(l.date(d, "fr", DateStyle::Full), "lundi 2 octobre 2017");
        assert_eq!(l.date(d, "es", DateStyle::DayMonth), "2 de octubre");
    }

    /// The locales the templates' phrases.toml name, as CLDR writes them.
    #[test]
    fn dates_in_the_six_official_languages() {
        let l = localizer();
        let d = date(2017, 10, 2);
        let full = |locale: &str| l.date(d, locale, DateStyle::Full);
        assert_eq!(full("ar-u-nu-latn"), "الاثنين، 2 أكتوبر 2017");
        assert_eq!(full("zh"), "2017年10月2日星期一");
        assert_eq!(full("en-GB"), "Monday, 2 October 2017");
        assert_eq!(full("fr"), "lundi 2 octobre 2017");
        // CLDR puts a narrow no-break space before "г." (год).
        assert_eq!(full("ru"), "понедельник, 2 октября 2017\u{202f}г.");
        assert_eq!(full("es"), "lunes, 2 de octubre de 2017");
        // CLDR writes some Arabic locales in Arabic-Indic digits; the
        // Arabic templates ask for Latin digits (see ar/phrases.toml).
        assert_eq!(l.date(d, "ar-EG", DateStyle::DayMonth), "٢ أكتوبر");
        assert_eq!(l.date(d, "ar-EG-u-nu-latn", DateStyle::DayMonth), "2 أكتوبر");
    }

    #[test]
    fn counted_phrases_take_the_form_of_their_count() {
        let mut phrases = BTreeMap::new();
        let forms = |pairs: &[(&str, &str)]| {
            Phrase::Plural(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            )
        };
        phrases.insert(
            "ru".to_owned(),
            BTreeMap::from([(
                "in_days".to_owned(),
                forms(&[("one", "{n} день"), ("few", "{n} дня"), ("other", "{n} дней?")]),
            )]),
        );
        phrases.insert(
            "es".to_owned(),
            BTreeMap::from([(
                "in_days".to_owned(),
                Phrase::Text("dentro de {n} días".to_owned()),
            )]),
        );
        let l = Localizer::new(phrases, "en");
        assert_eq!(l.counted("ru", "in_days", 21), "21 день");
        assert_eq!(l.counted("ru", "in_days", 3), "3 дня");
        // "many" is not given: the form of "other".
        assert_eq!(l.counted("ru", "in_days", 5), "5 дней?");
        assert_eq!(l.counted("es", "in_days", 5), "dentro de 5 días");
        assert_eq!(l.counted("de", "in_days", 5), "in 5 days");
        // Without a count, a phrase of plural forms reads as its `other`.
        assert_eq!(l.phrase("ru", "in_days", &[("n", "7")]), "7 дней?");
    }

    #[test]
    fn phrases_fall_back_to_the_default_then_built_in() {
        let l = localizer();
        assert_eq!(
            l.phrase("fr-CH", "week_of", &[("date", "23 octobre")]),
            "Semaine du 23 octobre"
        );
        assert_eq!(
            l.phrase("de", "week_of", &[("date", "23 October")]),
            "Week of 23 October"
        );
        assert_eq!(language_chain("fr-CH", "en"), ["fr-CH", "fr", "en"]);
    }

    #[test]
    fn leads_in_words() {
        let l = localizer();
        let words = |s: &str| l.lead_in_words(s.parse().unwrap(), "en");
        assert_eq!(words("7d"), "in one week");
        assert_eq!(words("1w"), "in one week");
        assert_eq!(words("14d"), "in 2 weeks");
        assert_eq!(words("1d"), "tomorrow");
        assert_eq!(words("3d"), "in 3 days");
        assert_eq!(words("2h"), "in 2 hours");
    }
}
