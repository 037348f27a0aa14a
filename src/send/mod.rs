//! Moving bytes: hands one finished message to the relay or to a maildir and
//! says what happened, as an [`Outcome`].
//!
//! This module knows nothing of events, people or the outbox. The scheduler
//! decides what to send and when, and records each outcome; retries and
//! backoff are its business too. What this module owns is the transport's
//! behaviour under failure: every SMTP send is bounded in time, in concurrent
//! connections and in rate ([`SmtpMailer`]), and every lettre error becomes
//! "retry later" or "give up" in one place, [`classify`].

mod maildir;
mod outgoing;
mod pause;
mod rate;
mod settings;
mod smtp;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;
use lettre::Message;

use crate::clock::{Clock, SystemClock};

pub use maildir::MaildirMailer;
pub use outgoing::{MarkerMismatch, Outgoing};
pub use settings::{Delivery, Security, SmtpSettings, Transport};
pub use smtp::SmtpMailer;

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The relay took the message, or it is in the maildir. `reply` is the
    /// server's final reply text, e.g. "250 2.0.0 Ok: queued as X".
    Delivered { reply: String },
    /// Not delivered; worth trying again later: a 4xx reply, a network
    /// error, a timeout, a dropped connection. After a timeout or a drop
    /// that follows the end of DATA the relay may in fact have taken the
    /// message, so a retry can deliver it twice; both copies carry the same
    /// Message-ID, so they can be recognised.
    Transient { reply: String },
    /// Never worth retrying as it is: a 5xx reply (the text includes the
    /// code), or a configuration problem on herald's side.
    Permanent { reply: String },
    /// Not sent, and not an attempt at this message: the relay cannot take
    /// any message (it stopped offering STARTTLS or AUTH), so sending to it
    /// is paused until `until`, when one send probes it again. `tried` says
    /// whether this send found the fault (talked to the relay), or only
    /// met the pause.
    Paused {
        reply: String,
        until: Timestamp,
        tried: bool,
    },
}

impl Outcome {
    /// The server's reply, or what went wrong, in words.
    pub fn reply(&self) -> &str {
        match self {
            Outcome::Delivered { reply }
            | Outcome::Transient { reply }
            | Outcome::Permanent { reply }
            | Outcome::Paused { reply, .. } => reply,
        }
    }

    pub fn is_delivered(&self) -> bool {
        matches!(self, Outcome::Delivered { .. })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Delivered { reply } => write!(f, "delivered: {reply}"),
            Outcome::Transient { reply } => write!(f, "failed, will retry: {reply}"),
            Outcome::Permanent { reply } => write!(f, "failed for good: {reply}"),
            Outcome::Paused { reply, until, .. } => {
                write!(f, "not sent, the relay is paused until {until}: {reply}")
            }
        }
    }
}

