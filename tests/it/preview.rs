//! `herald preview`: the exact messages, as snapshots, and their headers.

use mail_parser::{MessageParser, MimeHeaders};

use crate::harness::{ConfigDir, stderr};

/// Runs `preview` and returns the raw message.
fn preview(config: &ConfigDir, args: &[&str]) -> String {
    String::from_utf8(config.preview(args)).expect("a message is ASCII or UTF-8")
}

/// The message as a reviewer reads it: the top-level headers as sent, then
/// each part decoded. The MIME boundary is random, so it is replaced.
fn readable(raw: &str) -> String {
    let message = MessageParser::default()
        .parse(raw.as_bytes())
        .expect("an RFC 5322 message");
    let boundary = message
        .content_type()
        .and_then(|ct| ct.attribute("boundary"))
        .unwrap_or("none")
        .to_owned();
    let headers_end = raw.find("\r\n\r\n").expect("a header block");
    let mut out = raw[..headers_end]
        .replace("\r\n", "\n")
        .replace(&boundary, "BOUNDARY");
    for part in message.parts.iter().skip(1) {
        let content_type = part
            .content_type()
            .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")))
            .unwrap_or_default();
        out.push_str(&format!("\n\n----- {content_type} -----\n"));
        out.push_str(part.text_contents().unwrap_or_default());
    }
    out
}

#[test]
fn reminder_in_english() {
    let config = ConfigDir::example();
    let raw = preview(
        &config,
        &[
            "--event",
            "first-reading",
            "--lead",
            "7d",
            "--to",
            "k.watanabe@japan-mission.example.org",
        ],
    );
    insta::assert_snapshot!("reminder_en", readable(&raw));
}

#[test]
fn reminder_in_french_with_the_reader_zone() {
    let config = ConfigDir::example();
    let raw = preview(
        &config,
        &[
            "--event",
            "geneva-consultations",
            "--to",
            "jm.dubois@swiss-mission.example.org",
        ],
    );
    insta::assert_snapshot!("reminder_fr", readable(&raw));
    // New York's 15:00 is shown in a Geneva reader's own time as well.
    let raw = preview(
        &config,
        &[
            "--event",
            "new-york-consultations-2016-12-05",
            "--lead",
            "1d",
            "--to",
            "jm.dubois@swiss-mission.example.org",
        ],
    );
    let text = readable(&raw);
    assert!(
        text.contains("lundi 5 d=C3=A9cembre 2016, de 15:00 =C3=A0 18:00 (heure de New York)")
            || text.contains("lundi 5 décembre 2016, de 15:00 à 18:00 (heure de New York)"),
        "{text}"
    );
    assert!(
        text.contains("lundi 5 décembre 2016, de 21:00 à 00:00 (heure de Zurich)"),
        "{text}"
    );
}

#[test]
fn cover_letter_with_the_roadmap_table() {
    let config = ConfigDir::example();
    let raw = preview(
        &config,
        &[
            "--letter",
            "modalities-roadmap-2017",
            "--to",
            "priya.raman@india-mission.example.org",
        ],
    );
    insta::assert_snapshot!("cover_letter_en", readable(&raw));
}

#[test]
fn a_language_without_templates_falls_back_to_the_default() {
    let config = ConfigDir::example();
    let raw = preview(
        &config,
        &[
            "--event",
            "first-reading",
            "--lead",
            "1d",
            "--to",
            "anna.keller@swiss-mission.example.org",
        ],
    );
    // Anna Keller reads German, which the templates do not have.
    let text = readable(&raw);
    assert!(
        text.contains("Subject: Reminder: 1st reading, 2 October (afternoon)"),
        "{text}"
    );
    assert!(text.contains("takes place tomorrow"), "{text}");
}

