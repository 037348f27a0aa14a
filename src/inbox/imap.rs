//! The inbox as an IMAP account (async-imap over tokio-rustls).
//!
//! One connection, opened at the first fetch: TLS (or STARTTLS, which is
//! then required), LOGIN, SELECT of the folder. `fetch_new` runs `UID
//! SEARCH UNSEEN UNDELETED`, reads each message's size, then the bytes of
//! those within the limit with `BODY.PEEK[]` (which leaves them unseen:
//! only `done` marks a message seen). `done` sets `\Seen` and moves the
//! message to the processed folder (`UID MOVE`, or `COPY`, `\Deleted` and
//! `UID EXPUNGE` where MOVE is not offered), creating the folder if
//! missing; nothing is ever expunged that was not copied first.
//!
//! A message is named by the folder's UIDVALIDITY and its UID: if the
//! server renumbers the folder, a reference from before is refused rather
//! than applied to another message.
//!
//! Between fetches the connection IDLEs (RFC 2177), re-issued every
//! [`IDLE_RENEW`] as chatmail does, so a dead connection is noticed; a
//! server without IDLE is polled. async-imap puts no timeout on any command
//! but IDLE, and a command abandoned half-way leaves its reply to be taken
//! for the next one's (deps-wave2 W1): every command here runs under the
//! `timeout` setting, and any failure or timeout drops the connection. The
//! next try comes after a backoff (1 s, doubling to [`MAX_BACKOFF`]),
//! measured on the clock's monotonic time; the error says when. Unsolicited
//! responses may be dropped by async-imap (W2), so nothing relies on them:
//! every wake is followed by a new search.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::{Client, Session};
use futures_util::TryStreamExt;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::settings::ImapSettings;
use super::source::{FETCH_BATCH, Fetched, MessageRef, Place, SourceError, Woke, brief_duration};
use crate::clock::Clock;
use crate::send::Security;

/// How long one IDLE lasts before it is renewed (chatmail's choice; RFC 2177
/// asks for less than 29 minutes). Renewing checks that the connection is
/// alive, and is followed by a new search.
pub const IDLE_RENEW: Duration = Duration::from_secs(5 * 60);

/// The first wait after a failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);

/// An IMAP inbox.
pub struct ImapSource {
    settings: ImapSettings,
    processed: String,
    unreadable: String,
    poll: Duration,
    clock: Arc<dyn Clock>,
    connection: Option<Connection>,
    /// The TLS settings, built at the first connection.
    tls: Option<TlsConnector>,
    /// The current backoff, the monotonic instant of the next try and the
    /// failure that set them; empty while all is well.
    backoff: Duration,
    next_try: Option<Duration>,
    last_failure: Option<String>,
}

/// One logged-in session with the folder selected.
struct Connection {
    session: Session<Stream>,
    uid_validity: u32,
    idle: bool,
    moves: bool,
    uidplus: bool,
}

impl ImapSource {
    pub fn new(
        settings: ImapSettings,
        processed: &str,
        unreadable: &str,
        poll: Duration,
        clock: Arc<dyn Clock>,
    ) -> ImapSource {
        ImapSource {
            settings,
            processed: processed.to_owned(),
            unreadable: unreadable.to_owned(),
            poll,
            clock,
            connection: None,
            tls: None,
            backoff: Duration::ZERO,
            next_try: None,
            last_failure: None,
        }
    }

    pub async fn fetch_new(&mut self, limit: usize) -> Result<Vec<Fetched>, SourceError> {
        self.connected().await?;
        let timeout = self.settings.timeout;
        let connection = self.connection.as_mut().expect("connected");
        let result = fetch(connection, limit, timeout).await;
        self.after(result)
    }

    pub async fn done(&mut self, id: &MessageRef) -> Result<(), SourceError> {
        let folder = self.processed.clone();
        self.move_message(id, &folder, true).await
    }

    pub async fn set_aside(&mut self, id: &MessageRef) -> Result<(), SourceError> {
        let folder = self.unreadable.clone();
        self.move_message(id, &folder, false).await
    }