/// Why a mailer cannot be built from the `[delivery]` settings: settings
/// that cannot work or are unsafe. Nothing has been sent and no connection
/// opened.
///
/// `Display` says what is wrong, for the operator; the error underneath
/// (reading the CA file, lettre's TLS set-up), when there is one, is the
/// [`source`](std::error::Error::source), which anyhow's `{:#}` shows too.
#[derive(Debug)]
pub enum SetupError {
    /// The SMTP host is empty.
    EmptyHost,
    /// `max_connections` is zero.
    NoConnections,
    /// The SMTP timeout is zero.
    ZeroTimeout,
    /// `per_minute`, `per_hour` or `per_day` is zero.
    ZeroRate,
    /// A password would cross the network in clear.
    PlaintextPassword { username: String, host: String },
    /// A username with no password.
    NoPassword { username: String },
    /// The `ca_file` cannot be read.
    UnreadableCaFile { file: PathBuf, source: std::io::Error },
    /// The `ca_file` holds no PEM certificate.
    NoCertificate { file: PathBuf },
    /// lettre cannot use the `ca_file`'s certificates.
    UnusableCaFile {
        file: PathBuf,
        source: lettre::transport::smtp::Error,
    },
    /// lettre cannot set up TLS for the host.
    Tls {
        host: String,
        source: lettre::transport::smtp::Error,
    },
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::EmptyHost => f.write_str("the SMTP host is empty"),
            SetupError::NoConnections => f.write_str("max_connections must be at least 1"),
            SetupError::ZeroTimeout => f.write_str("the SMTP timeout must be longer than zero"),
            SetupError::ZeroRate => f.write_str(
                "per_minute, per_hour and per_day must be at least 1 (leave one out for no limit)",
            ),
            SetupError::PlaintextPassword { username, host } => write!(
                f,
                "refusing to send the password of {username:?} unencrypted to {host:?}: use security \"starttls\" or \"tls\", or set allow_plaintext_auth = true if you really mean it"
            ),
            SetupError::NoPassword { username } => {
                write!(
                    f,
                    "a username ({username:?}) is set but no password was given: set password_file, or run herald under systemd with the credential `smtp-password` (LoadCredential=)"
                )
            }
            SetupError::UnreadableCaFile { file, .. } => write!(f, "cannot read ca_file {}", file.display()),
            SetupError::NoCertificate { file } => {
                write!(f, "ca_file {} holds no PEM certificate", file.display())
            }
            SetupError::UnusableCaFile { file, .. } => write!(f, "ca_file {} is not usable", file.display()),
            SetupError::Tls { host, .. } => write!(f, "cannot set up TLS for {host}"),
        }
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SetupError::UnreadableCaFile { source, .. } => Some(source),
            SetupError::UnusableCaFile { source, .. } | SetupError::Tls { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The way messages leave herald, built once from the `[delivery]` settings
/// and shared by every send.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one Mailer per daemon, built once and shared: its size costs nothing"
)]
pub enum Mailer {
    Smtp(SmtpMailer),
    Maildir(MaildirMailer),
}

impl Mailer {
    /// Builds the transport once, on the system clock. Fails, saying why to
    /// the operator, on settings that cannot work or are unsafe.
    pub fn from_settings(delivery: &Delivery) -> Result<Mailer, SetupError> {
        Mailer::from_settings_with_clock(delivery, Arc::new(SystemClock))
    }

    /// As [`Mailer::from_settings`], with the clock that the rate limit and
    /// maildir file names read (a fast clock in rehearsals, a manual one in
    /// tests).
    pub fn from_settings_with_clock(
        delivery: &Delivery,
        clock: Arc<dyn Clock>,
    ) -> Result<Mailer, SetupError> {
        match &delivery.transport {
            Transport::Smtp(settings) => SmtpMailer::new(settings, clock).map(Mailer::Smtp),
            // A relative maildir is inside the state directory.
            Transport::Maildir(dir) => Ok(Mailer::Maildir(MaildirMailer::new(
                delivery.state_dir.join(dir),
                clock,
            ))),
        }
    }

    /// Sends one message to its one recipient. A message with several
    /// recipients is refused rather than fanned out: one rejected RCPT would
    /// fail them all, and the outbox tracks one recipient per row.
    ///
    /// Dropping the returned future (an outer timeout, shutdown) is safe:
    /// the connection it used is closed, not reused. Only a connection
    /// whose transaction succeeded is kept for the next send.
    pub async fn send(&self, message: &Message) -> Outcome {
        self.send_timed(&Outgoing::from(message)).await.0
    }

    /// [`Mailer::send`] for a message whose attachments are shared with
    /// other messages (see [`Outgoing`]), with when it left if the relay's
    /// limits made it wait for its turn (`None`: about now).
    pub async fn send_timed(&self, message: &Outgoing) -> (Outcome, Option<Timestamp>) {
        match self {
            Mailer::Smtp(mailer) => mailer.send(message).await,
            Mailer::Maildir(mailer) => (mailer.send(message).await, None),
        }
    }

    /// Closes the connections kept open between sends (SMTP); the
    /// scheduler calls this when nothing more is due.
    pub async fn release_idle(&self) {
        if let Mailer::Smtp(mailer) = self {
            mailer.release_idle().await;
        }
    }

    /// Refuses further sends; sends already under way finish. The daemon
    /// waits for those itself.
    pub async fn shutdown(&self) {
        match self {
            Mailer::Smtp(mailer) => mailer.shutdown().await,
            Mailer::Maildir(mailer) => mailer.shutdown(),
        }
    }

    /// Where mail goes, for logs and `herald check`: never the password.
    pub fn describe(&self) -> String {
        match self {
            Mailer::Smtp(mailer) => mailer.describe(),
            Mailer::Maildir(mailer) => mailer.describe(),
        }
    }

