//! What herald's outgoing mail carries so that what comes back can be tied
//! to it: the VERP envelope sender, and the personal unsubscribe token
//! signed with the link secret.
//!
//! **VERP.** With `[sender] bounce_address = "bounces@example.org"`, each
//! message's envelope sender is `bounces+TOKEN@example.org`, TOKEN being its
//! send's token ([`crate::key::SendKey::token`], also the left part of its
//! Message-ID). A mail server returns a bounce to the envelope sender, so
//! the bounce names the send it is about even when the report itself names
//! nothing readable.
//!
//! **Unsubscribe tokens.** `List-Unsubscribe: <mailto:ADDR?subject=unsubscribe%20TOKEN>`
//! where TOKEN is `u1.<list-id>.<tag>`, the tag the first 16 bytes of
//! HMAC-SHA256(secret, "unsubscribe\n" + list-id + "\n" + address), in
//! base64url without padding. It names the list but not the address: a
//! reply carrying it is checked against the list's members, so a forged or
//! mangled token unsubscribes nobody, and the token in a forwarded message
//! unsubscribes only the person it was made for.
//!
//! The secrets ([`LinkKeys`]) are read by `config` from a file of their own,
//! never from herald.toml; the first signs, every one verifies, so a secret
//! is rotated by putting the new one first and keeping the old one below
//! until the mail that carries it is no longer answered.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

use crate::key::AddressKey;

/// The shortest secret herald accepts, in bytes: HMAC-SHA256's own block of
/// entropy, so that the secret is never the weak part.
pub const MIN_SECRET_BYTES: usize = 32;

/// The command the messages about a missing or short secret suggest.
pub const GENERATE_SECRET: &str = "head -c 32 /dev/urandom | base64";

/// The version prefix of unsubscribe tokens, so that another form can come
/// later and the old tokens still be told apart.
const UNSUBSCRIBE_PREFIX: &str = "u1.";

/// How many bytes of the HMAC a token keeps: 128 bits, more than anyone can
/// guess by sending mail, in 22 characters.
const TAG_BYTES: usize = 16;

/// Longer than any token herald makes (list ids are short); a longer text is
/// refused before any work is done on it.
const MAX_TOKEN_LEN: usize = 256;

/// The link secrets: the first signs, every one verifies. Its `Debug` shows
/// how many there are, never what they are.
#[derive(Clone)]
pub struct LinkKeys {
    keys: Vec<hmac::Key>,
}

/// A line of a link secret file that cannot be a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// The file holds no secret (it is empty, or only blank lines).
    Empty,
    /// The secret on this line (1-based) is shorter than [`MIN_SECRET_BYTES`].
    Short { line: usize, bytes: usize },
}

impl SecretError {
    /// The line the problem is on, if it is on one.
    pub fn line(&self) -> Option<usize> {
        match self {
            SecretError::Empty => None,
            SecretError::Short { line, .. } => Some(*line),
        }
    }
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::Empty => write!(
                f,
                "the link secret file holds no secret: generate one with: {GENERATE_SECRET}"
            ),
            SecretError::Short { bytes, .. } => write!(
                f,
                "this link secret is {bytes} bytes long; a secret needs at least {MIN_SECRET_BYTES}: generate one with: {GENERATE_SECRET}"
            ),
        }
    }
}

impl std::error::Error for SecretError {}

impl LinkKeys {
    /// The secrets of a link secret file: one a line, surrounding white
    /// space and blank lines ignored (an editor's trailing newline, a CR of
    /// a file written on Windows). Every secret too short is reported, each
    /// with its line.
    pub fn parse(bytes: &[u8]) -> Result<LinkKeys, Vec<SecretError>> {
        let mut secrets = Vec::new();
        let mut problems = Vec::new();
        for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let secret = line.trim_ascii();
            if secret.is_empty() {
                continue;
            }
            if secret.len() < MIN_SECRET_BYTES {
                problems.push(SecretError::Short {
                    line: index + 1,
                    bytes: secret.len(),
                });
            }
            secrets.push(secret);
        }
        if secrets.is_empty() {
            problems.push(SecretError::Empty);
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(LinkKeys {
            keys: secrets
                .into_iter()
                .map(|secret| hmac::Key::new(hmac::HMAC_SHA256, secret))
                .collect(),
        })
    }

    /// How many secrets verify (the first of them signs).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Never true: a `LinkKeys` holds at least the secret that signs.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The token that unsubscribes `address` from `list` (see the module
    /// doc), signed with the first secret. Safe in a URL and in a subject.
    pub fn unsubscribe_token(&self, list: &str, address: &AddressKey) -> String {
        self.every_unsubscribe_token(list, address)
            .next()
            .expect("a LinkKeys holds at least the secret that signs")
    }