    pub async fn wait_for_mail(&mut self, wait: Duration) -> Result<Woke, SourceError> {
        let Some(connection) = self.connection.take() else {
            // Not connected: wait for the next try, then let the caller
            // fetch, which connects.
            let Some(next_try) = self.next_try else {
                return Ok(Woke::Retry);
            };
            if next_try.saturating_sub(self.clock.monotonic()) > wait {
                tokio::time::sleep(wait).await;
                return Ok(Woke::Timeout);
            }
            // Through the clock, so a rehearsal's clock steps over the wait.
            tokio::time::sleep(self.clock.real_delay_until(next_try)).await;
            return Ok(Woke::Retry);
        };
        if !connection.idle {
            self.connection = Some(connection);
            tokio::time::sleep(wait.min(self.poll)).await;
            return Ok(Woke::Timeout);
        }
        let timeout = self.settings.timeout;
        match idle(connection, wait.min(IDLE_RENEW), timeout).await {
            Ok((connection, woke)) => {
                self.connection = Some(connection);
                Ok(woke)
            }
            Err(failure) => Err(self.failed(failure)),
        }
    }

    pub async fn close(&mut self) {
        if let Some(mut connection) = self.connection.take() {
            // A courtesy: the server ends the session anyway when the
            // connection closes.
            let _ = tokio::time::timeout(self.settings.timeout, connection.session.logout()).await;
        }
    }

    async fn move_message(&mut self, id: &MessageRef, folder: &str, seen: bool) -> Result<(), SourceError> {
        let Place::Imap { uid_validity, uid } = id.0 else {
            return Err(SourceError::new(format!("{id} is not an IMAP message")));
        };
        self.connected().await?;
        let timeout = self.settings.timeout;
        let connection = self.connection.as_mut().expect("connected");
        if connection.uid_validity != uid_validity {
            // The server renumbered the folder: this UID may be another
            // message now. It will be fetched again under its new UID.
            return Err(SourceError::new(format!(
                "the folder {:?} was renumbered (UIDVALIDITY {} now): {id} is fetched again",
                self.settings.folder, connection.uid_validity
            )));
        }
        let result = move_to(connection, uid, folder, seen, timeout).await;
        self.after(result)
    }

    /// Connects if not connected, unless the backoff says to wait.
    async fn connected(&mut self) -> Result<(), SourceError> {
        if self.connection.is_some() {
            return Ok(());
        }
        if let Some(next_try) = self.next_try {
            // Read, not waited for: a stepping clock must not move here.
            let wait = next_try.saturating_sub(self.clock.monotonic());
            if !wait.is_zero() {
                return Err(SourceError {
                    cause: self.last_failure.clone().unwrap_or_default(),
                    retry_in: Some(wait),
                });
            }
        }
        match self.connect().await {
            Ok(connection) => {
                if self.last_failure.take().is_some() {
                    tracing::info!(host = %self.settings.host, "the inbox can be read again");
                }
                self.backoff = Duration::ZERO;
                self.next_try = None;
                self.connection = Some(connection);
                Ok(())
            }
            Err(failure) => Err(self.failed(failure)),
        }
    }

    /// The result of a command on the connection: a failure drops it.
    fn after<T>(&mut self, result: Result<T, Failure>) -> Result<T, SourceError> {
        result.map_err(|failure| self.failed(failure))
    }

    /// Drops the connection and sets the next try.
    fn failed(&mut self, failure: Failure) -> SourceError {
        self.connection = None;
        self.backoff = if self.backoff.is_zero() {
            FIRST_BACKOFF
        } else {
            (self.backoff * 2).min(MAX_BACKOFF)
        };
        self.next_try = Some(self.clock.monotonic() + self.backoff);
        let cause = failure.to_string();
        tracing::warn!(
            host = %self.settings.host,
            error = %cause,
            retry_in = %brief_duration(self.backoff),
            "the inbox cannot be read"
        );
        self.last_failure = Some(cause.clone());
        SourceError {
            cause,
            retry_in: Some(self.backoff),
        }
    }

