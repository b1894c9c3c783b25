//! The demo app: a login form, a page showing the session's claims, logout, logout
//! everywhere, and logging out the other devices.
//!
//! HTTP surface (scripts and tests rely on it):
//! - `GET /`: HTML with a login form, or the session's claims and logout buttons;
//! - `POST /login` (form `username`, `password`, optional `notes`): any non-empty user
//!   name with password `demo` starts a session, `303` to `/`; `401` otherwise; `413` when
//!   the notes make the session too large for cookies (an earlier session stays);
//! - `POST /api/login` (form `username`, `password`, optional `notes`): for API clients,
//!   `200` `application/json` `{"access_token": "<compact JWE>", "token_type": "DPoP" |
//!   "Bearer", "expires_in": <seconds>}`; `DPoP` (the token bound to the client's key) when
//!   the request carried a valid DPoP proof for `POST` and this URL, `Bearer` without one;
//!   `400` `{"error":"invalid_dpop_proof",…}` and no token for a proof that does not
//!   verify; `401` for a wrong password;
//! - every route takes the session from the cookie, from `Authorization: Bearer <token>`
//!   (unbound tokens), or from `Authorization: DPoP <token>` with a `DPoP` proof whose
//!   `htu` is `http://` (`https://` over TLS) plus the request's `Host` and path; a bad
//!   proof, a bound token sent as `Bearer` or with another key's proof is `401` with
//!   `WWW-Authenticate: DPoP algs="ES256", error=…`;
//! - `GET /me`: `200` with the claims as JSON, or `401`;
//! - `POST /logout`: ends this session (revokes its `sid`), `303` to `/`;
//! - `POST /logout-everywhere`: revokes every session of this user, `303` to `/`;
//! - `POST /logout-others`: revokes every other session of this user and keeps this one
//!   (under a new `sid`), `303` to `/`;
//! - `POST /roles` (form `username`, `roles`: comma-separated): a session holding the role
//!   `admin` (the user named `admin` gets it at login) sets that user's roles in the role
//!   table and refreshes their claims, so the user's next request (on any instance sharing
//!   the store) is renewed with the new roles; `303` to `/`, `400` for a bad form, `401`
//!   without a session, `403` without the `admin` role, `404` for a user who never logged
//!   in (the table holds only users who did, at most 10,000);
//! - `GET /ws`: a WebSocket, only with a session (`401` before the upgrade otherwise). It
//!   sends the user's `sub` and stays open; when the session is revoked (logout here or on
//!   another instance, logout everywhere, `jwe-session revoke`) the server closes it with
//!   code `4401`, reason `session revoked`. After a claims refresh of the user (`POST
//!   /roles`) it runs the renew hook again: `4401` `session refused` if the hook refuses
//!   (a ban), on with the new roles otherwise; `4401` `session expired` at the session's
//!   absolute lifetime; `1013` when the session cannot be checked (role table down);
//! - with device binding on (`DEMO_DBSC=1`, HTTPS): a login's response carries
//!   `Secure-Session-Registration`, and the session layer serves `POST
//!   /session/dbsc/register` and `POST /session/dbsc/refresh` (DBSC, see
//!   `jwe_session::dbsc`): the bound cookie lives `DEMO_DBSC_BOUND_SECONDS` (default 600)
//!   and only a refresh signed by the browser's key renews it;
//! - `GET /metrics`: the layer's metrics (`jwe_session_*`, see `jwe_session::metrics`) in
//!   Prometheus text format; `404` when the demo runs without a recorder.
//!
//! A logout that cannot be recorded answers `503` ("try again"). One the shared store did
//! not take yet but queued on this instance (Redis down) is a logout: it answers `303`, and
//! the store sends it on when Redis is back.
//!
//! State-changing requests from other sites (`Sec-Fetch-Site`, or `Origin` against
//! `Host`) are refused with `403` by the session layer's cross-origin protection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Form, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, USER_AGENT};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use jwe_session::authjs::{AuthJsConfigError, AuthJsLayer, AuthJsSession};
use jwe_session::{
    AuthJsVersion, Claims, Clock, KeyRingHandle, Lifetimes, Recorded, RevocationStore, RevokeError,
    SystemClock,
};
use jwe_session::{
    ConfigError, DeviceBoundConfig, DeviceInfo, DevicesError, DpopConfig, EndDeviceError, Session,
    SessionAdmin, SessionHandle, SessionLayer, SessionLayerBuilder, StartError, Transport,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};

