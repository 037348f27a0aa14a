//! Two `herald run` processes, nodes "a" and "b", sharing one outbox in a
//! real PostgreSQL ([`Postgres`]) and one real SMTP server (aiosmtpd), each
//! with its own state directory (its lock), both on the same configuration
//! directory: a burst of 5,000 reminders, due now in real time, shared
//! between them, through a node killed, the database stopped for ten
//! seconds, and one node's database connection hanging.
//!
//! What the database holds is read through `psql`; what arrived is read
//! from the SMTP server's files, each written as the message arrived.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jiff::{SignedDuration, Timestamp};
use mail_parser::MessageParser;
use tempfile::TempDir;

use crate::daemon::{expected_keys, smtp_config};
use crate::harness::{ConfigDir, herald_command};
use crate::support::aiosmtpd::Sink;
use crate::support::free_port;
use crate::support::postgres::{self, Postgres};
use crate::support::web::Client;

const FOCAL_POINTS: usize = 5000;
/// Each node's connections to the relay.
const CONNECTIONS: usize = 4;
/// Short, so that a takeover comes soon; the least herald takes.
const LEASE: Duration = Duration::from_secs(6);
/// How long a burst may take, on a loaded machine with two cores.
const BURST_TIMEOUT: Duration = Duration::from_secs(900);
/// When the trouble comes: once this many messages have arrived.
const TROUBLE_AFTER: usize = 800;

/// The configuration both nodes read: the example's, delivering over SMTP
/// to the sink, with its roadmaps and letters replaced by one meeting that
/// starts in twenty minutes, whose one-hour reminders to `FOCAL_POINTS`
/// focal points are all due (forty minutes late, within `late_window`) as
/// soon as a node starts: one burst. The outbox is the database at
/// `database` (the server, or a proxy in front of it).
struct Shared {
    config: ConfigDir,
    /// Message-ID (without `<>`) → send key, for every send of the burst.
    keys: HashMap<String, String>,
}