    async fn connect(&mut self) -> Result<Connection, Failure> {
        let connector = match self.settings.security {
            Security::None => None,
            Security::Tls | Security::StartTls => Some(self.tls_connector()?),
        };
        let settings = &self.settings;
        let Some(password) = &settings.password else {
            return Err(Failure::NoPassword);
        };
        let timeout = settings.timeout;
        let address = (settings.host.as_str(), settings.port);
        let tcp = within(timeout, "connect", async {
            TcpStream::connect(address)
                .await
                .map_err(|error| Failure::Connect(format!("{}:{}", settings.host, settings.port), error))
        })
        .await?;
        let _ = tcp.set_nodelay(true);
        let stream = match settings.security {
            Security::None => Stream::Plain(tcp),
            Security::Tls => Stream::Tls(Box::new(handshake(connector, settings, tcp).await?)),
            Security::StartTls => {
                let mut client = Client::new(Stream::Plain(tcp));
                greeting(&mut client, timeout).await?;
                command(
                    timeout,
                    "STARTTLS",
                    client.run_command_and_check_ok("STARTTLS", None),
                )
                .await?;
                let Stream::Plain(tcp) = client.into_inner() else {
                    unreachable!("the client was made on a plain stream")
                };
                Stream::Tls(Box::new(handshake(connector, settings, tcp).await?))
            }
        };
        let mut client = Client::new(stream);
        // No second greeting follows STARTTLS.
        if settings.security != Security::StartTls {
            greeting(&mut client, timeout).await?;
        }
        let mut session = within(timeout, "LOGIN", async {
            client
                .login(&settings.username, password)
                .await
                .map_err(|(error, _)| match error {
                    async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text) => {
                        Failure::LoginRefused(settings.username.clone(), text)
                    }
                    other => Failure::Command("LOGIN", other),
                })
        })
        .await?;
        let capabilities = command(timeout, "CAPABILITY", session.capabilities()).await?;
        let mailbox = within(timeout, "SELECT", async {
            session
                .select(&settings.folder)
                .await
                .map_err(|error| match error {
                    async_imap::error::Error::No(text) => Failure::NoFolder(settings.folder.clone(), text),
                    other => Failure::Command("SELECT", other),
                })
        })
        .await?;
        let Some(uid_validity) = mailbox.uid_validity else {
            return Err(Failure::NoUidValidity(settings.folder.clone()));
        };
        tracing::debug!(host = %settings.host, folder = %settings.folder, uid_validity, "inbox connected");
        Ok(Connection {
            session,
            uid_validity,
            idle: capabilities.has_str("IDLE"),
            moves: capabilities.has_str("MOVE"),
            uidplus: capabilities.has_str("UIDPLUS"),
        })
    }

    /// The TLS settings, built at the first connection that needs them.
    fn tls_connector(&mut self) -> Result<TlsConnector, Failure> {
        if let Some(connector) = &self.tls {
            return Ok(connector.clone());
        }
        let connector = TlsConnector::from(Arc::new(client_config(self.settings.ca_file.as_deref())?));
        self.tls = Some(connector.clone());
        Ok(connector)
    }
}

async fn handshake(
    connector: Option<TlsConnector>,
    settings: &ImapSettings,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, Failure> {
    let connector = connector.expect("a connector for TLS");
    let host = &settings.host;
    let name = ServerName::try_from(host.clone())
        .map_err(|_| Failure::Tls(host.clone(), io::Error::other("not a valid server name")))?;
    within(settings.timeout, "the TLS handshake", async {
        connector
            .connect(name, tcp)
            .await
            .map_err(|error| Failure::Tls(host.clone(), error))
    })
    .await
}

/// The client TLS settings (`crate::tls`), a problem with `ca_file`
/// named with the file.
fn client_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, Failure> {
    crate::tls::client_config(ca_file).map_err(|why| {
        let file = ca_file.map_or_else(
            || "(the TLS settings)".to_owned(),
            |file| file.display().to_string(),
        );
        Failure::CaFile(file, why)
    })
}

async fn greeting(client: &mut Client<Stream>, timeout: Duration) -> Result<(), Failure> {
    within(timeout, "the greeting", async {
        match client.read_response().await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(Failure::Closed("the greeting")),
            Err(error) => Err(Failure::Command("the greeting", error.into())),
        }
    })
    .await
}

/// `work` under the command timeout, named in the error.
async fn within<T>(
    timeout: Duration,
    what: &'static str,
    work: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or(Err(Failure::Timeout(what, timeout)))
}

/// One IMAP command under `timeout`, its error named after it.
async fn command<T>(
    timeout: Duration,
    what: &'static str,
    work: impl Future<Output = Result<T, async_imap::error::Error>>,
) -> Result<T, Failure> {
    within(timeout, what, async {
        work.await.map_err(|error| Failure::Command(what, error))
    })
    .await
}

