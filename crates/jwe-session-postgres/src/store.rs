//! [`PgStore`]: the [`RevocationStore`] itself, and what its parts share. Checks read the
//! mirror; the authoritative check reads what this instance knows first (mirror, queue,
//! journal), then the session's rows; a revocation is held here at once and written, or
//! queued.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jwe_session_core::{
    BoxFuture, CheckError, Clock, Journal, MemoryStore, Recorded, Revocation, RevocationQueue,
    RevocationStore, RevocationWatch, RevokeError, Revoked, SessionIds, SessionRegistry,
    UnixMicros, UnixTime, WatchUnsupported,
};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::rows::Stored;
use crate::writer::Writer;

/// What the store, its follower, its listener and its sender share.
pub(crate) struct Shared {
    pub(crate) writer: Writer,
    /// What the request path reads: a session revocation for the window after the
    /// database took it (or this instance learned it, whichever is later), with its
    /// whole `until` kept for a write-back; cut-offs whole.
    pub(crate) mirror: MemoryStore,
    pub(crate) window: Duration,
    /// Revocations the database has not taken yet.
    pub(crate) queue: RevocationQueue,
    /// Wakes the sender: something was queued, or the database answers again.
    pub(crate) queued: Notify,
    /// Wakes the follower: a `NOTIFY` came, or the listener (re)connected.
    pub(crate) news: Notify,
    pub(crate) journal: Journal,
    pub(crate) connected: AtomicBool,
    pub(crate) listening: AtomicBool,
    pub(crate) updates: watch::Sender<u64>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) max_backoff: Duration,
    pub(crate) poll: Duration,
    pub(crate) repairs: AtomicU64,
}

impl Shared {
    /// Moves the [`PgStore::updates`] counter.
    pub(crate) fn bump(&self) {
        self.updates.send_modify(|n| *n += 1);
    }

    /// Queues revocations for the database and wakes the sender.
    pub(crate) fn enqueue(&self, revs: impl IntoIterator<Item = Revocation>) {
        if self.queue.enqueue(revs) {
            self.queued.notify_one();
        }
    }

    /// Holds a revocation as the request path needs it: a session one for the window
    /// after `made`, with its whole `until`. Whether it is held.
    pub(crate) fn remember(&self, r: &Revocation, made: UnixTime, now: UnixTime) -> bool {
        matches!(
            self.mirror
                .remember(r, made.saturating_add(self.window), now),
            Ok(true)
        )
    }

    /// Applies rows read from the table; how many revocations they held. A session
    /// revocation is windowed from when the database took it (its clock) or from now,
    /// whichever is later: no writer's clock can shorten it.
    pub(crate) fn apply(&self, rows: &[Stored]) -> usize {
        let now = self.clock.now();
        let mut n = 0;
        for s in rows {
            self.writer.saw(s.seq);
            if self.remember(&s.revocation, s.made.max(now), now) {
                n += 1;
            }
        }
        if !rows.is_empty() {
            self.bump();
        }
        n
    }
}

