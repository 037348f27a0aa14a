//! The inbox's sources against a real IMAP server (Dovecot, started by each
//! test): fetch, done and set aside as Dovecot stores them, IDLE, a refused
//! login, a server that goes away, a message over the size limit.

use std::sync::Arc;
use std::time::Duration;

use herald::clock::SystemClock;
use herald::inbox::{ImapSettings, InboxSettings, Mailbox, Source, Woke};
use herald::send::Security;

use crate::support::dovecot::{self, Dovecot};

fn settings(server: &Dovecot, password: &str) -> InboxSettings {
    InboxSettings {
        mailbox: Mailbox::Imap(ImapSettings {
            host: server.host().to_owned(),
            port: server.port(),
            security: Security::Tls,
            username: dovecot::USER.to_owned(),
            password: Some(password.to_owned()),
            ca_file: Some(server.ca_file()),
            folder: "INBOX".to_owned(),
            timeout: Duration::from_secs(10),
        }),
        processed: "herald.processed".to_owned(),
        unreadable: "herald.unreadable".to_owned(),
        poll: Duration::from_secs(300),
        bounce_threshold: 3,
        bounce_period: jiff::SignedDuration::from_hours(14 * 24),
    }
}

fn source(server: &Dovecot) -> Source {
    Source::new(&settings(server, dovecot::PASSWORD), Arc::new(SystemClock))
}

fn message(subject: &str) -> Vec<u8> {
    format!(
        "From: someone@example.org\r\nTo: process@example.org\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.org>\r\n\r\nbody of {subject}\r\n"
    )
    .into_bytes()
}

/// Waits at most `within` of real time for the source to wake.
async fn wake(source: &mut Source, within: Duration) -> Woke {
    tokio::time::timeout(within, source.wait_for_mail(Duration::from_secs(120)))
        .await
        .expect("the source woke in time")
        .expect("the wait succeeds")
}

#[tokio::test]
async fn fetched_messages_are_moved_to_the_processed_folder_flagged_seen_and_not_fetched_again() {
    let server = Dovecot::start();
    server.deliver("1.a.host", &message("first"));
    server.deliver("2.b.host", &message("second"));
    let mut source = source(&server);
    let fetched = source
        .fetch_new(1 << 20)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert_eq!(fetched.len(), 2);
    assert_eq!(fetched[0].bytes, message("first"));
    assert_eq!(fetched[1].bytes, message("second"));
    assert!(fetched.iter().all(|f| f.too_big.is_none()));
    // Reading leaves them unseen: only done marks them.
    assert!(server.messages("INBOX").iter().all(|m| !m.flags.contains('S')));
    for one in &fetched {
        source.done(&one.id).await.unwrap();
    }
    assert!(source.fetch_new(1 << 20).await.unwrap().is_empty());
    source.close().await;
    assert!(server.messages("INBOX").is_empty());
    let processed = server.messages("herald.processed");
    assert_eq!(processed.len(), 2);
    assert_eq!(processed[0].bytes, message("first"));
    assert!(processed.iter().all(|m| m.flags.contains('S')), "{processed:?}");
    // The folder herald created is subscribed, so mail clients list it
    // (Dovecot writes a name's levels, here split at the dot, with tabs).
    let subscriptions = std::fs::read_to_string(server.maildir().join("subscriptions")).unwrap_or_default();
    assert!(
        subscriptions
            .lines()
            .any(|line| line.replace('\t', ".") == "herald.processed"),
        "{subscriptions:?}"
    );
}

#[tokio::test]
async fn idle_wakes_when_mail_arrives() {
    let server = Dovecot::start();
    let mut source = source(&server);
    assert!(source.fetch_new(1 << 20).await.unwrap().is_empty());
    let maildir = server.maildir();
    let deliver = tokio::task::spawn_blocking({
        let server_maildir = maildir.clone();
        move || {
            std::thread::sleep(Duration::from_millis(500));
            server_maildir
        }
    });
    // The delivery comes half a second into the IDLE; the wait is 120 s.
    let (woke, _) = tokio::join!(wake(&mut source, Duration::from_secs(5)), async {
        deliver.await.unwrap();
        server.deliver("3.c.host", &message("pushed"));
    });
    assert_eq!(woke, Woke::Mail);
    let fetched = source.fetch_new(1 << 20).await.unwrap();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].bytes, message("pushed"));
}

