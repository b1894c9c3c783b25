//! The embedded default store: revocations in this process's memory, with their watches.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use super::model::{cut, Cutoff, Revocation, Revoked, SessionIds};
use super::registry::{MemoryRegistry, SessionRegistry};
use super::store::{BoxFuture, RevocationStore};
use super::watch::{Registry, RevocationWatch, WatchEnd};
use crate::error::{InvalidRevocation, Recorded, RevokeError, WatchUnsupported};
use crate::time::{UnixMicros, UnixTime};

/// The embedded default store: revocations in this process's memory.
///
/// Entries are dropped once no token they affect could be renewed (their `until`); expired
/// entries are ignored at once and pruned on later writes, or by [`prune`](Self::prune).
/// Reads take a shared lock, so checks from many threads run in parallel.
///
/// Only right for a single instance: on several machines use a shared store such as
/// `jwe-session-redis`, which keeps one of these as its local mirror.
///
/// ```
/// use jwe_session_core::{MemoryStore, Revocation, RevocationStore, Revoked, SessionIds, UnixTime};
/// # tokio_test_block_on(async {
/// let store = MemoryStore::new();
/// let now = UnixTime::from_secs(1_000);
/// let ids = SessionIds { sid: Some("s1"), sub: Some("alice"), started: Some(now.into()), issued: None };
/// assert!(store.check(ids, now).is_none());
/// store.revoke(Revocation::Session { sid: "s1".into(), until: UnixTime::from_secs(2_000) }, now).await?;
/// assert_eq!(store.check(ids, now), Some(Revoked::Session));
/// # Ok::<(), jwe_session_core::RevokeError>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: RwLock<State>,
    watches: Arc<Registry>,
    /// The session registry ("your devices").
    sessions: MemoryRegistry,
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<String, Kept>,
    subjects: HashMap<String, Cutoff>,
    all: Option<Cutoff>,
    refreshes: HashMap<String, Cutoff>,
    next_prune: UnixTime,
}

/// A session revocation as memory holds it: its true `until` (what a write-back restores)
/// and when memory lets go of it (`forget`, at most `until`: a bounded mirror's window).
#[derive(Clone, Copy, Debug)]
struct Kept {
    until: UnixTime,
    forget: UnixTime,
}

impl Kept {
    fn in_force(self, now: UnixTime) -> bool {
        self.forget > now
    }
}

