//! Revocation without a lookup per request: logout (one session), logout everywhere (one
//! subject's sessions that began before a time), and emergency (everyone before a time).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{PoisonError, RwLock};

use crate::claims::Claims;
use crate::error::StoreError;
use crate::time::UnixTime;

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
    /// Every session of `sub` that began (`auth_time`) before `before` (logout everywhere,
    /// password change).
    Subject {
        /// The subject.
        sub: String,
        /// Sessions that began strictly before this are revoked.
        before: UnixTime,
        /// Remember until then.
        until: UnixTime,
    },
    /// Every session that began before `before` (emergency).
    All {
        /// Sessions that began strictly before this are revoked.
        before: UnixTime,
        /// Remember until then.
        until: UnixTime,
    },
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
    /// When the session began: `auth_time`, else the token's `iat`.
    pub started: Option<UnixTime>,
}

impl<'a, T> From<&'a Claims<T>> for SessionIds<'a> {
    fn from(c: &'a Claims<T>) -> Self {
        Self {
            sid: c.sid.as_deref(),
            sub: c.sub.as_deref(),
            started: c.auth_time.or(c.iat),
        }
    }
}

/// Why a session is revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revoked {
    /// Its `sid` was revoked (logout).
    Session,
    /// Its subject's sessions that began before `before` were revoked.
    Subject {
        /// The cut-off.
        before: UnixTime,
    },
    /// Every session that began before `before` was revoked.
    All {
        /// The cut-off.
        before: UnixTime,
    },
}

impl fmt::Display for Revoked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Session => f.write_str("session was revoked (logout)"),
            Self::Subject { before } => {
                write!(
                    f,
                    "all sessions of this subject begun before {before} were revoked"
                )
            }
            Self::All { before } => write!(f, "all sessions begun before {before} were revoked"),
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
/// let ids = SessionIds { sid: Some("s1"), sub: Some("alice"), started: Some(now) };
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
    before: UnixTime,
    until: UnixTime,
}

impl Cutoff {
    fn merge(self, before: UnixTime, until: UnixTime) -> Self {
        Self {
            before: self.before.max(before),
            until: self.until.max(until),
        }
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
    /// does; also how a shared store feeds its local mirror).
    ///
    /// # Errors
    /// [`StoreError::InvalidRevocation`] for an empty id.
    pub fn apply_at(&self, revocation: &Revocation, now: UnixTime) -> Result<(), StoreError> {
        revocation.check()?;
        let mut st = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if revocation.until() > now {
            match revocation {
                Revocation::Session { sid, until } => {
                    let e = st.sessions.entry(sid.clone()).or_insert(*until);
                    *e = (*e).max(*until);
                }
                Revocation::Subject { sub, before, until } => {
                    let fresh = Cutoff {
                        before: *before,
                        until: *until,
                    };
                    st.subjects
                        .entry(sub.clone())
                        .and_modify(|c| *c = c.merge(*before, *until))
                        .or_insert(fresh);
                }
                Revocation::All { before, until } => {
                    st.all = Some(match st.all {
                        Some(c) => c.merge(*before, *until),
                        None => Cutoff {
                            before: *before,
                            until: *until,
                        },
                    });
                }
            }
        }
        if now >= st.next_prune {
            st.prune(now);
        }
        Ok(())
    }

    /// Drops every entry whose `until` has passed.
    pub fn prune_at(&self, now: UnixTime) {
        self.state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .prune(now);
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

/// A session that began before `cutoff.before` is revoked; one whose start is unknown is
/// treated as revoked, because nothing proves it began after the cut-off.
fn cut(c: &Cutoff, started: Option<UnixTime>, now: UnixTime) -> bool {
    c.until > now && started.is_none_or(|s| s < c.before)
}

impl RevocationStore for MemoryStore {
    fn check_at(&self, ids: SessionIds<'_>, now: UnixTime) -> Result<(), Revoked> {
        let st = self.state.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = &st.all {
            if cut(c, ids.started, now) {
                return Err(Revoked::All { before: c.before });
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
                    return Err(Revoked::Subject { before: c.before });
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
        let result = self.apply_at(&revocation, now);
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

    fn ids<'a>(sid: &'a str, sub: &'a str, started: u64) -> SessionIds<'a> {
        SessionIds {
            sid: Some(sid),
            sub: Some(sub),
            started: Some(t(started)),
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
    async fn subject_scope_cuts_only_older_sessions() {
        let s = MemoryStore::new();
        let r = Revocation::Subject {
            sub: "alice".into(),
            before: t(100),
            until: t(1_000),
        };
        s.revoke_at(r, t(100)).await.unwrap();
        assert_eq!(
            s.check_at(ids("x", "alice", 99), t(100)),
            Err(Revoked::Subject { before: t(100) })
        );
        assert_eq!(
            s.check_at(ids("y", "alice", 100), t(100)),
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
                before: t(50),
                until: t(900),
            },
            t(101),
        )
        .unwrap();
        assert!(s.check_at(ids("x", "alice", 99), t(101)).is_err());
        assert_eq!(s.check_at(ids("x", "alice", 99), t(1_000)), Ok(()));
    }

    #[tokio::test]
    async fn all_scope() {
        let s = MemoryStore::new();
        s.revoke_at(
            Revocation::All {
                before: t(100),
                until: t(500),
            },
            t(100),
        )
        .await
        .unwrap();
        assert_eq!(
            s.check_at(ids("a", "b", 99), t(100)),
            Err(Revoked::All { before: t(100) })
        );
        assert_eq!(s.check_at(ids("a", "b", 100), t(100)), Ok(()));
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
                    before: t(1),
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
                before: t(1),
                until: t(150),
            },
            t(0),
        )
        .unwrap();
        s.apply_at(
            &Revocation::All {
                before: t(1),
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
                        started: Some(t(1)),
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
        assert_eq!(SessionIds::from(&c).started, Some(t(7)));
        c.auth_time = Some(t(3));
        c.sid = Some("s".into());
        let ids = SessionIds::from(&c);
        assert_eq!((ids.sid, ids.started), (Some("s"), Some(t(3))));
    }
}