impl Shared {
    fn new(sink: &Sink, database: &str) -> Shared {
        let config = smtp_config(sink.port(), CONNECTIONS);
        config.remove("roadmaps").remove("letters");
        config.write("lists/civil-society.toml", "");
        let mut csv = String::from("name,email,lists,leads\n");
        for i in 0..FOCAL_POINTS {
            csv.push_str(&format!(
                "Focal Point {i},fp{i}@mission{}.example.org,member-states,1h\n",
                i % 193
            ));
        }
        config.write("lists/permanent-missions.csv", &csv);
        let start = Timestamp::now()
            .checked_add(SignedDuration::from_mins(20))
            .unwrap()
            .in_tz("America/New_York")
            .unwrap();
        config.write(
            "roadmaps/burst.toml",
            &format!(
                "id = \"burst\"\ntitle = \"Burst\"\nvenue = \"new-york\"\nlists = [\"member-states\"]\n\n\
                 [[events]]\nid = \"burst-meeting\"\ntitle = \"A meeting\"\nkind = \"meeting\"\n\
                 date = \"{}\"\nstart = \"{}\"\nleads = [\"1h\"]\n",
                start.date(),
                start.strftime("%H:%M")
            ),
        );
        config.write("database-password", &format!("{}\n", postgres::PASSWORD));
        std::fs::set_permissions(
            config.path().join("database-password"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let text = std::fs::read_to_string(config.path().join("herald.toml")).unwrap();
        config.write(
            "herald.toml",
            &format!(
                "{text}\n[state]\ndatabase = \"{database}\"\npassword_file = \"database-password\"\nlease = \"{}s\"\n",
                LEASE.as_secs()
            ),
        );
        let now = Timestamp::now();
        let from = now.checked_sub(SignedDuration::from_hours(6)).unwrap();
        let until = now.checked_add(SignedDuration::from_hours(24)).unwrap();
        let expected = expected_keys(&config, &from.to_string(), &until.to_string());
        assert_eq!(expected.len(), FOCAL_POINTS, "the burst is all the plan holds");
        let domain = config.model().settings().sender.domain.clone();
        let keys = expected
            .into_iter()
            .map(|key| {
                let id = herald::render::message::message_id(&key, &domain);
                (id.trim_start_matches('<').trim_end_matches('>').to_owned(), key)
            })
            .collect();
        Shared { config, keys }
    }
}

/// One `herald run` process, with `HERALD_NODE` set, its own state
/// directory, and its log in a file beside it.
struct Node {
    name: &'static str,
    child: Child,
    dir: TempDir,
}

impl Node {
    fn start(shared: &Shared, name: &'static str) -> Node {
        Node::start_on(&shared.config, name)
    }

    /// A node on the configuration directory `config`.
    fn start_on(config: &ConfigDir, name: &'static str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let log = File::create(dir.path().join("herald.log")).unwrap();
        let child = herald_command(&config.path())
            .arg("run")
            .arg("--state-dir")
            .arg(&state)
            .env("HERALD_NODE", name)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start herald run");
        Node { name, child, dir }
    }

    /// What the outbox's rows say claimed them.
    fn claimant(&self) -> String {
        format!("node:{}", self.name)
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The end of its log.
    fn log(&self) -> String {
        let log = self.whole_log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Its whole log (stderr).
    fn whole_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("herald.log")).unwrap_or_default()
    }

    #[track_caller]
    fn assert_running(&mut self) {
        assert!(
            self.running(),
            "node {} stopped ({:?}); the end of its log:\n{}",
            self.name,
            self.child.try_wait(),
            self.log()
        );
    }

    /// SIGKILL.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and the daemon's exit.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts node a, then, once it has planned the burst, node b: a node that
/// is not the planner learns of new sends when it next looks at the outbox
/// (a tick, a minute, when it knew of none), so b, started together with a,
/// could sleep through a burst planned a moment after its start.
fn start_both(shared: &Shared, postgres: &Postgres) -> (Node, Node) {
    let a = start_planner(shared, postgres);
    let b = Node::start(shared, "b");
    (a, b)
}

/// Starts node a, and waits until it has planned the burst.
fn start_planner(shared: &Shared, postgres: &Postgres) -> Node {
    let mut a = Node::start(shared, "a");
    wait_for("node a plans the burst", BURST_TIMEOUT, || {
        a.assert_running();
        postgres.psql("SELECT to_regclass('sends') IS NOT NULL") == "t"
            && postgres.psql("SELECT count(*) FROM sends") == FOCAL_POINTS.to_string()
    });
    a
}

/// How many messages the sink has (cheaper than reading them).
fn arrived(sink: &Sink) -> usize {
    std::fs::read_dir(sink.dir())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "eml"))
        .count()
}

/// Every message arrived: its Message-ID (without `<>`) and when.
fn arrivals(sink: &Sink) -> Vec<(String, SystemTime)> {
    let mut paths: Vec<_> = std::fs::read_dir(sink.dir())
        .unwrap()
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            let message = MessageParser::default()
                .parse(&bytes)
                .expect("a parseable message");
            let id = message.message_id().expect("a Message-ID").to_owned();
            (id, std::fs::metadata(&path).unwrap().modified().unwrap())
        })
        .collect()
}

