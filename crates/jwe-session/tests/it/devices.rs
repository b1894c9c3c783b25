//! "Your devices" (issue 29): the session registry as the layer writes it (login, renewal,
//! a new sid, logout) and never on an ordinary request; a user's list, ending one of their
//! own sessions and never another user's; the per-user cap, both policies; a store without
//! a registry. On a frozen clock, through real requests.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::Path;
use axum::http::header::{SET_COOKIE, USER_AGENT};
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use jwe_session::core::{BoxFuture, RegistryError, Revocation, SessionIds, SessionRegistry};
use jwe_session::{
    ConfigError, DeviceInfo, DevicesError, EndDeviceError, KeyRing, KeyRingHandle, ManualClock,
    MemoryStore, OverCap, Recorded, RevocationStore, RevokeError, Revoked, SessionHandle,
    SessionLayer, SessionRecord, StartError, UnixTime,
};
use tower::ServiceExt;

const T0: u64 = 1_800_000_000;

/// A store that counts what is written to its registry (and can hide it).
struct Counting {
    inner: MemoryStore,
    writes: AtomicUsize,
    registry: bool,
}

impl Counting {
    fn new(registry: bool) -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryStore::new(),
            writes: AtomicUsize::new(0),
            registry,
        })
    }

    fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }
}

impl SessionRegistry for Counting {
    fn record<'a>(
        &'a self,
        record: SessionRecord,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<(), RegistryError>> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.registry().unwrap().record(record, now)
    }

    fn remove<'a>(
        &'a self,
        sub: &'a str,
        sid: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<(), RegistryError>> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.registry().unwrap().remove(sub, sid, now)
    }

    fn records_of<'a>(
        &'a self,
        sub: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Vec<SessionRecord>, RegistryError>> {
        self.inner.registry().unwrap().records_of(sub, now)
    }
}

impl RevocationStore for Counting {
    fn check(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<Revoked> {
        self.inner.check(ids, now)
    }

    fn registry(&self) -> Option<&dyn SessionRegistry> {
        self.registry.then_some(self as &dyn SessionRegistry)
    }

    fn revoke(
        &self,
        revocation: Revocation,
        now: UnixTime,
    ) -> BoxFuture<'_, Result<Recorded, RevokeError>> {
        self.inner.revoke(revocation, now)
    }
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(UnixTime::from_secs(T0)))
}

fn layer(
    clock: &Arc<ManualClock>,
    store: Arc<dyn RevocationStore>,
    cap: Option<(usize, OverCap)>,
) -> Result<SessionLayer<()>, ConfigError> {
    let mut b = SessionLayer::<()>::builder(KeyRingHandle::new(KeyRing::generate()))
        .clock(clock.clone())
        .revocation_store(store);
    if let Some((max, policy)) = cap {
        b = b.max_sessions_per_user(max).over_cap(policy);
    }
    b.build()
}

