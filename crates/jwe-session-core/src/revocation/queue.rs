//! What a shared store (Redis, PostgreSQL) keeps for an outage: [`RevocationQueue`],
//! the revocations its backend has not taken yet, one per [entry](RevocationKey), merged
//! as they come by [`Revocation::absorb`] (the rule every store applies) and settled only
//! for what was sent unchanged; and [`Journal`], the optional durable record of every
//! revocation the instance made ([`DurableJournal`], which the file store implements), so
//! the queue survives a restart and a backend that lost data can be written back; and
//! [`Resync`], the one rule for when that write-back is due. A leaf that knows
//! revocations only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::model::{Revocation, RevocationKey, Revoked, Scope, SessionIds};
use super::store::BoxFuture;
use crate::error::RevokeError;
use crate::time::UnixTime;

/// An entry's key, owned.
type Key = (Scope, String);

fn key_of(r: &Revocation) -> Key {
    let k: RevocationKey<'_> = r.key();
    (k.scope(), k.id().to_owned())
}

/// Revocations waiting for a backend, at most one per entry. Thread-safe; every method
/// takes `&self`.
///
/// ```
/// use jwe_session_core::{Revocation, RevocationQueue, UnixTime};
///
/// let q = RevocationQueue::new();
/// let r = Revocation::Session { sid: "s1".into(), until: UnixTime::from_secs(100) };
/// q.enqueue([r.clone(), r.clone()]);
/// assert_eq!(q.len(), 1, "one entry per session");
/// let sent = q.batch(10);
/// // ... the backend took `sent` ...
/// assert_eq!(q.settle(&sent), 0);
/// ```
#[derive(Debug, Default)]
pub struct RevocationQueue {
    pending: Mutex<HashMap<Key, Revocation>>,
}

impl RevocationQueue {
    /// An empty queue.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Revocation>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues revocations, each merged into what is queued for its entry. Whether any came.
    pub fn enqueue(&self, revs: impl IntoIterator<Item = Revocation>) -> bool {
        let mut pending = self.lock();
        let mut added = false;
        for r in revs {
            match pending.get_mut(&key_of(&r)) {
                Some(kept) => {
                    kept.absorb(&r);
                }
                None => {
                    pending.insert(key_of(&r), r);
                }
            }
            added = true;
        }
        added
    }

    /// Up to `max` queued revocations, to send.
    #[must_use]
    pub fn batch(&self, max: usize) -> Vec<Revocation> {
        self.lock().values().take(max).cloned().collect()
    }

    /// Takes out what was sent, unless it changed meanwhile (a revocation merged into its
    /// entry while it was in flight goes in the next round). How many are left.
    pub fn settle(&self, sent: &[Revocation]) -> usize {
        let mut pending = self.lock();
        for r in sent {
            let key = key_of(r);
            if pending.get(&key) == Some(r) {
                pending.remove(&key);
            }
        }
        pending.len()
    }

    /// Why a queued revocation says a session is revoked at `now`, if one does.
    #[must_use]
    pub fn revokes(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<Revoked> {
        self.lock().values().find_map(|r| r.revokes(ids, now))
    }

    /// Everything queued.
    #[must_use]
    pub fn snapshot(&self) -> Vec<Revocation> {
        self.lock().values().cloned().collect()
    }

    /// How many entries wait.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing waits.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A durable record of the revocations one instance made, kept beside a shared store:
/// what [`Journal`] holds. `jwe_session_file::FileStore` implements it (the stores'
/// `queue_in`).
pub trait DurableJournal: Send + Sync + 'static {
    /// Every revocation it holds that is still in force at `now`.
    fn snapshot(&self, now: UnixTime) -> Vec<Revocation>;

    /// Why it says session `ids` is revoked at `now`, if it does.
    fn revokes(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<Revoked>;

    /// Records `revocation`; on disk when the future completes with `Ok`.
    ///
    /// # Errors
    /// [`RevokeError`]: it is not recorded.
    fn record<'a>(
        &'a self,
        revocation: &'a Revocation,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<(), RevokeError>>;
}

/// A shared store's optional [`DurableJournal`]: with none, it holds nothing and writes
/// nothing. Cheap to clone.
#[derive(Clone, Default)]
pub struct Journal {
    inner: Option<Arc<dyn DurableJournal>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("durable", &self.inner.is_some())
            .finish()
    }
}

impl Journal {
    /// A journal kept in `durable`.
    pub fn new(durable: impl DurableJournal) -> Self {
        Self {
            inner: Some(Arc::new(durable)),
        }
    }

    /// Every revocation it holds that is still in force at `now` (none without a journal).
    #[must_use]
    pub fn snapshot(&self, now: UnixTime) -> Vec<Revocation> {
        self.inner
            .as_ref()
            .map_or_else(Vec::new, |j| j.snapshot(now))
    }

