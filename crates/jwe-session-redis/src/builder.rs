//! [`RedisStoreBuilder`]: every option, and connecting: a writer alone (the CLI), or a
//! store with its mirror loaded and its follower and sender running.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jwe_session_core::{Clock, Journal, SystemClock};
use tokio::sync::{oneshot, watch};

use crate::conn::{Conn, Target};
use crate::error::BackendError;
use crate::follower::{follow_loop, BLOCK};
use crate::layout::{self, Keys, StreamId};
use crate::mirror::Mirror;
use crate::outbox::Outbox;
use crate::sender::send_loop;
use crate::store::{AbortOnDrop, RedisStore, Shared};
use crate::writer::{RedisWriter, Writer};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "jwe-session:";

/// The default limit on any one Redis call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

/// How long the mirror keeps a session revocation by default: what the default lifetimes
/// need ([`Lifetimes::mirror_window`]: the access lifetime, 15 min, plus the grace, 60 s).
///
/// [`Lifetimes::mirror_window`]: jwe_session_core::Lifetimes::mirror_window
pub const DEFAULT_MIRROR_WINDOW: Duration =
    jwe_session_core::Lifetimes::DEFAULT.mirror_window(false, Duration::ZERO);

// Here, not in `store`: the builder makes the store, so the store does not import it.
impl RedisStore {
    /// Starts configuring a store for the Redis at `url` (`redis://host:port/db`, or
    /// `rediss://` for TLS).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        Self::configure(vec![url.into()], false)
    }

    /// Starts configuring a store for a Redis Cluster, given some of its nodes
    /// (`redis://` or `rediss://` URLs); the rest are discovered.
    pub fn cluster_builder<S: Into<String>>(
        nodes: impl IntoIterator<Item = S>,
    ) -> RedisStoreBuilder {
        Self::configure(nodes.into_iter().map(Into::into).collect(), true)
    }

    fn configure(urls: Vec<String>, cluster: bool) -> RedisStoreBuilder {
        RedisStoreBuilder {
            target: Target {
                urls,
                cluster,
                root_ca: None,
            },
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            max_backoff: Duration::from_secs(5),
            window: DEFAULT_MIRROR_WINDOW,
            clock: Arc::new(SystemClock),
            journal: Journal::default(),
        }
    }
}