/// The demo's own claims, sealed beside the registered ones.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DemoClaims {
    /// Roles, refreshed on every renewal.
    pub roles: Vec<String>,
    /// Free text from the login form; large notes show cookie chunking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// How to run the demo; the binary fills it from the environment, tests by hand.
pub struct DemoOptions {
    /// The key ring (shared handle, so it can be swapped while running).
    pub ring: KeyRingHandle,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The revocation store; `None` for the in-memory default.
    pub store: Option<Arc<dyn RevocationStore>>,
    /// The session clocks.
    pub lifetimes: Lifetimes,
    /// Drop `Secure` from the cookie, for clients that refuse `Secure` over plain HTTP.
    pub insecure_cookie: bool,
    /// The installed Prometheus recorder, rendered at `GET /metrics`.
    pub metrics: Option<PrometheusHandle>,
    /// The role table, which `POST /roles` writes and every renewal reads.
    pub roles: RoleTable,
    /// The demo is served over HTTPS: a DPoP proof's `htu` is `https://` plus the
    /// request's `Host` (`http://` otherwise).
    pub https: bool,
    /// Device-bound sessions (DBSC) with this bound lifetime; off with `None`.
    pub dbsc: Option<Duration>,
    /// At most this many sessions per user (a login beyond it ends the oldest); no cap
    /// with `None`.
    pub max_sessions: Option<usize>,
    /// A Next.js app's Auth.js session cookies that `GET /me` also accepts: the version
    /// and its secrets (`AUTH_SECRET`, newest first); off with `None`.
    pub authjs: Option<(AuthJsVersion, Vec<String>)>,
}

impl DemoOptions {
    /// Defaults around a key ring: system clock, memory store, default lifetimes, `Secure`.
    pub fn new(ring: impl Into<KeyRingHandle>) -> Self {
        Self {
            ring: ring.into(),
            clock: Arc::new(SystemClock),
            store: None,
            lifetimes: Lifetimes::default(),
            insecure_cookie: false,
            metrics: None,
            roles: RoleTable::memory(),
            https: false,
            dbsc: None,
            max_sessions: None,
            authjs: None,
        }
    }
}

/// The claims of a Next.js app's session as the demo reads them: Auth.js's and any the
/// app added, as they are.
pub type NextClaims = serde_json::Map<String, serde_json::Value>;

/// Roles a user has until `POST /roles` says otherwise.
fn default_roles(user: &str) -> Vec<String> {
    let mut roles = vec!["user".to_owned()];
    if user == "admin" {
        roles.push("admin".to_owned());
    }
    roles
}

/// How many users a role table holds by default: users who logged in, never names a
/// form made up.
pub const DEFAULT_ROLE_TABLE_CAP: usize = 10_000;

/// The demo's "database" of roles: read at login and at every renewal (past `exp`, or
/// early after a claims refresh), written by `POST /roles`. It holds only users who
/// logged in, at most its cap of them. In this process's memory; in Redis when the demo
/// runs on Redis, so every instance reads the same roles.
#[derive(Clone)]
pub enum RoleTable {
    /// This process's memory (shared by every clone).
    Memory(Arc<Mutex<MemoryRoles>>),
    /// A Redis hash, field = user name, value = roles joined by commas.
    Redis {
        /// The connection (reconnects by itself).
        conn: redis::aio::ConnectionManager,
        /// The hash's key.
        key: String,
        /// The most users it records.
        cap: usize,
    },
}

/// The in-memory table: users who logged in, with the roles `POST /roles` gave them
/// (`None`: the defaults).
#[derive(Debug, Default)]
pub struct MemoryRoles {
    users: HashMap<String, Option<Vec<String>>>,
    cap: usize,
}

impl std::fmt::Debug for RoleTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Memory(_) => "RoleTable::Memory",
            Self::Redis { .. } => "RoleTable::Redis",
        })
    }
}

impl RoleTable {
    /// An empty table in memory, holding at most [`DEFAULT_ROLE_TABLE_CAP`] users.
    #[must_use]
    pub fn memory() -> Self {
        Self::memory_with_cap(DEFAULT_ROLE_TABLE_CAP)
    }

    /// An empty table in memory, holding at most `cap` users. When full, a new login
    /// takes the place of a user who still has the default roles; users whose roles were
    /// set (a ban) are never dropped, and once only they are left a new user is not
    /// recorded (their roles cannot be changed until there is room).
    #[must_use]
    pub fn memory_with_cap(cap: usize) -> Self {
        Self::Memory(Arc::new(Mutex::new(MemoryRoles {
            users: HashMap::new(),
            cap,
        })))
    }

