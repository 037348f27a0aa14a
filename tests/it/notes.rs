//! Notes and links on events and roadmaps: what `check` refuses (at the
//! file, line and column), what reminders, notices and the cover letter
//! show in each language (text, and HTML escaped), what the invitation
//! carries as read by a real iCalendar parser, and that editing a note
//! reaches the next reminder with no notice and no new SEQUENCE.

use herald::outbox::{Outbox, State};
use mail_parser::MessageParser;

use crate::calendar::ics_facts;
use crate::daemon::{run_between, smtp_config};
use crate::harness::ConfigDir;
use crate::support::aiosmtpd::Sink;

const ROADMAP_2017: &str = "config/roadmaps/2017-modalities-resolution.toml";
/// The example's note and link of the first reading.
const NOTE_EN: &str = "The reading is of the zero draft circulated on 25 September.";
const NOTE_FR: &str = "La lecture porte sur l'avant-projet distribué le 25 septembre.";
const LINK: &str = "url = \"https://webtv.un.org/\"";

/// The text and HTML parts of a raw message, with their lines ending in LF.
fn parts(raw: &[u8]) -> (String, String) {
    let message = MessageParser::default().parse(raw).expect("an RFC 5322 message");
    let text = message.body_text(0).expect("a text part").replace("\r\n", "\n");
    let html = message.body_html(0).expect("an HTML part").replace("\r\n", "\n");
    (text, html)
}

/// `text` as the HTML templates write it (handlebars escapes `'` too).
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

/// The problems `check` reports, each without the source line it quotes.
fn problems(config: &ConfigDir) -> Vec<String> {
    config
        .problems()
        .iter()
        .map(|problem| problem.lines().next().unwrap_or_default().to_owned())
        .collect()
}

fn reminder(config: &ConfigDir, to: &str) -> Vec<u8> {
    config.preview(&["--event", "first-reading", "--lead", "7d", "--to", to])
}

const KENJI: &str = "k.watanabe@japan-mission.example.org";
const JEAN_MARC: &str = "jm.dubois@swiss-mission.example.org";

#[test]
fn an_http_link_is_refused_with_the_https_address_to_write() {
    let config = ConfigDir::example();
    config.edit(ROADMAP_2017, LINK, "url = \"http://webtv.un.org/\"");
    assert_eq!(
        problems(&config),
        [format!(
            "ROOT/{ROADMAP_2017}:37:7: \"http://webtv.un.org/\" is a plain http URL: write it with https:// (\"https://webtv.un.org/\"), which the site most likely has"
        )]
    );
}

#[test]
fn a_link_that_is_not_a_url_is_refused_at_its_place() {
    let config = ConfigDir::example();
    config.edit(ROADMAP_2017, LINK, "url = \"webtv.un.org\"");
    assert_eq!(
        problems(&config),
        [format!(
            "ROOT/{ROADMAP_2017}:37:7: invalid URL \"webtv.un.org\" (relative URL without a base): write it in full, like \"https://webtv.un.org/\""
        )]
    );
    config.edit(ROADMAP_2017, "url = \"webtv.un.org\"", "url = \"https://[::1/\"");
    let problems = problems(&config);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with(&format!(
            "ROOT/{ROADMAP_2017}:37:7: invalid URL \"https://[::1/\""
        )),
        "{}",
        problems[0]
    );
}

#[test]
fn an_unknown_key_in_a_link_is_refused_at_its_line() {
    let config = ConfigDir::example();
    config.edit(ROADMAP_2017, LINK, "link = \"https://webtv.un.org/\"");
    let problems = problems(&config);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with(&format!(
            "ROOT/{ROADMAP_2017}:37:1: unknown field `link`, expected `label` or `url`"
        )),
        "{}",
        problems[0]
    );
}