fn since_epoch(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Polls `done` every 200 ms until it holds; fails after `timeout`.
#[track_caller]
fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until `count` messages arrived, the nodes still running.
fn wait_for_arrivals(sink: &Sink, count: usize, nodes: &mut [&mut Node]) {
    wait_for(&format!("{count} messages arrive"), BURST_TIMEOUT, || {
        for node in nodes.iter_mut() {
            node.assert_running();
        }
        arrived(sink) >= count
    });
}

/// The outbox's rows by state, as the database says.
fn states(postgres: &Postgres) -> BTreeMap<String, usize> {
    postgres
        .psql("SELECT state, count(*) FROM sends GROUP BY state")
        .lines()
        .map(|line| {
            let (state, n) = line.split_once('|').unwrap();
            (state.to_owned(), n.parse().unwrap())
        })
        .collect()
}

fn sent(postgres: &Postgres) -> usize {
    postgres
        .psql("SELECT count(*) FROM sends WHERE state = 'sent'")
        .parse()
        .unwrap()
}

/// Waits until the outbox says every send of the burst is sent, checking
/// that the `nodes` keep running.
fn wait_for_the_burst(postgres: &Postgres, nodes: &mut [&mut Node]) {
    wait_for("the outbox records the whole burst sent", BURST_TIMEOUT, || {
        for node in nodes.iter_mut() {
            node.assert_running();
        }
        sent(postgres) == FOCAL_POINTS
    });
}

/// The sends in flight claimed by `claimant`: key → the end of its lease
/// (seconds since the epoch, on the database's clock, this machine's).
fn in_flight(postgres: &Postgres, claimant: &str) -> HashMap<String, f64> {
    postgres
        .psql(&format!(
            "SELECT key, extract(epoch FROM lease_until) FROM sends WHERE state = 'sending' AND claimed_by = '{claimant}'"
        ))
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (key, until) = line.rsplit_once('|').unwrap();
            (key.to_owned(), until.parse().unwrap())
        })
        .collect()
}

/// How many sends each node recorded sent.
fn sent_by_node(postgres: &Postgres) -> BTreeMap<String, usize> {
    postgres
        .psql("SELECT coalesce(node, '?'), count(*) FROM attempts WHERE outcome = 'sent' GROUP BY node")
        .lines()
        .map(|line| {
            let (node, n) = line.split_once('|').unwrap();
            (node.to_owned(), n.parse().unwrap())
        })
        .collect()
}

