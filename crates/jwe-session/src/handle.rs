//! The per-request session handle that the layer puts into request extensions.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

use jwe_session_core::{
    random_id, Audience, Claims, Confirmation, Lifetimes, Recorded, Revocation, RevocationWatch,
    RevokeError, SealError, SessionIds, SessionLifetimes, UnixMicros, UnixTime, WatchUnsupported,
};
use serde::Serialize;

use crate::dpop::DpopRefusal;
use crate::options::{DeviceInfo, OverCap};
use crate::shared::Shared;

/// What the response must do about the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pending {
    /// Nothing changed: no `Set-Cookie`.
    Nothing,
    /// Seal `current` and write it: the handler started or changed the session.
    Write,
    /// Seal `current` and write it if it can be: the layer renews it past `exp` or
    /// re-seals it under the active key. Should sealing fail, the request's token stays.
    Reseal,
    /// Clear the cookie (logout, or a token that was refused).
    Clear,
}

/// What the session registry must hear when the response leaves (see `devices`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum DeviceNote {
    /// Nothing: an ordinary request writes nothing to the registry.
    #[default]
    None,
    /// The handler started this session.
    Started,
    /// The session moved to a new `sid` (cycle, end_others, a DBSC registration); `from`
    /// is the `sid` the request's session had.
    Moved {
        /// The previous `sid`.
        from: String,
    },
}

impl DeviceNote {
    /// The session's `sid` changed from `old`: a start stays a start, and a session that
    /// moved twice moved from where it was first.
    pub(crate) fn moved(&mut self, old: Option<String>) {
        if let (Self::None, Some(from)) = (&*self, old) {
            *self = Self::Moved { from };
        }
    }
}

/// What the request proved about the key its client holds (DPoP).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum ProofState {
    /// No proof (or a layer without DPoP).
    #[default]
    None,
    /// A valid proof by the key of this thumbprint: a login binds to it.
    Valid(String),
    /// A proof that was refused: a login fails rather than start unbound.
    Refused(DpopRefusal),
}

/// What the request phase gives the handle: its session (or none), what the response must
/// do about the cookie, and whether the request carried a token that was refused.
pub(crate) struct Loaded<T> {
    pub(crate) current: Option<Claims<T>>,
    pub(crate) pending: Pending,
    pub(crate) refused: bool,
}

/// Opens a deferred cookie, renewal included.
type OpenLater<T> = fn(Arc<Shared<T>>, String) -> jwe_session_core::BoxFuture<'static, Loaded<T>>;

/// A session cookie whose opening waits for the first access to the request's session,
/// and the two ways of opening it (made by the request phase, which knows the claims
/// type's bounds; the handle has none).
pub(crate) struct Deferred<T> {
    pub(crate) token: String,
    /// Everything, renewal included.
    pub(crate) open: OpenLater<T>,
    /// What needs no waiting, for a handle first used synchronously.
    pub(crate) open_now: fn(&Shared<T>, &str) -> Loaded<T>,
}

/// Whether the request's token has been opened (see [`SessionHandle::load`]).
pub(crate) enum Load<T> {
    /// Opened (or there was none): `current` is the session.
    Done,
    /// Not yet: opened on the first access.
    Deferred(Deferred<T>),
    /// Being opened by [`SessionHandle::load`]; these wait for it.
    Loading(Vec<Waker>),
}

pub(crate) struct State<T> {
    /// Whether `current` is known yet.
    pub(crate) load: Load<T>,
    pub(crate) current: Option<Claims<T>>,
    /// The request's DPoP proof, for a login to bind to.
    pub(crate) proof: ProofState,
    /// The token [`SessionHandle::issue`] sealed: the response delivers this one.
    pub(crate) issued: Option<String>,
    pub(crate) pending: Pending,
    /// The session a login replaced, revoked by the layer before the response leaves.
    pub(crate) replaced: Option<Revocation>,
    /// The request carried a token that was refused (for `WWW-Authenticate`'s
    /// `error="invalid_token"` on the bearer transport).
    pub(crate) refused: bool,
    /// The layer has written the response's headers: a new token can no longer be sent.
    pub(crate) written: bool,
    /// The handler started this session in this request (for a DBSC registration).
    pub(crate) started: bool,
    /// What the session registry must hear when the response leaves.
    pub(crate) note: DeviceNote,
    /// What the app said of the device a session started in this request runs on.
    pub(crate) device: Option<DeviceInfo>,
}

