//! The unsubscribe link (RFC 8058) against a running daemon, through a
//! real HTTP client: a GET shows a button and changes nothing, a POST
//! unsubscribes from that list at once and only once, and a link that
//! finds no reader (forged, mangled, another list's, an expired secret's, a
//! focal point removed) is refused and changes nothing.

use std::path::Path;
use std::process::Output;

use herald::key::AddressKey;
use herald::tokens::LinkKeys;
use serde_json::Value;

use crate::harness::{ConfigDir, Daemon, FUTURE_ROADMAP, herald_command, stderr, stdout};
use crate::support::web::{Answer, Client, Ports, SECRET, serve_pages, write_secrets};

const KENJI: &str = "k.watanabe@japan-mission.example.org";
const AMINA: &str = "amina.diallo@senegal-mission.example.org";
const LAYLA: &str = "layla.haddad@arab-forum.example.org";
const MEMBER_STATES: &str = "Permanent Representatives and Permanent Observers";

/// A secret the daemon is started with, then removed from the file.
const OLD_SECRET: &str = "an-older-secret-0123456789abcdefghijklmnopqrstuv";
/// A secret herald never had: what a forger signs with.
const FORGER_SECRET: &str = "not-herald-s-secret-0123456789abcdefghijklmnopq";

/// The token `secret` signs for `address` on `list`.
fn token(secret: &str, list: &str, address: &str) -> String {
    LinkKeys::parse(secret.as_bytes())
        .unwrap()
        .unsubscribe_token(list, &AddressKey::of(address))
}

fn link(ports: &Ports, token: &str) -> String {
    format!("{}/unsubscribe/{token}", ports.public_url())
}

/// The example configuration with [`FUTURE_ROADMAP`] (three reminders to
/// each member of member-states within the outbox's horizon) and a reader
/// of Arabic on civil-society, serving pages, and a daemon on it that is
/// ready and listening.
fn start(secrets: &[&str]) -> (ConfigDir, tempfile::TempDir, Ports, Daemon) {
    let config = ConfigDir::example();
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    config.write(
        "lists/arab-forum.toml",
        &format!("[[focal_points]]\nname = \"Layla Haddad\"\nemail = \"{LAYLA}\"\nlanguage = \"ar\"\nlists = [\"civil-society\"]\n"),
    );
    let ports = serve_pages(&config, secrets);
    let state = tempfile::tempdir().unwrap();
    let daemon = ports.start(
        config
            .run_before_the_future_meeting(state.path())
            .arg("--no-watch"),
    );
    (config, state, ports, daemon)
}

fn herald_in(config: &ConfigDir, state: &Path, args: &[&str]) -> Output {
    let output = herald_command(&config.path())
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap();
    assert!(output.status.success(), "herald {args:?}: {}", stderr(&output));
    output
}

/// `herald suppressions --json`.
fn suppressions(config: &ConfigDir, state: &Path) -> Vec<Value> {
    serde_json::from_str(&stdout(&herald_in(config, state, &["suppressions", "--json"]))).unwrap()
}

/// The states of the sends to `address`, from `herald history --json`.
fn states_of(config: &ConfigDir, state: &Path, address: &str) -> Vec<String> {
    let json = herald_in(config, state, &["history", "--to", address, "--json"]);
    let rows: Vec<Value> = serde_json::from_str(&stdout(&json)).unwrap();
    rows.iter()
        .map(|row| row["state"].as_str().unwrap().to_owned())
        .collect()
}

