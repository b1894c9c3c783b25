//! Revocation that reaches open connections (`Session::watch`, `SessionHandle::watch`) and
//! claims refreshed on demand (`refresh_claims_of` with the `on_renew` hook), through the
//! public API of `jwe-session` on a frozen clock.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::Path;
use axum::http::header::SET_COOKIE;
use axum::http::{Request, Response, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use jwe_session::core::{BoxFuture, CheckError, Revocation, SessionIds};
use jwe_session::testing::{request_with_session, TestSession};
use jwe_session::{
    Clock, KeyRing, KeyRingHandle, ManualClock, MemoryStore, Recorded, Renew, RevocationStore,
    RevokeError, Revoked, Session, SessionAdmin, SessionHandle, SessionLayer, UnixMicros, UnixTime,
    WatchError,
};
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

const T0: u64 = 1_800_000_000;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct User {
    roles: Vec<String>,
}

type Roles = Arc<Mutex<HashMap<String, Vec<String>>>>;

/// A layer whose renew hook reads roles from `table` (refusing users marked `banned`).
fn layer(
    clock: &Arc<ManualClock>,
    store: Arc<dyn RevocationStore>,
    table: &Roles,
) -> SessionLayer<User> {
    let table = Arc::clone(table);
    SessionLayer::<User>::builder(KeyRingHandle::new(KeyRing::generate()))
        .clock(clock.clone())
        .revocation_store(store)
        .on_renew(move |claims| {
            let roles = claims
                .sub
                .as_ref()
                .and_then(|sub| table.lock().unwrap().get(sub).cloned());
            async move {
                match roles {
                    Some(r) if r.iter().any(|r| r == "banned") => Renew::Refuse,
                    Some(roles) => Renew::Update(User { roles }),
                    None => Renew::Keep,
                }
            }
        })
        .build()
        .unwrap()
}

async fn me(session: Session<User>) -> String {
    format!("{} {:?}", session.sub(), session.app.roles)
}

async fn refresh(admin: SessionAdmin<User>, user: String) -> StatusCode {
    match admin.refresh_claims_of(user).await {
        Ok(_) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn app(layer: &SessionLayer<User>) -> Router {
    let admin = layer.admin();
    Router::new()
        .route("/me", get(me))
        .route(
            "/refresh/{user}",
            post(move |Path(user): Path<String>| refresh(admin.clone(), user)),
        )
        .layer(layer.clone())
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, Option<String>, String) {
    let res: Response<Body> = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let cookie = res
        .headers()
        .get(SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = to_bytes(res.into_body(), 1 << 16).await.unwrap();
    (status, cookie, String::from_utf8(body.to_vec()).unwrap())
}

fn get_with(path: &str, session: &TestSession) -> Request<Body> {
    request_with_session(Request::get(path).body(Body::empty()).unwrap(), session)
}

/// A request carrying the cookie a response set.
fn get_with_cookie(path: &str, set_cookie: &str) -> Request<Body> {
    let pair = set_cookie.split(';').next().unwrap();
    Request::get(path)
        .header("cookie", pair)
        .body(Body::empty())
        .unwrap()
}

fn user(roles: &[&str]) -> User {
    User {
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
    }
}

#[tokio::test]
async fn a_claims_refresh_renews_that_subjects_tokens_on_their_next_request() {
    let clock = Arc::new(ManualClock::new(UnixTime::from_secs(T0)));
    let table: Roles = Arc::default();
    let layer = layer(&clock, Arc::new(MemoryStore::new()), &table);
    let app = app(&layer);
    let alice = layer.test_session("alice", user(&["user"])).unwrap();
    let bob = layer.test_session("bob", user(&["user"])).unwrap();

    // Fresh tokens go without renewal, and without a lookup.
    let (status, cookie, body) = send(&app, get_with("/me", &alice)).await;
    assert_eq!(
        (status, cookie, body.as_str()),
        (StatusCode::OK, None, r#"alice ["user"]"#)
    );

    // Bob promotes alice: the table changes, and a refresh is issued, all in the same
    // second as alice's login (the clock is frozen).
    table
        .lock()
        .unwrap()
        .insert("alice".into(), vec!["admin".into()]);
    let req = request_with_session(
        Request::post("/refresh/alice").body(Body::empty()).unwrap(),
        &bob,
    );
    assert_eq!(send(&app, req).await.0, StatusCode::NO_CONTENT);

    // Alice's next request is renewed, through the hook, before its `exp`.
    let (status, cookie, body) = send(&app, get_with("/me", &alice)).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"alice ["admin"]"#)
    );
    let renewed = cookie.expect("a renewed cookie");
    // The renewed token is not caught by the refresh again, though no time has passed.
    let (status, cookie, body) = send(&app, get_with_cookie("/me", &renewed)).await;
    assert_eq!(
        (status, cookie, body.as_str()),
        (StatusCode::OK, None, r#"alice ["admin"]"#)
    );
    // Bob's token is untouched.
    let (_, cookie, body) = send(&app, get_with("/me", &bob)).await;
    assert_eq!((cookie, body.as_str()), (None, r#"bob ["user"]"#));

    // A hook that refuses ends the session at once: a ban through a refresh.
    table
        .lock()
        .unwrap()
        .insert("alice".into(), vec!["banned".into()]);
    layer.admin().refresh_claims_of("alice").await.unwrap();
    let (status, cookie, _) = send(&app, get_with_cookie("/me", &renewed)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(cookie.unwrap().contains("Max-Age=0"), "cookie cleared");

    // One access lifetime (plus leeway) later the entry is gone: tokens renew at `exp`.
    clock.advance(Duration::from_secs(15 * 60 + 62));
    assert!(layer
        .revocation_store()
        .refresh_due(
            SessionIds {
                sid: Some("x"),
                sub: Some("alice"),
                started: None,
                issued: None,
            },
            clock.now()
        )
        .is_none());
}

/// A store whose authoritative check fails (Redis down, say), over a memory store.
struct Unreachable(MemoryStore);

impl RevocationStore for Unreachable {
    fn check(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<Revoked> {
        self.0.check(ids, now)
    }

    fn refresh_due(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<UnixMicros> {
        self.0.refresh_due(ids, now)
    }

    fn check_authoritative<'a>(
        &'a self,
        _: SessionIds<'a>,
        _: UnixTime,
    ) -> BoxFuture<'a, Result<Option<Revoked>, CheckError>> {
        Box::pin(async {
            Err(CheckError::Timeout {
                after: Duration::from_millis(1),
            })
        })
    }

    fn revoke(&self, r: Revocation, now: UnixTime) -> BoxFuture<'_, Result<Recorded, RevokeError>> {
        self.0.revoke(r, now)
    }
}

/// A refresh the store cannot check still applies (the token is before its `exp`, which
/// the hot path trusts from memory anyway); it never logs the user out.
#[tokio::test]
async fn a_refresh_during_a_store_outage_applies_and_logs_nobody_out() {
    let clock = Arc::new(ManualClock::new(UnixTime::from_secs(T0)));
    let table: Roles = Arc::default();
    let layer = layer(&clock, Arc::new(Unreachable(MemoryStore::new())), &table);
    let app = app(&layer);
    let alice = layer.test_session("alice", user(&["user"])).unwrap();
    table
        .lock()
        .unwrap()
        .insert("alice".into(), vec!["admin".into()]);
    layer.admin().refresh_claims_of("alice").await.unwrap();
    let (status, cookie, body) = send(&app, get_with("/me", &alice)).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"alice ["admin"]"#)
    );
    assert!(cookie.is_some());
}

/// A handler that holds a watch of its session, as a WebSocket would, and reports how it
/// ended.
#[tokio::test]
async fn a_watch_from_the_extractor_or_the_handle_completes_on_logout() {
    let clock = Arc::new(ManualClock::new(UnixTime::from_secs(T0)));
    let store = Arc::new(MemoryStore::new());
    let layer = layer(&clock, store.clone(), &Roles::default());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watching = Router::new()
        .route(
            "/watch",
            get(move |session: Session<User>, handle: SessionHandle<User>| {
                let tx = tx.clone();
                async move {
                    let by_session = session.watch().unwrap();
                    let by_handle = handle.watch().unwrap();
                    tx.send(tokio::spawn(
                        async move { (by_session.await, by_handle.await) },
                    ))
                    .unwrap();
                    "watching"
                }
            }),
        )
        .route(
            "/anonymous",
            get(|handle: SessionHandle<User>| async move {
                matches!(handle.watch(), Err(WatchError::NoSession)).to_string()
            }),
        )
        .route(
            "/logout",
            post(|handle: SessionHandle<User>| async move {
                handle.end().await.unwrap();
            }),
        )
        .layer(layer.clone());
    let alice = layer.test_session("alice", user(&[])).unwrap();
    assert_eq!(
        send(&watching, get_with("/watch", &alice)).await.2,
        "watching"
    );
    let ended = rx.recv().await.unwrap();
    assert_eq!(store.watch_count(), 2);
    let anonymous = Request::get("/anonymous").body(Body::empty()).unwrap();
    assert_eq!(send(&watching, anonymous).await.2, "true");
    // Another request (another tab) logs out: the open "connection" hears of it.
    let logout = request_with_session(
        Request::post("/logout").body(Body::empty()).unwrap(),
        &alice,
    );
    assert_eq!(send(&watching, logout).await.0, StatusCode::OK);
    let (a, b) = tokio::time::timeout(Duration::from_secs(1), ended)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.revoked(), b.revoked()),
        (Some(Revoked::Session), Some(Revoked::Session))
    );
    assert_eq!(store.watch_count(), 0);
}

/// A refresh made by an instance whose clock is ahead of this one's: the renewal it
/// causes is stamped after it, so it happens once, not on every request until this
/// clock catches up.
#[tokio::test]
async fn a_refresh_from_a_clock_ahead_renews_once() {
    let clock = Arc::new(ManualClock::new(UnixTime::from_secs(T0)));
    let store = Arc::new(MemoryStore::new());
    let table: Roles = Arc::default();
    let layer = layer(&clock, store.clone(), &table);
    let app = app(&layer);
    let alice = layer.test_session("alice", user(&["user"])).unwrap();
    let ahead = UnixMicros::from(UnixTime::from_secs(T0 + 5));
    let refresh = Revocation::Tokens {
        sub: "alice".into(),
        at: ahead,
        until: UnixTime::from_secs(T0 + 1_000),
    };
    store.apply(&refresh, clock.now()).unwrap();
    table
        .lock()
        .unwrap()
        .insert("alice".into(), vec!["admin".into()]);
    let (_, cookie, body) = send(&app, get_with("/me", &alice)).await;
    assert_eq!(body, r#"alice ["admin"]"#);
    let renewed = cookie.expect("renewed");
    let (_, cookie, _) = send(&app, get_with_cookie("/me", &renewed)).await;
    assert_eq!(cookie, None, "renewed once only");
}

/// Issue 25, item 4: a claims refresh completes the watch of an open connection with
/// `WatchEnd::Refreshed`, and `recheck` runs the renew hook again: the connection goes on
/// with the new claims (watching again; the same refresh no longer covers them), and a ban
/// ends it.
#[tokio::test]
async fn an_open_connection_rechecks_on_a_refresh_and_a_ban_ends_it() {
    use jwe_session::{RecheckError, WatchEnd};
    let clock = Arc::new(ManualClock::new(UnixTime::from_secs(T0)));
    let store = Arc::new(MemoryStore::new());
    let table: Roles = Arc::default();
    let layer = layer(&clock, store.clone(), &table);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let connect = Router::new()
        .route(
            "/connect",
            get(move |handle: SessionHandle<User>| {
                let tx = tx.clone();
                async move {
                    let mut watch = handle.watch().unwrap();
                    // The "connection": outlives the request, as a WebSocket does.
                    tokio::spawn(async move {
                        loop {
                            let end = watch.await;
                            let checked = handle.recheck().await.map(|c| c.app.roles);
                            let stop = checked.is_err();
                            tx.send((end, checked)).unwrap();
                            if stop {
                                return;
                            }
                            watch = handle.watch().unwrap();
                        }
                    });
                    "connected"
                }
            }),
        )
        .layer(layer.clone());
    let alice = layer.test_session("alice", user(&["user"])).unwrap();
    assert_eq!(
        send(&connect, get_with("/connect", &alice)).await.2,
        "connected"
    );
    let next = |rx: &mut tokio::sync::mpsc::UnboundedReceiver<_>| {
        let got = rx.try_recv();
        got.map_err(|e| format!("{e:?}"))
    };
    table
        .lock()
        .unwrap()
        .insert("alice".into(), vec!["admin".into()]);
    layer.admin().refresh_claims_of("alice").await.unwrap();
    let (end, checked) = tokio::time::timeout(Duration::from_secs(1), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(end, WatchEnd::Refreshed { .. }), "{end:?}");
    assert_eq!(end.revoked(), None);
    assert_eq!(checked, Ok(vec!["admin".to_owned()]));
    tokio::task::yield_now().await;
    assert_eq!(store.watch_count(), 1, "watching the new claims");
    assert!(next(&mut rx).is_err(), "the new watch is not covered");
    // The ban: the hook refuses, the connection ends.
    table
        .lock()
        .unwrap()
        .insert("alice".into(), vec!["banned".into()]);
    layer.admin().refresh_claims_of("alice").await.unwrap();
    let (end, checked) = tokio::time::timeout(Duration::from_secs(1), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(end, WatchEnd::Refreshed { .. }));
    assert_eq!(checked, Err(RecheckError::Refused));
    tokio::task::yield_now().await;
    assert_eq!(store.watch_count(), 0);
}

/// `recheck` says why it does not vouch for a session: none, revoked, past the absolute
/// lifetime.
#[tokio::test]
async fn recheck_refuses_what_a_renewal_would() {
    use jwe_session::RecheckError;
    let clock = Arc::new(ManualClock::new(UnixTime::from_secs(T0)));
    let store = Arc::new(MemoryStore::new());
    let layer = layer(&clock, store.clone(), &Roles::default());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let app = Router::new()
        .route(
            "/hold",
            get(move |handle: SessionHandle<User>| {
                let tx = tx.clone();
                async move {
                    tx.send(handle).unwrap();
                    "held"
                }
            }),
        )
        .layer(layer.clone());
    let held = |session: Option<&TestSession>| {
        let req = match session {
            Some(s) => get_with("/hold", s),
            None => Request::get("/hold").body(Body::empty()).unwrap(),
        };
        let app = app.clone();
        async move { send(&app, req).await }
    };
    held(None).await;
    let anonymous = rx.recv().await.unwrap();
    assert_eq!(
        anonymous.recheck().await.unwrap_err(),
        RecheckError::NoSession
    );
    let alice = layer.test_session("alice", user(&[])).unwrap();
    held(Some(&alice)).await;
    let handle = rx.recv().await.unwrap();
    assert!(handle.recheck().await.is_ok(), "a fresh session passes");
    let sid = handle.claims().unwrap().sid.unwrap();
    let logout = Revocation::Session {
        sid,
        until: UnixTime::from_secs(T0 + 3600),
    };
    store.revoke(logout, clock.now()).await.unwrap();
    assert_eq!(handle.recheck().await.unwrap_err(), RecheckError::Revoked);
    assert!(handle.claims().is_none(), "no session after a refusal");
    let bob = layer.test_session("bob", user(&[])).unwrap();
    held(Some(&bob)).await;
    let handle = rx.recv().await.unwrap();
    clock.advance(jwe_session::Lifetimes::default().absolute());
    assert_eq!(handle.recheck().await.unwrap_err(), RecheckError::Expired);
    assert!(!RecheckError::Expired.to_string().is_empty());
}

/// Issue 25, item 4: a renew hook whose data is unreachable answers `Renew::Unavailable`:
/// no renewal and no session now, but the cookie stays, and the session renews once the
/// data answers. (Keeping the old claims instead would let a user banned during the outage
/// renew.)
#[tokio::test]
async fn a_hook_that_cannot_decide_keeps_the_cookie_and_renews_nothing() {
    let clock = Arc::new(ManualClock::new(UnixTime::from_secs(T0)));
    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let hook_down = Arc::clone(&down);
    let layer = SessionLayer::<User>::builder(KeyRingHandle::new(KeyRing::generate()))
        .clock(clock.clone())
        .on_renew(move |_| {
            let down = hook_down.load(std::sync::atomic::Ordering::SeqCst);
            async move {
                if down {
                    Renew::Unavailable
                } else {
                    Renew::Keep
                }
            }
        })
        .build()
        .unwrap();
    let app = app(&layer);
    let alice = layer.test_session("alice", user(&["user"])).unwrap();
    clock.advance(Duration::from_secs(16 * 60));
    let (status, cookie, _) = send(&app, get_with("/me", &alice)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(cookie, None, "the cookie is kept for later");
    down.store(false, std::sync::atomic::Ordering::SeqCst);
    let (status, cookie, body) = send(&app, get_with("/me", &alice)).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"alice ["user"]"#)
    );
    assert!(cookie.is_some(), "renewed");
}