    /// The token each secret would sign for `address` on `list`, the first
    /// secret's first: what an index of the tokens in circulation holds, so
    /// that a token is found without trying every member of its list.
    pub fn every_unsubscribe_token<'a>(
        &'a self,
        list: &'a str,
        address: &'a AddressKey,
    ) -> impl Iterator<Item = String> + 'a {
        self.keys.iter().map(move |key| {
            let tag = unsubscribe_tag(key, list, address);
            format!(
                "{UNSUBSCRIBE_PREFIX}{list}.{}",
                URL_SAFE_NO_PAD.encode(&tag.as_ref()[..TAG_BYTES])
            )
        })
    }

    /// The list and the address of `token`, if it is an unsubscribe token
    /// signed by one of the secrets for one of `candidates` (the members of
    /// the list it names, see [`unsubscribe_list`]). Anything else, forged,
    /// mangled or for someone who is not a candidate, is `None`; no text
    /// makes it panic.
    pub fn verify_unsubscribe<'a>(
        &self,
        token: &str,
        candidates: impl IntoIterator<Item = &'a AddressKey>,
    ) -> Option<(String, AddressKey)> {
        let (list, tag) = parse_unsubscribe(token)?;
        for address in candidates {
            // Every secret is tried for every candidate, whichever matches,
            // so the time taken says nothing about which one did.
            let mut matched = false;
            for key in &self.keys {
                matched |= same_bytes(&unsubscribe_tag(key, list, address).as_ref()[..TAG_BYTES], &tag);
            }
            if matched {
                return Some((list.to_owned(), address.clone()));
            }
        }
        None
    }
}

impl fmt::Debug for LinkKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkKeys")
            .field("secrets", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// The list an unsubscribe token names, if `token` has the shape of one:
/// which list's members to give [`LinkKeys::verify_unsubscribe`]. Says
/// nothing of whether it is genuine.
pub fn unsubscribe_list(token: &str) -> Option<&str> {
    parse_unsubscribe(token).map(|(list, _)| list)
}

/// The envelope sender of the send whose token is `token`:
/// `LOCAL+TOKEN@DOMAIN` for the bounce address `LOCAL@DOMAIN`.
pub fn verp_address(
    bounce: &lettre::Address,
    token: &str,
) -> Result<lettre::Address, lettre::address::AddressError> {
    lettre::Address::new(format!("{}+{token}", bounce.user()), bounce.domain())
}

fn unsubscribe_tag(key: &hmac::Key, list: &str, address: &AddressKey) -> hmac::Tag {
    let mut context = hmac::Context::with_key(key);
    context.update(b"unsubscribe\n");
    context.update(list.as_bytes());
    context.update(b"\n");
    context.update(address.as_str().as_bytes());
    context.sign()
}

/// `u1.<list>.<tag>` -> the list and the tag's bytes. The list is the text
/// up to the last dot (list ids may hold dots; base64url has none), with the
/// characters of a list id only.
fn parse_unsubscribe(token: &str) -> Option<(&str, [u8; TAG_BYTES])> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let (list, tag) = token.strip_prefix(UNSUBSCRIBE_PREFIX)?.rsplit_once('.')?;
    let is_id = !list.is_empty()
        && list
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'));
    if !is_id {
        return None;
    }
    // 16 bytes are 22 characters; the decoder refuses stray trailing bits, so
    // each tag has one spelling.
    let mut bytes = [0u8; TAG_BYTES];
    if tag.len() != 22 || URL_SAFE_NO_PAD.decode_slice(tag, &mut bytes).ok()? != TAG_BYTES {
        return None;
    }
    Some((list, bytes))
}