/// After the burst: every send arrived (by Message-ID), nothing else did,
/// at most `duplicates` messages twice, and the outbox holds every send as
/// sent, nothing else. Returns how many arrived twice.
fn assert_delivered(shared: &Shared, sink: &Sink, postgres: &Postgres, duplicates: usize) -> usize {
    let arrived = arrivals(sink);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (id, _) in &arrived {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let lost: Vec<_> = shared
        .keys
        .iter()
        .filter(|(id, _)| !counts.contains_key(id.as_str()))
        .map(|(_, key)| key)
        .collect();
    assert!(
        lost.is_empty(),
        "{} sends lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let unknown: Vec<_> = counts
        .keys()
        .filter(|id| !shared.keys.contains_key(**id))
        .collect();
    assert!(unknown.is_empty(), "messages not of the burst: {unknown:?}");
    let repeated = arrived.len() - counts.len();
    assert!(
        repeated <= duplicates,
        "{repeated} messages arrived twice; at most {duplicates} were in flight"
    );
    assert_eq!(
        states(postgres),
        BTreeMap::from([("sent".to_owned(), FOCAL_POINTS)]),
        "the outbox says every send is sent"
    );
    repeated
}

/// Both nodes share a burst of 5,000: every message arrives once, each node
/// sent some, and the outbox records 5,000 sent.
#[test]
fn two_nodes_share_a_burst() {
    let postgres = Postgres::start();
    let sink = Sink::plain();
    let shared = Shared::new(&sink, &postgres.url());
    let started = Instant::now();
    let (mut a, mut b) = start_both(&shared, &postgres);
    wait_for_arrivals(&sink, 1, &mut [&mut a, &mut b]);
    wait_for_the_burst(&postgres, &mut [&mut a, &mut b]);
    let took = started.elapsed();
    a.stop();
    b.stop();
    let repeated = assert_delivered(&shared, &sink, &postgres, 0);
    assert_eq!(repeated, 0);
    let by_node = sent_by_node(&postgres);
    println!("two nodes: {FOCAL_POINTS} sent in {took:.1?}, by node: {by_node:?}");
    assert_eq!(by_node.values().sum::<usize>(), FOCAL_POINTS, "{by_node:?}");
    for node in [&a, &b] {
        let sent = by_node.get(&node.claimant()).copied().unwrap_or(0);
        assert!(
            sent > 0,
            "{} sent none: {by_node:?}; its log:\n{}",
            node.name,
            node.log()
        );
    }
}

/// Node a is killed (SIGKILL) in the middle of the burst: its sends in
/// flight are taken over by b once their leases end (never before), the
/// burst ends, nothing is lost, and no more messages arrive twice than a
/// had in flight.
#[test]
fn a_node_killed_mid_burst_is_taken_over_after_its_lease() {
    let postgres = Postgres::start();
    let sink = Sink::plain();
    let shared = Shared::new(&sink, &postgres.url());
    let (mut a, mut b) = start_both(&shared, &postgres);
    wait_for_arrivals(&sink, TROUBLE_AFTER, &mut [&mut a, &mut b]);
    wait_for("node a has sends in flight", BURST_TIMEOUT, || {
        a.assert_running();
        !in_flight(&postgres, &a.claimant()).is_empty()
    });
    a.kill();
    let killed_at = SystemTime::now();
    let killed = Instant::now();
    // A commit of a's that reached the server just before the kill still
    // completes there: its sends in flight are read once it is over (well
    // within the lease).
    std::thread::sleep(Duration::from_secs(1));
    let orphans = in_flight(&postgres, &a.claimant());
    let at_kill = arrived(&sink);
    assert!(sent(&postgres) < FOCAL_POINTS, "the kill came mid-burst");
    wait_for_the_burst(&postgres, &mut [&mut b]);
    let complete = killed.elapsed();
    b.stop();
    let repeated = assert_delivered(&shared, &sink, &postgres, orphans.len());
    // The lease rule: a message of a's in flight that arrives well after
    // the kill (not one a had already handed over) was sent by b, which
    // may take it only once its lease has ended.
    let settled = since_epoch(killed_at) + 1.0;
    let mut taken_over: Vec<f64> = Vec::new();
    for (id, at) in arrivals(&sink) {
        let key = &shared.keys[&id];
        let at = since_epoch(at);
        if let Some(until) = orphans.get(key)
            && at > settled
        {
            assert!(
                at >= *until,
                "{key} arrived {:.2} s before its lease on node a ended",
                until - at
            );
            taken_over.push(at);
        }
    }
    let first = taken_over.iter().copied().fold(f64::INFINITY, f64::min);
    let by_b: usize = postgres
        .psql("SELECT count(DISTINCT key) FROM attempts WHERE outcome = 'taken over' AND node = 'node:b'")
        .parse()
        .unwrap();
    println!(
        "kill -9 of node a after {at_kill} messages: {} in flight on it, {by_b} taken over by b; \
         failover (kill → first of them arrived from b): {:.1} s; kill → burst complete: {complete:.1?}; \
         {repeated} arrived twice; by node: {:?}",
        orphans.len(),
        first - since_epoch(killed_at),
        sent_by_node(&postgres)
    );
    assert!(by_b > 0, "b took none of a's sends over");
    assert!(
        orphans.keys().all(|key| {
            postgres.psql(&format!(
                "SELECT count(*) FROM attempts WHERE key = '{key}' AND outcome = 'sent' AND node = 'node:b'"
            )) == "1"
        }),
        "b sent every send a had in flight"
    );
}

/// The newest `psql` of Debian's PostgreSQL, for a session the test holds.
fn psql_binary() -> std::path::PathBuf {
    let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let psql = entry.path().join("bin/psql");
            psql.exists().then_some((version, psql))
        })
        .collect();
    found.sort();
    found.pop().expect("Debian's psql").1
}

