//! What outgoing mail carries so that what comes back can be tied to it:
//! the VERP envelope sender (`[sender] bounce_address`), the personal
//! unsubscribe token signed with the link secret, and the settings and
//! secret files behind them, refused at their place when wrong.

use herald::config::Environment;
use herald::key::{AddressKey, SendKey};
use herald::tokens::LinkKeys;
use mail_parser::MessageParser;

use crate::daemon::smtp_config;
use crate::harness::{BEFORE_THE_FUTURE_MEETING, ConfigDir, FUTURE_ROADMAP, stderr, stdout};
use crate::support::aiosmtpd::{Received, Sink};

const HERALD_TOML: &str = "config/herald.toml";

/// Two secrets, as after a rotation: the first signs.
const SECRETS: &str =
    "bmV3IHNlY3JldCBuZXcgc2VjcmV0IG5ldyBzZWNyZXQgbmV3\nb2xkIHNlY3JldCBvbGQgc2VjcmV0IG9sZCBzZWNyZXQgb2xk\n";

/// The example's sender with a bounce address and, if `secret_file` is
/// given, a link secret file named in herald.toml.
fn with_attribution(config: &ConfigDir, secret_file: Option<&str>) {
    let links = secret_file.map_or(String::new(), |file| format!("link_secret_file = \"{file}\"\n"));
    config.edit(
        HERALD_TOML,
        "[sender]\n",
        &format!("[sender]\nbounce_address = \"bounces@gcm.example.org\"\n{links}"),
    );
}

