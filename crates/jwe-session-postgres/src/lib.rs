//! A PostgreSQL-backed [`RevocationStore`] for jwe-session, shared by every instance of a
//! service through the database it already runs, that never puts a database round trip
//! on the request path and never loses a revocation to an outage.
//!
//! [`RevocationStore`]: jwe_session_core::RevocationStore
//!
//! # How it works
//!
//! - Each instance keeps a **mirror** (a [`MemoryStore`](jwe_session_core::MemoryStore))
//!   that answers [`check`](jwe_session_core::RevocationStore::check), the per-request
//!   check, from memory. Unlike a SQL session store, a request never queries the database.
//! - A revocation is one row of the `revocations` table, numbered from a sequence
//!   (`seq`) each time it changes and announced with `pg_notify`, in the same
//!   transaction. Writers take one transaction-level advisory lock, so numbers commit in
//!   order: a follower that reads `WHERE seq > last_seen` never skips a row committed late.
//! - Each instance holds `LISTEN` on a connection of its own (outside the app's pool) and
//!   reads the new rows when told; it also reads every
//!   [poll interval](PgStoreBuilder::poll_interval) (1 s by default), which covers a
//!   deployment without `LISTEN` (PgBouncer in transaction mode:
//!   [`listen(false)`](PgStoreBuilder::listen)) and a listener that silently stopped.
//!   After any reconnect (of the listener, of the database, a failover) the next read
//!   starts where the last one ended: nothing is lost, nothing is read twice.
//! - [`check_authoritative`](jwe_session_core::RevocationStore::check_authoritative), which
//!   the layer runs only when it renews a token past `exp`, reads the session's rows and
//!   merges them with what this instance knows: the database's "not revoked" never
//!   overrides a local "revoked".
//! - Start-up reads, in one repeatable-read transaction, the subject and global cut-offs
//!   in force and the session revocations of the last [window](PgStoreBuilder::mirror_window)
//!   (an index on `made_us`): its cost follows the revocations that matter, never the
//!   rest of the table.
//!
//! # Schema (format 1)
//!
//! Made by the store at [`connect`](PgStoreBuilder::connect) (versioned, idempotent, in
//! one transaction under an advisory lock: instances starting together take turns), or by
//! your own migrations from the SQL files shipped in the crate (`sql/0001_init.sql`; then
//! connect with [`migrate(false)`](PgStoreBuilder::migrate)). Everything lives in one
//! PostgreSQL schema, `jwe_session` by default ([`schema`](PgStoreBuilder::schema)):
//!
//! | object | holds |
//! |---|---|
//! | `meta (name, value)` | `format` (1) and `epoch`, a random id made once |
//! | `revocation_seq` | the numbers of changes |
//! | `revocations (scope, id, at_us, until_s, made_us, seq)` | one row per entry: `scope` 0 session (`id` = sid), 1 subject (`id` = sub), 2 everyone (`id` = `''`), 3 claims refresh (`id` = sub); `at_us` the cut-off in µs (none for a session); `until_s` when the row may go; `made_us` when the database last changed it, by its clock; primary key `(scope, id)`, unique index on `seq` |
//! | `devices (sid, sub, until_s, record)` | the session registry: one record per live session, the core's JSON |
//! | `revoke(scopes, ids, ats, untils, now)` | the one writer: merges each revocation into its row (the later cut-off and the later `until` win, as in every store), numbers and announces what changed, under the writers' lock |
//!
//! A repeat of a revocation changes nothing, takes no number and announces nothing. A
//! row this version cannot read (a scope it does not know) is set aside with an error
//! naming it, never taken for another scope; a new scope comes with a new format.
//!
//! ## Least privilege
//!
//! The service (and the CLI) need no DDL rights when the schema is made by another role:
//! run [`migrate`] once as the schema's owner (or your migration tool), then grant what
//! `sql/grants.sql` lists and connect with `migrate(false)`:
//!
//! ```sql
//! GRANT USAGE ON SCHEMA jwe_session TO app;
//! GRANT SELECT ON jwe_session.meta TO app;
//! GRANT SELECT, INSERT, UPDATE, DELETE ON jwe_session.revocations, jwe_session.devices TO app;
//! GRANT USAGE, SELECT ON SEQUENCE jwe_session.revocation_seq TO app;
//! ```
//!
//! # Watching sessions
//!
//! [`watch`](jwe_session_core::RevocationStore::watch) watches in the mirror, which every
//! revocation reaches: made here, read after a `NOTIFY` (a round trip, a few
//! milliseconds), read at the next poll, learned at a renewal, or caught up after a
//! reconnect. A WebSocket or gRPC stream held on any instance closes when its session is
//! revoked on any other.
//!
//! # Bounded memory
//!
//! The same rule as the Redis store's: a session revocation is held for the window after
//! the database took it ([`Lifetimes::mirror_window`](jwe_session_core::Lifetimes::mirror_window);
//! default [`DEFAULT_MIRROR_WINDOW`], 15 min + 60 s); after that a token of that session is
//! past `exp` and the authoritative check at renewal refuses it. Cut-offs are few and kept
//! whole. Fail-open renewal needs the window to cover every renewable token; the session
//! layer refuses to build with a store whose
//! [`memory_window`](jwe_session_core::RevocationStore::memory_window) is shorter than its
//! lifetimes need.
//!
//! # Pruning
//!
//! Every minute each instance deletes expired rows in bounded batches (1,000 rows per
//! statement, 10 statements per table), and [`PgStore::prune`] does it on demand. The
//! newest revocation row stays whatever its `until`: the table's largest `seq` then only
//! moves forward, which is how a follower notices a database that went back in time.
//!
//! # Faults
//!
//! - **PostgreSQL unreachable.** Checks answer from the mirror. [`revoke`] applies the
//!   revocation here at once and, if the database does not take it, queues it and
//!   returns `Ok(Recorded::Queued { .. })`: it is re-sent on its own (with backoff, at
//!   most [`max_backoff`](PgStoreBuilder::max_backoff) apart) and other instances honour
//!   it within a poll of the database answering again. With `PgStoreBuilder::queue_in`
//!   (feature `file`) the queue is a `FileStore` on disk and survives a restart. The
//!   authoritative check fails, and the layer's policy decides (fail closed by default).
//!   No call waits longer than the [timeout](PgStoreBuilder::timeout).
//! - **A dropped connection** (a restart, a failover, `pg_terminate_backend`): the pool
//!   opens a new one; the listener reconnects, listens again and wakes a catch-up.
//! - **The database came back older** (a restore from backup, a failover to a lagging
//!   asynchronous standby): its newest `seq` is below one this instance saw, checked on
//!   every read; the schema replaced (dropped and made again): its `epoch` changed. Either
//!   way each instance writes back what it knows (its mirror, each entry with its whole
//!   `until`; its queue; with a durable queue every revocation it made). What no instance
//!   holds is lost with the data: use synchronous replication for failover.
//! - **Clocks.** A reader keeps a session revocation for its window from when the
//!   database took it (its clock) or when the reader learned it, whichever is later: a
//!   writer whose clock is behind cannot shorten it.
//! - **Bad rows.** A row the table's checks would refuse never gets in; one this version
//!   cannot read is set aside, loudly. A batch refused for its data is re-sent one by one
//!   so one bad entry holds back nothing else; a missing grant or schema is an outage,
//!   and what was queued stays queued.
//!
//! [`revoke`]: jwe_session_core::RevocationStore::revoke
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use jwe_session_postgres::PgStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The pool the app already has.
//! let pool = sqlx::PgPool::connect("postgres://app@db.internal/app").await?;
//! let store = PgStore::builder(pool).connect().await?;
//! // SessionLayer::builder(ring).revocation_store(Arc::new(store))
//! # let _ = Arc::new(store);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod builder;
mod conn;
mod error;
mod follower;
mod registry;
mod rows;
mod schema;
mod sender;
mod store;
mod writer;

pub use builder::{PgStoreBuilder, DEFAULT_MIRROR_WINDOW, DEFAULT_POLL_INTERVAL, DEFAULT_TIMEOUT};
pub use error::BackendError;
pub use schema::{migrate, DEFAULT_SCHEMA, FORMAT};
/// The driver's pool type, re-exported so an app can name the one it passes.
pub use sqlx::PgPool;
pub use store::PgStore;
pub use writer::PgWriter;