/// A `psql` session that locks the outbox's table against writes (no node
/// claims, renews or records while it lasts) and returns the keys in flight
/// then, with their claimants, and the session, holding the lock until it
/// is killed or the server stops.
fn lock_sends(postgres: &Postgres) -> (Child, ChildStdin, HashMap<String, String>) {
    let url = postgres.url();
    let port = url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(port, _)| port.to_owned())
        .unwrap();
    let mut child = Command::new(psql_binary())
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            postgres::USER,
            "-d",
            postgres::DATABASE,
        ])
        .env("PGPASSWORD", postgres::PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("psql runs");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(
        stdin,
        "BEGIN;\nLOCK TABLE sends IN EXCLUSIVE MODE;\n\
         SELECT key || '|' || claimed_by FROM sends WHERE state = 'sending';\n\\echo LOCKED"
    )
    .unwrap();
    stdin.flush().unwrap();
    let mut in_flight = HashMap::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "LOCKED" {
            return (child, stdin, in_flight);
        }
        if let Some((key, claimant)) = line.rsplit_once('|') {
            in_flight.insert(key.to_owned(), claimant.to_owned());
        }
    }
    let _ = child.kill();
    let status = child.wait();
    panic!("the locking psql session ended early: {status:?}");
}

/// PostgreSQL stops for ten seconds in the middle of the burst: both nodes
/// keep running, reconnect once it is back, and finish; nothing is lost,
/// and no more messages arrive twice than were in flight at the stop.
#[test]
fn the_database_stopped_for_ten_seconds_mid_burst() {
    let mut postgres = Postgres::start();
    let sink = Sink::plain();
    let shared = Shared::new(&sink, &postgres.url());
    let (mut a, mut b) = start_both(&shared, &postgres);
    wait_for_arrivals(&sink, TROUBLE_AFTER, &mut [&mut a, &mut b]);
    // What is in flight, with no claim between the count and the stop.
    let (mut session, _stdin, in_flight) = lock_sends(&postgres);
    let at_stop = arrived(&sink);
    postgres.stop();
    let _ = session.kill();
    let _ = session.wait();
    let stopped = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    a.assert_running();
    b.assert_running();
    postgres.start_again();
    let back = Instant::now();
    let during = arrived(&sink) - at_stop;
    wait_for_the_burst(&postgres, &mut [&mut a, &mut b]);
    let complete = back.elapsed();
    a.assert_running();
    b.assert_running();
    a.stop();
    b.stop();
    let repeated = assert_delivered(&shared, &sink, &postgres, in_flight.len());
    println!(
        "database stopped for {:.1?} after {at_stop} messages: {} sends in flight then, {during} arrived while it was down; \
         back → burst complete: {complete:.1?}; {repeated} arrived twice; by node: {:?}",
        back - stopped,
        in_flight.len(),
        sent_by_node(&postgres)
    );
}

/// A TCP proxy in front of PostgreSQL that forwards both ways, and that can
/// stop forwarding, without closing anything, on the connections of one
/// process: those then hang, as behind a network that drops every packet.
/// It knows a connection's process by its socket: the client's end, found
/// in /proc/net/tcp by its port, is one of that process's open files.
struct Proxy {
    port: u16,
    shared: Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    /// Each connection: the inode of the client's socket, and whether it hangs.
    connections: Mutex<Vec<(u64, Arc<AtomicBool>)>>,
    /// The process whose connections hang (0: none).
    frozen: AtomicU32,
    closed: AtomicBool,
}

