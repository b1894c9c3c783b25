//! The outbox: revocations Redis has not taken yet, one per point key, merged as they
//! come (the later cut-off and the later expiry win, as in Redis itself), and settled
//! only for what was sent unchanged: an entry merged while its send was in flight goes
//! out again. A leaf: it knows revocations and key names, not Redis.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use jwe_session_core::{Revocation, Revoked, SessionIds, UnixTime};
use tokio::sync::Notify;

/// Revocations waiting for Redis, by point key.
#[derive(Default)]
pub(crate) struct Outbox {
    pending: Mutex<HashMap<String, Revocation>>,
    changed: Notify,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Revocation>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues revocations under their point keys, each merged into what is queued for the
    /// same key; wakes the sender if anything came.
    pub(crate) fn enqueue(&self, revs: impl IntoIterator<Item = (String, Revocation)>) {
        let mut pending = self.lock();
        let mut added = false;
        for (key, r) in revs {
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
            self.changed.notify_one();
        }
    }

    /// Up to `max` queued revocations, with their keys, to send.
    pub(crate) fn batch(&self, max: usize) -> Vec<(String, Revocation)> {
        self.lock()
            .iter()
            .take(max)
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect()
    }

    /// Takes out what was sent, unless it changed meanwhile (a revocation merged into the
    /// entry while it was in flight goes in the next round). How many are left.
    pub(crate) fn settle(&self, sent: &[(String, Revocation)]) -> usize {
        let mut pending = self.lock();
        for (key, r) in sent {
            if pending.get(key) == Some(r) {
                pending.remove(key);
            }
        }
        pending.len()
    }

    /// Why a queued revocation says a session is revoked, if one does.
    pub(crate) fn revokes(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<Revoked> {
        self.lock().values().find_map(|r| r.revokes(ids, now))
    }

    /// How many revocations wait.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
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

#[cfg(test)]
mod tests {
    use jwe_session_core::UnixMicros;

    use super::*;

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

    /// Two revocations for one key are one entry: the later cut-off and the later expiry.
    #[test]
    fn what_is_queued_for_one_key_merges() {
        let o = Outbox::default();
        o.enqueue([
            ("sub:a".to_owned(), cut("a", 10, 500)),
            ("sub:a".to_owned(), cut("a", 30, 200)),
            ("sid:x".to_owned(), session("x", 100)),
        ]);
        assert_eq!(o.len(), 2);
        let batch = o.batch(10);
        let merged = batch.iter().find(|(k, _)| k == "sub:a").map(|(_, r)| r);
        assert_eq!(merged, Some(&cut("a", 30, 500)));
        // A later, shorter one changes nothing of what the entry holds.
        o.enqueue([("sub:a".to_owned(), cut("a", 20, 100))]);
        assert_eq!(
            o.batch(10)
                .iter()
                .find(|(k, _)| k == "sub:a")
                .map(|(_, r)| r.clone()),
            Some(cut("a", 30, 500))
        );
    }

    /// Settling removes only what was sent as it is now; a merge during the send keeps
    /// the entry for the next round, and a smaller batch leaves the rest.
    #[test]
    fn settle_keeps_what_changed_in_flight() {
        let o = Outbox::default();
        o.enqueue([
            ("sub:a".to_owned(), cut("a", 10, 500)),
            ("sid:x".to_owned(), session("x", 100)),
        ]);
        let sent = o.batch(10);
        o.enqueue([("sub:a".to_owned(), cut("a", 40, 500))]);
        assert_eq!(o.settle(&sent), 1, "the merged entry stays");
        assert_eq!(o.batch(10), vec![("sub:a".to_owned(), cut("a", 40, 500))]);
        assert_eq!(o.settle(&o.batch(10)), 0);
        assert_eq!(o.batch(1).len(), 0);
        o.enqueue([
            ("sid:1".to_owned(), session("1", 9)),
            ("sid:2".to_owned(), session("2", 9)),
        ]);
        let one = o.batch(1);
        assert_eq!(one.len(), 1);
        assert_eq!(o.settle(&one), 1);
    }

    /// A queued revocation revokes here before Redis has it (the authoritative check
    /// asks the outbox first).
    #[test]
    fn queued_revocations_are_in_force() {
        let o = Outbox::default();
        let ids = SessionIds {
            sid: Some("x"),
            sub: Some("a"),
            started: None,
            issued: None,
        };
        assert_eq!(o.revokes(ids, UnixTime::from_secs(50)), None);
        o.enqueue([("sid:x".to_owned(), session("x", 100))]);
        assert_eq!(
            o.revokes(ids, UnixTime::from_secs(50)),
            Some(Revoked::Session)
        );
        assert_eq!(
            o.revokes(ids, UnixTime::from_secs(100)),
            None,
            "past its until"
        );
    }
}
