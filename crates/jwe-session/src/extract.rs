//! axum extractors.

use std::fmt;
use std::ops::Deref;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use jwe_session_core::Claims;

use crate::handle::SessionHandle;
use crate::options::RejectionFormat;

/// The current session's claims; rejects with `401` when there is none.
///
/// `session.sub()` is the subject as a `&str` (the layer admits no session without one);
/// the other claims read through `Deref` to [`Claims<T>`]: `session.app`, `session.sid`,
/// `session.exp`. Use [`handle`](Self::handle) to change or end it, `Option<Session<T>>`
/// for pages that work either way, and `Result<Session<T>, SessionRejection>` to answer a
/// missing session yourself:
///
/// ```
/// use axum::response::{IntoResponse, Redirect, Response};
/// use jwe_session::{Session, SessionRejection};
///
/// async fn account(session: Result<Session<()>, SessionRejection>) -> Response {
///     match session {
///         Ok(session) => format!("hello {}", session.sub()).into_response(),
///         // Browsers go to the login page; the rejection's own response is a 401.
///         Err(r) if r.is_no_session() => Redirect::to("/login").into_response(),
///         Err(r) => r.into_response(),
///     }
/// }
/// # let _ = axum::Router::<()>::new().route("/account", axum::routing::get(account));
/// ```
pub struct Session<T> {
    claims: Claims<T>,
    handle: SessionHandle<T>,
}

impl<T> fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

impl<T> Session<T> {
    /// The claims.
    #[must_use]
    pub fn claims(&self) -> &Claims<T> {
        &self.claims
    }

    /// The subject (`sub`): whose session this is. Never empty: the layer admits no
    /// session without one. (`session.sub`, through `Deref`, is the claim itself, an
    /// `Option<String>`.)
    #[must_use]
    pub fn sub(&self) -> &str {
        self.claims.sub.as_deref().unwrap_or_default()
    }

    /// The session id (`sid`): what [`SessionHandle::end`] revokes.
    #[must_use]
    pub fn sid(&self) -> &str {
        self.claims.sid.as_deref().unwrap_or_default()
    }

    /// The handle, to update or end the session.
    #[must_use]
    pub fn handle(&self) -> &SessionHandle<T> {
        &self.handle
    }

    /// Watches this session: the future completes when it is revoked (logout, logout
    /// everywhere, an emergency cut-off, here or on another instance through a shared
    /// store), or when a claims refresh of its subject covers it
    /// ([`WatchEnd::Refreshed`](crate::WatchEnd::Refreshed): run
    /// [`SessionHandle::recheck`] and watch again, or close), and at once if either is
    /// in force already. For long-lived connections: a WebSocket handler selects on it and
    /// closes with its own code.
    ///
    /// ```
    /// # async fn stream(session: jwe_session::Session<()>) -> Result<(), jwe_session::WatchError> {
    /// use jwe_session::WatchEnd;
    /// let mut watch = session.watch()?;
    /// loop {
    ///     tokio::select! {
    ///         end = &mut watch => match end {
    ///             // The renew hook runs again; a ban closes the connection.
    ///             WatchEnd::Refreshed { .. } if session.handle().recheck().await.is_ok() => {
    ///                 watch = session.handle().watch()?;
    ///             }
    ///             _ => return Ok(()), // close the connection
    ///         },
    ///         () = serve(&session) => return Ok(()),
    ///     }
    /// }
    /// # }
    /// # async fn serve(_: &jwe_session::Session<()>) {}
    /// ```
    ///
    /// # Errors
    /// [`WatchError::Unsupported`](crate::WatchError::Unsupported) from a store that
    /// cannot watch (every store of this project can).
    pub fn watch(&self) -> Result<crate::RevocationWatch, crate::WatchError> {
        let shared = &self.handle.shared;
        Ok(shared.store.watch(
            jwe_session_core::SessionIds::from(&self.claims),
            shared.clock.now(),
        )?)
    }

    /// The claims, owned.
    #[must_use]
    pub fn into_claims(self) -> Claims<T> {
        self.claims
    }

    fn new(claims: Claims<T>, handle: SessionHandle<T>) -> Self {
        Self { claims, handle }
    }
}

impl<T> Deref for Session<T> {
    type Target = Claims<T>;

    fn deref(&self) -> &Claims<T> {
        &self.claims
    }
}

/// Why [`Session<T>`] or [`SessionHandle<T>`] could not be extracted.
///
/// As a response: `401` for [`RejectionReason::NoSession`], in the layer's
/// [`RejectionFormat`], with `WWW-Authenticate: Bearer` on the bearer transport; `500`
/// for [`RejectionReason::MissingLayer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRejection {
    reason: RejectionReason,
    format: RejectionFormat,
    /// `WWW-Authenticate` for the bearer transport.
    challenge: Option<&'static str>,
}

