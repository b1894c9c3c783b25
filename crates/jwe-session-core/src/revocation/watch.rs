//! Watching sessions: a future per session that completes when the session is revoked,
//! or when a claims refresh asks a long-lived connection to check it again.
//!
//! Watchers are indexed by `sid` and by subject, so a logout touches only the watchers of
//! that session and a logout-everywhere only that subject's; a global revocation visits
//! every watcher once. Nothing polls: the store that applies a revocation wakes exactly the
//! watchers it ends.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use super::model::{Revocation, Revoked, SessionIds};
use crate::time::{UnixMicros, UnixTime};

/// Completes, with a [`WatchEnd`], when the session it watches is revoked (logout, logout
/// everywhere, an emergency cut-off) on this instance or, through a shared store, on any
/// other, or when a claims refresh of its subject covers the watched token. Get one from
/// [`RevocationStore::watch`](crate::RevocationStore::watch) (or from the session
/// layer's `Session::watch`).
///
/// It is cheap to hold many: an idle watch is a small allocation in the store's index and
/// no task, timer or connection of its own. Dropping it removes it from the index.
///
/// On [`WatchEnd::Refreshed`] the session is not over: a long-lived connection runs the
/// renewal checks again (the session layer's `SessionHandle::recheck`, which runs the
/// app's renew hook), then closes if they refuse or watches again with the new claims.
/// A ban through the renew hook reaches open connections this way. The session's own
/// expiry does not complete a watch: a connection meant to end with the session's
/// absolute lifetime keeps a timer for that too.
///
/// ```
/// use jwe_session_core::{MemoryStore, Revocation, RevocationStore, Revoked, SessionIds, UnixTime, WatchEnd};
/// # tokio_test_block_on(async {
/// let store = MemoryStore::new();
/// let now = UnixTime::from_secs(1_000);
/// let ids = SessionIds { sid: Some("s1"), sub: Some("alice"), started: Some(now.into()), issued: None };
/// let watch = store.watch(ids, now)?;
/// assert_eq!(watch.ended(), None);
/// store.revoke(Revocation::Session { sid: "s1".into(), until: UnixTime::from_secs(2_000) }, now).await?;
/// assert_eq!(watch.await, WatchEnd::Revoked(Revoked::Session));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[must_use = "a watch does nothing unless awaited or polled"]
pub struct RevocationWatch {
    slot: Arc<Slot>,
    id: u64,
    registry: Arc<Registry>,
}

/// How a [`RevocationWatch`] completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchEnd {
    /// The session was revoked: close the connection.
    Revoked(Revoked),
    /// A claims refresh of the session's subject, made at `at`, covers the watched token
    /// (issued at or before `at`): the session goes on only if the renewal checks (the
    /// authoritative revocation check and the app's renew hook) pass again.
    Refreshed {
        /// The refresh's moment.
        at: UnixMicros,
    },
}

impl WatchEnd {
    /// Why the session was revoked, if this is a revocation.
    #[must_use]
    pub fn revoked(self) -> Option<Revoked> {
        match self {
            Self::Revoked(r) => Some(r),
            Self::Refreshed { .. } => None,
        }
    }
}

impl fmt::Display for WatchEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Revoked(r) => r.fmt(f),
            Self::Refreshed { at } => {
                write!(f, "claims refreshed at {at}: check the session again")
            }
        }
    }
}

impl fmt::Debug for RevocationWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationWatch")
            .field("ended", &self.ended())
            .finish_non_exhaustive()
    }
}

impl RevocationWatch {
    /// How the watch completed, if it has by now; never waits.
    #[must_use]
    pub fn ended(&self) -> Option<WatchEnd> {
        self.slot.lock().fired
    }

    /// Why the session was revoked, if it has been by now (`None` too after a claims
    /// refresh); never waits.
    #[must_use]
    pub fn revoked(&self) -> Option<Revoked> {
        self.ended().and_then(WatchEnd::revoked)
    }
}

