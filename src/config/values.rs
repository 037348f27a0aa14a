//! Validators for single values: ids, dates, times, zones, addresses, lead
//! times. Each returns the message for the operator; the caller adds the
//! file and place.

use jiff::SignedDuration;
use jiff::civil::{Date, DateTime, Time};
use lettre::Address;
use lettre::message::Mailbox;

use crate::model::{Lead, Zone};

/// Ids name events, lists, venues and letters in commands and send keys, so
/// they stay plain: lowercase letters, digits, '-', '_' and '.'.
pub(super) fn id(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "invalid id {text:?}: use lowercase letters, digits and '-' (like \"first-reading\")"
        ))
    }
}

/// Text that ends up in a header or a one-line place (names, titles): no
/// line breaks or other control characters, which could forge headers.
pub(super) fn one_line(text: &str, what: &str) -> Result<String, String> {
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        let shown = match c {
            '\r' => "a carriage return (CR)".to_owned(),
            '\n' => "a line break (LF)".to_owned(),
            '\t' => "a tab".to_owned(),
            other => format!("the control character U+{:04X}", other as u32),
        };
        return Err(format!("{what} contains {shown}; write it on one line"));
    }
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("{what} is empty"));
    }
    Ok(trimmed.to_owned())
}

/// Text of one paragraph (a note): line breaks and runs of spaces are
/// read as one space, as in a letter's paragraphs, so a long note can be
/// written over several lines; other control characters are refused.
pub(super) fn paragraph(text: &str, what: &str) -> Result<String, String> {
    if let Some(c) = text.chars().find(|c| c.is_control() && !c.is_whitespace()) {
        return Err(format!(
            "{what} contains the control character U+{:04X}; remove it",
            c as u32
        ));
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return Err(format!("{what} is empty; write it, or remove the key"));
    }
    Ok(words.join(" "))
}

/// A link for readers: an absolute https URL, as the `url` crate parses
/// and writes it (so calendars and mail clients get a well-formed one).
/// Plain http is refused: mail clients warn about it, and the address of a
/// webcast or a registration form should not be open to tampering.
pub(super) fn https_url(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "invalid URL {text:?}: a URL has no spaces or line breaks in it (write a space as %20)"
        ));
    }
    let url = url::Url::parse(trimmed).map_err(|error| {
        format!("invalid URL {trimmed:?} ({error}): write it in full, like \"https://webtv.un.org/\"")
    })?;
    match url.scheme() {
        "https" => {}
        "http" => {
            return Err(format!(
                "{trimmed:?} is a plain http URL: write it with https:// (\"https{}\"), which the site most likely has",
                &trimmed[4..]
            ));
        }
        other => {
            return Err(format!(
                "{trimmed:?} is a {other}: URL; a link must be an https URL, like \"https://webtv.un.org/\""
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("invalid URL {trimmed:?}: it names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "the URL {trimmed:?} has a user name or password in it, which every reader would see; remove it"
        ));
    }
    Ok(url.to_string())
}

/// A calendar date, "2017-10-02".
pub(super) fn date(text: &str) -> Result<Date, String> {
    text.trim()
        .parse::<Date>()
        .map_err(|_| format!("invalid date {text:?}: write it as YYYY-MM-DD, like \"2017-10-02\""))
}

/// A time of day, "15:00".
pub(super) fn time(text: &str) -> Result<Time, String> {
    text.trim()
        .parse::<Time>()
        .map_err(|_| format!("invalid time {text:?}: write it as HH:MM, like \"15:00\""))
}

/// A local date and time, "2017-09-14T10:00" (or with a space).
pub(super) fn datetime(text: &str) -> Result<DateTime, String> {
    text.trim()
        .replacen(' ', "T", 1)
        .parse::<DateTime>()
        .map_err(|_| format!("invalid date and time {text:?}: write it like \"2017-09-14T10:00\""))
}

/// "10:00-13:00", for parts of the day.
pub(super) fn time_range(text: &str) -> Result<(Time, Time), String> {
    let (start, end) = text
        .split_once('-')
        .ok_or_else(|| format!("invalid hours {text:?}: write them like \"10:00-13:00\""))?;
    let (start, end) = (time(start)?, time(end)?);
    if end <= start {
        return Err(format!("invalid hours {text:?}: the end is not after the start"));
    }
    Ok((start, end))
}

/// An IANA time zone; Geneva is the classic mistake.
pub(super) fn zone(name: &str) -> Result<Zone, String> {
    let name = name.trim();
    Zone::named(name).map_err(|_| {
        let mut message = format!("unknown time zone {name:?}");
        if let Some(suggestion) = suggest_zone(name) {
            message.push_str(&format!(" (did you mean \"{suggestion}\"?)"));
        } else {
            message.push_str(": use an IANA name like \"America/New_York\" or \"Europe/Zurich\"");
        }
        message
    })
}

fn suggest_zone(name: &str) -> Option<String> {
    // Cities that share the zone of another, better-known city.
    const ALIASES: &[(&str, &str)] = &[
        ("geneva", "Europe/Zurich"),
        ("geneve", "Europe/Zurich"),
        ("genève", "Europe/Zurich"),
        ("bern", "Europe/Zurich"),
        ("the hague", "Europe/Amsterdam"),
        ("new york", "America/New_York"),
        ("washington", "America/New_York"),
        ("nairobi", "Africa/Nairobi"),
    ];
    let city = name
        .rsplit('/')
        .next()
        .unwrap_or(name)
        .replace('_', " ")
        .to_lowercase();
    if let Some((_, zone)) = ALIASES.iter().find(|(alias, _)| *alias == city) {
        return Some((*zone).to_owned());
    }
    jiff::tz::db()
        .available()
        .map(|zone| zone.as_str().to_owned())
        .find(|zone| zone.eq_ignore_ascii_case(name))
}

/// A lead time, "7d".
pub(super) fn lead(text: &str) -> Result<Lead, String> {
    Lead::parse(text).map_err(|error| error.to_string())
}

/// A span of time for settings such as timeouts: "6h", "30s".
pub(super) fn duration(text: &str) -> Result<SignedDuration, String> {
    let duration: SignedDuration = text
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: write it like \"6h\", \"30m\" or \"30s\""))?;
    if duration.is_negative() {
        return Err(format!("invalid duration {text:?}: it must not be negative"));
    }
    Ok(duration)
}