/// Configures a [`RedisStore`].
#[derive(Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    target: Target,
    prefix: String,
    timeout: Duration,
    max_backoff: Duration,
    window: Duration,
    clock: Arc<dyn Clock>,
    journal: Journal,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URLs may hold a password: leave them out.
        f.debug_struct("RedisStoreBuilder")
            .field("cluster", &self.target.cluster)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("mirror_window", &self.window)
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    /// Key prefix (default [`DEFAULT_PREFIX`]), so several apps can share one Redis. Keys
    /// are named `{prefix}…`: the braces make the prefix the Cluster hash tag.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The longest any one Redis call may take (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest wait between reconnection attempts, and between re-sends of queued
    /// revocations (default 5 s).
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// How long after it was made the mirror keeps a session revocation (default
    /// [`DEFAULT_MIRROR_WINDOW`]). It must cover the access lifetime plus leeway; for
    /// fail-open renewal, the longest a token can be renewed (see the crate docs); the
    /// session layer checks. The log is kept for the largest window any instance on the
    /// prefix asks for.
    pub fn mirror_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// The clock used to judge expiry in the mirror (default: system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Trust these CA certificates (PEM) for `rediss://`, instead of the system's roots:
    /// for a Redis whose certificate a private CA signed.
    pub fn tls_root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.target.root_ca = Some(pem.into());
        self
    }

    /// Keep this instance's revocations in a durable [`FileStore`](jwe_session_file::FileStore)
    /// as well: a revocation Redis did not take survives a restart of this process and is
    /// re-sent at the next start, and after Redis loses its data every revocation this
    /// instance made (until it expires) is written back. The file is this instance's own;
    /// give each instance its path.
    #[cfg(feature = "file")]
    pub fn queue_in(mut self, file: jwe_session_file::FileStore) -> Self {
        // A revocation spooled into the queue would hold here only: not what an operator
        // revoking from the command line means.
        file.refuse_spooled(
            "this file is a Redis store's local queue, not what the service's instances read: \
             revoke through Redis (jwe-session revoke --redis URL --prefix P ...)",
        );
        self.journal = Journal::new(file);
        self
    }

    fn writer(&self, conn: Conn) -> Writer {
        Writer {
            conn,
            keys: Keys::new(&self.prefix),
            revoke: redis::Script::new(layout::REVOKE_LUA),
            last_id: redis::Script::new(layout::LAST_ID_LUA),
            timeout: self.timeout,
            window: self.window,
            seen: Mutex::new(StreamId::default()),
        }
    }

    /// Connects a writer only: no mirror, no follower. For tools that revoke (the CLI);
    /// its start-up does not depend on how many revocations are stored. Connecting writes
    /// nothing: ask [`RedisWriter::serving`] whether a service reads this prefix before
    /// revoking through it.
    ///
    /// # Errors
    /// [`BackendError::Unavailable`] or [`BackendError::Timeout`] if Redis cannot be reached.
    pub async fn connect_writer(self) -> Result<RedisWriter, BackendError> {
        let clients = self.target.clients(self.timeout, BLOCK)?;
        let conn = clients.commands(self.timeout, self.max_backoff).await?;
        let writer = RedisWriter::from(self.writer(conn));
        // A first round trip, so an unreachable Redis is an error here, not at the write.
        writer.serving().await?;
        Ok(writer)
    }

    /// Connects, loads the mirror (the cut-offs and the log's last window), and starts
    /// following the log and sending what is queued.
    ///
    /// # Errors
    /// [`BackendError::Unavailable`] or [`BackendError::Timeout`] if Redis cannot be reached or
    /// the first load fails: a service should not start with an empty view of who is
    /// logged out.
    pub async fn connect(self) -> Result<RedisStore, BackendError> {
        let clients = self.target.clients(self.timeout, BLOCK)?;
        let conn = clients.commands(self.timeout, self.max_backoff).await?;
        let writer = self.writer(conn);
        writer.raise_window().await?;
        let eviction_policy = writer.eviction_policy().await;
        match eviction_policy.as_deref() {
            Some("noeviction") => {}
            Some(policy) => tracing::warn!(
                policy,
                "Redis may evict revocations (maxmemory-policy is not noeviction): \
                 evicted ones are silently forgotten"
            ),
            None => tracing::info!(
                "could not read Redis's maxmemory-policy (CONFIG refused); make sure it is noeviction"
            ),
        }
        let (updates, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            writer,
            mirror: Mirror::new(self.window),
            outbox: Outbox::default(),
            journal: self.journal,
            connected: AtomicBool::new(false),
            updates,
            clock: self.clock,
            max_backoff: self.max_backoff,
            repairs: AtomicU64::new(0),
        });
        // What the durable queue holds from earlier runs goes out again: writes that
        // change nothing in Redis cost one lookup each and add nothing to the log.
        shared.enqueue(shared.journal.snapshot(shared.clock.now()));
        let (first_tx, first_rx) = oneshot::channel();
        let follower = tokio::spawn(follow_loop(clients, Arc::clone(&shared), first_tx));
        let follower = AbortOnDrop(follower);
        let loaded = match first_rx.await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(BackendError::unavailable("the revocation follower stopped")),
        };
        tracing::info!(
            entries = loaded,
            mirror = shared.mirror.len(),
            "revocation mirror loaded from Redis"
        );
        let flusher = AbortOnDrop(tokio::spawn(send_loop(Arc::clone(&shared))));
        Ok(RedisStore {
            shared,
            eviction_policy: eviction_policy.map(Arc::from),
            _tasks: Arc::new([follower, flusher]),
        })
    }
}