impl Proxy {
    fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(ProxyState::default());
        let state = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if state.closed.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let peer = client.peer_addr().unwrap().port();
                let inode = socket_inode(peer, port).unwrap_or(0);
                let frozen = state.frozen.load(Ordering::SeqCst);
                let hangs = Arc::new(AtomicBool::new(
                    frozen != 0 && process_sockets(frozen).contains(&inode),
                ));
                state.connections.lock().unwrap().push((inode, hangs.clone()));
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let (hangs, state) = (hangs.clone(), state.clone());
                    std::thread::spawn(move || pump(from, to, &hangs, &state));
                }
            }
        });
        Proxy { port, shared }
    }

    /// From now on, the connections of process `pid` hang.
    fn freeze(&self, pid: u32) {
        self.shared.frozen.store(pid, Ordering::SeqCst);
        let sockets = process_sockets(pid);
        for (inode, hangs) in self.shared.connections.lock().unwrap().iter() {
            if sockets.contains(inode) {
                hangs.store(true, Ordering::SeqCst);
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Forwards `from` to `to`; while `hangs`, holds what it read and keeps
/// both sockets open.
fn pump(mut from: TcpStream, mut to: TcpStream, hangs: &AtomicBool, state: &ProxyState) {
    let hold = || {
        while hangs.load(Ordering::SeqCst) && !state.closed.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        hold();
        if to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    hold();
    let _ = to.shutdown(Shutdown::Write);
}

/// The inode of the loopback socket from port `local` to port `remote`.
fn socket_inode(local: u16, remote: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let (local, remote) = (format!("0100007F:{local:04X}"), format!("0100007F:{remote:04X}"));
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&local.as_str()) && fields.get(2) == Some(&remote.as_str()))
            .then(|| fields.get(9)?.parse().ok())
            .flatten()
    })
}