    /// A table in Redis at `url`, under the key `jwe-session-demo:roles`, holding at most
    /// [`DEFAULT_ROLE_TABLE_CAP`] users.
    ///
    /// # Errors
    /// A Redis error if it cannot connect.
    pub async fn redis(url: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let conn = redis::aio::ConnectionManager::new(client).await?;
        Ok(Self::Redis {
            conn,
            key: "jwe-session-demo:roles".to_owned(),
            cap: DEFAULT_ROLE_TABLE_CAP,
        })
    }

    /// A user's roles: the table's, else the defaults.
    ///
    /// # Errors
    /// A Redis error if the table is in Redis and it does not answer.
    pub async fn get(&self, user: &str) -> Result<Vec<String>, redis::RedisError> {
        let stored = match self {
            Self::Memory(m) => m
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .users
                .get(user)
                .cloned()
                .flatten(),
            Self::Redis { conn, key, .. } => {
                let v: Option<String> = redis::cmd("HGET")
                    .arg(key)
                    .arg(user)
                    .query_async(&mut conn.clone())
                    .await?;
                v.filter(|v| !v.is_empty()).map(|v| split_roles(&v))
            }
        };
        Ok(stored.unwrap_or_else(|| default_roles(user)))
    }

    /// Records that `user` logged in (so `POST /roles` may change their roles), within
    /// the cap.
    ///
    /// # Errors
    /// A Redis error if the table is in Redis and it does not answer.
    pub async fn record_login(&self, user: &str) -> Result<(), redis::RedisError> {
        match self {
            Self::Memory(m) => {
                let mut t = m.lock().unwrap_or_else(PoisonError::into_inner);
                if t.users.contains_key(user) {
                    return Ok(());
                }
                if t.users.len() >= t.cap {
                    let spare = t
                        .users
                        .iter()
                        .find(|(_, roles)| roles.is_none())
                        .map(|(u, _)| u.clone());
                    match spare {
                        Some(u) => {
                            t.users.remove(&u);
                        }
                        None => {
                            tracing::warn!(
                                cap = t.cap,
                                "role table full of users with roles set; not recording a login"
                            );
                            return Ok(());
                        }
                    }
                }
                t.users.insert(user.to_owned(), None);
                Ok(())
            }
            Self::Redis { conn, key, cap } => {
                let mut c = conn.clone();
                let len: usize = redis::cmd("HLEN").arg(key).query_async(&mut c).await?;
                if len >= *cap {
                    tracing::warn!(cap, "role table full; not recording a login");
                    return Ok(());
                }
                // An empty value: the defaults.
                redis::cmd("HSETNX")
                    .arg(key)
                    .arg(user)
                    .arg("")
                    .query_async::<()>(&mut c)
                    .await
            }
        }
    }

    /// Records a login and reads the user's roles: what both login routes ask.
    ///
    /// # Errors
    /// A Redis error if the table is in Redis and it does not answer.
    pub async fn login_roles(&self, user: &str) -> Result<Vec<String>, redis::RedisError> {
        self.record_login(user).await?;
        self.get(user).await
    }

    /// Sets a user's roles; `false` (changing nothing) for a user the table does not hold
    /// (who never logged in).
    ///
    /// # Errors
    /// A Redis error if the table is in Redis and it does not answer.
    pub async fn set(&self, user: &str, roles: &[String]) -> Result<bool, redis::RedisError> {
        match self {
            Self::Memory(m) => {
                let mut t = m.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(match t.users.get_mut(user) {
                    Some(kept) => {
                        *kept = Some(roles.to_vec());
                        true
                    }
                    None => false,
                })
            }
            Self::Redis { conn, key, .. } => {
                let mut c = conn.clone();
                let known: bool = redis::cmd("HEXISTS")
                    .arg(key)
                    .arg(user)
                    .query_async(&mut c)
                    .await?;
                if known {
                    redis::cmd("HSET")
                        .arg(key)
                        .arg(user)
                        .arg(roles.join(","))
                        .query_async::<()>(&mut c)
                        .await?;
                }
                Ok(known)
            }
        }
    }

    /// How many users the table holds.
    ///
    /// # Errors
    /// A Redis error if the table is in Redis and it does not answer.
    pub async fn users(&self) -> Result<usize, redis::RedisError> {
        match self {
            Self::Memory(m) => Ok(m.lock().unwrap_or_else(PoisonError::into_inner).users.len()),
            Self::Redis { conn, key, .. } => {
                redis::cmd("HLEN")
                    .arg(key)
                    .query_async(&mut conn.clone())
                    .await
            }
        }
    }
}

