//! Who a personal link is for: the reader behind every public page.
//!
//! A link carries a token (see [`crate::tokens`]) that names a list but no
//! address. A token is good only for a focal point on that list in the
//! running configuration: a focal point removed from it, or taken off the
//! list, has no valid link any more, and a token signed by a secret no
//! longer in the secret file verifies for nobody.
//!
//! [`LinkKeys::verify_unsubscribe`] tries every member of the list, which
//! for a list of 10,000 is 10,000 HMACs (times the secrets) per request.
//! So each configuration keeps an [`Index`] of the tokens its secrets sign
//! for its members, built on first use and dropped with the configuration:
//! a request looks its token up, then verifies it against the one member
//! found.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::key::AddressKey;
use crate::model::{FocalPoint, Model};
use crate::scheduler::Loaded;
use crate::tokens::LinkKeys;

/// The reader a link is for: a focal point of the running configuration
/// and the list the link is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    pub address: AddressKey,
    pub list: String,
}

impl Reader {
    /// The reader's focal point in `model` (the one the reader was found in).
    pub fn focal_point<'m>(&self, model: &'m Model) -> Option<&'m FocalPoint> {
        model.focal_point(self.address.as_str())
    }
}

/// The reader `token` is for, if it is an unsubscribe token signed by one
/// of the configuration's link secrets for a member of the list it names.
/// Anything else (forged, mangled, signed by a secret since removed, for
/// someone no longer on the list, or no link secret at all) is `None`.
pub fn find(loaded: &Loaded, token: &str) -> Option<Reader> {
    loaded.readers.find(&loaded.model, token)
}

/// The unsubscribe tokens of one configuration, each with the focal point
/// it is for (its place in `Model::focal_points`). Built on the first
/// lookup: a configuration that serves no page never builds it.
///
/// A clone keeps the tokens built: readers' overrides, laid over a copy of
/// the configuration, change no address, list or order of focal points.
#[derive(Default, Clone)]
pub struct Index(OnceLock<HashMap<String, usize>>);

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Its tokens are personal links: never logged.
        f.debug_struct("Index")
            .field("tokens", &self.0.get().map(HashMap::len))
            .finish()
    }
}

impl Index {
    /// The reader `token` is for in `model`, the configuration this index
    /// belongs to.
    pub fn find(&self, model: &Model, token: &str) -> Option<Reader> {
        let keys = model.settings().sender.links.as_deref()?;
        // The shape first: a text that is no token costs no index.
        crate::tokens::unsubscribe_list(token)?;
        let tokens = self.0.get_or_init(|| build(model, keys));
        let &at = tokens.get(token)?;
        let focal_point = model.focal_points().get(at)?;
        let address = AddressKey::of(focal_point.email.as_ref());
        // The index only says whom to try; the token is verified as any
        // token is, against that one member, with every secret.
        let (list, address) = keys.verify_unsubscribe(token, [&address])?;
        Some(Reader { address, list })
    }
}