/// Every page carries the headers that keep it out of frames, scripts and
/// caches.
#[track_caller]
fn assert_secure(answer: &Answer) {
    let policy = answer.header("content-security-policy").unwrap_or_default();
    assert!(policy.contains("default-src 'none'"), "{:?}", answer.headers);
    assert!(policy.contains("frame-ancestors 'none'"), "{:?}", answer.headers);
    assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(answer.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert!(
        answer
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/html"),
        "{:?}",
        answer.headers
    );
}

/// The problem page: 404, plain, in the default language, naming nothing.
#[track_caller]
fn assert_refused(answer: &Answer) {
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert!(answer.body.contains("This link is not valid"), "{}", answer.body);
    assert!(answer.body.contains("<html lang=\"en\""), "{}", answer.body);
    assert!(!answer.body.contains("<form"), "{}", answer.body);
    for named in [
        MEMBER_STATES,
        "Geneva",
        "Kenji",
        "Watanabe",
        "japan-mission",
        "Amina",
    ] {
        assert!(!answer.body.contains(named), "{named} in {}", answer.body);
    }
    assert_secure(answer);
}

#[test]
fn a_get_shows_a_button_and_a_post_unsubscribes_from_that_list_once() {
    let (config, state, ports, mut daemon) = start(&[SECRET]);
    let client = Client::new();
    let kenji = link(&ports, &token(SECRET, "member-states", KENJI));
    assert_eq!(states_of(&config, state.path(), KENJI), ["planned"; 3]);

    // A GET (a link scanner, or the reader) shows the list and the button,
    // in the reader's language, and changes nothing.
    let page = client.get(&kenji);
    assert_eq!(page.status, 200, "{}", page.body);
    assert_secure(&page);
    assert_eq!(page.header("content-language"), Some("en"));
    assert!(
        page.body.contains("<html lang=\"en\" dir=\"ltr\""),
        "{}",
        page.body
    );
    assert!(page.body.contains(MEMBER_STATES), "{}", page.body);
    assert!(page.body.contains("<form method=\"post\">"), "{}", page.body);
    assert!(
        page.body.contains("<button type=\"submit\">Unsubscribe</button>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<main>"), "{}", page.body);
    assert!(!page.body.contains("<script"), "{}", page.body);
    // Nothing about the reader or anyone else.
    for named in [KENJI, "Kenji", "Amina", "Geneva-based"] {
        assert!(!page.body.contains(named), "{named} in {}", page.body);
    }
    let amina_page = client.get(&link(&ports, &token(SECRET, "member-states", AMINA)));
    assert_eq!(amina_page.status, 200, "{}", amina_page.body);
    assert_eq!(amina_page.header("content-language"), Some("fr"));
    assert!(
        amina_page.body.contains("<html lang=\"fr\""),
        "{}",
        amina_page.body
    );
    assert!(amina_page.body.contains("Se désabonner"), "{}", amina_page.body);
    // Arabic, right to left.
    let layla_page = client.get(&link(&ports, &token(SECRET, "civil-society", LAYLA)));
    assert_eq!(layla_page.status, 200, "{}", layla_page.body);
    assert_eq!(layla_page.header("content-language"), Some("ar"));
    assert!(
        layla_page.body.contains("<html lang=\"ar\" dir=\"rtl\""),
        "{}",
        layla_page.body
    );
    assert!(layla_page.body.contains("إلغاء الاشتراك"), "{}", layla_page.body);
    assert!(suppressions(&config, state.path()).is_empty());
    assert_eq!(states_of(&config, state.path(), KENJI), ["planned"; 3]);

    // A POST as a mailbox provider sends it (RFC 8058: no Origin, the
    // one-click body) unsubscribes at once.
    let done = client.post_form(&kenji, &[("List-Unsubscribe", "One-Click")], &[]);
    assert_eq!(done.status, 200, "{}", done.body);
    assert_secure(&done);
    assert!(
        done.body.contains("You will receive no more messages"),
        "{}",
        done.body
    );
    assert!(done.body.contains(MEMBER_STATES), "{}", done.body);
    let line = daemon.wait_for("unsubscribed through the link in a message");
    assert!(line.contains("list=member-states"), "{line}");
    let rows = suppressions(&config, state.path());
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["address"], KENJI);
    assert_eq!(rows[0]["list"], "member-states");
    assert_eq!(rows[0]["reason"], "unsubscribed through the link in a message");
    // The request is named by what it did, for the operator.
    let request = rows[0]["message_id"].as_str().unwrap();
    assert!(request.starts_with("link/member-states/"), "{request}");
    // Its reminders to come are not sent.
    assert_eq!(states_of(&config, state.path(), KENJI), ["suppressed"; 3]);
    assert_eq!(states_of(&config, state.path(), AMINA), ["planned"; 3]);

    // Again (a second click, a provider's retry): the same page, nothing new.
    let again = client.post_form(&kenji, &[], &[]);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body, done.body);
    assert_eq!(suppressions(&config, state.path()), rows);

    // A POST from another site's page is refused, whatever it carries.
    let amina = link(&ports, &token(SECRET, "member-states", AMINA));
    let one_click = [("List-Unsubscribe", "One-Click")];
    for header in [
        ("Sec-Fetch-Site", "cross-site"),
        ("Origin", "https://evil.example"),
    ] {
        let refused = client.post_form(&amina, &one_click, &[header]);
        assert_eq!(refused.status, 403, "{header:?}: {}", refused.body);
        // The layer's own refusal carries the pages' headers too.
        assert!(
            refused.header("content-security-policy").is_some(),
            "{:?}",
            refused.headers
        );
    }
    // So does axum's answer to a path herald has no page at.
    let nowhere = client.get(&format!("{}/nowhere", ports.public_url()));
    assert_eq!(nowhere.status, 404);
    assert!(
        nowhere
            .header("content-security-policy")
            .is_some_and(|csp| csp.contains("frame-ancestors 'none'")),
        "{:?}",
        nowhere.headers
    );
    assert_eq!(nowhere.header("cache-control"), Some("no-store"));
    assert_eq!(suppressions(&config, state.path()), rows);
    // The page's own button (same origin) unsubscribes.
    let from_page = client.post_form(
        &amina,
        &one_click,
        &[("Origin", &ports.public_url()), ("Sec-Fetch-Site", "same-origin")],
    );
    assert_eq!(from_page.status, 200, "{}", from_page.body);
    assert!(from_page.body.contains("lang=\"fr\""), "{}", from_page.body);
    assert_eq!(suppressions(&config, state.path()).len(), 2);
    assert_eq!(states_of(&config, state.path(), AMINA), ["suppressed"; 3]);

    daemon.signal("TERM");
    assert!(daemon.wait().success());
}

