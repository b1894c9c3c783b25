//! axum extractors.

use std::fmt;
use std::ops::Deref;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;
use jwe_session_core::Claims;

use crate::handle::SessionHandle;

/// The current session's claims; rejects with `401` when there is none.
///
/// Derefs to [`Claims<T>`], so `session.sub` and `session.app` read directly. Use
/// [`handle`](Self::handle) to change or end it, or `Option<Session<T>>` for pages that
/// work either way.
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

    /// The handle, to update or end the session.
    #[must_use]
    pub fn handle(&self) -> &SessionHandle<T> {
        &self.handle
    }
}

impl<T> Deref for Session<T> {
    type Target = Claims<T>;

    fn deref(&self) -> &Claims<T> {
        &self.claims
    }
}

/// Why [`Session<T>`] or [`SessionHandle<T>`] could not be extracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The route is not behind a `SessionLayer<T>` with this `T`: a bug in the app (500).
    MissingLayer,
    /// The request has no valid session (401).
    NoSession,
}

impl fmt::Display for SessionRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingLayer => {
                "Session<T> extractor used without SessionLayer<T> (same T) around the route"
            }
            Self::NoSession => "no valid session: log in first",
        })
    }
}

impl std::error::Error for SessionRejection {}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        let status = match self {
            Self::MissingLayer => StatusCode::INTERNAL_SERVER_ERROR,
            Self::NoSession => StatusCode::UNAUTHORIZED,
        };
        (status, self.to_string()).into_response()
    }
}

fn handle_of<T: Send + Sync + 'static>(
    parts: &Parts,
) -> Result<SessionHandle<T>, SessionRejection> {
    parts
        .extensions
        .get::<SessionHandle<T>>()
        .cloned()
        .ok_or(SessionRejection::MissingLayer)
}

impl<S: Send + Sync, T: Send + Sync + 'static> FromRequestParts<S> for SessionHandle<T> {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        handle_of(parts)
    }
}

impl<S: Send + Sync, T: Clone + Send + Sync + 'static> FromRequestParts<S> for Session<T> {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let handle = handle_of::<T>(parts)?;
        let claims = handle.claims().ok_or(SessionRejection::NoSession)?;
        Ok(Self { claims, handle })
    }
}

impl<S: Send + Sync, T: Clone + Send + Sync + 'static> OptionalFromRequestParts<S> for Session<T> {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        let handle = handle_of::<T>(parts)?;
        Ok(handle.claims().map(|claims| Self { claims, handle }))
    }
}
