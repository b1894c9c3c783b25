//! A Redis-backed [`RevocationStore`] for jwe-session, shared by every instance of a
//! service, that never puts a network round trip on the request path.
//!
//! # How it works
//!
//! - Each revocation is one Redis key under a configurable prefix
//!   (`jwe-session:sid:<sid>`, `jwe-session:sub:<sub>`, `jwe-session:all`) whose expiry
//!   is set (`EXAT`) to the moment no token it affects could still be renewed, so nothing
//!   grows without bound. Recording it and announcing it on the channel
//!   `<prefix>events` happen in one Lua script, atomically.
//! - Each instance keeps a **local mirror** (a [`MemoryStore`]) loaded with `SCAN` at
//!   start-up and after every reconnect, and kept current through Redis **pub/sub**.
//!   [`check_at`](RevocationStore::check_at), the per-request check, is a memory lookup.
//! - [`check_authoritative_at`](RevocationStore::check_authoritative_at), which the layer
//!   runs only when it renews a token past `exp`, asks Redis itself. An instance that
//!   missed an update therefore honours it at the latest one access lifetime later.
//!
//! Pub/sub was chosen over keyspace notifications because it needs no server
//! configuration (`notify-keyspace-events` is off by default and often locked on managed
//! Redis) and carries the whole revocation, so receivers need no extra `GET`.
//!
//! # When Redis is unreachable
//!
//! - Checks keep answering from the mirror.
//! - [`revoke_at`](RevocationStore::revoke_at) returns a [`StoreError`] (it never
//!   silently succeeds); the revocation is still applied to this instance's mirror.
//! - The authoritative check returns a [`StoreError`]; the session layer then refuses to
//!   renew (fail closed, the default: the user logs in again once the token is past `exp`)
//!   or renews from the mirror if configured to fail open. Either choice is logged.
//! - The mirror reconnects with backoff and reloads, so revocations made meanwhile by
//!   other instances take effect.
//! - No call waits longer than the configured [timeout](RedisStoreBuilder::timeout).
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use jwe_session_redis::RedisStore;
//!
//! # async fn run() -> Result<(), jwe_session_core::StoreError> {
//! let store = RedisStore::builder("redis://127.0.0.1:6379/")
//!     .prefix("myapp:sessions:")
//!     .connect()
//!     .await?;
//! // SessionLayer::builder(ring).revocation_store(Arc::new(store))
//! # let _ = Arc::new(store);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use jwe_session_core::{
    BoxFuture, Clock, MemoryStore, Revocation, RevocationStore, Revoked, SessionIds, StoreError,
    SystemClock, UnixMicros, UnixTime,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "jwe-session:";

/// The default limit on any one Redis call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

/// Records one revocation, keeping the later cut-off and the later expiry of what is
/// there, and announces it, atomically.
const REVOKE_LUA: &str = r"
local v = tonumber(ARGV[1])
local exat = tonumber(ARGV[2])
local cur = redis.call('GET', KEYS[1])
if cur then
  local c = tonumber(cur)
  if c and c > v then v = c end
  local e = redis.call('EXPIRETIME', KEYS[1])
  if e and e > exat then exat = e end
end
redis.call('SET', KEYS[1], v, 'EXAT', exat)
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
";

