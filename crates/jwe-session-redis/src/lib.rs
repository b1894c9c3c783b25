//! A Redis-backed [`RevocationStore`] for jwe-session, shared by every instance of a
//! service, that never puts a network round trip on the request path, never loses a
//! revocation to an outage, and repairs a Redis that lost its data.
//!
//! # How it works
//!
//! - Each instance keeps a **mirror** (a [`MemoryStore`]) that answers
//!   [`check`](RevocationStore::check), the per-request check, from memory.
//! - Revocations reach every mirror through a **Redis stream**, the replication log: a
//!   follower task reads it with `XREAD BLOCK` from the last entry it saw, so a
//!   reconnect replays exactly what it missed (no full reload, no pub/sub gap).
//! - [`check_authoritative`](RevocationStore::check_authoritative), which the layer
//!   runs only when it renews a token past `exp`, reads the revocation's **point keys**
//!   and merges them with what this instance knows: Redis's "not revoked" never overrides
//!   a local "revoked".
//! - Start-up reads the subject and global cut-offs (an index, never a keyspace scan)
//!   and the log for the last [window](RedisStoreBuilder::mirror_window): its cost depends
//!   on the revocations that matter, never on the rest of the database.
//!
//! # Data layout (format 2)
//!
//! Needs Redis 7.0 or later (`EXPIRETIME`), or Valkey.
//!
//! Every key of one [prefix](RedisStoreBuilder::prefix) `P` starts with the hash tag
//! `{P}`, so on Redis Cluster they share one slot and a script can update them together.
//! Revocations are small (about 100 bytes each), so one slot holds millions; give each
//! app its own prefix to spread apps over a cluster.
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `{P}sid:<sid>` | string | `1` | `EXAT` the revocation's `until` |
//! | `{P}sub:<sub>` | string | cut-off, µs since the epoch | `EXAT` `until` |
//! | `{P}all` | string | cut-off, µs | `EXAT` `until` |
//! | `{P}refresh:<sub>` | string | claims refresh: tokens issued up to this µs renew | `EXAT` `until` |
//! | `{P}cutoffs` | sorted set | the names of the `sub:`/`all`/`refresh:` keys, scored by `until` | pruned on every write |
//! | `{P}log` | stream | one entry per write, one field `r` per revocation | trimmed by time (`MINID`) to the largest window plus a minute |
//! | `{P}window` | string | the largest mirror window of any instance, ms | never |
//! | `{P}epoch` | string | a random id, set once by the first instance | never |
//!
//! A log value is `s <until> <made> <sid>`, `u <at µs> <until> <sub>`,
//! `a <at µs> <until>` or `f <at µs> <until> <sub>` (a claims refresh) (times in Unix seconds unless marked; ids last, as they may hold
//! spaces). One Lua script merges a write into its point keys (the later cut-off and the
//! later expiry win, as in every store) and appends to the log only what changed, so
//! re-sending a revocation is harmless and cheap.
//!
//! A log value or point key that this version cannot read (of a kind it does not know, or
//! out of range) is never taken for another scope: it is set aside with an error naming
//! it, and the rest of the log goes on (one fleet shares the log; a reader cannot refuse
//! it whole). That is the project's one policy for unknown entries, stated in
//! `jwe_session_core::Scope`'s module; a new kind comes with a new format number.
//!
//! # Watching sessions
//!
//! [`watch`](RevocationStore::watch) watches in the mirror, which every revocation
//! reaches: made here, read from the log (within the `XREAD BLOCK` round trip, well under
//! a second), learned at a renewal's authoritative check, or replayed after a reconnect.
//! A WebSocket or gRPC stream held on any instance closes when its session is revoked on
//! any other.
//!
//! # Bounded memory
//!
//! A session revocation matters on the request path only while a token issued before it
//! can be unexpired: the access lifetime plus the grace
//! ([`Lifetimes::mirror_window`](jwe_session_core::Lifetimes::mirror_window), the one
//! rule). The mirror keeps one for that [window](RedisStoreBuilder::mirror_window) after it
//! was made (default [`DEFAULT_MIRROR_WINDOW`], 15 min + 60 s); after that, a token of that session is past
//! `exp` and the authoritative check at renewal refuses it. Subject and global cut-offs are
//! few and kept whole.
//!
//! **Fail-open renewal** (`.dangerous().fail_open_on_store_error()` in the layer) renews
//! from the mirror while Redis is down, so it needs every session revocation that could
//! still be renewed: set the window to `lifetimes.mirror_window(true, leeway)` (access
//! lifetime plus idle timeout plus the grace, 24 h 16 min by default, or the absolute
//! lifetime if shorter), which costs memory for every logout of that span. Fail-closed
//! (the default) needs no more than the default window. The session layer refuses to
//! build with a store whose [`memory_window`](RevocationStore::memory_window) is shorter
//! than its lifetimes need.
//!
//! # Faults
//!
//! - **Redis unreachable.** Checks answer from the mirror. [`revoke`] applies the
//!   revocation here at once and, if Redis does not take it, queues it and returns
//!   `Ok(Recorded::Queued { .. })`: it is re-sent on its own (with backoff, at most
//!   [`max_backoff`](RedisStoreBuilder::max_backoff) apart) and other instances honour it
//!   within seconds of Redis answering again. With
//!   `RedisStoreBuilder::queue_in` (feature `file`) the queue is a
//!   `FileStore` on disk and survives a restart. The authoritative check fails, and the
//!   layer's policy decides (fail closed by default). No call waits longer than the
//!   [timeout](RedisStoreBuilder::timeout) (twice, when a dropped connection is retried).
//! - **A dropped connection** (Redis restarted, a failover) is retried once on a fresh
//!   connection before a call fails, so a restart costs no user a refused renewal.
//! - **Redis lost its data** (restarted without persistence, flushed, replaced). The
//!   `{P}epoch` marker is gone or changed; each instance that sees it writes back what it
//!   knows (its mirror, each entry with its whole `until` though the mirror holds session
//!   revocations only for its window; its queue; and with a durable queue every revocation
//!   it made), so an instance started afterwards refuses the revoked cookie.
//! - **Redis came back older** (an earlier RDB snapshot, an AOF `everysec` power cut, a
//!   failover to a lagging replica). The epoch survives, but the log's last id (which
//!   only moves forward) is older than an entry this instance wrote or read: checked at
//!   every (re)connect and every second, and the same write-back follows.
//!   What no instance holds is lost with Redis's data: a session revocation older than
//!   the window, or a write no instance read before Redis lost it. Run Redis with AOF
//!   persistence (see the README, "Running Redis for jwe-session").
//! - **Clocks.** A reader keeps a session revocation for its window from when Redis took
//!   it (the log entry's id, Redis's clock) or when the reader learned it, whichever is
//!   later: a writer whose clock is behind cannot shorten it.
//! - **Bad entries.** A log entry or point key out of range (a moment past
//!   [`Revocation::LATEST`]) is refused when read; a revocation Redis refuses is set aside
//!   with a warning, and the rest of its batch goes on.
//! - **Eviction.** A `maxmemory-policy` other than `noeviction` silently forgets
//!   revocations (every key here has an expiry, so even `volatile-*` policies may take
//!   them). The store reads the policy at connect and logs a warning; see
//!   [`RedisStore::eviction_policy`].
//!
//! [`revoke`]: RevocationStore::revoke
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use jwe_session_redis::RedisStore;
//!
//! # async fn run() -> Result<(), jwe_session_redis::BackendError> {
//! let store = RedisStore::builder("rediss://revocations.internal:6380/")
//!     .prefix("myapp:sessions:")
//!     .connect()
//!     .await?;
//! // SessionLayer::builder(ring).revocation_store(Arc::new(store))
//! # let _ = Arc::new(store);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod conn;
mod error;
mod layout;