/// How often (in seconds of the clock that callers pass) writes sweep expired entries.
const PRUNE_EVERY_SECS: u64 = 60;

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a revocation synchronously (what [`revoke`](RevocationStore::revoke) does;
    /// also how a durable or shared store feeds its in-memory view), then completes the
    /// [`RevocationWatch`]es it ends. Returns whether it is in force: `false` when its
    /// `until` has passed, so there is nothing to keep (here, on disk, or anywhere else).
    ///
    /// # Errors
    /// [`InvalidRevocation`] for an empty id; nothing changes then.
    pub fn apply(&self, revocation: &Revocation, now: UnixTime) -> Result<bool, InvalidRevocation> {
        self.remember(revocation, UnixTime::from_secs(u64::MAX), now)
    }

    /// As [`apply`](Self::apply), but a session revocation is held (and refuses its
    /// session) only until `forget` if that comes before its `until`: what a shared store's
    /// bounded mirror keeps for the request path. Its `until` stays whole, so
    /// [`snapshot`](Self::snapshot) writes it back with its real expiry. Subject,
    /// global and refresh entries are always kept whole. Returns whether it is held.
    ///
    /// # Errors
    /// [`InvalidRevocation`] for an empty id or an out-of-range moment; nothing changes
    /// then.
    pub fn remember(
        &self,
        revocation: &Revocation,
        forget: UnixTime,
        now: UnixTime,
    ) -> Result<bool, InvalidRevocation> {
        let in_force = self.record(revocation, forget, now)?;
        if in_force {
            // After the state changed: a watch registered since is checked against it.
            self.watches.notify(revocation, now);
        }
        Ok(in_force)
    }

    fn record(
        &self,
        revocation: &Revocation,
        forget: UnixTime,
        now: UnixTime,
    ) -> Result<bool, InvalidRevocation> {
        revocation.check()?;
        let mut st = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let mut in_force = revocation.until() > now;
        if in_force {
            match revocation {
                Revocation::Session { sid, until } => {
                    let new = Kept {
                        until: *until,
                        forget: forget.min(*until),
                    };
                    in_force = new.in_force(now);
                    if in_force {
                        let kept = st.sessions.entry(sid.clone()).or_insert(new);
                        kept.until = kept.until.max(new.until);
                        kept.forget = kept.forget.max(new.forget);
                    }
                }
                Revocation::Subject { sub, at, until } => {
                    let cut = Cutoff::new(*at, *until);
                    st.subjects
                        .entry(sub.clone())
                        .and_modify(|c| c.absorb(cut))
                        .or_insert(cut);
                }
                Revocation::All { at, until } => {
                    let cut = Cutoff::new(*at, *until);
                    st.all.get_or_insert(cut).absorb(cut);
                }
                Revocation::Tokens { sub, at, until } => {
                    let cut = Cutoff::new(*at, *until);
                    st.refreshes
                        .entry(sub.clone())
                        .and_modify(|c| c.absorb(cut))
                        .or_insert(cut);
                }
            }
        }
        if now >= st.next_prune {
            st.prune(now);
        }
        Ok(in_force)
    }

    /// Drops every entry whose `until` has passed.
    pub fn prune(&self, now: UnixTime) {
        self.state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .prune(now);
    }

    /// Every entry in force at `now`, as revocations (what a shared store writes back to a
    /// backend that lost its data), each with its whole `until`, also those held only for a
    /// window ([`remember`](Self::remember)).
    #[must_use]
    pub fn snapshot(&self, now: UnixTime) -> Vec<Revocation> {
        let st = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let mut out =
            Vec::with_capacity(st.sessions.len() + st.subjects.len() + st.refreshes.len() + 1);
        out.extend(st.all.filter(|c| c.until > now).map(|c| Revocation::All {
            at: c.at,
            until: c.until,
        }));
        out.extend(
            st.subjects
                .iter()
                .filter(|(_, c)| c.until > now)
                .map(|(sub, c)| Revocation::Subject {
                    sub: sub.clone(),
                    at: c.at,
                    until: c.until,
                }),
        );
        out.extend(
            st.refreshes
                .iter()
                .filter(|(_, c)| c.until > now)
                .map(|(sub, c)| Revocation::Tokens {
                    sub: sub.clone(),
                    at: c.at,
                    until: c.until,
                }),
        );
        out.extend(
            st.sessions
                .iter()
                .filter(|(_, k)| k.in_force(now))
                .map(|(sid, k)| Revocation::Session {
                    sid: sid.clone(),
                    until: k.until,
                }),
        );
        out
    }

    /// Forgets every entry (a shared store's mirror does this before reloading). Watches
    /// stay: they complete when the reloaded entries (or later ones) end their sessions.
    pub fn clear(&self) {
        let mut st = self.state.write().unwrap_or_else(PoisonError::into_inner);
        *st = State::default();
    }

    /// How many entries are held (sessions + subjects + refreshes + the global cut-off),
    /// expired or not.
    #[must_use]
    pub fn len(&self) -> usize {
        let st = self.state.read().unwrap_or_else(PoisonError::into_inner);
        st.sessions.len() + st.subjects.len() + st.refreshes.len() + usize::from(st.all.is_some())
    }

    /// How many [`RevocationWatch`]es are live (for metrics and tests).
    #[must_use]
    pub fn watch_count(&self) -> usize {
        self.watches.len()
    }

    /// Whether no entries are held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl State {
    fn prune(&mut self, now: UnixTime) {
        self.sessions.retain(|_, k| k.in_force(now));
        self.subjects.retain(|_, c| c.until > now);
        self.refreshes.retain(|_, c| c.until > now);
        if self.all.is_some_and(|c| c.until <= now) {
            self.all = None;
        }
        self.next_prune = UnixTime::from_secs(now.as_secs().saturating_add(PRUNE_EVERY_SECS));
    }
}