    /// Counts the messages the relay took before this mailer was made (the
    /// outbox's attempts of the last day), so that a restart or a reload
    /// keeps the minute's spacing and the day's count.
    pub fn seed_departures(&self, departures: Vec<Timestamp>) {
        if let Mailer::Smtp(mailer) = self {
            mailer.seed_departures(departures);
        }
    }

    /// Takes the relay's turns from `budget`, one budget for the nodes
    /// sharing a database (without limits, there is nothing to share).
    pub fn share_budget(&self, budget: std::sync::Arc<dyn crate::pace::SharedBudget>) {
        if let Mailer::Smtp(mailer) = self {
            mailer.share_budget(budget);
        }
    }

    /// How many messages the relay took in the last 24 hours, and its daily
    /// limit; `None` without one.
    pub fn day_used(&self) -> Option<(usize, usize)> {
        match self {
            Mailer::Smtp(mailer) => mailer.day_used(),
            Mailer::Maildir(_) => None,
        }
    }

    /// How many messages (at most `max`) the relay's limits let leave
    /// within `span` from now; `None` without limits.
    pub fn turns_within(&self, span: jiff::SignedDuration, max: usize) -> Option<usize> {
        match self {
            Mailer::Smtp(mailer) => mailer.turns_within(span, max),
            Mailer::Maildir(_) => None,
        }
    }

    /// How long until the relay's limits let the next message leave; `None`
    /// without limits.
    pub fn next_turn_in(&self) -> Option<jiff::SignedDuration> {
        match self {
            Mailer::Smtp(mailer) => mailer.next_turn_in(),
            Mailer::Maildir(_) => None,
        }
    }

    /// Whether what is due may have to wait for the relay's limits.
    pub fn is_limited(&self) -> bool {
        matches!(self, Mailer::Smtp(mailer) if mailer.is_limited())
    }
}

/// Refuses a message that is not for exactly one recipient.
fn one_recipient(message: &Outgoing) -> Result<(), Outcome> {
    match message.envelope().to().len() {
        1 => Ok(()),
        n => Err(Outcome::Permanent {
            reply: format!(
                "not sent: herald sends each message to one recipient, and this one has {n} (To, Cc and Bcc together)"
            ),
        }),
    }
}

/// The single place that maps a lettre error to an outcome.
///
/// The rule is Stalwart's: a reply decides by its own class (5xx permanent,
/// 4xx transient); anything that went wrong on the way (network, dropped or
/// garbled replies, timeouts, TLS) is transient; and a refusal by lettre
/// itself (no 8BITMIME or SMTPUTF8 for this message) is permanent, because
/// retrying cannot help until the configuration changes. The refusals that
/// concern the relay rather than the message (no STARTTLS, no AUTH
/// mechanism in common) never reach here: the SMTP mailer pauses the relay
/// for them ([`Outcome::Paused`]).
pub fn classify(error: &lettre::transport::smtp::Error) -> Outcome {
    if let Some(code) = error.status() {
        // lettre keeps the reply's text (every line, joined) as the error's
        // source; the code itself only in `status()`.
        let text = std::error::Error::source(error)
            .map(ToString::to_string)
            .unwrap_or_default();
        let reply = if text.is_empty() {
            code.to_string()
        } else {
            format!("{code} {text}")
        };
        return if error.is_permanent() {
            Outcome::Permanent { reply }
        } else {
            Outcome::Transient { reply }
        };
    }
    if error.is_client() {
        return Outcome::Permanent {
            reply: format!(
                "configuration problem, not retried: {error}{}",
                client_hint(error)
            ),
        };
    }
    let reply = if error.is_timeout() {
        format!("timed out: {error}")
    } else if error.is_tls() {
        format!("TLS problem: {error}")
    } else if error.is_transport_shutdown() {
        format!("not sent: {error}")
    } else if error.to_string().contains("certificate") {
        // A failed TLS handshake shows up as a connection error.
        format!("{error} (is the host name right? For a relay with a private CA, set ca_file)")
    } else {
        // Response errors ("incomplete response" when the relay hangs up),
        // network and connection errors; lettre's text names which.
        error.to_string()
    };
    Outcome::Transient { reply }
}