pub use error::BackendError;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jwe_session_core::{
    BoxFuture, CheckError, Clock, InvalidRevocation, MemoryStore, Recorded, Revocation,
    RevocationStore, RevocationWatch, RevokeError, Revoked, SessionIds, SystemClock, UnixMicros,
    UnixTime, WatchUnsupported,
};
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::JoinHandle;

use conn::{bounded, stale, Clients, Conn, Target};
use layout::{Keys, StreamId};

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

/// How long one blocking read of the log waits for news.
const BLOCK: Duration = Duration::from_secs(1);

/// How often the follower confirms that Redis still holds our data (the epoch marker).
const EPOCH_EVERY: Duration = Duration::from_secs(1);

/// How often the follower sweeps expired entries out of the mirror (a sweep takes the
/// mirror's write lock and walks every entry, so not on every read).
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// How many log entries one read asks for.
const READ_COUNT: usize = 64;

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
    #[cfg(feature = "file")]
    journal: Option<jwe_session_file::FileStore>,
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
        self.journal = Some(file);
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
        let writer = RedisWriter {
            writer: self.writer(conn),
        };
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
            mirror: MemoryStore::new(),
            connected: AtomicBool::new(false),
            updates,
            clock: self.clock,
            max_backoff: self.max_backoff,
            pending: Mutex::new(HashMap::new()),
            pending_changed: Notify::new(),
            repairs: AtomicU64::new(0),
            #[cfg(feature = "file")]
            journal: self.journal,
        });
        // What the durable queue holds from earlier runs goes out again: writes that
        // change nothing in Redis cost one lookup each and add nothing to the log.
        shared.enqueue(shared.journal_snapshot(shared.clock.now()));
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
        let flusher = AbortOnDrop(tokio::spawn(flush_loop(Arc::clone(&shared))));
        Ok(RedisStore {
            shared,
            eviction_policy: eviction_policy.map(Arc::from),
            _tasks: Arc::new([follower, flusher]),
        })
    }
}

