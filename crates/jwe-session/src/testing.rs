//! Sessions for handler tests (feature `testing`): mint a session cookie or bearer token
//! for given claims from the layer under test, and send it with a request, without a
//! login round trip.
//!
//! Enable it for tests only:
//!
//! ```toml
//! [dev-dependencies]
//! jwe-session = { version = "0.1", features = ["testing"] }
//! ```
//!
//! A handler test, with a [`ManualClock`](crate::ManualClock) moved past `exp` (the
//! session is renewed: a new cookie comes back) and past the absolute lifetime (`401`):
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//!
//! use axum::{body::Body, http::{header, Request, StatusCode}, routing::get, Router};
//! use jwe_session::testing::request_with_session;
//! use jwe_session::{KeyRing, ManualClock, Session, SessionLayer, UnixTime};
//! use tower::ServiceExt; // oneshot
//!
//! #[derive(Clone, serde::Serialize, serde::Deserialize)]
//! struct User { admin: bool }
//!
//! async fn me(session: Session<User>) -> String {
//!     format!("{} admin={}", session.sub(), session.app.admin)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let clock = Arc::new(ManualClock::new(UnixTime::from_secs(1_800_000_000)));
//! let layer = SessionLayer::<User>::builder(KeyRing::generate())
//!     .clock(clock.clone())
//!     .build()?;
//! let app = Router::new().route("/me", get(me)).layer(layer.clone());
//! let alice = layer.test_session("alice", User { admin: true })?;
//! let get_me = || Request::get("/me").body(Body::empty()).map(|r| request_with_session(r, &alice));
//!
//! let res = app.clone().oneshot(get_me()?).await?;
//! assert_eq!(res.status(), StatusCode::OK);
//! assert!(res.headers().get(header::SET_COOKIE).is_none()); // nothing changed
//!
//! clock.advance(Duration::from_secs(16 * 60)); // past exp (15 min): renewed
//! let res = app.clone().oneshot(get_me()?).await?;
//! assert_eq!(res.status(), StatusCode::OK);
//! assert!(res.headers().get(header::SET_COOKIE).is_some());
//!
//! clock.advance(Duration::from_secs(7 * 24 * 3600)); // past the absolute lifetime
//! let res = app.oneshot(get_me()?).await?;
//! assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
//! # Ok(()) }
//! ```

use std::fmt;

use http::header::{HeaderName, AUTHORIZATION, COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Request};
use jwe_session_core::SessionLifetimes;
use serde::Serialize;

use crate::{SessionLayer, StartError};

/// A session minted for a test: its token, and how to send it.
///
/// `Debug` shows no token.
#[derive(Clone)]
pub struct TestSession {
    token: String,
    /// The `Cookie` header's value; `None` for a bearer-only layer.
    cookie: Option<String>,
}

impl fmt::Debug for TestSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestSession")
            .field("token_len", &self.token.len())
            .field("cookie", &self.cookie.is_some())
            .finish()
    }
}

impl TestSession {
    /// The sealed token.
    #[must_use]
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The `Cookie` request header's value that carries it (chunked as the layer would),
    /// or `None` for a bearer-only layer.
    #[must_use]
    pub fn cookie_header(&self) -> Option<&str> {
        self.cookie.as_deref()
    }

    /// The `Authorization` header's value: `Bearer <token>`.
    #[must_use]
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// Adds the session to a request: as a cookie when the layer reads cookies, else as
    /// a bearer token. Replaces a `Cookie` or `Authorization` header the request had.
    pub fn attach<B>(&self, req: Request<B>) -> Request<B> {
        match &self.cookie {
            Some(cookie) => with_header(req, COOKIE, cookie),
            None => self.attach_bearer(req),
        }
    }

    /// Adds the session to a request as a bearer token, whatever the transport.
    pub fn attach_bearer<B>(&self, req: Request<B>) -> Request<B> {
        with_header(req, AUTHORIZATION, &self.authorization())
    }
}

/// `req` with `name: value`. The values here are our own tokens and cookie pairs
/// (base64url, dots, `~`, `=`, `; `), always valid header values; should that ever change,
/// the request goes without the header (and the test sees a `401`), as the layer drops a
/// cookie it cannot write rather than panic.
fn with_header<B>(mut req: Request<B>, name: HeaderName, value: &str) -> Request<B> {
    if let Ok(v) = HeaderValue::try_from(value) {
        req.headers_mut().insert(name, v);
    }
    req
}

/// `req` with the session attached ([`TestSession::attach`]).
pub fn request_with_session<B>(req: Request<B>, session: &TestSession) -> Request<B> {
    session.attach(req)
}

impl<T: Serialize> SessionLayer<T> {
    /// Mints a session for `sub` with the application's claims `app`, exactly as
    /// [`SessionHandle::start`](crate::SessionHandle::start) in a login handler would
    /// (issuer, audience, lifetimes, purpose and key of this layer, at its clock), and
    /// returns it ready to send. Feature `testing`.
    ///
    /// # Errors
    /// As [`SessionHandle::start`](crate::SessionHandle::start): the claims do not fit
    /// or do not serialize.
    pub fn test_session(&self, sub: impl Into<String>, app: T) -> Result<TestSession, StartError> {
        self.mint(sub.into(), app, None)
    }

    /// As [`test_session`](Self::test_session), with the session's own lifetimes (see
    /// [`SessionHandle::start_with`](crate::SessionHandle::start_with)).
    ///
    /// # Errors
    /// As [`SessionHandle::start_with`](crate::SessionHandle::start_with).
    pub fn test_session_with(
        &self,
        sub: impl Into<String>,
        app: T,
        lifetimes: SessionLifetimes,
    ) -> Result<TestSession, StartError> {
        self.mint(sub.into(), app, Some(lifetimes))
    }

    fn mint(
        &self,
        sub: String,
        app: T,
        lifetimes: Option<SessionLifetimes>,
    ) -> Result<TestSession, StartError> {
        let shared = &self.shared;
        let moment = shared.moments.next(&*shared.clock);
        let claims = shared.new_session(sub, app, lifetimes, moment)?;
        let token = shared
            .ring
            .load()
            .seal_at(&claims, &shared.opts, moment.secs())?;
        let token = token.into_string();
        // The cookies a login response would set, sent back as a browser would.
        let cookie = shared.transport.cookie().then(|| {
            let mut set = HeaderMap::new();
            shared.cookie.write(&mut set, &token, None, 0);
            let pairs: Vec<&str> = set
                .get_all(SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok()?.split(';').next())
                .collect();
            pairs.join("; ")
        });
        Ok(TestSession { token, cookie })
    }
}