/// A background task, stopped when its last owner goes.
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A [`RevocationStore`] on PostgreSQL with a local mirror. Cheap to clone; the background
/// tasks (the follower, the listener and the queue's sender) stop when the last clone is
/// dropped.
#[derive(Clone)]
pub struct PgStore {
    pub(crate) shared: Arc<Shared>,
    pub(crate) _tasks: Arc<[AbortOnDrop]>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.shared.writer.sql.schema)
            .field("connected", &self.is_connected())
            .field("listening", &self.is_listening())
            .field("mirror_entries", &self.mirrored())
            .field("queued", &self.queued())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Whether the follower's last read of the table succeeded.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::SeqCst)
    }

    /// Whether the listener holds a connection with `LISTEN` on the channel (`false` when
    /// [`listen(false)`](crate::PgStoreBuilder::listen) was chosen): then news arrives
    /// within a round trip, otherwise within the [poll
    /// interval](crate::PgStoreBuilder::poll_interval).
    #[must_use]
    pub fn is_listening(&self) -> bool {
        self.shared.listening.load(Ordering::SeqCst)
    }

    /// How many revocations the local mirror holds: what [`check`](RevocationStore::check)
    /// answers from.
    #[must_use]
    pub fn mirrored(&self) -> usize {
        self.shared.mirror.len()
    }

    /// How many revocations wait to be written to PostgreSQL.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.shared.queue.len()
    }

    /// How many times this store found the database replaced or back in time and wrote
    /// back what it knew.
    #[must_use]
    pub fn repairs(&self) -> u64 {
        self.shared.repairs.load(Ordering::SeqCst)
    }

    /// The schema this store reads and writes.
    #[must_use]
    pub fn schema(&self) -> &str {
        &self.shared.writer.sql.schema
    }

    /// A counter that moves whenever the mirror, the connection or the queue changes:
    /// wait on it instead of polling.
    #[must_use]
    pub fn updates(&self) -> watch::Receiver<u64> {
        self.shared.updates.subscribe()
    }

    /// Deletes expired revocations and registry records, at most `batch` rows per
    /// statement and `rounds` statements per table; how many rows went. The follower runs
    /// this every minute (1,000 × 10); one instance's prune is every instance's. The
    /// newest revocation row stays whatever its `until` (see the crate docs).
    ///
    /// # Errors
    /// [`BackendError`](crate::BackendError) if PostgreSQL refused or did not answer; what
    /// went before stays gone.
    pub async fn prune(
        &self,
        now: UnixTime,
        batch: u32,
        rounds: u32,
    ) -> Result<u64, crate::BackendError> {
        self.shared.writer.prune(now, batch, rounds).await
    }

    async fn check_remote(
        &self,
        ids: SessionIds<'_>,
        now: UnixTime,
    ) -> Result<Option<Revoked>, CheckError> {
        // What this instance knows first: the database's "not revoked" never overrides it.
        if let Some(r) = self.check(ids, now) {
            return Ok(Some(r));
        }
        let local = self
            .shared
            .queue
            .revokes(ids, now)
            .or_else(|| self.shared.journal.revokes(ids, now));
        if let Some(r) = local {
            return Ok(Some(r));
        }
        let rows = self.shared.writer.point_rows(ids).await?;
        let mut verdict = None;
        let learned = self.shared.clock.now();
        for s in &rows {
            if let Some(why) = s.revocation.revokes(ids, now) {
                verdict = Some(why);
            }
            // Teach the mirror what it missed, for its window from now.
            self.shared.remember(&s.revocation, learned, learned);
        }
        Ok(verdict)
    }
}

impl RevocationStore for PgStore {
    fn check(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<Revoked> {
        self.shared.mirror.check(ids, now)
    }

    fn refresh_due(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<UnixMicros> {
        self.shared.mirror.refresh_due(ids, now)
    }

    /// Watches from the mirror: a revocation made on any instance completes the watch
    /// as soon as this instance reads it from the table (on its `NOTIFY`, its poll, a
    /// renewal's authoritative check, or the catch-up after a reconnect).
    fn watch(
        &self,
        ids: SessionIds<'_>,
        now: UnixTime,
    ) -> Result<RevocationWatch, WatchUnsupported> {
        self.shared.mirror.watch(ids, now)
    }

    fn memory_window(&self) -> Option<Duration> {
        Some(self.shared.window)
    }

    fn registry(&self) -> Option<&dyn SessionRegistry> {
        Some(self)
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
            // This instance honours it at once, whatever the database says (a malformed
            // one is refused here, changing nothing).
            let in_force = self.shared.mirror.remember(
                &revocation,
                now.saturating_add(self.shared.window),
                now,
            )?;
            self.shared.bump();
            if !in_force {
                return Ok(Recorded::Stored);
            }
            let durable = self.shared.journal.write(&revocation, now).await;
            match self
                .shared
                .writer
                .send(std::slice::from_ref(&revocation), now)
                .await
            {
                Ok(_) => Ok(Recorded::Stored),
                Err(e) => {
                    tracing::warn!(error = ?e, durable, "PostgreSQL did not take a revocation; queued");
                    self.shared.enqueue([revocation]);
                    self.shared.bump();
                    Ok(Recorded::Queued {
                        durable,
                        reason: Box::new(e),
                    })
                }
            }
        })
    }
}