#[test]
fn an_empty_label_and_a_note_without_the_default_language_are_refused() {
    let config = ConfigDir::example();
    config.edit(
        ROADMAP_2017,
        "label = { en = \"Webcast\", fr = \"Retransmission\" }",
        "label = \" \"",
    );
    config.edit(ROADMAP_2017, "note = { en = ", "note = { es = ");
    assert_eq!(
        problems(&config),
        [
            format!(
                "ROOT/{ROADMAP_2017}:33:8: the note has no text in the default language \"en\": add en = \"…\", which readers of the other languages get"
            ),
            format!(
                "ROOT/{ROADMAP_2017}:36:9: the link's label is empty: say what the link is (\"Webcast\", \"Documents\")"
            ),
        ]
    );
}

#[test]
fn a_note_of_another_type_says_what_it_may_be() {
    let config = ConfigDir::example();
    config.edit(
        ROADMAP_2017,
        "title = \"Informal consultations on the draft\"",
        "title = \"Informal consultations on the draft\"\nnote = [\"a\"]",
    );
    let problems = problems(&config);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with(&format!("ROOT/{ROADMAP_2017}:42:8: invalid type: sequence, expected a string, or a table of strings by language")),
        "{}",
        problems[0]
    );
}

/// A reminder in English and in French: the event's note and link, then
/// the roadmap's, in the text as written and in the HTML escaped; a
/// reader whose language has no templates reads the default language's.
#[test]
fn reminders_show_the_note_and_links_in_the_readers_language() {
    let config = ConfigDir::example();
    config.edit(
        ROADMAP_2017,
        "notices = true\n",
        "notices = true\nnote = \"Interpretation <as available> & no webcast\"\n\n[[links]]\nlabel = { en = \"Documents\", fr = \"Documents (fr)\" }\nurl = \"https://example.org/docs?a=1&b=2\"\n",
    );
    let (text, html) = parts(&reminder(&config, KENJI));
    assert!(
        text.contains(&format!(
            "  Note:      {NOTE_EN} Interpretation <as available> & no webcast\n  Links:     Webcast: https://webtv.un.org/\n             Documents: https://example.org/docs?a=1&b=2\n"
        )),
        "{text}"
    );
    assert!(
        html.contains(&format!(
            "<td>{NOTE_EN} Interpretation &lt;as available&gt; &amp; no webcast</td>"
        )),
        "{html}"
    );
    assert!(
        html.contains(
            "<a href=\"https://webtv.un.org/\">Webcast</a><br><a href=\"https://example.org/docs?a&#x3D;1&amp;b&#x3D;2\">Documents</a>"
        ),
        "{html}"
    );

    // A roadmap's note written once serves every language.
    let (text, html) = parts(&reminder(&config, JEAN_MARC));
    assert!(
        text.contains(&format!(
            "  Note :          {NOTE_FR} Interpretation <as available> & no webcast\n  Liens :         Retransmission : https://webtv.un.org/\n                  Documents (fr) : https://example.org/docs?a=1&b=2\n"
        )),
        "{text}"
    );
    assert!(html.contains(">Liens</td>"), "{html}");
    assert!(
        html.contains(&format!(
            "<td>{} Interpretation &lt;as available&gt;",
            escaped(NOTE_FR)
        )),
        "{html}"
    );

    // German has no templates: the mail is in English, and so is the note.
    let (text, _) = parts(&reminder(&config, "anna.keller@swiss-mission.example.org"));
    assert!(text.contains(&format!("  Note:      {NOTE_EN}")), "{text}");
}

/// An event without a note or a link shows neither heading.
#[test]
fn an_event_without_notes_shows_no_heading() {
    let config = ConfigDir::example();
    let raw = config.preview(&[
        "--event",
        "informal-consultations-2017-10-05",
        "--lead",
        "1d",
        "--to",
        KENJI,
    ]);
    let (text, html) = parts(&raw);
    assert!(!text.contains("Note:") && !text.contains("Links:"), "{text}");
    assert!(!html.contains(">Note<") && !html.contains(">Links<"), "{html}");
}

