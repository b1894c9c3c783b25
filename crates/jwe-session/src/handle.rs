//! The per-request session handle that the layer puts into request extensions.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jwe_session_core::{
    random_id, Audience, Claims, Revocation, SealError, StoreError, UnixMicros, UnixTime,
};
use serde::Serialize;

use crate::config::Config;

/// What the response must do about the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pending {
    /// Nothing changed: no `Set-Cookie`.
    Nothing,
    /// Seal `current` and write it: the handler started or changed the session.
    Write,
    /// Seal `current` and write it if it can be: the layer renews it past `exp` or
    /// re-seals it under the active key. Should sealing fail, the request's token stays.
    Refresh,
    /// Clear the cookie (logout, or a token that was refused).
    Clear,
}

pub(crate) struct State<T> {
    pub(crate) current: Option<Claims<T>>,
    pub(crate) pending: Pending,
    /// The session a login replaced, revoked by the layer before the response leaves.
    pub(crate) replaced: Option<Revocation>,
}

/// The session of one request: read it, start one (login), change it, or end it (logout).
///
/// The layer puts a `SessionHandle<T>` into every request's extensions, with or without a
/// session; clones share the same state, and the layer writes the outcome into the
/// response. With the `axum` feature it is also an extractor.
///
/// Non-axum services take it from the request:
///
/// ```
/// # use jwe_session::SessionHandle;
/// # fn handler(req: http::Request<()>) {
/// let handle = req.extensions().get::<SessionHandle<()>>().cloned();
/// # }
/// ```
pub struct SessionHandle<T> {
    pub(crate) config: Arc<Config<T>>,
    pub(crate) state: Arc<Mutex<State<T>>>,
}

impl<T> Clone for SessionHandle<T> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
            state: Arc::clone(&self.state),
        }
    }
}

impl<T> fmt::Debug for SessionHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        // Claims are confidential: show only whether there is a session.
        f.debug_struct("SessionHandle")
            .field("active", &st.current.is_some())
            .field("pending", &st.pending)
            .finish_non_exhaustive()
    }
}