#[tokio::test]
async fn a_refused_login_is_an_error_retried_with_a_backoff_until_it_is_fixed() {
    let server = Dovecot::start();
    server.deliver("1.a.host", &message("waiting"));
    let mut source = Source::new(&settings(&server, "the new password"), Arc::new(SystemClock));
    let error = source.fetch_new(1 << 20).await.unwrap_err();
    let status = error.status_line();
    assert!(
        status.starts_with("the inbox cannot be read: login refused for \"herald\" (")
            && status.ends_with("next try in 1s"),
        "{status}"
    );
    // Before the next try, no new attempt: the same failure, sooner.
    let again = source.fetch_new(1 << 20).await.unwrap_err();
    assert_eq!(again.cause, error.cause);
    assert!(again.retry_in.unwrap() <= Duration::from_secs(1));
    // The operator fixes the password; the wait ends at the next try.
    server.set_password("the new password");
    assert_eq!(wake(&mut source, Duration::from_secs(5)).await, Woke::Retry);
    let fetched = source
        .fetch_new(1 << 20)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert_eq!(fetched.len(), 1);
}

#[tokio::test]
async fn a_server_that_goes_away_is_reconnected_and_the_work_goes_on() {
    let mut server = Dovecot::start();
    server.deliver("1.a.host", &message("before"));
    let mut source = source(&server);
    let fetched = source.fetch_new(1 << 20).await.unwrap();
    assert_eq!(fetched.len(), 1);
    server.stop();
    // The connection is gone: the IDLE (or the command) fails, never panics.
    let failure = match tokio::time::timeout(
        Duration::from_secs(15),
        source.wait_for_mail(Duration::from_secs(60)),
    )
    .await
    {
        Ok(Err(error)) => error,
        Ok(Ok(woke)) => {
            // The IDLE may end before the server's death is read: the next
            // command finds it.
            assert_ne!(woke, Woke::Retry);
            source.done(&fetched[0].id).await.unwrap_err()
        }
        Err(_) => panic!("the dead connection was not noticed"),
    };
    assert!(failure.retry_in.is_some(), "{failure}");
    server.restart();
    server.deliver("2.b.host", &message("after"));
    // Retries until the server answers again (the backoff is a few seconds).
    let mut fetched = Vec::new();
    for _ in 0..10 {
        match source.fetch_new(1 << 20).await {
            Ok(found) => {
                fetched = found;
                break;
            }
            Err(_) => {
                wake(&mut source, Duration::from_secs(40)).await;
            }
        }
    }
    assert_eq!(fetched.len(), 2, "{}", server.log());
    for one in &fetched {
        source.done(&one.id).await.unwrap();
    }
    assert_eq!(server.messages("herald.processed").len(), 2);
}

#[tokio::test]
async fn a_message_over_the_limit_is_reported_too_big_and_can_be_set_aside_unread() {
    let server = Dovecot::start();
    let big = [message("big"), vec![b'x'; 5000]].concat();
    server.deliver("1.big.host", &big);
    server.deliver("2.small.host", &message("small"));
    let mut source = source(&server);
    let fetched = source.fetch_new(2000).await.unwrap();
    assert_eq!(fetched.len(), 2);
    let too_big = fetched.iter().find(|f| f.too_big.is_some()).expect("the big one");
    assert_eq!(too_big.too_big, Some(big.len() as u64));
    assert!(too_big.bytes.is_empty());
    source
        .set_aside(&too_big.id, "over the size limit")
        .await
        .unwrap();
    let rest = source.fetch_new(2000).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].bytes, message("small"));
    let aside = server.messages("herald.unreadable");
    assert_eq!(aside.len(), 1);
    assert_eq!(aside[0].bytes, big);
    assert!(
        !aside[0].flags.contains('S'),
        "set aside unread for a human: {aside:?}"
    );
}

#[tokio::test]
async fn a_server_without_move_or_idle_gets_copy_and_expunge_and_is_polled() {
    let server = Dovecot::start_with("imap_capability = IMAP4rev1 LITERAL+ UIDPLUS");
    server.deliver("1.a.host", &message("copied"));
    let mut source = source(&server);
    let fetched = source
        .fetch_new(1 << 20)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert_eq!(fetched.len(), 1);
    source.done(&fetched[0].id).await.unwrap();
    // Copied, flagged deleted and expunged (UID EXPUNGE): in one place only.
    assert!(
        server.messages("INBOX").is_empty(),
        "{:?}",
        server.messages("INBOX")
    );
    let processed = server.messages("herald.processed");
    assert_eq!(processed.len(), 1);
    assert!(
        processed[0].flags.contains('S') && !processed[0].flags.contains('T'),
        "{processed:?}"
    );
    // Without IDLE nothing wakes the wait: it runs its time (here shorter
    // than the poll), and the next fetch finds the mail.
    server.deliver("2.b.host", &message("polled"));
    let woke = source.wait_for_mail(Duration::from_millis(700)).await.unwrap();
    assert_eq!(woke, Woke::Timeout);
    assert_eq!(source.fetch_new(1 << 20).await.unwrap().len(), 1);
}