#[test]
fn headers_of_list_mail() {
    let config = ConfigDir::example();
    let raw = preview(
        &config,
        &[
            "--event",
            "first-reading",
            "--lead",
            "2h",
            "--to",
            "k.watanabe@japan-mission.example.org",
        ],
    );
    let message = MessageParser::default().parse(raw.as_bytes()).unwrap();
    assert_eq!(
        message.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-generated")
    );
    assert_eq!(
        message
            .header_raw("List-Id")
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .as_deref(),
        Some("\"Permanent Representatives and Permanent Observers\" <member-states.gcm.example.org>")
    );
    assert_eq!(
        message.header_raw("List-Unsubscribe").map(str::trim),
        Some("<mailto:gcmigration@gcm.example.org?subject=unsubscribe>")
    );
    assert_eq!(
        message
            .reply_to()
            .and_then(|r| r.first())
            .and_then(|a| a.address()),
        Some("gcmigration@gcm.example.org")
    );
    // Sent at its due instant: 13:00 New York on 2 October 2017.
    assert_eq!(
        message.date().map(|d| d.to_rfc3339()),
        Some("2017-10-02T17:00:00Z".to_owned())
    );
    assert!(
        message
            .content_type()
            .is_some_and(|ct| ct.subtype() == Some("alternative"))
    );
    // A meeting's reminder: text, HTML and the invitation, as alternatives.
    assert_eq!(
        message.parts.len(),
        4,
        "multipart with text, HTML and calendar parts"
    );
    let calendar = &message.parts[3];
    assert!(
        calendar
            .content_type()
            .is_some_and(|ct| ct.subtype() == Some("calendar") && ct.attribute("method") == Some("REQUEST"))
    );
    assert!(message.body_text(0).is_some() && message.body_html(0).is_some());
    // The Message-ID is the same on every run for the same send, and differs between sends.
    let again = preview(
        &config,
        &[
            "--event",
            "first-reading",
            "--lead",
            "2h",
            "--to",
            "k.watanabe@japan-mission.example.org",
        ],
    );
    let other = preview(
        &config,
        &[
            "--event",
            "first-reading",
            "--lead",
            "1d",
            "--to",
            "k.watanabe@japan-mission.example.org",
        ],
    );
    let id = |raw: &str| {
        MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap()
            .message_id()
            .map(str::to_owned)
    };
    assert!(id(&raw).is_some_and(|i| i.ends_with(".herald@gcm.example.org")));
    assert_eq!(id(&raw), id(&again));
    assert_ne!(id(&raw), id(&other));
}

#[test]
fn html_escapes_data_and_subject_does_not() {
    let config = ConfigDir::example();
    config.edit(
        "config/roadmaps/2017-modalities-resolution.toml",
        "title = \"1st reading\"",
        "title = \"1st reading <draft> & notes\"",
    );
    let raw = preview(
        &config,
        &[
            "--event",
            "first-reading",
            "--lead",
            "1d",
            "--to",
            "k.watanabe@japan-mission.example.org",
        ],
    );
    let message = MessageParser::default().parse(raw.as_bytes()).unwrap();
    assert_eq!(
        message.subject(),
        Some("Reminder: 1st reading <draft> & notes, 2 October (afternoon)")
    );
    assert!(
        message
            .body_html(0)
            .unwrap()
            .contains("1st reading &lt;draft&gt; &amp; notes")
    );
    assert!(
        message
            .body_text(0)
            .unwrap()
            .contains("1st reading <draft> & notes")
    );
}

#[test]
fn preview_says_what_is_wrong() {
    let config = ConfigDir::example();
    let output = config.herald(&[
        "preview",
        "--event",
        "first-reading",
        "--to",
        "nobody@example.org",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("nobody@example.org is not a focal point"),
        "{}",
        stderr(&output)
    );
    let output = config.herald(&[
        "preview",
        "--event",
        "first-reading",
        "--to",
        "grace.mwangi@migrant-voices.example.org",
    ]);
    assert!(
        stderr(&output).contains("gets no reminder of \"first-reading\""),
        "{}",
        stderr(&output)
    );
    let output = config.herald(&[
        "preview",
        "--event",
        "first-reading",
        "--lead",
        "3d",
        "--to",
        "k.watanabe@japan-mission.example.org",
    ]);
    assert!(
        stderr(&output).contains("gets no 3d reminder of this event; the leads are: 7d, 1d, 2h"),
        "{}",
        stderr(&output)
    );
}

/// `{{require x}}` writes its value as `{{x}}` does: escaped in the HTML
/// part (it used to write raw HTML), as is in the text part, and raw only
/// when the template asks with `{{{require x}}}`.
#[test]
fn require_escapes_like_a_plain_value_in_html() {
    let config = ConfigDir::example();
    config.edit(
        "config/lists/permanent-missions.csv",
        "Kenji Watanabe,",
        "Kenji <b>Watanabe</b> & Co,",
    );
    config.write(
        "../templates/en/partials/salutation.html.hbs",
        "[{{require recipient.name}}] [{{recipient.name}}] [{{{require recipient.name}}}]",
    );
    config.write(
        "../templates/en/partials/salutation.txt.hbs",
        "[{{require recipient.name}}]",
    );
    let raw = preview(
        &config,
        &[
            "--event",
            "first-reading",
            "--lead",
            "7d",
            "--to",
            "k.watanabe@japan-mission.example.org",
        ],
    );
    let message = MessageParser::default().parse(raw.as_bytes()).expect("a message");
    let html = message.body_html(0).expect("an HTML part");
    let escaped = "Kenji &lt;b&gt;Watanabe&lt;/b&gt; &amp; Co";
    assert!(
        html.contains(&format!("[{escaped}] [{escaped}] [Kenji <b>Watanabe</b> & Co]")),
        "{html}"
    );
    let text = message.body_text(0).expect("a text part");
    assert!(text.contains("[Kenji <b>Watanabe</b> & Co]"), "{text}");
}
