//! [`PgStoreBuilder`]: every option, and connecting: a writer alone (the CLI), or a store
//! with its schema checked (or made), its mirror loaded and its follower, listener and
//! sender running.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use jwe_session_core::{Clock, Journal, MemoryStore, RevocationQueue, SystemClock};
use sqlx::PgPool;
use tokio::sync::{oneshot, watch, Notify};

use crate::error::BackendError;
use crate::follower::{follow_loop, listen_loop};
use crate::schema::{self, Sql, DEFAULT_SCHEMA};
use crate::sender::send_loop;
use crate::store::{AbortOnDrop, PgStore, Shared};
use crate::writer::{PgWriter, Writer};

/// The default limit on any one call to PostgreSQL.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// How often a follower reads the table without being told to (default): the fallback
/// for a `LISTEN` that is unavailable (PgBouncer in transaction mode) or has silently
/// stopped delivering.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How long the mirror keeps a session revocation by default: what the default lifetimes
/// need ([`Lifetimes::mirror_window`]: the access lifetime, 15 min, plus the grace, 60 s).
///
/// [`Lifetimes::mirror_window`]: jwe_session_core::Lifetimes::mirror_window
pub const DEFAULT_MIRROR_WINDOW: Duration =
    jwe_session_core::Lifetimes::DEFAULT.mirror_window(false, Duration::ZERO);

// Here, not in `store`: the builder makes the store, so the store does not import it.
impl PgStore {
    /// Starts configuring a store on the app's own pool. The store borrows a connection
    /// per call (never on the request path) and opens one more, outside the pool and with
    /// its options, to hold `LISTEN`.
    pub fn builder(pool: PgPool) -> PgStoreBuilder {
        PgStoreBuilder {
            pool,
            schema: DEFAULT_SCHEMA.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            max_backoff: Duration::from_secs(5),
            window: DEFAULT_MIRROR_WINDOW,
            poll: DEFAULT_POLL_INTERVAL,
            listen: true,
            migrate: true,
            clock: Arc::new(SystemClock),
            journal: Journal::default(),
        }
    }
}

/// Configures a [`PgStore`].
#[derive(Clone)]
#[must_use]
pub struct PgStoreBuilder {
    pool: PgPool,
    schema: String,
    timeout: Duration,
    max_backoff: Duration,
    window: Duration,
    poll: Duration,
    listen: bool,
    migrate: bool,
    clock: Arc<dyn Clock>,
    journal: Journal,
}

impl fmt::Debug for PgStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The pool's options may hold a password: leave them out.
        f.debug_struct("PgStoreBuilder")
            .field("schema", &self.schema)
            .field("timeout", &self.timeout)
            .field("mirror_window", &self.window)
            .field("poll_interval", &self.poll)
            .field("listen", &self.listen)
            .field("migrate", &self.migrate)
            .finish_non_exhaustive()
    }
}

