//! Reading (and renewing) the session cookies of a Next.js app's Auth.js / NextAuth in a
//! Rust service: [`AuthJsLayer`] opens `authjs.session-token` (or
//! `__Secure-authjs.session-token`, whole or in chunks; v4: `next-auth.session-token`) with
//! the app's `AUTH_SECRET`, validates it with Auth.js's 15-second tolerance, applies this
//! project's revocation list, and hands the handler an [`AuthJsSession<T>`].
//!
//! ```
//! # #[cfg(feature = "axum")] {
//! use jwe_session::authjs::{AuthJsLayer, AuthJsSession};
//!
//! async fn me(session: AuthJsSession) -> String {
//!     format!("{} <{}>", session.sub(), session.app.email.as_deref().unwrap_or("?"))
//! }
//!
//! // AUTH_SECRET: the Next.js app's; several (newest first) while it rotates.
//! let layer = AuthJsLayer::<()>::v5(&["the-next-js-apps-AUTH_SECRET"]).build()?;
//! let app: axum::Router = axum::Router::new()
//!     .route("/api/me", axum::routing::get(me))
//!     .layer(layer);
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What the layer does
//!
//! - With the cookie's version (v5: Auth.js, `@auth/core`; v4: NextAuth) it reads the
//!   `__Secure-` name first, then the plain one; each has its own key (v5 salts the key
//!   with the cookie name). Chunks are joined in numeric order; a gap, or the whole cookie
//!   beside chunks, is refused ([`jwe_session_core::join_authjs_chunks`]).
//! - The token is opened as strictly as this project's own (the key decides the
//!   algorithm), `exp` is required and checked with [`AUTHJS_CLOCK_TOLERANCE`] (as
//!   Auth.js's `decode`), and `sub` is required.
//! - The revocation store's memory is asked, as for this project's sessions: a logout of
//!   the session (its `sid` claim when the app's `jwt` callback sets one, else its `jti`),
//!   a logout everywhere of its `sub` (sessions begun by the cut-off: `auth_time` when the
//!   token has it, else `iat`), an emergency cut-off.
//! - A refused cookie is never cleared and never rewritten: it belongs to the Next.js app.
//!   The request goes on without a session, and [`AuthJsSession`] answers `401`.
//! - Unsafe requests (`POST`, …) that a browser marks as cross-origin are refused with `403`
//!   before the handler, as by [`SessionLayer`](crate::SessionLayer): the cookie is an
//!   ambient credential. Trust the Next.js app's origin with
//!   [`trusted_origin`](AuthJsLayerBuilder::trusted_origin) if it calls this API from the
//!   browser.
//!
//! Read-only by default. [`renew`](AuthJsLayerBuilder::renew) writes a renewed cookie in
//! Auth.js's own format, chunks and attributes once a token is older than the update age,
//! so the Next.js app keeps reading it.
//!
//! # Revoking Auth.js sessions
//!
//! Auth.js gives every token a new `jti` and `iat` whenever it re-encodes the cookie (on
//! each session request of the Next.js app), so a revocation by `jti` ends one token, and
//! a cut-off by `iat` ends the tokens issued by then, not what Next.js issues after. For a
//! logout that holds, let the `jwt` callback keep a session id and a start from sign-in on:
//!
//! ```js
//! callbacks: {
//!   jwt({ token, user }) {
//!     if (user) { token.sid = crypto.randomUUID(); token.auth_time = Math.floor(Date.now() / 1000) }
//!     return token
//!   },
//! }
//! ```
//!
//! Then [`AuthJsSession::end`] (or `jwe-session revoke --sid`) ends that session and a
//! logout everywhere ends every session that signed in by its moment, whatever Next.js
//! re-encodes later.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use cookie::{Cookie, SameSite};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Request, Response};
use jwe_session_core::{
    is_authjs_cookie, join_authjs_chunks, random_id, split_authjs_token, AuthJsClaims,
    AuthJsVersion, Claim, Claims, Clock, KeyError, KeyRing, Lifetimes, MemoryStore, Recorded,
    Revocation, RevocationStore, RevokeError, SessionIds, SystemClock, TokenOptions, UnixTime,
    Validation, AUTHJS_CLOCK_TOLERANCE,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tower_layer::Layer;
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::origin::CrossOrigin;

pub use jwe_session_core::AUTHJS_CLOCK_TOLERANCE as CLOCK_TOLERANCE;

/// Auth.js's default session lifetime (its `session.maxAge`): 30 days.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How often a renewing layer re-issues a token by default (Auth.js's `updateAge`): once
/// it is a day old.
pub const DEFAULT_UPDATE_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Opens the Next.js app's Auth.js session cookie on the way in; optionally writes it
/// back renewed on the way out. See the [module docs](self).
pub struct AuthJsLayer<T = ()> {
    shared: Arc<Shared>,
    _claims: std::marker::PhantomData<fn() -> T>,
}

impl<T> Clone for AuthJsLayer<T> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            _claims: std::marker::PhantomData,
        }
    }
}

