//! The connection to PostgreSQL: a small pool on a runtime of its own,
//! behind the outbox's synchronous calls.
//!
//! The `Outbox` trait is synchronous (SQLite's calls are short, and the
//! daemon makes them from its tasks or from blocking threads). tokio-postgres
//! is asynchronous; its blocking wrapper (`postgres`) panics when called
//! from inside a tokio runtime, which the daemon's tasks are. So the pool
//! lives on a runtime of its own (one thread, `herald-db`), and each call
//! sends its work there and waits on a channel: callable from an async
//! task, a blocking thread or a plain command alike. Every call has a
//! deadline, so that a database that stops answering (a cut network, a
//! server that hangs) is an error after `OPERATION_TIMEOUT`, never a call
//! that waits for ever.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::config::SslMode;

use crate::outbox::OutboxError;

/// How long one call may take, connecting included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// How many connections a node keeps: the sending loop, the lease
/// renewals, the web pages and the inbox each hold one for a moment.
const POOL_SIZE: usize = 6;

/// Where the database is and who herald is to it (`[state]` in
/// herald.toml).
#[derive(Clone)]
pub struct PostgresSettings {
    /// Host, port, database, user and TLS mode, from the URL; the password
    /// comes from a file or a systemd credential, never from herald.toml.
    pub config: tokio_postgres::Config,
    /// The URL as written, for messages (it holds no password).
    pub url: String,
    /// CA certificates for a server whose certificate a private CA signed.
    pub ca_file: Option<PathBuf>,
    /// This node's name, unique among the nodes sharing the database.
    pub node: String,
    /// How long a claim (and the planner's role) lasts unless renewed.
    pub lease: Duration,
}

impl PostgresSettings {
    /// The settings of `url` (`postgres://USER@HOST:PORT/DATABASE`, with
    /// `?sslmode=require` for TLS), with the password kept apart. A URL
    /// that holds a password is refused: herald.toml is readable by more
    /// people than the password should be.
    pub fn new(
        url: &str,
        password: Option<String>,
        node: &str,
        lease: Duration,
    ) -> Result<PostgresSettings, String> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|err| {
            format!("invalid database URL {url:?}: {err}; write postgres://USER@HOST:PORT/DATABASE")
        })?;
        if config.get_password().is_some() {
            return Err(
                "the database URL holds a password: remove it, and put it in a file named by password_file (or the systemd credential `database-password`)"
                    .to_owned(),
            );
        }
        if config.get_user().is_none() {
            return Err(format!(
                "the database URL {url:?} names no user: write postgres://USER@HOST:PORT/DATABASE"
            ));
        }
        if let Some(password) = password {
            config.password(password);
        }
        Ok(PostgresSettings {
            config,
            url: url.to_owned(),
            ca_file: None,
            node: node.to_owned(),
            lease,
        })
    }
}

impl std::fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("url", &self.url)
            .field("node", &self.node)
            .field("lease", &self.lease)
            .finish()
    }
}

impl PartialEq for PostgresSettings {
    fn eq(&self, other: &PostgresSettings) -> bool {
        // The password is compared too: a new one in the file is a change.
        self.url == other.url
            && self.config.get_password() == other.config.get_password()
            && self.ca_file == other.ca_file
            && self.node == other.node
            && self.lease == other.lease
    }
}

/// A pool of connections on the `herald-db` runtime.
pub(super) struct Database {
    /// `Some` until dropped: dropping a runtime inside another one panics,
    /// so `Drop` shuts it down in the background instead.
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
}

/// A failure that is not the database's own error.
#[derive(Debug)]
pub(super) struct Plain(pub String);

impl std::fmt::Display for Plain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Plain {}

/// What a call's work returns on failure.
pub(super) type DbError = Box<dyn std::error::Error + Send + Sync>;

impl Database {
    pub(super) fn connect(settings: &PostgresSettings) -> Result<Database, OutboxError> {
        let failed = |source: DbError| OutboxError {
            context: format!("connecting to the database {}", settings.url),
            source,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("herald-db")
            .enable_all()
            .build()
            .map_err(|err| failed(Box::new(err)))?;
        let mut config = settings.config.clone();
        config
            .application_name("herald")
            .connect_timeout(Duration::from_secs(5))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(15))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3)
            // The server ends a statement, or a transaction left idle (a
            // node that stopped in the middle), that the node has given up on.
            .options("-c statement_timeout=10000 -c idle_in_transaction_session_timeout=15000");
        let manager_config = ManagerConfig {
            // `Fast` hands out connections the network has dropped.
            recycling_method: RecyclingMethod::Verified,
        };
        let manager = if config.get_ssl_mode() == SslMode::Disable {
            Manager::from_config(config, tokio_postgres::NoTls, manager_config)
        } else {
            let tls = crate::tls::client_config(settings.ca_file.as_deref())
                .map_err(|why| failed(Box::new(Plain(why))))?;
            Manager::from_config(
                config,
                tokio_postgres_rustls::MakeRustlsConnect::new(tls),
                manager_config,
            )
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(OPERATION_TIMEOUT))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|err| failed(Box::new(err)))?;
        Ok(Database {
            runtime: Some(runtime),
            pool,
        })
    }

    /// Runs `work` with a connection of the pool, on the database's
    /// runtime, and waits for it, for at most [`OPERATION_TIMEOUT`]. A
    /// failure carries `context` (what herald was doing).
    pub(super) fn run<T, F, Fut>(&self, context: &str, work: F) -> Result<T, OutboxError>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, DbError>> + Send + 'static,
    {
        self.run_within(OPERATION_TIMEOUT, context, work)
    }

    /// [`Database::run`] with a deadline of its own: copying a whole outbox
    /// (`herald state migrate`) takes longer than any call of a node.
    pub(super) fn run_within<T, F, Fut>(
        &self,
        deadline: Duration,
        context: &str,
        work: F,
    ) -> Result<T, OutboxError>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, DbError>> + Send + 'static,
    {
        let pool = self.pool.clone();
        let (done, result) = std::sync::mpsc::sync_channel(1);
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime lives as long as the pool");
        runtime.spawn(async move {
            let outcome = tokio::time::timeout(deadline, async move {
                let client = pool.get().await.map_err(|err| Box::new(err) as DbError)?;
                work(client).await
            })
            .await
            .unwrap_or_else(|_| {
                Err(Box::new(Plain(format!(
                    "the database did not answer within {} s",
                    deadline.as_secs()
                ))) as DbError)
            });
            let _ = done.send(outcome);
        });
        let outcome = result
            .recv()
            .unwrap_or_else(|_| Err(Box::new(Plain("the database's runtime stopped".to_owned())) as DbError));
        outcome.map_err(|source| OutboxError {
            context: context.to_owned(),
            source,
        })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
