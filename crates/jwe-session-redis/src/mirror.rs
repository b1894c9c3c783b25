//! The mirror: what the request path reads, in memory. A session revocation is held for
//! the window after Redis took it (or after this instance learned it, whichever is later),
//! with its whole `until` kept for a write-back; subject and global cut-offs are held
//! whole. A leaf: it knows revocations, moments and the log's encoding, not Redis.

use std::time::Duration;

use jwe_session_core::{
    InvalidRevocation, MemoryStore, Revocation, RevocationStore as _, RevocationWatch, Revoked,
    SessionIds, UnixMicros, UnixTime, WatchUnsupported,
};

use crate::layout::{self, StreamId};

/// This instance's view of the revocations, windowed.
pub(crate) struct Mirror {
    store: MemoryStore,
    window: Duration,
}

impl Mirror {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            store: MemoryStore::new(),
            window,
        }
    }

    /// How long a session revocation is held after it was made.
    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    /// Holds a revocation as the request path needs it: a session one for the window
    /// after `made`, but with its whole `until`, so a write-back restores its real expiry.
    /// Whether it is held.
    pub(crate) fn remember(
        &self,
        r: &Revocation,
        made: UnixTime,
        now: UnixTime,
    ) -> Result<bool, InvalidRevocation> {
        self.store
            .remember(r, made.saturating_add(self.window), now)
    }

    /// Holds a cut-off (or anything) until its own `until`.
    pub(crate) fn apply(&self, r: &Revocation, now: UnixTime) -> Result<bool, InvalidRevocation> {
        self.store.apply(r, now)
    }

    /// Holds what one log entry carries; how many revocations it held. The window starts
    /// when Redis took the entry (its id, by Redis's clock) or at `now`, whichever is later:
    /// no writer's clock (the `made` it put in the entry) can shorten it, and a reader
    /// behind Redis holds it longer. A value this version cannot read is set aside, loudly.
    pub(crate) fn apply_entry(&self, id: &str, values: &[Vec<u8>], now: UnixTime) -> usize {
        let taken = StreamId::parse(id).map_or(now, StreamId::time).max(now);
        let mut n = 0;
        for v in values {
            match layout::decode(v) {
                // The entry's `made` is for readers of earlier versions; this one goes by
                // `taken` (and windows session revocations only).
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
        n
    }

    pub(crate) fn check(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<Revoked> {
        self.store.check(ids, now)
    }

    pub(crate) fn refresh_due(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<UnixMicros> {
        self.store.refresh_due(ids, now)
    }

    pub(crate) fn watch(
        &self,
        ids: SessionIds<'_>,
        now: UnixTime,
    ) -> Result<RevocationWatch, WatchUnsupported> {
        self.store.watch(ids, now)
    }

    /// Everything held, each with its whole `until`: what a repair writes back.
    pub(crate) fn snapshot(&self, now: UnixTime) -> Vec<Revocation> {
        self.store.snapshot(now)
    }

    pub(crate) fn prune(&self, now: UnixTime) {
        self.store.prune(now);
    }

    pub(crate) fn len(&self) -> usize {
        self.store.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> UnixTime {
        UnixTime::from_secs(s)
    }

    fn ids(sid: &str) -> SessionIds<'_> {
        SessionIds {
            sid: Some(sid),
            sub: Some("alice"),
            started: Some(UnixMicros::from_micros(1_000_000)),
            issued: Some(UnixMicros::from_micros(1_000_000)),
        }
    }

    /// A session revocation is held for the window after it was made, however long its
    /// `until`; the snapshot still carries the whole `until`. A cut-off is held whole.
    #[test]
    fn session_revocations_are_held_for_the_window_only() {
        let m = Mirror::new(Duration::from_secs(60));
        let r = Revocation::Session {
            sid: "s1".into(),
            until: t(10_000),
        };
        assert_eq!(m.remember(&r, t(1_000), t(1_000)), Ok(true));
        assert_eq!(m.check(ids("s1"), t(1_059)), Some(Revoked::Session));
        assert_eq!(m.check(ids("s1"), t(1_060)), None, "past the window");
        assert_eq!(m.snapshot(t(1_000)), vec![r]);

        let cut = Revocation::Subject {
            sub: "alice".into(),
            at: UnixMicros::from_micros(2_000_000),
            until: t(5_000),
        };
        assert_eq!(m.remember(&cut, t(1_000), t(1_000)), Ok(true));
        assert!(matches!(
            m.check(ids("s2"), t(4_999)),
            Some(Revoked::Subject { .. })
        ));
    }

    /// A log entry's window starts at Redis's stamp (its id) or at `now`, whichever is
    /// later: a writer's clock in the entry cannot shorten it.
    #[test]
    fn a_log_entry_is_windowed_from_when_redis_took_it() {
        let m = Mirror::new(Duration::from_secs(60));
        // Redis took it at 2,000 s; its `made` says 1 (a writer far behind).
        let entry = [b"s 10000 1 s1".to_vec()];
        assert_eq!(m.apply_entry("2000000-0", &entry, t(1_990)), 1);
        assert_eq!(m.check(ids("s1"), t(2_059)), Some(Revoked::Session));
        assert_eq!(m.check(ids("s1"), t(2_060)), None);
        // Learned late (now past Redis's stamp): windowed from now.
        let m = Mirror::new(Duration::from_secs(60));
        assert_eq!(m.apply_entry("2000000-0", &entry, t(3_000)), 1);
        assert_eq!(m.check(ids("s1"), t(3_059)), Some(Revoked::Session));
        // A value this version cannot read is set aside, the rest held.
        let m = Mirror::new(Duration::from_secs(60));
        let mixed = [b"z what".to_vec(), b"s 10000 1 s1".to_vec()];
        assert_eq!(m.apply_entry("2000000-1", &mixed, t(2_000)), 1);
        assert_eq!(m.len(), 1);
    }
}
