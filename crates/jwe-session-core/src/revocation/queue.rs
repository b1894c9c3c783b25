//! [`RevocationQueue`]: revocations a shared store's backend has not taken yet, one per
//! [entry](RevocationKey), merged as they come by [`Revocation::absorb`] (the rule every
//! store applies), and settled only for what was sent unchanged. The Redis and
//! PostgreSQL stores keep their outage queues in one; a leaf that knows revocations only.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::model::{Revocation, RevocationKey, Revoked, Scope, SessionIds};
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
