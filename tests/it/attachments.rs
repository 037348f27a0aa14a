//! Attachments on letters and events: sent to a real SMTP server (aiosmtpd)
//! and read back by a real MIME parser (Python's `email`, through
//! `support/mime_parts.py`) byte for byte, with their names and types; the
//! invitation beside them read by Python's `icalendar`; paths that leave
//! the configuration directory refused at their line; the size warning;
//! and which reminders carry an event's files (`attach_to`), over a
//! rehearsal on the stepping clock.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::calendar::ics_facts;
use crate::daemon::smtp_config;
use crate::harness::{ConfigDir, FUTURE_ROADMAP, repo, stderr, stdout};
use crate::support::aiosmtpd::Sink;

const LETTER: &str = "config/letters/2017-09-14-modalities-roadmap.toml";

/// The name of the signed letter, as its file is called.
const SIGNED: &str = "Lettre du Président.pdf";

/// A PDF's signature, then every byte value, many times over (so the
/// base64 runs over many lines), and the sequences SMTP and MIME treat
/// specially: a dot alone on a line, a lone CR and a lone LF.
fn pdf_bytes() -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut state: u32 = 1;
    for _ in 0..200_000 {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        bytes.push((state >> 16) as u8);
    }
    bytes.extend_from_slice(b"\r\n.\r\n\r.\n%%EOF\n");
    bytes
}

/// A text file whose line ends must arrive as they are, not made CRLF.
const NOTES: &[u8] = b"Circulation of a 0-draft\nline two\r\n.\nno final line end";