impl<T> Loaded<T> {
    /// No session, nothing to do, nothing refused.
    pub(crate) fn nothing() -> Self {
        Self {
            current: None,
            pending: Pending::Nothing,
            refused: false,
        }
    }
}

impl<T> State<T> {
    /// The deferred cookie, if the request's token is still unopened and no one is
    /// opening it.
    fn take_deferred(&mut self) -> Option<Deferred<T>> {
        match std::mem::replace(&mut self.load, Load::Done) {
            Load::Deferred(d) => Some(d),
            other => {
                self.load = other;
                None
            }
        }
    }

    fn apply(&mut self, loaded: Loaded<T>) {
        self.current = loaded.current;
        self.pending = loaded.pending;
        self.refused = loaded.refused;
    }
}

/// The end of a [`SessionHandle::load`]: what it found goes into the state and whoever
/// waited is woken; if the load was dropped half-way, the request has no session.
struct Loading<'a, T> {
    handle: &'a SessionHandle<T>,
    loaded: Option<Loaded<T>>,
}

impl<T> Drop for Loading<'_, T> {
    fn drop(&mut self) {
        let mut st = self.handle.raw();
        if let Some(loaded) = self.loaded.take() {
            st.apply(loaded);
        }
        if let Load::Loading(waiting) = std::mem::replace(&mut st.load, Load::Done) {
            drop(st);
            waiting.into_iter().for_each(Waker::wake);
        }
    }
}

// Here, beside `StartError`, not in `shared`: `shared` imports nothing of the handle.
impl<T> Shared<T> {
    /// The claims of a new session for `sub`, begun at `moment`: the configured issuer and
    /// audience, a new `sid`, and the lifetimes (the session's own, if it chose them:
    /// never longer than the layer's, whose revocations would not outlive them).
    pub(crate) fn new_session(
        &self,
        sub: String,
        app: T,
        lifetimes: Option<SessionLifetimes>,
        moment: UnixMicros,
    ) -> Result<Claims<T>, StartError> {
        if let Some(own) = &lifetimes {
            if !self.lifetimes.contains(&own.lifetimes) {
                return Err(StartError::LifetimesTooLong {
                    asked: own.lifetimes,
                    max: self.lifetimes,
                });
            }
        }
        let mut claims = Claims::new(app);
        claims.iss.clone_from(&self.issuer);
        claims.aud = self.audience.clone().map(Audience::one);
        claims.lifetimes = lifetimes;
        self.lifetimes.start(&mut claims, sub, moment);
        Ok(claims)
    }
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
    pub(crate) shared: Arc<Shared<T>>,
    pub(crate) state: Arc<Mutex<State<T>>>,
}

impl<T> Clone for SessionHandle<T> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            state: Arc::clone(&self.state),
        }
    }
}

impl<T> fmt::Debug for SessionHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.raw();
        // Claims are confidential: show only whether there is a session.
        f.debug_struct("SessionHandle")
            .field("active", &st.current.is_some())
            .field("pending", &st.pending)
            .finish_non_exhaustive()
    }
}

impl<T> SessionHandle<T> {
    pub(crate) fn new(
        shared: Arc<Shared<T>>,
        current: Option<Claims<T>>,
        pending: Pending,
    ) -> Self {
        Self::loaded(
            shared,
            Loaded {
                current,
                pending,
                refused: false,
            },
        )
    }

    /// The handle of a request phase that opened the request's token (or had none).
    pub(crate) fn loaded(shared: Arc<Shared<T>>, loaded: Loaded<T>) -> Self {
        Self::with(shared, Load::Done, loaded)
    }

    /// The handle of a request whose token is opened on the first access.
    pub(crate) fn deferred(shared: Arc<Shared<T>>, deferred: Deferred<T>) -> Self {
        Self::with(shared, Load::Deferred(deferred), Loaded::nothing())
    }

    fn with(shared: Arc<Shared<T>>, load: Load<T>, loaded: Loaded<T>) -> Self {
        Self {
            shared,
            state: Arc::new(Mutex::new(State {
                load,
                current: loaded.current,
                proof: ProofState::None,
                issued: None,
                pending: loaded.pending,
                replaced: None,
                refused: loaded.refused,
                written: false,
                started: false,
                note: DeviceNote::None,
                device: None,
            })),
        }
    }

    /// The state as it is, the request's token opened or not: for the layer's response
    /// phase, which never opens a token no one asked for.
    pub(crate) fn raw(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state, the request's token opened first if no one has yet (what needs no
    /// waiting: see [`load`](Self::load)).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<T>> {
        let mut st = self.raw();
        if let Some(d) = st.take_deferred() {
            let loaded = (d.open_now)(&self.shared, &d.token);
            st.apply(loaded);
        }
        st
    }