/// What the operator can do about a refusal by lettre, when it is one we
/// know. lettre's texts are matched loosely: an unknown one gets no hint.
fn client_hint(error: &lettre::transport::smtp::Error) -> &'static str {
    let text = error.to_string();
    if text.contains("authentication mechanism") {
        " (the relay offers no AUTH mechanism herald can use: PLAIN or LOGIN)"
    } else if text.contains("STARTTLS") {
        " (the relay does not offer STARTTLS, which security = \"starttls\" requires)"
    } else if text.contains("8BITMIME") {
        " (the relay does not take 8-bit message bodies)"
    } else if text.contains("SMTPUTF8") {
        " (the relay does not take non-ASCII addresses)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    //! One test per arm of [`classify`], each on a real lettre error: the
    //! client talks to a scripted peer over an in-memory pipe, so no socket
    //! is needed except for the connection-refused arm.

    use std::io;
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use lettre::Address;
    use lettre::address::Envelope;
    use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, Certificate};
    use lettre::transport::smtp::extension::ClientId;
    use tokio::io::{
        AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream, ReadBuf,
    };

    use super::*;

    /// The client's end of the pipe, or a stream whose reads fail with
    /// `failure`.
    #[derive(Debug)]
    struct Pipe {
        stream: DuplexStream,
        failure: Option<io::ErrorKind>,
    }

    impl AsyncRead for Pipe {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            match this.failure {
                Some(kind) => Poll::Ready(Err(io::Error::new(kind, "read failed on purpose"))),
                None => Pin::new(&mut this.stream).poll_read(cx, buf),
            }
        }
    }

    impl AsyncWrite for Pipe {
        fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
        }
        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().stream).poll_flush(cx)
        }
        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
        }
    }

    impl AsyncTokioStream for Pipe {
        fn peer_addr(&self) -> io::Result<SocketAddr> {
            Ok(SocketAddr::from(([127, 0, 0, 1], 25)))
        }
    }

    /// Plays a server: the greeting, then one reply per command received
    /// (the body after a 354 is read up to its final dot), then hangs up.
    async fn play(peer: DuplexStream, script: &'static [&'static str]) {
        let mut peer = BufReader::new(peer);
        let mut line = String::new();
        let mut in_data = false;
        for (n, reply) in script.iter().enumerate() {
            if n > 0 {
                loop {
                    line.clear();
                    if peer.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if !in_data || line == ".\r\n" {
                        break;
                    }
                }
            }
            in_data = reply.starts_with("354");
            if peer.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    /// Connects lettre to a peer playing `script` and sends `body`; with
    /// `script_first`, only once the peer has played it all and hung up.
    async fn send_to(
        script: &'static [&'static str],
        body: &str,
        script_first: bool,
    ) -> lettre::transport::smtp::Error {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(play(server, script));
        let pipe = Pipe {
            stream: client,
            failure: None,
        };
        let hello = ClientId::Domain("herald.test".into());
        let conversation = async {
            let mut connection = AsyncSmtpConnection::connect_with_transport(Box::new(pipe), &hello).await?;
            if script_first {
                let _ = server.await;
            }
            connection.send(&envelope(), body.as_bytes()).await.map(|_| ())
        };
        // A script that does not match what lettre sends fails, not hangs.
        let result = tokio::time::timeout(std::time::Duration::from_secs(5), conversation)
            .await
            .expect("the scripted conversation hung");
        match result {
            Err(error) => error,
            Ok(()) => panic!("the send succeeded, but the script should make it fail"),
        }
    }

    fn envelope() -> Envelope {
        let from: Address = "herald@example.org".parse().unwrap();
        let to: Address = "fp@example.net".parse().unwrap();
        Envelope::new(Some(from), vec![to]).unwrap()
    }

    const EHLO: &str = "250-relay.test\r\n250-8BITMIME\r\n250 SIZE 1000000\r\n";

    #[tokio::test]
    async fn a_5xx_reply_is_permanent_and_keeps_code_and_text() {
        let error = send_to(
            &[
                "220 relay.test\r\n",
                EHLO,
                "250 2.1.0 Ok\r\n",
                "550 5.1.1 <fp@example.net>: Recipient address rejected\r\n",
            ],
            "Subject: x\r\n\r\nhello\r\n",
            false,
        )
        .await;
        assert_eq!(
            classify(&error),
            Outcome::Permanent {
                reply: "550 5.1.1 <fp@example.net>: Recipient address rejected".into()
            }
        );
    }

    #[tokio::test]
    async fn a_4xx_reply_is_transient_and_multiline_replies_are_joined() {
        let error = send_to(
            &[
                "220 relay.test\r\n",
                EHLO,
                "250 2.1.0 Ok\r\n",
                "250 2.1.5 Ok\r\n",
                "354 go ahead\r\n",
                "452-4.3.1 Insufficient\r\n452 4.3.1 system storage\r\n",
            ],
            "Subject: x\r\n\r\nhello\r\n",
            false,
        )
        .await;
        assert_eq!(
            classify(&error),
            Outcome::Transient {
                reply: "452 4.3.1 Insufficient system storage".into()
            }
        );
    }

    #[tokio::test]
    async fn a_refusal_by_lettre_itself_is_a_permanent_configuration_problem() {
        // No 8BITMIME offered, and the body is 8-bit: lettre will not send.
        let error = send_to(
            &["220 relay.test\r\n", "250 relay.test\r\n"],
            "Subject: x\r\n\r\nréunion\r\n",
            false,
        )
        .await;
        assert!(error.is_client());
        let outcome = classify(&error);
        assert!(
            matches!(&outcome, Outcome::Permanent { reply } if reply.starts_with("configuration problem") && reply.contains("8-bit")),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_hang_up_before_the_reply_is_transient() {
        // The peer reads MAIL and hangs up without replying.
        let error = send_to(
            &["220 relay.test\r\n", EHLO, ""],
            "Subject: x\r\n\r\nhello\r\n",
            false,
        )
        .await;
        assert!(error.is_response(), "{error:?}");
        assert_eq!(
            classify(&error),
            Outcome::Transient {
                reply: "response error: incomplete response".into()
            }
        );
    }

    #[tokio::test]
    async fn a_network_error_is_transient() {
        // The peer is gone before MAIL is written: the write fails.
        let error = send_to(&["220 relay.test\r\n", EHLO], "Subject: x\r\n\r\nhello\r\n", true).await;
        let outcome = classify(&error);
        assert!(
            matches!(&outcome, Outcome::Transient { reply } if reply.starts_with("network error")),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient() {
        // A port that was just free on loopback: nothing listens there.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let hello = ClientId::Domain("herald.test".into());
        let error = AsyncSmtpConnection::connect_tokio1(("127.0.0.1", port), None, &hello, None, None)
            .await
            .err()
            .expect("nothing listens there");
        let outcome = classify(&error);
        assert!(
            matches!(&outcome, Outcome::Transient { reply } if reply.starts_with("Connection error")),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_timeout_is_transient() {
        let (client, _server) = tokio::io::duplex(1024);
        let pipe = Pipe {
            stream: client,
            failure: Some(io::ErrorKind::TimedOut),
        };
        let hello = ClientId::Domain("herald.test".into());
        let error = AsyncSmtpConnection::connect_with_transport(Box::new(pipe), &hello)
            .await
            .err()
            .expect("reads fail");
        assert!(error.is_timeout());
        let outcome = classify(&error);
        assert!(
            matches!(&outcome, Outcome::Transient { reply } if reply.starts_with("timed out")),
            "{outcome:?}"
        );
    }

    #[test]
    fn a_tls_error_is_transient() {
        let pem = b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n";
        let error = Certificate::from_pem(pem).expect_err("garbage is not a certificate");
        assert!(error.is_tls());
        let outcome = classify(&error);
        assert!(
            matches!(&outcome, Outcome::Transient { reply } if reply.starts_with("TLS problem")),
            "{outcome:?}"
        );
    }

    #[test]
    fn outcomes_read_well_in_a_log() {
        let outcome = Outcome::Transient {
            reply: "451 4.3.0 Try again later".into(),
        };
        assert_eq!(
            outcome.to_string(),
            "failed, will retry: 451 4.3.0 Try again later"
        );
        assert_eq!(outcome.reply(), "451 4.3.0 Try again later");
        assert!(!outcome.is_delivered());
    }
}