/// Writes revocations and reads point keys.
struct Writer {
    conn: Conn,
    keys: Keys,
    revoke: redis::Script,
    /// Reads the log's last id (every second, from the follower): hashed once, here.
    last_id: redis::Script,
    timeout: Duration,
    /// This instance's mirror window.
    window: Duration,
    /// The newest log entry this instance has seen (written or read): Redis's log never
    /// ends before it unless Redis went back in time.
    seen: Mutex<StreamId>,
}

impl Writer {
    fn window_ms(&self) -> u64 {
        u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX)
    }

    /// Runs one call, once more on a fresh connection if the first found it dropped.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, BackendError>
    where
        F: Fn(Conn) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        match bounded(self.timeout, f(self.conn.clone())).await {
            Err(e) if stale(&e) => {
                tracing::debug!(error = ?e, "Redis connection dropped; retrying once");
                bounded(self.timeout, f(self.conn.clone())).await
            }
            other => other,
        }
    }

    /// Remembers that the log reached `id`.
    fn saw(&self, id: &str) {
        if let Some(id) = StreamId::parse(id) {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            *seen = (*seen).max(id);
        }
    }

    fn seen(&self) -> StreamId {
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether Redis went back in time: its log ends before an entry this instance saw
    /// (a restart from an older snapshot, an AOF that lost its last second, a failover to
    /// a lagging replica). Then forgets the newer entries, so it answers `true` once.
    async fn went_back(&self, conn: &mut Conn) -> Result<bool, BackendError> {
        // What was seen before asking was in Redis before it answered: a write that lands
        // meanwhile cannot look like a loss.
        let seen = self.seen();
        let mut inv = self.last_id.prepare_invoke();
        inv.key(self.keys.log());
        let id: String = bounded(self.timeout, inv.invoke_async(conn)).await?;
        let last = StreamId::parse(&id).unwrap_or_default();
        if last >= seen {
            return Ok(false);
        }
        let mut kept = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if *kept == seen {
            *kept = last;
        }
        Ok(true)
    }

    /// Records revocations (any number; one script call per [`layout::BATCH`], several in
    /// flight); returns how many changed what Redis held. Redis stamps when it took each
    /// (readers window session revocations from then).
    async fn send(&self, revs: &[Revocation]) -> Result<usize, BackendError> {
        let mut changed = 0;
        for group in revs.chunks(layout::BATCH * 8) {
            let batches = group.chunks(layout::BATCH).map(|c| self.send_batch(c));
            changed += futures_util::future::try_join_all(batches)
                .await?
                .into_iter()
                .sum::<usize>();
        }
        Ok(changed)
    }

    async fn send_batch(&self, revs: &[Revocation]) -> Result<usize, BackendError> {
        let mut keys = vec![self.keys.log(), self.keys.cutoffs(), self.keys.window()];
        let mut args = vec![self.window_ms().to_string()];
        for r in revs {
            if let Err(e) = r.check() {
                tracing::warn!(error = ?e, "not sending a malformed revocation to Redis");
                continue;
            }
            keys.push(self.keys.point(r));
            args.extend(layout::script_args(r));
        }
        if keys.len() == 3 {
            return Ok(0);
        }
        self.call(|mut c| {
            let mut inv = self.revoke.prepare_invoke();
            for k in &keys {
                inv.key(k);
            }
            for a in &args {
                inv.arg(a);
            }
            async move { inv.invoke_async::<(usize, String)>(&mut c).await }
        })
        .await
        .map(|(changed, id)| {
            self.saw(&id);
            changed
        })
    }

    /// What Redis holds for a session's point keys.
    async fn point_keys(&self, ids: SessionIds<'_>) -> Result<Vec<Revocation>, BackendError> {
        let mut keys = vec![self.keys.all()];
        keys.extend(ids.sid.map(|s| self.keys.sid(s)));
        keys.extend(ids.sub.map(|s| self.keys.sub(s)));
        self.points(&keys).await
    }

    async fn points(&self, keys: &[String]) -> Result<Vec<Revocation>, BackendError> {
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.get(k).cmd("EXPIRETIME").arg(k);
        }
        let rows: Vec<(Option<u64>, i64)> = self
            .call(|mut c| {
                let pipe = pipe.clone();
                async move { pipe.query_async(&mut c).await }
            })
            .await?;
        Ok(keys
            .iter()
            .zip(rows)
            .filter_map(|(k, (v, exat))| self.keys.decode_point(k, v, exat))
            .collect())
    }

    /// Raises the stored window to ours, so the log is kept long enough for us.
    async fn raise_window(&self) -> Result<(), BackendError> {
        let script = redis::Script::new(layout::WINDOW_LUA);
        let key = self.keys.window();
        let ms = self.window_ms();
        self.call(|mut c| {
            let mut inv = script.prepare_invoke();
            inv.key(&key).arg(ms);
            async move { inv.invoke_async::<u64>(&mut c).await }
        })
        .await
        .map(|_| ())
    }

    /// Redis's `maxmemory-policy`, if it lets us read it.
    async fn eviction_policy(&self) -> Option<String> {
        let value = self
            .call(|mut c| async move {
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("maxmemory-policy")
                    .query_async::<redis::Value>(&mut c)
                    .await
            })
            .await
            .ok()?;
        let mut words = Vec::new();
        flatten(value, &mut words);
        let at = words.iter().position(|w| w == "maxmemory-policy")?;
        words.into_iter().nth(at + 1)
    }
}

