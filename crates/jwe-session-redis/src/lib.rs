//! A Redis-backed [`RevocationStore`] for jwe-session, shared by every instance of a
//! service, that never puts a network round trip on the request path, never loses a
//! revocation to an outage, and repairs a Redis that lost its data.
//!
//! [`RevocationStore`]: jwe_session_core::RevocationStore
//!
//! # How it works
//!
//! - Each instance keeps a **mirror** (a [`MemoryStore`](jwe_session_core::MemoryStore)) that answers
//!   [`check`](jwe_session_core::RevocationStore::check), the per-request check, from memory.
//! - Revocations reach every mirror through a **Redis stream**, the replication log: a
//!   follower task reads it with `XREAD BLOCK` from the last entry it saw, so a
//!   reconnect replays exactly what it missed (no full reload, no pub/sub gap).
//! - [`check_authoritative`](jwe_session_core::RevocationStore::check_authoritative), which the layer
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
//! | `{P}devices:<sub>` | sorted set | the session registry: a subject's sids, scored by `until` | `EXAT` its latest `until`; pruned on every write |
//! | `{P}device:<sid>` | hash | one session's registry record (`sid sub started_us renewed bound until`, and `label`, `network` when given) | `EXAT` its `until` |
//!
//! A log value is `s <until> <made> <sid>`, `u <at µs> <until> <sub>`,
//! `a <at µs> <until>` or `f <at µs> <until> <sub>` (a claims refresh) (times in Unix seconds unless marked; ids last, as they may hold
//! spaces). One Lua script merges a write into its point keys (the later cut-off and the
//! later expiry win, as in every store) and appends to the log only what changed, so
//! re-sending a revocation is harmless and cheap.
//!
//! The session registry ("your devices") is written where a session starts, renews, moves
//! to a new `sid` or ends (one script: the merge rule every store applies), and read when
//! a list is asked for; it is never on the log, so it costs the request path and the
//! follower nothing. It came without a new format number: a version that does not know
//! it never reads it.
//!
//! A log value or point key that this version cannot read (of a kind it does not know, or
//! out of range) is never taken for another scope: it is set aside with an error naming
//! it, and the rest of the log goes on (one fleet shares the log; a reader cannot refuse
//! it whole). That is the project's one policy for unknown entries, stated in
//! `jwe_session_core::Scope`'s module; a new kind comes with a new format number.
//!
//! # Watching sessions
//!
//! [`watch`](jwe_session_core::RevocationStore::watch) watches in the mirror, which every revocation
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
//! build with a store whose [`memory_window`](jwe_session_core::RevocationStore::memory_window) is shorter
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
//!   [`Revocation::LATEST`](jwe_session_core::Revocation::LATEST)) is refused when read; a revocation Redis refuses is set aside
//!   with a warning, and the rest of its batch goes on.
//! - **Eviction.** A `maxmemory-policy` other than `noeviction` silently forgets
//!   revocations (every key here has an expiry, so even `volatile-*` policies may take
//!   them). The store reads the policy at connect and logs a warning; see
//!   [`RedisStore::eviction_policy`].
//!
//! [`revoke`]: jwe_session_core::RevocationStore::revoke
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

mod builder;
mod conn;
mod error;
mod follower;
mod layout;
mod mirror;
mod outbox;
mod registry;
mod sender;
mod store;
mod writer;

pub use builder::{RedisStoreBuilder, DEFAULT_MIRROR_WINDOW, DEFAULT_PREFIX, DEFAULT_TIMEOUT};
pub use error::BackendError;
pub use store::RedisStore;
pub use writer::RedisWriter;