/// The inodes of the sockets process `pid` has open.
fn process_sockets(pid: u32) -> HashSet<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| {
            entries
                .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
                .filter_map(|link| {
                    link.to_str()?
                        .strip_prefix("socket:[")?
                        .strip_suffix(']')?
                        .parse()
                        .ok()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Node a's connections to the database hang in the middle of the burst
/// (both nodes reach it through a proxy, which stops forwarding a's): a
/// starts no send once it cannot renew, and none of its sends arrives
/// after its lease on it ended; b takes them over and finishes the burst;
/// nothing is lost, and no more messages arrive twice than a had in flight.
#[test]
fn a_node_whose_database_hangs_stops_before_its_leases_end() {
    let postgres = Postgres::start();
    let sink = Sink::plain();
    let port: u16 = postgres
        .url()
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split_once('/'))
        .and_then(|(port, _)| port.parse().ok())
        .unwrap();
    let proxy = Proxy::start(port);
    let shared = Shared::new(
        &sink,
        &format!(
            "postgres://{}@127.0.0.1:{}/{}",
            postgres::USER,
            proxy.port,
            postgres::DATABASE
        ),
    );
    let (mut a, mut b) = start_both(&shared, &postgres);
    wait_for_arrivals(&sink, TROUBLE_AFTER, &mut [&mut a, &mut b]);
    wait_for("node a has sends in flight", BURST_TIMEOUT, || {
        a.assert_running();
        !in_flight(&postgres, &a.claimant()).is_empty()
    });
    proxy.freeze(a.child.id());
    let frozen_at = SystemTime::now();
    // A statement of a's forwarded just before the freeze (a commit of
    // outcomes, a claim) still runs on the server: its sends in flight are
    // read once it is over. psql reaches the server directly.
    std::thread::sleep(Duration::from_secs(1));
    let stranded = in_flight(&postgres, &a.claimant());
    let at_freeze = arrived(&sink);
    assert!(sent(&postgres) < FOCAL_POINTS, "the freeze came mid-burst");
    wait_for_the_burst(&postgres, &mut [&mut b]);
    let a_alive = a.running();
    a.kill();
    b.stop();
    let repeated = assert_delivered(&shared, &sink, &postgres, stranded.len());
    // The lease rule: once its lease on a send has ended, only b may send
    // it (once); a second copy after that moment would be a's, late.
    let mut after_lease: HashMap<&str, usize> = HashMap::new();
    let mut last_of_a_before = f64::NEG_INFINITY;
    for (id, at) in arrivals(&sink) {
        let key = shared.keys[&id].as_str();
        if let Some(until) = stranded.get(key) {
            let at = since_epoch(at);
            if at >= *until {
                *after_lease.entry(key).or_default() += 1;
            } else {
                last_of_a_before = last_of_a_before.max(at);
            }
        }
    }
    let late: Vec<_> = after_lease.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        late.is_empty(),
        "sends of node a arrived after its lease on them ended: {late:?}"
    );
    let lease_end = stranded.values().copied().fold(f64::NEG_INFINITY, f64::max);
    println!(
        "node a's database hung after {at_freeze} messages: {} sends in flight on it; its last of them arrived {:.1} s \
         after the freeze, {:.1} s before its leases ended; {} taken over by b; {repeated} arrived twice; \
         a still running at the end: {a_alive}; by node: {:?}",
        stranded.len(),
        last_of_a_before - since_epoch(frozen_at),
        lease_end - last_of_a_before,
        after_lease.len(),
        sent_by_node(&postgres)
    );
    assert!(
        stranded.keys().all(|key| {
            postgres.psql(&format!(
                "SELECT count(*) FROM attempts WHERE key = '{key}' AND outcome = 'sent' AND node = 'node:b'"
            )) == "1"
        }),
        "b sent every send a had in flight"
    );
}

/// The focal point only configuration B has, on the burst's list.
const EXTRA: &str = "extra.focal.point@mission-x.example.org";

/// Copies the directory `from` to `to`, with its subdirectories.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            // Permissions too: the password file stays 0600.
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Configuration B: a copy of the shared configuration directory (and of
/// its templates) with one more focal point on the burst's list, [`EXTRA`],
/// whose reminder only B would plan, and an admin listener on a free
/// loopback port. Returns it, that port, and the key of the extra reminder.
fn differing_copy(shared: &Shared) -> (ConfigDir, u16, String) {
    let copy = ConfigDir::example();
    for dir in ["config", "templates"] {
        let from = shared.config.path().parent().unwrap().join(dir);
        let to = copy.path().parent().unwrap().join(dir);
        std::fs::remove_dir_all(&to).unwrap();
        copy_tree(&from, &to);
    }
    let csv = std::fs::read_to_string(copy.path().join("lists/permanent-missions.csv")).unwrap();
    copy.write(
        "lists/permanent-missions.csv",
        &format!("{csv}Extra Focal Point,{EXTRA},member-states,1h\n"),
    );
    let admin = free_port();
    let text = std::fs::read_to_string(copy.path().join("herald.toml")).unwrap();
    copy.write(
        "herald.toml",
        &format!("{text}\n[http]\nadmin = \"127.0.0.1:{admin}\"\n"),
    );
    let now = Timestamp::now();
    let from = now.checked_sub(SignedDuration::from_hours(6)).unwrap();
    let until = now.checked_add(SignedDuration::from_hours(24)).unwrap();
    let known: HashSet<&String> = shared.keys.values().collect();
    let mut extra: Vec<String> = expected_keys(&copy, &from.to_string(), &until.to_string())
        .into_iter()
        .filter(|key| !known.contains(key))
        .collect();
    assert_eq!(extra.len(), 1, "B plans one reminder more: {extra:?}");
    (copy, admin, extra.remove(0))
}

/// Node b's status page (`GET /` on its admin listener), once it answers.
fn status_page(admin: u16) -> String {
    wait_for(
        "node b's admin listener takes connections",
        Duration::from_secs(120),
        || TcpStream::connect(("127.0.0.1", admin)).is_ok(),
    );
    let page = Client::new().get(&format!("http://127.0.0.1:{admin}/"));
    assert_eq!(page.status, 200, "{}", page.body);
    page.body
}

/// How many rows the outbox has for the extra focal point's reminder.
fn extra_rows(postgres: &Postgres, extra: &str) -> String {
    postgres.psql(&format!(
        "SELECT count(*) FROM sends WHERE key = '{extra}' OR recipient ILIKE '%{EXTRA}%'"
    ))
}

const DIFFERS: &str = "this node's configuration is not the one the outbox was planned with";

/// Node b's configuration differs from a's by one focal point (and its
/// admin listener): b refuses to plan, says so in its log and on its status
/// page, naming a as the planner, and sends its share of what a planned;
/// the extra focal point's reminder is never planned nor sent, and every
/// planned message arrives once. Once a stops and its planner's lease
/// expires, b still does not plan with its configuration.
#[test]
fn a_node_whose_configuration_differs_sends_but_never_plans() {
    let postgres = Postgres::start();
    let sink = Sink::plain();
    let shared = Shared::new(&sink, &postgres.url());
    let (other, admin, extra) = differing_copy(&shared);
    let domain = shared.config.model().settings().sender.domain.clone();
    let extra_id = herald::render::message::message_id(&extra, &domain);
    let extra_id = extra_id.trim_start_matches('<').trim_end_matches('>').to_owned();
    let mut a = start_planner(&shared, &postgres);
    let mut b = Node::start_on(&other, "b");
    wait_for("node b says its configuration differs", BURST_TIMEOUT, || {
        a.assert_running();
        b.assert_running();
        b.whole_log().contains(DIFFERS)
    });
    let page = status_page(admin);
    assert!(page.contains("id=\"differs\""), "{page}");
    assert!(
        page.contains("node <code>a</code> planned with"),
        "the page names a as the planner:\n{page}"
    );
    assert!(!page.contains("plans and sends"), "{page}");

    wait_for_arrivals(&sink, 1, &mut [&mut a, &mut b]);
    wait_for_the_burst(&postgres, &mut [&mut a, &mut b]);
    assert_eq!(
        extra_rows(&postgres, &extra),
        "0",
        "the extra reminder is planned"
    );
    let by_node = sent_by_node(&postgres);
    assert_eq!(by_node.values().sum::<usize>(), FOCAL_POINTS, "{by_node:?}");
    let by_b = by_node.get(&b.claimant()).copied().unwrap_or(0);
    assert!(by_b > 0, "b sent none: {by_node:?}; its log:\n{}", b.log());

    // Node a stops; once its planner's lease has expired, b may take the
    // role, but not with its configuration: it still does not plan.
    a.stop();
    let stopped = Instant::now();
    wait_for(
        "node a's planner lease expires",
        3 * LEASE + Duration::from_secs(60),
        || {
            b.assert_running();
            postgres.psql("SELECT lease_until < now() FROM planner") == "t"
        },
    );
    let expired = stopped.elapsed();
    while stopped.elapsed() < 3 * LEASE + Duration::from_secs(5) {
        b.assert_running();
        std::thread::sleep(Duration::from_millis(500));
    }
    // Renewed every sixth of the lease: b has looked many times since.
    assert_eq!(postgres.psql("SELECT node FROM planner"), "a");
    assert_eq!(
        postgres.psql("SELECT lease_until < now() FROM planner"),
        "t",
        "nobody renews the planner's role"
    );
    assert_eq!(
        extra_rows(&postgres, &extra),
        "0",
        "the extra reminder is planned"
    );
    assert_eq!(
        postgres.psql("SELECT count(*) FROM sends"),
        FOCAL_POINTS.to_string()
    );
    let log = b.whole_log();
    assert!(!log.contains("this node plans"), "b plans:\n{log}");
    let page = status_page(admin);
    assert!(page.contains("id=\"differs\""), "{page}");
    assert!(page.contains("node <code>a</code> planned with"), "{page}");
    b.stop();

    let repeated = assert_delivered(&shared, &sink, &postgres, 0);
    assert_eq!(repeated, 0);
    assert!(
        arrivals(&sink).iter().all(|(id, _)| *id != extra_id),
        "the extra reminder arrived"
    );
    println!(
        "configuration differs: b sent {by_b} of {FOCAL_POINTS} without planning; a's planner lease expired {expired:.1?} \
         after its stop, and b did not take the role in {:.1?}; by node: {by_node:?}",
        3 * LEASE + Duration::from_secs(5)
    );
}