fn flatten(v: redis::Value, out: &mut Vec<String>) {
    match v {
        redis::Value::BulkString(b) => out.push(String::from_utf8_lossy(&b).into_owned()),
        redis::Value::SimpleString(s) => out.push(s),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.into_iter().for_each(|i| flatten(i, out));
        }
        redis::Value::Map(pairs) => pairs.into_iter().for_each(|(k, v)| {
            flatten(k, out);
            flatten(v, out);
        }),
        _ => {}
    }
}

/// Revokes through Redis without a mirror: what the CLI uses. Made by
/// [`RedisStoreBuilder::connect_writer`].
pub struct RedisWriter {
    writer: Writer,
}

impl fmt::Debug for RedisWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisWriter")
            .field("prefix", &self.writer.keys.base())
            .finish_non_exhaustive()
    }
}

impl RedisWriter {
    /// Records revocations, pipelined in batches; returns how many changed what Redis held
    /// (a repeat changes nothing). Every instance's mirror picks them up from the log.
    /// Redis stamps when it took them, by its own clock, so this machine's clock cannot
    /// shorten how long the instances keep them.
    ///
    /// # Errors
    /// [`RevokeError::Invalid`] (and nothing is sent) if one is malformed;
    /// [`RevokeError::Unavailable`] or [`RevokeError::Timeout`] if Redis did not take them:
    /// batches already sent stay, and sending all again is safe.
    pub async fn revoke_batch(&self, revs: &[Revocation]) -> Result<usize, RevokeError> {
        for r in revs {
            r.check()?;
        }
        Ok(self.writer.send(revs).await?)
    }

    /// Whether a service's store has connected under this prefix on this Redis: its epoch
    /// marker (`{P}epoch`, set by the first [`RedisStore`] to connect and kept for good)
    /// exists. Revocations written under a prefix no service reads protect nothing, so a
    /// tool should refuse to write when this is `false` (the CLI does, unless `--force`).
    /// Needs only `EXISTS` on the prefix's keys (the README's ACL).
    ///
    /// # Errors
    /// [`BackendError::Unavailable`] or [`BackendError::Timeout`] if Redis did not answer.
    pub async fn serving(&self) -> Result<bool, BackendError> {
        let key = self.writer.keys.epoch();
        self.writer
            .call(|mut c| {
                let key = key.clone();
                async move {
                    redis::cmd("EXISTS")
                        .arg(&key)
                        .query_async::<u64>(&mut c)
                        .await
                }
            })
            .await
            .map(|n| n > 0)
    }

    /// The prefix this writer writes under, as given to
    /// [`prefix`](RedisStoreBuilder::prefix).
    #[must_use]
    pub fn prefix(&self) -> &str {
        let base = self.writer.keys.base();
        base.strip_prefix('{')
            .and_then(|b| b.strip_suffix('}'))
            .unwrap_or(base)
    }
}

struct Shared {
    writer: Writer,
    mirror: MemoryStore,
    connected: AtomicBool,
    updates: watch::Sender<u64>,
    clock: Arc<dyn Clock>,
    max_backoff: Duration,
    /// Revocations Redis has not taken yet, by point key.
    pending: Mutex<HashMap<String, Revocation>>,
    pending_changed: Notify,
    repairs: AtomicU64,
    #[cfg(feature = "file")]
    journal: Option<jwe_session_file::FileStore>,
}

impl Shared {
    fn bump(&self) {
        self.updates.send_modify(|n| *n += 1);
    }

    /// Puts a revocation into the mirror as the request path needs it: a session one held
    /// for the window after `made`, but with its whole `until`, so a write-back restores
    /// its real expiry. Whether it is held.
    fn remember(
        &self,
        r: &Revocation,
        made: UnixTime,
        now: UnixTime,
    ) -> Result<bool, InvalidRevocation> {
        self.mirror
            .remember(r, made.saturating_add(self.writer.window), now)
    }

