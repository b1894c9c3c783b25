//! What a new user of the crate meets, through the public API of `jwe-session` alone (no
//! `jwe-session-core` import): the extractor, rejections for APIs, test sessions,
//! `cycle`, per-session lifetimes, changes after a streaming response's headers left,
//! claims that evolve, an issuer added later, the development switch, metrics, and the
//! client-side bearer layer.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE, WWW_AUTHENTICATE};
use axum::http::{Request, Response, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use jwe_session::client::{BearerLayer, TokenCell};
use jwe_session::testing::{request_with_session, TestSession};
use jwe_session::{
    Claims, ConfigError, CycleError, KeyRing, KeyRingHandle, Lifetimes, ManualClock,
    RejectionFormat, Session, SessionHandle, SessionLayer, SessionLifetimes, SessionRejection,
    StartError, Transport, UnixTime, UpdateError,
};
use serde::{Deserialize, Serialize};
use tower::{Layer, ServiceExt};

const T0: u64 = 1_800_000_000;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct User {
    roles: Vec<String>,
}

fn admin() -> User {
    User {
        roles: vec!["admin".into()],
    }
}

fn ring() -> KeyRingHandle {
    KeyRingHandle::new(KeyRing::generate())
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(UnixTime::from_secs(T0)))
}

fn layer_on(ring: &KeyRingHandle, clock: &Arc<ManualClock>) -> SessionLayer<User> {
    SessionLayer::<User>::builder(ring.clone())
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// `session.sub()` is a `&str`: no `.as_deref().unwrap_or("?")`.
async fn me(session: Session<User>) -> String {
    let sub: &str = session.sub();
    format!("{sub} {:?} {}", session.app.roles, session.sid())
}

async fn demote(handle: SessionHandle<User>) -> Result<&'static str, StatusCode> {
    handle
        .update(|u| u.roles.clear())
        .map_err(|_| StatusCode::UNAUTHORIZED)?;
    // The old token would keep the old roles until its exp: move to a new sid.
    handle
        .cycle()
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    Ok("demoted")
}

async fn cycle(handle: SessionHandle<User>) -> String {
    match handle.cycle().await {
        Ok(()) => "cycled".into(),
        Err(CycleError::NoSession) => "no session".into(),
        Err(e) => e.to_string(),
    }
}

async fn logout(handle: SessionHandle<User>) -> &'static str {
    handle.end().await.unwrap();
    "bye"
}

/// Answers a missing session itself, as an API would.
async fn custom(session: Result<Session<User>, SessionRejection>) -> (StatusCode, String) {
    match session {
        Ok(s) => (StatusCode::OK, s.sub().to_owned()),
        Err(r) if r.is_no_session() => (StatusCode::FORBIDDEN, "log in".into()),
        Err(r) => (r.status(), r.to_string()),
    }
}

fn app(layer: SessionLayer<User>) -> Router {
    Router::new()
        .route("/me", get(me))
        .route("/demote", post(demote))
        .route("/cycle", post(cycle))
        .route("/logout", post(logout))
        .route("/custom", get(custom))
        .layer(layer)
}

