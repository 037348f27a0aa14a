//! Delivery to an SMTP relay through lettre's async SMTP client, with the
//! guard rails lettre leaves to its caller.
//!
//! herald drives lettre's `AsyncSmtpConnection` itself rather than through
//! `AsyncSmtpTransport`, for two reasons:
//!
//! - **TCP_NODELAY.** lettre writes a message's body and then the final
//!   `\r\n.\r\n` as a second small write, and never turns off Nagle's
//!   algorithm; with the relay's delayed ACK that stalls every message by
//!   about 40 ms (measured: ~46 ms a send on loopback, which capped herald at
//!   ~90 messages a second with 4 connections). herald opens the TCP
//!   connection itself, with `set_nodelay(true)`, and hands it to lettre.
//! - **Reuse without lettre's pool.** lettre's pool puts a connection whose
//!   send was dropped mid-way back in the pool, desynchronised (deps.md P2),
//!   so the `pool` feature stays off. Instead each connection slot keeps the
//!   connection of its last *successful* send for the next one. Before it is
//!   used again herald looks at its socket without a round trip: a relay
//!   that closed it while idle has left an end of file (or a 421) there.
//!   (It was an RSET each time; that round trip cost about a tenth of the
//!   throughput.) Implicit TLS, whose socket lettre holds, still probes with
//!   RSET.
//!   A connection is only ever put back by code that runs after a complete,
//!   successful transaction: a send that failed, timed out or was cancelled
//!   drops its connection with the future that owned it. Idle connections
//!   are closed with QUIT when the scheduler has nothing more due
//!   ([`SmtpMailer::release_idle`]), so an idle daemon holds none open.
//!
//! Around each send this file adds what lettre lacks: a timeout on the whole
//! conversation (lettre's own covers only the connect, P1), a cap on
//! concurrent connections (P4), and the relay's rate limit. Retrying is the
//! scheduler's business.
//!
//! Implicit TLS (`security = "tls"`) goes through lettre's own connect,
//! which sets no TCP_NODELAY, so it still pays the ~40 ms per message on a
//! fresh connection; STARTTLS and plain connections do not.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use tokio::sync::Semaphore;

use super::pause::{RelayPause, Turn};
use super::rate::RateLimit;
use super::{Outcome, Outgoing, SetupError, classify, client_hint, one_recipient};
use crate::clock::Clock;
use crate::send::{Security, SmtpSettings};

/// How the connection is secured, with lettre's TLS settings.
enum Secure {
    None,
    StartTls(TlsParameters),
    Tls(TlsParameters),
}

/// Sends through one relay, built once from the settings and shared by all
/// sends.
pub struct SmtpMailer {
    host: String,
    port: u16,
    secure: Secure,
    credentials: Option<Credentials>,
    hello: ClientId,
    /// "smtp://host:port (security)", for logs and timeout messages.
    endpoint: String,
    /// Bounds a whole send: connect, TLS, AUTH, the transaction (and the
    /// RSET probing a reused implicit-TLS connection).
    timeout: Duration,
    /// One permit per connection the relay lets us open at once. Closed at
    /// shutdown, which turns away later sends.
    connections: Semaphore,
    /// Connections whose last transaction succeeded, ready for the next
    /// send; never more than `max_connections`, as each belongs to a permit
    /// that has been given back.
    idle: Mutex<Vec<Idle>>,
    rate: Option<RateLimit>,
    /// Set when the relay cannot take any message (see [`RelayPause`]).
    pause: RelayPause,
    clock: Arc<dyn Clock>,
}

/// A connection whose last transaction succeeded, kept for the next send.
struct Idle {
    connection: AsyncSmtpConnection,
    /// The same socket, to look at without disturbing lettre; `None` for
    /// implicit TLS, whose socket lettre opens.
    probe: Option<std::net::TcpStream>,
}

