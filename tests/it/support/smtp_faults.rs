//! A small SMTP server on 127.0.0.1 that fails on demand, for the send tests.
//!
//! It speaks just enough SMTP for lettre (EHLO/HELO, MAIL, RCPT, DATA and
//! the final dot, RSET, NOOP, QUIT) and can be told, per test and per
//! connection, to refuse at connect, at RCPT or after DATA, to hang up in the
//! middle of DATA, to never answer the final dot, or to hold its answer a
//! while, or to leave out the extensions it was told to offer (a relay that
//! stopped offering AUTH). It keeps the bytes of every message it accepts
//! and counts connections, including the most it ever had open at once. It
//! does no TLS, and takes any AUTH PLAIN without looking: aiosmtpd checks
//! credentials.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How one connection misbehaves.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// No fault: every message is accepted.
    Accept,
    /// Greets with this reply instead of 220, then hangs up.
    OnConnect(&'static str),
    /// Answers RCPT with this reply.
    AtRcpt(&'static str),
    /// Answers the final dot with this reply; the message is not kept.
    AfterData(&'static str),
    /// Hangs up after the first line of the message.
    DropMidData,
    /// Never answers the final dot, and keeps the connection open.
    StallAfterData,
    /// Accepts one message, then says 421 and hangs up, as a relay does
    /// with a connection it will not keep.
    HangUpAfterMessage,
    /// Offers none of the extensions given to the builder (say, no AUTH),
    /// otherwise accepts.
    WithoutExtensions,
}

/// A message the server answered 250 to.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as sent, dot-unstuffed, without the final dot.
    pub bytes: Vec<u8>,
    /// When the final dot arrived.
    pub at: Instant,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicUsize,
    open: AtomicUsize,
    max_open: AtomicUsize,
    accepted: Mutex<Vec<Accepted>>,
}

/// What the server will do; see [`FaultServer::builder`].
#[derive(Debug)]
pub struct Builder {
    first: VecDeque<Fault>,
    then: Fault,
    hold_data_reply: Duration,
    extensions: Vec<&'static str>,
}

impl Builder {
    /// The next connection (after those already given) gets `fault`.
    pub fn first(mut self, fault: Fault) -> Builder {
        self.first.push_back(fault);
        self
    }

    /// Every connection after the `first` ones gets `fault`.
    pub fn then(mut self, fault: Fault) -> Builder {
        self.then = fault;
        self
    }

    /// Waits this long before answering each final dot.
    pub fn hold_data_reply(mut self, hold: Duration) -> Builder {
        self.hold_data_reply = hold;
        self
    }

    /// Offers an EHLO extension besides 8BITMIME and SIZE, e.g. "AUTH CRAM-MD5".
    pub fn extension(mut self, extension: &'static str) -> Builder {
        self.extensions.push(extension);
        self
    }

    pub async fn start(self) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let counters = Arc::new(Counters::default());
        let shared = Arc::clone(&counters);
        let accept = tokio::spawn(async move {
            // Owned here, so that dropping the server ends every connection.
            let mut connections = JoinSet::new();
            let mut plan = self.first;
            let rules = Arc::new(Rules {
                hold_data_reply: self.hold_data_reply,
                extensions: self.extensions,
            });
            while let Ok((stream, _)) = listener.accept().await {
                while connections.try_join_next().is_some() {}
                let fault = plan.pop_front().unwrap_or(self.then);
                connections.spawn(serve(stream, fault, Arc::clone(&rules), Arc::clone(&shared)));
            }
        });
        FaultServer {
            addr,
            counters,
            accept,
        }
    }
}

#[derive(Debug)]
struct Rules {
    hold_data_reply: Duration,
    extensions: Vec<&'static str>,
}

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct FaultServer {
    addr: SocketAddr,
    counters: Arc<Counters>,
    accept: tokio::task::JoinHandle<()>,
}

impl FaultServer {
    pub fn builder() -> Builder {
        Builder {
            first: VecDeque::new(),
            then: Fault::Accept,
            hold_data_reply: Duration::ZERO,
            extensions: Vec::new(),
        }
    }

    /// A server where every connection gets `fault`.
    pub async fn start(fault: Fault) -> FaultServer {
        FaultServer::builder().then(fault).start().await
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.counters.connections.load(Ordering::SeqCst)
    }

    /// The most connections that were ever open at the same time.
    pub fn max_concurrent(&self) -> usize {
        self.counters.max_open.load(Ordering::SeqCst)
    }