#[test]
fn links_that_find_no_reader_are_refused_and_change_nothing() {
    let (config, state, ports, mut daemon) = start(&[SECRET, OLD_SECRET]);
    let client = Client::new();
    let genuine = token(SECRET, "member-states", KENJI);
    let tag = genuine.rsplit_once('.').unwrap().1;
    let flipped: String = tag
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 5 {
                if c == 'A' { 'B' } else { 'A' }
            } else {
                c
            }
        })
        .collect();
    let refused = [
        // Signed by a secret herald never had.
        token(FORGER_SECRET, "member-states", KENJI),
        // Kenji is not on geneva-experts.
        token(SECRET, "geneva-experts", KENJI),
        // Nobody herald knows; no such list.
        token(SECRET, "member-states", "someone@example.org"),
        token(SECRET, "no-such-list", KENJI),
        // Mangled.
        format!("u1.member-states.{flipped}"),
        genuine[..genuine.len() - 1].to_owned(),
        format!("{genuine}A"),
        genuine.replacen("u1.", "u2.", 1),
        "u1.member-states.".to_owned(),
        "%FF%FE".to_owned(),
        "nothing".to_owned(),
    ];
    for token in &refused {
        let url = link(&ports, token);
        assert_refused(&client.get(&url));
        assert_refused(&client.post_form(&url, &[("List-Unsubscribe", "One-Click")], &[]));
    }
    // During a rotation the older secret's links still work (a GET).
    let old = link(&ports, &token(OLD_SECRET, "member-states", KENJI));
    assert_eq!(client.get(&old).status, 200);

    // The old secret removed from the file, and Amina from the lists.
    write_secrets(&config, &[SECRET]);
    config.edit(
        "config/lists/permanent-missions.csv",
        "Amina Diallo,amina.diallo@senegal-mission.example.org,Permanent Mission of Senegal,Excellency,fr,America/New_York,member-states\n",
        "",
    );
    daemon.signal("HUP");
    daemon.wait_for("configuration reloaded");
    assert_refused(&client.get(&old));
    assert_refused(&client.post_form(&old, &[("List-Unsubscribe", "One-Click")], &[]));
    let amina = link(&ports, &token(SECRET, "member-states", AMINA));
    assert_refused(&client.get(&amina));
    assert_refused(&client.post_form(&amina, &[], &[]));
    // The new secret's links still find their reader.
    assert_eq!(client.get(&link(&ports, &genuine)).status, 200);
    // The admin listener serves no reader's page.
    let on_admin = format!("{}/unsubscribe/{genuine}", ports.admin_url());
    assert_eq!(client.get(&on_admin).status, 404);
    assert_eq!(client.post_form(&on_admin, &[], &[]).status, 404);

    assert!(suppressions(&config, state.path()).is_empty());
    assert_eq!(states_of(&config, state.path(), KENJI), ["planned"; 3]);
    daemon.signal("TERM");
    assert!(daemon.wait().success());
}

