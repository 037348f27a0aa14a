//! herald keeps the focal points of an intergovernmental process informed.
//!
//! It reads a roadmap of meetings, deadlines and circulations, and the
//! distribution lists, from a configuration directory; renders reminders and
//! cover letters from Handlebars templates; and delivers them at lead times
//! before each event. ARCHITECTURE.md has the map; in reading order:
//!
//! * [`key`]: what identifies a send: its kind, its key, the rule for addresses.
//! * [`model`]: the validated domain, no I/O.
//! * [`config`]: files -> model, with every problem and its place.
//! * [`plan`]: model + time window -> the sends, a pure function.
//! * [`resolve`]: a planned send -> what it is about, found in the model once.
//! * [`render`]: a resolved send -> an RFC 5322 message.
//! * [`outbox`]: the durable state of every send.
//! * [`pace`]: the relay's limits: when a message may leave, when a burst starts.
//! * [`foresight`]: what the limits will do to a plan: early, late, over.
//! * [`inbox`]: the process's mailbox: bounces, unsubscribes, replies.
//! * [`tokens`]: what outgoing mail carries to tie replies to it: VERP, signed unsubscribe tokens.
//! * [`digest`]: the operator's daily digest: what happened, what comes next.
//! * [`scheduler`]: plan vs. outbox, and sending what is due.
//! * [`daemon`]: `herald run`: reloads, signals, shutdown.
//! * [`web`]: the pages for focal points, the status page, `/metrics` and `/healthz`.
//! * [`metrics`]: what `/metrics` counts.
//! * [`state`]: the state directory: private modes, the daemon's lock.
//! * [`systemd`]: READY, RELOADING, WATCHDOG, STATUS, STOPPING.
//! * [`watch`]: an edit in the configuration directory -> a reload.
//! * [`cli`]: the commands; the only module that prints.
//!
//! `herald import-roadmap` (a roadmap table in a letter -> roadmap TOML) is
//! the `herald_import` crate (`crates/herald-import/`), which also holds the
//! roadmap file schema that [`config`] reads.

pub mod calendar;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod diagnostics;
pub mod digest;
pub mod foresight;
pub mod inbox;
pub mod key;
pub mod metrics;
pub mod model;
pub mod outbox;
pub mod pace;
pub mod plan;
pub mod render;
pub mod resolve;
pub mod scheduler;
pub mod send;
pub mod state;
pub mod systemd;
pub mod tls;
pub mod tokens;
pub mod watch;
pub mod web;
