//! For `bench/run.sh inbox-idle`: the inbox's IMAP source alone, holding
//! IDLE on a server as the daemon will, so the benchmark can read the CPU
//! it takes while nothing arrives.
//!
//! `inbox_idle HOST PORT CA_FILE USER PASSWORD_FILE`: connects over TLS,
//! fetches (and leaves) what is there, says "ready" on standard error, then
//! waits for mail for ever, fetching after each wake, until killed.

use std::sync::Arc;
use std::time::Duration;

use herald::clock::SystemClock;
use herald::inbox::{ImapSettings, InboxSettings, Mailbox, Source, Woke};
use herald::send::Security;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [host, port, ca_file, user, password_file] = args.as_slice() else {
        eprintln!("usage: inbox_idle HOST PORT CA_FILE USER PASSWORD_FILE");
        std::process::exit(2);
    };
    let password = std::fs::read_to_string(password_file).expect("the password file");
    let settings = InboxSettings {
        mailbox: Mailbox::Imap(ImapSettings {
            host: host.clone(),
            port: port.parse().expect("a port"),
            security: Security::Tls,
            username: user.clone(),
            password: Some(password.trim_end().to_owned()),
            ca_file: Some(ca_file.into()),
            folder: "INBOX".to_owned(),
            timeout: Duration::from_secs(60),
        }),
        processed: "Processed".to_owned(),
        unreadable: "Unreadable".to_owned(),
        poll: Duration::from_secs(300),
        bounce_threshold: 3,
        bounce_period: jiff::SignedDuration::from_hours(14 * 24),
    };
    let mut source = Source::new(&settings, Arc::new(SystemClock));
    let found = source.fetch_new(10 << 20).await.expect("the first fetch");
    eprintln!("ready: {} message(s) waiting", found.len());
    loop {
        // As the daemon would: wait (at most an hour; IDLE is renewed every
        // 5 minutes inside), then look again.
        match source.wait_for_mail(Duration::from_secs(3600)).await {
            Ok(woke) => {
                let found = source.fetch_new(10 << 20).await.map(|found| found.len());
                if woke == Woke::Mail {
                    eprintln!("woke: {found:?}");
                }
            }
            Err(error) => eprintln!("{error}"),
        }
    }
}