    /// Queues revocations for Redis; merges with what is queued for the same key.
    fn enqueue(&self, revs: impl IntoIterator<Item = Revocation>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let mut added = false;
        for r in revs {
            let key = self.writer.keys.point(&r);
            match pending.get_mut(&key) {
                Some(kept) => {
                    kept.absorb(&r);
                }
                None => {
                    pending.insert(key, r);
                }
            }
            added = true;
        }
        drop(pending);
        if added {
            self.pending_changed.notify_one();
        }
    }

    fn pending_revokes(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<Revoked> {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.values().find_map(|r| r.revokes(ids, now))
    }

    #[cfg(feature = "file")]
    fn journal_snapshot(&self, now: UnixTime) -> Vec<Revocation> {
        self.journal
            .as_ref()
            .map(|j| j.snapshot(now))
            .unwrap_or_default()
    }

    #[cfg(not(feature = "file"))]
    fn journal_snapshot(&self, _now: UnixTime) -> Vec<Revocation> {
        Vec::new()
    }

    #[cfg(feature = "file")]
    fn journal_revokes(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<Revoked> {
        self.journal.as_ref()?.check(ids, now)
    }

    #[cfg(not(feature = "file"))]
    fn journal_revokes(&self, _ids: SessionIds<'_>, _now: UnixTime) -> Option<Revoked> {
        None
    }

    /// Records a revocation in the durable queue; whether it is on disk.
    #[cfg(feature = "file")]
    async fn journal_write(&self, r: &Revocation, now: UnixTime) -> bool {
        let Some(j) = &self.journal else {
            return false;
        };
        match j.revoke(r.clone(), now).await {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(error = ?e, "could not record a revocation in the durable queue");
                false
            }
        }
    }

    #[cfg(not(feature = "file"))]
    async fn journal_write(&self, _r: &Revocation, _now: UnixTime) -> bool {
        false
    }

    /// Applies log entries to the mirror; how many revocations they held.
    fn apply_entries(&self, entries: &[(String, Vec<Vec<u8>>)]) -> usize {
        let now = self.clock.now();
        let mut n = 0;
        for (id, values) in entries {
            self.writer.saw(id);
            // The window starts when Redis took the entry (its id, by Redis's clock) or when
            // this instance learned it, whichever is later: no writer's clock (the `made`
            // it put in the entry) can shorten it, and a reader behind Redis holds it longer.
            let taken = StreamId::parse(id).map_or(now, StreamId::time).max(now);
            for v in values {
                match layout::decode(v) {
                    // The entry's `made` is for readers of earlier versions; this one goes
                    // by `taken` (and windows session revocations only).
                    Some((r, _made)) => {
                        if matches!(self.remember(&r, taken, now), Ok(true)) {
                            n += 1;
                        }
                    }
                    None => tracing::error!(
                        entry = %id,
                        value = %String::from_utf8_lossy(v).chars().take(80).collect::<String>(),
                        "revocation log: an entry this version cannot read is set aside"
                    ),
                }
            }
        }
        if !entries.is_empty() {
            self.bump();
        }
        n
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A [`RevocationStore`] on Redis with a local mirror. Cheap to clone; the background
/// tasks (the log follower and the queue's sender) stop when the last clone is dropped.
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
    eviction_policy: Option<Arc<str>>,
    _tasks: Arc<[AbortOnDrop; 2]>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.shared.writer.keys.base())
            .field("connected", &self.is_connected())
            .field("mirror_entries", &self.shared.mirror.len())
            .field("queued", &self.queued())
            .finish_non_exhaustive()
    }
}

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
            #[cfg(feature = "file")]
            journal: None,
        }
    }

    /// Whether the follower is connected and caught up right now.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::SeqCst)
    }

    /// How many revocations the local mirror holds: what [`check`](RevocationStore::check)
    /// answers from. Read-only on purpose: the mirror changes only through Redis.
    #[must_use]
    pub fn mirrored(&self) -> usize {
        self.shared.mirror.len()
    }

    /// How many revocations wait to be sent to Redis.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// How many times this store found that Redis had lost its data (or came back older)
    /// and wrote back what it knew.
    #[must_use]
    pub fn repairs(&self) -> u64 {
        self.shared.repairs.load(Ordering::SeqCst)
    }

    /// Redis's `maxmemory-policy` as read at connect, or `None` if Redis refused to say
    /// (managed services often refuse `CONFIG`). Anything but `noeviction` can lose
    /// revocations.
    #[must_use]
    pub fn eviction_policy(&self) -> Option<&str> {
        self.eviction_policy.as_deref()
    }

    /// A counter that moves whenever the mirror, the connection or the queue changes:
    /// wait on it instead of polling.
    #[must_use]
    pub fn updates(&self) -> watch::Receiver<u64> {
        self.shared.updates.subscribe()
    }

    /// The Redis key a revocation is stored under.
    #[must_use]
    pub fn key_for(&self, r: &Revocation) -> String {
        self.shared.writer.keys.point(r)
    }

    async fn check_remote(
        &self,
        ids: SessionIds<'_>,
        now: UnixTime,
    ) -> Result<Option<Revoked>, CheckError> {
        // What this instance knows first: Redis's "not revoked" never overrides it.
        if let Some(r) = self.check(ids, now) {
            return Ok(Some(r));
        }
        let local = self
            .shared
            .pending_revokes(ids, now)
            .or_else(|| self.shared.journal_revokes(ids, now));
        if let Some(r) = local {
            return Ok(Some(r));
        }
        let remote = self.shared.writer.point_keys(ids).await?;
        let mut verdict = None;
        let learned = self.shared.clock.now();
        for r in remote {
            if let Some(why) = r.revokes(ids, now) {
                verdict = Some(why);
            }
            // Teach the mirror what it missed, for its window from now.
            let _ = self.shared.remember(&r, learned, learned);
        }
        Ok(verdict)
    }
}

