//! Confidential, stateless sessions for axum, hyper and tonic.
//!
//! A tower [`SessionLayer`] opens the session token (an encrypted compact JWE, see
//! [`jwe_session_core`]) from an `HttpOnly` cookie or an `Authorization: Bearer` header,
//! validates it, checks revocation from memory, and hands the handler a
//! [`SessionHandle`]. On the way out it writes the token back only when something
//! changed: a login, a change, a renewal after `exp`, a re-seal under a newly active
//! key, or a logout.
//!
//! One dependency is enough: this crate re-exports what an app touches from
//! `jwe-session-core` (keys, claims, lifetimes, revocation, clocks, errors).
//!
//! ```sh
//! cargo add jwe-session                                  # axum extractors and the file store included
//! cargo add jwe-session --features redis                 # many instances: the Redis store too
//! cargo add jwe-session --features postgres              # many instances, on PostgreSQL
//! cargo add --dev jwe-session --features testing         # sessions for handler tests
//! ```
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
//!     format!("{} has roles {:?}", session.sub(), session.app.roles)
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
//! A complete app (keys from the environment, logout, logout everywhere, a development
//! switch) with its handler tests is `examples/axum.rs` in this crate:
//! `cargo run -p jwe-session --example axum`. Handler tests mint sessions with the
//! `jwe_session::testing` helpers (feature `testing`).
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
//! # Claims evolve
//!
//! The application's claims type is part of every token in flight: a deploy that changes
//! it meets tokens sealed by the previous version, and a token that does not fit the new
//! type is refused (the user is logged out). The rules:
//!
//! - **Adding a field**: make it `Option<_>` or give it `#[serde(default)]`; tokens
//!   without it open with the default, and carry it from their next re-seal on.
//! - **Removing a field**: fine, unless the type has `#[serde(deny_unknown_fields)]`
//!   (leave that off session claims).
//! - **Renaming**: `#[serde(alias = "old_name")]` on the new name.
//! - **Changing a field's type**: add a new field instead, and remove the old one once
//!   every token has been re-sealed (after the absolute lifetime, 7 days by default).
//! - **Adding an issuer** to a running app: [`SessionLayerBuilder::issuer`] with
//!   [`SessionLayerBuilder::accept_missing_issuer_until`], so tokens sealed without `iss`
//!   are taken and re-sealed with it until that date instead of all being refused.
//!
//! # What `update` does to the old token, and `cycle`
//!
//! [`SessionHandle::update`] writes a new token; the one the request carried stays valid
//! (with the old claims) until its `exp`. When a privilege is taken away, call
//! [`SessionHandle::cycle`] too: new `sid`, same claims, the old `sid` revoked.
//!
//! # Features
//!
//! - `axum` (default): the `Session<T>` extractor (401 without a
//!   session), `Option<Session<T>>`, `Result<Session<T>, SessionRejection>`, and
//!   [`SessionHandle<T>`] as an extractor. On by default because most users serve axum;
//!   it costs only `axum-core` (which tonic and axum apps already build). Plain hyper and
//!   tonic services can turn it off with `default-features = false` and take the
//!   [`SessionHandle<T>`] from the request's extensions (then
//!   [`SessionHandle::load`] before reading a cookie session: the layer opens a cookie
//!   only when the session is first asked for).
//! - `metrics` (default): counters, gauges and a histogram through the `metrics` facade;
//!   see [the `metrics` module](mod@crate::metrics) for the names. No-ops until the app installs a
//!   recorder.
//! - `watch` (default): `KeyRingHandle::watch_file` reloads a key file when it changes.
//! - `file` (default): `jwe_session::file`, the durable embedded revocation store
//!   (`FileStore`): logouts survive restarts on one machine.
//! - `redis`: `jwe_session::redis`, the Redis revocation store for many instances (with
//!   `file` too, its queue can live in a file).
//! - `postgres`: `jwe_session::postgres`, the PostgreSQL revocation store for many
//!   instances, on the app's own `sqlx::PgPool` (with `file` too, its queue can live in a
//!   file).
//! - `testing`: `jwe_session::testing`, sessions minted for handler tests (with an
//!   example test using a `ManualClock`). For `[dev-dependencies]`.
//!
//! # Bearer clients and gRPC
//!
//! With [`Transport::Bearer`] (or [`Transport::Both`]) a new or renewed token comes back in
//! the `x-session-token` response header (gRPC: initial metadata of the same name); the
//! client sends it as `authorization: Bearer <token>` from then on.
//! [`client::BearerLayer`] does both for any tower client, tonic channels included.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod admin;
pub mod authjs;
mod builder;
pub mod client;
mod cookies;
pub mod dbsc;
mod devices;
pub mod dpop;
mod endpoints;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod future;
mod handle;
mod headers;
mod layer;
mod load;
pub mod metrics;
mod opened;
mod options;
mod origin;
mod renew;
mod respond;
mod service;
mod shared;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use admin::SessionAdmin;
pub use builder::{DangerousOptions, SessionLayerBuilder};
pub use dbsc::{DbscRefusal, DeviceBoundConfig};
pub use devices::{Device, DevicesError, EndDeviceError};
pub use dpop::{DpopConfig, DpopRefusal};
pub use error::ConfigError;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use extract::{RejectionReason, Session, SessionRejection};
pub use handle::{
    CycleError, IssuedToken, RecheckError, SessionHandle, StartError, TokenType, UpdateError,
    WatchError,
};
pub use options::{
    DeviceInfo, OverCap, RejectionFormat, Renew, Transport, DEFAULT_COOKIE_NAME,
    DEFAULT_TOKEN_CACHE, DEFAULT_TOKEN_HEADER,
};
// What an app touches from the core crate, so `jwe-session` is its one dependency: keys,
// claims and their lifetimes, clocks, the embedded store, what the layer's operations
// return. Everything else of the core (its errors in full, the revocation model a store
// implements, the token inspection tools) is in [`core`].
pub use future::ResponseFuture;
pub use jwe_session_core::{
    Audience, AuthJsClaims, AuthJsVersion, Claim, Claims, Clock, Confirmation, DpopError, Enc, Key,
    KeyError, KeyRing, KeyRingHandle, Lifetimes, ManualClock, MemoryStore, Opened, ProofKey,
    ProofKeyError, Recorded, RegistryError, RevocationStore, RevocationWatch, RevokeError, Revoked,
    SealError, SessionLifetimes, SessionRecord, SessionToken, SystemClock, UnixMicros, UnixTime,
    Validation, WatchEnd, DEFAULT_KEYS_ENV,
};
#[cfg(feature = "watch")]
#[cfg_attr(docsrs, doc(cfg(feature = "watch")))]
pub use jwe_session_core::{KeyFileWatchMode, KeyFileWatchOptions, KeyFileWatcher};
pub use layer::SessionLayer;
pub use service::SessionService;