async fn fetch(
    connection: &mut Connection,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<Fetched>, Failure> {
    let session = &mut connection.session;
    // A search sees the messages the session has been told of: NOOP first
    // brings in what arrived since the last command (after an IDLE, DONE
    // did; when polling, nothing else would).
    command(timeout, "NOOP", session.noop()).await?;
    let mut uids: Vec<u32> = command(timeout, "UID SEARCH", session.uid_search("UNSEEN UNDELETED"))
        .await?
        .into_iter()
        .collect();
    uids.sort_unstable();
    uids.truncate(FETCH_BATCH);
    let mut sizes = HashMap::new();
    if !uids.is_empty() {
        let set = uid_set(&uids);
        let fetches: Vec<_> = within(timeout, "UID FETCH (RFC822.SIZE)", async {
            session
                .uid_fetch(&set, "(UID RFC822.SIZE)")
                .await
                .map_err(|error| Failure::Command("UID FETCH", error))?
                .try_collect()
                .await
                .map_err(|error| Failure::Command("UID FETCH", error))
        })
        .await?;
        for fetch in fetches {
            if let (Some(uid), Some(size)) = (fetch.uid, fetch.size) {
                sizes.insert(uid, u64::from(size));
            }
        }
    }
    let mut fetched = Vec::with_capacity(uids.len());
    for uid in uids {
        // Expunged by someone else since the search.
        let Some(&size) = sizes.get(&uid) else { continue };
        let id = MessageRef(Place::Imap {
            uid_validity: connection.uid_validity,
            uid,
        });
        if size > limit as u64 {
            fetched.push(Fetched {
                id,
                bytes: Vec::new(),
                too_big: Some(size),
            });
            continue;
        }
        let session = &mut connection.session;
        let fetches: Vec<_> = within(timeout, "UID FETCH (BODY.PEEK[])", async {
            session
                .uid_fetch(uid.to_string(), "(UID BODY.PEEK[])")
                .await
                .map_err(|error| Failure::Command("UID FETCH", error))?
                .try_collect()
                .await
                .map_err(|error| Failure::Command("UID FETCH", error))
        })
        .await?;
        let Some(bytes) = fetches
            .iter()
            .find(|fetch| fetch.uid == Some(uid))
            .and_then(|fetch| fetch.body())
        else {
            continue;
        };
        fetched.push(Fetched {
            id,
            bytes: bytes.to_vec(),
            too_big: None,
        });
    }
    Ok(fetched)
}

/// `1,2,5`: the UIDs as an IMAP set.
fn uid_set(uids: &[u32]) -> String {
    uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

async fn move_to(
    connection: &mut Connection,
    uid: u32,
    folder: &str,
    seen: bool,
    timeout: Duration,
) -> Result<(), Failure> {
    let uid = uid.to_string();
    if seen {
        store(connection, &uid, "+FLAGS.SILENT (\\Seen)", timeout).await?;
    }
    let moves = connection.moves;
    let session = &mut connection.session;
    let name = if moves { "UID MOVE" } else { "UID COPY" };
    let first = within(timeout, name, async {
        Ok(transfer(session, moves, &uid, folder).await)
    })
    .await?;
    if let Err(error) = first {
        // Most likely the folder does not exist yet ([TRYCREATE]): create
        // it (a failure to, because it exists, changes nothing) and try once more.
        let async_imap::error::Error::No(_) = error else {
            return Err(Failure::Command(name, error));
        };
        let created = within(timeout, "CREATE", async { Ok(session.create(folder).await) }).await?;
        if created.is_ok() {
            // Mail clients list the subscribed folders: the operator is to
            // find the new one there.
            within(timeout, "SUBSCRIBE", async {
                Ok(session.subscribe(folder).await)
            })
            .await?
            .ok();
        }
        within(timeout, name, async {
            transfer(session, moves, &uid, folder)
                .await
                .map_err(|error| Failure::Folder(folder.to_owned(), error))
        })
        .await?;
    }
    if !moves {
        store(connection, &uid, "+FLAGS.SILENT (\\Deleted)", timeout).await?;
        // Without UIDPLUS only a plain EXPUNGE exists, which would also
        // remove what others flagged deleted: the copy is left flagged
        // (the search skips it) for the server's own cleanup.
        if connection.uidplus {
            let session = &mut connection.session;
            within(timeout, "UID EXPUNGE", async {
                session
                    .uid_expunge(&uid)
                    .await
                    .map_err(|error| Failure::Command("UID EXPUNGE", error))?
                    .try_collect::<Vec<_>>()
                    .await
                    .map_err(|error| Failure::Command("UID EXPUNGE", error))
            })
            .await?;
        }
    }
    Ok(())
}

/// `UID MOVE`, or `UID COPY` where MOVE is not offered.
async fn transfer(
    session: &mut Session<Stream>,
    moves: bool,
    uid: &str,
    folder: &str,
) -> async_imap::error::Result<()> {
    if moves {
        session.uid_mv(uid, folder).await
    } else {
        session.uid_copy(uid, folder).await
    }
}

async fn store(
    connection: &mut Connection,
    uid: &str,
    flags: &str,
    timeout: Duration,
) -> Result<(), Failure> {
    let session = &mut connection.session;
    within(timeout, "UID STORE", async {
        session
            .uid_store(uid, flags)
            .await
            .map_err(|error| Failure::Command("UID STORE", error))?
            .try_collect::<Vec<_>>()
            .await
            .map_err(|error| Failure::Command("UID STORE", error))
    })
    .await
    .map(drop)
}

/// One IDLE of at most `wait`: mail came, or the time ran out. DONE ends it
/// either way, so the connection is ready for the search that follows.
async fn idle(
    connection: Connection,
    wait: Duration,
    timeout: Duration,
) -> Result<(Connection, Woke), Failure> {
    let Connection {
        session,
        uid_validity,
        idle: can_idle,
        moves,
        uidplus,
    } = connection;
    // What came unasked before now is stale: the search after the wake
    // looks at the folder itself.
    while session.unsolicited_responses.try_recv().is_ok() {}
    let mut handle = session.idle();
    command(timeout, "IDLE", handle.init()).await?;
    let (response, _stop) = handle.wait_with_timeout(wait);
    // The crate's own timeout restarts at each keepalive; this one does not.
    let woke = match tokio::time::timeout(wait, response).await {
        Ok(Ok(IdleResponse::NewData(_))) => Woke::Mail,
        Ok(Ok(IdleResponse::Timeout | IdleResponse::ManualInterrupt)) | Err(_) => Woke::Timeout,
        Ok(Err(error)) => return Err(Failure::Command("IDLE", error)),
    };
    let session = command(timeout, "DONE", handle.done()).await?;
    Ok((
        Connection {
            session,
            uid_validity,
            idle: can_idle,
            moves,
            uidplus,
        },
        woke,
    ))
}

/// Why the connection was given up, in the words of the status line.
#[derive(Debug)]
enum Failure {
    NoPassword,
    Connect(String, io::Error),
    Tls(String, io::Error),
    CaFile(String, String),
    Closed(&'static str),
    Timeout(&'static str, Duration),
    LoginRefused(String, String),
    NoFolder(String, String),
    NoUidValidity(String),
    Folder(String, async_imap::error::Error),
    Command(&'static str, async_imap::error::Error),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NoPassword => f.write_str(
                "no IMAP password: set password_file in [inbox.imap], or give the systemd credential `imap-password`",
            ),
            Failure::Connect(to, error) => write!(f, "cannot connect to {to} ({error})"),
            Failure::Tls(host, error) => write!(f, "TLS with {host} failed ({error})"),
            Failure::CaFile(file, why) => write!(f, "cannot use ca_file {file} ({why})"),
            Failure::Closed(during) => write!(f, "the server closed the connection during {during}"),
            Failure::Timeout(what, after) => {
                write!(f, "the server did not answer {what} within {}", brief_duration(*after))
            }
            Failure::LoginRefused(user, text) => {
                write!(f, "login refused for {user:?} ({})", server_text(text))
            }
            Failure::NoFolder(folder, text) => {
                write!(f, "cannot open the folder {folder:?} ({})", server_text(text))
            }
            Failure::NoUidValidity(folder) => write!(f, "the server gives the folder {folder:?} no UIDVALIDITY"),
            Failure::Folder(
                folder,
                async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text),
            ) => write!(f, "cannot move a message to the folder {folder:?} ({})", server_text(text)),
            Failure::Folder(folder, error) => write!(f, "cannot move a message to the folder {folder:?} ({error})"),
            Failure::Command(what, async_imap::error::Error::ConnectionLost) => {
                write!(f, "the server closed the connection during {what}")
            }
            Failure::Command(
                what,
                async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text),
            ) => write!(f, "{what} refused ({})", server_text(text)),
            Failure::Command(what, error) => write!(f, "{what} failed ({error})"),
        }
    }
}