impl Idle {
    /// Whether the relay has left the connection open, as far as can be
    /// told before the next command. The socket is non-blocking (tokio made
    /// it so), so a peek returns at once: nothing to read means open; an
    /// end of file, a reply nobody asked for (a relay says 421 before it
    /// hangs up) or an error means closed. Without a socket to look at,
    /// RSET asks the relay.
    async fn is_open(&mut self) -> bool {
        match &self.probe {
            Some(socket) => matches!(
                socket.peek(&mut [0u8; 1]),
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock
            ),
            None => self.connection.command(Rset).await.is_ok() && !self.connection.has_broken(),
        }
    }
}

impl SmtpMailer {
    /// Checks the settings. Nothing is sent and no connection is opened yet.
    pub fn new(settings: &SmtpSettings, clock: Arc<dyn Clock>) -> Result<SmtpMailer, SetupError> {
        let host = settings.host.trim();
        if host.is_empty() {
            return Err(SetupError::EmptyHost);
        }
        if settings.max_connections == 0 {
            return Err(SetupError::NoConnections);
        }
        if settings.timeout.is_zero() {
            return Err(SetupError::ZeroTimeout);
        }
        if [settings.per_minute, settings.per_hour, settings.per_day].contains(&Some(0)) {
            return Err(SetupError::ZeroRate);
        }
        // The config loader refuses this too; a mailer built some other way
        // must not leak a password either.
        if let Some(username) = &settings.username
            && settings.security == Security::None
            && !settings.allow_plaintext_auth
            && !is_loopback(host)
        {
            return Err(SetupError::PlaintextPassword {
                username: username.clone(),
                host: host.to_owned(),
            });
        }

        let secure = match settings.security {
            Security::Tls => Secure::Tls(tls_parameters(host, settings)?),
            Security::StartTls => Secure::StartTls(tls_parameters(host, settings)?),
            Security::None => Secure::None,
        };
        let credentials = match (&settings.username, &settings.password) {
            (Some(username), Some(password)) => Some(Credentials::new(username.clone(), password.clone())),
            (Some(username), None) => {
                return Err(SetupError::NoPassword {
                    username: username.clone(),
                });
            }
            // A password with no username (say, a stray systemd credential)
            // is not used: there is nobody to log in as.
            (None, _) => None,
        };

        let security = match settings.security {
            Security::Tls => "tls",
            Security::StartTls => "starttls",
            Security::None => "none",
        };
        let shown_host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        Ok(SmtpMailer {
            host: host.trim_start_matches('[').trim_end_matches(']').to_owned(),
            port: settings.port,
            secure,
            credentials,
            hello: ClientId::default(),
            endpoint: format!("smtp://{shown_host}:{} ({security})", settings.port),
            timeout: settings.timeout,
            connections: Semaphore::new(settings.max_connections),
            idle: Mutex::new(Vec::new()),
            rate: RateLimit::new(settings.limits()),
            pause: RelayPause::default(),
            clock,
        })
    }

    /// Sends one message; see [`super::Mailer::send_timed`].
    pub async fn send(&self, message: &Outgoing) -> (Outcome, Option<Timestamp>) {
        if let Err(refused) = one_recipient(message) {
            return (refused, None);
        }
        // A paused relay is not tried; after the pause, one send probes it.
        let probe = match self.pause.turn(|| self.clock.now()).await {
            Turn::Send => None,
            Turn::Probe(guard) => Some(guard),
            Turn::Wait { until, reply } => {
                let paused = Outcome::Paused {
                    reply,
                    until,
                    tried: false,
                };
                return (paused, None);
            }
        };
        let (outcome, left_at) = self.send_once(message).await;
        // The probe's send ended otherwise than in a relay fault: the pause
        // is over (a network error, say, is retried message by message).
        if probe.is_some() && !matches!(outcome, Outcome::Paused { .. }) {
            self.pause.resume();
        }
        (outcome, left_at)
    }

