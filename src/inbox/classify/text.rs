//! Reading the words of a report: status codes, reasons, addresses, and the
//! diagnostic line, shared by the RFC 3464 reader and the servers' own
//! formats.

/// How long a diagnostic is kept: enough for any server's reason, bounded
/// whatever a report holds.
const MAX_DIAGNOSTIC_CHARS: usize = 500;

/// An RFC 3463 status (`5.1.1`): its class (2, 4 or 5) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status(String);

impl Status {
    /// `text` if it is a whole status code: class 2, 4 or 5, then a subject
    /// and a detail of one to three digits each.
    pub fn parse(text: &str) -> Option<Status> {
        let mut parts = text.split('.');
        let class = parts.next()?;
        let subject = parts.next()?;
        let detail = parts.next()?;
        let digits = |p: &str| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
        (parts.next().is_none() && matches!(class, "2" | "4" | "5") && digits(subject) && digits(detail))
            .then(|| Status(text.to_owned()))
    }

    pub fn is_permanent(&self) -> bool {
        self.0.starts_with('5')
    }

    /// `X.0.0`: the class alone, which a more precise code of the same class
    /// in the diagnostic improves on.
    pub fn is_generic(&self) -> bool {
        self.0.ends_with(".0.0")
    }

    pub fn class(&self) -> u8 {
        self.0.as_bytes()[0]
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The first enhanced status code (`5.1.1`) standing as a word of `text`:
/// not part of a version number or an IP address.
pub fn enhanced_code(text: &str) -> Option<Status> {
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if !matches!(b, b'2' | b'4' | b'5') || bytes.get(i + 1) != Some(&b'.') {
            continue;
        }
        if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.') {
            continue;
        }
        let end = bytes[i..]
            .iter()
            .position(|c| !(c.is_ascii_digit() || *c == b'.'))
            .map_or(bytes.len(), |n| i + n);
        // A trailing dot ends a sentence, not the code.
        let candidate = text[i..end].trim_end_matches('.');
        if let Some(status) = Status::parse(candidate) {
            return Some(status);
        }
    }
    None
}

/// The first SMTP reply code (`550`) standing as a word of `text`, 4xx or
/// 5xx: after a space, `#`, `(`, `:`, `[` or the start, before a space,
/// `-`, `:` or the end.
pub fn reply_code(text: &str) -> Option<u8> {
    let bytes = text.as_bytes();
    for i in 0..bytes.len().saturating_sub(2) {
        let (a, b, c) = (bytes[i], bytes[i + 1], bytes[i + 2]);
        if !(matches!(a, b'4' | b'5') && b.is_ascii_digit() && c.is_ascii_digit()) {
            continue;
        }
        let before_ok = i == 0 || matches!(bytes[i - 1], b' ' | b'\t' | b'#' | b'(' | b':' | b'[');
        let after_ok = bytes
            .get(i + 3)
            .is_none_or(|n| matches!(n, b' ' | b'-' | b'\t' | b':'));
        if before_ok && after_ok {
            return Some(a);
        }
    }
    None
}

/// What a reason in words means, when no code says it: the status it
/// stands for. Lower-case phrases, looked for in lower-cased text.
const REASONS: &[(&str, &str)] = &[
    // The address does not exist.
    ("user unknown", "5.1.1"),
    ("unknown user", "5.1.1"),
    ("no such user", "5.1.1"),
    ("no such mailbox", "5.1.1"),
    ("no such recipient", "5.1.1"),
    ("user not found", "5.1.1"),
    ("recipient not found", "5.1.1"),
    ("recipnotfound", "5.1.1"),
    ("address not found", "5.1.1"),
    ("unknown recipient", "5.1.1"),
    ("invalid recipient", "5.1.1"),
    ("invalid mailbox", "5.1.1"),
    ("mailbox not found", "5.1.1"),
    ("no mailbox here by that name", "5.1.1"),
    ("not listed in domino directory", "5.1.1"),
    ("not listed in public name & address book", "5.1.1"),
    ("does not exist", "5.1.1"),
    ("doesn't exist", "5.1.1"),
    ("is not a valid mailbox", "5.1.1"),
    ("user doesn't have a", "5.1.1"),
    ("account has been disabled", "5.2.1"),
    ("account is disabled", "5.2.1"),
    ("mailbox disabled", "5.2.1"),
    // The domain does not exist.
    ("host not found", "5.1.2"),
    ("host unknown", "5.1.2"),
    ("find any host", "5.1.2"),
    ("domain not found", "5.1.2"),
    ("no such domain", "5.1.2"),
    ("unrouteable address", "5.1.2"),
    // A full mailbox is temporary, unless the server's own code says otherwise.
    ("mailbox full", "4.2.2"),
    ("mailbox is full", "4.2.2"),
    ("over quota", "4.2.2"),
    ("quota exceeded", "4.2.2"),
    ("exceeded storage allocation", "4.2.2"),
    ("mailbox size limit", "4.2.2"),
    ("insufficient storage", "4.2.2"),
    // The message itself.
    ("message too large", "5.3.4"),
    ("message size exceeds", "5.3.4"),
];

/// The status a reason in words stands for (`text` lower-cased).
pub fn reason_status(lower: &str) -> Option<Status> {
    REASONS
        .iter()
        .find(|(phrase, _)| lower.contains(phrase))
        .and_then(|(_, code)| Status::parse(code))
}

