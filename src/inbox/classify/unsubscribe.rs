//! Requests to be taken off a list, as a mail client sends them for the
//! `mailto:` of `List-Unsubscribe`: the subject `unsubscribe TOKEN` (or
//! `unsubscribe` alone, when the link was not personal).
//!
//! Only what a client sends for the link counts: "Re: unsubscribe …" or
//! "unsubscribe me from this list, please" is a person writing, whose
//! letter waits for the operator. The token is only extracted here; it is
//! verified against the link secret later.

use super::Mail;

/// What the request carries: `Some(None)` for a bare `unsubscribe`,
/// `Some(Some(token))` for one with a token, `None` if it is no request.
pub fn request(mail: &Mail) -> Option<Option<String>> {
    let subject = mail.subject.as_deref().unwrap_or_default().trim();
    if !subject.is_empty() {
        return parse(subject);
    }
    parse(mail.first_body_line()?.trim())
}

fn parse(text: &str) -> Option<Option<String>> {
    const WORD: &str = "unsubscribe";
    let head = text.get(..WORD.len())?;
    if !head.eq_ignore_ascii_case(WORD) {
        return None;
    }
    let rest = &text[WORD.len()..];
    // A client that did not decode the link's `%20`.
    let rest = rest.strip_prefix("%20").unwrap_or(rest);
    if rest.is_empty() {
        return Some(None);
    }
    if !rest.starts_with(char::is_whitespace) && !text[WORD.len()..].starts_with("%20") {
        return None;
    }
    let mut words = rest.split_whitespace();
    match (words.next(), words.next()) {
        (None, _) => Some(None),
        (Some(token), None) => Some(Some(token.to_owned())),
        // More words: a sentence, for a human.
        (Some(_), Some(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn the_subject_a_client_sends() {
        assert_eq!(parse("unsubscribe u1.l.abc"), Some(Some("u1.l.abc".into())));
        assert_eq!(parse("UNSUBSCRIBE   u1.l.abc  "), Some(Some("u1.l.abc".into())));
        assert_eq!(parse("unsubscribe%20u1.l.abc"), Some(Some("u1.l.abc".into())));
        assert_eq!(parse("Unsubscribe"), Some(None));
        assert_eq!(parse("unsubscribe me from this list"), None);
        assert_eq!(parse("unsubscribed"), None);
        assert_eq!(parse("Re: unsubscribe u1.l.abc"), None);
        assert_eq!(parse("unsub"), None);
        assert_eq!(parse("unsubscribé"), None);
    }
}