    /// Opens the request's cookie, if no one has yet: the layer leaves a session cookie
    /// unopened until the request's session is first asked for, so a route that never
    /// reads the session never pays for the decryption (tokens in `Authorization`, and
    /// every token of a layer with device binding, are opened up front). The axum extractors
    /// and this handle's `async` methods call it; a service that takes the handle from the
    /// request's extensions (hyper, tonic) calls it before reading the handle:
    ///
    /// ```
    /// # use jwe_session::SessionHandle;
    /// # async fn handler(req: http::Request<()>) {
    /// if let Some(handle) = req.extensions().get::<SessionHandle<()>>() {
    ///     handle.load().await;
    ///     let signed_in = handle.is_active();
    /// }
    /// # }
    /// ```
    ///
    /// Every check runs as it would have in the request phase: validation, lifetimes, the
    /// revocation check, and, for a token past `exp`, renewal with the store's
    /// authoritative check and the renew hook; a refused token is cleared in the response,
    /// a renewed one written. The handle's synchronous methods open a token themselves
    /// when no one has, without waiting: a token that needs renewal is then no session for
    /// that request (a warning says so once), so call this first outside axum.
    ///
    /// Calling it again, from any clone, does nothing; concurrent calls wait for the
    /// first.
    pub async fn load(&self) {
        let deferred = std::future::poll_fn(|cx| {
            let mut st = self.raw();
            if let Some(d) = st.take_deferred() {
                st.load = Load::Loading(Vec::new());
                return Poll::Ready(Some(d));
            }
            match &mut st.load {
                Load::Loading(waiting) => {
                    waiting.push(cx.waker().clone());
                    Poll::Pending
                }
                _ => Poll::Ready(None),
            }
        })
        .await;
        let Some(d) = deferred else {
            return;
        };
        let mut loading = Loading {
            handle: self,
            loaded: None,
        };
        loading.loaded = Some((d.open)(Arc::clone(&self.shared), d.token).await);
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
    fn check_fits(&self, claims: &Claims<T>) -> Result<(), SealError>
    where
        T: Serialize,
    {
        self.shared
            .ring
            .load()
            .check_fits(claims, &self.shared.opts)
            .map(|_| ())
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
    /// With DPoP ([`SessionLayerBuilder::dpop`](crate::SessionLayerBuilder::dpop)), a
    /// request that carries a valid `DPoP` proof starts a session bound to its key: the
    /// token carries `cnf.jkt`, goes back in the token header only, and is accepted only
    /// with proofs by that key.
    ///
    /// # Errors
    /// [`StartError::TooLarge`] when the claims would not fit in the cookies (or the token
    /// limit): answer it yourself (`413`, say). [`StartError::DpopProof`] when the request's
    /// DPoP proof was refused, [`StartError::DpopRequired`] when binding is required and
    /// there is none. Nothing changes then: a session the request had stays as it was.
    pub fn start(&self, sub: impl Into<String>, app: T) -> Result<(), StartError>
    where
        T: Serialize,
    {
        self.begin(sub.into(), app, None)
    }

    /// Starts a session, as [`start`](Self::start), with lifetimes of its own: shorter
    /// than the layer's (a session without "remember me": the layer is configured with the
    /// long lifetimes, and ordinary logins ask for less), and optionally a browser-session
    /// cookie, which has no `Max-Age` and ends when the browser closes. They travel in the
    /// token, so every instance and every renewal applies them.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use jwe_session::{Lifetimes, SessionHandle, SessionLifetimes};
    /// # fn login(handle: SessionHandle<()>, remember_me: bool) -> Result<(), jwe_session::StartError> {
    /// if remember_me {
    ///     handle.start("alice", ())?; // the layer's lifetimes: 30 days, say
    /// } else {
    ///     let short = Lifetimes::new(
    ///         Duration::from_secs(15 * 60),
    ///         Duration::from_secs(60 * 60),
    ///         Duration::from_secs(12 * 60 * 60),
    ///     );
    ///     handle.start_with("alice", (), SessionLifetimes::new(short).browser_session(true))?;
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`start`](Self::start), and [`StartError::LifetimesTooLong`] when one of the
    /// lifetimes is longer than the layer's: revocations are kept for the layer's
    /// lifetimes, so a longer session could outlive its own logout.
    pub fn start_with(
        &self,
        sub: impl Into<String>,
        app: T,
        lifetimes: SessionLifetimes,
    ) -> Result<(), StartError>
    where
        T: Serialize,
    {
        self.begin(sub.into(), app, Some(lifetimes))
    }

    fn begin(
        &self,
        sub: String,
        app: T,
        lifetimes: Option<SessionLifetimes>,
    ) -> Result<(), StartError>
    where
        T: Serialize,
    {
        if self
            .shared
            .cap
            .is_some_and(|c| c.policy == OverCap::RefuseNew)
        {
            return Err(StartError::CapNeedsCheckedStart);
        }
        self.begin_unchecked(sub, app, lifetimes)
    }

    /// [`begin`](Self::begin) without the cap's guard: for `start_checked`, which has
    /// counted the user's sessions.
    pub(crate) fn begin_unchecked(
        &self,
        sub: String,
        app: T,
        lifetimes: Option<SessionLifetimes>,
    ) -> Result<(), StartError>
    where
        T: Serialize,
    {
        let binding = {
            let st = self.lock();
            if st.written {
                return Err(StartError::ResponseSent);
            }
            match (&st.proof, &self.shared.dpop) {
                (ProofState::Refused(e), _) => return Err(StartError::DpopProof(e.clone())),
                (ProofState::Valid(jkt), _) => Some(Confirmation::jkt(jkt.clone())),
                (ProofState::None, Some(d)) if d.required() => {
                    return Err(StartError::DpopRequired)
                }
                (ProofState::None, _) => None,
            }
        };
        let moment = self.moment();
        let now = moment.secs();
        let mut claims = self.shared.new_session(sub, app, lifetimes, moment)?;
        claims.cnf = binding;
        self.check_fits(&claims)?;
        let mut st = self.lock();
        if st.written {
            return Err(StartError::ResponseSent);
        }
        st.issued = None;
        if let Some(old) = st.current.replace(claims) {
            st.replaced = self.session_revocation(old, now);
        }
        st.pending = Pending::Write;
        st.started = true;
        st.note = DeviceNote::Started;
        crate::metrics::started();
        Ok(())
    }

    /// Says what device the session this request starts runs on, for the session
    /// registry ("your devices"): a label the user will recognize and a coarse network
    /// hint. Call it beside [`start`](Self::start) (before or after); it is recorded when
    /// the response leaves, with the new session, and kept for the session's life.
    /// Ignored for a request that does not start a session, and by a store without a
    /// registry.
    ///
    /// ```
    /// # fn login(handle: jwe_session::SessionHandle<()>, ua: &str) -> Result<(), jwe_session::StartError> {
    /// use jwe_session::DeviceInfo;
    /// handle.start("alice", ())?;
    /// handle.describe_device(DeviceInfo::from_user_agent(ua));
    /// # Ok(()) }
    /// ```
    pub fn describe_device(&self, info: DeviceInfo) {
        self.lock().device = Some(info);
    }

    /// A DBSC registration: `bound` (the session under a new `sid`, bound to the device
    /// key) replaces the request's session, and is written in the response.
    pub(crate) fn bind_device(&self, bound: Claims<T>) {
        let mut st = self.lock();
        let old = st.current.replace(bound).and_then(|c| c.sid);
        st.note.moved(old);
        st.pending = Pending::Write;
    }

    /// Starts a session, as [`start`](Self::start), and seals its token now, for an API's
    /// login that answers with the token in its body (`{"access_token": …,
    /// "token_type": …, "expires_in": …}`). The response carries the same token in the
    /// token header and never in a cookie. With DPoP, a login whose request carried a
    /// valid proof gets a token bound to the proof's key, [`TokenType::Dpop`].
    ///
    /// ```
    /// # fn login(handle: jwe_session::SessionHandle<()>) -> Result<(), jwe_session::StartError> {
    /// let issued = handle.issue("alice", ())?;
    /// let body = format!(
    ///     r#"{{"access_token":"{}","token_type":"{}","expires_in":{}}}"#,
    ///     issued.token(),
    ///     issued.token_type().as_str(),
    ///     issued.expires_in().as_secs(),
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`start`](Self::start); [`StartError::Seal`] if the token cannot be sealed now.
    pub fn issue(&self, sub: impl Into<String>, app: T) -> Result<IssuedToken, StartError>
    where
        T: Serialize,
    {
        self.begin(sub.into(), app, None)?;
        let ring = self.shared.ring.load();
        let now = self.shared.clock.now();
        let mut st = self.lock();
        let claims = st.current.as_ref().ok_or(StartError::ResponseSent)?;
        let token = ring.seal_at(claims, &self.shared.opts, now)?.into_string();
        let token_type = if claims.cnf.is_some() {
            TokenType::Dpop
        } else {
            TokenType::Bearer
        };
        let expires_in = claims
            .exp
            .map_or(std::time::Duration::ZERO, |exp| exp.saturating_since(now));
        st.issued = Some(token.clone());
        Ok(IssuedToken {
            token,
            token_type,
            expires_in,
        })
    }