/// A size in bytes: "10MB", "512KB", "2MiB" or a plain number of bytes.
/// KB, MB and GB are powers of 1000, as relays state their limits (the
/// SIZE of EHLO is in bytes); KiB, MiB and GiB powers of 1024.
pub(super) fn size(text: &str) -> Result<u64, String> {
    let refused = || format!("invalid size {text:?}: write it like \"10MB\", \"512KB\" or \"25MiB\"");
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number.parse().map_err(|_| refused())?;
    let unit: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(refused()),
    };
    let bytes = number * unit;
    if !(1.0..=1e15).contains(&bytes) {
        return Err(format!("invalid size {text:?}: it must be at least one byte"));
    }
    Ok(bytes.round() as u64)
}

/// An e-mail address that a relay will accept for a reader: lettre's parser
/// (which refuses CR/LF) plus a dot in the domain, since a focal point at
/// "a@localhost" is a typing mistake, not a colleague.
pub(super) fn address(text: &str) -> Result<Address, String> {
    let trimmed = text.trim();
    if trimmed.chars().any(char::is_control) {
        return Err(format!(
            "invalid e-mail address {text:?}: it contains a line break or control character"
        ));
    }
    let address: Address = trimmed
        .parse()
        .map_err(|_| format!("invalid e-mail address {trimmed:?}"))?;
    if !address.domain().contains('.') {
        return Err(format!(
            "invalid e-mail address {trimmed:?}: the domain {:?} has no dot",
            address.domain()
        ));
    }
    Ok(address)
}

/// `"Name <address>"` or a bare address, for the sender.
pub(super) fn mailbox(text: &str) -> Result<Mailbox, String> {
    if text.chars().any(char::is_control) {
        return Err(format!(
            "invalid address {text:?}: it contains a line break or control character"
        ));
    }
    text.trim().parse::<Mailbox>().map_err(|_| {
        format!("invalid address {text:?}: write it like \"Secretariat <secretariat@example.org>\"")
    })
}

/// A language tag, "fr" or "en-GB".
pub(super) fn language(text: &str) -> Result<String, String> {
    let text = text.trim();
    icu_locale_core::LanguageIdentifier::try_from_str(text)
        .ok()
        .filter(|_| !text.is_empty())
        .map(|id| id.to_string())
        .ok_or_else(|| format!("invalid language {text:?}: use a tag like \"en\", \"fr\" or \"es\""))
}