    /// Why it says session `ids` is revoked at `now`, if it does.
    #[must_use]
    pub fn revokes(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<Revoked> {
        self.inner.as_ref().and_then(|j| j.revokes(ids, now))
    }

    /// Records `revocation`; whether it is on disk now (a failure is logged, not
    /// returned: the revocation holds in memory and in the queue either way).
    pub async fn write(&self, revocation: &Revocation, now: UnixTime) -> bool {
        let Some(j) = &self.inner else {
            return false;
        };
        match j.record(revocation, now).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = ?e, "could not record a revocation in the durable queue");
                false
            }
        }
    }
}

/// What a shared store's follower does when it reads its backend again (a reconnect, a
/// periodic check), by what it found: the one repair rule of the Redis and PostgreSQL
/// stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resync {
    /// The same backend, not older: read on from where the follower was.
    Continue,
    /// The first load (no backend known yet): read what the window needs.
    Reload,
    /// The backend lost data: write back what this instance knows, then reload.
    Repair(Lost),
}

/// How a backend was found to have lost data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lost {
    /// Its epoch marker (a random id the first instance set) is another: it was emptied
    /// or replaced.
    Replaced,
    /// Its log or numbering ends before an entry this instance saw: it went back in time
    /// (an older snapshot or backup, a failover to a lagging replica).
    WentBack,
}

impl Resync {
    /// The decision, from the epoch the follower knew (`None` before the first load), the
    /// epoch the backend holds now, and whether it went back. The first load never
    /// repairs: there is nothing of this instance's to write back yet.
    #[must_use]
    pub fn decide(known: Option<&str>, epoch: &str, went_back: bool) -> Self {
        match known {
            None => Self::Reload,
            Some(k) if k != epoch => Self::Repair(Lost::Replaced),
            Some(_) if went_back => Self::Repair(Lost::WentBack),
            Some(_) => Self::Continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::UnixMicros;

    fn cut(sub: &str, at: u64, until: u64) -> Revocation {
        Revocation::Subject {
            sub: sub.into(),
            at: UnixMicros::from_micros(at),
            until: UnixTime::from_secs(until),
        }
    }

    fn session(sid: &str, until: u64) -> Revocation {
        Revocation::Session {
            sid: sid.into(),
            until: UnixTime::from_secs(until),
        }
    }

    /// Two revocations of one entry are one: the later cut-off and the later expiry, in
    /// any order; a session and a subject of the same name are two entries.
    #[test]
    fn what_is_queued_for_one_entry_merges() {
        let q = RevocationQueue::new();
        assert!(!q.enqueue([]));
        assert!(q.enqueue([cut("a", 10, 500), cut("a", 30, 200), session("a", 100)]));
        assert_eq!(q.len(), 2);
        let merged = q
            .batch(10)
            .into_iter()
            .find(|r| matches!(r, Revocation::Subject { .. }));
        assert_eq!(merged, Some(cut("a", 30, 500)));
        q.enqueue([cut("a", 20, 100)]);
        assert!(q.snapshot().contains(&cut("a", 30, 500)));
    }

    /// Settling removes only what was sent as it is now; a merge during the send keeps
    /// the entry for the next round, and a smaller batch leaves the rest.
    #[test]
    fn settle_keeps_what_changed_in_flight() {
        let q = RevocationQueue::new();
        q.enqueue([cut("a", 10, 500), session("x", 100)]);
        let sent = q.batch(10);
        q.enqueue([cut("a", 40, 500)]);
        assert_eq!(q.settle(&sent), 1, "the merged entry stays");
        assert_eq!(q.batch(10), vec![cut("a", 40, 500)]);
        assert_eq!(q.settle(&q.batch(10)), 0);
        assert!(q.is_empty());
        q.enqueue([session("1", 9), session("2", 9)]);
        let one = q.batch(1);
        assert_eq!(one.len(), 1);
        assert_eq!(q.settle(&one), 1);
    }

    /// Every outcome: only a known backend that was replaced or went back is repaired, a
    /// replaced one whether or not it also went back, and the first load never.
    #[test]
    fn the_resync_decision() {
        assert_eq!(Resync::decide(None, "e1", false), Resync::Reload);
        assert_eq!(Resync::decide(None, "e1", true), Resync::Reload);
        assert_eq!(Resync::decide(Some("e1"), "e1", false), Resync::Continue);
        assert_eq!(
            Resync::decide(Some("e1"), "e2", false),
            Resync::Repair(Lost::Replaced)
        );
        assert_eq!(
            Resync::decide(Some("e1"), "e2", true),
            Resync::Repair(Lost::Replaced)
        );
        assert_eq!(
            Resync::decide(Some("e1"), "e1", true),
            Resync::Repair(Lost::WentBack)
        );
    }

    /// A queued revocation revokes before the backend has it, until its `until`.
    #[test]
    fn queued_revocations_are_in_force() {
        let q = RevocationQueue::new();
        let ids = SessionIds {
            sid: Some("x"),
            sub: Some("a"),
            started: None,
            issued: None,
        };
        assert_eq!(q.revokes(ids, UnixTime::from_secs(50)), None);
        q.enqueue([session("x", 100)]);
        assert_eq!(
            q.revokes(ids, UnixTime::from_secs(50)),
            Some(Revoked::Session)
        );
        assert_eq!(
            q.revokes(ids, UnixTime::from_secs(100)),
            None,
            "past its until"
        );
    }
}
