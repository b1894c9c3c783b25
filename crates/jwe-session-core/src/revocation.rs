//! Revocation without a lookup per request: logout (one session), logout everywhere (one
//! subject's sessions begun at or before a moment), and emergency (everyone's).
//!
//! # One rule for "begun before"
//!
//! A subject or global revocation made at moment `M` ends every session that began at or
//! before `M` and no session that begins after it. Both moments are microseconds
//! ([`UnixMicros`]): a session's start is its `started_us` claim (else the first microsecond
//! of its `auth_time` second, for tokens sealed by 0.1), and the layer stamps session starts
//! and revocations from one strictly increasing source, so a login right after "log out
//! everywhere" is never caught by it, even within the same microsecond of the clock.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{PoisonError, RwLock};

use crate::claims::Claims;
use crate::error::StoreError;
use crate::time::{UnixMicros, UnixTime};

/// A boxed, `Send` future, as the object-safe [`RevocationStore`] methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One revocation. Each carries `until`: the time after which no token it affects could
/// still be renewed, so a store may forget it then (see
/// [`Lifetimes::renewable_until`](crate::Lifetimes::renewable_until)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revocation {
    /// One session (logout).
    Session {
        /// The session id.
        sid: String,
        /// Remember until then.
        until: UnixTime,
    },
    /// Every session of `sub` that began at or before `at` (logout everywhere, password
    /// change).
    Subject {
        /// The subject.
        sub: String,
        /// The moment of the revocation: sessions begun at or before it are revoked.
        at: UnixMicros,
        /// Remember until then.
        until: UnixTime,
    },
    /// Every session that began at or before `at` (emergency).
    All {
        /// The moment of the revocation: sessions begun at or before it are revoked.
        at: UnixMicros,
        /// Remember until then.
        until: UnixTime,
    },
}

/// Which entry of a store a [`Revocation`] lives in: one per `sid`, one per subject, one
/// for everyone. Two revocations with the same key are merged by
/// [`Revocation::absorb`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevocationKey<'a> {
    /// A session's entry.
    Session(&'a str),
    /// A subject's entry.
    Subject(&'a str),
    /// The global entry.
    All,
}

impl Revocation {
    /// When the store may forget this revocation.
    #[must_use]
    pub fn until(&self) -> UnixTime {
        match self {
            Self::Session { until, .. } | Self::Subject { until, .. } | Self::All { until, .. } => {
                *until
            }
        }
    }

    /// The entry this revocation is kept in.
    #[must_use]
    pub fn key(&self) -> RevocationKey<'_> {
        match self {
            Self::Session { sid, .. } => RevocationKey::Session(sid),
            Self::Subject { sub, .. } => RevocationKey::Subject(sub),
            Self::All { .. } => RevocationKey::All,
        }
    }

    /// Merges `other`, a revocation of the same entry, into this one: the later cut-off and
    /// the later `until` win, so applying revocations in any order, or twice, ends in the
    /// same entry. Every store merges with this one rule. Returns `false`, changing
    /// nothing, when the two are for different entries.
    pub fn absorb(&mut self, other: &Self) -> bool {
        if self.key() != other.key() {
            return false;
        }
        match (self, other) {
            (Self::Session { until, .. }, Self::Session { until: u2, .. }) => {
                *until = (*until).max(*u2);
            }
            (
                Self::Subject { at, until, .. },
                Self::Subject {
                    at: a2, until: u2, ..
                },
            )
            | (Self::All { at, until }, Self::All { at: a2, until: u2 }) => {
                let mut cut = Cutoff::new(*at, *until);
                cut.absorb(Cutoff::new(*a2, *u2));
                (*at, *until) = (cut.at, cut.until);
            }
            _ => return false,
        }
        true
    }

    /// Whether this revocation ends the session `ids` at `now`, and why: the rule every
    /// store applies (a session whose start is unknown counts as begun before any cut-off).
    #[must_use]
    pub fn revokes(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<Revoked> {
        if self.until() <= now {
            return None;
        }
        match self {
            Self::Session { sid, .. } => {
                (ids.sid == Some(sid.as_str())).then_some(Revoked::Session)
            }
            Self::Subject { sub, at, until } => (ids.sub == Some(sub.as_str())
                && cut(&Cutoff::new(*at, *until), ids.started, now))
            .then_some(Revoked::Subject { at: *at }),
            Self::All { at, until } => {
                cut(&Cutoff::new(*at, *until), ids.started, now).then_some(Revoked::All { at: *at })
            }
        }
    }

    /// Checks that ids are non-empty.
    ///
    /// # Errors
    /// [`StoreError::InvalidRevocation`].
    pub fn check(&self) -> Result<(), StoreError> {
        match self {
            Self::Session { sid, .. } if sid.is_empty() => Err(StoreError::InvalidRevocation {
                reason: "empty sid",
            }),
            Self::Subject { sub, .. } if sub.is_empty() => Err(StoreError::InvalidRevocation {
                reason: "empty sub",
            }),
            _ => Ok(()),
        }
    }
}

/// The parts of a session that revocation looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionIds<'a> {
    /// Session id.
    pub sid: Option<&'a str>,
    /// Subject.
    pub sub: Option<&'a str>,
    /// When the session began: `started_us`, else the start of the `auth_time` second,
    /// else of the token's `iat` second.
    pub started: Option<UnixMicros>,
}