/// How a connection to a mail server is protected (`security` of
/// `[delivery.smtp]` and of `[inbox] imap`), the error naming the ports
/// `tls` and `starttls` mean there.
pub fn security(text: &str, tls_port: u16, starttls_port: u16) -> Result<crate::send::Security, String> {
    use crate::send::Security;
    match text {
        "tls" => Ok(Security::Tls),
        "starttls" => Ok(Security::StartTls),
        "none" => Ok(Security::None),
        other => Err(format!(
            "unknown security {other:?}: use \"tls\" (port {tls_port}), \"starttls\" (port {starttls_port}) or \"none\" (loopback only)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_decimal_and_binary_units() {
        assert_eq!(size("10MB"), Ok(10_000_000));
        assert_eq!(size("512 KB"), Ok(512_000));
        assert_eq!(size("2.5MiB"), Ok(2_621_440));
        assert_eq!(size("25mb"), Ok(25_000_000));
        assert_eq!(size("1000"), Ok(1000));
        for refused in ["", "MB", "ten megs", "10 MBs", "0", "-1MB"] {
            assert!(size(refused).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn geneva_suggests_zurich() {
        let message = zone("Europe/Geneva").unwrap_err();
        assert_eq!(
            message,
            "unknown time zone \"Europe/Geneva\" (did you mean \"Europe/Zurich\"?)"
        );
        assert!(zone("Mars/Olympus").unwrap_err().contains("IANA name"));
        assert_eq!(zone("Europe/Zurich").unwrap().name, "Europe/Zurich");
    }

    #[test]
    fn addresses_need_a_real_domain_and_one_line() {
        assert!(address("a.b@example.org").is_ok());
        assert!(address("a.b@localhost").unwrap_err().contains("has no dot"));
        assert!(address("not an address").is_err());
        assert!(
            address("a@b.org\r\nBcc: x@y.org")
                .unwrap_err()
                .contains("line break")
        );
    }

    #[test]
    fn one_line_refuses_cr_and_lf() {
        assert_eq!(one_line(" Amina ", "name").unwrap(), "Amina");
        assert_eq!(
            one_line("Amina\r\nBcc: x@y.org", "name").unwrap_err(),
            "name contains a carriage return (CR); write it on one line"
        );
    }

    #[test]
    fn ids_dates_times() {
        assert!(id("first-reading").is_ok());
        assert!(id("First Reading").is_err());
        assert_eq!(date("2017-10-02").unwrap().to_string(), "2017-10-02");
        assert!(date("2017-02-31").is_err());
        assert!(time("25:00").is_err());
        assert!(time_range("15:00-13:00").is_err());
        assert_eq!(
            datetime("2017-09-14 10:00").unwrap().to_string(),
            "2017-09-14T10:00:00"
        );
        assert_eq!(language("en-gb").unwrap(), "en-GB");
        assert!(language("not a language").is_err());
        assert_eq!(duration("6h").unwrap(), SignedDuration::from_hours(6));
    }

    #[test]
    fn links_are_absolute_https_urls() {
        assert_eq!(
            https_url(" https://WebTV.un.org ").unwrap(),
            "https://webtv.un.org/"
        );
        let http = https_url("http://webtv.un.org/").unwrap_err();
        assert!(
            http.contains("plain http") && http.contains("\"https://webtv.un.org/\""),
            "{http}"
        );
        assert!(
            https_url("webtv.un.org")
                .unwrap_err()
                .contains("write it in full")
        );
        assert!(https_url("ftp://example.org/a").unwrap_err().contains("ftp: URL"));
        assert!(https_url("https://a b.org/").unwrap_err().contains("no spaces"));
        assert!(
            https_url("https://user:secret@example.org/")
                .unwrap_err()
                .contains("password")
        );
        assert!(https_url("https://").unwrap_err().contains("empty host"));
    }

    #[test]
    fn a_paragraph_is_one_line_of_words() {
        assert_eq!(
            paragraph("  Further details\n  will follow. ", "the note").unwrap(),
            "Further details will follow."
        );
        assert!(paragraph(" \n ", "the note").unwrap_err().contains("is empty"));
        assert!(paragraph("a\u{7}b", "the note").unwrap_err().contains("U+0007"));
    }
}