/// The whole core crate, [`jwe-session-core`](jwe_session_core): what the root does not
/// re-export is here, for store implementors (the revocation model, [`core::BoxFuture`],
/// [`core::CheckError`]), for code that opens tokens itself ([`core::TokenOptions`],
/// [`core::OpenError`], [`core::inspect`]) and for matching every error in full.
///
/// ```
/// use jwe_session::core::{OpenError, TokenOptions};
/// use jwe_session::{Claims, KeyRing, Opened};
///
/// let ring = KeyRing::generate();
/// let opts = TokenOptions::new().with_purpose("app");
/// let token = ring.seal(&Claims::new(()), &opts)?;
/// let opened: Opened<Claims> = ring.open(token.as_str(), &opts)?;
/// assert_eq!(opened.kid(), ring.active().kid());
/// let other = TokenOptions::new().with_purpose("other");
/// assert!(matches!(
///     ring.open::<Claims>(token.as_str(), &other),
///     Err(OpenError::PurposeMismatch { .. })
/// ));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub mod core {
    pub use jwe_session_core::*;
}

/// The durable embedded revocation store: the [`jwe-session-file`](jwe_session_file)
/// crate, re-exported (feature `file`, on by default), so a durable app needs this one
/// dependency. [`file::FileStore`] is the store; [`file::deliver`] is what
/// `jwe-session revoke --file` uses.
#[cfg(feature = "file")]
#[cfg_attr(docsrs, doc(cfg(feature = "file")))]
pub use jwe_session_file as file;
/// The PostgreSQL revocation store for many instances: the
/// [`jwe-session-postgres`](jwe_session_postgres) crate, re-exported (feature `postgres`).
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use jwe_session_postgres as postgres;
/// The Redis revocation store for many instances: the
/// [`jwe-session-redis`](jwe_session_redis) crate, re-exported (feature `redis`).
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use jwe_session_redis as redis;
