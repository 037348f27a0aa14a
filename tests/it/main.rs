//! herald's integration tests: one binary, one module per area.
//!
//! `harness` builds throwaway copies of the example configuration and runs
//! the real `herald` binary against them; `support` has the SMTP servers:
//! a fault-injecting one written here, and aiosmtpd (a real one), and the
//! other servers herald talks to (Dovecot, PostgreSQL).

mod harness;
mod support;

// `herald check` and the loader: every kind of bad input, each with its message and place.
mod check;
// The planner on the example config and its properties on random roadmaps.
mod plan;
// Rendered messages, as snapshots, in two languages and for the cover letter.
mod preview;
// The six official languages: every message as snapshots, Arabic right to left, plural forms, letters' bodies.
mod languages;
// import-roadmap on the real letters, round-tripped through check and plan.
mod import;
// The Debian package's parts: herald init, the manual pages, the completions.
mod package;
// The mailer: SMTP outcomes for every fault, TLS and AUTH, connection and rate limits, maildir.
mod send;
// The daemon: delivery once over real SMTP, faults, restarts, a crash.
mod daemon;
// The relay's limits: bursts that end on time, urgent notices first, the day's count across a restart.
mod limits;
// An event that moves after some of its reminders went out: each lead once.
mod moved_event;
// Calendar invitations, updates and cancellations, read by a real iCalendar parser.
mod attachments;
mod calendar;
// Notes and links on events and roadmaps: check, mail, invitations, the daemon.
mod notes;
// The operator's daily digest: preview, the daemon's daily send and its catch-up, bad [digest] values.
mod digest;
// The commands around the daemon: rehearsal, signals, history, retry, send.
mod commands;
// herald on the web: listeners, unsubscribe links, preferences, status, metrics.
mod web;
// The preferences page: what it shows and refuses, and filled in in headless Chromium.
mod web_preferences;
// The personal links in every message: List-Unsubscribe and one click, the footer, and a delivered link that unsubscribes.
mod web_mail;
// The unsubscribe link (RFC 8058): a GET changes nothing, a POST unsubscribes once, bad links are refused.
mod web_unsubscribe;
// Readers' choices: overrides of language and time zone in plan, preview, the daemon and history; requests for the operator.
mod overrides;
// The admin listener: /metrics parsed by Prometheus' parser, /healthz passing and stuck, the status page.
mod web_admin;
// Suppressions (bounces, unsubscribes) in the commands, the plan, check and the daemon's status.
mod suppressions;
// herald under systemd: sd_notify, reloads on edits of the config directory, logs.
mod service;
// The file watch's debounce, on a paused clock.
mod watch;
// The fuzz targets' corpora, replayed through the same checks.
mod fuzz_corpus;
// Clock jumps, a failing outbox, a second daemon, rehearsals, file modes.
mod reliability;
// The relay's limits foreseen by check and plan: hours and days over, late and early slots.
mod foresight;
// The inbox's sources against a real Dovecot: fetch, move, IDLE, failures.
mod inbox_sources;
// Incoming mail classified: the corpus of bounces, delays, auto-replies, unsubscribes, letters; hostile input.
mod inbox_corpus;
// What outgoing mail carries to tie replies to it: the VERP sender, the signed unsubscribe token, the link secret.
mod attribution;
// The process's mailbox end to end: reports and unsubscribes from a maildir and a real IMAP server suppress the next reminders.
mod inbox;
// The outbox's behaviour, the same on SQLite and on PostgreSQL: each test run on both.
mod outbox_suite;
// Several nodes on one PostgreSQL outbox: disjoint claims, leases taken over, one planner, one relay budget.
mod outbox_nodes;
// Two `herald run` processes on one PostgreSQL outbox: a burst shared, a node killed, the database stopped, a connection hanging.
mod nodes;
// `herald state migrate`: an SQLite outbox copied whole into a real PostgreSQL, and the copies it refuses.
mod state_migrate;
// Rules about the source tree itself.
mod tidy;