impl<'a, T> From<&'a Claims<T>> for SessionIds<'a> {
    fn from(c: &'a Claims<T>) -> Self {
        Self {
            sid: c.sid.as_deref(),
            sub: c.sub.as_deref(),
            started: c
                .started_us
                .or_else(|| c.auth_time.or(c.iat).map(UnixMicros::from)),
        }
    }
}

/// Why a session is revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revoked {
    /// Its `sid` was revoked (logout).
    Session,
    /// Its subject's sessions begun at or before `at` were revoked.
    Subject {
        /// The cut-off.
        at: UnixMicros,
    },
    /// Every session begun at or before `at` was revoked.
    All {
        /// The cut-off.
        at: UnixMicros,
    },
}

impl fmt::Display for Revoked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Session => f.write_str("session was revoked (logout)"),
            Self::Subject { at } => {
                write!(
                    f,
                    "all sessions of this subject begun at or before {at} were revoked"
                )
            }
            Self::All { at } => write!(f, "all sessions begun at or before {at} were revoked"),
        }
    }
}

impl std::error::Error for Revoked {}

/// Where revocations are kept.
///
/// [`check_at`](Self::check_at) is the hot path: it runs on every request and must answer
/// from memory. [`check_authoritative_at`](Self::check_authoritative_at) runs when a token
/// is renewed and may ask a shared backend. [`revoke_at`](Self::revoke_at) records one.
pub trait RevocationStore: Send + Sync + 'static {
    /// Whether a session is revoked, from memory. `Ok(())` means not revoked.
    ///
    /// # Errors
    /// [`Revoked`] with the scope that revoked it.
    fn check_at(&self, ids: SessionIds<'_>, now: UnixTime) -> Result<(), Revoked>;

    /// The authoritative answer, for renewal. Stores without a remote backend answer from
    /// memory, which is the default.
    fn check_authoritative_at<'a>(
        &'a self,
        ids: SessionIds<'a>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Result<(), Revoked>, StoreError>> {
        let answer = self.check_at(ids, now);
        Box::pin(async move { Ok(answer) })
    }

    /// How long after it was made this store keeps a session revocation where
    /// [`check_at`](Self::check_at) sees it; `None` (the default) means until the
    /// revocation's `until`. A store that forgets sooner (a shared store's bounded mirror)
    /// says so, and the session layer refuses a store that forgets before every token the
    /// revocation affects has expired.
    fn memory_window(&self) -> Option<std::time::Duration> {
        None
    }

    /// Records a revocation. Succeeds only once it is recorded where every instance will
    /// see it.
    fn revoke_at(
        &self,
        revocation: Revocation,
        now: UnixTime,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// The embedded default store: revocations in this process's memory.
///
/// Entries are dropped once no token they affect could be renewed (their `until`); expired
/// entries are ignored at once and pruned on later writes, or by [`prune_at`](Self::prune_at).
/// Reads take a shared lock, so checks from many threads run in parallel.
///
/// Only right for a single instance: on several machines use a shared store such as
/// `jwe-session-redis`, which keeps one of these as its local mirror.
///
/// ```
/// use jwe_session_core::{MemoryStore, Revocation, RevocationStore, SessionIds, UnixTime};
/// # tokio_test_block_on(async {
/// let store = MemoryStore::new();
/// let now = UnixTime::from_secs(1_000);
/// let ids = SessionIds { sid: Some("s1"), sub: Some("alice"), started: Some(now.into()) };
/// assert!(store.check_at(ids, now).is_ok());
/// store.revoke_at(Revocation::Session { sid: "s1".into(), until: UnixTime::from_secs(2_000) }, now).await?;
/// assert!(store.check_at(ids, now).is_err());
/// # Ok::<(), jwe_session_core::StoreError>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<String, UnixTime>,
    subjects: HashMap<String, Cutoff>,
    all: Option<Cutoff>,
    next_prune: UnixTime,
}

#[derive(Clone, Copy, Debug)]
struct Cutoff {
    at: UnixMicros,
    until: UnixTime,
}

