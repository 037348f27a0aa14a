//! Classification of incoming mail against the corpus in
//! `tests/fixtures/inbox/`: bounces in each server's format, delays,
//! automatic answers, unsubscribes and letters for a human, each
//! `<name>.eml` with its `<name>.expected.json`; and the hostile inputs
//! (thousands of addresses, a huge message, arbitrary bytes).

use std::path::PathBuf;

use herald::inbox::classify::{MAX_READ, classify};
use herald::inbox::{Classification, Kind, MAX_ADDRESSES};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::harness::repo;

fn corpus_dir() -> PathBuf {
    repo().join("tests/fixtures/inbox")
}

/// What the expected file says, compared field by field: `kind`,
/// `addresses`, `permanent` and `status` always; `diagnostic` exactly or
/// `diagnostic_contains`; the clues (absent means none).
fn mismatches(expected: &Value, got: &Classification) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |field: &str, want: &Value, have: Value| {
        if *want != have {
            problems.push(format!("{field}: expected {want}, got {have}"));
        }
    };
    let field = |name: &str| {
        expected
            .get(name)
            .unwrap_or_else(|| panic!("no {name:?} in the expected file"))
    };
    check("kind", field("kind"), json!(got.kind.as_str()));
    check("addresses", field("addresses"), json!(got.addresses));
    check("permanent", field("permanent"), json!(got.permanent));
    check("status", field("status"), json!(got.status));
    match (expected.get("diagnostic"), expected.get("diagnostic_contains")) {
        (Some(exact), None) => check("diagnostic", exact, json!(got.diagnostic)),
        (None, Some(Value::String(part))) => {
            if !got
                .diagnostic
                .as_deref()
                .is_some_and(|d| d.contains(part.as_str()))
            {
                let have = json!(got.diagnostic);
                check("diagnostic", &json!(format!("… {part} …")), have);
            }
        }
        _ => panic!("the expected file needs one of diagnostic and diagnostic_contains"),
    }
    let empty = json!([]);
    check(
        "verp_tokens",
        expected.get("verp_tokens").unwrap_or(&empty),
        json!(got.clues.verp_tokens),
    );
    check(
        "original_message_ids",
        expected.get("original_message_ids").unwrap_or(&empty),
        json!(got.clues.original_message_ids),
    );
    check(
        "unsubscribe_token",
        expected.get("unsubscribe_token").unwrap_or(&Value::Null),
        json!(got.clues.unsubscribe_token),
    );
    problems
}

#[test]
fn every_message_of_the_corpus_is_classified_as_expected() {
    let mut messages: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "eml"))
        .collect();
    messages.sort();
    assert!(messages.len() >= 60, "the corpus has {} messages", messages.len());
    let mut failures = Vec::new();
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for message in &messages {
        let expected_path = message.with_extension("expected.json");
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(&expected_path)
                .unwrap_or_else(|err| panic!("{}: {err}", expected_path.display())),
        )
        .unwrap_or_else(|err| panic!("{}: {err}", expected_path.display()));
        let got = classify(&std::fs::read(message).unwrap());
        *kinds.entry(got.kind.as_str()).or_default() += 1;
        let problems = mismatches(&expected, &got);
        if !problems.is_empty() {
            let name = message.file_name().unwrap().to_string_lossy();
            failures.push(format!("{name}:\n  {}", problems.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} messages are not classified as expected:\n{}",
        failures.len(),
        messages.len(),
        failures.join("\n")
    );
    // The corpus covers every kind, bounces most.
    for (kind, least) in [
        ("bounce", 30),
        ("delay", 6),
        ("auto-reply", 8),
        ("unsubscribe", 6),
        ("other", 10),
    ] {
        assert!(kinds.get(kind).copied().unwrap_or(0) >= least, "{kinds:?}");
    }
}

/// A report naming 5,000 recipients: the first `MAX_ADDRESSES` are kept,
/// each once, quickly.
#[test]
fn a_report_naming_thousands_of_addresses_keeps_the_first_ones() {
    let mut fields = String::from("Reporting-MTA: dns; mx.example.net\r\n");
    for i in 0..5000 {
        fields.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; member{i}@list.example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        ));
    }
    let message = format!(
        "From: MAILER-DAEMON@mx.example.net\r\nTo: bounces@gcm.example.org\r\nSubject: Undelivered Mail\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nThe mail system\r\n\
         --b\r\nContent-Type: message/delivery-status\r\n\r\n{fields}\r\n--b--\r\n"
    );
    let started = std::time::Instant::now();
    let got = classify(message.as_bytes());
    let took = started.elapsed();
    assert_eq!(got.kind, Kind::Bounce);
    assert_eq!(got.addresses.len(), MAX_ADDRESSES);
    assert_eq!(got.addresses[0], "member0@list.example.org");
    assert_eq!(got.addresses[99], "member99@list.example.org");
    assert!(took.as_secs() < 2, "took {took:?}");

    // The same in a server's own words: the addresses listed in its text.
    let mut body = String::from(
        "This message was created automatically by mail delivery software.\r\n\r\n\
         A message that you sent could not be delivered to one or more of its\r\n\
         recipients. This is a permanent error. The following address(es) failed:\r\n\r\n",
    );
    for i in 0..5000 {
        body.push_str(&format!(
            "  member{i}@list.example.org\r\n    Unrouteable address\r\n"
        ));
    }
    let message = format!(
        "From: Mail Delivery System <Mailer-Daemon@mx.example.net>\r\nSubject: Mail delivery failed\r\n\r\n{body}"
    );
    let got = classify(message.as_bytes());
    assert_eq!(got.kind, Kind::Bounce);
    assert_eq!(got.addresses.len(), MAX_ADDRESSES);
    assert_eq!(got.status.as_deref(), Some("5.1.2"));
}