    /// How the current session is bound: [`TokenType::Dpop`] for a token bound to a
    /// client's key, [`TokenType::Bearer`] otherwise; `None` without a session.
    #[must_use]
    pub fn token_type(&self) -> Option<TokenType> {
        self.lock().current.as_ref().map(|c| {
            if c.cnf.is_some() {
                TokenType::Dpop
            } else {
                TokenType::Bearer
            }
        })
    }

    /// The layer's lifetimes: the longest any session may have.
    pub fn lifetimes(&self) -> Lifetimes {
        self.shared.lifetimes
    }

    /// The layer's clock (the one it judges lifetimes by): for a long-lived connection's
    /// own timers, such as closing at the session's
    /// [absolute end](Lifetimes::absolute_end).
    #[must_use]
    pub fn clock(&self) -> Arc<dyn jwe_session_core::Clock> {
        Arc::clone(&self.shared.clock)
    }

    /// Changes the application's claims of the current session; it is re-sealed in this
    /// response (same `sid`, new `jti` and `exp`).
    ///
    /// # What happens to the old token
    /// The token the request carried is not revoked: it stays valid, with the old claims,
    /// until its own `exp` (the access lifetime, 15 minutes by default), on any instance
    /// and for anyone holding a copy. That is fine for a preference; for a privilege
    /// taken away (a role removed) use [`cycle`](Self::cycle) after the update, which
    /// moves the session to a new `sid` and revokes the old one, so the old token is
    /// refused at once.
    ///
    /// # Errors
    /// [`UpdateError::NoSession`] if there is none; [`UpdateError::TooLarge`] when the
    /// changed claims would not fit; [`UpdateError::ResponseSent`] once the response's
    /// headers have left (a streaming response). In every case nothing changes.
    pub fn update(&self, f: impl FnOnce(&mut T)) -> Result<(), UpdateError>
    where
        T: Serialize + Clone,
    {
        let moment = self.moment();
        let mut st = self.lock();
        if st.written {
            return Err(UpdateError::ResponseSent);
        }
        let mut claims = st.current.clone().ok_or(UpdateError::NoSession)?;
        f(&mut claims.app);
        self.shared.reissue(&mut claims, moment);
        self.check_fits(&claims).map_err(|e| match e {
            SealError::TooLarge { len, max } => UpdateError::TooLarge { len, max },
            e => UpdateError::Claims(e),
        })?;
        st.current = Some(claims);
        st.pending = Pending::Write;
        Ok(())
    }