/// The server's own words in a NO or BAD reply. async-imap gives them as
/// the debug form of the reply's parts (`code: None, info:
/// Some("[AUTHENTICATIONFAILED] Authentication failed.")`): the text alone
/// is kept, without its response code.
fn server_text(reply: &str) -> String {
    let info = match reply.split_once("info: Some(\"") {
        Some((_, rest)) => rest.rsplit_once("\")").map_or(rest, |(text, _)| text),
        None => reply,
    };
    let info = info.trim();
    let without_code = match info.strip_prefix('[').and_then(|rest| rest.split_once("] ")) {
        Some((_, text)) => text,
        None => info,
    };
    without_code.replace("\\\"", "\"")
}

/// A connection with or without TLS, as one type for async-imap.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_a_certificate_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, "not a certificate\n").unwrap();
        let message = client_config(Some(&file)).unwrap_err().to_string();
        assert!(
            message.starts_with("cannot use ca_file ") && message.contains("ca.pem"),
            "{message}"
        );
        assert!(message.contains("holds no certificate"), "{message}");
    }

    #[test]
    fn the_server_s_words_are_kept_without_the_crate_s_wrapping() {
        assert_eq!(
            server_text("code: None, info: Some(\"[AUTHENTICATIONFAILED] Authentication failed.\")"),
            "Authentication failed."
        );
        assert_eq!(
            server_text("code: None, info: Some(\"Mailbox doesn't exist: X\")"),
            "Mailbox doesn't exist: X"
        );
        assert_eq!(server_text(" plain words "), "plain words");
    }

    /// A server that is not there: a loopback port nobody listens on.
    fn unreachable(clock: Arc<dyn Clock>) -> ImapSource {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let settings = ImapSettings {
            host: "127.0.0.1".to_owned(),
            port,
            security: Security::None,
            username: "herald".to_owned(),
            password: Some("x".to_owned()),
            ca_file: None,
            folder: "INBOX".to_owned(),
            timeout: Duration::from_secs(5),
        };
        ImapSource::new(
            settings,
            "Processed",
            "Unreadable",
            Duration::from_secs(300),
            clock,
        )
    }

    #[tokio::test]
    async fn failures_back_off_from_one_second_doubling_to_five_minutes_on_the_clock() {
        let clock = Arc::new(crate::clock::SteppingClock::new(jiff::Timestamp::UNIX_EPOCH));
        let mut source = unreachable(clock.clone());
        let first = source.fetch_new(1024).await.unwrap_err();
        assert!(first.cause.starts_with("cannot connect to 127.0.0.1:"), "{first}");
        assert_eq!(first.retry_in, Some(Duration::from_secs(1)));
        // Until the next try, the same failure, and the clock is only read.
        let again = source.fetch_new(1024).await.unwrap_err();
        assert_eq!(
            (again.cause, again.retry_in),
            (first.cause.clone(), Some(Duration::from_secs(1)))
        );
        assert_eq!(clock.monotonic(), Duration::ZERO);
        // A wait shorter than the backoff runs out; a longer one ends at the next try.
        let started = clock.monotonic();
        let mut waits = Vec::new();
        for _ in 0..12 {
            assert_eq!(
                source.wait_for_mail(Duration::from_secs(3600)).await.unwrap(),
                Woke::Retry
            );
            waits.push((clock.monotonic() - started).as_secs());
            let error = source.fetch_new(1024).await.unwrap_err();
            assert!(error.retry_in.is_some());
        }
        // Each wait ends where the backoff put the next try: 1 s, then 2, 4, … 300.
        let gaps: Vec<u64> = waits.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(waits[0], 1);
        assert_eq!(gaps, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    }

    #[test]
    fn uid_sets_list_each_uid() {
        assert_eq!(uid_set(&[1, 2, 5]), "1,2,5");
    }
}
