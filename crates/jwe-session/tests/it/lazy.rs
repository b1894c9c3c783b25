//! The request's cookie is opened on the first access to its session, not before: a route
//! that never reads the session never decrypts, renews or re-seals anything, and a route
//! that does gets every answer it got when the layer opened every token up front (refused
//! tokens cleared, renewal with the renew hook, re-seal, revocation).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use jwe_session::{
    Claims, ManualClock, MemoryStore, Renew, Session, SessionHandle, SessionLayer, UnixTime,
};
use jwe_session_test_support::seeded_ring;
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

use crate::http::{send, Answer};

const T0: u64 = 1_800_000_000;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct User {
    role: String,
}

fn user() -> User {
    User {
        role: "editor".into(),
    }
}

/// A layer whose renew hook counts its calls, and the app: `/static` never reads the
/// session; the others read it in each way there is.
struct App {
    router: Router,
    layer: SessionLayer<User>,
    clock: ManualClock,
    renewals: Arc<AtomicUsize>,
}

fn app(token_cache: usize) -> App {
    let clock = ManualClock::new(UnixTime::from_secs(T0));
    let renewals = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&renewals);
    let layer = SessionLayer::<User>::builder(seeded_ring(&[("2026-12", 0x3c)]))
        .clock(Arc::new(clock.clone()))
        .revocation_store(Arc::new(MemoryStore::new()))
        .token_cache(token_cache)
        .on_renew(move |_: Claims<User>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Renew::Keep }
        })
        .build()
        .unwrap();
    let router = Router::new()
        .route(
            "/static",
            get(|| async { "static" }).post(|| async { "posted" }),
        )
        .route(
            "/me",
            get(|s: Session<User>| async move { s.sub().to_owned() }),
        )
        .route(
            "/maybe",
            get(|s: Option<Session<User>>| async move {
                s.map_or_else(|| "nobody".to_owned(), |s| s.sub().to_owned())
            }),
        )
        .route(
            "/handle",
            get(|h: SessionHandle<User>| async move { h.is_active().to_string() }),
        )
        .route(
            "/logout",
            post(|h: SessionHandle<User>| async move {
                h.end().await.unwrap();
                "out"
            }),
        )
        // As a hyper or tonic service reads it: from the extensions, opened by `load`.
        .route(
            "/raw",
            get(|req: Request<Body>| async move {
                let h = req.extensions().get::<SessionHandle<User>>().unwrap();
                h.load().await;
                h.claims().and_then(|c| c.sub).unwrap_or_default()
            }),
        )
        // The same, read synchronously without `load`.
        .route(
            "/sync",
            get(|req: Request<Body>| async move {
                let h = req.extensions().get::<SessionHandle<User>>().unwrap();
                h.claims().and_then(|c| c.sub).unwrap_or_default()
            }),
        )
        // Two clones load at once: one opening, one renewal.
        .route(
            "/twice",
            get(|req: Request<Body>| async move {
                let h = req.extensions().get::<SessionHandle<User>>().unwrap();
                let (a, b) = (h.clone(), h.clone());
                tokio::join!(a.load(), b.load());
                format!("{} {}", a.is_active(), b.is_active())
            }),
        )
        .layer(layer.clone());
    App {
        router,
        layer,
        clock,
        renewals,
    }
}

impl App {
    async fn send(&self, method: &str, path: &str, cookie: &str) -> Answer {
        let cookie = (!cookie.is_empty()).then_some(cookie);
        send(&self.router, method, path, cookie).await
    }

    async fn get(&self, path: &str, cookie: &str) -> Answer {
        self.send("GET", path, cookie).await
    }

    fn cookie(&self) -> String {
        let s = self.layer.test_session("alice", user()).unwrap();
        s.cookie_header().unwrap().to_owned()
    }

    fn renewals(&self) -> usize {
        self.renewals.load(Ordering::SeqCst)
    }
}

fn clears(a: &Answer) -> bool {
    a.set_cookie.iter().any(|c| c.contains("Max-Age=0"))
}

/// Past `exp` a session is renewed (the store's authoritative check, the renew hook, a
/// new cookie) only where it is read: a static route leaves the cookie as it came.
#[tokio::test]
async fn a_route_that_never_reads_the_session_leaves_the_token_unopened() {
    for cache in [0, 1024] {
        let app = app(cache);
        let cookie = app.cookie();
        app.clock.advance(Duration::from_secs(16 * 60));
        let a = app.get("/static", &cookie).await;
        assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "static"));
        assert!(a.set_cookie.is_empty(), "cache {cache}: {:?}", a.set_cookie);
        assert_eq!(
            app.renewals(),
            0,
            "cache {cache}: renewed on a static route"
        );
        // The next route that reads it renews it, as before.
        let a = app.get("/me", &cookie).await;
        assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "alice"));
        assert_eq!(a.set_cookie.len(), 1, "cache {cache}");
        assert!(!clears(&a));
        assert_eq!(app.renewals(), 1);
    }
}