    /// Ends this session (logout): the cookie is cleared and its `sid` revoked, so a copy
    /// of the token is refused too. Without a session it only clears the cookie.
    ///
    /// # Errors
    /// [`RevokeError`] if the revocation could not be recorded; the cookie is cleared
    /// anyway. `Ok(`[`Recorded::Queued`]`)` is a success: the revocation is in force on
    /// this instance and a shared store sends it on by itself (Redis was unreachable); the
    /// user is logged out, nothing to retry. Without a session there is nothing to record:
    /// `Ok(Recorded::Stored)`.
    pub async fn end(&self) -> Result<Recorded, RevokeError> {
        self.load().await;
        let now = self.shared.clock.now();
        let Some(claims) = self.take_for_clearing() else {
            return Ok(Recorded::Stored);
        };
        let owner = claims.sub.clone().zip(claims.sid.clone());
        let Some(revocation) = self.session_revocation(claims, now) else {
            return Ok(Recorded::Stored);
        };
        let recorded = self.revoke(revocation, now).await?;
        if let Some((sub, sid)) = owner {
            self.shared.forget_device(&sub, &sid, now).await;
        }
        Ok(recorded)
    }

    /// Moves this session to a new `sid` and revokes the old one: the claims, `auth_time`
    /// and lifetimes stay, the new token goes out in this response, and the token the
    /// request carried (and any copy of it) is refused from now on.
    ///
    /// Call it when privileges change (after [`update`](Self::update) removed a role, or
    /// after a step-up authentication) and wherever a session id must not survive a
    /// change of trust: it is the session-fixation defence that `tower-sessions` calls
    /// `cycle_id`. ([`start`](Self::start) already does this at login.)
    ///
    /// # Errors
    /// [`CycleError::NoSession`] without a session and [`CycleError::ResponseSent`] once
    /// the response's headers have left (nothing changes then);
    /// [`CycleError::Store`] if the old `sid` could not be revoked: the session has moved
    /// to its new `sid` anyway, and the old token stays valid until its `exp`
    /// (a queued revocation is a success: revoked here, sent on by the store).
    pub async fn cycle(&self) -> Result<(), CycleError> {
        self.load().await;
        let moment = self.moment();
        let now = moment.secs();
        let old = {
            let mut st = self.lock();
            if st.written {
                return Err(CycleError::ResponseSent);
            }
            let Some(claims) = st.current.as_mut() else {
                return Err(CycleError::NoSession);
            };
            let old = (claims.sid.replace(random_id()), claims.auth_time);
            self.shared.reissue(claims, moment);
            st.pending = Pending::Write;
            st.note.moved(old.0.clone());
            old
        };
        match self.sid_revocation(old, now) {
            Some(revocation) => self
                .revoke(revocation, now)
                .await
                .map(drop)
                .map_err(CycleError::Store),
            None => Ok(()),
        }
    }