impl RevocationStore for RedisStore {
    fn check(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<Revoked> {
        self.shared.mirror.check(ids, now)
    }

    fn refresh_due(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<UnixMicros> {
        self.shared.mirror.refresh_due(ids, now)
    }

    /// Watches from the mirror: a revocation made on any instance completes the watch
    /// as soon as this instance reads it from the log (or learns it at a renewal, or
    /// replays it after a reconnect).
    fn watch(
        &self,
        ids: SessionIds<'_>,
        now: UnixTime,
    ) -> Result<RevocationWatch, WatchUnsupported> {
        self.shared.mirror.watch(ids, now)
    }

    fn memory_window(&self) -> Option<Duration> {
        Some(self.shared.writer.window)
    }

    fn check_authoritative<'a>(
        &'a self,
        ids: SessionIds<'a>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<Revoked>, CheckError>> {
        Box::pin(self.check_remote(ids, now))
    }

    fn revoke(
        &self,
        revocation: Revocation,
        now: UnixTime,
    ) -> BoxFuture<'_, Result<Recorded, RevokeError>> {
        Box::pin(async move {
            // This instance honours it at once, whatever Redis says (a malformed one is
            // refused here, changing nothing).
            let in_force = self.shared.remember(&revocation, now, now)?;
            self.shared.bump();
            if !in_force {
                return Ok(Recorded::Stored);
            }
            let durable = self.shared.journal_write(&revocation, now).await;
            match self
                .shared
                .writer
                .send(std::slice::from_ref(&revocation))
                .await
            {
                Ok(_) => Ok(Recorded::Stored),
                Err(e) => {
                    tracing::warn!(error = ?e, durable, "Redis did not take a revocation; queued");
                    self.shared.enqueue([revocation]);
                    Ok(Recorded::Queued {
                        durable,
                        reason: Box::new(e),
                    })
                }
            }
        })
    }
}

/// Sends queued revocations whenever there are some, backing off while Redis is
/// unreachable. A batch that Redis refuses (a script error, not an outage) is sent again
/// one revocation at a time, so one entry Redis will never take is set aside, logged once,
/// and holds back nothing else.
async fn flush_loop(shared: Arc<Shared>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let batch: Vec<(String, Revocation)> = {
            let pending = shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            pending
                .iter()
                .take(layout::BATCH * 8)
                .map(|(k, r)| (k.clone(), r.clone()))
                .collect()
        };
        if batch.is_empty() {
            shared.pending_changed.notified().await;
            continue;
        }
        let revs: Vec<Revocation> = batch.iter().map(|(_, r)| r.clone()).collect();
        let outcome = match shared.writer.send(&revs).await {
            Err(e) if conn::refused(&e) => isolate(&shared, &batch).await,
            other => other,
        };
        match outcome {
            Ok(changed) => {
                let mut pending = shared
                    .pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                for (key, sent) in &batch {
                    // Keep what was merged into the entry meanwhile: it goes next round.
                    if pending.get(key) == Some(sent) {
                        pending.remove(key);
                    }
                }
                let left = pending.len();
                drop(pending);
                shared.bump();
                tracing::info!(
                    sent = batch.len(),
                    changed,
                    left,
                    "queued revocations sent to Redis"
                );
                backoff = Duration::from_millis(50);
            }
            Err(e) => {
                if backoff == Duration::from_millis(50) {
                    tracing::warn!(error = ?e, queued = batch.len(), "Redis refuses queued revocations; retrying with backoff");
                } else {
                    tracing::debug!(error = ?e, queued = batch.len(), "Redis still refuses queued revocations");
                }
                let _ = tokio::time::timeout(backoff, shared.pending_changed.notified()).await;
                backoff = (backoff * 2).min(shared.max_backoff);
            }
        }
    }
}