impl<T> fmt::Debug for AuthJsLayer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthJsLayer")
            .field("version", &self.shared.version)
            .field("renew", &self.shared.renew)
            .finish_non_exhaustive()
    }
}

/// One cookie name the layer reads, with the ring its tokens open under.
struct Name {
    name: &'static str,
    secure: bool,
    ring: KeyRing,
}

struct Shared {
    version: AuthJsVersion,
    /// The `__Secure-` name first.
    names: Vec<Name>,
    store: Arc<dyn RevocationStore>,
    clock: Arc<dyn Clock>,
    opts: TokenOptions,
    renew: Option<Renewal>,
    cross_origin: CrossOrigin,
    /// `exp` and `sub` required, Auth.js's tolerance: built once, not per request.
    validation: Validation,
}

/// When a renewing layer re-issues a token, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Renewal {
    max_age: Duration,
    update_age: Duration,
}

impl<T> AuthJsLayer<T> {
    /// A layer for Auth.js v5 (`@auth/core`, `next-auth@5`) cookies made with `secrets`
    /// (`AUTH_SECRET`; newest first while it rotates).
    pub fn v5<S: AsRef<[u8]>>(secrets: &[S]) -> AuthJsLayerBuilder<T> {
        AuthJsLayerBuilder::new(AuthJsVersion::V5, secrets)
    }

    /// A layer for NextAuth v4 (`next-auth@4`) cookies made with `secret`
    /// (`NEXTAUTH_SECRET`).
    pub fn v4(secret: impl AsRef<[u8]>) -> AuthJsLayerBuilder<T> {
        AuthJsLayerBuilder::new(AuthJsVersion::V4, &[secret])
    }

    /// The revocation store the layer checks (to revoke through, or to share with a
    /// [`SessionLayer`](crate::SessionLayer)).
    #[must_use]
    pub fn revocation_store(&self) -> &Arc<dyn RevocationStore> {
        &self.shared.store
    }
}

/// Builds an [`AuthJsLayer`].
pub struct AuthJsLayerBuilder<T> {
    version: AuthJsVersion,
    secrets: Vec<zeroize::Zeroizing<Vec<u8>>>,
    store: Option<Arc<dyn RevocationStore>>,
    clock: Arc<dyn Clock>,
    max_len: usize,
    renew: Option<Renewal>,
    cross_origin: CrossOrigin,
    bad_origin: Option<String>,
    _claims: std::marker::PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for AuthJsLayerBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthJsLayerBuilder")
            .field("version", &self.version)
            .field("secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}

/// Why an [`AuthJsLayer`] could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthJsConfigError {
    /// The secrets do not make a key ring (none, or an empty one).
    Keys(KeyError),
    /// A trusted origin is not `http(s)://host[:port]`.
    TrustedOrigin {
        /// What was given.
        origin: String,
    },
    /// A renewal whose update age is not shorter than its max age would never renew.
    UpdateAge,
}

impl fmt::Display for AuthJsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Keys(e) => write!(f, "Auth.js secrets: {e}"),
            Self::TrustedOrigin { origin } => {
                write!(f, "trusted origin {origin:?} is not http(s)://host[:port]")
            }
            Self::UpdateAge => {
                f.write_str("the renewal's update age must be shorter than its max age")
            }
        }
    }
}

impl std::error::Error for AuthJsConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Keys(e) => Some(e),
            _ => None,
        }
    }
}