fn sha256(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// What `mime_parts.py` reads of each message.
fn mime_parts(messages: &[Vec<u8>]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, message)| {
            let path = dir.path().join(format!("{i}.eml"));
            std::fs::write(&path, message).unwrap();
            path
        })
        .collect();
    let output = Command::new("python3")
        .arg(repo().join("tests/it/support/mime_parts.py"))
        .args(&paths)
        .stderr(Stdio::piped())
        .output()
        .expect("python3 is needed for the attachment tests");
    assert!(
        output.status.success(),
        "mime_parts.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The example configuration with the signed letter and the notes in
/// `files/`, and the 2017 cover letter listing both (at line 12).
fn config_with_letter_attachments(config: &ConfigDir) {
    config.write(&format!("files/{SIGNED}"), "");
    std::fs::write(config.path().join("files").join(SIGNED), pdf_bytes()).unwrap();
    std::fs::write(config.path().join("files/notes.txt"), NOTES).unwrap();
    config.edit(
        LETTER,
        "signatory = ",
        &format!("attachments = [\"files/{SIGNED}\", \"files/notes.txt\"]\nsignatory = "),
    );
}

#[test]
fn a_letter_carries_its_files_byte_for_byte_through_a_real_smtp_server() {
    let sink = Sink::plain();
    let config = smtp_config(sink.port(), 2);
    config_with_letter_attachments(&config);
    let state = tempfile::tempdir().unwrap();
    let sent = config.herald(&[
        "send",
        "--letter",
        "modalities-roadmap-2017",
        "--state-dir",
        &state.path().display().to_string(),
    ]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    let received: Vec<Vec<u8>> = sink.received().into_iter().map(|r| r.bytes).collect();
    assert_eq!(received.len(), 9);
    let pdf = pdf_bytes();
    for facts in mime_parts(&received) {
        assert_eq!(facts["defects"], json!([]), "{facts:#}");
        assert_eq!(
            facts["tree"],
            json!({"multipart/mixed": [
                {"multipart/alternative": ["text/plain", "text/html"]},
                "application/pdf",
                "text/plain",
            ]}),
            "{facts:#}"
        );
        let attachments = facts["attachments"].as_array().unwrap();
        assert_eq!(attachments[0]["filename"], SIGNED);
        // Readers that do not know RFC 2231 get the name without accents.
        assert_eq!(attachments[0]["ascii_filename"], "Lettre du President.pdf");
        assert_eq!(attachments[0]["content_type"], "application/pdf");
        assert_eq!(attachments[0]["size"], pdf.len());
        assert_eq!(attachments[0]["sha256"], sha256(&pdf));
        assert_eq!(attachments[1]["filename"], "notes.txt");
        assert_eq!(attachments[1]["ascii_filename"], "notes.txt");
        assert_eq!(attachments[1]["content_type"], "text/plain");
        assert_eq!(attachments[1]["charset"], "utf-8");
        assert_eq!(attachments[1]["transfer_encoding"], "base64");
        assert_eq!(attachments[1]["sha256"], sha256(NOTES));
    }
}

/// A second parser, mail-parser, reads the same bytes and the same name.
#[test]
fn mail_parser_reads_the_same_file_and_name() {
    use mail_parser::{MessageParser, MimeHeaders};
    let config = ConfigDir::example();
    config_with_letter_attachments(&config);
    let message = config.preview(&[
        "--letter",
        "modalities-roadmap-2017",
        "--to",
        "amina.diallo@senegal-mission.example.org",
    ]);
    let parsed = MessageParser::default().parse(&message).expect("a message");
    let attachments: Vec<_> = parsed.attachments().collect();
    assert_eq!(attachments.len(), 2);
    assert_eq!(attachments[0].attachment_name(), Some(SIGNED));
    assert_eq!(attachments[0].contents(), pdf_bytes().as_slice());
    assert_eq!(attachments[1].contents(), NOTES);
}

/// A meeting's reminder with a file keeps its invitation where calendars
/// look for it: the third alternative, beside the text and the HTML.
#[test]
fn a_meeting_reminder_keeps_its_invitation_beside_its_files() {
    let config = ConfigDir::example();
    std::fs::create_dir_all(config.path().join("files")).unwrap();
    std::fs::write(config.path().join("files/agenda.pdf"), pdf_bytes()).unwrap();
    config.edit(
        "config/roadmaps/2016-modalities-consultations.toml",
        "end_date = \"2016-12-02\"",
        "end_date = \"2016-12-02\"\nstart = \"15:00\"\nend = \"18:00\"\nattachments = [\"files/agenda.pdf\"]\nattach_to = \"all\"",
    );
    let message = config.preview(&[
        "--event",
        "geneva-consultations",
        "--lead",
        "14d",
        "--to",
        "jm.dubois@swiss-mission.example.org",
    ]);
    let facts = &mime_parts(std::slice::from_ref(&message))[0];
    assert_eq!(
        facts["tree"],
        json!({"multipart/mixed": [
            {"multipart/alternative": ["text/plain", "text/html", "text/calendar"]},
            "application/pdf",
        ]}),
        "{facts:#}"
    );
    assert_eq!(facts["attachments"][0]["sha256"], sha256(&pdf_bytes()));
    let ics = ics_facts(&message, "Europe/Zurich");
    assert_eq!(ics["calendar_parts"], 1);
    assert_eq!(ics["content_type_method"], "REQUEST");
    assert_eq!(ics["uid"], "geneva-consultations@gcm.example.org");
    assert_eq!(ics["dtstart"]["instant"], "2016-12-01T15:00:00+01:00");
}

/// Update and cancellation notices carry the invitation and no file, even
/// from an event whose every reminder carries them.
#[test]
fn notices_carry_no_attachments() {
    let config = ConfigDir::example();
    std::fs::create_dir_all(config.path().join("files")).unwrap();
    std::fs::write(config.path().join("files/agenda.pdf"), pdf_bytes()).unwrap();
    config.edit(
        "config/roadmaps/2017-modalities-resolution.toml",
        "id = \"first-reading\"",
        "id = \"first-reading\"\nattachments = [\"files/agenda.pdf\"]\nattach_to = \"all\"",
    );
    for notice in ["update", "cancellation"] {
        let message = config.preview(&[
            "--event",
            "first-reading",
            "--notice",
            notice,
            "--to",
            "jm.dubois@swiss-mission.example.org",
        ]);
        let facts = &mime_parts(std::slice::from_ref(&message))[0];
        assert_eq!(facts["attachments"], json!([]), "{notice}: {facts:#}");
        assert_eq!(facts["calendar_parts"], 1, "{notice}: {facts:#}");
    }
    // The event's reminders do carry it.
    let reminder = config.preview(&[
        "--event",
        "first-reading",
        "--lead",
        "7d",
        "--to",
        "jm.dubois@swiss-mission.example.org",
    ]);
    let facts = &mime_parts(std::slice::from_ref(&reminder))[0];
    assert_eq!(facts["attachments"][0]["filename"], "agenda.pdf", "{facts:#}");
}

#[test]
fn paths_outside_the_configuration_directory_are_refused_at_their_line() {
    let config = ConfigDir::example();
    // A file beside the configuration directory, and links to it and to
    // /etc/passwd from inside it.
    let outside = config.path().parent().unwrap().join("outside.pdf");
    std::fs::write(&outside, pdf_bytes()).unwrap();
    std::fs::create_dir_all(config.path().join("files")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", config.path().join("files/passwd")).unwrap();
    std::os::unix::fs::symlink(&outside, config.path().join("files/outside.pdf")).unwrap();
    // A link that stays inside is fine.
    std::fs::write(config.path().join("files/real.pdf"), pdf_bytes()).unwrap();
    std::os::unix::fs::symlink("real.pdf", config.path().join("files/inside.pdf")).unwrap();
    config.edit(
        LETTER,
        "signatory = ",
        "attachments = [\n  \"../outside.pdf\",\n  \"/etc/passwd\",\n  \"files/passwd\",\n  \"files/outside.pdf\",\n  \"files/missing.pdf\",\n  \"files/../files/inside.pdf\",\n]\nsignatory = ",
    );
    let problems = config.problems();
    let at = |line: usize| format!("ROOT/config/letters/2017-09-14-modalities-roadmap.toml:{line}:3: ");
    let expected = [
        format!(
            "{}attachment \"../outside.pdf\" is outside the configuration directory ROOT/config (it resolves to ROOT/outside.pdf)",
            at(13)
        ),
        format!(
            "{}attachment \"/etc/passwd\" is an absolute path: attachments are files under the configuration directory ROOT/config",
            at(14)
        ),
        format!(
            "{}attachment \"files/passwd\" is outside the configuration directory ROOT/config (it resolves to /etc/passwd)",
            at(15)
        ),
        format!(
            "{}attachment \"files/outside.pdf\" is outside the configuration directory ROOT/config (it resolves to ROOT/outside.pdf)",
            at(16)
        ),
        format!(
            "{}attachment \"files/missing.pdf\": no such file (ROOT/config/files/missing.pdf does not exist)",
            at(17)
        ),
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (problem, expected) in problems.iter().zip(&expected) {
        assert!(
            problem.starts_with(expected.as_str()),
            "{problem}\nexpected: {expected}"
        );
    }

    // Without the refused ones, the link inside loads, named as listed.
    config.edit(
        LETTER,
        "  \"../outside.pdf\",\n  \"/etc/passwd\",\n  \"files/passwd\",\n  \"files/outside.pdf\",\n  \"files/missing.pdf\",\n",
        "",
    );
    let model = config.model();
    let attachments = &model.letters()[0].attachments;
    assert_eq!(attachments[0].name, "inside.pdf");
    assert_eq!(&attachments[0].bytes[..], pdf_bytes().as_slice());
}

#[test]
fn an_unreadable_file_is_refused_with_what_to_do() {
    let config = ConfigDir::example();
    std::fs::create_dir_all(config.path().join("files/a-directory.pdf")).unwrap();
    config.edit(
        LETTER,
        "signatory = ",
        "attachments = [\"files/a-directory.pdf\"]\nsignatory = ",
    );
    let problems = config.problems();
    assert_eq!(
        problems,
        [
            "ROOT/config/letters/2017-09-14-modalities-roadmap.toml:12:16: attachment \"files/a-directory.pdf\" is not a file\n    | attachments = [\"files/a-directory.pdf\"]\n    |                ^"
        ],
    );
}

#[test]
fn check_warns_when_a_message_would_exceed_max_message_size() {
    let config = ConfigDir::example();
    config_with_letter_attachments(&config);
    // Under the default of 10 MB: no warning.
    let quiet = config.herald(&["check"]);
    assert!(quiet.status.success(), "{}", stderr(&quiet));
    // (The example's German reader has no letter body of their own: that
    // warning is not about sizes.)
    assert!(!stdout(&quiet).contains("max_message_size"), "{}", stdout(&quiet));

    config.edit(
        "config/herald.toml",
        "[delivery]",
        "[delivery]\nmax_message_size = \"200KB\"",
    );
    let warned = config.herald(&["check"]);
    assert!(warned.status.success(), "{}", stderr(&warned));
    let out = stdout(&warned);
    let letter = config.path().join("letters/2017-09-14-modalities-roadmap.toml");
    assert!(
        out.contains(&format!(
            "warning: {}:12:15: a message carrying these attachments would be about 0.3 MB (the files encoded as base64, 0.3 MB, and the rest of the message), over max_message_size (0.2 MB) in [delivery] of herald.toml",
            letter.display()
        )),
        "{out}"
    );

    config.edit("config/herald.toml", "\"200KB\"", "\"ten megs\"");
    let refused = config.herald(&["check"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("invalid size \"ten megs\": write it like \"10MB\""),
        "{}",
        stderr(&refused)
    );
}

/// Each focal point's reminders in a rehearsal into a maildir on the
/// stepping clock, in the order they were sent, as (date, attachment names).
fn reminders_by_recipient(attach_to: Option<&str>) -> BTreeMap<String, Vec<(String, Vec<String>)>> {
    let config = ConfigDir::example();
    std::fs::create_dir_all(config.path().join("files")).unwrap();
    std::fs::write(config.path().join("files/zero-draft.pdf"), pdf_bytes()).unwrap();
    let attach_to = attach_to.map_or(String::new(), |value| format!("attach_to = \"{value}\"\n"));
    // On the roadmap, which its event inherits.
    let roadmap = FUTURE_ROADMAP.replace(
        "\n[[events]]",
        &format!("attachments = [\"files/zero-draft.pdf\"]\n{attach_to}\n[[events]]"),
    );
    config.write("roadmaps/future.toml", &roadmap);
    let state = tempfile::tempdir().unwrap();
    let run = config.herald(&[
        "run",
        "--state-dir",
        &state.path().display().to_string(),
        "--rehearse-from",
        "2099-02-28T15:00:00Z",
        "--until",
        "2099-03-01T20:00:00Z",
        "--fast-forward",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let messages: Vec<Vec<u8>> = std::fs::read_dir(state.path().join("maildir/new"))
        .unwrap()
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    let mut by_recipient: BTreeMap<String, Vec<(String, Vec<String>)>> = BTreeMap::new();
    for facts in mime_parts(&messages) {
        let names = facts["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["filename"].as_str().unwrap().to_owned())
            .collect();
        by_recipient
            .entry(facts["to"].as_str().unwrap().to_owned())
            .or_default()
            .push((facts["date"].as_str().unwrap().to_owned(), names));
    }
    for reminders in by_recipient.values_mut() {
        reminders.sort();
    }
    by_recipient
}

#[test]
fn attach_to_first_gives_the_files_with_each_focal_points_first_reminder_only() {
    let by_recipient = reminders_by_recipient(None);
    assert_eq!(by_recipient.len(), 9, "{by_recipient:#?}");
    for (to, reminders) in &by_recipient {
        let names: Vec<&Vec<String>> = reminders.iter().map(|(_, names)| names).collect();
        // The 1d, 2h and 30m reminders, in the order they were sent.
        assert_eq!(
            names,
            [&vec!["zero-draft.pdf".to_owned()], &vec![], &vec![]],
            "{to}: {reminders:#?}"
        );
    }
}

#[test]
fn attach_to_all_gives_the_files_with_every_reminder() {
    let by_recipient = reminders_by_recipient(Some("all"));
    assert_eq!(by_recipient.len(), 9, "{by_recipient:#?}");
    for (to, reminders) in &by_recipient {
        assert_eq!(reminders.len(), 3, "{to}: {reminders:#?}");
        assert!(
            reminders.iter().all(|(_, names)| names == &["zero-draft.pdf"]),
            "{to}: {reminders:#?}"
        );
    }
}

#[test]
fn files_in_a_directory_named_like_the_configuration_are_not_inside_it() {
    // `config-other/x.pdf` starts with the text `config` but is not under
    // `config/`: the comparison is by path components.
    let config = ConfigDir::example();
    let sibling = config.path().parent().unwrap().join("config-other");
    std::fs::create_dir_all(&sibling).unwrap();
    std::fs::write(sibling.join("x.pdf"), b"%PDF-1.7").unwrap();
    std::fs::create_dir_all(config.path().join("files")).unwrap();
    std::os::unix::fs::symlink(sibling.join("x.pdf"), config.path().join("files/x.pdf")).unwrap();
    config.edit(
        LETTER,
        "signatory = ",
        "attachments = [\"files/x.pdf\"]\nsignatory = ",
    );
    let problems = config.problems();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].contains("resolves to ROOT/config-other/x.pdf"),
        "{}",
        problems[0]
    );
}