/// Configures a [`RedisStore`].
#[derive(Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
    max_backoff: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: leave it out.
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    /// Key prefix (default [`DEFAULT_PREFIX`]), so several apps can share one Redis.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The longest any one Redis call may take (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest wait between reconnection attempts of the mirror (default 5 s).
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// The clock used to drop expired entries from the mirror (default: system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Connects, loads the mirror, subscribes, and starts keeping the mirror current.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Timeout`] if Redis cannot be reached
    /// or the first load fails: a service should not start with an empty view of who is
    /// logged out.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(self.url.as_str()).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_max_delay(self.max_backoff);
        let conn = bounded(
            self.timeout,
            client.get_connection_manager_with_config(config),
        )
        .await?;
        let (updates, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            prefix: self.prefix.clone(),
            channel: format!("{}events", self.prefix),
            mirror: MemoryStore::new(),
            connected: AtomicBool::new(false),
            updates,
            clock: self.clock,
            timeout: self.timeout,
        });
        let mut ready = shared.updates.subscribe();
        let task = tokio::spawn(mirror_loop(client, Arc::clone(&shared), self.max_backoff));
        let task = Arc::new(AbortOnDrop(task));
        // Wait for the first load (the task bumps `updates` once it is subscribed and loaded).
        let first = tokio::time::timeout(self.timeout * 4, async {
            while !shared.connected.load(Ordering::SeqCst) {
                if ready.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
        if first.is_err() || !shared.connected.load(Ordering::SeqCst) {
            return Err(StoreError::Timeout {
                after: self.timeout * 4,
            });
        }
        Ok(RedisStore {
            shared,
            conn,
            revoke: redis::Script::new(REVOKE_LUA),
            _task: task,
        })
    }
}

struct Shared {
    prefix: String,
    channel: String,
    mirror: MemoryStore,
    connected: AtomicBool,
    updates: watch::Sender<u64>,
    clock: Arc<dyn Clock>,
    timeout: Duration,
}

impl Shared {
    fn key(&self, r: &Revocation) -> String {
        match r {
            Revocation::Session { sid, .. } => format!("{}sid:{sid}", self.prefix),
            Revocation::Subject { sub, .. } => format!("{}sub:{sub}", self.prefix),
            _ => format!("{}all", self.prefix),
        }
    }

    fn bump(&self) {
        self.updates.send_modify(|n| *n += 1);
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A [`RevocationStore`] on Redis with a local mirror. Cheap to clone; the background
/// task that keeps the mirror current stops when the last clone is dropped.
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
    conn: ConnectionManager,
    revoke: redis::Script,
    _task: Arc<AbortOnDrop>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.shared.prefix)
            .field("connected", &self.is_connected())
            .field("mirror_entries", &self.shared.mirror.len())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Starts configuring a store for the Redis at `url` (`redis://host:port/db`).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            max_backoff: Duration::from_secs(5),
            clock: Arc::new(SystemClock),
        }
    }

    /// Whether the mirror is subscribed and loaded right now.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::SeqCst)
    }

    /// The local mirror.
    #[must_use]
    pub fn mirror(&self) -> &MemoryStore {
        &self.shared.mirror
    }

    /// A counter that moves whenever the mirror changes (an event applied, a reload done):
    /// wait on it instead of polling.
    #[must_use]
    pub fn updates(&self) -> watch::Receiver<u64> {
        self.shared.updates.subscribe()
    }

    /// The Redis key a revocation is stored under.
    #[must_use]
    pub fn key_for(&self, r: &Revocation) -> String {
        self.shared.key(r)
    }

    async fn revoke_remote(&self, r: &Revocation) -> Result<(), StoreError> {
        let (value, until) = match r {
            Revocation::Session { until, .. } => (1, *until),
            Revocation::Subject { at, until, .. } | Revocation::All { at, until } => {
                (at.as_micros(), *until)
            }
            _ => {
                return Err(StoreError::InvalidRevocation {
                    reason: "unknown scope",
                })
            }
        };
        let mut conn = self.conn.clone();
        let mut inv = self.revoke.prepare_invoke();
        inv.key(self.shared.key(r))
            .arg(value)
            .arg(until.as_secs())
            .arg(&self.shared.channel)
            .arg(encode(r));
        let fut = async move { inv.invoke_async::<i64>(&mut conn).await };
        bounded(self.shared.timeout, fut).await.map(|_| ())
    }

    async fn check_remote(
        &self,
        ids: SessionIds<'_>,
        now: UnixTime,
    ) -> Result<Result<(), Revoked>, StoreError> {
        let mut pipe = redis::pipe();
        let mut keys = Vec::with_capacity(3);
        keys.push(format!("{}all", self.shared.prefix));
        if let Some(sid) = ids.sid {
            keys.push(format!("{}sid:{sid}", self.shared.prefix));
        }
        if let Some(sub) = ids.sub {
            keys.push(format!("{}sub:{sub}", self.shared.prefix));
        }
        for k in &keys {
            pipe.get(k).cmd("EXPIRETIME").arg(k);
        }
        let mut conn = self.conn.clone();
        let fut = async move { pipe.query_async::<Vec<(Option<u64>, i64)>>(&mut conn).await };
        let rows = bounded(self.shared.timeout, fut).await?;
        // Evaluate with the same rules as the mirror, and teach the mirror what it missed.
        let view = MemoryStore::new();
        for (key, (value, exat)) in keys.iter().zip(rows) {
            if let Some(r) = decode_key(&self.shared.prefix, key, value, exat) {
                let _ = view.apply_at(&r, now);
                let _ = self.shared.mirror.apply_at(&r, self.shared.clock.now());
            }
        }
        Ok(view.check_at(ids, now))
    }
}

impl RevocationStore for RedisStore {
    fn check_at(&self, ids: SessionIds<'_>, now: UnixTime) -> Result<(), Revoked> {
        self.shared.mirror.check_at(ids, now)
    }