impl<T> AuthJsLayerBuilder<T> {
    fn new<S: AsRef<[u8]>>(version: AuthJsVersion, secrets: &[S]) -> Self {
        Self {
            version,
            secrets: secrets
                .iter()
                .map(|s| zeroize::Zeroizing::new(s.as_ref().to_vec()))
                .collect(),
            store: None,
            clock: Arc::new(SystemClock),
            max_len: 32 * 1024,
            renew: None,
            cross_origin: CrossOrigin::default(),
            bad_origin: None,
            _claims: std::marker::PhantomData,
        }
    }

    /// The revocation store to check (default: a fresh [`MemoryStore`]). Pass the one the
    /// app's [`SessionLayer`](crate::SessionLayer) uses
    /// ([`SessionLayer::revocation_store`](crate::SessionLayer::revocation_store)), so a
    /// logout everywhere ends both kinds of session.
    #[must_use]
    pub fn revocation_store(mut self, store: Arc<dyn RevocationStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The clock (default: the system's); tests inject a
    /// [`ManualClock`](crate::ManualClock).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The most bytes the session cookies may hold together (default 32 KiB), checked
    /// before anything is decoded.
    #[must_use]
    pub fn max_len(mut self, max: usize) -> Self {
        self.max_len = max;
        self
    }

    /// Writes renewed cookies: once a token's `iat` is `update_age` old, the response
    /// carries the same claims with a new `iat`, `exp` (`max_age` on) and `jti`, sealed as
    /// Auth.js seals them and split into its chunks, with its attributes (`Path=/`,
    /// `HttpOnly`, `SameSite=Lax`, `Expires`, `Secure` for the `__Secure-` name), and
    /// clears the chunks the longer old cookie left. Use Auth.js's own `session.maxAge`
    /// and `updateAge` ([`DEFAULT_MAX_AGE`], [`DEFAULT_UPDATE_AGE`]). The store's
    /// authoritative check runs first, as for this project's renewals.
    #[must_use]
    pub fn renew(mut self, max_age: Duration, update_age: Duration) -> Self {
        self.renew = Some(Renewal {
            max_age,
            update_age,
        });
        self
    }

    /// Trusts `origin` (`https://app.example.com`) to make cross-origin unsafe requests
    /// (see [`SessionLayerBuilder::trusted_origin`](crate::SessionLayerBuilder::trusted_origin)).
    #[must_use]
    pub fn trusted_origin(mut self, origin: &str) -> Self {
        if self.cross_origin.trust(origin).is_none() {
            self.bad_origin.get_or_insert_with(|| origin.to_owned());
        }
        self
    }

    /// Builds the layer.
    ///
    /// # Errors
    /// [`AuthJsConfigError`].
    pub fn build(self) -> Result<AuthJsLayer<T>, AuthJsConfigError> {
        if let Some(origin) = self.bad_origin {
            return Err(AuthJsConfigError::TrustedOrigin { origin });
        }
        if self.renew.is_some_and(|r| r.update_age >= r.max_age) {
            return Err(AuthJsConfigError::UpdateAge);
        }
        let mut names = Vec::with_capacity(2);
        for secure in [true, false] {
            let name = self.version.cookie_name(secure);
            let ring = self
                .version
                .ring(&self.secrets, name)
                .map_err(AuthJsConfigError::Keys)?;
            names.push(Name { name, secure, ring });
        }
        Ok(AuthJsLayer {
            shared: Arc::new(Shared {
                version: self.version,
                names,
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                clock: self.clock,
                opts: TokenOptions::new().with_max_len(self.max_len),
                renew: self.renew,
                cross_origin: self.cross_origin,
                validation: Validation::new()
                    .leeway(AUTHJS_CLOCK_TOLERANCE)
                    .require(&[Claim::Exp, Claim::Sub]),
            }),
            _claims: std::marker::PhantomData,
        })
    }
}

impl<S, T> Layer<S> for AuthJsLayer<T> {
    type Service = AuthJsService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthJsService {
            inner,
            shared: Arc::clone(&self.shared),
            _claims: std::marker::PhantomData,
        }
    }
}

/// The service [`AuthJsLayer`] wraps around an inner service.
pub struct AuthJsService<S, T> {
    inner: S,
    shared: Arc<Shared>,
    _claims: std::marker::PhantomData<fn() -> T>,
}

impl<S: Clone, T> Clone for AuthJsService<S, T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
            _claims: std::marker::PhantomData,
        }
    }
}