/// Every way of reading the session opens it, with the same answers as an eager layer:
/// a valid session, a renewal past `exp`, a refused token cleared.
#[tokio::test]
async fn every_way_of_reading_the_session_opens_it() {
    let app = app(0);
    let cookie = app.cookie();
    for (path, body) in [
        ("/me", "alice"),
        ("/maybe", "alice"),
        ("/handle", "true"),
        ("/raw", "alice"),
        ("/sync", "alice"),
        ("/twice", "true true"),
    ] {
        let a = app.get(path, &cookie).await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (StatusCode::OK, body),
            "{path}"
        );
        assert!(a.set_cookie.is_empty(), "{path}: {:?}", a.set_cookie);
    }
    // Past exp: each reading route renews (once per request, even when two clones load).
    app.clock.advance(Duration::from_secs(16 * 60));
    for (n, (path, body)) in [
        ("/me", "alice"),
        ("/maybe", "alice"),
        ("/handle", "true"),
        ("/raw", "alice"),
        ("/twice", "true true"),
    ]
    .into_iter()
    .enumerate()
    {
        let a = app.get(path, &cookie).await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (StatusCode::OK, body),
            "{path}"
        );
        assert_eq!(a.set_cookie.len(), 1, "{path}: renewed");
        assert_eq!(app.renewals(), n + 1, "{path}");
    }
}

/// A forged or tampered token is cleared in the response of a request that reads the
/// session (every reading route, 401 where the route requires one); a route that never
/// reads it does not decrypt it and leaves it. An unreadable cookie (not a token at all)
/// (a chunked frame missing its chunk) costs nothing to judge and is cleared everywhere.
#[tokio::test]
async fn a_refused_token_is_cleared_where_the_session_is_read() {
    let app = app(0);
    let cookie = app.cookie();
    let (name, token) = cookie.split_once('=').unwrap();
    let mut bytes = token.as_bytes().to_vec();
    let at = bytes.len() - 30;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let forged = format!("{name}={}", String::from_utf8(bytes).unwrap());
    let a = app.get("/static", &forged).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.set_cookie.is_empty());
    for (path, status) in [
        ("/me", StatusCode::UNAUTHORIZED),
        ("/maybe", StatusCode::OK),
        ("/handle", StatusCode::OK),
        ("/raw", StatusCode::OK),
        ("/sync", StatusCode::OK),
    ] {
        let a = app.get(path, &forged).await;
        assert_eq!(a.status, status, "{path}");
        assert!(clears(&a), "{path}: {:?}", a.set_cookie);
    }
    // Chunk 1 of 2 missing: not a token at all.
    let a = app.get("/static", &format!("{name}=~2~abcdefgh~x")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(clears(&a), "{:?}", a.set_cookie);
}

/// A logout is in force at once for every route that reads the session; the static
/// route neither sees nor clears the revoked cookie.
#[tokio::test]
async fn a_revoked_session_is_refused_where_it_is_read() {
    let app = app(1024);
    let cookie = app.cookie();
    assert_eq!(app.get("/me", &cookie).await.body, "alice");
    let a = app.send("POST", "/logout", &cookie).await;
    assert!(clears(&a));
    let a = app.get("/static", &cookie).await;
    assert!(a.set_cookie.is_empty());
    let a = app.get("/me", &cookie).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(clears(&a));
}

/// The cross-origin check still runs before anything else, on every route.
#[tokio::test]
async fn the_cross_origin_check_still_runs_first() {
    let app = app(0);
    let cookie = app.cookie();
    let req = Request::builder()
        .method("POST")
        .uri("/static")
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .body(Body::empty())
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

/// Read synchronously without `load`, a session that needs renewal (which waits for
/// the store) is no session for that request, and its cookie stays for the next; a fresh
/// one reads as before.
#[tokio::test]
async fn a_synchronous_first_read_never_skips_the_renewal_check() {
    let app = app(0);
    let cookie = app.cookie();
    assert_eq!(app.get("/sync", &cookie).await.body, "alice");
    app.clock.advance(Duration::from_secs(16 * 60));
    let a = app.get("/sync", &cookie).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, ""));
    assert!(a.set_cookie.is_empty(), "{:?}", a.set_cookie);
    assert_eq!(app.renewals(), 0);
    assert_eq!(app.get("/raw", &cookie).await.body, "alice");
    assert_eq!(app.renewals(), 1);
}