    fn check_authoritative_at<'a>(
        &'a self,
        ids: SessionIds<'a>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Result<(), Revoked>, StoreError>> {
        Box::pin(self.check_remote(ids, now))
    }

    fn revoke_at(
        &self,
        revocation: Revocation,
        now: UnixTime,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            // This instance honours it at once, whatever Redis says (a malformed one is
            // refused here, changing nothing).
            let in_force = self.shared.mirror.apply_at(&revocation, now)?;
            self.shared.bump();
            if !in_force {
                return Ok(());
            }
            self.revoke_remote(&revocation).await
        })
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable {
        source: Box::new(e),
    }
}

async fn bounded<T>(
    after: Duration,
    fut: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(after, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(unavailable(e)),
        Err(_) => Err(StoreError::Timeout { after }),
    }
}

/// Cut-offs written by 0.1 were whole seconds, exclusive ("began before S"); ours are
/// microseconds, inclusive ("began at or before M"). No microsecond cut-off is below 10^11
/// (a day after the epoch) and no seconds value reaches it before the year 5138, so the
/// size says which one a stored number is.
const LEGACY_SECONDS_BELOW: u64 = 100_000_000_000;

fn cutoff(n: u64) -> UnixMicros {
    if n < LEGACY_SECONDS_BELOW {
        // "Before second n": at or before the last microsecond of second n - 1.
        UnixMicros::from_micros(n.saturating_mul(1_000_000).saturating_sub(1))
    } else {
        UnixMicros::from_micros(n)
    }
}

/// The pub/sub message: `s <until> <sid>`, `u <at> <until> <sub>`, `a <at> <until>`, with
/// `at` in microseconds. Ids go last because they may contain spaces.
fn encode(r: &Revocation) -> String {
    match r {
        Revocation::Session { sid, until } => format!("s {until} {sid}"),
        Revocation::Subject { sub, at, until } => {
            format!("u {} {until} {sub}", at.as_micros())
        }
        Revocation::All { at, until } => format!("a {} {until}", at.as_micros()),
        _ => String::new(),
    }
}

fn decode(msg: &str) -> Option<Revocation> {
    let num = |s: &str| s.parse::<u64>().ok().map(UnixTime::from_secs);
    let at = |s: &str| s.parse::<u64>().ok().map(cutoff);
    let (kind, rest) = msg.split_once(' ')?;
    match kind {
        "s" => {
            let (until, sid) = rest.split_once(' ')?;
            Some(Revocation::Session {
                sid: sid.to_owned(),
                until: num(until)?,
            })
        }
        "u" => {
            let (cut, rest) = rest.split_once(' ')?;
            let (until, sub) = rest.split_once(' ')?;
            Some(Revocation::Subject {
                sub: sub.to_owned(),
                at: at(cut)?,
                until: num(until)?,
            })
        }
        "a" => {
            let (cut, until) = rest.split_once(' ')?;
            Some(Revocation::All {
                at: at(cut)?,
                until: num(until)?,
            })
        }
        _ => None,
    }
    .filter(|r| r.check().is_ok())
}

/// A stored key back into a revocation; `exat` is its `EXPIRETIME` (-1 none, -2 missing).
fn decode_key(prefix: &str, key: &str, value: Option<u64>, exat: i64) -> Option<Revocation> {
    let value = value?;
    let until = UnixTime::from_secs(u64::try_from(exat).ok()?);
    let name = key.strip_prefix(prefix)?;
    if let Some(sid) = name.strip_prefix("sid:") {
        Some(Revocation::Session {
            sid: sid.to_owned(),
            until,
        })
    } else if let Some(sub) = name.strip_prefix("sub:") {
        Some(Revocation::Subject {
            sub: sub.to_owned(),
            at: cutoff(value),
            until,
        })
    } else if name == "all" {
        Some(Revocation::All {
            at: cutoff(value),
            until,
        })
    } else {
        None
    }
}

/// Escapes glob characters so a prefix matches only itself in `SCAN MATCH`.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('*');
    out
}

/// Keeps the mirror current for the life of the store: subscribe, load, follow events;
/// on any failure mark the mirror disconnected, back off, and start over.
async fn mirror_loop(client: redis::Client, shared: Arc<Shared>, max_backoff: Duration) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match follow(&client, &shared).await {
            Ok(()) => tracing::warn!("revocation mirror: Redis subscription ended; reconnecting"),
            Err(e) => tracing::warn!(error = %e, "revocation mirror: Redis unreachable; retrying"),
        }
        if shared.connected.swap(false, Ordering::SeqCst) {
            backoff = Duration::from_millis(50);
            shared.bump();
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(max_backoff);
    }
}

