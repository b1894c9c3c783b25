//! [`RedisStore`]: the [`RevocationStore`] itself, and what its parts share. Checks read
//! the mirror; the authoritative check reads what this instance knows first (mirror,
//! outbox, journal), then Redis's point keys; a revocation is held here at once and sent,
//! or queued.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jwe_session_core::{
    BoxFuture, CheckError, Clock, Journal, Recorded, Revocation, RevocationStore, RevocationWatch,
    RevokeError, Revoked, SessionIds, SessionRegistry, UnixMicros, UnixTime, WatchUnsupported,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::mirror::Mirror;
use crate::outbox::Outbox;
use crate::writer::Writer;

/// What the store, its follower and its sender share.
pub(crate) struct Shared {
    pub(crate) writer: Writer,
    pub(crate) mirror: Mirror,
    pub(crate) outbox: Outbox,
    pub(crate) journal: Journal,
    pub(crate) connected: AtomicBool,
    pub(crate) updates: watch::Sender<u64>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) max_backoff: Duration,
    pub(crate) repairs: AtomicU64,
}

impl Shared {
    /// Moves the [`RedisStore::updates`] counter.
    pub(crate) fn bump(&self) {
        self.updates.send_modify(|n| *n += 1);
    }

    /// Queues revocations for Redis.
    pub(crate) fn enqueue(&self, revs: impl IntoIterator<Item = Revocation>) {
        self.outbox.enqueue(revs);
    }

    /// Applies log entries to the mirror; how many revocations they held.
    pub(crate) fn apply_entries(&self, entries: &[(String, Vec<Vec<u8>>)]) -> usize {
        let now = self.clock.now();
        let mut n = 0;
        for (id, values) in entries {
            self.writer.saw(id);
            n += self.mirror.apply_entry(id, values, now);
        }
        if !entries.is_empty() {
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

/// A [`RevocationStore`] on Redis with a local mirror. Cheap to clone; the background
/// tasks (the log follower and the queue's sender) stop when the last clone is dropped.
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) shared: Arc<Shared>,
    pub(crate) eviction_policy: Option<Arc<str>>,
    pub(crate) _tasks: Arc<[AbortOnDrop; 2]>,
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
        self.shared.outbox.len()
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
            .outbox
            .revokes(ids, now)
            .or_else(|| self.shared.journal.revokes(ids, now));
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
            let _ = self.shared.mirror.remember(&r, learned, learned);
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
        Some(self.shared.mirror.window())
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
            // This instance honours it at once, whatever Redis says (a malformed one is
            // refused here, changing nothing).
            let in_force = self.shared.mirror.remember(&revocation, now, now)?;
            self.shared.bump();
            if !in_force {
                return Ok(Recorded::Stored);
            }
            let durable = self.shared.journal.write(&revocation, now).await;
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