/// Update and cancellation notices show them too, in text and HTML.
#[test]
fn notices_show_the_note_and_links() {
    let config = ConfigDir::example();
    for (notice, to, note, link) in [
        (
            "update",
            KENJI,
            NOTE_EN,
            "Links:     Webcast: https://webtv.un.org/",
        ),
        (
            "cancellation",
            KENJI,
            NOTE_EN,
            "Links:     Webcast: https://webtv.un.org/",
        ),
        (
            "update",
            JEAN_MARC,
            NOTE_FR,
            "Liens :         Retransmission : https://webtv.un.org/",
        ),
        (
            "cancellation",
            JEAN_MARC,
            NOTE_FR,
            "Liens :         Retransmission : https://webtv.un.org/",
        ),
    ] {
        let raw = config.preview(&["--event", "first-reading", "--notice", notice, "--to", to]);
        let (text, html) = parts(&raw);
        assert!(
            text.contains(note) && text.contains(link),
            "{notice} to {to}: {text}"
        );
        assert!(
            html.contains(&format!("<td>{}</td>", escaped(note)))
                && html.contains("<a href=\"https://webtv.un.org/\">"),
            "{notice} to {to}: {html}"
        );
    }
}

/// The cover letter's table shows each event's own note and links under
/// it, and the roadmap's once, under the table.
#[test]
fn the_roadmap_table_shows_each_events_notes_and_the_roadmaps_once() {
    let config = ConfigDir::example();
    config.edit(
        ROADMAP_2017,
        "notices = true\n",
        "notices = true\nnote = { en = \"All meetings <in New York>.\", fr = \"Toutes les réunions à New York.\" }\n",
    );
    let raw = config.preview(&["--letter", "modalities-roadmap-2017", "--to", KENJI]);
    let (text, html) = parts(&raw);
    assert!(
        text.contains(&format!(
            "      1st reading\n      {NOTE_EN}\n      Webcast <https://webtv.un.org/>\n"
        )),
        "{text}"
    );
    assert_eq!(text.matches("All meetings <in New York>.").count(), 1, "{text}");
    assert!(
        html.contains(&format!(
            "1st reading<br><em>{NOTE_EN}</em><br><a href=\"https://webtv.un.org/\">Webcast</a>"
        )),
        "{html}"
    );
    assert!(
        html.contains("<p>All meetings &lt;in New York&gt;.</p>"),
        "{html}"
    );
    let raw = config.preview(&["--letter", "modalities-roadmap-2017", "--to", JEAN_MARC]);
    let (text, _) = parts(&raw);
    assert!(
        text.contains(&format!(
            "      {NOTE_FR}\n      Retransmission <https://webtv.un.org/>\n"
        )),
        "{text}"
    );
    assert!(text.contains("  Toutes les réunions à New York.\n"), "{text}");
}

/// The invitation, read by Python's icalendar: the note in the default
/// language (the event's, then the roadmap's) as DESCRIPTION, whatever the
/// reader's language, and the first link as URL.
#[test]
fn the_invitation_carries_the_note_as_description_and_the_first_link_as_url() {
    let config = ConfigDir::example();
    config.edit(
        ROADMAP_2017,
        "notices = true\n",
        "notices = true\nnote = \"Bring your badge; the doors open at 14:30.\"\n\n[[links]]\nlabel = \"Documents\"\nurl = \"https://example.org/docs\"\n",
    );
    for to in [KENJI, JEAN_MARC] {
        let facts = ics_facts(&reminder(&config, to), "America/New_York");
        assert_eq!(
            facts["description"],
            format!("{NOTE_EN} Bring your badge; the doors open at 14:30."),
            "{to}"
        );
        assert_eq!(facts["url"], "https://webtv.un.org/", "{to}");
        assert_eq!(facts["sequence"], 0);
    }
    // Without a note or a link, neither property.
    let facts = ics_facts(
        &config.preview(&[
            "--event",
            "informal-consultations-2017-10-05",
            "--lead",
            "1d",
            "--to",
            KENJI,
        ]),
        "America/New_York",
    );
    assert_eq!(
        (facts["description"].as_str(), facts["url"].as_str()),
        (
            Some("Bring your badge; the doors open at 14:30."),
            Some("https://example.org/docs")
        ),
        "the roadmap's note and link"
    );
}

