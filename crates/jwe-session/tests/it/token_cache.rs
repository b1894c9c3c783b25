//! The token cache (`SessionLayerBuilder::token_cache`) never changes an answer: the same
//! requests get the same responses with the cache on and off, and a token served from the
//! cache is refused as soon as a freshly opened one would be (tampering, logout, a rotation
//! that retires its key, the end of its lifetimes).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::http::header::SET_COOKIE;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use jwe_session::testing::TestSession;
use jwe_session::{
    KeyRing, KeyRingHandle, ManualClock, MemoryStore, Session, SessionHandle, SessionLayer,
    UnixTime,
};
use jwe_session_test_support::seeded_ring;
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

const T0: u64 = 1_800_000_000;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct User {
    roles: Vec<String>,
}

async fn me(session: Session<User>) -> String {
    format!("{} {:?}", session.sub(), session.app.roles)
}

async fn logout(handle: SessionHandle<User>) -> StatusCode {
    match handle.end().await {
        Ok(_) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// What a response said: status, whether it set a cookie, and its body.
type Answer = (StatusCode, bool, String);

async fn send(app: &Router, cookie: &str, method: &str, path: &str) -> Answer {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("cookie", cookie)
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let set = res.headers().contains_key(SET_COOKIE);
    let body = to_bytes(res.into_body(), 1 << 16).await.unwrap();
    (status, set, String::from_utf8(body.to_vec()).unwrap())
}

fn cookie(s: &TestSession) -> String {
    s.cookie_header().unwrap().to_owned()
}

/// One scripted day of requests, each answer labelled.
async fn transcript(capacity: usize) -> Vec<(String, Answer)> {
    let clock = Arc::new(ManualClock::new(UnixTime::from_secs(T0)));
    // Fixed keys, so that both runs see the same headers (and the same answers to a
    // forged one).
    let keys = KeyRingHandle::new(seeded_ring(&[("2026-11", 0x5a)]));
    let layer = SessionLayer::<User>::builder(keys.clone())
        .clock(clock.clone())
        .revocation_store(Arc::new(MemoryStore::new()))
        .token_cache(capacity)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/me", get(me))
        .route("/logout", post(logout))
        .layer(layer.clone());
    let roles = |r: &str| User {
        roles: vec![r.to_owned()],
    };
    let mut out = Vec::new();
    let alice = cookie(&layer.test_session("alice", roles("admin")).unwrap());
    let bob = cookie(&layer.test_session("bob", roles("user")).unwrap());

    for round in 0..3 {
        out.push((
            format!("alice {round}"),
            send(&app, &alice, "GET", "/me").await,
        ));
        out.push((format!("bob {round}"), send(&app, &bob, "GET", "/me").await));
    }
    // Every byte of alice's cookie value changed in turn: her token is cached by now, and
    // most of these land in its slot.
    let (name, value) = alice.split_once('=').unwrap();
    for i in 0..value.len() {
        let mut v = value.as_bytes().to_vec();
        v[i] = if v[i] == b'A' { b'B' } else { b'A' };
        let forged = format!("{name}={}", String::from_utf8(v).unwrap());
        out.push((
            format!("forged {i}"),
            send(&app, &forged, "GET", "/me").await,
        ));
    }
    out.push(("alice again".into(), send(&app, &alice, "GET", "/me").await));
    out.push(("logout".into(), send(&app, &alice, "POST", "/logout").await));
    out.push((
        "alice after logout".into(),
        send(&app, &alice, "GET", "/me").await,
    ));
    out.push((
        "bob after logout".into(),
        send(&app, &bob, "GET", "/me").await,
    ));

    // A rotation to a ring without the key that sealed bob's token.
    keys.replace(seeded_ring(&[("2026-12", 0xc3)]));
    out.push((
        "bob after rotation".into(),
        send(&app, &bob, "GET", "/me").await,
    ));
    let carol = cookie(&layer.test_session("carol", roles("user")).unwrap());
    out.push(("carol".into(), send(&app, &carol, "GET", "/me").await));
    out.push(("carol again".into(), send(&app, &carol, "GET", "/me").await));
    // Past `exp`: renewed (a new cookie), from the cache or not.
    clock.advance(Duration::from_secs(16 * 60));
    out.push((
        "carol past exp".into(),
        send(&app, &carol, "GET", "/me").await,
    ));
    // Past the absolute lifetime: refused.
    clock.advance(Duration::from_secs(8 * 24 * 60 * 60));
    out.push((
        "carol past absolute".into(),
        send(&app, &carol, "GET", "/me").await,
    ));
    out
}

#[tokio::test]
async fn the_cache_never_changes_an_answer() {
    let on = transcript(1024).await;
    let off = transcript(0).await;
    assert_eq!(on.len(), off.len());
    for ((label, a), (_, b)) in on.iter().zip(&off) {
        assert_eq!(a, b, "{label}: cache on vs off");
    }
    let answer = |label: &str| {
        on.iter()
            .find(|(l, _)| l == label)
            .map(|(_, a)| (a.0, a.1))
            .unwrap()
    };
    let ok = (StatusCode::OK, false);
    let refused = (StatusCode::UNAUTHORIZED, true);
    assert_eq!(answer("alice 2"), ok);
    assert_eq!(on[4].1 .2, r#"alice ["admin"]"#);
    assert_eq!(on[5].1 .2, r#"bob ["user"]"#);
    assert!(on
        .iter()
        .filter(|(l, _)| l.starts_with("forged"))
        .all(|(_, a)| a.0 == StatusCode::UNAUTHORIZED));
    assert_eq!(answer("alice again"), ok);
    assert_eq!(answer("alice after logout"), refused);
    assert_eq!(answer("bob after logout"), ok);
    // An unknown kid leaves the cookie for an instance that may hold the key.
    assert_eq!(
        answer("bob after rotation"),
        (StatusCode::UNAUTHORIZED, false)
    );
    assert_eq!(answer("carol again"), ok);
    assert_eq!(answer("carol past exp"), (StatusCode::OK, true));
    assert_eq!(answer("carol past absolute"), refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_each_get_their_own_session() {
    let layer = SessionLayer::<User>::builder(KeyRingHandle::new(KeyRing::generate()))
        // Two slots for eight users: tokens keep replacing each other.
        .token_cache(2)
        .build()
        .unwrap();
    let app = Router::new().route("/me", get(me)).layer(layer.clone());
    let users: Vec<(String, String)> = (0..8)
        .map(|i| {
            let sub = format!("user-{i}");
            let s = layer
                .test_session(sub.clone(), User { roles: vec![] })
                .unwrap();
            (sub, cookie(&s))
        })
        .collect();
    let tasks: Vec<_> = users
        .into_iter()
        .map(|(sub, c)| {
            let app = app.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    let (status, _, body) = send(&app, &c, "GET", "/me").await;
                    assert_eq!((status, body), (StatusCode::OK, format!("{sub} []")));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}