impl<S: fmt::Debug, T> fmt::Debug for AuthJsService<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthJsService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// The Next.js app's session: its claims (registered ones through `Deref`, Auth.js's
/// `name`/`email`/`picture` and the app's extra claims in `app`), as the request carried
/// them. An axum extractor (feature `axum`): `401` without a session, `Option<AuthJsSession<T>>`
/// for routes that work either way.
pub struct AuthJsSession<T = ()> {
    claims: Arc<Claims<AuthJsClaims<T>>>,
    shared: Arc<Shared>,
    ended: Arc<AtomicBool>,
    cookie: &'static str,
}

impl<T> Clone for AuthJsSession<T> {
    fn clone(&self) -> Self {
        Self {
            claims: Arc::clone(&self.claims),
            shared: Arc::clone(&self.shared),
            ended: Arc::clone(&self.ended),
            cookie: self.cookie,
        }
    }
}

impl<T> fmt::Debug for AuthJsSession<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthJsSession")
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

impl<T> std::ops::Deref for AuthJsSession<T> {
    type Target = Claims<AuthJsClaims<T>>;

    fn deref(&self) -> &Self::Target {
        &self.claims
    }
}

impl<T> AuthJsSession<T> {
    /// The claims.
    #[must_use]
    pub fn claims(&self) -> &Claims<AuthJsClaims<T>> {
        &self.claims
    }

    /// The subject (`sub`, Auth.js's user id); never empty: the layer admits no session
    /// without one.
    #[must_use]
    pub fn sub(&self) -> &str {
        self.claims.sub.as_deref().unwrap_or_default()
    }

    /// The cookie the session came in (`__Secure-authjs.session-token`, say).
    #[must_use]
    pub fn cookie_name(&self) -> &'static str {
        self.cookie
    }

    /// The ids the revocation list knows the session by: its `sid` claim (when the
    /// Next.js app's `jwt` callback sets one), else its `jti`; its `sub`; when it began
    /// (`auth_time`, else `iat`).
    #[must_use]
    pub fn ids(&self) -> SessionIds<'_> {
        ids_of(&self.claims)
    }

    /// Revokes this session here and (with a shared store) everywhere: its `sid`, else its
    /// `jti` (see the [module docs](self) for why a `sid` is the one that holds). A
    /// renewing layer writes no renewed cookie for it.
    ///
    /// # Errors
    /// [`RevokeError::Invalid`] for a token with neither `sid` nor `jti`; otherwise what
    /// the store answers ([`RevokeError`]): nothing was recorded.
    pub async fn end(&self) -> Result<Recorded, RevokeError> {
        let ids = self.ids();
        let now = self.shared.clock.now();
        let id = ids.sid.unwrap_or_default().to_owned();
        let revocation = Revocation::session(id, None, now, &self.shared.lifetimes());
        // A token with neither `sid` nor `jti` has nothing to revoke by: refused typed.
        revocation.check()?;
        let recorded = self.shared.store.revoke(revocation, now).await?;
        self.ended.store(true, Ordering::Relaxed);
        Ok(recorded)
    }
}

impl Shared {
    /// Lifetimes that keep a revocation as long as an Auth.js token can live: its
    /// `maxAge` (the renewal's, else Auth.js's default), plus the tolerance.
    fn lifetimes(&self) -> Lifetimes {
        let max = self.renew.map_or(DEFAULT_MAX_AGE, |r| r.max_age) + AUTHJS_CLOCK_TOLERANCE;
        Lifetimes::new(max, max, max)
    }
}

/// The ids of an Auth.js token: `sid` else `jti`.
fn ids_of<T>(claims: &Claims<T>) -> SessionIds<'_> {
    let mut ids = SessionIds::from(claims);
    if ids.sid.is_none() {
        ids.sid = claims.jti.as_deref();
    }
    ids
}

/// What the request carried under one of the layer's names.
struct Carried {
    /// Index into `Shared::names`.
    name: usize,
    /// The names of the cookies the request sent for it (the whole one, chunks).
    sent: Vec<String>,
}