/// The daemon sends the first reading's 7-day reminder with the note, the
/// note and link are edited while it is down, and the 1-day reminder
/// carries the new ones: no update notice, and the invitation keeps
/// SEQUENCE 0, with the new DESCRIPTION and URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_note_changes_the_next_reminder_without_a_notice_or_a_new_sequence() {
    let sink = Sink::plain();
    let config = smtp_config(sink.port(), 2);
    config.with_one_focal_point(Some("7d;1d"));
    let state = tempfile::tempdir().unwrap();
    let first_reading = |from: usize| -> Vec<Vec<u8>> {
        sink.received()
            .into_iter()
            .skip(from)
            .map(|r| r.bytes)
            .filter(|bytes| String::from_utf8_lossy(bytes).contains("UID:first-reading@"))
            .collect()
    };
    // The 7-day reminder is due 2017-09-25T19:00Z.
    drop(
        run_between(
            &config,
            state.path(),
            "2017-09-25T12:00:00Z",
            "2017-09-26T00:00:00Z",
        )
        .await,
    );
    let sent = first_reading(0);
    assert_eq!(sent.len(), 1);
    assert!(parts(&sent[0]).0.contains(NOTE_EN));
    let before = sink.received().len();

    config.edit(
        ROADMAP_2017,
        NOTE_EN,
        "The meeting will be held in Conference Room 4.",
    );
    config.edit(ROADMAP_2017, LINK, "url = \"https://webtv.un.org/en/schedule\"");
    // The 1-day reminder is due 2017-10-01T19:00Z.
    let outbox = run_between(
        &config,
        state.path(),
        "2017-10-01T12:00:00Z",
        "2017-10-02T00:00:00Z",
    )
    .await;
    let sent = first_reading(before);
    assert_eq!(sent.len(), 1, "the 1-day reminder, and no notice");
    let (text, html) = parts(&sent[0]);
    assert!(
        text.contains("  Note:      The meeting will be held in Conference Room 4.\n  Links:     Webcast: https://webtv.un.org/en/schedule\n"),
        "{text}"
    );
    assert!(!text.contains(NOTE_EN), "{text}");
    assert!(
        html.contains("<a href=\"https://webtv.un.org/en/schedule\">Webcast</a>"),
        "{html}"
    );
    let facts = ics_facts(&sent[0], "America/New_York");
    assert_eq!(facts["sequence"], 0);
    assert_eq!(
        facts["description"],
        "The meeting will be held in Conference Room 4."
    );
    assert_eq!(facts["url"], "https://webtv.un.org/en/schedule");

    let entries = outbox.entries().unwrap();
    assert!(
        entries.iter().all(|e| !e.spec.key.kind().is_notice()),
        "no notice: {entries:?}"
    );
    let mut reminders: Vec<_> = entries
        .iter()
        .filter(|e| e.spec.key.subject() == "first-reading")
        .map(|e| {
            (
                e.spec
                    .key
                    .as_str()
                    .split('/')
                    .nth(2)
                    .unwrap_or_default()
                    .to_owned(),
                e.state,
            )
        })
        .collect();
    reminders.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        reminders,
        [("1d".to_owned(), State::Sent), ("7d".to_owned(), State::Sent)],
        "{entries:?}"
    );
    let rows = outbox.calendar_rows().unwrap();
    let row = rows.iter().find(|r| r.event == "first-reading").unwrap();
    assert_eq!((row.sequence, row.notices), (0, 0), "{row:?}");
}