    /// Every message answered with 250, in order.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.counters.accepted.lock().expect("accepted list").clone()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Counts a connection as open until dropped or released (at QUIT, before
/// the 221 goes out, so the client can never open its next connection while
/// this one still counts).
struct Open<'a> {
    counters: &'a Counters,
    released: bool,
}

impl<'a> Open<'a> {
    fn new(counters: &'a Counters) -> Open<'a> {
        counters.connections.fetch_add(1, Ordering::SeqCst);
        let open = counters.open.fetch_add(1, Ordering::SeqCst) + 1;
        counters.max_open.fetch_max(open, Ordering::SeqCst);
        Open {
            counters,
            released: false,
        }
    }

    fn release(&mut self) {
        if !self.released {
            self.released = true;
            self.counters.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// One SMTP session. I/O errors end it quietly: the client went away.
async fn serve(stream: TcpStream, fault: Fault, rules: Arc<Rules>, counters: Arc<Counters>) {
    let mut open = Open::new(&counters);
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    macro_rules! reply {
        ($text:expr) => {
            if writer
                .write_all(format!("{}\r\n", $text).as_bytes())
                .await
                .is_err()
            {
                return;
            }
        };
    }

    if let Fault::OnConnect(greeting) = fault {
        reply!(greeting);
        return;
    }
    reply!("220 faults.test ESMTP herald fault server");
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end();
        let verb = command.get(..4).unwrap_or(command).to_ascii_uppercase();
        let argument = command.get(4..).unwrap_or("").trim();
        match verb.as_str() {
            "EHLO" => {
                let mut lines = vec!["faults.test", "8BITMIME", "SIZE 10000000"];
                if !matches!(fault, Fault::WithoutExtensions) {
                    lines.extend(rules.extensions.iter().copied());
                }
                let last = lines.len() - 1;
                let reply: Vec<String> = lines
                    .iter()
                    .enumerate()
                    .map(|(n, text)| format!("250{}{text}", if n == last { ' ' } else { '-' }))
                    .collect();
                // In one write: a reply split over several small writes
                // waits on Nagle's algorithm and the peer's delayed ACK.
                reply!(reply.join("\r\n"));
            }
            "HELO" => reply!("250 faults.test"),
            "AUTH" => reply!("235 2.7.0 Authentication successful"),
            "MAIL" => {
                mail_from = argument.to_owned();
                rcpt_to.clear();
                reply!("250 2.1.0 Ok");
            }
            "RCPT" => match fault {
                Fault::AtRcpt(refusal) => reply!(refusal),
                _ => {
                    rcpt_to.push(argument.to_owned());
                    reply!("250 2.1.5 Ok");
                }
            },
            "DATA" if rcpt_to.is_empty() => reply!("503 5.5.1 Error: need RCPT command"),
            "DATA" => {
                reply!("354 End data with <CR><LF>.<CR><LF>");
                let mut bytes = Vec::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    if matches!(fault, Fault::DropMidData) {
                        // Unread data makes the kernel reset the connection.
                        return;
                    }
                    let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                    bytes.extend_from_slice(unstuffed.as_bytes());
                }
                match fault {
                    Fault::StallAfterData => {
                        // Read (and ignore) until the client gives up.
                        while matches!(reader.read_line(&mut line).await, Ok(n) if n > 0) {}
                        return;
                    }
                    Fault::AfterData(refusal) => {
                        tokio::time::sleep(rules.hold_data_reply).await;
                        reply!(refusal);
                    }
                    _ => {
                        let at = Instant::now();
                        tokio::time::sleep(rules.hold_data_reply).await;
                        let number = {
                            let mut accepted = counters.accepted.lock().expect("accepted list");
                            accepted.push(Accepted {
                                mail_from: mail_from.clone(),
                                rcpt_to: rcpt_to.clone(),
                                bytes,
                                at,
                            });
                            accepted.len()
                        };
                        reply!(format!("250 2.0.0 Ok: queued as F{number}"));
                        if matches!(fault, Fault::HangUpAfterMessage) {
                            reply!("421 4.4.2 faults.test closing the connection");
                            return;
                        }
                    }
                }
                rcpt_to.clear();
            }
            "RSET" => {
                rcpt_to.clear();
                reply!("250 2.0.0 Ok");
            }
            "NOOP" => reply!("250 2.0.0 Ok"),
            "QUIT" => {
                open.release();
                reply!("221 2.0.0 Bye");
                return;
            }
            _ => reply!("502 5.5.2 Error: command not recognized"),
        }
    }
}