    /// Records a revocation made through this handle, counted by scope.
    async fn revoke(&self, revocation: Revocation, now: UnixTime) -> Result<Recorded, RevokeError> {
        self.shared.revoke(revocation, now).await
    }

    /// The revocation that ends one session: its `sid`, kept until no token of it could
    /// still be renewed. `None` for claims without `sid` or `auth_time` (not ours).
    fn session_revocation(&self, claims: Claims<T>, now: UnixTime) -> Option<Revocation> {
        self.sid_revocation((claims.sid, claims.auth_time), now)
    }

    /// As [`session_revocation`](Self::session_revocation), from the `sid` and
    /// `auth_time`.
    fn sid_revocation(
        &self,
        (sid, auth): (Option<String>, Option<UnixTime>),
        now: UnixTime,
    ) -> Option<Revocation> {
        let (Some(sid), Some(auth)) = (sid, auth) else {
            return None;
        };
        Some(Revocation::session(
            sid,
            Some(auth),
            now,
            &self.shared.lifetimes,
        ))
    }

    /// Ends every session of the current subject begun up to this moment, on every
    /// device (logout everywhere; also right after a password change), and this one.
    ///
    /// The cut-off is exact: a session started after this call returns, by this layer
    /// (`end_everywhere().await?; start(..)` in one handler, say) or by any instance whose
    /// clock agrees, is not affected, even within the same second or microsecond.
    ///
    /// # Errors
    /// [`RevokeError`] if the revocation could not be recorded; the cookie is cleared
    /// anyway. As for [`end`](Self::end), `Ok(Recorded::Queued { .. })` is a success.
    pub async fn end_everywhere(&self) -> Result<Recorded, RevokeError> {
        self.load().await;
        let at = self.moment();
        let taken = self.take_for_clearing();
        let Some(sub) = taken.and_then(|c| c.sub) else {
            return Ok(Recorded::Stored);
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
    /// Without a session it does nothing. Once the response's headers have left (a
    /// streaming response), the new `sid` could not reach the client: this session then
    /// ends with the others, as [`end_everywhere`](Self::end_everywhere) would (a warning
    /// is logged).
    ///
    /// # Errors
    /// [`RevokeError`] if the revocation could not be recorded. This session has moved to
    /// its new `sid` either way, so the call can be repeated.
    pub async fn end_others(&self) -> Result<Recorded, RevokeError> {
        self.load().await;
        let at = self.moment();
        // Strictly after the cut-off: this session is the one that survives it.
        let started = self.moment();
        let (sub, this_too) = {
            let mut st = self.lock();
            let written = st.written;
            let Some(claims) = st.current.as_mut() else {
                return Ok(Recorded::Stored);
            };
            let Some(sub) = claims.sub.clone() else {
                return Ok(Recorded::Stored);
            };
            if written {
                // The new sid could not reach the client: this session ends with the
                // others (a logout everywhere) rather than lingering under an id it
                // cannot use.
                st.current = None;
                (sub, true)
            } else {
                let old = claims.sid.replace(random_id());
                claims.started_us = Some(started);
                self.shared.reissue(claims, started);
                st.pending = Pending::Write;
                st.note.moved(old);
                (sub, false)
            }
        };
        if this_too {
            tracing::warn!("end_others after the response was sent: this session ends too");
        }
        self.revoke_subject(sub, at).await
    }

    /// Watches this request's session: the [`RevocationWatch`] completes when it is
    /// revoked (logout, logout everywhere, an emergency cut-off, by this instance or,
    /// through a shared store, any other), or when a claims refresh covers it (then run
    /// [`recheck`](Self::recheck) and watch again), and at once if either is in force
    /// already. Hold it beside a long-lived connection (a WebSocket, a gRPC stream) and
    /// close the connection when the session ends.
    ///
    /// The watch follows the session as it is now: after [`cycle`](Self::cycle) or
    /// [`end_others`](Self::end_others), watch again for the new `sid`.
    ///
    /// # Errors
    /// [`WatchError::NoSession`] without a session; [`WatchError::Unsupported`] from a
    /// store that cannot watch (every store of this project can).
    pub fn watch(&self) -> Result<RevocationWatch, WatchError> {
        let st = self.lock();
        let claims = st.current.as_ref().ok_or(WatchError::NoSession)?;
        Ok(self
            .shared
            .store
            .watch(SessionIds::from(claims), self.shared.clock.now())?)
    }

    /// Revokes every session of `sub` begun at or before `at`.
    async fn revoke_subject(&self, sub: String, at: UnixMicros) -> Result<Recorded, RevokeError> {
        let revocation = Revocation::subject(sub, at, &self.shared.lifetimes);
        self.revoke(revocation, at.secs()).await
    }

    /// The moment of a session start or a cut-off: the clock's microseconds, strictly
    /// increasing across this layer.
    fn moment(&self) -> UnixMicros {
        self.shared.moment()
    }
}

impl<T: Clone> SessionHandle<T> {
    /// A copy of the current claims, if there is a session.
    #[must_use]
    pub fn claims(&self) -> Option<Claims<T>> {
        self.lock().current.clone()
    }
}

/// Why [`SessionHandle::recheck`] did not vouch for the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecheckError {
    /// The handle has no session.
    NoSession,
    /// The session is past its absolute lifetime: the user must log in again.
    Expired,
    /// The session is revoked.
    Revoked,
    /// The renew hook refused it (a ban, say).
    Refused,
    /// The revocation store (fail-closed) or the renew hook's data did not answer: the
    /// session may be fine, but nothing vouches for it now.
    Unavailable,
}

impl fmt::Display for RecheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoSession => "no session to check",
            Self::Expired => "session is past its absolute lifetime",
            Self::Revoked => "session was revoked",
            Self::Refused => "the renew hook refused the session",
            Self::Unavailable => {
                "the session could not be checked now (store or renew hook unavailable)"
            }
        })
    }
}