/// A 50 MB message (a bounce returning a huge attachment) is read as
/// fast as its first mebibyte: the report comes first.
#[test]
fn a_fifty_megabyte_bounce_is_read_from_its_beginning() {
    let corpus = std::fs::read(corpus_dir().join("exim-user-unknown.eml")).unwrap();
    let mut message = corpus.clone();
    let line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n";
    while message.len() < 50 * 1024 * 1024 {
        message.extend_from_slice(line);
    }
    assert!(message.len() > 50 * MAX_READ);
    let started = std::time::Instant::now();
    let got = classify(&message);
    let took = started.elapsed();
    assert_eq!(got, classify(&corpus));
    assert!(took.as_secs() < 2, "took {took:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes get a classification: no panic, bounded lists.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let got = classify(&bytes);
        prop_assert!(got.addresses.len() <= MAX_ADDRESSES);
        prop_assert!(got.diagnostic.as_ref().is_none_or(|d| d.chars().count() <= 500));
    }

    /// Corpus messages cut or corrupted at any place still classify.
    #[test]
    fn damaged_corpus_messages_never_panic(
        index in 0usize..1000,
        cut in any::<prop::sample::Index>(),
        noise in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..16),
    ) {
        let mut messages: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "eml"))
            .collect();
        messages.sort();
        let mut bytes = std::fs::read(&messages[index % messages.len()]).unwrap();
        if !bytes.is_empty() {
            for (at, byte) in noise {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        let got = classify(&bytes);
        prop_assert!(got.addresses.len() <= MAX_ADDRESSES);
    }
}

/// `herald inbox classify`: a block per file, or a JSON line per file
/// with the send each report is about, found in the outbox by the VERP
/// token of its envelope recipient or by the returned Message-ID; a file
/// that cannot be read is named, the others still classified, and the
/// exit status says so.
#[test]
fn the_command_classifies_files_and_names_the_send() {
    use crate::harness::{ConfigDir, stderr, stdout};

    let config = ConfigDir::example();
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().display().to_string();
    let rehearsal = config.herald(&[
        "run",
        "--state-dir",
        &state_dir,
        "--rehearse-from",
        "2017-09-13",
        "--until",
        "2017-09-20",
        "--fast-forward",
    ]);
    assert!(rehearsal.status.success(), "{}", stderr(&rehearsal));
    // One message herald sent: its Message-ID carries its send's token.
    let sent = std::fs::read_dir(state.path().join("maildir/new"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let sent = std::fs::read_to_string(sent).unwrap();
    let message_id = sent
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: <"))
        .expect("a Message-ID")
        .trim_end_matches('>');
    let token = message_id.split('.').next().unwrap();
    let history = config.herald(&["history", "--state-dir", &state_dir, "--json"]);
    let rows: Vec<Value> = serde_json::from_str(&stdout(&history)).unwrap();
    let key = rows
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .find(|key| herald::key::token_of(key) == token)
        .expect("the send of the message");

    // A report to its VERP address, and one that only returns its headers.
    let dsn = |envelope: &str, returned: &str| {
        format!(
            "Return-Path: <>\r\nX-Original-To: {envelope}\r\nFrom: MAILER-DAEMON@mx.example.net\r\n\
             To: {envelope}\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nThe mail system\r\n\
             --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n\
             Final-Recipient: rfc822; Someone@Mission.example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\
             Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\
             --b\r\nContent-Type: text/rfc822-headers\r\n\r\n{returned}\r\n--b--\r\n"
        )
    };
    let files = tempfile::tempdir().unwrap();
    let by_verp = files.path().join("by-verp.eml");
    std::fs::write(
        &by_verp,
        dsn(&format!("bounces+{token}@gcm.example.org"), "Subject: x\r\n"),
    )
    .unwrap();
    let by_id = files.path().join("by-message-id.eml");
    std::fs::write(
        &by_id,
        dsn(
            "secretariat@gcm.example.org",
            &format!("Message-ID: <{message_id}>\r\n"),
        ),
    )
    .unwrap();
    let missing = files.path().join("missing.eml");
    let human = corpus_dir().join("human-reply-to-reminder.eml");
    let paths: Vec<String> = [&by_verp, &missing, &by_id, &human]
        .iter()
        .map(|p| p.display().to_string())
        .collect();

    let mut args = vec!["inbox", "classify", "--json", "--state-dir", &state_dir];
    args.extend(paths.iter().map(String::as_str));
    let output = config.herald(&args);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("cannot read {}", paths[1])),
        "{}",
        stderr(&output)
    );
    let lines: Vec<Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            json!({"file": paths[0], "kind": "bounce", "addresses": ["someone@mission.example.net"],
                   "permanent": true, "status": "5.1.1", "diagnostic": "550 5.1.1 User unknown", "send": key}),
            json!({"file": paths[2], "kind": "bounce", "addresses": ["someone@mission.example.net"],
                   "permanent": true, "status": "5.1.1", "diagnostic": "550 5.1.1 User unknown", "send": key}),
            json!({"file": paths[3], "kind": "other", "addresses": [], "permanent": null,
                   "status": null, "diagnostic": null, "send": null}),
        ]
    );

    // Without an outbox (the example's state directory has none), the
    // send is unknown; the plain form is a block per file.
    let output = config.herald(&["inbox", "classify", &paths[0]]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "{}\n  kind:       bounce\n  addresses:  someone@mission.example.net\n  permanent:  true\n  \
             status:     5.1.1\n  diagnostic: 550 5.1.1 User unknown\n  send:       -\n\n",
            paths[0]
        )
    );
}
