//! The preferences page against a running daemon: through a real HTTP
//! client (what it shows, what it refuses and stores nothing of), and filled
//! in and submitted in headless Chromium, after which the next reminder
//! arrives at a real SMTP server in the language and time zone chosen.

use std::path::Path;

use herald::key::AddressKey;
use herald::outbox::{Outbox, SqliteOutbox};
use herald::tokens::LinkKeys;
use mail_parser::MessageParser;

use crate::daemon::smtp_config;
use crate::harness::{BEFORE_THE_FUTURE_MEETING, ConfigDir, Daemon, FUTURE_ROADMAP, stdout};
use crate::support::aiosmtpd::Sink;
use crate::support::browser::Browser;
use crate::support::web::{Client, Ports, SECRET, serve_pages};

/// The reader of these tests: on member-states and geneva-experts, German
/// (herald has no German templates: the page is in the default language),
/// in Zurich.
const ANNA: &str = "anna.keller@swiss-mission.example.org";

/// The reader's personal link to the preferences page, as their mail
/// carries it (signed with the test's secret).
fn preferences_url(ports: &Ports, list: &str, address: &str) -> String {
    let keys = LinkKeys::parse(SECRET.as_bytes()).unwrap();
    let token = keys.unsubscribe_token(list, &AddressKey::of(address));
    format!("{}/preferences/{token}", ports.public_url())
}

/// A daemon serving the pages of `config`, its clock a day before the
/// future meeting (no send due for hours), ready and listening.
struct Served {
    // Dropped first: the daemon is killed before its state is removed.
    _daemon: Daemon,
    ports: Ports,
    state: tempfile::TempDir,
}

impl Served {
    fn start(config: &ConfigDir) -> Served {
        let ports = serve_pages(config, &[SECRET]);
        let state = tempfile::tempdir().unwrap();
        let daemon = ports.start(
            config
                .run_before_the_future_meeting(state.path())
                .arg("--no-watch"),
        );
        Served {
            _daemon: daemon,
            ports,
            state,
        }
    }
}