/// A header's value as written, unfolded.
fn header(received: &Received, name: &str) -> String {
    let message = MessageParser::default()
        .parse(&received.bytes)
        .expect("a message");
    message
        .header_raw(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .replace("\r\n", "")
        .trim()
        .to_owned()
}

/// The left part of the message's Message-ID (`<TOKEN.herald@…>`).
fn message_id_token(received: &Received) -> String {
    let message = MessageParser::default()
        .parse(&received.bytes)
        .expect("a message");
    let id = message.message_id().expect("a Message-ID");
    id.strip_suffix(".herald@gcm.example.org")
        .unwrap_or_else(|| panic!("not herald's Message-ID: {id}"))
        .to_owned()
}

/// `herald send --letter` over SMTP: every message leaves from
/// `bounces+TOKEN@…`, TOKEN its send's token and its Message-ID's left
/// part, with From unchanged; its List-Unsubscribe carries a token that
/// verifies for its recipient and list and for nobody else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_message_names_its_send_in_the_envelope_and_its_reader_in_the_unsubscribe() {
    let sink = Sink::plain();
    let config = smtp_config(sink.port(), 2);
    with_attribution(&config, Some("link-secret"));
    config.write("link-secret", SECRETS);
    let state = tempfile::tempdir().unwrap();
    let sent = config.herald(&[
        "send",
        "--letter",
        "modalities-roadmap-2017",
        "--state-dir",
        &state.path().display().to_string(),
    ]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    let received = sink.received();
    assert_eq!(received.len(), 9);

    let model = config.model();
    let links = model.settings().sender.links.clone().expect("the link secrets");
    let everyone: Vec<AddressKey> = model
        .focal_points()
        .iter()
        .map(|fp| AddressKey::of(fp.email.as_ref()))
        .collect();
    for message in &received {
        let recipient = AddressKey::of(&message.rcpt_tos[0]);
        let token = SendKey::letter("modalities-roadmap-2017", &recipient).token();
        assert_eq!(message.mail_from, format!("bounces+{token}@gcm.example.org"));
        assert_eq!(message_id_token(message), token);
        assert_eq!(
            header(message, "From"),
            "\"Secretariat of the Global Compact Consultations\" <secretariat@gcm.example.org>"
        );
        assert_eq!(header(message, "X-Auto-Response-Suppress"), "OOF, AutoReply");

        let list_id = header(message, "List-Id");
        let list = list_id
            .rsplit_once('<')
            .and_then(|(_, id)| id.strip_suffix(".gcm.example.org>"))
            .unwrap_or_else(|| panic!("List-Id {list_id}"));
        let unsubscribe = header(message, "List-Unsubscribe");
        let token = unsubscribe
            .strip_prefix("<mailto:gcmigration@gcm.example.org?subject=unsubscribe%20")
            .and_then(|rest| rest.strip_suffix('>'))
            .unwrap_or_else(|| panic!("not a personal mailto: {unsubscribe}"));
        assert_eq!(herald::tokens::unsubscribe_list(token), Some(list));
        assert_eq!(
            links.verify_unsubscribe(token, &everyone),
            Some((list.to_owned(), recipient.clone())),
            "{unsubscribe}"
        );
        let others = everyone.iter().filter(|address| **address != recipient);
        assert_eq!(links.verify_unsubscribe(token, others), None);
        // Only the secrets of this configuration verify it.
        let stranger = LinkKeys::parse(&[b'x'; 40]).unwrap();
        assert_eq!(stranger.verify_unsubscribe(token, &everyone), None);
    }
}

/// A rehearsal redirected to one address keeps each message's own VERP
/// sender, so a bounce in a rehearsal still names the send.
#[test]
fn a_redirected_rehearsal_keeps_the_verp_sender() {
    let sink = Sink::plain();
    let config = smtp_config(sink.port(), 2);
    with_attribution(&config, None);
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    let state = tempfile::tempdir().unwrap();
    let output = config.herald(&[
        "run",
        "--state-dir",
        &state.path().display().to_string(),
        "--rehearse-from",
        BEFORE_THE_FUTURE_MEETING,
        "--until",
        "2099-02-28T21:00:00Z",
        "--fast-forward",
        "--redirect-to",
        "rehearsal@example.org",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let received = sink.received();
    // The 1d reminders of the future meeting, one per focal point.
    assert_eq!(received.len(), 9);
    for message in &received {
        assert_eq!(message.rcpt_tos, ["rehearsal@example.org"]);
        let to = header(message, "X-Herald-Rehearsal");
        let recipient = AddressKey::of(to.strip_prefix("for ").expect("for ADDRESS"));
        let token = SendKey::reminder("future-meeting", "1d", &recipient).token();
        assert_eq!(message.mail_from, format!("bounces+{token}@gcm.example.org"));
        assert_eq!(message_id_token(message), token);
        // Without a link secret, the mailto: is as configured.
        assert_eq!(
            header(message, "List-Unsubscribe"),
            "<mailto:gcmigration@gcm.example.org?subject=unsubscribe>"
        );
    }
}

/// The link secret from the systemd credential `link-secret`, or from the
/// file `$HERALD_LINK_SECRET_FILE` names (which wins over herald.toml); it
/// never shows in the configuration's Debug.
#[test]
fn the_link_secret_comes_from_a_credential_or_the_environment() {
    let config = ConfigDir::example();
    let credentials = tempfile::tempdir().unwrap();
    std::fs::write(credentials.path().join("link-secret"), SECRETS).unwrap();
    let env = Environment::default().with("CREDENTIALS_DIRECTORY", &credentials.path().display().to_string());
    let loaded = herald::config::load(&config.path(), &env).expect("loads");
    let sender = format!("{:?}", loaded.model.settings().sender);
    assert!(
        sender.contains("links: Some(LinkKeys { secrets: 2, .. })"),
        "{sender}"
    );
    assert!(
        !format!("{loaded:?}").contains("bmV3IHNlY3JldC"),
        "the configuration's Debug shows a secret"
    );
    let links = loaded.model.settings().sender.links.clone().expect("the secrets");
    let amina = AddressKey::of("amina.diallo@senegal-mission.example.org");
    let from_credential = links.unsubscribe_token("member-states", &amina);
    let first_only = LinkKeys::parse(SECRETS.lines().next().unwrap().as_bytes()).unwrap();
    assert_eq!(
        first_only.unsubscribe_token("member-states", &amina),
        from_credential
    );

    // $HERALD_LINK_SECRET_FILE over herald.toml's link_secret_file.
    with_attribution(&config, Some("missing-secret"));
    let other = credentials.path().join("other");
    std::fs::write(&other, "c".repeat(32)).unwrap();
    let env = Environment::default().with("HERALD_LINK_SECRET_FILE", &other.display().to_string());
    let loaded = herald::config::load(&config.path(), &env).expect("loads");
    let links = loaded.model.settings().sender.links.clone().expect("the secret");
    assert_eq!(links.len(), 1);
    assert_ne!(links.unsubscribe_token("member-states", &amina), from_credential);
}

/// A short secret is refused at its line of the secret file (without
/// showing it), a missing file at the setting's line in herald.toml, and a
/// bounce address with a `+` at its own; each says what to do.
#[test]
fn bad_secrets_and_bounce_addresses_are_refused_at_their_place() {
    let config = ConfigDir::example();
    with_attribution(&config, Some("link-secret"));
    config.write("link-secret", &format!("{}\n\ntoo short\n", "s".repeat(44)));
    assert_eq!(
        config.problems(),
        [
            "ROOT/config/link-secret:3: this link secret is 9 bytes long; a secret needs at least 32: generate one with: head -c 32 /dev/urandom | base64"
        ]
    );

    config.remove("link-secret");
    let problems = config.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with(
            "ROOT/config/herald.toml:22:20: cannot read the link secret file ROOT/config/link-secret: No such file or directory (os error 2); make one with: head -c 32 /dev/urandom | base64 | install -m 0600 /dev/stdin ROOT/config/link-secret\n    | link_secret_file = \"link-secret\""
        ),
        "{}",
        problems[0]
    );

    config.write("link-secret", &"s".repeat(32));
    config.edit(HERALD_TOML, "bounces@gcm", "bounces+herald@gcm");
    assert_eq!(
        config.problems(),
        [
            "ROOT/config/herald.toml:21:18: bounce_address \"bounces+herald@gcm.example.org\" has a `+` in its local part: herald adds `+TOKEN` to it for each message (VERP), so write the address without it, like \"bounces@gcm.example.org\"\n    | bounce_address = \"bounces+herald@gcm.example.org\"\n    |                  ^"
        ]
    );
    config.edit(
        HERALD_TOML,
        "bounces+herald@gcm",
        &format!("{}@gcm", "b".repeat(40)),
    );
    let problems = config.problems();
    assert!(
        problems.len() == 1 && problems[0].contains("has a local part longer than 39 characters"),
        "{problems:?}"
    );
}

/// `herald check` warns, once, that a mailto: unsubscribe without a link
/// secret cannot say who asked; with a secret it does not.
#[test]
fn check_warns_when_unsubscribe_replies_cannot_be_verified() {
    let config = ConfigDir::example();
    let output = config.herald(&["check"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    let warning = format!(
        "warning: {}:30:15: unsubscribe replies cannot be verified without a link secret",
        config.path().join("herald.toml").display()
    );
    assert_eq!(out.matches(&warning).count(), 1, "{out}");
    assert!(out.contains("head -c 32 /dev/urandom | base64"), "{out}");

    with_attribution(&config, Some("link-secret"));
    config.write("link-secret", SECRETS);
    let output = config.herald(&["check"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        !stdout(&output).contains("cannot be verified"),
        "{}",
        stdout(&output)
    );
}
