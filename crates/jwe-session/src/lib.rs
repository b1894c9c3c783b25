//! Confidential, stateless sessions for axum, hyper and tonic.
//!
//! A tower [`SessionLayer`] opens the session token (an encrypted compact JWE, see
//! [`jwe_session_core`]) from an `HttpOnly` cookie or an `Authorization: Bearer` header,
//! validates it, checks revocation from memory, and hands the handler a
//! [`SessionHandle`]. On the way out it writes the token back only when something
//! changed: a login, a change, a renewal after `exp`, a re-seal under a newly active
//! key, or a logout.
//!
//! # Quick start (axum)
//!
//! ```
//! # #[cfg(feature = "axum")] {
//! use jwe_session::{KeyRing, Session, SessionHandle, SessionLayer};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Clone, Serialize, Deserialize)]
//! struct User { roles: Vec<String> }
//!
//! async fn login(handle: SessionHandle<User>) -> &'static str {
//!     match handle.start("alice", User { roles: vec!["admin".into()] }) {
//!         Ok(()) => "welcome",
//!         Err(_) => "claims too large", // answer it as you see fit (413, say)
//!     }
//! }
//!
//! async fn me(session: Session<User>) -> String {
//!     format!("{} has roles {:?}", session.sub.as_deref().unwrap_or("?"), session.app.roles)
//! }
//!
//! let layer = SessionLayer::<User>::builder(KeyRing::generate()).build()?;
//! let app: axum::Router = axum::Router::new()
//!     .route("/login", axum::routing::post(login))
//!     .route("/me", axum::routing::get(me))
//!     .layer(layer);
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What happens to a request
//!
//! 0. With the cookie transport, an unsafe request (not `GET`/`HEAD`/`OPTIONS`) that a
//!    browser marks as cross-origin (`Sec-Fetch-Site`, else `Origin` against `Host`) is
//!    answered `403` before anything else: no handler, no `Set-Cookie`. See
//!    [`SessionLayerBuilder::trusted_origin`].
//! 1. The token is taken from the bearer header or the cookie (reassembling chunks).
//! 2. It is opened and validated. A malformed, tampered, unknown-kid, expired-beyond-renewal
//!    or revoked token never reaches the handler as a session and never causes a 500: the
//!    request goes on without a session, the response clears the cookie, and a `debug`
//!    `tracing` event records why (never the token or claims).
//! 3. Before `exp` the token is trusted after a memory-only revocation check. Past `exp`
//!    but within the idle window and absolute lifetime it is renewed: the store's
//!    authoritative check, then your [`on_renew`](SessionLayerBuilder::on_renew) hook,
//!    then a new token with the same `sid` and `auth_time`.
//! 4. A token sealed under a key that is no longer active is re-sealed under the active
//!    one in the same response. Should a renewal or re-seal not fit any more, the
//!    request's token stays (a warning is logged): a valid session never becomes a 500.
//! 5. Every response that writes a session cookie or token carries
//!    `Cache-Control: no-store`, unless the handler chose `no-store` or `private`.
//!
//! [`SessionHandle::start`] and [`SessionHandle::update`] check the size of the sealed
//! token up front and return a typed error ([`StartError::TooLarge`]) while the handler
//! can still answer it.
//!
//! # Features
//!
//! - `axum`: the [`Session<T>`] extractor (401 without a session), `Option<Session<T>>`,
//!   and [`SessionHandle<T>`] as an extractor.
//!
//! Without it, take the [`SessionHandle<T>`] from the request's extensions; that is how
//! plain hyper and tonic services use the layer.
//!
//! # Bearer clients and gRPC
//!
//! With [`Transport::Bearer`] (or [`Transport::Both`]) a new or renewed token comes back in
//! the `x-session-token` response header (gRPC: initial metadata of the same name); the
//! client sends it as `authorization: Bearer <token>` from then on.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod cookies;
#[cfg(feature = "axum")]
mod extract;
mod handle;
mod origin;
mod service;

pub use config::{
    ConfigError, DangerousOptions, Renew, SessionLayerBuilder, Transport, DEFAULT_COOKIE_NAME,
    DEFAULT_TOKEN_HEADER,
};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use extract::{Session, SessionRejection};
pub use handle::{NoSession, SessionHandle, StartError, UpdateError};
pub use jwe_session_core::{
    Claims, KeyRing, KeyRingHandle, Lifetimes, ManualClock, MemoryStore, RevocationStore, UnixTime,
};
pub use service::{ResponseFuture, SessionLayer, SessionService};
