//! A complete axum app on `jwe-session` alone: login, a page that needs a session, one
//! that works either way, logout and logout everywhere, keys from the environment, one
//! switch for local development, and handler tests with minted sessions.
//!
//! ```sh
//! APP_ENV=development cargo run -p jwe-session --example axum   # http://127.0.0.1:3001
//! cargo test -p jwe-session --example axum                      # its tests
//! ```
use axum::extract::Form;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use jwe_session::{KeyError, KeyRing, Recorded, RevokeError, Session, SessionHandle, SessionLayer};
use serde::{Deserialize, Serialize};

/// What the app keeps in the session: encrypted in the cookie, never readable by clients.
#[derive(Clone, Serialize, Deserialize)]
struct User {
    roles: Vec<String>,
    /// Added after launch: `#[serde(default)]` keeps the sessions sealed before it valid.
    #[serde(default)]
    theme: Option<String>,
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

async fn login(handle: SessionHandle<User>, Form(form): Form<Login>) -> Response {
    if form.username.is_empty() || form.password != "demo" {
        return StatusCode::UNAUTHORIZED.into_response(); // ask your user database instead
    }
    let user = User {
        roles: vec!["user".into()],
        theme: None,
    };
    match handle.start(form.username, user) {
        Ok(()) => Redirect::to("/me").into_response(),
        // Claims too large for the cookies: nothing changed, answer it here.
        Err(e) => (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()).into_response(),
    }
}

/// `401` without a session.
async fn me(session: Session<User>) -> String {
    format!("{} {:?}", session.sub(), session.app.roles)
}

async fn home(session: Option<Session<User>>) -> String {
    match session {
        Some(session) => format!("hello {}", session.sub()),
        None => "hello, stranger".to_owned(),
    }
}

async fn logout(handle: SessionHandle<User>) -> Response {
    after_logout(handle.end().await) // clears the cookie, revokes the session id
}

async fn logout_everywhere(handle: SessionHandle<User>) -> Response {
    after_logout(handle.end_everywhere().await) // every session of this user
}

fn after_logout(result: Result<Recorded, RevokeError>) -> Response {
    match result {
        // Stored, or queued: in force here, a shared store sends it on when it answers.
        Ok(_) => Redirect::to("/").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response(),
    }
}

fn app(layer: SessionLayer<User>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/logout", post(logout))
        .route("/logout-everywhere", post(logout_everywhere))
        .layer(layer)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Logs to stderr, `info` and up unless RUST_LOG says otherwise: without a subscriber
    // the local-development warning and every refusal reason would be invisible.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let development = std::env::var("APP_ENV").is_ok_and(|env| env == "development");
    // A JWK Set in JWE_SESSION_KEYS (`jwe-session keygen --set`); a fresh key in development.
    let ring = match KeyRing::from_env() {
        Ok(ring) => ring,
        Err(KeyError::EnvMissing { .. }) if development => KeyRing::generate(),
        Err(e) => return Err(e.into()),
    };
    // The defaults: `__Host-session` (Secure, no subdomain can set it), HttpOnly, Lax.
    let layer = SessionLayer::<User>::builder(ring)
        .dangerous()
        .local_development(development) // plain http://localhost: no Secure, no prefix
        .build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(layer)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::error::Error;
    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::{header, Request};
    use jwe_session::testing::request_with_session;
    use jwe_session::{ManualClock, UnixTime};
    use tower::ServiceExt; // oneshot

    use super::*;

    fn layer(clock: &Arc<ManualClock>) -> Result<SessionLayer<User>, Box<dyn Error>> {
        Ok(SessionLayer::builder(KeyRing::generate())
            .clock(clock.clone())
            .build()?)
    }

    fn user() -> User {
        User {
            roles: vec!["admin".into()],
            theme: None,
        }
    }

    #[tokio::test]
    async fn me_needs_a_session() -> Result<(), Box<dyn Error>> {
        let clock = Arc::new(ManualClock::new(UnixTime::from_secs(1_800_000_000)));
        let layer = layer(&clock)?;
        let alice = layer.test_session("alice", user())?;
        let app = app(layer);

        let res = app
            .clone()
            .oneshot(Request::get("/me").body(Body::empty())?)
            .await?;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

        let req = request_with_session(Request::get("/me").body(Body::empty())?, &alice);
        let res = app.oneshot(req).await?;
        assert_eq!(res.status(), StatusCode::OK);
        let body = axum::body::to_bytes(res.into_body(), 1024).await?;
        assert_eq!(&body[..], br#"alice ["admin"]"#);
        Ok(())
    }

    #[tokio::test]
    async fn login_sets_the_session_cookie() -> Result<(), Box<dyn Error>> {
        let clock = Arc::new(ManualClock::new(UnixTime::from_secs(1_800_000_000)));
        let req = Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("username=alice&password=demo"))?;
        let res = app(layer(&clock)?).oneshot(req).await?;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let cookie = res.headers()[header::SET_COOKIE].to_str()?;
        assert!(cookie.starts_with("__Host-session=") && cookie.contains("HttpOnly"));
        Ok(())
    }

    #[tokio::test]
    async fn sessions_renew_past_exp_and_end_after_seven_days() -> Result<(), Box<dyn Error>> {
        let clock = Arc::new(ManualClock::new(UnixTime::from_secs(1_800_000_000)));
        let layer = layer(&clock)?;
        let alice = layer.test_session("alice", user())?;
        let app = app(layer);
        let me = || {
            Request::get("/me")
                .body(Body::empty())
                .map(|r| request_with_session(r, &alice))
        };

        clock.advance(Duration::from_secs(16 * 60)); // past exp: renewed, new cookie
        let res = app.clone().oneshot(me()?).await?;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().contains_key(header::SET_COOKIE));

        clock.advance(Duration::from_secs(7 * 24 * 3600)); // past the absolute lifetime
        let res = app.oneshot(me()?).await?;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        Ok(())
    }
}