    /// One send, the relay not paused (or probed), and when it left, if
    /// the relay's limits made it wait for its turn.
    async fn send_once(&self, message: &Outgoing) -> (Outcome, Option<Timestamp>) {
        // Held until the connection is closed or back among the idle ones,
        // or until this future is dropped, which closes the connection too.
        let Ok(_permit) = self.connections.acquire().await else {
            let closed = Outcome::Transient {
                reply: "not sent: herald is shutting down".into(),
            };
            return (closed, None);
        };
        // After the permit, so that sends stuck behind a slow relay cannot
        // bank turns and then leave all at once. The wait goes through the
        // clock, so a rehearsal's clock steps through it.
        let left_at = match &self.rate {
            Some(rate) => {
                let turn = match rate.shared(&*self.clock) {
                    // A database across the network: not on the worker.
                    Some((budget, limits, now)) => {
                        match tokio::task::spawn_blocking(move || budget.take_turn(&limits, now)).await {
                            Ok(Ok(Some(at))) => rate.take_at(&*self.clock, at),
                            Ok(Ok(None)) => rate.reserve(&*self.clock),
                            Ok(Err(why)) => {
                                tracing::warn!(%why, "the relay's shared budget cannot be read; counting this node's sends alone");
                                rate.reserve(&*self.clock)
                            }
                            Err(_) => rate.reserve(&*self.clock),
                        }
                    }
                    None => rate.reserve(&*self.clock),
                };
                let delay = self.clock.real_delay_until(turn.until);
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Some(turn_on_the_wall_clock(&*self.clock, turn.until))
            }
            None => None,
        };
        (self.transaction_outcome(message).await, left_at)
    }

    /// The outcome of one transaction, within the timeout.
    async fn transaction_outcome(&self, message: &Outgoing) -> Outcome {
        // Rehearsals redirect in the message's envelope (render::message).
        let envelope = message.envelope();
        match tokio::time::timeout(self.timeout, self.transaction(envelope, message)).await {
            Ok(Ok(response)) => Outcome::Delivered {
                reply: reply_text(&response),
            },
            Ok(Err(Failure::Smtp(error))) => classify(&error),
            Ok(Err(Failure::Relay(error))) => {
                let reply = format!(
                    "the relay cannot take any message now, so sending is paused: {error}{}",
                    client_hint(&error)
                );
                let until = self.pause.fault(&reply, self.clock.now());
                Outcome::Paused {
                    reply,
                    until,
                    tried: true,
                }
            }
            // Worded like lettre's own connection errors.
            Ok(Err(Failure::Connect(error))) => Outcome::Transient {
                reply: format!("Connection error: {error}"),
            },
            // Also the rare relay that takes the message and then never
            // answers: a retry then delivers it twice, with the same
            // Message-ID.
            Err(_elapsed) => Outcome::Transient {
                reply: format!(
                    "timed out after {:?} talking to {}; the relay may or may not have taken the message",
                    self.timeout, self.endpoint
                ),
            },
        }
    }

    /// One transaction, on an idle connection if there is one the relay
    /// has not closed, else on a new one. The connection goes back to the
    /// idle ones only after a successful transaction; on an error it is
    /// closed, and if this future is dropped it is dropped with it.
    async fn transaction(&self, envelope: &Envelope, message: &Outgoing) -> Result<Response, Failure> {
        let reused = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut idle = match reused {
            Some(mut idle) => {
                if idle.is_open().await {
                    idle
                } else {
                    // Closed by the relay while idle, say: start afresh.
                    idle.connection.abort().await;
                    self.connect().await?
                }
            }
            None => self.connect().await?,
        };
        // lettre aborts (QUIT and close) the connection on any error, and
        // so does `send_in_pieces`.
        let ascii_addresses = envelope
            .from()
            .into_iter()
            .chain(envelope.to())
            .all(|address| AsRef::<str>::as_ref(address).is_ascii());
        let response = if !ascii_addresses || !message.pieces().all(<[u8]>::is_ascii) {
            // lettre's own checks and SMTPUTF8 parameter; herald's messages
            // are ASCII (lettre encodes every part), so only an address can
            // bring this path.
            idle.connection.send(envelope, &message.to_bytes()).await?
        } else {
            send_in_pieces(&mut idle.connection, envelope, message).await?
        };
        if !idle.connection.has_broken() {
            self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(idle);
        }
        Ok(response)
    }

