//! The outbox in a PostgreSQL database that several herald nodes share.
//!
//! Everything the SQLite outbox keeps is kept here, in the same shape
//! (`postgres/schema.rs`), behind the same [`Outbox`] trait; what differs is
//! what several nodes need:
//!
//! - **Claims** take due rows with `FOR UPDATE SKIP LOCKED`, so two nodes
//!   never take the same row, and put a **lease** on each (the node's
//!   claimant and an expiry on the database's clock). The node renews its
//!   leases while it sends (`renew_leases`); a claim also takes rows whose
//!   lease has expired (their node died or was cut off) and sends them
//!   again, with the same Message-ID. An outcome is recorded only on a row
//!   still leased to this node: a node that lost a row to another records
//!   nothing over it.
//! - A node that cannot renew stops sending before its leases expire
//!   ([`Outbox::may_send`]): the local deadline is taken from the monotonic
//!   clock *before* each claim or renewal is sent, so it always falls
//!   before the database's own expiry.
//! - **Planning** (reconcile, notices) runs on one node at a time: the one
//!   holding the planner row's lease (`postgres/leases.rs`), whose
//!   configuration's hash the row records; a node whose configuration
//!   differs does not plan, and says so.
//! - The relay's **rate limit** is one budget for all nodes: the moments
//!   taken at the relay are rows (`relay_turns`), taken under a lock.

mod connect;
mod copy;
mod incoming;
mod leases;
mod overrides;
mod schema;
mod sends;

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};

use jiff::Timestamp;

use crate::key::{AddressKey, KeyPrefix, SendKey};
use crate::outbox::{
    Asked, CalendarRow, Changes, Claimant, Counts, Effect, Entry, IncomingRow, Lifted, NewRequest, Outbox,
    OutboxError, Override, Pace, Planning, Recorded, Request, State, Suppression, Taken,
};

use connect::{Database, DbError, Plain};
pub use connect::{OPERATION_TIMEOUT, PostgresSettings};

/// How long `herald state migrate` may take to copy a whole outbox in or
/// read it back (some 200,000 rows a second were measured).
const COPY_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The PostgreSQL outbox of one node.
pub struct PostgresOutbox {
    db: Arc<Database>,
    settings: PostgresSettings,
    /// Whose name claims are made in: `node:NAME` for the daemon,
    /// `command:PID:START@NAME` for a command.
    claimant: Claimant,
    /// Until when, on this process's monotonic clock, every lease this
    /// node holds is surely valid: the instant before its last successful
    /// claim or renewal was sent, plus the lease. `None` before the first.
    /// The real clock's, whatever the daemon's: leases end on the
    /// database's clock, which no rehearsal steps.
    leases_valid_until: Mutex<Option<Duration>>,
    /// The daemon's hold on its node's name (`nodes`); `None` for a command.
    incarnation: Option<String>,
}

impl Drop for PostgresOutbox {
    /// A daemon that stops lets go of its node's name at once, so that its
    /// next start need not wait for the hold to end.
    fn drop(&mut self) {
        if let Some(me) = self.incarnation.take() {
            let _ = self
                .db
                .run("letting go of this node's name", move |c| async move {
                    leases::let_go_of_name(&c, &me).await
                });
        }
    }
}

impl std::fmt::Debug for PostgresOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOutbox")
            .field("url", &self.settings.url)
            .field("claimant", &self.claimant)
            .finish()
    }
}