impl Shared {
    /// Reads, joins, opens and validates the request's Auth.js cookie: the first of the
    /// layer's names (the `__Secure-` one first) that the request carries decides. `None`
    /// for no cookie and for a refused one alike (each refusal is logged at `debug`).
    fn read<T: DeserializeOwned>(
        &self,
        headers: &HeaderMap,
        now: UnixTime,
    ) -> Option<(Claims<AuthJsClaims<T>>, Carried)> {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for value in headers.get_all(COOKIE) {
            for (name, value) in crate::cookies::pairs(value.as_bytes()) {
                // Cookie names and values that are not UTF-8 are not Auth.js's.
                if let (Ok(n), Ok(v)) = (std::str::from_utf8(name), std::str::from_utf8(value)) {
                    pairs.push((n, v));
                }
            }
        }
        for (index, n) in self.names.iter().enumerate() {
            let ours = |c: &&(&str, &str)| is_authjs_cookie(c.0, n.name) && !c.1.is_empty();
            if !pairs.iter().any(|c| ours(&c)) {
                continue;
            }
            let token = match join_authjs_chunks(pairs.iter().copied(), n.name, self.opts.max_len())
            {
                Ok(Some(token)) => token,
                Ok(None) => continue,
                Err(e) => {
                    tracing::debug!(cookie = n.name, reason = %e, "Auth.js session cookie refused");
                    return None;
                }
            };
            let opened = match n.ring.open::<Claims<AuthJsClaims<T>>>(&token, &self.opts) {
                Ok(opened) => opened.into_payload(),
                Err(e) => {
                    tracing::debug!(cookie = n.name, reason = %e, "Auth.js session cookie refused");
                    return None;
                }
            };
            if let Err(e) = self.validation.validate_at(&opened, now) {
                tracing::debug!(cookie = n.name, reason = %e, "Auth.js session refused");
                return None;
            }
            if opened.sub.as_deref().is_none_or(str::is_empty) {
                return None;
            }
            if let Some(why) = self.store.check(ids_of(&opened), now) {
                tracing::debug!(cookie = n.name, reason = ?why, "Auth.js session revoked");
                return None;
            }
            let sent = pairs
                .iter()
                .filter(|c| ours(c))
                .map(|c| c.0.to_owned())
                .collect();
            return Some((opened, Carried { name: index, sent }));
        }
        None
    }

    /// Whether a session read at `now` is renewed in this response.
    fn renewal_due<T>(&self, claims: &Claims<T>, now: UnixTime) -> bool {
        self.renew.is_some_and(|r| {
            claims
                .iat
                .is_none_or(|iat| now >= iat.saturating_add(r.update_age))
        })
    }

    /// The `Set-Cookie` headers of a renewed token: its chunks as Auth.js writes them, and
    /// a clearing header for every cookie the request sent that the new ones do not
    /// replace.
    fn renewed_cookies<T: Serialize + Clone>(
        &self,
        claims: &Claims<AuthJsClaims<T>>,
        carried: &Carried,
        now: UnixTime,
    ) -> Option<Vec<HeaderValue>> {
        let r = self.renew?;
        let n = &self.names[carried.name];
        let mut renewed = claims.clone();
        let exp = now.saturating_add(r.max_age);
        renewed.iat = Some(now);
        renewed.exp = Some(exp);
        // Auth.js's are UUIDs; any fresh 128-bit id serves (nothing parses it).
        renewed.jti = Some(random_id());
        let token = match n.ring.seal_at(&renewed, &self.opts, now) {
            Ok(token) => token,
            Err(e) => {
                tracing::warn!(cookie = n.name, error = %e, "Auth.js session not renewed");
                return None;
            }
        };
        let expires = cookie::time::OffsetDateTime::from_unix_timestamp(
            i64::try_from(exp.as_secs()).unwrap_or(i64::MAX),
        )
        .ok();
        let mut out = Vec::new();
        let parts = split_authjs_token(token.as_str(), n.name, self.version);
        for (name, value) in &parts {
            let mut c = attributes(Cookie::new(name.clone(), (*value).to_owned()), n.secure);
            if let Some(at) = expires {
                c.set_expires(at);
            }
            out.push(HeaderValue::try_from(c.to_string()).ok()?);
        }
        for stale in carried
            .sent
            .iter()
            .filter(|s| parts.iter().all(|p| &p.0 != *s))
        {
            let mut c = attributes(Cookie::new(stale.clone(), ""), n.secure);
            c.set_max_age(cookie::time::Duration::ZERO);
            out.push(HeaderValue::try_from(c.to_string()).ok()?);
        }
        Some(out)
    }
}

