//! The demo app: a login form, a page showing the session's claims, logout, logout
//! everywhere, and logging out the other devices.
//!
//! HTTP surface (scripts and tests rely on it):
//! - `GET /`: HTML with a login form, or the session's claims and logout buttons;
//! - `POST /login` (form `username`, `password`, optional `notes`): any non-empty user
//!   name with password `demo` starts a session, `303` to `/`; `401` otherwise; `413` when
//!   the notes make the session too large for cookies (an earlier session stays);
//! - `GET /me`: `200` with the claims as JSON, or `401`;
//! - `POST /logout`: ends this session (revokes its `sid`), `303` to `/`;
//! - `POST /logout-everywhere`: revokes every session of this user, `303` to `/`;
//! - `POST /logout-others`: revokes every other session of this user and keeps this one
//!   (under a new `sid`), `303` to `/`;
//! - `GET /metrics`: the layer's metrics (`jwe_session_*`, see `jwe_session::metrics`) in
//!   Prometheus text format; `404` when the demo runs without a recorder.
//!
//! A logout that cannot be recorded answers `503` ("try again"). One the shared store did
//! not take yet but queued on this instance (Redis down) is a logout: it answers `303`, and
//! the store sends it on when Redis is back.
//!
//! State-changing requests from other sites (`Sec-Fetch-Site`, or `Origin` against
//! `Host`) are refused with `403` by the session layer's cross-origin protection.

use std::sync::Arc;

use axum::extract::Form;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jwe_session::{Claims, Clock, KeyRingHandle, Lifetimes, RevocationStore, SystemClock};
use jwe_session::{
    ConfigError, Session, SessionHandle, SessionLayer, SessionLayerBuilder, StartError,
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
        }
    }
}

/// Roles as the "database" knows them, looked up again on every renewal.
fn roles_for(user: &str) -> Vec<String> {
    let mut roles = vec!["user".to_owned()];
    if user == "admin" {
        roles.push("admin".to_owned());
    }
    roles
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
    let mut b = SessionLayer::<DemoClaims>::builder(opts.ring)
        .clock(opts.clock)
        .lifetimes(opts.lifetimes)
        .issuer("jwe-session-demo")
        .on_renew(|claims: Claims<DemoClaims>| async move {
            // A real app would ask its database whether the account still exists.
            let user = claims.sub.unwrap_or_default();
            if user == "banned" {
                return jwe_session::Renew::Refuse;
            }
            jwe_session::Renew::Update(DemoClaims {
                roles: roles_for(&user),
                ..claims.app
            })
        });
    if let Some(store) = opts.store {
        b = b.revocation_store(store);
    }
    if opts.insecure_cookie {
        b = b.dangerous().allow_insecure_cookie().done();
    }
    b
}

/// The demo's routes behind its session layer.
///
/// # Errors
/// As [`layer`].
pub fn app(mut opts: DemoOptions) -> Result<Router, ConfigError> {
    let metrics = opts.metrics.take();
    let router = router(layer(opts)?);
    Ok(match metrics {
        Some(handle) => router.route(
            "/metrics",
            get(move || std::future::ready(prometheus_text(&handle))),
        ),
        None => router,
    })
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

/// The demo's routes behind a given layer.
pub fn router(layer: SessionLayer<DemoClaims>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/logout", post(logout))
        .route("/logout-everywhere", post(logout_everywhere))
        .route("/logout-others", post(logout_others))
        .layer(layer)
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    notes: String,
}

async fn login(handle: SessionHandle<DemoClaims>, Form(f): Form<LoginForm>) -> Response {
    let username = f.username.trim();
    if username.is_empty() || f.password != "demo" {
        return (
            StatusCode::UNAUTHORIZED,
            Html(page(None, Some("Wrong user name or password."))),
        )
            .into_response();
    }
    let notes = (!f.notes.is_empty()).then_some(f.notes);
    let started = handle.start(
        username,
        DemoClaims {
            roles: roles_for(username),
            notes,
        },
    );
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

async fn me(session: Session<DemoClaims>) -> Json<Claims<DemoClaims>> {
    Json(session.claims().clone())
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

fn after_logout(result: Result<(), jwe_session::StoreError>) -> Response {
    match result {
        Ok(()) => Redirect::to("/").into_response(),
        Err(e @ jwe_session::StoreError::Queued { .. }) => {
            tracing::warn!(error = %e, "logout recorded here; Redis will get it when it answers");
            Redirect::to("/").into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "logout could not be recorded");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "logout could not be recorded; try again",
            )
                .into_response()
        }
    }
}

async fn index(session: Option<Session<DemoClaims>>) -> Html<String> {
    Html(page(session.as_ref().map(|s| s.claims()), None))
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
<form method="post" action="/logout-others"><button id="logout-others" type="submit">Log out my other devices</button></form>"#,
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
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<b a="1">'&'</b>"#),
            "&lt;b a=&quot;1&quot;&gt;&#39;&amp;&#39;&lt;/b&gt;"
        );
    }
}