fn split_roles(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The roles of a `POST /roles` form: comma-separated names of letters, digits, `-`,
/// `_`, `.` or `:`, at most 32 of at most 64 bytes each (they travel in the cookie).
fn parse_roles(s: &str) -> Option<Vec<String>> {
    let roles = split_roles(s);
    let ok = roles.len() <= 32
        && roles.iter().all(|r| {
            r.len() <= 64
                && r.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        });
    ok.then_some(roles)
}

/// The session layer the demo uses.
///
/// # Errors
/// [`ConfigError`] if the options do not make a valid layer.
pub fn layer(opts: DemoOptions) -> Result<SessionLayer<DemoClaims>, ConfigError> {
    layer_builder(opts).build()
}

/// The demo's layer configuration, before `build`, for tests that change one setting.
pub fn layer_builder(opts: DemoOptions) -> SessionLayerBuilder<DemoClaims> {
    let table = opts.roles;
    // Browsers carry the cookie; API clients the token (`POST /api/login`), as a plain
    // bearer token or bound to their key with DPoP.
    let dpop = if opts.https {
        DpopConfig::new()
    } else {
        DpopConfig::new().plain_http()
    };
    let mut b = SessionLayer::<DemoClaims>::builder(opts.ring)
        .clock(opts.clock)
        .lifetimes(opts.lifetimes)
        .issuer("jwe-session-demo")
        .transport(Transport::Both)
        .dpop(dpop)
        .on_renew(move |claims: Claims<DemoClaims>| {
            let table = table.clone();
            async move {
                // A real app would ask its database whether the account still exists.
                let user = claims.sub.unwrap_or_default();
                if user == "banned" {
                    return jwe_session::Renew::Refuse;
                }
                match table.get(&user).await {
                    Ok(roles) if roles.iter().any(|r| r == "banned") => jwe_session::Renew::Refuse,
                    Ok(roles) => jwe_session::Renew::Update(DemoClaims {
                        roles,
                        ..claims.app
                    }),
                    // Fail closed: keeping the old roles would let a user banned during
                    // the outage renew. No session for now; the cookie stays, and the
                    // next request asks again once the table answers.
                    Err(e) => {
                        tracing::warn!(error = %e, "role table unavailable; not renewing");
                        jwe_session::Renew::Unavailable
                    }
                }
            }
        });
    if let Some(store) = opts.store {
        b = b.revocation_store(store);
    }
    if opts.insecure_cookie {
        b = b.dangerous().allow_insecure_cookie().done();
    }
    if let Some(bound) = opts.dbsc {
        b = b.device_bound(DeviceBoundConfig::new().bound_lifetime(bound));
    }
    if let Some(max) = opts.max_sessions {
        b = b.max_sessions_per_user(max);
    }
    b
}

/// The demo's routes behind its session layer.
///
/// # Errors
/// As [`layer`].
pub fn app(mut opts: DemoOptions) -> Result<Router, DemoError> {
    let metrics = opts.metrics.take();
    let roles = opts.roles.clone();
    let authjs = opts.authjs.take();
    let clock = Arc::clone(&opts.clock);
    let layer = layer(opts)?;
    let authjs = match authjs {
        None => None,
        Some((version, secrets)) => {
            let builder = match version {
                AuthJsVersion::V4 => {
                    AuthJsLayer::<NextClaims>::v4(secrets.first().map_or("", String::as_str))
                }
                _ => AuthJsLayer::<NextClaims>::v5(&secrets),
            };
            // The demo's own store: a logout everywhere ends Next.js sessions too.
            Some(
                builder
                    .revocation_store(Arc::clone(layer.revocation_store()))
                    .clock(clock)
                    .build()?,
            )
        }
    };
    let router = router_for(layer, roles, authjs);
    Ok(match metrics {
        Some(handle) => router.route(
            "/metrics",
            get(move || std::future::ready(prometheus_text(&handle))),
        ),
        None => router,
    })
}

/// Why the demo's app could not be built.
#[derive(Debug)]
pub enum DemoError {
    /// The session layer's configuration.
    Layer(ConfigError),
    /// The Auth.js layer's (an empty `AUTH_SECRET`, say).
    AuthJs(AuthJsConfigError),
}

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Layer(e) => e.fmt(f),
            Self::AuthJs(e) => write!(f, "AUTH_SECRET: {e}"),
        }
    }
}