/// Whether `lower` (lower-cased) names a known reason.
pub fn names_reason(lower: &str) -> bool {
    REASONS.iter().any(|(phrase, _)| lower.contains(phrase))
}

/// The status a diagnostic stands for: its enhanced code, else its reason
/// in words, else its reply code's class (`5.0.0`, `4.0.0`).
pub fn status_of(diagnostic: &str) -> Option<Status> {
    enhanced_code(diagnostic)
        .or_else(|| reason_status(&diagnostic.to_lowercase()))
        .or_else(|| match reply_code(diagnostic)? {
            b'5' => Status::parse("5.0.0"),
            _ => Status::parse("4.0.0"),
        })
}

/// `text` unfolded into one line (every run of white space one space),
/// at most [`MAX_DIAGNOSTIC_CHARS`] characters; `None` if nothing is left.
pub fn one_line(text: &str) -> Option<String> {
    let mut line = String::new();
    for word in text.split_whitespace() {
        // Four bytes a character at most: past this, nothing more is kept.
        if line.len() > 4 * MAX_DIAGNOSTIC_CHARS {
            break;
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if let Some((cut, _)) = line.char_indices().nth(MAX_DIAGNOSTIC_CHARS) {
        line.truncate(cut);
    }
    (!line.is_empty()).then_some(line)
}

/// An address as a report spells it (`rfc822; <a@b.example>`, `"a@b"`)
/// → `a@b.example`, lower-cased; `None` if it is not one.
pub fn address(text: &str) -> Option<String> {
    let text = text.trim();
    // Strip an address type (`rfc822;`, `utf-8;`).
    let text = match text.split_once(';') {
        Some((kind, rest)) if !kind.contains('@') => rest.trim(),
        _ => text,
    };
    let text = text.trim_matches(|c: char| matches!(c, '<' | '>' | '"' | '\'' | ' '));
    is_address(text).then(|| text.to_lowercase())
}

/// Whether `text` is shaped like `local@domain.tld`: one `@`, a domain with
/// a dot, nothing that cannot be in an address.
pub fn is_address(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && domain.len() <= 255
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && local.bytes().all(is_local_byte)
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-') || b >= 0x80)
}

fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b) || b >= 0x80
}

/// The addresses written in `line`, in order: each maximal run of address
/// characters around an `@`.
pub fn addresses_in(line: &str) -> impl Iterator<Item = String> + '_ {
    let bytes = line.as_bytes();
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(at) = bytes[from..].iter().position(|&b| b == b'@').map(|p| from + p) {
            from = at + 1;
            let start = bytes[..at]
                .iter()
                .rposition(|&b| !is_local_byte(b) || b == b'\'')
                .map_or(0, |p| p + 1);
            let end = bytes[at + 1..]
                .iter()
                .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')))
                .map_or(bytes.len(), |p| at + 1 + p);
            from = from.max(end);
            let candidate = line[start..end].trim_matches('.');
            if is_address(candidate) {
                return Some(candidate.to_lowercase());
            }
        }
        None
    })
}

/// `text` with HTML tags dropped and the common entities read: enough to
/// find a report's words in a server's HTML-only notice.
pub fn strip_html(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match (c, in_tag) {
            ('<', _) => in_tag = true,
            ('>', true) => {
                in_tag = false;
                text.push(' ');
            }
            (_, false) => text.push(c),
            _ => {}
        }
    }
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_as_words_only() {
        assert_eq!(
            enhanced_code("550 5.1.1 <a@b.example>: User unknown"),
            Status::parse("5.1.1")
        );
        assert_eq!(enhanced_code("(#5.1.1)"), Status::parse("5.1.1"));
        assert_eq!(
            enhanced_code("host 192.0.2.5.1 said 4.2.2."),
            Status::parse("4.2.2")
        );
        assert_eq!(enhanced_code("version 15.2.1 of the server"), None);
        assert_eq!(enhanced_code("address 10.2.5.1"), None);
        assert_eq!(reply_code("#550 5.1.1 RESOLVER"), Some(b'5'));
        assert_eq!(reply_code("550-Mailbox unknown"), Some(b'5'));
        assert_eq!(reply_code("received at 2017 +0450"), None);
        assert_eq!(reply_code("port 5500 "), None);
    }

    #[test]
    fn reasons_stand_for_statuses() {
        assert_eq!(status_of("Mailbox full"), Status::parse("4.2.2"));
        assert_eq!(status_of("552 5.2.2 Mailbox full"), Status::parse("5.2.2"));
        assert_eq!(status_of("550 sorry"), Status::parse("5.0.0"));
        assert_eq!(status_of("no idea"), None);
    }

    #[test]
    fn addresses_are_found_and_lower_cased() {
        let found: Vec<_> = addresses_in("<J.Doe@Example.ORG>: host mx said 550 x@y.example.").collect();
        assert_eq!(found, ["j.doe@example.org", "x@y.example"]);
        assert_eq!(address("rfc822; <A@b.example>"), Some("a@b.example".into()));
        assert_eq!(address("x400; c=us"), None);
    }

    #[test]
    fn a_diagnostic_is_one_bounded_line() {
        assert_eq!(
            one_line("550 5.1.1\n   user\tunknown ").unwrap(),
            "550 5.1.1 user unknown"
        );
        assert_eq!(one_line(&"é".repeat(2000)).unwrap().chars().count(), 500);
        assert_eq!(one_line(" \n "), None);
    }
}