impl<T> SessionHandle<T> {
    pub(crate) fn new(
        config: Arc<Config<T>>,
        current: Option<Claims<T>>,
        pending: Pending,
    ) -> Self {
        Self {
            config,
            state: Arc::new(Mutex::new(State {
                current,
                pending,
                replaced: None,
            })),
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the session in this response (the cookie is cleared) and hands back its claims.
    fn take_for_clearing(&self) -> Option<Claims<T>> {
        let mut st = self.lock();
        st.pending = Pending::Clear;
        st.current.take()
    }

    /// Whether the request has a valid session (or the handler started one).
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.lock().current.is_some()
    }

    /// Checks that `claims` will seal within what the layer can carry (the cookie budget
    /// or `max_token_len`), with room for the longest header any key of the ring writes.
    fn check_fits(&self, claims: &Claims<T>) -> Result<(), StartError>
    where
        T: Serialize,
    {
        let ring = self.config.ring.load();
        match ring.check_fits(claims, &self.config.opts) {
            Ok(_) => Ok(()),
            Err(SealError::TooLarge { len, max }) => Err(StartError::TooLarge { len, max }),
            Err(e) => Err(StartError::Claims(e)),
        }
    }

    /// Starts a session for `sub` (login): a new `sid`, `auth_time = now` (and `started_us`,
    /// the same moment to the microsecond, which revocation cut-offs compare), the
    /// configured `iss`/`aud`, and the application's claims. Replaces any session the
    /// request had (which guards against session fixation: the new `sid` is fresh), and the
    /// replaced session is revoked before the response leaves, so its token, if copied,
    /// stops working too. Should the revocation store fail, the new session still starts
    /// and the failure is logged (`tracing` warning): the old token then lives until its
    /// `exp`.
    ///
    /// # Errors
    /// [`StartError::TooLarge`] when the claims would not fit in the cookies (or the token
    /// limit): answer it yourself (`413`, say). Nothing changes then: a session the request
    /// had stays as it was.
    pub fn start(&self, sub: impl Into<String>, app: T) -> Result<(), StartError>
    where
        T: Serialize,
    {
        let moment = self.moment();
        let now = moment.secs();
        let mut claims = Claims::new(app);
        claims.iss.clone_from(&self.config.issuer);
        claims.aud = self.config.audience.clone().map(Audience::one);
        self.config.lifetimes.start(&mut claims, sub, moment);
        self.check_fits(&claims)?;
        let mut st = self.lock();
        if let Some(old) = st.current.replace(claims) {
            st.replaced = self.session_revocation(old, now);
        }
        st.pending = Pending::Write;
        Ok(())
    }

    /// Changes the application's claims of the current session; it is re-sealed in this
    /// response (same `sid`, new `jti` and `exp`).
    ///
    /// The token the request carried stays valid until its own `exp`: a copy of it still
    /// has the old claims until then.
    ///
    /// # Errors
    /// [`UpdateError::NoSession`] if there is none; [`UpdateError::TooLarge`] when the
    /// changed claims would not fit. Either way nothing changes.
    pub fn update(&self, f: impl FnOnce(&mut T)) -> Result<(), UpdateError>
    where
        T: Serialize + Clone,
    {
        let now = self.config.clock.now();
        let mut st = self.lock();
        let mut claims = st.current.clone().ok_or(UpdateError::NoSession)?;
        f(&mut claims.app);
        self.config.lifetimes.reissue(&mut claims, now);
        self.check_fits(&claims).map_err(|e| match e {
            StartError::TooLarge { len, max } => UpdateError::TooLarge { len, max },
            StartError::Claims(e) => UpdateError::Claims(e),
        })?;
        st.current = Some(claims);
        st.pending = Pending::Write;
        Ok(())
    }

    /// Ends this session (logout): the cookie is cleared and its `sid` revoked, so a copy
    /// of the token is refused too. Without a session it only clears the cookie.
    ///
    /// # Errors
    /// [`StoreError`] if the revocation could not be recorded; the cookie is cleared anyway.
    /// [`StoreError::Queued`] means it is in force on this instance and a shared store will
    /// send it on by itself (Redis was unreachable): the user is logged out, nothing to
    /// retry.
    pub async fn end(&self) -> Result<(), StoreError> {
        let now = self.config.clock.now();
        let taken = self.take_for_clearing();
        let Some(revocation) = taken.and_then(|c| self.session_revocation(c, now)) else {
            return Ok(());
        };
        self.config.store.revoke_at(revocation, now).await
    }

    /// The revocation that ends one session: its `sid`, kept until no token of it could
    /// still be renewed. `None` for claims without `sid` or `auth_time` (not ours).
    fn session_revocation(&self, claims: Claims<T>, now: UnixTime) -> Option<Revocation> {
        let (Some(sid), Some(auth)) = (claims.sid, claims.auth_time) else {
            return None;
        };
        let until = self
            .config
            .lifetimes
            .renewable_until(auth, now)
            .saturating_add(LEEWAY);
        Some(Revocation::Session { sid, until })
    }

    /// Ends every session of the current subject begun up to this moment, on every
    /// device (logout everywhere; also right after a password change), and this one.
    ///
    /// The cut-off is exact: a session started after this call returns, by this layer
    /// (`end_everywhere().await?; start(..)` in one handler, say) or by any instance whose
    /// clock agrees, is not affected, even within the same second or microsecond.
    ///
    /// # Errors
    /// [`StoreError`] if the revocation could not be recorded; the cookie is cleared anyway.
    pub async fn end_everywhere(&self) -> Result<(), StoreError> {
        let at = self.moment();
        let taken = self.take_for_clearing();
        let Some(sub) = taken.and_then(|c| c.sub) else {
            return Ok(());
        };
        self.revoke_subject(sub, at).await
    }

    /// Ends every other session of the current subject, on every device, and keeps this
    /// one ("log out my other devices", e.g. after a password change).
    ///
    /// This session goes on under a new `sid`, written in this response; its claims,
    /// `auth_time` and absolute lifetime stay. The token the request carried is ended with
    /// the others, so a copy of it (if this device's cookie was stolen) stops working too.
    /// A request still in flight with that old token is refused as well.
    ///
    /// Without a session it does nothing.
    ///
    /// # Errors
    /// [`StoreError`] if the revocation could not be recorded. This session has moved to
    /// its new `sid` either way, so the call can be repeated.
    pub async fn end_others(&self) -> Result<(), StoreError> {
        let at = self.moment();
        // Strictly after the cut-off: this session is the one that survives it.
        let started = self.moment();
        let now = started.secs();
        let sub = {
            let mut st = self.lock();
            let Some(claims) = st.current.as_mut() else {
                return Ok(());
            };
            let Some(sub) = claims.sub.clone() else {
                return Ok(());
            };
            claims.sid = Some(random_id());
            claims.started_us = Some(started);
            self.config.lifetimes.reissue(claims, now);
            st.pending = Pending::Write;
            sub
        };
        self.revoke_subject(sub, at).await
    }

    /// Revokes every session of `sub` begun at or before `at`.
    async fn revoke_subject(&self, sub: String, at: UnixMicros) -> Result<(), StoreError> {
        let until = self
            .config
            .lifetimes
            .sessions_before_end_by(at.secs())
            .saturating_add(LEEWAY);
        self.config
            .store
            .revoke_at(Revocation::Subject { sub, at, until }, at.secs())
            .await
    }

    /// The moment of a session start or a cut-off: the clock's microseconds, strictly
    /// increasing across this layer.
    fn moment(&self) -> UnixMicros {
        self.config.moments.next(&*self.config.clock)
    }
}

impl<T: Clone> SessionHandle<T> {
    /// A copy of the current claims, if there is a session.
    #[must_use]
    pub fn claims(&self) -> Option<Claims<T>> {
        self.lock().current.clone()
    }
}

/// Revocations are kept a little past the last moment they could matter.
const LEEWAY: Duration = Duration::from_secs(60);

/// Why [`SessionHandle::start`] refused the claims; the session is unchanged.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The sealed token would be `len` bytes, more than the `max` the layer can carry
    /// (the cookies' capacity, or `max_token_len`).
    TooLarge {
        /// The token's length, with the longest header of the ring.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The claims could not be serialized as a JSON object.
    Claims(SealError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => write!(
                f,
                "session claims are too large: the token would be {len} bytes, over the {max}-byte limit"
            ),
            Self::Claims(_) => f.write_str("session claims could not be serialized"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Claims(e) => Some(e),
            Self::TooLarge { .. } => None,
        }
    }
}

/// Why [`SessionHandle::update`] refused; the session is unchanged.
#[derive(Debug)]
#[non_exhaustive]
pub enum UpdateError {
    /// The request has no session to change.
    NoSession,
    /// The changed claims would seal to a token longer than the layer can carry.
    TooLarge {
        /// The token's length, with the longest header of the ring.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The changed claims could not be serialized as a JSON object.
    Claims(SealError),
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSession => NoSession.fmt(f),
            Self::TooLarge { len, max } => StartError::TooLarge {
                len: *len,
                max: *max,
            }
            .fmt(f),
            Self::Claims(_) => f.write_str("session claims could not be serialized"),
        }
    }
}

impl std::error::Error for UpdateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Claims(e) => Some(e),
            _ => None,
        }
    }
}

/// The operation needs a session and the request has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoSession;

impl fmt::Display for NoSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request has no session")
    }
}

impl std::error::Error for NoSession {}