async fn login(
    handle: SessionHandle<()>,
    Path(user): Path<String>,
    req: Request<Body>,
) -> impl IntoResponse {
    let ua = req
        .headers()
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    handle.describe_device(DeviceInfo::from_user_agent(ua));
    match handle.start_checked(user, ()).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(StartError::TooManySessions { max }) => {
            (StatusCode::CONFLICT, format!("at most {max}")).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn devices(handle: SessionHandle<()>) -> impl IntoResponse {
    match handle.devices().await {
        Ok(list) => serde_json::to_string(&list).unwrap().into_response(),
        Err(DevicesError::NoSession) => StatusCode::UNAUTHORIZED.into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e:?}")).into_response(),
    }
}

async fn end(handle: SessionHandle<()>, Path(sid): Path<String>) -> StatusCode {
    match handle.end_device(&sid).await {
        Ok(_) => StatusCode::NO_CONTENT,
        Err(EndDeviceError::NotFound) => StatusCode::NOT_FOUND,
        Err(EndDeviceError::NoSession) => StatusCode::UNAUTHORIZED,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

async fn me(handle: SessionHandle<()>) -> StatusCode {
    if handle.is_active() {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

async fn cycle(handle: SessionHandle<()>) -> StatusCode {
    handle.cycle().await.unwrap();
    StatusCode::NO_CONTENT
}

async fn logout(handle: SessionHandle<()>) -> StatusCode {
    handle.end().await.unwrap();
    StatusCode::NO_CONTENT
}

fn app(layer: &SessionLayer<()>) -> Router {
    Router::new()
        .route("/login/{user}", post(login))
        .route("/devices", get(devices))
        .route("/devices/end/{sid}", post(end))
        .route("/me", get(me))
        .route("/cycle", post(cycle))
        .route("/logout", post(logout))
        .layer(layer.clone())
}

/// One browser's cookie: the session cookie's `name=value`, if it has one.
#[derive(Default, Clone, Debug)]
struct Jar(Option<String>);

impl Jar {
    async fn send(&mut self, app: &Router, method: &str, path: &str) -> (StatusCode, String) {
        let mut req = Request::builder().method(method).uri(path).header(
            USER_AGENT,
            "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
        );
        if let Some(c) = &self.0 {
            req = req.header("cookie", c);
        }
        let res = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        for v in res.headers().get_all(SET_COOKIE) {
            let pair = v.to_str().unwrap().split(';').next().unwrap().to_owned();
            let (_, value) = pair.split_once('=').unwrap();
            self.0 = (!value.is_empty()).then_some(pair.clone());
        }
        let body = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn devices(&mut self, app: &Router) -> Vec<serde_json::Value> {
        let (status, body) = self.send(app, "GET", "/devices").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

fn sids(list: &[serde_json::Value]) -> Vec<String> {
    list.iter()
        .map(|d| d["sid"].as_str().unwrap().to_owned())
        .collect()
}

fn current(list: &[serde_json::Value]) -> String {
    let mine: Vec<_> = list.iter().filter(|d| d["current"] == true).collect();
    assert_eq!(mine.len(), 1, "{list:?}");
    mine[0]["sid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn each_device_lists_both_and_one_ends_the_other() {
    let clock = clock();
    let layer = layer(&clock, Arc::new(MemoryStore::new()), None).unwrap();
    let app = app(&layer);
    let (mut laptop, mut phone) = (Jar::default(), Jar::default());
    assert_eq!(
        laptop.send(&app, "POST", "/login/alice").await.0,
        StatusCode::NO_CONTENT
    );
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        phone.send(&app, "POST", "/login/alice").await.0,
        StatusCode::NO_CONTENT
    );

    let from_laptop = laptop.devices(&app).await;
    let from_phone = phone.devices(&app).await;
    assert_eq!(sids(&from_laptop), sids(&from_phone));
    assert_eq!(from_laptop.len(), 2);
    let (laptop_sid, phone_sid) = (current(&from_laptop), current(&from_phone));
    assert_ne!(laptop_sid, phone_sid);
    assert_eq!(
        sids(&from_laptop),
        [laptop_sid.clone(), phone_sid.clone()],
        "oldest first"
    );
    let d = &from_laptop[0];
    assert_eq!(d["started"], T0);
    assert_eq!(d["renewed"], T0);
    assert_eq!(d["bound"], "none");
    assert_eq!(d["label"], "Firefox on Linux");

    // The phone ends the laptop: refused on its next request, gone from the list.
    let path = format!("/devices/end/{laptop_sid}");
    assert_eq!(
        phone.send(&app, "POST", &path).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        laptop.send(&app, "GET", "/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(sids(&phone.devices(&app).await), [phone_sid]);
    // Ending it again: not found, nothing else happens.
    assert_eq!(
        phone.send(&app, "POST", &path).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(phone.send(&app, "GET", "/me").await.0, StatusCode::OK);
}

#[tokio::test]
async fn another_users_session_can_be_neither_ended_nor_seen() {
    let clock = clock();
    let layer = layer(&clock, Arc::new(MemoryStore::new()), None).unwrap();
    let app = app(&layer);
    let (mut alice, mut mallory) = (Jar::default(), Jar::default());
    alice.send(&app, "POST", "/login/alice").await;
    mallory.send(&app, "POST", "/login/mallory").await;
    let alice_sid = current(&alice.devices(&app).await);
    let list = mallory.devices(&app).await;
    assert_eq!(list.len(), 1);
    assert!(!sids(&list).contains(&alice_sid));

    for sid in [alice_sid.as_str(), "made-up", ""] {
        let path = format!("/devices/end/{sid}");
        let status = mallory.send(&app, "POST", &path).await.0;
        assert!(
            matches!(
                status,
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
            ),
            "{sid}: {status}"
        );
    }
    assert_eq!(alice.send(&app, "GET", "/me").await.0, StatusCode::OK);
    assert_eq!(alice.devices(&app).await.len(), 1);
    // The admin view agrees, and a list without a session is refused.
    assert_eq!(layer.devices_of("alice").await.unwrap()[0].sid, alice_sid);
    assert_eq!(
        Jar::default().send(&app, "GET", "/devices").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        Jar::default().send(&app, "POST", "/devices/end/x").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_ordinary_request_writes_nothing_to_the_registry() {
    let clock = clock();
    let store = Counting::new(true);
    let layer = layer(&clock, store.clone(), None).unwrap();
    let app = app(&layer);
    let mut jar = Jar::default();
    jar.send(&app, "POST", "/login/alice").await;
    let after_login = store.writes();
    assert_eq!(after_login, 1);
    for _ in 0..20 {
        assert_eq!(jar.send(&app, "GET", "/me").await.0, StatusCode::OK);
        clock.advance(Duration::from_secs(30));
    }
    // Ten minutes of requests within the access lifetime: nothing written.
    assert_eq!(store.writes(), after_login);
    // Past `exp`: the renewal writes once, and the record shows it.
    clock.advance(Duration::from_secs(6 * 60));
    assert_eq!(jar.send(&app, "GET", "/me").await.0, StatusCode::OK);
    assert_eq!(store.writes(), after_login + 1);
    let renewed = T0 + 16 * 60;
    assert_eq!(jar.devices(&app).await[0]["renewed"], renewed);
    assert_eq!(jar.devices(&app).await[0]["label"], "Firefox on Linux");
    // A new sid moves the record (label kept); logout removes it.
    let before = current(&jar.devices(&app).await);
    jar.send(&app, "POST", "/cycle").await;
    let list = jar.devices(&app).await;
    assert_eq!(list.len(), 1);
    assert_ne!(current(&list), before);
    assert_eq!(list[0]["label"], "Firefox on Linux");
    assert_eq!(list[0]["started"], T0);
    let writes = store.writes();
    jar.send(&app, "POST", "/logout").await;
    assert_eq!(store.writes(), writes + 1);
    assert!(layer.devices_of("alice").await.unwrap().is_empty());
}

#[tokio::test]
async fn records_leave_when_the_session_can_no_longer_renew() {
    let clock = clock();
    let layer = layer(&clock, Arc::new(MemoryStore::new()), None).unwrap();
    let app = app(&layer);
    let (mut old, mut new) = (Jar::default(), Jar::default());
    old.send(&app, "POST", "/login/alice").await;
    // 15 min access + 24 h idle: the first session cannot renew after that.
    clock.advance(Duration::from_secs(24 * 3600 + 10 * 60));
    new.send(&app, "POST", "/login/alice").await;
    assert_eq!(new.devices(&app).await.len(), 2);
    clock.advance(Duration::from_secs(6 * 60));
    // Renewed by a request: the new one stays, the old one is past its idle window.
    let list = new.devices(&app).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        old.send(&app, "GET", "/me").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_cap_ends_the_oldest() {
    let clock = clock();
    let layer = layer(
        &clock,
        Arc::new(MemoryStore::new()),
        Some((2, OverCap::EndOldest)),
    )
    .unwrap();
    let app = app(&layer);
    let mut jars = vec![Jar::default(), Jar::default(), Jar::default()];
    for jar in &mut jars {
        assert_eq!(
            jar.send(&app, "POST", "/login/alice").await.0,
            StatusCode::NO_CONTENT
        );
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(
        jars[0].send(&app, "GET", "/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(jars[1].send(&app, "GET", "/me").await.0, StatusCode::OK);
    assert_eq!(jars[2].send(&app, "GET", "/me").await.0, StatusCode::OK);
    assert_eq!(jars[2].devices(&app).await.len(), 2);
    // Another user is not counted.
    let mut bob = Jar::default();
    bob.send(&app, "POST", "/login/bob").await;
    assert_eq!(jars[1].send(&app, "GET", "/me").await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_cap_can_refuse_the_new_login_instead() {
    let clock = clock();
    let layer = layer(
        &clock,
        Arc::new(MemoryStore::new()),
        Some((2, OverCap::RefuseNew)),
    )
    .unwrap();
    let app = app(&layer);
    let (mut a, mut b, mut c) = (Jar::default(), Jar::default(), Jar::default());
    a.send(&app, "POST", "/login/alice").await;
    b.send(&app, "POST", "/login/alice").await;
    let (status, body) = c.send(&app, "POST", "/login/alice").await;
    assert_eq!((status, body.as_str()), (StatusCode::CONFLICT, "at most 2"));
    assert!(c.0.is_none(), "no cookie for a refused login");
    assert_eq!(a.send(&app, "GET", "/me").await.0, StatusCode::OK);
    // A login that replaces the request's own session of the same user is not one more.
    assert_eq!(
        a.send(&app, "POST", "/login/alice").await.0,
        StatusCode::NO_CONTENT
    );
    // Once one ends, a login goes through.
    b.send(&app, "POST", "/logout").await;
    assert_eq!(
        c.send(&app, "POST", "/login/alice").await.0,
        StatusCode::NO_CONTENT
    );
    // The synchronous start cannot count, so it is refused under this policy.
    let handle_app = Router::new()
        .route(
            "/sync",
            post(|h: SessionHandle<()>| async move {
                match h.start("alice", ()) {
                    Err(StartError::CapNeedsCheckedStart) => StatusCode::PRECONDITION_FAILED,
                    _ => StatusCode::OK,
                }
            }),
        )
        .layer(layer.clone());
    assert_eq!(
        Jar::default().send(&handle_app, "POST", "/sync").await.0,
        StatusCode::PRECONDITION_FAILED
    );
}

#[tokio::test]
async fn a_store_without_registry_says_so() {
    let clock = clock();
    let store = Counting::new(false);
    assert!(matches!(
        layer(&clock, store.clone(), Some((3, OverCap::EndOldest))),
        Err(ConfigError::SessionCapWithoutRegistry)
    ));
    assert!(matches!(
        layer(
            &clock,
            Arc::new(MemoryStore::new()),
            Some((0, OverCap::EndOldest))
        ),
        Err(ConfigError::SessionCapZero)
    ));
    let layer = layer(&clock, store, None).unwrap();
    let app = app(&layer);
    let mut jar = Jar::default();
    jar.send(&app, "POST", "/login/alice").await;
    let (status, body) = jar.send(&app, "GET", "/devices").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("RegistryError::Unsupported"), "{body}");
    assert!(matches!(
        layer.devices_of("alice").await,
        Err(RegistryError::Unsupported)
    ));
    // Logout everywhere still works without one.
    assert_eq!(
        jar.send(&app, "POST", "/logout").await.0,
        StatusCode::NO_CONTENT
    );
}
