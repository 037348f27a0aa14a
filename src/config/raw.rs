//! Serde structs shaped exactly like the files an operator writes. The
//! roadmap files' structs are `herald_import::schema`'s, re-exported here.
//!
//! Nothing here is validated beyond its TOML type; `config::load` turns these
//! into the model. Fields that are checked after parsing keep their span, so
//! a bad time zone or date is reported at its line and column. Unknown keys
//! are errors, because a misspelt key silently ignored is a reminder never sent.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub type Text = Spanned<String>;

/// `herald.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeraldFile {
    pub templates: Option<Text>,
    pub default_language: Option<Text>,
    pub sender: Spanned<SenderTable>,
    #[serde(default)]
    pub reminders: RemindersTable,
    #[serde(default)]
    pub parts_of_day: BTreeMap<String, Text>,
    #[serde(default)]
    pub venues: BTreeMap<String, Spanned<VenueTable>>,
    #[serde(default)]
    pub lists: BTreeMap<String, Spanned<ListTable>>,
    #[serde(default)]
    pub delivery: DeliveryTable,
    pub inbox: Option<Spanned<InboxTable>>,
    pub digest: Option<Spanned<DigestTable>>,
    pub http: Option<Spanned<HttpTable>>,
    pub state: Option<Spanned<StateTable>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderTable {
    pub from: Text,
    pub reply_to: Option<Text>,
    pub organization: Option<Text>,
    pub domain: Option<Text>,
    pub unsubscribe: Option<Text>,
    /// The envelope sender's address, to which herald adds `+TOKEN` (VERP).
    pub bounce_address: Option<Text>,
    /// The file of the link secrets (never the secrets themselves).
    pub link_secret_file: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemindersTable {
    pub leads: Option<Vec<Text>>,
    #[serde(default)]
    pub kinds: BTreeMap<String, Vec<Text>>,
    pub all_day_at: Option<Text>,
    pub notice_delay: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueTable {
    pub name: Text,
    pub city: Option<Text>,
    pub time_zone: Text,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListTable {
    pub name: Text,
    pub leads: Option<Vec<Text>>,
}

/// `[digest]`: the operator's daily digest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestTable {
    pub to: Vec<Text>,
    pub at: Option<Text>,
    pub time_zone: Option<Text>,
    pub language: Option<Text>,
}

/// `[state]`: a PostgreSQL database that several nodes share, instead of
/// the SQLite file in the state directory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateTable {
    /// `postgres://USER@HOST:PORT/DATABASE`, without a password.
    pub database: Option<Text>,
    /// The file holding the database user's password.
    pub password_file: Option<Text>,
    /// CA certificates for the server's TLS certificate (`?sslmode=require`).
    pub ca_file: Option<Text>,
    /// How long a claim lasts unless renewed ("30s").
    pub lease: Option<Text>,
}

/// `[http]`: the public pages and the admin listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTable {
    /// `ADDRESS:PORT` of the pages for focal points (behind a reverse proxy).
    pub public: Option<Text>,
    /// The address readers reach the public pages at, the base of every link.
    pub public_url: Option<Text>,
    /// `ADDRESS:PORT` of the status page, `/metrics` and `/healthz`.
    pub admin: Option<Text>,
    /// The file of the link secrets, as `[sender] link_secret_file`.
    pub secret_file: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryTable {
    pub transport: Option<Text>,
    pub maildir: Option<Text>,
    pub state_dir: Option<Text>,
    pub late_window: Option<Text>,
    pub redirect_to: Option<Text>,
    pub max_message_size: Option<Text>,
    pub smtp: Option<Spanned<SmtpTable>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpTable {
    pub host: Text,
    pub port: Option<u16>,
    pub security: Option<Text>,
    pub username: Option<Text>,
    pub password_file: Option<Text>,
    /// Present only so that a password written here gets a clear refusal;
    /// any TOML value, so that serde's type error cannot quote it.
    pub password: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub allow_plaintext_auth: bool,
    /// Extra trusted root certificates (PEM), relative to the config directory.
    pub ca_file: Option<Text>,
    pub timeout: Option<Text>,
    pub max_connections: Option<Spanned<usize>>,
    pub per_minute: Option<u32>,
    pub per_hour: Option<Spanned<u32>>,
    pub per_day: Option<Spanned<u32>>,
    pub max_early: Option<Text>,
}

/// `[inbox]`: the process's mailbox, a maildir or an IMAP account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxTable {
    pub maildir: Option<Text>,
    pub imap: Option<Spanned<ImapTable>>,
    pub processed: Option<Text>,
    pub unreadable: Option<Text>,
    pub poll: Option<Text>,
    pub bounce_threshold: Option<Spanned<u32>>,
    pub bounce_period: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapTable {
    pub host: Text,
    pub port: Option<u16>,
    pub security: Option<Text>,
    pub username: Text,
    pub password_file: Option<Text>,
    /// Present only so that a password written here gets a clear refusal.
    pub password: Option<Spanned<toml::Value>>,
    /// Extra trusted root certificates (PEM), relative to the config directory.
    pub ca_file: Option<Text>,
    pub folder: Option<Text>,
    pub timeout: Option<Text>,
}

/// `roadmaps/*.toml`: the roadmap file schema is written once, in
/// `herald_import::schema`, because `herald import-roadmap` writes the same
/// files; `DateText` is also the type of a letter's `send_at`.
pub use herald_import::schema::{DateText, EventTable, LinkTable, LocalText, RoadmapFile};

/// `lists/*.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FocalPointsFile {
    #[serde(default)]
    pub focal_points: Vec<Spanned<FocalPointTable>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FocalPointTable {
    pub name: Text,
    pub email: Text,
    pub mission: Option<Text>,
    pub honorific: Option<Text>,
    pub language: Option<Text>,
    pub time_zone: Option<Text>,
    pub lists: Option<Vec<Text>>,
    pub leads: Option<Vec<Text>>,
}

/// `letters/*.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LetterFile {
    pub id: Text,
    pub template: Option<Text>,
    pub lists: Vec<Text>,
    pub roadmap: Option<Text>,
    pub send_at: Option<DateText>,
    pub time_zone: Option<Text>,
    pub signatory: Option<Text>,
    pub signatory_title: Option<Text>,
    pub body: Spanned<BTreeMap<String, String>>,
    /// Files under the configuration directory that every copy carries.
    pub attachments: Option<Spanned<Vec<Text>>>,
}