/// Sends a refused batch one revocation at a time: each one Redis takes leaves the queue,
/// each one it refuses is dropped with a warning; an outage stops it (what is left goes
/// in the next round). How many changed what Redis held.
async fn isolate(shared: &Shared, batch: &[(String, Revocation)]) -> Result<usize, BackendError> {
    let mut changed = 0;
    for (key, r) in batch {
        match shared.writer.send(std::slice::from_ref(r)).await {
            Ok(n) => changed += n,
            Err(e) if conn::refused(&e) => {
                tracing::warn!(
                    error = ?e,
                    key = key.as_str(),
                    "Redis refuses one revocation; dropped from the queue (the others go on)"
                );
            }
            Err(e) => return Err(e),
        }
        let mut pending = shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if pending.get(key) == Some(r) {
            pending.remove(key);
        }
    }
    Ok(changed)
}

/// Where the follower is in the log of which Redis dataset.
#[derive(Default)]
struct Position {
    epoch: Option<String>,
    last_id: Option<String>,
}

/// Follows the log for the life of the store; on any failure marks the mirror
/// disconnected, backs off and starts over from where it was. The first attempt's outcome
/// goes to `connect`, which fails if it fails.
async fn follow_loop(
    clients: Clients,
    shared: Arc<Shared>,
    first: oneshot::Sender<Result<usize, BackendError>>,
) {
    let mut first = Some(first);
    let mut pos = Position::default();
    let mut backoff = Duration::from_millis(50);
    loop {
        let e = match follow(&clients, &shared, &mut pos, &mut first).await {
            Ok(never) => match never {},
            Err(e) => e,
        };
        if let Some(tx) = first.take() {
            let _ = tx.send(Err(e));
            return;
        }
        tracing::warn!(error = ?e, "revocation log: Redis unreachable; retrying");
        if shared.connected.swap(false, Ordering::SeqCst) {
            backoff = Duration::from_millis(50);
            shared.bump();
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(shared.max_backoff);
    }
}

enum Never {}

async fn follow(
    clients: &Clients,
    shared: &Shared,
    pos: &mut Position,
    first: &mut Option<oneshot::Sender<Result<usize, BackendError>>>,
) -> Result<Never, BackendError> {
    let t = shared.writer.timeout;
    let mut conn = clients.blocking(t, BLOCK).await?;
    let loaded = sync(&mut conn, shared, pos, false).await?;
    shared.connected.store(true, Ordering::SeqCst);
    shared.bump();
    // Whatever waited for Redis goes now.
    shared.pending_changed.notify_one();
    if let Some(tx) = first.take() {
        let _ = tx.send(Ok(loaded));
    }
    let log = shared.writer.keys.log();
    let epoch_key = shared.writer.keys.epoch();
    let mut epoch_checked = tokio::time::Instant::now();
    let mut pruned = tokio::time::Instant::now();
    loop {
        let from = pos.last_id.clone().unwrap_or_else(|| "$".to_owned());
        let read = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(u64::try_from(BLOCK.as_millis()).unwrap_or(1000))
            .arg("STREAMS")
            .arg(&log)
            .arg(&from)
            .to_owned();
        let reply: redis::Value = bounded(BLOCK + t, read.query_async(&mut conn)).await?;
        let entries = layout::read_entries(reply);
        if let Some((id, _)) = entries.last() {
            pos.last_id = Some(id.clone());
        }
        shared.apply_entries(&entries);
        if epoch_checked.elapsed() >= EPOCH_EVERY {
            epoch_checked = tokio::time::Instant::now();
            let epoch: Option<String> =
                bounded(t, redis::cmd("GET").arg(&epoch_key).query_async(&mut conn)).await?;
            // A failover behind a proxy may keep the connection: look at the log too.
            let went_back = shared.writer.went_back(&mut conn).await?;
            if epoch != pos.epoch || went_back {
                sync(&mut conn, shared, pos, went_back).await?;
            }
        }
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = tokio::time::Instant::now();
            shared.mirror.prune(shared.clock.now());
        }
    }
}