impl Cutoff {
    fn new(at: UnixMicros, until: UnixTime) -> Self {
        Self { at, until }
    }

    /// The merge rule of [`Revocation::absorb`]: the later cut-off, the later `until`.
    fn absorb(&mut self, other: Self) {
        self.at = self.at.max(other.at);
        self.until = self.until.max(other.until);
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

    /// Records a revocation synchronously (what [`revoke_at`](RevocationStore::revoke_at)
    /// does; also how a durable or shared store feeds its in-memory view). Returns whether
    /// it is in force: `false` when its `until` has passed, so there is nothing to keep
    /// (here, on disk, or anywhere else).
    ///
    /// # Errors
    /// [`StoreError::InvalidRevocation`] for an empty id; nothing changes then.
    pub fn apply_at(&self, revocation: &Revocation, now: UnixTime) -> Result<bool, StoreError> {
        revocation.check()?;
        let mut st = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let in_force = revocation.until() > now;
        if in_force {
            match revocation {
                Revocation::Session { sid, until } => {
                    let kept = st.sessions.entry(sid.clone()).or_insert(*until);
                    *kept = (*kept).max(*until);
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
            }
        }
        if now >= st.next_prune {
            st.prune(now);
        }
        Ok(in_force)
    }

    /// Drops every entry whose `until` has passed.
    pub fn prune_at(&self, now: UnixTime) {
        self.state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .prune(now);
    }

    /// Every entry in force at `now`, as revocations (what a shared store writes back to a
    /// backend that lost its data).
    #[must_use]
    pub fn snapshot_at(&self, now: UnixTime) -> Vec<Revocation> {
        let st = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::with_capacity(st.sessions.len() + st.subjects.len() + 1);
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
            st.sessions
                .iter()
                .filter(|(_, u)| **u > now)
                .map(|(sid, until)| Revocation::Session {
                    sid: sid.clone(),
                    until: *until,
                }),
        );
        out
    }

    /// Forgets everything (a shared store's mirror does this before reloading).
    pub fn clear(&self) {
        let mut st = self.state.write().unwrap_or_else(PoisonError::into_inner);
        *st = State::default();
    }

    /// How many entries are held (sessions + subjects + the global cut-off), expired or not.
    #[must_use]
    pub fn len(&self) -> usize {
        let st = self.state.read().unwrap_or_else(PoisonError::into_inner);
        st.sessions.len() + st.subjects.len() + usize::from(st.all.is_some())
    }

    /// Whether no entries are held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl State {
    fn prune(&mut self, now: UnixTime) {
        self.sessions.retain(|_, until| *until > now);
        self.subjects.retain(|_, c| c.until > now);
        if self.all.is_some_and(|c| c.until <= now) {
            self.all = None;
        }
        self.next_prune = UnixTime::from_secs(now.as_secs().saturating_add(PRUNE_EVERY_SECS));
    }
}

/// A session that began at or before `c.at` is revoked; one whose start is unknown is
/// treated as revoked, because nothing proves it began after the cut-off.
fn cut(c: &Cutoff, started: Option<UnixMicros>, now: UnixTime) -> bool {
    c.until > now && started.is_none_or(|s| s <= c.at)
}

impl RevocationStore for MemoryStore {
    fn check_at(&self, ids: SessionIds<'_>, now: UnixTime) -> Result<(), Revoked> {
        let st = self.state.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = &st.all {
            if cut(c, ids.started, now) {
                return Err(Revoked::All { at: c.at });
            }
        }
        if let Some(sid) = ids.sid {
            if st.sessions.get(sid).is_some_and(|until| *until > now) {
                return Err(Revoked::Session);
            }
        }
        if let Some(sub) = ids.sub {
            if let Some(c) = st.subjects.get(sub) {
                if cut(c, ids.started, now) {
                    return Err(Revoked::Subject { at: c.at });
                }
            }
        }
        Ok(())
    }

    fn revoke_at(
        &self,
        revocation: Revocation,
        now: UnixTime,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let result = self.apply_at(&revocation, now).map(|_| ());
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

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
        }
    }