/// Every token each secret signs for each focal point on each of its lists
/// (lists the configuration defines: a focal point's other lists receive
/// nothing, so they have no link).
fn build(model: &Model, keys: &LinkKeys) -> HashMap<String, usize> {
    let memberships: usize = model.focal_points().iter().map(|fp| fp.lists.len()).sum();
    let mut tokens = HashMap::with_capacity(memberships * keys.len());
    for (at, focal_point) in model.focal_points().iter().enumerate() {
        let address = AddressKey::of(focal_point.email.as_ref());
        for list in focal_point
            .lists
            .iter()
            .filter(|list| model.lists().contains_key(*list))
        {
            for token in keys.every_unsubscribe_token(list, &address) {
                tokens.insert(token, at);
            }
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use super::*;
    use crate::config::Environment;

    const SECRET: &str = "c2VjcmV0IHNlY3JldCBzZWNyZXQgc2VjcmV0IHNlY3JldA==";
    const OLD_SECRET: &str = "b2xkIHNlY3JldCBvbGQgc2VjcmV0IG9sZCBzZWNyZXQgb2xk";

    /// The example configuration, with `secrets` in its link secret file
    /// and its lists' files replaced by `lists` when given.
    fn model(secrets: &[&str], lists: Option<&str>) -> Model {
        let dir = tempfile::tempdir().unwrap();
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        copy(&example, &dir.path().join("config"));
        let config = dir.path().join("config");
        if let Some(lists) = lists {
            std::fs::remove_file(config.join("lists/permanent-missions.csv")).unwrap();
            std::fs::write(config.join("lists/civil-society.toml"), lists).unwrap();
        }
        let herald = std::fs::read_to_string(config.join("herald.toml")).unwrap();
        let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        std::fs::write(
            config.join("herald.toml"),
            herald.replace(
                "templates = \"../templates\"",
                &format!("templates = {:?}", templates.display().to_string()),
            ),
        )
        .unwrap();
        let secret = dir.path().join("link-secret");
        std::fs::write(&secret, secrets.join("\n")).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let env = Environment::default().with("HERALD_LINK_SECRET_FILE", secret.to_str().unwrap());
        crate::config::load(&config, &env)
            .expect("the example configuration loads")
            .model
    }

    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }

    fn keys(secrets: &str) -> LinkKeys {
        LinkKeys::parse(secrets.as_bytes()).unwrap()
    }

    fn anna() -> AddressKey {
        AddressKey::of("anna.keller@swiss-mission.example.org")
    }

    #[test]
    fn a_token_finds_its_reader_on_its_list_only() {
        let model = model(&[SECRET], None);
        let index = Index::default();
        let keys = keys(SECRET);
        for list in ["member-states", "geneva-experts"] {
            let token = keys.unsubscribe_token(list, &anna());
            let reader = index.find(&model, &token).unwrap();
            assert_eq!(
                reader,
                Reader {
                    address: anna(),
                    list: list.to_owned()
                }
            );
            assert_eq!(reader.focal_point(&model).unwrap().name, "Anna Keller");
        }
        // Grace is on civil-society only: her token for another list, however
        // well signed, is nobody's link.
        let grace = AddressKey::of("grace.mwangi@migrant-voices.example.org");
        assert!(
            index
                .find(&model, &keys.unsubscribe_token("civil-society", &grace))
                .is_some()
        );
        assert_eq!(
            index.find(&model, &keys.unsubscribe_token("member-states", &grace)),
            None
        );
        // Someone herald does not know, and a list that does not exist.
        let stranger = AddressKey::of("someone@example.org");
        assert_eq!(
            index.find(&model, &keys.unsubscribe_token("member-states", &stranger)),
            None
        );
        assert_eq!(
            index.find(&model, &keys.unsubscribe_token("no-such-list", &anna())),
            None
        );
    }

    #[test]
    fn forged_mangled_and_foreign_tokens_find_nobody() {
        let model = model(&[SECRET], None);
        let index = Index::default();
        let token = keys(SECRET).unsubscribe_token("member-states", &anna());
        let other = keys(OLD_SECRET).unsubscribe_token("member-states", &anna());
        let mangled = [
            other,
            format!("{}A", &token[..token.len() - 1]),
            token.to_uppercase(),
            format!("{token}="),
            token.replacen("u1.", "u2.", 1),
            String::new(),
            "preferences".to_owned(),
        ];
        for text in &mangled {
            assert_eq!(index.find(&model, text), None, "{text:?}");
        }
    }

    #[test]
    fn every_secret_of_the_file_verifies_and_a_removed_one_does_not() {
        let before = keys(OLD_SECRET).unsubscribe_token("member-states", &anna());
        let after = keys(SECRET).unsubscribe_token("member-states", &anna());
        // During the rotation, the new secret first and the old one below.
        let rotating = model(&[SECRET, OLD_SECRET], None);
        let index = Index::default();
        assert_eq!(index.find(&rotating, &before).unwrap().address, anna());
        assert_eq!(index.find(&rotating, &after).unwrap().address, anna());
        // The old secret removed: its tokens have expired.
        let rotated = model(&[SECRET], None);
        let index = Index::default();
        assert_eq!(index.find(&rotated, &before), None);
        assert!(index.find(&rotated, &after).is_some());
    }

    #[test]
    fn a_focal_point_removed_from_the_configuration_has_no_link() {
        let token = keys(SECRET).unsubscribe_token(
            "civil-society",
            &AddressKey::of("m.laurent@diaspora-forum.example.org"),
        );
        let with = model(&[SECRET], None);
        assert!(Index::default().find(&with, &token).is_some());
        let without = model(
            &[SECRET],
            Some(
                "[[focal_points]]\nname = \"Grace Mwangi\"\nemail = \"grace.mwangi@migrant-voices.example.org\"\nlanguage = \"en\"\n",
            ),
        );
        assert_eq!(Index::default().find(&without, &token), None);
    }

    #[test]
    fn without_a_link_secret_no_token_is_valid() {
        let model = crate::config::example_model();
        let token = keys(SECRET).unsubscribe_token("member-states", &anna());
        assert_eq!(Index::default().find(&model, &token), None);
    }
}