impl PgStoreBuilder {
    /// The PostgreSQL schema the tables live in (default [`DEFAULT_SCHEMA`]); it also
    /// names the `NOTIFY` channel. Give each app its own to share one database. A plain
    /// lower-case identifier (`[a-z_][a-z0-9_]*`, at most 48 bytes).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The longest any one call may take (default [`DEFAULT_TIMEOUT`]); the first load of
    /// the mirror gets at least 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest wait between reconnection attempts and between re-sends of queued
    /// revocations (default 5 s).
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// How long after it was made the mirror keeps a session revocation (default
    /// [`DEFAULT_MIRROR_WINDOW`]). It must cover the access lifetime plus leeway; for
    /// fail-open renewal, the longest a token can be renewed (see the crate docs); the
    /// session layer checks.
    pub fn mirror_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// How often the follower reads the table without a `NOTIFY` (default
    /// [`DEFAULT_POLL_INTERVAL`]): the bound on how late a revocation reaches this
    /// instance when `LISTEN` is off or its connection silently stopped delivering.
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll = every.max(Duration::from_millis(10));
        self
    }

    /// Whether to hold `LISTEN` on a connection of its own (default `true`). Turn it off
    /// behind a pooler that cannot (PgBouncer in transaction mode): the follower then
    /// reads every [poll interval](Self::poll_interval).
    pub fn listen(mut self, listen: bool) -> Self {
        self.listen = listen;
        self
    }

    /// Whether [`connect`](Self::connect) creates the schema or brings it to this
    /// version's format ([`migrate`](crate::migrate); default `true`). Turn it off when
    /// the schema is made by your own migrations (the crate's `sql/` files) and the
    /// service's role holds only the grants of `sql/grants.sql`; `connect` then refuses a
    /// missing schema or one of another format.
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// The clock used to judge expiry in the mirror (default: system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Keep this instance's revocations in a durable [`FileStore`](jwe_session_file::FileStore)
    /// as well: a revocation PostgreSQL did not take survives a restart of this process
    /// and is re-sent at the next start, and after the database comes back older every
    /// revocation this instance made (until it expires) is written back. The file is this
    /// instance's own; give each instance its path.
    #[cfg(feature = "file")]
    pub fn queue_in(mut self, file: jwe_session_file::FileStore) -> Self {
        file.refuse_spooled(
            "this file is a PostgreSQL store's local queue, not what the service's instances \
             read: revoke through PostgreSQL (jwe-session revoke --postgres URL ...)",
        );
        self.journal = Journal::new(file);
        self
    }

    fn writer(&self) -> Result<Writer, BackendError> {
        Ok(Writer {
            pool: self.pool.clone(),
            sql: Arc::new(Sql::new(&self.schema)?),
            timeout: self.timeout,
            seen: AtomicI64::new(0),
        })
    }

    /// Connects a writer only: no mirror, no follower, no migration. For tools that
    /// revoke (the CLI); its start-up does not depend on how many revocations are stored.
    /// Ask [`PgWriter::serving`] whether a service's schema is there before revoking.
    ///
    /// # Errors
    /// [`BackendError::InvalidSchemaName`]; [`BackendError::Unavailable`] or
    /// [`BackendError::Timeout`] if PostgreSQL cannot be reached.
    pub async fn connect_writer(self) -> Result<PgWriter, BackendError> {
        let writer = PgWriter::from(self.writer()?);
        // A first round trip, so an unreachable database is an error here.
        writer.serving().await?;
        Ok(writer)
    }

    /// Makes (or checks) the schema, loads the mirror (the cut-offs in force and the
    /// window's session revocations), and starts following the table, listening on its
    /// channel and sending what is queued.
    ///
    /// # Errors
    /// [`BackendError::Schema`] for a missing schema (with `migrate(false)`) or one of
    /// another format; [`BackendError::InvalidSchemaName`]; [`BackendError::Unavailable`]
    /// or [`BackendError::Timeout`] if PostgreSQL cannot be reached or the first load
    /// fails: a service should not start with an empty view of who is logged out.
    pub async fn connect(self) -> Result<PgStore, BackendError> {
        let writer = self.writer()?;
        if self.migrate {
            schema::migrate_within(
                &self.pool,
                &self.schema,
                self.timeout.max(Duration::from_secs(30)),
            )
            .await?;
        } else {
            schema::check_format(&self.pool, &writer.sql, self.timeout).await?;
        }
        let (updates, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            writer,
            mirror: MemoryStore::new(),
            window: self.window,
            queue: RevocationQueue::new(),
            queued: Notify::new(),
            news: Notify::new(),
            journal: self.journal,
            connected: AtomicBool::new(false),
            listening: AtomicBool::new(false),
            updates,
            clock: self.clock,
            max_backoff: self.max_backoff,
            poll: self.poll,
            repairs: AtomicU64::new(0),
        });
        // What the durable queue holds from earlier runs goes out again: rows that change
        // nothing cost a lookup each and announce nothing.
        shared.enqueue(shared.journal.snapshot(shared.clock.now()));
        let mut tasks = Vec::with_capacity(3);
        if self.listen {
            // Before the first load: a write that lands during it wakes a catch-up.
            tasks.push(AbortOnDrop(tokio::spawn(listen_loop(
                Arc::clone(&shared),
                self.pool.clone(),
            ))));
        }
        let (first_tx, first_rx) = oneshot::channel();
        tasks.push(AbortOnDrop(tokio::spawn(follow_loop(
            Arc::clone(&shared),
            first_tx,
        ))));
        match first_rx.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(BackendError::unavailable("the revocation follower stopped")),
        }
        tasks.push(AbortOnDrop(tokio::spawn(send_loop(Arc::clone(&shared)))));
        Ok(PgStore {
            shared,
            _tasks: tasks.into(),
        })
    }
}