/// Whether two tags are equal, in a time that does not depend on where they
/// differ. `ring::hmac::verify` compares in constant time but only a whole
/// tag, and a token carries half of one; ring's own comparison of slices is
/// deprecated for outside use.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &str = "c2VjcmV0IHNlY3JldCBzZWNyZXQgc2VjcmV0IHNlY3JldA==";
    const OLD_SECRET: &str = "b2xkIHNlY3JldCBvbGQgc2VjcmV0IG9sZCBzZWNyZXQgb2xk";

    fn keys(text: &str) -> LinkKeys {
        LinkKeys::parse(text.as_bytes()).expect("valid secrets")
    }

    fn amina() -> AddressKey {
        AddressKey::of("Amina.Diallo@senegal-mission.example.org")
    }

    #[test]
    fn a_token_verifies_for_its_list_and_address_only() {
        let keys = keys(SECRET);
        let kenji = AddressKey::of("k.watanabe@japan-mission.example.org");
        let token = keys.unsubscribe_token("member-states", &amina());
        assert!(token.starts_with("u1.member-states."), "{token}");
        assert!(!token.contains("amina"), "a token names no address: {token}");
        assert_eq!(token.len(), "u1.member-states.".len() + 22);
        assert_eq!(unsubscribe_list(&token), Some("member-states"));
        assert_eq!(
            keys.verify_unsubscribe(&token, [&kenji, &amina()]),
            Some(("member-states".to_owned(), amina()))
        );
        // Another address, another list, another secret: no.
        assert_eq!(keys.verify_unsubscribe(&token, [&kenji]), None);
        let other_list = token.replace("member-states", "civil-society");
        assert_eq!(keys.verify_unsubscribe(&other_list, [&amina()]), None);
        let other_secret = self::keys(OLD_SECRET);
        assert_eq!(other_secret.verify_unsubscribe(&token, [&amina()]), None);
        // The same address however it is written.
        let shouted = AddressKey::of("AMINA.DIALLO@SENEGAL-MISSION.EXAMPLE.ORG ");
        assert_eq!(keys.unsubscribe_token("member-states", &shouted), token);
        // A list id with dots.
        let dotted = keys.unsubscribe_token("a.b", &amina());
        assert_eq!(
            keys.verify_unsubscribe(&dotted, [&amina()]),
            Some(("a.b".to_owned(), amina()))
        );
    }

    #[test]
    fn the_first_secret_signs_and_every_one_verifies() {
        let old = keys(OLD_SECRET);
        let rotated = keys(&format!("\n{SECRET}\r\n\n  {OLD_SECRET}\n"));
        assert_eq!(rotated.len(), 2);
        let before = old.unsubscribe_token("member-states", &amina());
        let after = rotated.unsubscribe_token("member-states", &amina());
        assert_ne!(before, after, "the new secret signs");
        assert_eq!(after, keys(SECRET).unsubscribe_token("member-states", &amina()));
        for token in [&before, &after] {
            assert_eq!(
                rotated.verify_unsubscribe(token, [&amina()]),
                Some(("member-states".to_owned(), amina()))
            );
        }
        assert_eq!(old.verify_unsubscribe(&after, [&amina()]), None);
        let every: Vec<String> = rotated
            .every_unsubscribe_token("member-states", &amina())
            .collect();
        assert_eq!(every, [after, before]);
    }

    #[test]
    fn mangled_tokens_verify_for_nobody() {
        let keys = keys(SECRET);
        let token = keys.unsubscribe_token("member-states", &amina());
        let tag = token.rsplit_once('.').unwrap().1;
        let flipped = {
            let mut chars: Vec<char> = tag.chars().collect();
            chars[3] = if chars[3] == 'A' { 'B' } else { 'A' };
            chars.into_iter().collect::<String>()
        };
        let mangled = [
            token[..token.len() - 1].to_owned(),
            format!("{token}A"),
            token.replacen("u1.", "u2.", 1),
            token.replacen("u1.", "", 1),
            token.replacen("member-states", "Member-States", 1),
            token.replacen("member-states", "", 1),
            format!("u1.member-states.{flipped}"),
            format!(
                "u1.member-states.{}",
                tag.replace(|c: char| c.is_alphanumeric(), "*")
            ),
            format!("u1.member-states.{}=", &tag[..21]),
            "u1.member-states.".to_owned(),
            "u1..".to_owned(),
            "u1.".to_owned(),
            String::new(),
            format!("u1.{}.{tag}", "x".repeat(300)),
        ];
        for text in &mangled {
            assert_eq!(keys.verify_unsubscribe(text, [&amina()]), None, "{text:?}");
        }
    }

    #[test]
    fn short_secrets_and_empty_files_are_refused_by_line() {
        let short = "too short";
        let problems = LinkKeys::parse(format!("{SECRET}\n\n{short}\n").as_bytes()).unwrap_err();
        assert_eq!(problems, [SecretError::Short { line: 3, bytes: 9 }]);
        assert_eq!(problems[0].line(), Some(3));
        assert!(problems[0].to_string().contains(GENERATE_SECRET));
        assert_eq!(LinkKeys::parse(b"\n \r\n").unwrap_err(), [SecretError::Empty]);
        let exactly = "x".repeat(MIN_SECRET_BYTES);
        assert!(LinkKeys::parse(exactly.as_bytes()).is_ok());
        assert!(LinkKeys::parse(&exactly.as_bytes()[1..]).is_err());
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let shown = format!("{:?}", keys(&format!("{SECRET}\n{OLD_SECRET}")));
        assert_eq!(shown, "LinkKeys { secrets: 2, .. }");
    }

    #[test]
    fn the_verp_address_puts_the_token_after_a_plus() {
        let bounce: lettre::Address = "bounces@gcm.example.org".parse().unwrap();
        let verp = verp_address(&bounce, "0123456789abcdef01234567").unwrap();
        assert_eq!(
            verp.to_string(),
            "bounces+0123456789abcdef01234567@gcm.example.org"
        );
    }

    proptest! {
        #[test]
        fn no_text_verifies_or_panics(text in ".{0,80}", tail in "[A-Za-z0-9_-]{0,30}") {
            let keys = keys(SECRET);
            let amina = amina();
            prop_assert_eq!(keys.verify_unsubscribe(&text, [&amina]), None);
            let shaped = format!("u1.member-states.{tail}");
            prop_assert_eq!(keys.verify_unsubscribe(&shaped, [&amina]), None);
            let _ = unsubscribe_list(&text);
        }
    }
}