/// herald.toml as the example has it, followed by `inbox`.
fn with_inbox(inbox: &str) -> crate::harness::ConfigDir {
    let config = crate::harness::ConfigDir::example();
    let text = std::fs::read_to_string(config.path().join("herald.toml")).unwrap();
    config.write("herald.toml", &format!("{text}\n{inbox}"));
    config
}

fn imap_of(config: herald::config::Config) -> ImapSettings {
    match config.inbox.expect("an inbox").mailbox {
        Mailbox::Imap(imap) => imap,
        Mailbox::Maildir(dir) => panic!("IMAP expected, not the maildir {}", dir.display()),
    }
}

#[test]
fn inbox_settings_are_read_with_their_defaults() {
    use herald::config::Environment;
    // No [inbox]: no mail is read.
    let config = crate::harness::ConfigDir::example();
    assert!(config.load_config().unwrap().inbox.is_none());

    // A maildir: relative to the state directory, like [delivery]'s.
    let config = with_inbox("[inbox]\nmaildir = \"inbox\"\n");
    let env = Environment::default().with("HERALD_STATE_DIR", "/srv/herald-state");
    let inbox = herald::config::load(&config.path(), &env).unwrap().inbox.unwrap();
    match &inbox.mailbox {
        Mailbox::Maildir(dir) => assert_eq!(dir, std::path::Path::new("/srv/herald-state/inbox")),
        Mailbox::Imap(_) => panic!("a maildir expected"),
    }
    assert_eq!(
        (
            inbox.processed.as_str(),
            inbox.unreadable.as_str(),
            inbox.poll,
            inbox.bounce_threshold
        ),
        ("Processed", "Unreadable", Duration::from_secs(300), 3)
    );
    assert_eq!(inbox.bounce_period, jiff::SignedDuration::from_hours(14 * 24));

    // IMAP, every key set, the password from a file beside herald.toml.
    let config = with_inbox(
        "[inbox]\nprocessed = \"herald.done\"\nunreadable = \"herald.aside\"\npoll = \"1m\"\nbounce_threshold = 5\nbounce_period = \"30d\"\n\
         [inbox.imap]\nhost = \"imap.example.org\"\nsecurity = \"starttls\"\nusername = \"process@example.org\"\n\
         password_file = \"imap-password\"\nfolder = \"Returns\"\ntimeout = \"20s\"\n",
    );
    config.write("imap-password", "s3cret from a file\n");
    let loaded = config.load_config().unwrap();
    assert!(
        !format!("{loaded:?}").contains("s3cret"),
        "the password must never be printed"
    );
    let inbox = loaded.inbox.clone().unwrap();
    assert_eq!(
        (inbox.processed.as_str(), inbox.unreadable.as_str()),
        ("herald.done", "herald.aside")
    );
    assert_eq!((inbox.poll, inbox.bounce_threshold), (Duration::from_secs(60), 5));
    assert_eq!(inbox.bounce_period, jiff::SignedDuration::from_hours(30 * 24));
    let imap = imap_of(loaded);
    assert_eq!(
        (imap.host.as_str(), imap.port, imap.security),
        ("imap.example.org", 143, Security::StartTls)
    );
    assert_eq!(
        (imap.username.as_str(), imap.folder.as_str()),
        ("process@example.org", "Returns")
    );
    assert_eq!(
        (imap.password.as_deref(), imap.timeout),
        (Some("s3cret from a file"), Duration::from_secs(20))
    );

    // Inline, with the defaults; the password from the systemd credential,
    // then from $HERALD_IMAP_PASSWORD_FILE, which comes first.
    let config = with_inbox("[inbox]\nimap = { host = \"imap.example.org\", username = \"process\" }\n");
    let credentials = tempfile::tempdir().unwrap();
    std::fs::write(credentials.path().join("imap-password"), "s3cret from systemd\n").unwrap();
    let env = Environment::default().with("CREDENTIALS_DIRECTORY", &credentials.path().display().to_string());
    let imap = imap_of(herald::config::load(&config.path(), &env).unwrap());
    assert_eq!(
        (imap.port, imap.security, imap.folder.as_str()),
        (993, Security::Tls, "INBOX")
    );
    assert_eq!(imap.password.as_deref(), Some("s3cret from systemd"));
    let file = credentials.path().join("other");
    std::fs::write(&file, "s3cret from the environment").unwrap();
    let env = env.with("HERALD_IMAP_PASSWORD_FILE", &file.display().to_string());
    let imap = imap_of(herald::config::load(&config.path(), &env).unwrap());
    assert_eq!(imap.password.as_deref(), Some("s3cret from the environment"));
    // From a shell, without the credential: known only when the service runs.
    assert_eq!(imap_of(config.load_config().unwrap()).password, None);
}