impl Future for RevocationWatch {
    type Output = WatchEnd;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WatchEnd> {
        let mut st = self.slot.lock();
        if let Some(r) = st.fired {
            return Poll::Ready(r);
        }
        match &mut st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for RevocationWatch {
    fn drop(&mut self) {
        self.registry.remove(self.id, &self.slot);
    }
}

/// One watched session.
struct Slot {
    sid: Option<Box<str>>,
    sub: Option<Box<str>>,
    started: Option<UnixMicros>,
    issued: Option<UnixMicros>,
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    fired: Option<WatchEnd>,
    waker: Option<Waker>,
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ids(&self) -> SessionIds<'_> {
        SessionIds {
            sid: self.sid.as_deref(),
            sub: self.sub.as_deref(),
            started: self.started,
            issued: self.issued,
        }
    }

    /// Completes the watch (once); wakes its task outside the lock.
    fn fire(&self, why: WatchEnd) {
        let waker = {
            let mut st = self.lock();
            if st.fired.is_some() {
                return;
            }
            st.fired = Some(why);
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Every live watch of one store, indexed by `sid` and by subject.
#[derive(Default)]
pub(crate) struct Registry {
    inner: Mutex<Index>,
}

#[derive(Default)]
struct Index {
    next: u64,
    all: HashMap<u64, Arc<Slot>>,
    by_sid: HashMap<Box<str>, Vec<u64>>,
    by_sub: HashMap<Box<str>, Vec<u64>>,
}

impl Index {
    fn unlink(&mut self, id: u64, slot: &Slot) {
        if self.all.remove(&id).is_none() {
            return;
        }
        for (map, key) in [(&mut self.by_sid, &slot.sid), (&mut self.by_sub, &slot.sub)] {
            let Some(key) = key else { continue };
            if let Some(ids) = map.get_mut(key) {
                ids.retain(|i| *i != id);
                if ids.is_empty() {
                    map.remove(key);
                }
            }
        }
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("watches", &self.len())
            .finish()
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a watch of `ids`. The caller then checks the store's current state and
    /// fires the watch if the session is already revoked: a revocation applied before the
    /// registration is seen by that check, one applied after it finds the watch here.
    pub(crate) fn add(self: &Arc<Self>, ids: SessionIds<'_>) -> RevocationWatch {
        let slot = Arc::new(Slot {
            sid: ids.sid.map(Box::from),
            sub: ids.sub.map(Box::from),
            started: ids.started,
            issued: ids.issued,
            state: Mutex::default(),
        });
        let mut ix = self.lock();
        let id = ix.next;
        ix.next += 1;
        if let Some(sid) = &slot.sid {
            ix.by_sid.entry(sid.clone()).or_default().push(id);
        }
        if let Some(sub) = &slot.sub {
            ix.by_sub.entry(sub.clone()).or_default().push(id);
        }
        ix.all.insert(id, Arc::clone(&slot));
        drop(ix);
        RevocationWatch {
            slot,
            id,
            registry: Arc::clone(self),
        }
    }

    /// Fires `watch` with `why` and drops it from the index.
    pub(crate) fn fire_now(&self, watch: &RevocationWatch, why: WatchEnd) {
        self.lock().unlink(watch.id, &watch.slot);
        watch.slot.fire(why);
    }

    fn remove(&self, id: u64, slot: &Slot) {
        self.lock().unlink(id, slot);
    }

    /// Completes every watch that `revocation` ends (or, for a claims refresh, covers) at
    /// `now`, after the store has applied it. Returns how many it completed.
    pub(crate) fn notify(&self, revocation: &Revocation, now: UnixTime) -> usize {
        let ended: Vec<(Arc<Slot>, WatchEnd)> = {
            let mut ix = self.lock();
            let candidates: Vec<u64> = match revocation {
                Revocation::Session { sid, .. } => {
                    ix.by_sid.get(sid.as_str()).cloned().unwrap_or_default()
                }
                Revocation::Subject { sub, .. } | Revocation::Tokens { sub, .. } => {
                    ix.by_sub.get(sub.as_str()).cloned().unwrap_or_default()
                }
                Revocation::All { .. } => ix.all.keys().copied().collect(),
            };
            let mut ended = Vec::new();
            for id in candidates {
                let Some(slot) = ix.all.get(&id).cloned() else {
                    continue;
                };
                let end = match revocation {
                    Revocation::Tokens { at, .. } => revocation
                        .refreshes(slot.ids(), now)
                        .then_some(WatchEnd::Refreshed { at: *at }),
                    Revocation::Session { .. }
                    | Revocation::Subject { .. }
                    | Revocation::All { .. } => {
                        revocation.revokes(slot.ids(), now).map(WatchEnd::Revoked)
                    }
                };
                if let Some(end) = end {
                    ix.unlink(id, &slot);
                    ended.push((slot, end));
                }
            }
            ended
        };
        // Wake outside the index lock: a woken task may drop its watch at once.
        for (slot, why) in &ended {
            slot.fire(*why);
        }
        ended.len()
    }

    /// How many watches are live.
    pub(crate) fn len(&self) -> usize {
        self.lock().all.len()
    }
}