    /// Opens a connection: TCP with TCP_NODELAY, TLS, EHLO, AUTH.
    async fn connect(&self) -> Result<Idle, Failure> {
        let mut probe = None;
        let mut connection = match &self.secure {
            // lettre's own connect, so that its TLS set-up wraps the socket
            // before the greeting; it leaves Nagle on.
            Secure::Tls(tls) => {
                AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    Some(self.timeout),
                    &self.hello,
                    Some(tls.clone()),
                    None,
                )
                .await?
            }
            Secure::None | Secure::StartTls(_) => {
                let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                    .await
                    .map_err(Failure::Connect)?;
                stream.set_nodelay(true).map_err(Failure::Connect)?;
                // A second handle on the same socket, kept to look at it
                // while the connection is idle (lettre owns the first).
                let stream = stream.into_std().map_err(Failure::Connect)?;
                probe = Some(stream.try_clone().map_err(Failure::Connect)?);
                let stream = tokio::net::TcpStream::from_std(stream).map_err(Failure::Connect)?;
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello).await?
            }
        };
        if let Secure::StartTls(tls) = &self.secure {
            // Required: a relay that does not offer STARTTLS gets nothing,
            // least of all the password.
            connection
                .starttls(tls.clone(), &self.hello)
                .await
                .map_err(Failure::of_relay)?;
        }
        if let Some(credentials) = &self.credentials {
            connection
                .auth(DEFAULT_MECHANISMS, credentials)
                .await
                .map_err(Failure::of_relay)?;
        }
        Ok(Idle { connection, probe })
    }

    /// Closes the idle connections with QUIT: the scheduler calls this when
    /// nothing more is due, so that an idle daemon holds no connection.
    pub async fn release_idle(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        for mut idle in idle {
            // The connection is dropped either way: a relay that does not
            // answer QUIT in time loses nothing.
            let _ = tokio::time::timeout(self.timeout, idle.connection.quit()).await;
        }
    }

    /// Turns away later sends; those under way finish.
    pub async fn shutdown(&self) {
        self.connections.close();
        self.release_idle().await;
    }

    pub fn describe(&self) -> String {
        self.endpoint.clone()
    }

    /// Takes the relay's turns from `budget`, shared with other nodes.
    pub fn share_budget(&self, budget: Arc<dyn crate::pace::SharedBudget>) {
        if let Some(rate) = &self.rate {
            rate.share(budget);
        }
    }

    /// Counts the messages the relay took before this mailer was made (the
    /// outbox's record of the last day); nothing to do with no limit.
    pub fn seed_departures(&self, departures: Vec<Timestamp>) {
        if let Some(rate) = &self.rate {
            rate.seed(&*self.clock, departures);
        }
    }

    /// How many messages left in the last 24 hours, and the daily limit;
    /// `None` without one.
    pub fn day_used(&self) -> Option<(usize, usize)> {
        self.rate.as_ref().and_then(|rate| rate.day_used(&*self.clock))
    }

    /// How many messages (at most `max`) the relay's limits let leave
    /// within `span` from now; `None` without limits.
    pub fn turns_within(&self, span: jiff::SignedDuration, max: usize) -> Option<usize> {
        self.rate
            .as_ref()
            .map(|rate| rate.turns_within(&*self.clock, span, max))
    }

    /// How long until the relay's limits let the next message leave;
    /// `None` without limits.
    pub fn next_turn_in(&self) -> Option<jiff::SignedDuration> {
        self.rate.as_ref().map(|rate| rate.next_turn_in(&*self.clock))
    }

    /// Whether the relay has limits at all.
    pub fn is_limited(&self) -> bool {
        self.rate.is_some()
    }
}

/// The wall clock's reading when the monotonic clock read `until`: when a
/// send whose turn it was left. Not simply "now": on a rehearsal's stepping
/// clock, the waits of the sends behind it may have moved the clock on
/// already, and its history would show two sends at once.
fn turn_on_the_wall_clock(clock: &dyn Clock, until: Duration) -> Timestamp {
    let (now, monotonic) = (clock.now(), clock.monotonic());
    let since =
        jiff::SignedDuration::try_from(monotonic.saturating_sub(until)).unwrap_or(jiff::SignedDuration::MAX);
    now.checked_sub(since).unwrap_or(now)
}