/// Auth.js's session cookie attributes.
fn attributes(mut c: Cookie<'static>, secure: bool) -> Cookie<'static> {
    c.set_path("/");
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_secure(secure);
    c
}

/// What the layer leaves in the request's extensions: the session, if there is one. Its
/// presence says the layer ran (the extractor's `500` otherwise).
struct Slot<T>(Option<AuthJsSession<T>>);

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<S, T, ReqB, ResB> Service<Request<ReqB>> for AuthJsService<S, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqB: Send + 'static,
    ResB: Default + Send + 'static,
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<ResB, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        if let Err(refusal) = self.shared.cross_origin.check(&req) {
            let res = crate::origin::forbidden(refusal, &req);
            return ResponseFuture::ready(res);
        }
        let shared = Arc::clone(&self.shared);
        // The inner service that was polled ready is the one to call; leave a clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::new(Box::pin(async move {
            let now = shared.clock.now();
            let (session, renewal) = match shared.read::<T>(req.headers(), now) {
                None => (None, None),
                Some((claims, carried)) => {
                    let cookie = shared.names[carried.name].name;
                    let mut renewal = None;
                    let mut admit = true;
                    if shared.renewal_due(&claims, now) {
                        // A renewal extends the session: the store itself is asked, as for
                        // this project's own renewals.
                        match shared.store.check_authoritative(ids_of(&claims), now).await {
                            Ok(None) => renewal = Some(carried),
                            Ok(Some(why)) => {
                                tracing::debug!(reason = ?why, "Auth.js session revoked");
                                admit = false;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "Auth.js session not renewed: the revocation store did not answer");
                            }
                        }
                    }
                    let session = admit.then(|| AuthJsSession {
                        cookie,
                        claims: Arc::new(claims),
                        shared: Arc::clone(&shared),
                        ended: Arc::new(AtomicBool::new(false)),
                    });
                    (session, renewal)
                }
            };
            req.extensions_mut().insert(Slot(session.clone()));
            let mut res = inner.call(req).await?;
            if let (Some(session), Some(carried)) = (session, renewal) {
                if !session.ended.load(Ordering::Relaxed) {
                    if let Some(values) = shared.renewed_cookies(&session.claims, &carried, now) {
                        for v in values {
                            res.headers_mut().append(SET_COOKIE, v);
                        }
                        crate::respond::no_store(res.headers_mut());
                    }
                }
            }
            Ok(res)
        }))
    }
}

#[cfg(feature = "axum")]
mod extract {
    use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
    use http::request::Parts;

    use super::{AuthJsSession, Slot};
    use crate::extract::SessionRejection;

    fn slot<T: Send + Sync + 'static>(
        parts: &Parts,
    ) -> Result<Option<AuthJsSession<T>>, SessionRejection> {
        match parts.extensions.get::<Slot<T>>() {
            Some(slot) => Ok(slot.0.clone()),
            None => {
                tracing::error!(
                    claims = std::any::type_name::<T>(),
                    "an AuthJsSession extractor ran without an AuthJsLayer for these claims around the route; answering 500"
                );
                Err(SessionRejection::MISSING_LAYER)
            }
        }
    }

    impl<S: Send + Sync, T: Send + Sync + 'static> FromRequestParts<S> for AuthJsSession<T> {
        type Rejection = SessionRejection;

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
            slot::<T>(parts)?.ok_or(SessionRejection::NO_SESSION)
        }
    }

    impl<S: Send + Sync, T: Send + Sync + 'static> OptionalFromRequestParts<S> for AuthJsSession<T> {
        type Rejection = SessionRejection;

        async fn from_request_parts(
            parts: &mut Parts,
            _: &S,
        ) -> Result<Option<Self>, Self::Rejection> {
            slot::<T>(parts)
        }
    }
}