impl RevocationStore for MemoryStore {
    fn check(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<Revoked> {
        let st = self.state.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = &st.all {
            if cut(c, ids.started, now) {
                return Some(Revoked::All { at: c.at });
            }
        }
        if let Some(sid) = ids.sid {
            if st.sessions.get(sid).is_some_and(|k| k.in_force(now)) {
                return Some(Revoked::Session);
            }
        }
        let c = st.subjects.get(ids.sub?)?;
        cut(c, ids.started, now).then_some(Revoked::Subject { at: c.at })
    }

    fn refresh_due(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<UnixMicros> {
        let st = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let c = st.refreshes.get(ids.sub?)?;
        cut(c, ids.issued, now).then_some(c.at)
    }

    fn watch(
        &self,
        ids: SessionIds<'_>,
        now: UnixTime,
    ) -> Result<RevocationWatch, WatchUnsupported> {
        let watch = self.watches.add(ids);
        // Registered first, checked second: see `Registry::add`.
        if let Some(why) = self.check(ids, now) {
            self.watches.fire_now(&watch, WatchEnd::Revoked(why));
        } else if let Some(at) = self.refresh_due(ids, now) {
            self.watches.fire_now(&watch, WatchEnd::Refreshed { at });
        }
        Ok(watch)
    }

    fn registry(&self) -> Option<&dyn SessionRegistry> {
        Some(&self.sessions)
    }

    fn revoke(
        &self,
        revocation: Revocation,
        now: UnixTime,
    ) -> BoxFuture<'_, Result<Recorded, RevokeError>> {
        let result = self
            .apply(&revocation, now)
            .map(|_| Recorded::Stored)
            .map_err(RevokeError::from);
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::claims::Claims;
    use crate::revocation::model::RevocationKey;

    fn t(s: u64) -> UnixTime {
        UnixTime::from_secs(s)
    }

    fn us(micros: u64) -> UnixMicros {
        UnixMicros::from_micros(micros)
    }

    /// A session begun at the start of second `started`.
    fn ids<'a>(sid: &'a str, sub: &'a str, started: u64) -> SessionIds<'a> {
        at_us(sid, sub, t(started).into())
    }

    fn at_us<'a>(sid: &'a str, sub: &'a str, started: UnixMicros) -> SessionIds<'a> {
        SessionIds {
            sid: Some(sid),
            sub: Some(sub),
            started: Some(started),
            issued: None,
        }
    }

    #[tokio::test]
    async fn session_scope() {
        let s = MemoryStore::new();
        s.revoke(
            Revocation::Session {
                sid: "s1".into(),
                until: t(200),
            },
            t(100),
        )
        .await
        .unwrap();
        assert_eq!(s.check(ids("s1", "a", 50), t(100)), Some(Revoked::Session));
        assert_eq!(s.check(ids("s2", "a", 50), t(100)), None);
        // Forgotten once no token of it could be renewed.
        assert_eq!(s.check(ids("s1", "a", 50), t(200)), None);
        assert_eq!(
            s.check_authoritative(ids("s1", "a", 50), t(150))
                .await
                .unwrap(),
            Some(Revoked::Session)
        );
    }

    #[tokio::test]
    async fn subject_scope_cuts_sessions_begun_at_or_before_the_moment() {
        let s = MemoryStore::new();
        let m = us(100_000_000);
        let r = Revocation::Subject {
            sub: "alice".into(),
            at: m,
            until: t(1_000),
        };
        s.revoke(r, t(100)).await.unwrap();
        assert_eq!(
            s.check(ids("x", "alice", 99), t(100)),
            Some(Revoked::Subject { at: m })
        );
        assert_eq!(
            s.check(at_us("y", "alice", m.next()), t(100)),
            None,
            "logged in again after"
        );
        assert_eq!(
            s.check(ids("z", "bob", 10), t(100)),
            None,
            "other users unaffected"
        );
        let unknown_start = SessionIds {
            sid: Some("w"),
            sub: Some("alice"),
            started: None,
            issued: None,
        };
        assert!(s.check(unknown_start, t(100)).is_some());
        // A later revocation moves the cut-off forward, never back.
        s.apply(
            &Revocation::Subject {
                sub: "alice".into(),
                at: us(50_000_000),
                until: t(900),
            },
            t(101),
        )
        .unwrap();
        assert!(s.check(ids("x", "alice", 99), t(101)).is_some());
        assert!(s.check(at_us("x", "alice", m), t(101)).is_some());
        assert_eq!(s.check(ids("x", "alice", 99), t(1_000)), None);
    }

    /// The rule below the second: a cut-off at M ends a session begun at M (same
    /// microsecond, so the same millisecond too) or 1 ms before, and spares one begun 1 µs
    /// or 1 ms after, in the same second.
    #[tokio::test]
    async fn cut_offs_are_exact_below_the_second() {
        let m = us(1_800_000_000_500_000);
        let now = m.secs();
        let until = t(1_900_000_000);
        let ms = 1_000;
        for scope in ["subject", "all"] {
            let s = MemoryStore::new();
            let r = match scope {
                "subject" => Revocation::Subject {
                    sub: "alice".into(),
                    at: m,
                    until,
                },
                _ => Revocation::All { at: m, until },
            };
            s.revoke(r, now).await.unwrap();
            for (started, revoked) in [
                (m.as_micros() - ms, true),
                (m.as_micros() - 1, true),
                (m.as_micros(), true),
                (m.as_micros() + 1, false),
                (m.as_micros() + ms, false),
                // A token from before d92def7 only knows its second: counted from the second's start.
                (UnixMicros::from(now).as_micros(), true),
            ] {
                assert_eq!(
                    s.check(at_us("s", "alice", us(started)), now).is_some(),
                    revoked,
                    "{scope}: began {started}, cut-off {m}"
                );
            }
        }
    }

    /// Issue 25, item 2: a mirror holds a session revocation for its window, but keeps its
    /// whole `until` for the write-back.
    #[test]
    fn a_windowed_entry_keeps_its_real_until_for_a_snapshot() {
        let s = MemoryStore::new();
        let week = t(1000 + 7 * 86_400);
        let r = Revocation::Session {
            sid: "s1".into(),
            until: week,
        };
        assert!(s.remember(&r, t(1960), t(1000)).unwrap());
        assert_eq!(s.check(ids("s1", "u", 0), t(1959)), Some(Revoked::Session));
        assert_eq!(s.snapshot(t(1500)), vec![r.clone()], "the whole until");
        assert_eq!(s.check(ids("s1", "u", 0), t(1960)), None, "window over");
        assert!(s.snapshot(t(1960)).is_empty(), "no longer held");
        // Merging: the later forget and the later until win.
        assert!(s.remember(&r, t(3000), t(1000)).unwrap());
        assert_eq!(s.check(ids("s1", "u", 0), t(2999)), Some(Revoked::Session));
        s.prune(t(3000));
        assert!(s.is_empty());
        // A window already over holds nothing.
        assert!(!s.remember(&r, t(900), t(1000)).unwrap());
        assert!(s.is_empty());
        // Cut-offs are never windowed.
        let cut = Revocation::Subject {
            sub: "u".into(),
            at: us(5),
            until: week,
        };
        assert!(s.remember(&cut, t(1001), t(1000)).unwrap());
        assert!(s.check(ids("x", "u", 0), t(5000)).is_some());
    }

    /// Issue 25, item 7: moments out of range are refused, so they never reach a store
    /// whose backend cannot represent them.
    #[test]
    fn moments_past_the_year_9999_are_refused() {
        let late = Revocation::LATEST;
        let after = late.saturating_add(std::time::Duration::from_secs(1));
        for (r, ok) in [
            (
                Revocation::Session {
                    sid: "s".into(),
                    until: late,
                },
                true,
            ),
            (
                Revocation::Session {
                    sid: "s".into(),
                    until: after,
                },
                false,
            ),
            (
                Revocation::All {
                    at: late.into(),
                    until: late,
                },
                true,
            ),
            (
                Revocation::All {
                    at: after.into(),
                    until: late,
                },
                false,
            ),
            (
                Revocation::Subject {
                    sub: "u".into(),
                    at: us(u64::MAX),
                    until: t(9),
                },
                false,
            ),
            (
                Revocation::Tokens {
                    sub: "u".into(),
                    at: us(1),
                    until: t(u64::MAX),
                },
                false,
            ),
        ] {
            assert_eq!(r.check().is_ok(), ok, "{r:?}");
            let s = MemoryStore::new();
            assert_eq!(s.apply(&r, t(1)).is_ok(), ok, "{r:?}");
            if !ok {
                assert!(s.is_empty(), "refused changes nothing");
            }
        }
    }

    #[test]
    fn merging_is_order_free() {
        let a = Revocation::Subject {
            sub: "u".into(),
            at: us(5),
            until: t(90),
        };
        let b = Revocation::Subject {
            sub: "u".into(),
            at: us(7),
            until: t(80),
        };
        let (mut ab, mut ba) = (a.clone(), b.clone());
        assert!(ab.absorb(&b) && ba.absorb(&a));
        assert_eq!(ab, ba);
        assert_eq!(
            ab,
            Revocation::Subject {
                sub: "u".into(),
                at: us(7),
                until: t(90)
            }
        );
        let mut other = Revocation::Subject {
            sub: "v".into(),
            at: us(9),
            until: t(99),
        };
        assert!(!other.absorb(&a), "another subject's entry");
        assert!(!other.absorb(&Revocation::All {
            at: us(9),
            until: t(99)
        }));
        assert_eq!(other.key(), RevocationKey::Subject("v"));
    }

    #[tokio::test]
    async fn all_scope() {
        let s = MemoryStore::new();
        let m = us(100_000_000);
        s.revoke(
            Revocation::All {
                at: m,
                until: t(500),
            },
            t(100),
        )
        .await
        .unwrap();
        assert_eq!(
            s.check(ids("a", "b", 99), t(100)),
            Some(Revoked::All { at: m })
        );
        assert_eq!(s.check(at_us("a", "b", m.next()), t(100)), None);
        assert_eq!(s.check(ids("a", "b", 99), t(500)), None);
    }

    #[tokio::test]
    async fn bad_revocations_change_nothing() {
        let s = MemoryStore::new();
        let err = s
            .revoke(
                Revocation::Session {
                    sid: String::new(),
                    until: t(9),
                },
                t(1),
            )
            .await;
        assert!(matches!(err, Err(RevokeError::Invalid(_))));
        let err = s
            .revoke(
                Revocation::Subject {
                    sub: String::new(),
                    at: us(1),
                    until: t(9),
                },
                t(1),
            )
            .await;
        assert!(matches!(err, Err(RevokeError::Invalid(_))));
        assert!(s.is_empty());
        // Already expired: accepted, but nothing to keep.
        s.apply(
            &Revocation::Session {
                sid: "old".into(),
                until: t(5),
            },
            t(10),
        )
        .unwrap();
        assert!(s.is_empty());
    }

    #[test]
    fn entries_are_pruned() {
        let s = MemoryStore::new();
        for i in 0..100u64 {
            s.apply(
                &Revocation::Session {
                    sid: format!("s{i}"),
                    until: t(100 + i),
                },
                t(0),
            )
            .unwrap();
        }
        s.apply(
            &Revocation::Subject {
                sub: "u".into(),
                at: us(1),
                until: t(150),
            },
            t(0),
        )
        .unwrap();
        s.apply(
            &Revocation::All {
                at: us(1),
                until: t(150),
            },
            t(0),
        )
        .unwrap();
        assert_eq!(s.len(), 102);
        s.prune(t(150));
        assert_eq!(s.len(), 49);
        // Writes prune on their own once the sweep interval has passed.
        s.apply(
            &Revocation::Session {
                sid: "late".into(),
                until: t(10_000),
            },
            t(1_000),
        )
        .unwrap();
        assert_eq!(s.len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_revoke_and_check() {
        let store = Arc::new(MemoryStore::new());
        let mut tasks = Vec::new();
        for task in 0..16u64 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                for i in 0..200u64 {
                    let sid = format!("t{task}-{i}");
                    let id = SessionIds {
                        sid: Some(&sid),
                        sub: None,
                        started: Some(t(1).into()),
                        issued: None,
                    };
                    assert_eq!(store.check(id, t(10)), None);
                    let r = Revocation::Session {
                        sid: sid.clone(),
                        until: t(1_000),
                    };
                    store.revoke(r, t(10)).await.unwrap();
                    assert_eq!(store.check(id, t(10)), Some(Revoked::Session));
                    tokio::task::yield_now().await;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(store.len(), 16 * 200);
    }

    #[test]
    fn ids_come_from_claims() {
        let mut c = Claims::new(());
        c.iat = Some(t(7));
        assert_eq!(SessionIds::from(&c).started, Some(us(7_000_000)));
        c.auth_time = Some(t(3));
        c.sid = Some("s".into());
        let ids = SessionIds::from(&c);
        assert_eq!((ids.sid, ids.started), (Some("s"), Some(us(3_000_000))));
        c.started_us = Some(us(3_250_000));
        assert_eq!(SessionIds::from(&c).started, Some(us(3_250_000)));
    }

    /// A token `issued` at that moment, of a session begun at second 1.
    fn token<'a>(sid: &'a str, sub: &'a str, issued: Option<UnixMicros>) -> SessionIds<'a> {
        SessionIds {
            issued,
            ..ids(sid, sub, 1)
        }
    }

    #[tokio::test]
    async fn a_refresh_renews_tokens_issued_up_to_its_moment_and_refuses_none() {
        let s = MemoryStore::new();
        let m = us(100_000_000);
        let r = Revocation::Tokens {
            sub: "alice".into(),
            at: m,
            until: t(1_000),
        };
        s.revoke(r.clone(), t(100)).await.unwrap();
        let before = token("x", "alice", Some(m));
        let after = token("x", "alice", Some(m.next()));
        assert!(
            s.refresh_due(before, t(100)).is_some(),
            "issued at the moment"
        );
        assert!(s.refresh_due(after, t(100)).is_none(), "renewed after it");
        assert!(
            s.refresh_due(token("x", "alice", None), t(100)).is_some(),
            "unknown issue"
        );
        assert!(s
            .refresh_due(token("x", "bob", Some(us(1))), t(100))
            .is_none());
        assert!(
            s.refresh_due(before, t(1_000)).is_none(),
            "forgotten at until"
        );
        // Never a refusal, and never a watch's end.
        assert_eq!(s.check(before, t(100)), None);
        assert_eq!(r.revokes(before, t(100)), None);
        assert!(r.refreshes(before, t(100)));
        assert_eq!(s.check_authoritative(before, t(100)).await.unwrap(), None);
        // Merged like a cut-off, kept in snapshots, dropped by pruning.
        s.apply(
            &Revocation::Tokens {
                sub: "alice".into(),
                at: us(50),
                until: t(2_000),
            },
            t(100),
        )
        .unwrap();
        assert_eq!(
            s.snapshot(t(100)),
            vec![Revocation::Tokens {
                sub: "alice".into(),
                at: m,
                until: t(2_000)
            }]
        );
        s.prune(t(2_000));
        assert!(s.is_empty());
        assert!(s
            .apply(
                &Revocation::Tokens {
                    sub: String::new(),
                    at: m,
                    until: t(2_000)
                },
                t(100)
            )
            .is_err());
    }

    /// A claims refresh issued by `Lifetimes::reissue` at a later microsecond is not
    /// caught by the refresh it answers.
    #[test]
    fn a_reissue_after_the_refresh_leaves_it_behind() {
        let life = crate::Lifetimes::default();
        let s = MemoryStore::new();
        let mut c = Claims::new(());
        life.start(&mut c, "alice", us(5_000_000));
        let m = us(5_000_001);
        s.apply(
            &Revocation::Tokens {
                sub: "alice".into(),
                at: m,
                until: t(1_000),
            },
            t(5),
        )
        .unwrap();
        assert!(s.refresh_due(SessionIds::from(&c), t(5)).is_some());
        life.reissue(&mut c, m.next());
        assert!(s.refresh_due(SessionIds::from(&c), t(5)).is_none());
        // A token sealed without `issued_us` counts from the start of its `iat` second.
        c.issued_us = None;
        assert!(s.refresh_due(SessionIds::from(&c), t(5)).is_some());
    }

    fn poll_once(w: &mut RevocationWatch) -> std::task::Poll<WatchEnd> {
        use std::future::Future;
        let waker = std::task::Waker::noop();
        std::pin::Pin::new(w).poll(&mut std::task::Context::from_waker(waker))
    }

    #[tokio::test]
    async fn a_watch_completes_on_the_revocations_that_end_its_session_only() {
        use std::task::Poll;
        let s = MemoryStore::new();
        let now = t(100);
        let mut a1 = s.watch(ids("a1", "alice", 10), now).unwrap();
        let mut a2 = s.watch(ids("a2", "alice", 50), now).unwrap();
        let mut b1 = s.watch(ids("b1", "bob", 10), now).unwrap();
        let mut late = s.watch(ids("c1", "carol", 99), now).unwrap();
        assert_eq!(s.watch_count(), 4);
        for w in [&mut a1, &mut a2, &mut b1, &mut late] {
            assert_eq!(poll_once(w), Poll::Pending);
        }
        // Neither another subject's refresh nor another session's logout ends a watch.
        s.apply(
            &Revocation::Tokens {
                sub: "dave".into(),
                at: us(999_000_000),
                until: t(1_000),
            },
            now,
        )
        .unwrap();
        let other = Revocation::Session {
            sid: "zz".into(),
            until: t(1_000),
        };
        s.revoke(other, now).await.unwrap();
        assert_eq!(a1.revoked(), None);
        // Logout: that session only.
        let logout = Revocation::Session {
            sid: "a1".into(),
            until: t(1_000),
        };
        s.revoke(logout, now).await.unwrap();
        assert_eq!(
            poll_once(&mut a1),
            Poll::Ready(WatchEnd::Revoked(Revoked::Session))
        );
        assert_eq!(a2.revoked(), None);
        // Logout everywhere at 30 s: alice's sessions begun by then, not a2 (begun at 50).
        let cut = us(30_000_000);
        let everywhere = Revocation::Subject {
            sub: "alice".into(),
            at: cut,
            until: t(1_000),
        };
        s.revoke(everywhere, now).await.unwrap();
        assert_eq!(a2.revoked(), None);
        let everywhere = Revocation::Subject {
            sub: "alice".into(),
            at: us(60_000_000),
            until: t(1_000),
        };
        s.revoke(everywhere, now).await.unwrap();
        assert_eq!(
            a2.await,
            WatchEnd::Revoked(Revoked::Subject { at: us(60_000_000) })
        );
        assert_eq!(b1.revoked(), None);
        // Emergency at 90 s: bob's, not carol's (begun at 99).
        let all = Revocation::All {
            at: us(90_000_000),
            until: t(1_000),
        };
        s.revoke(all, now).await.unwrap();
        assert_eq!(
            b1.await,
            WatchEnd::Revoked(Revoked::All { at: us(90_000_000) })
        );
        assert_eq!(late.revoked(), None);
        // An expired revocation ends nothing.
        let stale = Revocation::Session {
            sid: "c1".into(),
            until: t(100),
        };
        s.revoke(stale, now).await.unwrap();
        assert_eq!(late.revoked(), None);
        assert_eq!(s.watch_count(), 1, "completed watches left the index");
        drop(late);
        assert_eq!(s.watch_count(), 0, "a dropped watch leaves the index");
    }

    #[tokio::test]
    async fn watching_a_session_revoked_already_completes_at_once() {
        let s = MemoryStore::new();
        let logout = Revocation::Session {
            sid: "s1".into(),
            until: t(1_000),
        };
        s.revoke(logout, t(100)).await.unwrap();
        let w = s.watch(ids("s1", "alice", 10), t(100)).unwrap();
        assert_eq!(w.revoked(), Some(Revoked::Session));
        assert_eq!(s.watch_count(), 0);
        assert_eq!(w.await, WatchEnd::Revoked(Revoked::Session));
    }

    /// Issue 25, item 4: a claims refresh of the subject completes the watches of the
    /// tokens it covers, with an outcome of its own, so a long-lived connection runs the
    /// renewal checks again (and a ban in the renew hook closes it).
    #[tokio::test]
    async fn a_claims_refresh_completes_the_watches_it_covers() {
        let s = MemoryStore::new();
        let now = t(100);
        let issued = |sid, sub, issued_s: u64| SessionIds {
            issued: Some(t(issued_s).into()),
            ..ids(sid, sub, 10)
        };
        let old = s.watch(issued("a1", "alice", 20), now).unwrap();
        let new = s.watch(issued("a2", "alice", 80), now).unwrap();
        let bob = s.watch(issued("b1", "bob", 20), now).unwrap();
        let at = us(50_000_000);
        let refresh = Revocation::Tokens {
            sub: "alice".into(),
            at,
            until: t(1_000),
        };
        s.revoke(refresh, now).await.unwrap();
        assert_eq!(old.ended(), Some(WatchEnd::Refreshed { at }));
        assert_eq!(old.revoked(), None, "a refresh is no revocation");
        assert_eq!(new.ended(), None, "issued after the refresh");
        assert_eq!(bob.ended(), None, "another subject");
        assert_eq!(s.watch_count(), 2);
        assert_eq!(old.await, WatchEnd::Refreshed { at });
        // Watching a token the refresh covers completes at once; one issued after it
        // (what the renewal issues) does not.
        let again = s.watch(issued("a1", "alice", 20), now).unwrap();
        assert_eq!(again.ended(), Some(WatchEnd::Refreshed { at }));
        let renewed = s.watch(issued("a1", "alice", 51), now).unwrap();
        assert_eq!(renewed.ended(), None);
        assert!(WatchEnd::Refreshed { at }.to_string().contains("refreshed"));
    }

    /// Watches registered from many threads while a global revocation lands: each one
    /// either sees it at registration or is woken by it; none is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_watch_misses_a_revocation_that_races_its_registration() {
        for round in 0..20u64 {
            let store = Arc::new(MemoryStore::new());
            let mut tasks = Vec::new();
            for task in 0..4u64 {
                let store = Arc::clone(&store);
                tasks.push(tokio::spawn(async move {
                    let mut waiting = Vec::new();
                    for i in 0..100u64 {
                        let sid = format!("r{round}-t{task}-{i}");
                        let w = store.watch(ids(&sid, "u", 1), t(10)).unwrap();
                        waiting.push(tokio::spawn(w));
                    }
                    waiting
                }));
            }
            let all = Revocation::All {
                at: us(5_000_000),
                until: t(1_000),
            };
            store.revoke(all, t(10)).await.unwrap();
            for task in tasks {
                for w in task.await.unwrap() {
                    let why = tokio::time::timeout(std::time::Duration::from_secs(5), w)
                        .await
                        .expect("a watch was never woken")
                        .unwrap();
                    assert_eq!(why, WatchEnd::Revoked(Revoked::All { at: us(5_000_000) }));
                }
            }
            assert_eq!(store.watch_count(), 0);
        }
    }
}

#[cfg(test)]
mod one_rule {
    use proptest::prelude::*;

    use super::*;

    fn revocation() -> impl Strategy<Value = Revocation> {
        let sid = prop::sample::select(vec!["s1", "s2"]);
        let sub = prop::sample::select(vec!["alice", "bob"]);
        prop_oneof![
            (sid, 0u64..30).prop_map(|(sid, until)| Revocation::Session {
                sid: sid.into(),
                until: UnixTime::from_secs(until)
            }),
            (sub, 0u64..30_000_000, 0u64..30).prop_map(|(sub, at, until)| {
                Revocation::Subject {
                    sub: sub.into(),
                    at: UnixMicros::from_micros(at),
                    until: UnixTime::from_secs(until),
                }
            }),
            (0u64..30_000_000, 0u64..30).prop_map(|(at, until)| Revocation::All {
                at: UnixMicros::from_micros(at),
                until: UnixTime::from_secs(until)
            }),
        ]
    }

    proptest! {
        /// `Revocation::revokes` on merged revocations (what the Redis store's queue is
        /// checked with) and a `MemoryStore` holding the same revocations give one answer; and a snapshot,
        /// applied to a new store, answers as the original.
        #[test]
        fn revokes_snapshot_and_store_agree(
            revs in prop::collection::vec(revocation(), 0..6),
            sid in prop::sample::select(vec!["s1", "s2", "s3"]),
            sub in prop::sample::select(vec!["alice", "bob", "carol"]),
            started in prop::option::of(0u64..30_000_000),
            now in 0u64..30,
        ) {
            let (applied_at, now) = (UnixTime::from_secs(0), UnixTime::from_secs(now));
            let store = MemoryStore::new();
            for r in &revs {
                store.apply(r, applied_at).unwrap();
            }
            let ids = SessionIds {
                sid: Some(sid),
                sub: Some(sub),
                started: started.map(UnixMicros::from_micros),
                issued: None,
            };
            // Stores merge revocations of one entry (`absorb`); the rule is judged on merged
            // ones. A revocation already out of force when applied changes nothing in a
            // store, so it is not merged here either (merged, it could lend its later
            // cut-off to a live entry).
            let mut merged: Vec<Revocation> = Vec::new();
            for r in revs.iter().filter(|r| r.until() > applied_at) {
                if !merged.iter_mut().any(|m| m.absorb(r)) {
                    merged.push(r.clone());
                }
            }
            let by_rule = merged.iter().any(|r| r.revokes(ids, now).is_some());
            prop_assert_eq!(store.check(ids, now).is_some(), by_rule);
            let copy = MemoryStore::new();
            for r in store.snapshot(now) {
                prop_assert!(r.until() > now);
                copy.apply(&r, applied_at).unwrap();
            }
            prop_assert_eq!(copy.check(ids, now), store.check(ids, now));
        }
    }
}
