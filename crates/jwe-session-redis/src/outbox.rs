//! The outbox: revocations Redis has not taken yet, in the core's [`RevocationQueue`]
//! (one per entry, merged, settled only for what was sent unchanged), and the signal that
//! wakes the sender. A leaf: it knows revocations, not Redis.

use jwe_session_core::{Revocation, RevocationQueue, Revoked, SessionIds, UnixTime};
use tokio::sync::Notify;

/// Revocations waiting for Redis.
#[derive(Default)]
pub(crate) struct Outbox {
    queue: RevocationQueue,
    changed: Notify,
}

impl Outbox {
    /// Queues revocations, each merged into what is queued for its entry; wakes the
    /// sender if anything came.
    pub(crate) fn enqueue(&self, revs: impl IntoIterator<Item = Revocation>) {
        if self.queue.enqueue(revs) {
            self.changed.notify_one();
        }
    }

    /// Up to `max` queued revocations, to send.
    pub(crate) fn batch(&self, max: usize) -> Vec<Revocation> {
        self.queue.batch(max)
    }

    /// Takes out what was sent unchanged; how many are left.
    pub(crate) fn settle(&self, sent: &[Revocation]) -> usize {
        self.queue.settle(sent)
    }

    /// Why a queued revocation says a session is revoked, if one does.
    pub(crate) fn revokes(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<Revoked> {
        self.queue.revokes(ids, now)
    }

    /// How many revocations wait.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Wakes the sender (Redis answers again).
    pub(crate) fn wake(&self) {
        self.changed.notify_one();
    }

    /// Completes when something is queued or the sender is woken.
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }
}