impl PostgresOutbox {
    /// Connects to the database of `settings` and migrates it, to claim
    /// sends as this node's daemon, once it holds the node's name: a
    /// process that still holds it (another machine given the same name, or
    /// this node's daemon before a crash, whose hold lasts a lease) is
    /// waited for, a lease at most, then refused.
    pub fn open_daemon(settings: &PostgresSettings) -> Result<PostgresOutbox, OutboxError> {
        let claimant = Claimant::from_stored(format!("node:{}", settings.node));
        let mut outbox = PostgresOutbox::open_as(settings, claimant)?;
        let incarnation = leases::incarnation();
        let started = SystemClock.monotonic();
        let mut said = false;
        loop {
            let (node, me, lease) = (settings.node.clone(), incarnation.clone(), outbox.lease_secs());
            let held_until = outbox.db.run("taking this node's name", move |c| async move {
                leases::take_name(&c, &node, &me, lease).await
            })?;
            let Some(held_until) = held_until else { break };
            if SystemClock.monotonic().saturating_sub(started) > settings.lease + Duration::from_secs(2) {
                return Err(OutboxError {
                    context: format!("taking the node name {:?}", settings.node),
                    source: Box::new(Plain(format!(
                        "another herald process holds it (until {held_until}): give each node its own name with HERALD_NODE"
                    ))),
                });
            }
            if !said {
                tracing::warn!(
                    node = %settings.node,
                    %held_until,
                    "another herald process holds this node's name (this node before a crash, or another machine with the same name); waiting for its hold to end"
                );
                said = true;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        outbox.incarnation = Some(incarnation);
        Ok(outbox)
    }

    /// Connects and migrates, to claim sends as this process as a command.
    pub fn open(settings: &PostgresSettings) -> Result<PostgresOutbox, OutboxError> {
        let claimant = Claimant::from_stored(format!("{}@{}", Claimant::this_command(), settings.node));
        PostgresOutbox::open_as(settings, claimant)
    }

    fn open_as(settings: &PostgresSettings, claimant: Claimant) -> Result<PostgresOutbox, OutboxError> {
        let db = Arc::new(Database::connect(settings)?);
        let version = db.run(
            &format!("migrating the database {}", settings.url),
            |mut c| async move {
                let tx = c.transaction().await?;
                let version = schema::migrate(&tx).await?;
                tx.commit().await?;
                Ok(version)
            },
        )?;
        if version > schema::current_version() {
            return Err(OutboxError {
                context: format!("opening the database {}", settings.url),
                source: Box::new(Plain(format!(
                    "its schema is version {version}, newer than this herald's ({}): a newer herald uses it; upgrade this node",
                    schema::current_version()
                ))),
            });
        }
        Ok(PostgresOutbox {
            db,
            settings: settings.clone(),
            claimant,
            leases_valid_until: Mutex::new(None),
            incarnation: None,
        })
    }

    pub fn settings(&self) -> &PostgresSettings {
        &self.settings
    }

    /// Whether the database holds nothing herald wrote (`herald state
    /// migrate` refuses to copy over something).
    pub fn is_empty(&self) -> Result<bool, OutboxError> {
        self.db
            .run("looking whether the database is empty", |c| async move {
                copy::is_empty(&c).await
            })
    }

    /// Copies rows as they are (`herald state migrate`), in one transaction.
    pub fn import(&self, rows: crate::outbox::Export) -> Result<(), OutboxError> {
        self.db.run_within(
            COPY_TIMEOUT,
            "copying the state into the database",
            |mut c| async move { copy::import(&mut c, rows).await },
        )
    }

    /// Every row, as it is stored (`herald state migrate`'s check).
    pub fn export(&self) -> Result<crate::outbox::Export, OutboxError> {
        self.db
            .run_within(COPY_TIMEOUT, "reading the whole state", |mut c| async move {
                copy::export(&mut c).await
            })
    }

    /// The attempts of one send, oldest first: (at, outcome, reply).
    pub fn attempts(&self, key: &str) -> Result<Vec<(Timestamp, String, Option<String>)>, OutboxError> {
        let key = key.to_owned();
        self.db.run(
            "reading attempts",
            |c| async move { sends::attempts(&c, &key).await },
        )
    }

    /// Runs a claim or a renewal, and moves the local deadline of the
    /// leases when it succeeds, from the instant before it was sent.
    fn leasing<T: Send + 'static, F, Fut>(&self, context: &str, work: F) -> Result<T, OutboxError>
    where
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, DbError>> + Send + 'static,
    {
        let sent = SystemClock.monotonic();
        let result = self.db.run(context, work)?;
        let mut valid_until = self.leases_valid_until.lock().unwrap_or_else(|p| p.into_inner());
        let until = sent + self.settings.lease;
        if valid_until.is_none_or(|old| old < until) {
            *valid_until = Some(until);
        }
        Ok(result)
    }

    fn lease_secs(&self) -> f64 {
        self.settings.lease.as_secs_f64()
    }
}

impl Outbox for PostgresOutbox {
    fn entries(&self) -> Result<Vec<Entry>, OutboxError> {
        self.db
            .run("reading the outbox", |c| async move { sends::entries(&c).await })
    }

    fn entries_for(&self, keys: &[&SendKey]) -> Result<Vec<Entry>, OutboxError> {
        let keys: Vec<String> = keys.iter().map(|key| key.as_str().to_owned()).collect();
        self.db.run("reading the outbox", |c| async move {
            sends::entries_for(&c, &keys).await
        })
    }

    fn entries_in(&self, state: State) -> Result<Vec<Entry>, OutboxError> {
        self.db.run("reading the outbox", move |c| async move {
            sends::entries_in(&c, state).await
        })
    }

    fn entries_under(&self, prefix: &KeyPrefix) -> Result<Vec<Entry>, OutboxError> {
        let prefix = prefix.as_str().to_owned();
        self.db.run("reading the outbox", |c| async move {
            sends::entries_under(&c, &prefix).await
        })
    }

    fn planned_until(&self) -> Result<Option<Timestamp>, OutboxError> {
        self.db
            .run("reading how far the plan is in the outbox", |c| async move {
                sends::planned_until(&c).await
            })
    }

    fn apply(&self, changes: &Changes, now: Timestamp) -> Result<usize, OutboxError> {
        if changes.is_empty() && changes.planned_until.is_none() {
            return Ok(0);
        }
        let changes = changes.clone();
        self.db
            .run("updating the outbox with the new plan", move |mut c| async move {
                sends::apply(&mut c, &changes, now).await
            })
    }

    fn claim_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Entry>, OutboxError> {
        let (claimant, lease) = (self.claimant.clone(), self.lease_secs());
        self.leasing("claiming due sends", move |mut c| async move {
            leases::claim(&mut c, &claimant, lease, now, limit, leases::ClaimOrder::Due).await
        })
    }

    fn claim_most_urgent(&self, now: Timestamp, limit: usize) -> Result<Vec<Entry>, OutboxError> {
        let (claimant, lease) = (self.claimant.clone(), self.lease_secs());
        self.leasing("claiming due sends", move |mut c| async move {
            leases::claim(&mut c, &claimant, lease, now, limit, leases::ClaimOrder::Urgency).await
        })
    }

    fn claim_keys(&self, keys: &[SendKey], now: Timestamp) -> Result<Vec<Entry>, OutboxError> {
        let keys: Vec<String> = keys.iter().map(|key| key.as_str().to_owned()).collect();
        let (claimant, lease) = (self.claimant.clone(), self.lease_secs());
        self.leasing("claiming sends", move |mut c| async move {
            leases::claim_keys(&mut c, &claimant, lease, &keys, now).await
        })
    }

    fn record(&self, outcomes: &[(SendKey, Recorded)], now: Timestamp) -> Result<usize, OutboxError> {
        if outcomes.is_empty() {
            return Ok(0);
        }
        let outcomes = outcomes.to_vec();
        let claimant = self.claimant.clone();
        self.db.run("recording outcomes", move |mut c| async move {
            leases::record(&mut c, &claimant, &outcomes, now).await
        })
    }

    fn next_due(&self) -> Result<Option<Timestamp>, OutboxError> {
        self.db.run("finding the next due send", |c| async move {
            leases::next_due(&c).await
        })
    }

    fn departures_since(&self, since: Timestamp) -> Result<Vec<Timestamp>, OutboxError> {
        self.db.run("reading what the relay took", move |c| async move {
            sends::departures_since(&c, since).await
        })
    }

    fn set_pace(&self, pace: &[Pace]) -> Result<(), OutboxError> {
        let pace = pace.to_vec();
        self.db
            .run("writing when sends are released", move |mut c| async move {
                sends::set_pace(&mut c, &pace).await
            })
    }

    fn clear_releases(&self) -> Result<usize, OutboxError> {
        self.db.run("clearing early releases", |c| async move {
            sends::clear_releases(&c).await
        })
    }

    fn claimants_in_flight(&self) -> Result<Vec<Claimant>, OutboxError> {
        self.db.run("reading who has sends in flight", |c| async move {
            leases::claimants_in_flight(&c).await
        })
    }

    fn release_claims(
        &self,
        claimants: &[Claimant],
        reason: &str,
        now: Timestamp,
    ) -> Result<usize, OutboxError> {
        let (claimants, reason) = (claimants.to_vec(), reason.to_owned());
        self.db.run("releasing sends in flight", move |mut c| async move {
            leases::release_claims(&mut c, &claimants, &reason, now).await
        })
    }

    fn revive_too_late(&self, since: Timestamp, now: Timestamp) -> Result<usize, OutboxError> {
        self.db
            .run("reviving sends skipped as too late", move |mut c| async move {
                sends::revive_too_late(&mut c, since, now).await
            })
    }

    fn retry_failed(&self, key: Option<&SendKey>, now: Timestamp) -> Result<usize, OutboxError> {
        let key = key.map(|key| key.as_str().to_owned());
        self.db.run("planning failed sends again", move |c| async move {
            sends::retry_failed(&c, key.as_deref(), now).await
        })
    }

    fn counts(&self) -> Result<Counts, OutboxError> {
        self.db
            .run("counting sends", |c| async move { sends::counts(&c).await })
    }

    fn pending(&self) -> Result<usize, OutboxError> {
        self.db.run(
            "counting planned sends",
            |c| async move { sends::pending(&c).await },
        )
    }

    fn suppressed_from(&self, now: Timestamp) -> Result<usize, OutboxError> {
        self.db.run("counting suppressed sends", move |c| async move {
            sends::suppressed_from(&c, now).await
        })
    }

    fn calendar_rows(&self) -> Result<Vec<CalendarRow>, OutboxError> {
        self.db.run("reading the calendar state", |c| async move {
            sends::calendar_rows(&c).await
        })
    }

    fn unclaim(&self, keys: &[SendKey], now: Timestamp) -> Result<usize, OutboxError> {
        let keys: Vec<String> = keys.iter().map(|key| key.as_str().to_owned()).collect();
        let claimant = self.claimant.clone();
        self.db
            .run("putting claimed sends back", move |mut c| async move {
                leases::unclaim(&mut c, &claimant, &keys, now).await
            })
    }

    fn entry_by_token(&self, token: &str) -> Result<Option<Entry>, OutboxError> {
        let token = token.to_owned();
        self.db.run("finding a send by its token", |c| async move {
            sends::entry_by_token(&c, &token).await
        })
    }

    fn has_sent_to(&self, address: &AddressKey) -> Result<bool, OutboxError> {
        let address = address.clone();
        self.db.run("looking for sends to an address", |c| async move {
            incoming::has_sent_to(&c, &address).await
        })
    }

    fn incoming_seen(&self, message_id: &str) -> Result<bool, OutboxError> {
        let message_id = message_id.to_owned();
        self.db.run("looking up an incoming message", |c| async move {
            incoming::seen(&c, &message_id).await
        })
    }

    fn take_incoming(
        &self,
        row: &IncomingRow,
        effect: &Effect,
        now: Timestamp,
    ) -> Result<Taken, OutboxError> {
        let (row, effect) = (row.clone(), effect.clone());
        self.db
            .run("recording an incoming message", move |mut c| async move {
                incoming::take(&mut c, &row, &effect, now).await
            })
    }

    fn incoming_since(&self, since: Timestamp) -> Result<Vec<IncomingRow>, OutboxError> {
        self.db.run("reading incoming messages", move |c| async move {
            incoming::since(&c, since).await
        })
    }

    fn suppressions(&self) -> Result<Vec<Suppression>, OutboxError> {
        self.db.run("reading suppressions", |c| async move {
            incoming::suppressions(&c).await
        })
    }

    fn lift_suppressions(&self, address: &AddressKey, now: Timestamp) -> Result<Lifted, OutboxError> {
        let address = address.clone();
        self.db.run("lifting suppressions", move |mut c| async move {
            incoming::lift(&mut c, &address, now).await
        })
    }

    fn suppress(
        &self,
        address: &AddressKey,
        list: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<bool, OutboxError> {
        let (address, list, reason) = (address.clone(), list.to_owned(), reason.to_owned());
        self.db
            .run("suppressing an address on a list", move |mut c| async move {
                incoming::suppress_on_list(&mut c, &address, &list, &reason, now).await
            })
    }

    fn lift_list_suppression(
        &self,
        address: &AddressKey,
        list: &str,
        now: Timestamp,
    ) -> Result<bool, OutboxError> {
        let (address, list) = (address.clone(), list.to_owned());
        self.db
            .run("lifting a suppression on a list", move |mut c| async move {
                incoming::lift_on_list(&mut c, &address, &list, now).await
            })
    }

    fn settled_since(&self, since: Timestamp) -> Result<Vec<Entry>, OutboxError> {
        self.db
            .run("reading the sends settled lately", move |c| async move {
                sends::settled_since(&c, since).await
            })
    }

    fn get_value(&self, name: &str) -> Result<Option<String>, OutboxError> {
        let name = name.to_owned();
        self.db.run("reading saved state", |c| async move {
            sends::get_value(&c, &name).await
        })
    }

    fn set_value(&self, name: &str, value: &str) -> Result<(), OutboxError> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.db.run("saving state", |c| async move {
            sends::set_value(&c, &name, &value).await
        })
    }

    fn overrides(&self) -> Result<Vec<Override>, OutboxError> {
        self.db.run("reading readers' overrides", |c| async move {
            overrides::all(&c).await
        })
    }

    fn override_of(&self, address: &AddressKey) -> Result<Option<Override>, OutboxError> {
        let address = address.clone();
        self.db.run("reading a reader's override", |c| async move {
            overrides::of(&c, &address).await
        })
    }

    fn set_override(&self, choice: &Override) -> Result<(), OutboxError> {
        let choice = choice.clone();
        self.db.run("recording a reader's override", |c| async move {
            overrides::set(&c, &choice).await
        })
    }

    fn remove_overrides(&self, addresses: &[AddressKey]) -> Result<usize, OutboxError> {
        if addresses.is_empty() {
            return Ok(0);
        }
        let addresses = addresses.to_vec();
        self.db.run("removing readers' overrides", |c| async move {
            overrides::remove(&c, &addresses).await
        })
    }

    fn add_request(&self, request: &NewRequest, now: Timestamp) -> Result<Asked, OutboxError> {
        let request = request.clone();
        self.db
            .run("recording a request for the operator", move |mut c| async move {
                overrides::add_request(&mut c, &request, now).await
            })
    }

    fn requests(&self, open_only: bool) -> Result<Vec<Request>, OutboxError> {
        self.db
            .run("reading requests for the operator", move |c| async move {
                overrides::requests(&c, open_only).await
            })
    }

    fn settle_request(&self, id: i64, now: Timestamp) -> Result<bool, OutboxError> {
        self.db.run("settling a request", move |c| async move {
            overrides::settle(&c, id, now).await
        })
    }

    fn claimant(&self) -> Claimant {
        self.claimant.clone()
    }

    fn renew_leases(&self) -> Result<usize, OutboxError> {
        let (claimant, lease) = (self.claimant.clone(), self.lease_secs());
        let hold = self
            .incarnation
            .clone()
            .map(|me| (self.settings.node.clone(), me));
        self.leasing(
            "renewing the leases of the sends in flight",
            move |c| async move {
                // The name first: a node whose name another process took
                // renews nothing, and so stops sending.
                if let Some((node, me)) = hold {
                    leases::keep_name(&c, &node, &me, lease).await?;
                }
                leases::renew(&c, &claimant, lease).await
            },
        )
    }

    fn may_send(&self, margin: Duration) -> bool {
        let valid_until = *self.leases_valid_until.lock().unwrap_or_else(|p| p.into_inner());
        valid_until.is_some_and(|until| SystemClock.monotonic() + margin < until)
    }

    fn lease(&self) -> Option<Duration> {
        Some(self.settings.lease)
    }

    fn plan_as(&self, config_hash: &str) -> Result<Planning, OutboxError> {
        let (node, hash, lease) = (
            self.settings.node.clone(),
            config_hash.to_owned(),
            self.lease_secs(),
        );
        self.db.run("taking the planner's role", move |mut c| async move {
            leases::plan_as(&mut c, &node, &hash, lease).await
        })
    }

    fn take_turn(
        &self,
        limits: &crate::pace::Limits,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, OutboxError> {
        let (limits, node) = (*limits, self.settings.node.clone());
        self.db
            .run("taking a moment at the relay", move |mut c| async move {
                leases::take_turn(&mut c, &limits, now, &node).await.map(Some)
            })
    }
}

/// When a planned send may go, as SQLite's `GO_AT` (the index
/// `sends_planned_go_at` is on this expression).
const GO_AT: &str = "COALESCE(next_attempt, release_at, due)";

/// The columns [`entry_from_row`] reads, in order.
const COLUMNS: &str = "key, kind, subject, lead, recipient, list, language, template, due, zone, \
                       revision, state, attempts, next_attempt, last_reply, reason, updated_at, sent_at, too_late";

fn secs(at: Timestamp) -> i64 {
    at.as_second()
}

/// A stored value that does not read back: an error naming the column.
fn unreadable(column: &str, why: impl std::fmt::Display) -> DbError {
    Box::new(Plain(format!("the column {column} holds {why}")))
}

/// A stored instant, in seconds since the epoch; one out of range is an
/// error, not a silent 1970.
fn instant(row: &tokio_postgres::Row, column: &str) -> Result<Timestamp, DbError> {
    let secs: i64 = row.try_get(column)?;
    Timestamp::from_second(secs).map_err(|err| unreadable(column, err))
}

fn maybe_instant(row: &tokio_postgres::Row, column: &str) -> Result<Option<Timestamp>, DbError> {
    let secs: Option<i64> = row.try_get(column)?;
    secs.map(|secs| Timestamp::from_second(secs).map_err(|err| unreadable(column, err)))
        .transpose()
}

/// A row of `sends` with the [`COLUMNS`] (by name).
fn entry_from_row(row: &tokio_postgres::Row) -> Result<Entry, DbError> {
    let key: String = row.try_get("key")?;
    let state: String = row.try_get("state")?;
    let attempts: i32 = row.try_get("attempts")?;
    Ok(Entry {
        spec: crate::outbox::SendSpec {
            key: SendKey::parse(&key).map_err(|err| unreadable("key", err))?,
            recipient: row.try_get("recipient")?,
            list: row.try_get("list")?,
            language: row.try_get("language")?,
            template: row.try_get("template")?,
            due: instant(row, "due")?,
            zone: row.try_get("zone")?,
        },
        revision: row.try_get("revision")?,
        state: State::parse(&state).ok_or_else(|| unreadable("state", format!("unknown state {state:?}")))?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_attempt: maybe_instant(row, "next_attempt")?,
        last_reply: row.try_get("last_reply")?,
        reason: row.try_get("reason")?,
        updated_at: instant(row, "updated_at")?,
        sent_at: maybe_instant(row, "sent_at")?,
        too_late: row.try_get("too_late")?,
    })
}