async fn send(app: &Router, req: Request<Body>) -> (Response<Body>, String) {
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = to_bytes(body, 1 << 20).await.unwrap();
    (
        Response::from_parts(parts, Body::empty()),
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

fn get_req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn post_req(path: &str) -> Request<Body> {
    Request::post(path).body(Body::empty()).unwrap()
}

fn with_cookie(mut req: Request<Body>, cookie: &str) -> Request<Body> {
    req.headers_mut().insert(COOKIE, cookie.parse().unwrap());
    req
}

fn set_cookies(res: &Response<Body>) -> Vec<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The `Cookie` header a browser would send back after this response.
fn cookie_from(res: &Response<Body>) -> String {
    set_cookies(res)
        .iter()
        .filter(|c| !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn a_test_session_opens_as_a_login_would_by_cookie_and_by_bearer() {
    let (ring, clock) = (ring(), clock());
    let layer = layer_on(&ring, &clock);
    let app = app(layer.clone());
    let alice = layer.test_session("alice", admin()).unwrap();
    let (res, body) = send(&app, request_with_session(get_req("/me"), &alice)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(body.starts_with(r#"alice ["admin"] "#), "{body}");
    assert!(set_cookies(&res).is_empty());

    // Claims too large for one cookie: minted in chunks, as the layer writes them.
    let many = User {
        roles: (0..400).map(|i| format!("role-{i}")).collect(),
    };
    let big = layer.test_session("bob", many).unwrap();
    let cookie = big.cookie_header().unwrap();
    assert!(cookie.contains("__Host-session.1="), "{cookie}");
    let (res, body) = send(&app, request_with_session(get_req("/me"), &big)).await;
    assert_eq!(res.status(), StatusCode::OK, "{body}");
    assert!(body.starts_with("bob "));

    // A bearer layer: the token goes in `authorization`.
    let api = SessionLayer::<User>::builder(ring)
        .transport(Transport::Bearer)
        .clock(clock)
        .build()
        .unwrap();
    let carol = api.test_session("carol", admin()).unwrap();
    assert!(carol.cookie_header().is_none());
    let req = request_with_session(get_req("/me"), &carol);
    assert!(req.headers()["authorization"]
        .to_str()
        .unwrap()
        .starts_with("Bearer eyJ"));
    let (res, body) = send(&self::app(api), req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(body.starts_with("carol "));
    // The token of one layer does not open in another purpose's layer.
    let (res, _) = send(&app, carol.attach_bearer(get_req("/me"))).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(format!("{carol:?}").contains("token_len"));
    assert!(!format!("{carol:?}").contains(carol.token()));
}

#[tokio::test]
async fn rejections_can_be_json_and_carry_a_bearer_challenge() {
    let (ring, clock) = (ring(), clock());
    // Default: plain text, and no challenge for cookies.
    let (res, body) = send(&app(layer_on(&ring, &clock)), get_req("/me")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(body, "no valid session: log in first");
    assert!(res.headers().get(WWW_AUTHENTICATE).is_none());

    let api = SessionLayer::<User>::builder(ring)
        .transport(Transport::Bearer)
        .rejection_format(RejectionFormat::Json)
        .clock(clock)
        .build()
        .unwrap();
    let api = app(api);
    let (res, body) = send(&api, get_req("/me")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"], "no_session");
    assert_eq!(res.headers()[WWW_AUTHENTICATE], "Bearer");

    let mut req = get_req("/me");
    req.headers_mut().insert(
        "authorization",
        "Bearer not.a.token.at.all".parse().unwrap(),
    );
    let (res, _) = send(&api, req).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()[WWW_AUTHENTICATE],
        r#"Bearer error="invalid_token""#
    );

    // `Result<Session<T>, SessionRejection>`: the handler answers it.
    let (res, body) = send(&api, get_req("/custom")).await;
    assert_eq!(
        (res.status(), body.as_str()),
        (StatusCode::FORBIDDEN, "log in")
    );
    // Without the layer the rejection is the app's bug: 500.
    let bare = Router::new().route("/custom", get(custom));
    let (res, body) = send(&bare, get_req("/custom")).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("without SessionLayer"), "{body}");
}

#[tokio::test]
async fn cycle_moves_the_session_to_a_new_sid_and_revokes_the_old_one() {
    let (ring, clock) = (ring(), clock());
    let layer = layer_on(&ring, &clock);
    let app = app(layer.clone());
    let alice = layer.test_session("alice", admin()).unwrap();
    let old = alice.cookie_header().unwrap().to_owned();
    let (_, before) = send(&app, with_cookie(get_req("/me"), &old)).await;

    let (res, body) = send(&app, with_cookie(post_req("/demote"), &old)).await;
    assert_eq!(body, "demoted");
    let new = cookie_from(&res);
    let (res, after) = send(&app, with_cookie(get_req("/me"), &new)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(after.starts_with("alice [] "), "{after}");
    assert_ne!(
        before.rsplit(' ').next(),
        after.rsplit(' ').next(),
        "a new sid"
    );
    // The old token, with the old roles, is refused at once (not at its exp).
    let (res, _) = send(&app, with_cookie(get_req("/me"), &old)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Cycling alone keeps the claims.
    let (res, body) = send(&app, with_cookie(post_req("/cycle"), &new)).await;
    assert_eq!(body, "cycled");
    let newer = cookie_from(&res);
    let (_, again) = send(&app, with_cookie(get_req("/me"), &newer)).await;
    assert!(again.starts_with("alice [] "));
    let (res, _) = send(&app, with_cookie(get_req("/me"), &new)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Without a session: a typed error, nothing written.
    let (res, body) = send(&app, post_req("/cycle")).await;
    assert_eq!(body, "no session");
    assert!(set_cookies(&res).is_empty());
}

#[tokio::test]
async fn a_session_can_have_shorter_lifetimes_and_a_browser_session_cookie() {
    let (ring, clock) = (ring(), clock());
    let long = Lifetimes::new(
        Duration::from_secs(15 * 60),
        Duration::from_secs(30 * 86_400),
        Duration::from_secs(90 * 86_400),
    );
    let layer = SessionLayer::<User>::builder(ring)
        .clock(clock.clone())
        .lifetimes(long)
        .build()
        .unwrap();
    let app = app(layer.clone());
    let short = SessionLifetimes::new(Lifetimes::new(
        Duration::from_secs(15 * 60),
        Duration::from_secs(3_600),
        Duration::from_secs(12 * 3_600),
    ))
    .browser_session(true);

    // Through a handler: start_with writes a cookie without Max-Age.
    let login = |lifetimes: Option<SessionLifetimes>| {
        let app = Router::new()
            .route(
                "/login",
                post(move |h: SessionHandle<User>| async move {
                    match lifetimes {
                        Some(l) => h.start_with("alice", admin(), l),
                        None => h.start("alice", admin()),
                    }
                    .map(|()| "in")
                    .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
                }),
            )
            .layer(layer.clone());
        async move { send(&app, post_req("/login")).await.0 }
    };
    let res = login(Some(short)).await;
    let set = set_cookies(&res);
    assert_eq!(set.len(), 1);
    assert!(
        !set[0].contains("Max-Age"),
        "browser-session cookie: {set:?}"
    );
    let short_cookie = cookie_from(&res);
    let res = login(None).await;
    assert!(set_cookies(&res)[0].contains("Max-Age="));
    let long_cookie = cookie_from(&res);

    // 16 minutes on: renewed, and the renewed cookie is still a browser-session one.
    clock.advance(Duration::from_secs(16 * 60));
    let (res, _) = send(&app, with_cookie(get_req("/me"), &short_cookie)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let renewed = set_cookies(&res);
    assert_eq!(renewed.len(), 1);
    assert!(!renewed[0].contains("Max-Age"), "{renewed:?}");
    let short_cookie = cookie_from(&res);

    // Idle for two hours: the short session is over, the long one renews.
    clock.advance(Duration::from_secs(2 * 3_600));
    let (res, _) = send(&app, with_cookie(get_req("/me"), &short_cookie)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let (res, _) = send(&app, with_cookie(get_req("/me"), &long_cookie)).await;
    assert_eq!(res.status(), StatusCode::OK);

    // Longer than the layer's: refused, nothing changes.
    let too_long = SessionLifetimes::new(Lifetimes::new(
        Duration::from_secs(60),
        Duration::from_secs(60),
        Duration::from_secs(100 * 86_400),
    ));
    assert!(matches!(
        layer.test_session_with("alice", admin(), too_long),
        Err(StartError::LifetimesTooLong { .. })
    ));
    let res = login(Some(too_long)).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookies(&res).is_empty());
}

/// A streaming response: the headers leave when the handler returns, while the stream
/// (here: a task holding the handle) goes on. A change it makes cannot reach the client,
/// so it is an error, not a silent loss.
#[tokio::test]
async fn a_change_after_the_headers_left_is_an_error_not_a_silent_loss() {
    let (ring, clock) = (ring(), clock());
    let layer = layer_on(&ring, &clock);
    let kept: Arc<Mutex<Option<SessionHandle<User>>>> = Arc::default();
    let slot = kept.clone();
    let app = Router::new()
        .route(
            "/stream",
            get(move |h: SessionHandle<User>| {
                let slot = slot.clone();
                async move {
                    *slot.lock().unwrap() = Some(h);
                    "streaming"
                }
            }),
        )
        .layer(layer.clone());
    let alice = layer.test_session("alice", admin()).unwrap();
    let (res, _) = send(&app, request_with_session(get_req("/stream"), &alice)).await;
    assert!(set_cookies(&res).is_empty());
    let handle = kept.lock().unwrap().take().unwrap();
    assert!(matches!(
        handle.update(|u| u.roles.clear()),
        Err(UpdateError::ResponseSent)
    ));
    assert!(matches!(
        handle.start("mallory", admin()),
        Err(StartError::ResponseSent)
    ));
    assert!(matches!(
        handle.cycle().await,
        Err(CycleError::ResponseSent)
    ));
    // Nothing changed: the session is still alice's with her roles.
    let claims = handle.claims().unwrap();
    assert_eq!(claims.sub.as_deref(), Some("alice"));
    assert_eq!(claims.app, admin());
    // A logout still works after the headers: it is the revocation that counts.
    handle.end().await.unwrap();
    let (res, _) = send(&app, request_with_session(get_req("/stream"), &alice)).await;
    assert!(
        !set_cookies(&res).is_empty(),
        "the revoked cookie is cleared"
    );
}

#[tokio::test]
async fn claims_evolve_by_adding_optional_fields() {
    #[derive(Clone, Serialize, Deserialize)]
    struct V2 {
        roles: Vec<String>,
        #[serde(default)]
        theme: String,
        nickname: Option<String>,
    }
    #[derive(Clone, Serialize, Deserialize)]
    struct Required {
        roles: Vec<String>,
        tenant: String,
    }
    async fn me2(s: Session<V2>) -> String {
        format!(
            "{} {:?} {:?} {:?}",
            s.sub(),
            s.app.roles,
            s.app.theme,
            s.app.nickname
        )
    }
    async fn me3(s: Session<Required>) -> String {
        s.app.tenant.clone()
    }
    let (ring, clock) = (ring(), clock());
    let old = layer_on(&ring, &clock)
        .test_session("alice", admin())
        .unwrap();
    let v2 = SessionLayer::<V2>::builder(ring.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let app2 = Router::new().route("/me", get(me2)).layer(v2);
    let (res, body) = send(&app2, request_with_session(get_req("/me"), &old)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body, r#"alice ["admin"] "" None"#);
    // A new required field cannot be filled in: those sessions are refused (documented).
    let v3 = SessionLayer::<Required>::builder(ring)
        .clock(clock)
        .build()
        .unwrap();
    let app3 = Router::new().route("/me", get(me3)).layer(v3);
    let (res, _) = send(&app3, request_with_session(get_req("/me"), &old)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_issuer_added_later_keeps_sessions_until_the_grace_date() {
    async fn iss(h: SessionHandle<User>) -> String {
        h.claims()
            .and_then(|c: Claims<User>| c.iss)
            .unwrap_or_else(|| "-".into())
    }
    let (ring, clock) = (ring(), clock());
    let before = layer_on(&ring, &clock)
        .test_session("alice", admin())
        .unwrap();
    let with_issuer = |grace: Option<u64>| {
        let mut b = SessionLayer::<User>::builder(ring.clone())
            .clock(clock.clone())
            .issuer("shop");
        if let Some(g) = grace {
            b = b.accept_missing_issuer_until(UnixTime::from_secs(g));
        }
        let layer = b.build().unwrap();
        (
            layer.clone(),
            Router::new().route("/iss", get(iss)).layer(layer),
        )
    };
    // Without grace: every earlier session is refused (what the issue reproduced).
    let (_, strict) = with_issuer(None);
    let (res, body) = send(&strict, request_with_session(get_req("/iss"), &before)).await;
    assert_eq!(body, "-");
    assert!(!set_cookies(&res).is_empty(), "cleared");

    let grace_end = T0 + 86_400;
    let (layer, lenient) = with_issuer(Some(grace_end));
    let (res, body) = send(&lenient, request_with_session(get_req("/iss"), &before)).await;
    assert_eq!(body, "shop", "taken as this issuer's");
    let resealed = cookie_from(&res);
    assert!(
        resealed.starts_with("__Host-session=eyJ"),
        "re-sealed with iss"
    );
    let (res, body) = send(&strict, with_cookie(get_req("/iss"), &resealed)).await;
    assert_eq!(body, "shop", "the re-sealed token passes the strict layer");
    assert!(set_cookies(&res).is_empty());
    // Another issuer is refused even during the grace period.
    let other = SessionLayer::<User>::builder(ring.clone())
        .clock(clock.clone())
        .issuer("blog")
        .purpose(layer.purpose())
        .build()
        .unwrap()
        .test_session("eve", admin())
        .unwrap();
    let (_, body) = send(&lenient, request_with_session(get_req("/iss"), &other)).await;
    assert_eq!(body, "-");
    // From the grace date on, a token without iss is refused again.
    clock.set(UnixTime::from_secs(grace_end));
    let (_, body) = send(&lenient, request_with_session(get_req("/iss"), &before)).await;
    assert_eq!(body, "-");
    let fresh = layer.test_session("bob", admin()).unwrap();
    let (_, body) = send(&lenient, request_with_session(get_req("/iss"), &fresh)).await;
    assert_eq!(body, "shop");
}

#[tokio::test]
async fn one_switch_for_local_development() {
    let ring = ring();
    let dev = |on: bool| {
        SessionLayer::<User>::builder(ring.clone())
            .host_prefix()
            .dangerous()
            .local_development(on)
            .done()
            .build()
            .unwrap()
    };
    let login = Router::new()
        .route(
            "/login",
            post(|h: SessionHandle<User>| async move { h.start("alice", admin()).unwrap() }),
        )
        .layer(dev(true));
    let (res, _) = send(&login, post_req("/login")).await;
    let set = set_cookies(&res).join("\n");
    assert!(set.starts_with("session=eyJ"), "{set}");
    assert!(!set.contains("Secure"), "{set}");
    assert!(set.contains("HttpOnly"));
    assert_eq!(dev(true).cookie_name(), "session");
    assert_eq!(dev(false).cookie_name(), "__Host-session");
    // The old way still fails loudly, as it should.
    let err = SessionLayer::<User>::builder(ring)
        .host_prefix()
        .dangerous()
        .allow_insecure_cookie()
        .done()
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::HostPrefixInsecure);
}

/// The client layer around a tonic-like client: sends the token it holds, keeps the one
/// a login or renewal sends back, shared by clones; one in-process server behind the
/// session layer stands in for the network.
#[tokio::test]
async fn the_client_layer_sends_and_keeps_the_token() {
    let (ring, clock) = (ring(), clock());
    let server = SessionLayer::<User>::builder(ring)
        .transport(Transport::Bearer)
        .clock(clock.clone())
        .build()
        .unwrap();
    let handler = tower::service_fn(|req: Request<Body>| async move {
        let h = req
            .extensions()
            .get::<SessionHandle<User>>()
            .unwrap()
            .clone();
        let body = match req.uri().path() {
            "/login" => {
                h.start("alice", admin()).unwrap();
                "in".to_owned()
            }
            _ => h.claims().map(|c| c.sub.unwrap()).unwrap_or_default(),
        };
        Ok::<_, Infallible>(Response::new(Body::from(body)))
    });
    let token = TokenCell::new();
    let client = BearerLayer::new(token.clone()).layer(server.layer(handler));
    let call = |path: &'static str| {
        let c = client.clone();
        async move {
            let res = c.oneshot(get_req(path)).await.unwrap();
            String::from_utf8(to_bytes(res.into_body(), 1024).await.unwrap().to_vec()).unwrap()
        }
    };
    assert_eq!(call("/who").await, "");
    assert!(token.get().is_none());
    assert_eq!(call("/login").await, "in");
    let first = token.get().unwrap();
    assert!(
        first.starts_with("eyJ"),
        "the token itself, without a scheme"
    );
    assert_eq!(call("/who").await, "alice", "a clone sends the kept token");
    // Past exp: the server renews, and the client keeps the renewed token.
    clock.advance(Duration::from_secs(16 * 60));
    assert_eq!(call("/who").await, "alice");
    let second = token.get().unwrap();
    assert_ne!(first, second);
    assert_eq!(call("/who").await, "alice");
    // Threads share it.
    let t = token.clone();
    std::thread::spawn(move || t.clear()).join().unwrap();
    assert_eq!(call("/who").await, "");
    assert!(token.set("bad\ntoken").is_err());
    assert!(!format!("{token:?}").contains("eyJ"));
}

/// Everything the layer reports, through a recorder installed for the test.
mod metrics_recorded {
    use metrics::{
        Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata,
        Recorder, SharedString, Unit,
    };

    use super::*;

    #[derive(Clone, Default)]
    struct Recorded(Arc<Mutex<BTreeMap<String, f64>>>);

    struct Slot(String, Recorded);

    impl Recorded {
        fn add(&self, key: &str, v: f64) {
            *self.0.lock().unwrap().entry(key.to_owned()).or_default() += v;
        }

        fn get(&self, key: &str) -> f64 {
            self.0.lock().unwrap().get(key).copied().unwrap_or_default()
        }

        fn slot(&self, key: &Key) -> Arc<Slot> {
            let mut name = key.name().to_owned();
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            if !labels.is_empty() {
                name = format!("{name}{{{}}}", labels.join(","));
            }
            Arc::new(Slot(name, self.clone()))
        }
    }

    #[allow(clippy::cast_precision_loss)]
    impl CounterFn for Slot {
        fn increment(&self, v: u64) {
            self.1.add(&self.0, v as f64);
        }
        fn absolute(&self, v: u64) {
            self.1 .0.lock().unwrap().insert(self.0.clone(), v as f64);
        }
    }

    impl GaugeFn for Slot {
        fn increment(&self, v: f64) {
            self.1.add(&self.0, v);
        }
        fn decrement(&self, v: f64) {
            self.1.add(&self.0, -v);
        }
        fn set(&self, v: f64) {
            self.1 .0.lock().unwrap().insert(self.0.clone(), v);
        }
    }

    impl HistogramFn for Slot {
        fn record(&self, _: f64) {
            self.1.add(&format!("{}_count", self.0), 1.0);
        }
    }

    impl Recorder for Recorded {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(self.slot(key))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(self.slot(key))
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::from_arc(self.slot(key))
        }
    }

    #[test]
    fn the_layer_reports_what_operators_graph() {
        let rec = Recorded::default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (ring, clock) = (ring(), clock());
        let kid = ring.load().active().kid().to_owned();
        metrics::with_local_recorder(&rec, || {
            rt.block_on(async {
                let layer = layer_on(&ring, &clock);
                let app = Router::new()
                    .route("/me", get(me))
                    .route("/logout", post(logout))
                    .route(
                        "/login",
                        post(|h: SessionHandle<User>| async move {
                            h.start("alice", admin()).unwrap();
                        }),
                    )
                    .layer(layer.clone());
                let (res, _) = send(&app, post_req("/login")).await;
                let cookie = cookie_from(&res);
                send(&app, with_cookie(get_req("/me"), &cookie)).await;
                send(&app, with_cookie(get_req("/me"), "__Host-session=garbage")).await;
                // A cross-site form post is refused before the handler.
                let mut req = with_cookie(post_req("/logout"), &cookie);
                req.headers_mut()
                    .insert("sec-fetch-site", "cross-site".parse().unwrap());
                let (res, _) = send(&app, req).await;
                assert_eq!(res.status(), StatusCode::FORBIDDEN);
                // Renewal past exp: the authoritative check is timed.
                clock.advance(Duration::from_secs(16 * 60));
                let (res, _) = send(&app, with_cookie(get_req("/me"), &cookie)).await;
                let renewed = cookie_from(&res);
                send(&app, with_cookie(post_req("/logout"), &renewed)).await;
                send(&app, with_cookie(get_req("/me"), &renewed)).await;
                clock.advance(Duration::from_secs(30 * 86_400));
                let other: TestSession = layer.test_session("bob", admin()).unwrap();
                clock.advance(Duration::from_secs(8 * 86_400));
                send(&app, request_with_session(get_req("/me"), &other)).await;
            });
        });
        let m = |k: &str| rec.get(k);
        assert_eq!(m("jwe_session_sessions_started_total"), 1.0);
        // /me fresh, /me renewed, and /logout with the renewed cookie.
        assert_eq!(m("jwe_session_sessions_opened_total"), 3.0);
        assert_eq!(m("jwe_session_sessions_renewed_total"), 1.0);
        assert_eq!(
            m("jwe_session_sessions_refused_total{reason=malformed}"),
            1.0
        );
        assert_eq!(m("jwe_session_sessions_refused_total{reason=revoked}"), 1.0);
        assert_eq!(m("jwe_session_sessions_refused_total{reason=expired}"), 1.0);
        assert_eq!(m("jwe_session_revocations_total{scope=session}"), 1.0);
        assert_eq!(m("jwe_session_cross_origin_refusals_total"), 1.0);
        assert_eq!(m("jwe_session_authoritative_check_seconds_count"), 1.0);
        // The count at the last seal the layer wrote: the login and the renewal.
        assert_eq!(m(&format!("jwe_session_key_seals{{kid={kid}}}")), 2.0);
        assert!(m(&format!("jwe_session_key_budget_used_ratio{{kid={kid}}}")) > 0.0);
        assert_eq!(
            jwe_session::metrics::SESSIONS_REFUSED,
            "jwe_session_sessions_refused_total"
        );
    }
}

/// A seal that fails for a reason other than the claims says so, not "could not be
/// serialized".
#[test]
fn start_errors_name_what_failed() {
    use jwe_session::SealError;
    let e = StartError::from(SealError::Encrypt);
    assert!(matches!(e, StartError::Seal(SealError::Encrypt)), "{e:?}");
    assert_eq!(e.to_string(), "the session could not be sealed");
    assert!(matches!(
        StartError::from(SealError::ClaimsNotObject),
        StartError::Claims(SealError::ClaimsNotObject)
    ));
    assert!(matches!(
        StartError::from(SealError::TooLarge { len: 9, max: 8 }),
        StartError::TooLarge { len: 9, max: 8 }
    ));
}