impl std::error::Error for RecheckError {}

/// Why [`SessionHandle::watch`] or `Session::watch` (feature `axum`) could not
/// watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchError {
    /// The request has no session (only from [`SessionHandle::watch`]).
    NoSession,
    /// The store cannot watch sessions (every store of this project can).
    Unsupported,
}

impl From<WatchUnsupported> for WatchError {
    fn from(_: WatchUnsupported) -> Self {
        Self::Unsupported
    }
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSession => f.write_str("no session to watch"),
            Self::Unsupported => WatchUnsupported.fmt(f),
        }
    }
}

impl std::error::Error for WatchError {}

/// How a token is presented (the `token_type` of an OAuth-style response).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenType {
    /// `Authorization: Bearer <token>`: whoever holds the token may use it.
    Bearer,
    /// `Authorization: DPoP <token>` with a proof by the key the token is bound to.
    Dpop,
}

impl TokenType {
    /// `"Bearer"` or `"DPoP"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Bearer => "Bearer",
            Self::Dpop => "DPoP",
        }
    }
}

/// A token [`SessionHandle::issue`] sealed. `Debug` does not show the token.
#[derive(Clone)]
pub struct IssuedToken {
    token: String,
    token_type: TokenType,
    expires_in: std::time::Duration,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

impl IssuedToken {
    /// The compact JWE.
    #[must_use]
    pub fn token(&self) -> &str {
        &self.token
    }

    /// How it is presented.
    #[must_use]
    pub fn token_type(&self) -> TokenType {
        self.token_type
    }