#[test]
fn bad_inbox_settings_are_reported_at_their_line_and_column() {
    let cases: [(&str, &str); 9] = [
        (
            "[inbox]\npoll = \"5m\"\n",
            "needs a mailbox: maildir = \"PATH\", or imap = {",
        ),
        (
            "[inbox]\nmaildir = \"m\"\nimap = { host = \"h\", username = \"u\" }\n",
            "reads one mailbox: set maildir or imap, not both",
        ),
        (
            "[inbox]\nimap = { host = \"imap.example.org\", username = \"u\", password = \"hunter2\" }\n",
            "passwords are not kept in herald.toml: use password_file, or the systemd credential `imap-password`",
        ),
        (
            "[inbox]\nimap = { host = \"imap.example.org\", username = \"u\", security = \"none\" }\n",
            "refusing to send the IMAP password unencrypted to \"imap.example.org\"",
        ),
        (
            "[inbox]\nmaildir = \"m\"\nprocessed = \"a/b\"\n",
            "invalid folder name \"a/b\"",
        ),
        (
            "[inbox]\nmaildir = \"m\"\nprocessed = \"x\"\nunreadable = \"x\"\n",
            "processed and unreadable are both \"x\"",
        ),
        (
            "[inbox]\nmaildir = \"m\"\npoll = \"1s\"\n",
            "\"1s\" is too short: at least 10s",
        ),
        (
            "[inbox]\nmaildir = \"m\"\nbounce_threshold = 0\n",
            "bounce_threshold must be at least 1",
        ),
        (
            "[inbox]\nmaildir = \"m\"\nbounce_period = \"two weeks\"\n",
            "invalid period \"two weeks\"",
        ),
    ];
    for (inbox, expected) in cases {
        let config = with_inbox(inbox);
        let problems = config.problems();
        assert_eq!(problems.len(), 1, "{inbox}: {problems:?}");
        let problem = &problems[0];
        assert!(problem.starts_with("ROOT/config/herald.toml:"), "{problem}");
        assert!(problem.contains(expected), "{inbox}\n{problem}");
        assert!(!problem.contains("hunter2"), "{problem}");
    }
    // The line and column of the value at fault.
    let config = with_inbox("[inbox]\nmaildir = \"m\"\npoll = \"1s\"\n");
    let lines = std::fs::read_to_string(config.path().join("herald.toml"))
        .unwrap()
        .lines()
        .count();
    assert!(
        config.problems()[0].starts_with(&format!("ROOT/config/herald.toml:{lines}:8: ")),
        "{:?}",
        config.problems()
    );
}

#[tokio::test]
async fn starttls_works_and_an_untrusted_certificate_is_refused() {
    let server = Dovecot::start();
    server.deliver("1.a.host", &message("over starttls"));
    let mut settings = settings(&server, dovecot::PASSWORD);
    let Mailbox::Imap(imap) = &mut settings.mailbox else {
        unreachable!()
    };
    imap.security = Security::StartTls;
    imap.port = server.starttls_port();
    let mut source = Source::new(&settings, Arc::new(SystemClock));
    let fetched = source
        .fetch_new(1 << 20)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].bytes, message("over starttls"));
    // A certificate herald does not trust is refused, not ignored.
    let Mailbox::Imap(imap) = &mut settings.mailbox else {
        unreachable!()
    };
    imap.ca_file = None;
    let error = Source::new(&settings, Arc::new(SystemClock))
        .fetch_new(1 << 20)
        .await
        .unwrap_err();
    assert!(error.cause.starts_with("TLS with 127.0.0.1 failed"), "{error}");
}