/// How much of a message lettre is handed at a time (see [`send_in_pieces`]).
const PIECE: usize = 64 * 1024;

/// lettre's `send` for an ASCII message to ASCII addresses (MAIL, RCPT,
/// DATA, the message), with the message handed over in pieces: its own
/// bytes and its shared attachments as they are (see [`Outgoing`]), each
/// in pieces of at most [`PIECE`].
/// lettre's transparency (doubling a dot that starts a line) copies what
/// it is given into a buffer of the same size, so one piece is a second
/// copy of the whole message per connection: 2.7 MB more for each of
/// `max_connections` when a 2 MB file is attached. Its state carries over
/// from piece to piece. On any error the connection is aborted, as lettre
/// does.
async fn send_in_pieces(
    connection: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    message: &Outgoing,
) -> Result<Response, lettre::transport::smtp::Error> {
    let result = async {
        connection
            .command(Mail::new(envelope.from().cloned(), Vec::new()))
            .await?;
        for recipient in envelope.to() {
            connection
                .command(Rcpt::new(recipient.clone(), Vec::new()))
                .await?;
        }
        connection.command(Data).await?;
        connection
            .message_iter(message.pieces().flat_map(|piece| piece.chunks(PIECE)))
            .await
    }
    .await;
    if result.is_err() {
        connection.abort().await;
    }
    result
}

/// Why a transaction failed: lettre's error, or the TCP connect that herald
/// makes itself (lettre's error type cannot be built outside lettre).
enum Failure {
    Smtp(lettre::transport::smtp::Error),
    Connect(std::io::Error),
    /// lettre refused to go on with this relay before any message: it does
    /// not offer STARTTLS, or no AUTH mechanism herald can use. No message
    /// can go through it until that changes, so it is paused.
    Relay(lettre::transport::smtp::Error),
}

impl Failure {
    /// An error of STARTTLS or AUTH: lettre's own refusal is the relay's
    /// fault; a reply (a 5xx to AUTH, say) or a network error is not.
    fn of_relay(error: lettre::transport::smtp::Error) -> Failure {
        if error.is_client() {
            Failure::Relay(error)
        } else {
            Failure::Smtp(error)
        }
    }
}

impl From<lettre::transport::smtp::Error> for Failure {
    fn from(error: lettre::transport::smtp::Error) -> Failure {
        Failure::Smtp(error)
    }
}

impl fmt::Debug for SmtpMailer {
    // By hand: the transport's settings hold the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

/// The TLS settings for `host`: the system's roots, plus those of
/// `ca_file` for a relay with a certificate from a private CA.
fn tls_parameters(host: &str, settings: &SmtpSettings) -> Result<TlsParameters, SetupError> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(file) = &settings.ca_file {
        let pem = std::fs::read(file).map_err(|source| SetupError::UnreadableCaFile {
            file: file.clone(),
            source,
        })?;
        // lettre would accept a file with no certificate in it, silently.
        if !pem
            .windows(27)
            .any(|window| window == b"-----BEGIN CERTIFICATE-----")
        {
            return Err(SetupError::NoCertificate { file: file.clone() });
        }
        let certificate = Certificate::from_pem(&pem).map_err(|source| SetupError::UnusableCaFile {
            file: file.clone(),
            source,
        })?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build().map_err(|source| SetupError::Tls {
        host: host.to_owned(),
        source,
    })
}

/// "250 2.0.0 Ok: queued as X": the code and every line of the reply.
fn reply_text(response: &Response) -> String {
    let lines: Vec<&str> = response.message().collect();
    format!("{} {}", response.code(), lines.join(" "))
        .trim_end()
        .to_owned()
}

/// The same test as the config loader's: a password may cross loopback in
/// clear, nothing else. (Duplicated so that `send` does not depend on
/// `config`.)
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    fn settings(security: Security) -> SmtpSettings {
        SmtpSettings {
            host: "relay.example.org".into(),
            port: 587,
            security,
            username: Some("secretariat".into()),
            password: Some("hunter2-not-for-logs".into()),
            allow_plaintext_auth: false,
            ca_file: None,
            timeout: Duration::from_secs(30),
            max_connections: 2,
            per_minute: Some(60),
            per_hour: None,
            per_day: None,
            max_early: jiff::SignedDuration::from_mins(30),
        }
    }