    /// How long until it is past `exp` (then the layer renews it on a request, with a
    /// proof if it is bound).
    #[must_use]
    pub fn expires_in(&self) -> std::time::Duration {
        self.expires_in
    }
}

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
    /// The claims could not be sealed (the key's budget is spent, say).
    Seal(SealError),
    /// [`SessionHandle::start_with`] asked for a lifetime longer than the layer's.
    LifetimesTooLong {
        /// What was asked for.
        asked: Lifetimes,
        /// The layer's lifetimes, the longest allowed.
        max: Lifetimes,
    },
    /// The response's headers have already left (a streaming response kept the handle):
    /// a new token could not reach the client, so nothing was changed.
    ResponseSent,
    /// The login request carried a DPoP proof that was refused: the session is not
    /// started (never silently unbound). Answer `400` with the refusal's
    /// [`error_code`](DpopRefusal::error_code) (`invalid_dpop_proof`, or `use_dpop_nonce`
    /// when a server nonce is required: the response carries a fresh `DPoP-Nonce`).
    DpopProof(DpopRefusal),
    /// The layer requires binding ([`DpopConfig::require_binding`](crate::DpopConfig::require_binding))
    /// and the login request carried no DPoP proof.
    DpopRequired,
    /// The user has `max` live sessions already and the layer refuses logins beyond the
    /// cap ([`OverCap::RefuseNew`]): answer it yourself (`409`, say, with a link to
    /// the user's devices).
    TooManySessions {
        /// The cap.
        max: usize,
    },
    /// The layer refuses logins beyond a cap ([`OverCap::RefuseNew`]), which only
    /// [`SessionHandle::start_checked`] can count: use it instead of `start`,
    /// `start_with` or `issue`.
    CapNeedsCheckedStart,
    /// The session registry could not be read to count the user's sessions
    /// ([`SessionHandle::start_checked`] under a cap); nothing started.
    Registry(jwe_session_core::RegistryError),
}

/// The message of the `ResponseSent` variants.
const NO_SESSION: &str = "the request has no session";
const RESPONSE_SENT: &str =
    "the response's headers have been sent: a new session token can no longer reach the client";

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => write!(
                f,
                "session claims are too large: the token would be {len} bytes, over the {max}-byte limit"
            ),
            Self::Claims(_) => f.write_str("session claims could not be serialized"),
            Self::Seal(_) => f.write_str("the session could not be sealed"),
            Self::LifetimesTooLong { asked, max } => write!(
                f,
                "session lifetimes {asked:?} exceed the layer's {max:?}; configure the layer with the longest"
            ),
            Self::ResponseSent => f.write_str(RESPONSE_SENT),
            Self::DpopProof(e) => write!(f, "the login's DPoP proof was refused: {e}"),
            Self::DpopRequired => {
                f.write_str("sessions must be bound: the login request carried no DPoP proof")
            }
            Self::TooManySessions { max } => write!(
                f,
                "this user has {max} live sessions already, the most the layer allows: end one first"
            ),
            Self::CapNeedsCheckedStart => f.write_str(
                "the layer refuses logins beyond its session cap: start sessions with start_checked, which counts them",
            ),
            Self::Registry(_) => {
                f.write_str("the session registry could not be read to count the user's sessions")
            }
        }
    }
}

impl From<SealError> for StartError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::TooLarge { len, max } => Self::TooLarge { len, max },
            e @ (SealError::Claims(_) | SealError::ClaimsNotObject) => Self::Claims(e),
            e => Self::Seal(e),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Claims(e) | Self::Seal(e) => Some(e),
            Self::DpopProof(e) => Some(e),
            Self::Registry(e) => Some(e),
            _ => None,
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
    /// The response's headers have already left (a streaming response kept the handle):
    /// the change could not reach the client, so nothing was changed.
    ResponseSent,
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ResponseSent => f.write_str(RESPONSE_SENT),
            Self::NoSession => f.write_str(NO_SESSION),
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

/// Why [`SessionHandle::cycle`] did not complete.
#[derive(Debug)]
#[non_exhaustive]
pub enum CycleError {
    /// The request has no session; nothing changed.
    NoSession,
    /// The response's headers have already left; nothing changed.
    ResponseSent,
    /// The session moved to its new `sid`, but the old one could not be revoked.
    Store(RevokeError),
}

impl fmt::Display for CycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSession => f.write_str(NO_SESSION),
            Self::ResponseSent => f.write_str(RESPONSE_SENT),
            Self::Store(_) => {
                f.write_str("the session moved to a new sid, but the old sid could not be revoked")
            }
        }
    }
}

impl std::error::Error for CycleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}
