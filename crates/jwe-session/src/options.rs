//! The layer's options that are not the builder: where tokens travel, how a missing
//! session is answered, what the renew hook may say, and the defaults.

use std::sync::Arc;

use jwe_session_core::{BoxFuture, Claims};

/// Where the layer looks for a token and where it writes one back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Transport {
    /// An `HttpOnly` cookie (browsers). The default.
    #[default]
    Cookie,
    /// `Authorization: Bearer <token>` in, the renewal header out (APIs, gRPC metadata).
    Bearer,
    /// Either: a bearer header wins over a cookie when both are sent.
    Both,
}

impl Transport {
    pub(crate) fn cookie(self) -> bool {
        matches!(self, Self::Cookie | Self::Both)
    }

    pub(crate) fn bearer(self) -> bool {
        matches!(self, Self::Bearer | Self::Both)
    }
}

/// How a request without a session is answered when a handler requires one (the
/// `Session<T>` extractor's rejection, feature `axum`).
///
/// Either way the status is `401`, and with the bearer transport the response carries
/// `WWW-Authenticate: Bearer` (RFC 6750 §3), with `error="invalid_token"` when the request
/// sent a token that was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RejectionFormat {
    /// `text/plain`: `no valid session: log in first`. The default.
    #[default]
    PlainText,
    /// `application/json`: `{"error":"no_session","message":"no valid session: log in first"}`.
    Json,
}

/// The default response header (and gRPC metadata key) that carries a new or renewed token
/// to bearer clients.
pub const DEFAULT_TOKEN_HEADER: &str = "x-session-token";

/// The default cookie name, before the `__Host-` prefix the layer adds by default: the
/// browser sees `__Host-session`.
pub const DEFAULT_COOKIE_NAME: &str = "session";

/// How many recently opened tokens a layer keeps by default
/// ([`SessionLayerBuilder::token_cache`](crate::SessionLayerBuilder::token_cache)).
pub const DEFAULT_TOKEN_CACHE: usize = 1024;

/// What a renew hook decides for a session being renewed after `exp` (or early, for a
/// claims refresh, or for a long-lived connection's
/// [`recheck`](crate::SessionHandle::recheck)).
#[derive(Debug)]
#[non_exhaustive]
pub enum Renew<T> {
    /// Renew with the claims as they are.
    Keep,
    /// Renew with these application claims instead (fresh roles from a database, say).
    Update(T),
    /// End the session (the account was banned, say): no session, cookie cleared.
    Refuse,
    /// The hook cannot decide now (its database does not answer): no renewal and no
    /// session for this request, but the cookie is kept, and the next request asks again.
    /// The fail-closed answer for the hook's own data, as the layer's for the revocation
    /// store: answering [`Keep`](Self::Keep) instead would let a user banned during the
    /// outage renew with their old claims.
    Unavailable,
}

pub(crate) type RenewHook<T> = Arc<dyn Fn(Claims<T>) -> BoxFuture<'static, Renew<T>> + Send + Sync>;