    #[tokio::test]
    async fn session_scope() {
        let s = MemoryStore::new();
        s.revoke_at(
            Revocation::Session {
                sid: "s1".into(),
                until: t(200),
            },
            t(100),
        )
        .await
        .unwrap();
        assert_eq!(
            s.check_at(ids("s1", "a", 50), t(100)),
            Err(Revoked::Session)
        );
        assert_eq!(s.check_at(ids("s2", "a", 50), t(100)), Ok(()));
        // Forgotten once no token of it could be renewed.
        assert_eq!(s.check_at(ids("s1", "a", 50), t(200)), Ok(()));
        assert_eq!(
            s.check_authoritative_at(ids("s1", "a", 50), t(150))
                .await
                .unwrap(),
            Err(Revoked::Session)
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
        s.revoke_at(r, t(100)).await.unwrap();
        assert_eq!(
            s.check_at(ids("x", "alice", 99), t(100)),
            Err(Revoked::Subject { at: m })
        );
        assert_eq!(
            s.check_at(at_us("y", "alice", m.next()), t(100)),
            Ok(()),
            "logged in again after"
        );
        assert_eq!(
            s.check_at(ids("z", "bob", 10), t(100)),
            Ok(()),
            "other users unaffected"
        );
        let unknown_start = SessionIds {
            sid: Some("w"),
            sub: Some("alice"),
            started: None,
        };
        assert!(s.check_at(unknown_start, t(100)).is_err());
        // A later revocation moves the cut-off forward, never back.
        s.apply_at(
            &Revocation::Subject {
                sub: "alice".into(),
                at: us(50_000_000),
                until: t(900),
            },
            t(101),
        )
        .unwrap();
        assert!(s.check_at(ids("x", "alice", 99), t(101)).is_err());
        assert!(s.check_at(at_us("x", "alice", m), t(101)).is_err());
        assert_eq!(s.check_at(ids("x", "alice", 99), t(1_000)), Ok(()));
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
            s.revoke_at(r, now).await.unwrap();
            for (started, revoked) in [
                (m.as_micros() - ms, true),
                (m.as_micros() - 1, true),
                (m.as_micros(), true),
                (m.as_micros() + 1, false),
                (m.as_micros() + ms, false),
                // A 0.1 token only knows its second: counted from the second's start.
                (UnixMicros::from(now).as_micros(), true),
            ] {
                assert_eq!(
                    s.check_at(at_us("s", "alice", us(started)), now).is_err(),
                    revoked,
                    "{scope}: began {started}, cut-off {m}"
                );
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
        s.revoke_at(
            Revocation::All {
                at: m,
                until: t(500),
            },
            t(100),
        )
        .await
        .unwrap();
        assert_eq!(
            s.check_at(ids("a", "b", 99), t(100)),
            Err(Revoked::All { at: m })
        );
        assert_eq!(s.check_at(at_us("a", "b", m.next()), t(100)), Ok(()));
        assert_eq!(s.check_at(ids("a", "b", 99), t(500)), Ok(()));
    }

    #[tokio::test]
    async fn bad_revocations_change_nothing() {
        let s = MemoryStore::new();
        let err = s
            .revoke_at(
                Revocation::Session {
                    sid: String::new(),
                    until: t(9),
                },
                t(1),
            )
            .await;
        assert!(matches!(err, Err(StoreError::InvalidRevocation { .. })));
        let err = s
            .revoke_at(
                Revocation::Subject {
                    sub: String::new(),
                    at: us(1),
                    until: t(9),
                },
                t(1),
            )
            .await;
        assert!(matches!(err, Err(StoreError::InvalidRevocation { .. })));
        assert!(s.is_empty());
        // Already expired: accepted, but nothing to keep.
        s.apply_at(
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
            s.apply_at(
                &Revocation::Session {
                    sid: format!("s{i}"),
                    until: t(100 + i),
                },
                t(0),
            )
            .unwrap();
        }
        s.apply_at(
            &Revocation::Subject {
                sub: "u".into(),
                at: us(1),
                until: t(150),
            },
            t(0),
        )
        .unwrap();
        s.apply_at(
            &Revocation::All {
                at: us(1),
                until: t(150),
            },
            t(0),
        )
        .unwrap();
        assert_eq!(s.len(), 102);
        s.prune_at(t(150));
        assert_eq!(s.len(), 49);
        // Writes prune on their own once the sweep interval has passed.
        s.apply_at(
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
                    };
                    assert_eq!(store.check_at(id, t(10)), Ok(()));
                    let r = Revocation::Session {
                        sid: sid.clone(),
                        until: t(1_000),
                    };
                    store.revoke_at(r, t(10)).await.unwrap();
                    assert_eq!(store.check_at(id, t(10)), Err(Revoked::Session));
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
                store.apply_at(r, applied_at).unwrap();
            }
            let ids = SessionIds {
                sid: Some(sid),
                sub: Some(sub),
                started: started.map(UnixMicros::from_micros),
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
            prop_assert_eq!(store.check_at(ids, now).is_err(), by_rule);
            let copy = MemoryStore::new();
            for r in store.snapshot_at(now) {
                prop_assert!(r.until() > now);
                copy.apply_at(&r, applied_at).unwrap();
            }
            prop_assert_eq!(copy.check_at(ids, now), store.check_at(ids, now));
        }
    }
}