    /// Builds a mailer, or says why not, with every cause.
    fn build(settings: &SmtpSettings) -> Result<SmtpMailer, String> {
        SmtpMailer::new(settings, Arc::new(SystemClock))
            .map_err(|error| format!("{:#}", anyhow::Error::from(error)))
    }

    #[test]
    fn describe_names_the_relay_and_never_the_password() {
        let mailer = build(&settings(Security::StartTls)).unwrap();
        assert_eq!(mailer.describe(), "smtp://relay.example.org:587 (starttls)");
        let debug = format!("{mailer:?}");
        assert!(!debug.contains("hunter2"), "{debug}");

        let mut tls = settings(Security::Tls);
        tls.port = 465;
        let mailer = SmtpMailer::new(&tls, Arc::new(SystemClock)).unwrap();
        assert_eq!(mailer.describe(), "smtp://relay.example.org:465 (tls)");
    }

    #[test]
    fn a_password_never_crosses_the_network_in_clear() {
        let error = build(&settings(Security::None)).unwrap_err();
        assert!(error.starts_with("refusing to send the password"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");

        // Allowed when asked for, and on loopback.
        let mut allowed = settings(Security::None);
        allowed.allow_plaintext_auth = true;
        assert!(build(&allowed).is_ok());
        for host in ["localhost", "127.0.0.1", "::1", "[::1]"] {
            let mut local = settings(Security::None);
            local.host = host.into();
            assert!(build(&local).is_ok(), "{host}");
        }
        // And no password, no problem.
        let mut anonymous = settings(Security::None);
        anonymous.username = None;
        anonymous.password = None;
        assert!(build(&anonymous).is_ok());
    }

    #[test]
    fn settings_that_cannot_work_are_refused() {
        type Change = fn(&mut SmtpSettings);
        let cases: [(Change, &str); 5] = [
            (|s| s.max_connections = 0, "max_connections must be at least 1"),
            (|s| s.per_day = Some(0), "per_day must be at least 1"),
            (|s| s.timeout = Duration::ZERO, "timeout must be longer than zero"),
            (|s| s.password = None, "no password was given"),
            (
                |s| s.ca_file = Some("/nonexistent/herald-ca.pem".into()),
                "cannot read ca_file /nonexistent/herald-ca.pem",
            ),
        ];
        for (change, expected) in cases {
            let mut settings = settings(Security::StartTls);
            change(&mut settings);
            let error = build(&settings).unwrap_err();
            assert!(error.contains(expected), "{error:?} should say {expected:?}");
        }
    }

    #[test]
    fn an_unreadable_ca_file_names_the_file_and_the_cause_once() {
        let mut settings = settings(Security::StartTls);
        settings.ca_file = Some("/nonexistent/herald-ca.pem".into());
        let error = SmtpMailer::new(&settings, Arc::new(SystemClock)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot read ca_file /nonexistent/herald-ca.pem"
        );
        let shown = format!("{:#}", anyhow::Error::from(error));
        assert_eq!(shown.matches("No such file or directory").count(), 1, "{shown}");
    }

    #[test]
    fn a_ca_file_without_a_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, "this is not a certificate\n").unwrap();
        let mut settings = settings(Security::Tls);
        settings.ca_file = Some(file);
        let error = build(&settings).unwrap_err();
        assert!(error.ends_with("holds no PEM certificate"), "{error}");
    }

    #[test]
    fn replies_keep_code_and_every_line() {
        use lettre::transport::smtp::response::{Category, Code, Detail, Severity};
        let code = Code::new(Severity::PositiveCompletion, Category::MailSystem, Detail::Zero);
        let response = Response::new(code, vec!["2.0.0 Ok: queued as 4Xy".into(), "thanks".into()]);
        assert_eq!(reply_text(&response), "250 2.0.0 Ok: queued as 4Xy thanks");
    }
}