/// The reminder due just after a reader unsubscribes goes to everyone on
/// the list but them.
#[test]
fn the_next_reminder_goes_to_the_list_but_not_to_the_reader_who_left() {
    let config = ConfigDir::example();
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    let ports = serve_pages(&config, &[SECRET]);
    let state = tempfile::tempdir().unwrap();
    // The day-before reminders are due at 20:00Z: about ten seconds away.
    let mut daemon = ports.start(config.run_command(state.path()).args([
        "--rehearse-from",
        "2099-02-28T19:59:30Z",
        "--speed",
        "3",
        "--no-watch",
    ]));
    let kenji = link(&ports, &token(SECRET, "member-states", KENJI));
    let done = Client::new().post_form(&kenji, &[("List-Unsubscribe", "One-Click")], &[]);
    assert_eq!(done.status, 200, "{}", done.body);

    // member-states has nine focal points: eight reminders leave.
    let new = state.path().join("maildir/new");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let delivered = loop {
        let messages: Vec<String> = std::fs::read_dir(&new)
            .map(|entries| {
                entries
                    .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        if messages.len() >= 8 || std::time::Instant::now() > deadline {
            break messages;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(delivered.len(), 8);
    assert!(delivered.iter().any(|m| m.contains(AMINA)));
    assert!(
        delivered.iter().all(|m| !m.contains(KENJI)),
        "the reader who left got the reminder"
    );
    let states = states_of(&config, state.path(), KENJI);
    assert_eq!(states, ["suppressed"; 3]);
    daemon.signal("TERM");
    assert!(daemon.wait().success());
    let left = std::fs::read_dir(&new).unwrap().count();
    assert_eq!(left, 8, "nothing more went out");
}

/// A web page that cannot render is refused by `herald check` (and so at
/// load, by the daemon), at its file and place, not when a reader asks
/// for it; so is a page the mail's links need and the templates lack.
#[test]
fn a_broken_or_missing_page_is_refused_at_load() {
    let config = ConfigDir::example();
    config.write(
        "../templates/fr/web/unsubscribed.html.hbs",
        "{{#> page title=\"x\"}}<p>{{list.title}}</p>{{/page}}\n",
    );
    let problems = config.problems().join("\n");
    assert!(
        problems.contains("templates/fr/web/unsubscribed.html.hbs:1:"),
        "{problems}"
    );
    assert!(problems.contains("list.title"), "{problems}");
    assert!(
        problems.contains("rendering the web page unsubscribed in fr"),
        "{problems}"
    );

    let config = ConfigDir::example();
    serve_pages(&config, &[SECRET]);
    config.remove("../templates/en/web/problem.html.hbs");
    let problems = config.problems().join("\n");
    assert!(
        problems.contains("the template en/web/problem.html.hbs is missing"),
        "{problems}"
    );
}