/// Brings the mirror in step with Redis: checks the epoch and the log's end (repairing a
/// Redis that lost some or all of its data), loads the cut-offs, and reads the log's window unless we know where we were.
/// Returns how many revocations it applied.
/// `went_back`: the caller found already that Redis went back in time.
async fn sync(
    conn: &mut Conn,
    shared: &Shared,
    pos: &mut Position,
    went_back: bool,
) -> Result<usize, BackendError> {
    let t = shared.writer.timeout;
    let keys = &shared.writer.keys;
    let (epoch, (secs, micros)): (Option<String>, (u64, u64)) = bounded(
        t,
        redis::pipe()
            .get(keys.epoch())
            .cmd("TIME")
            .query_async(conn),
    )
    .await?;
    let epoch = match epoch {
        Some(e) => e,
        None => {
            let fresh = format!("{:032x}", rand::random::<u128>());
            let _: Option<String> = bounded(
                t,
                redis::cmd("SET")
                    .arg(keys.epoch())
                    .arg(&fresh)
                    .arg("NX")
                    .query_async(conn),
            )
            .await?;
            let set: Option<String> =
                bounded(t, redis::cmd("GET").arg(keys.epoch()).query_async(conn)).await?;
            set.unwrap_or(fresh)
        }
    };
    let went_back = went_back || shared.writer.went_back(conn).await?;
    if pos.epoch.as_ref() != Some(&epoch) || went_back {
        if pos.epoch.is_some() {
            let why = if went_back && pos.epoch.as_ref() == Some(&epoch) {
                "Redis came back with older data (its log ends before entries this instance saw)"
            } else {
                "Redis lost its revocation data (epoch marker changed)"
            };
            repair(shared, why).await?;
        }
        pos.epoch = Some(epoch);
        pos.last_id = None;
    }
    let mut applied = load_cutoffs(conn, shared, secs).await?;
    if pos.last_id.is_none() {
        let window_ms = shared.writer.window_ms();
        let server_ms = secs * 1000 + micros / 1000;
        let start = format!("{}-0", server_ms.saturating_sub(window_ms));
        let (n, last) = load_log(conn, shared, &start).await?;
        applied += n;
        pos.last_id = Some(last.unwrap_or(start));
    }
    Ok(applied)
}

/// Writes back what this instance knows (its mirror, with each entry's whole `until`, and
/// its durable queue) to a Redis that lost some or all of it. Idempotent: what Redis still
/// holds changes nothing and adds nothing to the log.
async fn repair(shared: &Shared, why: &'static str) -> Result<(), BackendError> {
    let now = shared.clock.now();
    let mut known = shared.mirror.snapshot(now);
    known.extend(shared.journal_snapshot(now));
    tracing::warn!(
        revocations = known.len(),
        "{why}; writing back what this instance knows"
    );
    shared.writer.raise_window().await?;
    shared.enqueue(known);
    // Counted once queued: whoever sees the count sees the queue it made.
    shared.repairs.fetch_add(1, Ordering::SeqCst);
    shared.bump();
    Ok(())
}

/// Loads the subject and global cut-offs still in force, through their index.
async fn load_cutoffs(
    conn: &mut Conn,
    shared: &Shared,
    now_secs: u64,
) -> Result<usize, BackendError> {
    let t = shared.writer.timeout;
    let names: Vec<String> = bounded(
        t,
        redis::cmd("ZRANGEBYSCORE")
            .arg(shared.writer.keys.cutoffs())
            .arg(format!("({now_secs}"))
            .arg("+inf")
            .query_async(conn),
    )
    .await?;
    let now = shared.clock.now();
    let mut applied = 0;
    for chunk in names.chunks(1000) {
        let mut pipe = redis::pipe();
        for k in chunk {
            pipe.get(k).cmd("EXPIRETIME").arg(k);
        }
        let rows: Vec<(Option<u64>, i64)> = bounded(t, pipe.query_async(conn)).await?;
        for (k, (v, exat)) in chunk.iter().zip(rows) {
            if let Some(r) = shared.writer.keys.decode_point(k, v, exat) {
                if matches!(shared.mirror.apply(&r, now), Ok(true)) {
                    applied += 1;
                }
            }
        }
    }
    if !names.is_empty() {
        shared.bump();
    }
    Ok(applied)
}

/// Reads the log from `start` to its end; how many revocations it applied and the last id.
async fn load_log(
    conn: &mut Conn,
    shared: &Shared,
    start: &str,
) -> Result<(usize, Option<String>), BackendError> {
    let t = shared.writer.timeout;
    let log = shared.writer.keys.log();
    let mut from = start.to_owned();
    let mut last = None;
    let mut applied = 0;
    loop {
        let reply: redis::Value = bounded(
            t,
            redis::cmd("XRANGE")
                .arg(&log)
                .arg(&from)
                .arg("+")
                .arg("COUNT")
                .arg(READ_COUNT)
                .query_async(conn),
        )
        .await?;
        let entries = layout::entries(reply);
        let Some((id, _)) = entries.last() else {
            return Ok((applied, last));
        };
        from = format!("({id}");
        last = Some(id.clone());
        applied += shared.apply_entries(&entries);
        if entries.len() < READ_COUNT {
            return Ok((applied, last));
        }
    }
}