async fn follow(client: &redis::Client, shared: &Shared) -> Result<(), StoreError> {
    let t = shared.timeout;
    let mut pubsub = bounded(t, client.get_async_pubsub()).await?;
    // Subscribe before loading, so nothing revoked during the load is missed; events are
    // merges, so seeing one twice is harmless.
    bounded(t, pubsub.subscribe(&shared.channel)).await?;
    let mut conn = bounded(t, client.get_multiplexed_async_connection()).await?;
    let loaded = load(&mut conn, shared).await?;
    shared.connected.store(true, Ordering::SeqCst);
    shared.bump();
    tracing::info!(entries = loaded, "revocation mirror loaded from Redis");
    let mut messages = pubsub.into_on_message();
    while let Some(msg) = messages.next().await {
        let Ok(payload) = msg.get_payload::<String>() else {
            continue;
        };
        match decode(&payload) {
            Some(r) => {
                let _ = shared.mirror.apply_at(&r, shared.clock.now());
                shared.bump();
            }
            None => tracing::warn!("revocation mirror: ignoring a malformed event"),
        }
    }
    Ok(())
}

async fn load(
    conn: &mut redis::aio::MultiplexedConnection,
    shared: &Shared,
) -> Result<usize, StoreError> {
    let t = shared.timeout;
    let pattern = glob_escape(&shared.prefix);
    let mut cursor: u64 = 0;
    let mut count = 0;
    loop {
        let scan = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(500)
            .to_owned();
        let (next, keys): (u64, Vec<String>) = bounded(t, scan.query_async(conn)).await?;
        if !keys.is_empty() {
            let mut pipe = redis::pipe();
            for k in &keys {
                pipe.get(k).cmd("EXPIRETIME").arg(k);
            }
            let rows: Vec<(Option<u64>, i64)> = bounded(t, pipe.query_async(conn)).await?;
            let now = shared.clock.now();
            for (key, (value, exat)) in keys.iter().zip(rows) {
                if let Some(r) = decode_key(&shared.prefix, key, value, exat) {
                    if matches!(shared.mirror.apply_at(&r, now), Ok(true)) {
                        count += 1;
                    }
                }
            }
        }
        if next == 0 {
            return Ok(count);
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        let t = UnixTime::from_secs;
        let m = UnixMicros::from_micros(1_800_000_000_123_456);
        for r in [
            Revocation::Session {
                sid: "a b".into(),
                until: t(9),
            },
            Revocation::Subject {
                sub: "alice smith".into(),
                at: m,
                until: t(9),
            },
            Revocation::All { at: m, until: t(9) },
        ] {
            assert_eq!(decode(&encode(&r)), Some(r));
        }
        // 0.1 sent whole seconds, exclusive: "before 1800000000" is "at or before the
        // microsecond before it".
        assert_eq!(
            decode("u 1800000000 9 alice"),
            Some(Revocation::Subject {
                sub: "alice".into(),
                at: UnixMicros::from_micros(1_799_999_999_999_999),
                until: t(9)
            })
        );
        for bad in ["", "s", "s x y", "u 1 2", "a 1", "z 1 2", "s 9 ", "u 1 2 "] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn keys_decode() {
        let t = UnixTime::from_secs;
        assert_eq!(
            decode_key("p:", "p:sid:x", Some(1), 9),
            Some(Revocation::Session {
                sid: "x".into(),
                until: t(9)
            })
        );
        let m = 1_800_000_000_123_456;
        assert_eq!(
            decode_key("p:", "p:sub:u", Some(m), 9),
            Some(Revocation::Subject {
                sub: "u".into(),
                at: UnixMicros::from_micros(m),
                until: t(9)
            })
        );
        assert_eq!(
            decode_key("p:", "p:all", Some(3), 9),
            Some(Revocation::All {
                at: UnixMicros::from_micros(2_999_999),
                until: t(9)
            }),
            "a 0.1 key: whole seconds, exclusive"
        );
        assert_eq!(
            decode_key("p:", "p:all", Some(3), -1),
            None,
            "a key without expiry is not ours"
        );
        assert_eq!(decode_key("p:", "p:all", None, 9), None);
        assert_eq!(decode_key("p:", "q:all", Some(3), 9), None);
        assert_eq!(decode_key("p:", "p:other", Some(3), 9), None);
    }

    #[test]
    fn prefixes_are_glob_escaped() {
        assert_eq!(glob_escape("app*[1]?\\:"), "app\\*\\[1\\]\\?\\\\:*");
    }
}