/// What a [`SessionRejection`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectionReason {
    /// The route is not behind a `SessionLayer<T>` with this `T`: a bug in the app (500).
    MissingLayer,
    /// The request has no valid session (401).
    NoSession,
}

impl SessionRejection {
    /// What the rejection is about.
    #[must_use]
    pub fn reason(&self) -> RejectionReason {
        self.reason
    }

    /// Whether the request simply has no valid session (as opposed to an app bug).
    #[must_use]
    pub fn is_no_session(&self) -> bool {
        self.reason == RejectionReason::NoSession
    }

    /// The status the rejection answers with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self.reason {
            RejectionReason::MissingLayer => StatusCode::INTERNAL_SERVER_ERROR,
            RejectionReason::NoSession => StatusCode::UNAUTHORIZED,
        }
    }

    /// No session, as plain text without a challenge (the Auth.js layer's cookies).
    pub(crate) const NO_SESSION: Self = Self {
        reason: RejectionReason::NoSession,
        format: RejectionFormat::PlainText,
        challenge: None,
    };

    pub(crate) const MISSING_LAYER: Self = Self {
        reason: RejectionReason::MissingLayer,
        format: RejectionFormat::PlainText,
        challenge: None,
    };

    fn no_session<T>(handle: &SessionHandle<T>) -> Self {
        let refused = handle.lock().refused;
        // With DPoP the client learns it may (or must) use it, and which algorithms.
        let dpop = handle.shared.dpop.is_some();
        let challenge = handle
            .shared
            .transport
            .bearer()
            .then_some(match (refused, dpop) {
                (true, false) => r#"Bearer error="invalid_token""#,
                (false, false) => "Bearer",
                (true, true) => r#"DPoP algs="ES256", Bearer error="invalid_token""#,
                (false, true) => r#"DPoP algs="ES256", Bearer"#,
            });
        Self {
            reason: RejectionReason::NoSession,
            format: handle.shared.rejection,
            challenge,
        }
    }
}

impl fmt::Display for SessionRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.reason {
            RejectionReason::MissingLayer => {
                "Session<T> extractor used without SessionLayer<T> (same T) around the route"
            }
            RejectionReason::NoSession => "no valid session: log in first",
        })
    }
}

impl std::error::Error for SessionRejection {}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let mut res = match self.format {
            RejectionFormat::PlainText => message.into_response(),
            RejectionFormat::Json => {
                let code = match self.reason {
                    RejectionReason::MissingLayer => "server_error",
                    RejectionReason::NoSession => "no_session",
                };
                let mut res =
                    format!(r#"{{"error":"{code}","message":"{message}"}}"#).into_response();
                res.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                res
            }
        };
        *res.status_mut() = self.status();
        if let Some(challenge) = self.challenge {
            res.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        res
    }
}

fn handle_of<T: Send + Sync + 'static>(
    parts: &Parts,
) -> Result<SessionHandle<T>, SessionRejection> {
    match parts.extensions.get::<SessionHandle<T>>() {
        Some(handle) => Ok(handle.clone()),
        None => {
            missing_layer::<T>();
            Err(SessionRejection::MISSING_LAYER)
        }
    }
}

/// Says once per process, at ERROR, what a 500 from the extractor means: a mistake in
/// the app's wiring, which every request on the route would repeat.
fn missing_layer<T>() {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::error!(
            claims = std::any::type_name::<T>(),
            "a Session or SessionHandle extractor ran without a SessionLayer for these \
             claims: add .layer(SessionLayer::<T>::builder(ring).build()?) to the router, \
             outside the routes that extract it, with the same claims type T; answering 500 \
             (said once)"
        );
    }
}

impl<S: Send + Sync, T: Send + Sync + 'static> FromRequestParts<S> for SessionHandle<T> {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let handle = handle_of(parts)?;
        handle.load().await;
        Ok(handle)
    }
}

impl<S: Send + Sync, T: Clone + Send + Sync + 'static> FromRequestParts<S> for Session<T> {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let handle = handle_of::<T>(parts)?;
        handle.load().await;
        match handle.claims() {
            Some(claims) => Ok(Self::new(claims, handle)),
            None => Err(SessionRejection::no_session(&handle)),
        }
    }
}

impl<S: Send + Sync, T: Clone + Send + Sync + 'static> OptionalFromRequestParts<S> for Session<T> {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        let handle = handle_of::<T>(parts)?;
        handle.load().await;
        Ok(handle.claims().map(|claims| Self::new(claims, handle)))
    }
}