impl std::error::Error for DemoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Layer(e) => Some(e),
            Self::AuthJs(e) => Some(e),
        }
    }
}

impl From<ConfigError> for DemoError {
    fn from(e: ConfigError) -> Self {
        Self::Layer(e)
    }
}

impl From<AuthJsConfigError> for DemoError {
    fn from(e: AuthJsConfigError) -> Self {
        Self::AuthJs(e)
    }
}

/// The recorder's metrics in the Prometheus text exposition format.
fn prometheus_text(handle: &PrometheusHandle) -> Response {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        handle.render(),
    )
        .into_response()
}

/// Installs the process-wide Prometheus recorder for the `jwe_session_*` metrics, with
/// histogram buckets for the authoritative check's latency, and keeps it tidy. Call it
/// once, from within a Tokio runtime.
///
/// # Errors
/// If a recorder is already installed.
pub fn install_metrics() -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(jwe_session::metrics::AUTHORITATIVE_CHECK_SECONDS.to_owned()),
            &[
                0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                0.5, 1.0,
            ],
        )?
        .install_recorder()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// The demo's routes behind a given layer, with a role table of their own.
pub fn router(layer: SessionLayer<DemoClaims>) -> Router {
    router_with(layer, RoleTable::memory())
}

/// The demo's routes behind a given layer; `roles` must be the table its renew hook reads.
pub fn router_with(layer: SessionLayer<DemoClaims>, roles: RoleTable) -> Router {
    router_for(layer, roles, None)
}

/// The demo's routes behind its layer and, with one, the Auth.js layer whose sessions
/// `GET /me` also accepts.
fn router_for(
    layer: SessionLayer<DemoClaims>,
    roles: RoleTable,
    authjs: Option<AuthJsLayer<NextClaims>>,
) -> Router {
    let admin = layer.admin();
    let me_route = if authjs.is_some() {
        get(me_or_next)
    } else {
        get(me)
    };
    let router = Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/api/login", post(api_login))
        .route("/me", me_route)
        .route("/logout", post(logout))
        .route("/logout-everywhere", post(logout_everywhere))
        .route("/logout-others", post(logout_others))
        .route("/roles", post(set_roles))
        .route("/ws", get(ws))
        .route("/devices", get(devices))
        .route("/devices/end", post(end_device))
        // A health check behind the layer: it never reads the session, so a request's
        // cookie is never opened here (what `benches/load.sh` measures as a static route).
        .route("/healthz", get(|| std::future::ready("ok")))
        .layer(layer);
    let router = match authjs {
        Some(authjs) => router.layer(authjs),
        None => router,
    };
    router.layer(Extension(admin)).with_state(roles)
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    notes: String,
}

/// What the session registry shows of the device a login comes from: the browser and
/// system its `User-Agent` names.
fn describe(handle: &SessionHandle<DemoClaims>, headers: &HeaderMap) {
    let ua = headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    handle.describe_device(DeviceInfo::from_user_agent(ua));
}