/// A browser's POST from the page itself: the CSRF layer lets it through.
fn same_origin(ports: &Ports) -> [(&'static str, String); 2] {
    [
        ("Origin", ports.public_url()),
        ("Sec-Fetch-Site", "same-origin".to_owned()),
    ]
}

/// The headers of [`same_origin`] as the client takes them.
fn as_headers<'a>(headers: &'a [(&'static str, String); 2]) -> Vec<(&'static str, &'a str)> {
    headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect()
}

/// The page shows the reader's own values and lists, labelled, and nothing
/// of any other focal point.
#[test]
fn the_page_shows_the_readers_own_values_and_no_one_elses() {
    let config = ConfigDir::example();
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    let Served { ports, .. } = &Served::start(&config);

    let page = Client::new().get(&preferences_url(ports, "geneva-experts", ANNA));
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    assert!(body.contains("Anna Keller"), "{body}");
    // Her zone, her two lists ticked, each with its label.
    assert!(body.contains(r#"value="Europe/Zurich""#), "{body}");
    for list in ["member-states", "geneva-experts"] {
        assert!(
            body.contains(&format!(
                r#"<input type="checkbox" id="list-{list}" name="list" value="{list}" checked><label for="list-{list}">"#
            )),
            "{list}: {body}"
        );
    }
    // A list she is not on is not offered.
    assert!(!body.contains("list-civil-society"), "{body}");
    // Every language herald has templates for, named in itself; German is
    // not one, so the default language is chosen.
    for name in ["العربية", "中文", "English", "Français", "Русский", "Español"] {
        assert!(body.contains(name), "{name}: {body}");
    }
    assert!(
        body.contains(r#"<option value="en" lang="en" selected>"#),
        "{body}"
    );
    for field in ["language", "zone", "successor-name", "successor-email"] {
        assert!(
            body.contains(&format!(r#"<label for="{field}">"#)),
            "{field}: {body}"
        );
    }
    assert!(body.contains("<legend>"), "{body}");
    assert!(!body.contains("<script"), "{body}");
    // Nobody else's address or name, not even of her own mission.
    for other in [
        "jm.dubois@swiss-mission.example.org",
        "Jean-Marc Dubois",
        "amina.diallo@senegal-mission.example.org",
        "o.petrova@observer-mission.example.org",
        ANNA,
    ] {
        assert!(!body.contains(other), "{other} shown: {body}");
    }
    assert!(
        page.header("content-security-policy")
            .is_some_and(|csp| csp.contains("default-src 'none'")),
        "{:?}",
        page.headers
    );
}

/// A zone herald does not know is refused next to its field, with a
/// summary at the top, and nothing is stored: no override, no list left,
/// no request, and the page shows what it showed before.
#[test]
fn a_bad_zone_is_refused_at_its_field_and_nothing_is_stored() {
    let config = ConfigDir::example();
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    let Served { ports, state, .. } = &Served::start(&config);
    let url = preferences_url(ports, "member-states", ANNA);
    let origin = same_origin(ports);
    let headers = as_headers(&origin);

    let answer = Client::new().post_form(
        &url,
        &[
            ("language", "fr"),
            ("zone", "Mars/Olympus_Mons"),
            // geneva-experts left: not done either.
            ("list", "member-states"),
            ("successor_name", "Lena Vogel"),
            ("successor_email", "lena.vogel@swiss-mission.example.org"),
        ],
        &headers,
    );
    assert_eq!(answer.status, 422, "{}", answer.body);
    let body = &answer.body;
    // The field, marked, described by its error, the error right after it.
    assert!(
        body.contains(r#"aria-describedby="zone-hint zone-error" aria-invalid="true">"#),
        "{body}"
    );
    assert!(body.contains(r#"<p class="error" id="zone-error">"#), "{body}");
    assert!(body.contains("Mars/Olympus_Mons"), "{body}");
    // The summary, linking to the field; no other field is in error.
    assert!(body.contains(r##"<li><a href="#zone">"##), "{body}");
    for other in [
        "language-error",
        "successor-name-error",
        "successor-email-error",
        "lists-error",
    ] {
        assert!(!body.contains(&format!(r#"id="{other}""#)), "{other}: {body}");
    }
    // What was sent is kept in the form, to correct.
    assert!(body.contains(r#"value="Lena Vogel""#), "{body}");
    assert!(!body.contains(r#"value="geneva-experts" checked"#), "{body}");

    let outbox = SqliteOutbox::open(state.path()).unwrap();
    assert_eq!(outbox.overrides().unwrap(), vec![]);
    assert_eq!(outbox.suppressions().unwrap(), vec![]);
    assert_eq!(outbox.requests(false).unwrap(), vec![]);
    let again = Client::new().get(&url);
    assert!(again.body.contains(r#"value="Europe/Zurich""#), "{}", again.body);
    assert!(
        again.body.contains(r#"value="geneva-experts" checked"#),
        "{}",
        again.body
    );
}

/// A valid form writes what differs from the configuration only: the
/// language as an override (her zone is the configuration's: no zone
/// override), a list left as a suppression of that list alone; ticking it
/// again lifts it, and choosing the configuration's values again removes
/// the override.
#[test]
fn a_saved_form_writes_only_what_differs_from_the_configuration() {
    let config = ConfigDir::example();
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    let Served { ports, state, .. } = &Served::start(&config);
    let url = preferences_url(ports, "member-states", ANNA);
    let origin = same_origin(ports);
    let headers = as_headers(&origin);
    let client = Client::new();
    let outbox = SqliteOutbox::open(state.path()).unwrap();

    let answer = client.post_form(
        &url,
        &[
            ("language", "es"),
            ("zone", "Europe/Zurich"),
            ("list", "member-states"),
        ],
        &headers,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.body.contains("Sus preferencias se han guardado"),
        "{}",
        answer.body
    );
    assert_eq!(answer.header("content-language"), Some("es"));
    let overrides = outbox.overrides().unwrap();
    assert_eq!(overrides.len(), 1, "{overrides:?}");
    assert_eq!(overrides[0].address, AddressKey::of(ANNA));
    assert_eq!(overrides[0].language.as_deref(), Some("es"));
    assert_eq!(overrides[0].zone, None, "her zone is the configuration's");
    let suppressions = outbox.suppressions().unwrap();
    assert_eq!(suppressions.len(), 1, "{suppressions:?}");
    assert_eq!(suppressions[0].list.as_deref(), Some("geneva-experts"));
    assert_eq!(suppressions[0].reason, "left on the preferences page");
    assert_eq!(outbox.requests(false).unwrap(), vec![], "no successor named");
    // The page now shows her choices, in her new language.
    let page = client.get(&url);
    assert!(
        page.body.contains(r#"<option value="es" lang="es" selected>"#),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains(r#"value="geneva-experts" checked"#),
        "{}",
        page.body
    );

    // Back to the configuration's language, and the list again.
    let answer = client.post_form(
        &url,
        &[
            ("language", "en"),
            ("zone", "Europe/Zurich"),
            ("list", "member-states"),
            ("list", "geneva-experts"),
        ],
        &headers,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.body.contains("Your preferences are saved"),
        "{}",
        answer.body
    );
    assert_eq!(outbox.suppressions().unwrap(), vec![]);
    // German is her configured language, which herald has no templates
    // for: she reads English already, so English overrides nothing.
    assert_eq!(outbox.overrides().unwrap(), vec![]);
}

/// A forged token, or one signed by a secret herald does not have, gets the
/// plain problem page (404) on GET and on POST, and changes nothing.
#[test]
fn a_forged_token_gets_the_problem_page_and_changes_nothing() {
    let config = ConfigDir::example();
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    let Served { ports, state, .. } = &Served::start(&config);
    let good = preferences_url(ports, "member-states", ANNA);
    let other_secret = LinkKeys::parse(b"another-secret-0123456789abcdefghijklmnopqrstuvwxyz").unwrap();
    let foreign = format!(
        "{}/preferences/{}",
        ports.public_url(),
        other_secret.unsubscribe_token("member-states", &AddressKey::of(ANNA))
    );
    let mangled = format!("{}A", &good[..good.len() - 1]);
    let origin = same_origin(ports);
    let headers = as_headers(&origin);
    let client = Client::new();
    for url in [
        foreign.as_str(),
        mangled.as_str(),
        &format!("{}/preferences/u1.member-states.AAAA", ports.public_url()),
    ] {
        let page = client.get(url);
        assert_eq!(page.status, 404, "{url}: {}", page.body);
        assert!(!page.body.contains("Anna Keller"), "{}", page.body);
        let post = client.post_form(url, &[("language", "fr"), ("zone", "Asia/Tokyo")], &headers);
        assert_eq!(post.status, 404, "{url}: {}", post.body);
    }
    let outbox = SqliteOutbox::open(state.path()).unwrap();
    assert_eq!(outbox.overrides().unwrap(), vec![]);
    assert_eq!(outbox.suppressions().unwrap(), vec![]);
}

/// In headless Chromium, a reader picks French and Tokyo and names a
/// successor; the saved page is in French, a screenshot of it is kept, and
/// the next reminder reaches them (at a real SMTP server) in French with
/// the meeting's time in Tokyo, while the successor waits for the operator
/// in `herald requests`.
#[test]
fn chosen_in_chromium_the_next_reminder_comes_in_french_in_tokyo_time() {
    let sink = Sink::plain();
    let config = smtp_config(sink.port(), 2);
    config.with_one_focal_point(None);
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    let ports = serve_pages(&config, &[SECRET]);
    let state = tempfile::tempdir().unwrap();
    const KENJI: &str = "k.watanabe@japan-mission.example.org";

    let mut daemon = ports.start(
        config
            .run_before_the_future_meeting(state.path())
            .args(["--no-watch", "--real-recipients"]),
    );

    let browser = Browser::start();
    browser.goto(&preferences_url(&ports, "member-states", KENJI));
    let form = browser.source();
    assert!(form.contains("Kenji Watanabe"), "{form}");
    assert!(browser.is_selected("#list-member-states"), "{form}");
    browser.select("language", "fr");
    browser.type_into("zone", "Asia/Tokyo");
    browser.type_into("successor-name", "Haruto Sato");
    browser.type_into("successor-email", "h.sato@japan-mission.example.org");
    browser.click_and_wait("button[type=submit]");

    let saved = browser.source();
    assert!(saved.contains(r#"<html lang="fr""#), "{saved}");
    assert!(saved.contains("Vos préférences sont enregistrées"), "{saved}");
    assert!(saved.contains("Asia/Tokyo"), "{saved}");
    assert!(saved.contains("Haruto Sato"), "{saved}");
    let screenshot = browser.screenshot();
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("preferences-saved.png");
    std::fs::write(&path, &screenshot).unwrap();
    assert!(
        screenshot.starts_with(b"\x89PNG\r\n\x1a\n") && screenshot.len() > 10_000,
        "{}: {} bytes, not a page's screenshot",
        path.display(),
        screenshot.len()
    );
    // The running daemon was nudged, and plans with the choice at once.
    daemon.wait_for("a reader's choice applied");
    browser.goto(&preferences_url(&ports, "member-states", KENJI));
    let again = browser.source();
    assert!(again.contains(r#"<html lang="fr""#), "{again}");
    assert!(browser.is_selected(r#"#language option[value="fr"]"#), "{again}");
    drop(browser);
    daemon.signal("TERM");
    assert!(daemon.wait().success());

    // The same outbox, now rehearsed through the meeting on a stepping
    // clock: its three reminders go out.
    let output = crate::harness::herald_command(&config.path())
        .args(["run", "--fast-forward", "--no-watch", "--real-recipients"])
        .args([
            "--rehearse-from",
            BEFORE_THE_FUTURE_MEETING,
            "--until",
            "2099-03-02T00:00:00Z",
        ])
        .arg("--state-dir")
        .arg(state.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", crate::harness::stderr(&output));
    let received = sink.received();
    assert_eq!(received.len(), 3, "the meeting's three reminders");
    let first = received
        .iter()
        .map(|message| MessageParser::default().parse(&message.bytes).unwrap())
        .find(|message| {
            message
                .subject()
                .is_some_and(|subject| subject.contains("A meeting"))
        })
        .expect("a reminder of the meeting");
    let text = first.body_text(0).unwrap().into_owned();
    // The meeting is at 15:00 in New York: 05:00 the next day in Tokyo.
    assert!(text.contains("heure de Tokyo"), "{text}");
    assert!(text.contains("05:00"), "{text}");
    assert!(text.contains("mars 2099"), "{text}");

    let requests = crate::harness::herald_command(&config.path())
        .args(["requests", "--json", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    assert!(requests.status.success(), "{}", crate::harness::stderr(&requests));
    let requests: serde_json::Value = serde_json::from_str(&stdout(&requests)).unwrap();
    let text = requests.to_string();
    assert!(text.contains("Haruto Sato"), "{text}");
    assert!(text.contains("h.sato@japan-mission.example.org"), "{text}");
    assert!(text.contains(KENJI), "{text}");
}

/// A reader of Arabic gets the page right to left, in Arabic, with their
/// Latin-script names isolated; every field still labelled.
#[test]
fn an_arabic_reader_gets_the_page_right_to_left() {
    let config = ConfigDir::example();
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    config.edit(
        "config/lists/permanent-missions.csv",
        "Switzerland,Excellency,de,",
        "Switzerland,Excellency,ar,",
    );
    let Served { ports, .. } = &Served::start(&config);

    let page = Client::new().get(&preferences_url(ports, "member-states", ANNA));
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    assert!(body.contains(r#"<html lang="ar" dir="rtl">"#), "{body}");
    assert!(body.contains("<h1>تفضيلاتك</h1>"), "{body}");
    assert!(body.contains("<bdi>Anna Keller</bdi>"), "{body}");
    assert!(
        body.contains(r#"<option value="ar" lang="ar" selected>"#),
        "{body}"
    );
    for field in ["language", "zone", "successor-name", "successor-email"] {
        assert!(
            body.contains(&format!(r#"<label for="{field}">"#)),
            "{field}: {body}"
        );
    }
    assert_eq!(page.header("content-language"), Some("ar"));
}
