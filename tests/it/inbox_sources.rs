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
    let fetched = source.fetch_new(1 << 20).await.unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
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
    let (woke, _) = tokio::join!(wake(&mut source, Duration::from_secs(10)), async {
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
    let fetched = source.fetch_new(1 << 20).await.unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
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
    let failure = match tokio::time::timeout(Duration::from_secs(15), source.wait_for_mail(Duration::from_secs(60))).await {
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
    source.set_aside(&too_big.id, "over the size limit").await.unwrap();
    let rest = source.fetch_new(2000).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].bytes, message("small"));
    let aside = server.messages("herald.unreadable");
    assert_eq!(aside.len(), 1);
    assert_eq!(aside[0].bytes, big);
    assert!(!aside[0].flags.contains('S'), "set aside unread for a human: {aside:?}");
}