async fn login(
    State(table): State<RoleTable>,
    handle: SessionHandle<DemoClaims>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let username = f.username.trim();
    if username.is_empty() || f.password != "demo" {
        return (
            StatusCode::UNAUTHORIZED,
            Html(page(None, Some("Wrong user name or password."))),
        )
            .into_response();
    }
    let notes = (!f.notes.is_empty()).then_some(f.notes);
    let looked_up = table.login_roles(username).await;
    let roles = match looked_up {
        Ok(roles) => roles,
        Err(e) => {
            tracing::error!(error = %e, "role table unavailable");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response();
        }
    };
    let started = handle.start(username, DemoClaims { roles, notes });
    describe(&handle, &headers);
    match started {
        Ok(()) => Redirect::to("/").into_response(),
        // Nothing changed: a session the request had stays.
        Err(StartError::TooLarge { len, max }) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            Html(page(
                None,
                Some(&format!(
                    "The notes are too long: the session would take {len} bytes of cookies, \
                     over the {max} a browser keeps. Shorten them."
                )),
            )),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "session could not be started");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `POST /api/login`: the token in a JSON body, for API clients. Bound to the client's key
/// (`token_type: DPoP`) when the request carries a valid DPoP proof for `POST` and this
/// URL; a plain bearer token without one; `400` `invalid_dpop_proof` (and no token) for a
/// proof that does not verify; `401` for a wrong password.
async fn api_login(
    State(table): State<RoleTable>,
    handle: SessionHandle<DemoClaims>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let username = f.username.trim();
    if username.is_empty() || f.password != "demo" {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "wrong user name or password",
        );
    }
    let looked_up = table.login_roles(username).await;
    let roles = match looked_up {
        Ok(roles) => roles,
        Err(e) => {
            tracing::error!(error = %e, "role table unavailable");
            return api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "try again",
            );
        }
    };
    let notes = (!f.notes.is_empty()).then_some(f.notes);
    describe(&handle, &headers);
    match handle.issue(username, DemoClaims { roles, notes }) {
        Ok(issued) => (
            [(CACHE_CONTROL, "no-store")],
            Json(serde_json::json!({
                "access_token": issued.token(),
                "token_type": issued.token_type().as_str(),
                "expires_in": issued.expires_in().as_secs(),
            })),
        )
            .into_response(),
        Err(StartError::DpopProof(e)) => {
            api_error(StatusCode::BAD_REQUEST, e.error_code(), &e.to_string())
        }
        Err(StartError::TooLarge { len, max }) => api_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            &format!("the session would take {len} bytes, over the {max} allowed"),
        ),
        Err(e) => {
            tracing::error!(error = %e, "session could not be started");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// An OAuth-style error body (RFC 6749 §5.2).
fn api_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn me(session: Session<DemoClaims>) -> Json<Claims<DemoClaims>> {
    Json(session.claims().clone())
}

/// `GET /me` with `AUTH_SECRET` set: the demo's own session, else the Next.js app's
/// (its claims as JSON), else `401`. A Next.js cookie that does not open is left alone.
async fn me_or_next(
    session: Option<Session<DemoClaims>>,
    next: Option<AuthJsSession<NextClaims>>,
) -> Response {
    match (session, next) {
        (Some(session), _) => Json(session.claims().clone()).into_response(),
        (None, Some(next)) => Json(next.claims().clone()).into_response(),
        (None, None) => {
            (StatusCode::UNAUTHORIZED, "no valid session: log in first").into_response()
        }
    }
}

/// `GET /devices`: the caller's live sessions as JSON, oldest first, theirs marked
/// `current`; `401` without a session.
async fn devices(handle: SessionHandle<DemoClaims>) -> Response {
    match handle.devices().await {
        Ok(list) => ([(CACHE_CONTROL, "no-store")], Json(list)).into_response(),
        Err(DevicesError::NoSession) => {
            (StatusCode::UNAUTHORIZED, "no valid session: log in first").into_response()
        }
        Err(e) => {
            tracing::error!(error = ?e, "the session registry could not be read");
            (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response()
        }
    }
}

#[derive(Deserialize)]
struct EndDeviceForm {
    sid: String,
}

/// `POST /devices/end` (`sid`): ends one of the caller's sessions, on every instance
/// (`303` to `/`); `404` for a sid that is not one of the caller's live sessions, and
/// nothing is revoked; `401` without a session.
async fn end_device(handle: SessionHandle<DemoClaims>, Form(f): Form<EndDeviceForm>) -> Response {
    match handle.end_device(f.sid.trim()).await {
        Ok(recorded) => after_logout(Ok(recorded)),
        Err(EndDeviceError::NoSession) => {
            (StatusCode::UNAUTHORIZED, "no valid session: log in first").into_response()
        }
        Err(EndDeviceError::NotFound) => {
            (StatusCode::NOT_FOUND, "no session of yours has that id").into_response()
        }
        Err(EndDeviceError::Revoke(e)) => after_logout(Err(e)),
        Err(e) => {
            tracing::error!(error = ?e, "a device could not be ended");
            (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response()
        }
    }
}

async fn logout(handle: SessionHandle<DemoClaims>) -> Response {
    after_logout(handle.end().await)
}

async fn logout_everywhere(handle: SessionHandle<DemoClaims>) -> Response {
    after_logout(handle.end_everywhere().await)
}

async fn logout_others(handle: SessionHandle<DemoClaims>) -> Response {
    after_logout(handle.end_others().await)
}

#[derive(Deserialize)]
struct RolesForm {
    username: String,
    roles: String,
}

/// Sets a user's roles and refreshes their claims: their next request, on any instance,
/// is renewed through the renew hook, which reads the new roles (and their open
/// WebSockets check again). Only a session holding the role `admin` may (`403`
/// otherwise; the user named `admin` gets that role at login), and only for a user who
/// logged in (`404` otherwise).
async fn set_roles(
    State(table): State<RoleTable>,
    Extension(admin): Extension<SessionAdmin<DemoClaims>>,
    session: Session<DemoClaims>,
    Form(f): Form<RolesForm>,
) -> Response {
    if !session.app.roles.iter().any(|r| r == "admin") {
        return (StatusCode::FORBIDDEN, "only an admin may change roles").into_response();
    }
    let user = f.username.trim();
    let Some(roles) = parse_roles(&f.roles) else {
        return (
            StatusCode::BAD_REQUEST,
            "roles: comma-separated names of letters, digits, - _ . : (at most 32 of 64 bytes)",
        )
            .into_response();
    };
    if user.is_empty() || user.len() > 256 {
        return (StatusCode::BAD_REQUEST, "username: 1 to 256 bytes").into_response();
    }
    match table.set(user, &roles).await {
        Ok(true) => {}
        Ok(false) => {
            return (
                StatusCode::NOT_FOUND,
                "no such user: roles are kept for users who logged in",
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "role table unavailable");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response();
        }
    }
    tracing::info!(by = %session.sub(), user, ?roles, "roles changed; claims refreshed");
    after_logout(admin.refresh_claims_of(user).await)
}

/// The WebSocket: `Session` is extracted first, so without one the answer is `401` and
/// nothing is upgraded (and a handshake from another origin is refused by the layer).
async fn ws(session: Session<DemoClaims>, upgrade: WebSocketUpgrade) -> Response {
    let watch = match session.watch() {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the session");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let handle = session.handle().clone();
    let sub = session.sub().to_owned();
    upgrade.on_upgrade(move |socket| serve_ws(socket, sub, handle, watch))
}

/// The close code for a session that ended (revoked, refused by the renew hook, or past
/// its absolute lifetime): 4000-4999 is for applications (RFC 6455 §7.4.2); 4401 reads as
/// "401 on a WebSocket".
pub const WS_REVOKED: u16 = 4401;

/// Why the demo closes a socket.
enum Closing {
    /// 4401 with this reason.
    Ended(&'static str),
    /// 1013 "try again later": the session could not be checked (the role table or the
    /// revocation store is down); the client reconnects later.
    Unavailable,
}

async fn serve_ws(
    mut socket: WebSocket,
    sub: String,
    handle: SessionHandle<DemoClaims>,
    watch: jwe_session::RevocationWatch,
) {
    if socket.send(Message::Text(sub.into())).await.is_err() {
        return;
    }
    let mut watch = watch;
    let clock = handle.clock();
    // The socket never outlives the session's absolute lifetime.
    let until_absolute = handle
        .claims()
        .and_then(|c| handle.lifetimes().absolute_end(&c))
        .map_or(Duration::ZERO, |end| end.saturating_since(clock.now()));
    let expired = tokio::time::sleep(until_absolute);
    tokio::pin!(expired);
    let closing = loop {
        tokio::select! {
            end = &mut watch => match end {
                jwe_session::WatchEnd::Refreshed { .. } => match handle.recheck().await {
                    // The renew hook accepted (new roles, say): go on, watching the new claims.
                    Ok(_) => match handle.watch() {
                        Ok(w) => watch = w,
                        Err(_) => break Closing::Unavailable,
                    },
                    Err(jwe_session::RecheckError::Unavailable) => break Closing::Unavailable,
                    Err(jwe_session::RecheckError::Expired) => break Closing::Ended("session expired"),
                    Err(jwe_session::RecheckError::Revoked) => break Closing::Ended("session revoked"),
                    Err(_) => break Closing::Ended("session refused"),
                },
                _ => break Closing::Ended("session revoked"),
            },
            () = &mut expired => break Closing::Ended("session expired"),
            msg = socket.recv() => match msg {
                // The demo has nothing to say to messages; pings are answered by axum.
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    };
    let frame = match closing {
        Closing::Ended(reason) => {
            tracing::info!(reason, "closing a WebSocket: the session ended");
            CloseFrame {
                code: WS_REVOKED,
                reason: reason.into(),
            }
        }
        Closing::Unavailable => {
            tracing::warn!("closing a WebSocket: the session could not be checked");
            CloseFrame {
                code: 1013,
                reason: "try again later".into(),
            }
        }
    };
    if socket.send(Message::Close(Some(frame))).await.is_ok() {
        // The closing handshake: wait (bounded) for the client's answer.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(Ok(m)) = socket.recv().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

fn after_logout(result: Result<Recorded, RevokeError>) -> Response {
    match result {
        Ok(Recorded::Stored) => Redirect::to("/").into_response(),
        Ok(Recorded::Queued { durable, reason }) => {
            tracing::warn!(error = ?reason, durable, "logout recorded here; Redis will get it when it answers");
            Redirect::to("/").into_response()
        }
        Err(e) => {
            tracing::error!(error = ?e, "logout could not be recorded");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "logout could not be recorded; try again",
            )
                .into_response()
        }
    }
}

async fn index(
    session: Option<Session<DemoClaims>>,
    handle: SessionHandle<DemoClaims>,
) -> Html<String> {
    let devices = match &session {
        Some(_) => handle.devices().await.unwrap_or_default(),
        None => Vec::new(),
    };
    let mut html = page(session.as_ref().map(|s| s.claims()), None);
    if session.is_some() {
        html = html.replace("<!--devices-->", &devices_html(&devices));
    }
    Html(html)
}

/// The "your devices" list of the home page, a button per device.
fn devices_html(devices: &[jwe_session::Device]) -> String {
    let mut rows = String::new();
    for d in devices {
        let label = d.label().unwrap_or("Unknown device");
        let button = if d.current() {
            "<em>this device</em>".to_owned()
        } else {
            format!(
                r#"<form method="post" action="/devices/end"><input type="hidden" name="sid" value="{sid}"><button class="end-device" type="submit">Sign out</button></form>"#,
                sid = escape(d.sid()),
            )
        };
        rows.push_str(&format!(
            r#"<li class="device" data-sid="{sid}">{label} — signed in {started}, bound: {bound} {button}</li>
"#,
            sid = escape(d.sid()),
            label = escape(label),
            started = utc(d.started().as_secs()),
            bound = d.binding(),
        ));
    }
    format!("<h2>Your devices</h2>\n<ul id=\"devices\">\n{rows}</ul>")
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC` (the proleptic Gregorian calendar).
fn utc(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil, for days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3_600,
        rest % 3_600 / 60
    )
}

fn page(claims: Option<&Claims<DemoClaims>>, error: Option<&str>) -> String {
    let body = match claims {
        Some(c) => {
            let json = serde_json::to_string_pretty(c).unwrap_or_default();
            format!(
                r#"<h1>Signed in as <span id="user">{user}</span></h1>
<p>These claims travel in an encrypted, HttpOnly cookie. Scripts on this page cannot read it.</p>
<pre id="claims">{claims}</pre>
<form method="post" action="/logout"><button id="logout" type="submit">Log out</button></form>
<form method="post" action="/logout-everywhere"><button id="logout-everywhere" type="submit">Log out everywhere</button></form>
<form method="post" action="/logout-others"><button id="logout-others" type="submit">Log out my other devices</button></form>
<!--devices-->
<h2>Roles</h2>
<p>Set a user's roles: their next request, on any instance, renews with them.</p>
<form id="roles" method="post" action="/roles">
<label>User name <input name="username" id="roles-username"></label>
<label>Roles (comma-separated) <input name="roles" id="roles-roles"></label>
<button id="roles-submit" type="submit">Set roles</button>
</form>"#,
                user = escape(c.sub.as_deref().unwrap_or("")),
                claims = escape(&json),
            )
        }
        None => format!(
            r#"<h1>jwe-session demo</h1>
{error}<p>Any user name works; the password is <code>demo</code>.</p>
<form id="login" method="post" action="/login">
<label>User name <input name="username" id="username" autocomplete="username"></label>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password"></label>
<label>Notes (optional; a long text shows cookie chunking) <textarea name="notes" id="notes"></textarea></label>
<button id="submit" type="submit">Log in</button>
</form>"#,
            error = error
                .map(|e| format!(r#"<p id="error">{}</p>"#, escape(e)))
                .unwrap_or_default(),
        ),
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>jwe-session demo</title>
<style>body{{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}}
label{{display:block;margin:.5rem 0}} pre{{background:#f4f4f4;padding:1rem;overflow:auto}}
form{{display:inline-block;margin-right:1rem}} textarea{{width:100%;height:4rem}}</style>
</head><body>
{body}
</body></html>"#
    )
}

/// Escapes text for HTML element content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_796_474_096), "2026-12-05 12:34 UTC");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<b a="1">'&'</b>"#),
            "&lt;b a=&quot;1&quot;&gt;&#39;&amp;&#39;&lt;/b&gt;"
        );
    }
}
