//! The layer over plain tower services, through its public API only: sessions started,
//! renewed, cycled and ended; refused tokens and what is cleared; cross-origin and
//! WebSocket protection; chunking; `Cache-Control`; key schedules; configuration errors.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, Response, StatusCode};
use jwe_session::core::{BoxFuture, Revocation, SessionIds, TokenOptions};
use jwe_session::{
    Claims, Clock, ConfigError, Key, KeyRing, KeyRingHandle, Lifetimes, ManualClock, MemoryStore,
    Recorded, Renew, RevocationStore, RevokeError, Revoked, SessionHandle, SessionLayer,
    StartError, Transport, UnixTime,
};
use jwe_session_test_support::kid_of;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tower::{service_fn, Layer, ServiceExt};

const KEY: [u8; 32] = [0xa5; 32];

fn ring() -> KeyRing {
    let mut k = KEY;
    k[0] = 0x11;
    KeyRing::new(vec![Key::from_bytes("t1", &k).unwrap()], None).unwrap()
}

/// The handle the layer put in the request's extensions.
fn handle_of<T: Send + Sync + 'static>(req: &Request<String>) -> SessionHandle<T> {
    req.extensions()
        .get::<SessionHandle<T>>()
        .cloned()
        .expect("layer ran")
}

/// A plain tower service (no axum): the handler finds the handle in extensions.
async fn handler(req: Request<String>) -> Result<Response<String>, Infallible> {
    let handle = handle_of::<()>(&req);
    let body = match req.uri().path() {
        "/login" => {
            handle.start("alice", ()).unwrap();
            "started".to_owned()
        }
        "/logout" => {
            handle.end().await.unwrap();
            "ended".to_owned()
        }
        // A password change: every session ends, and this user gets a new one.
        "/relogin" => {
            handle.end_everywhere().await.unwrap();
            handle.start("alice", ()).unwrap();
            "restarted".to_owned()
        }
        "/others" => {
            handle.end_others().await.unwrap();
            "others ended".to_owned()
        }
        "/sid" => handle
            .claims()
            .map(|c| format!("{:?} {:?}", c.sid, c.auth_time))
            .unwrap_or_default(),
        _ => handle
            .claims()
            .and_then(|c| c.sub)
            .unwrap_or_else(|| "anonymous".into()),
    };
    Ok(Response::new(body))
}

fn layer() -> SessionLayer<()> {
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    SessionLayer::builder(ring())
        .clock(Arc::new(clock))
        .build()
        .unwrap()
}

async fn call(layer: &SessionLayer<()>, path: &str, cookie: Option<&str>) -> Response<String> {
    call_with(layer, handler, path, cookie).await
}

/// `GET path` through the layer around `handler`, with `cookie` if given.
async fn call_with<F, Fut>(
    layer: &SessionLayer<()>,
    handler: F,
    path: &str,
    cookie: Option<&str>,
) -> Response<String>
where
    F: FnMut(Request<String>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Response<String>, Infallible>> + Send + 'static,
{
    let mut req = Request::builder().uri(path);
    if let Some(c) = cookie {
        req = req.header(COOKIE, c);
    }
    layer
        .layer(service_fn(handler))
        .oneshot(req.body(String::new()).unwrap())
        .await
        .unwrap()
}

fn cookie_pair(res: &Response<String>) -> String {
    let set = res.headers()[SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// `end_everywhere().await?; start(..)` (the password-change flow) on a clock that
/// does not move at all: the new session begins after the cut-off and is kept.
#[tokio::test]
async fn a_session_started_right_after_logout_everywhere_is_kept() {
    let layer = layer();
    let old = cookie_pair(&call(&layer, "/login", None).await);
    let other_device = cookie_pair(&call(&layer, "/login", None).await);
    let res = call(&layer, "/relogin", Some(&old)).await;
    assert_eq!(res.body(), "restarted");
    let new = cookie_pair(&res);
    assert_eq!(call(&layer, "/", Some(&new)).await.body(), "alice");
    assert_eq!(call(&layer, "/", Some(&old)).await.body(), "anonymous");
    assert_eq!(
        call(&layer, "/", Some(&other_device)).await.body(),
        "anonymous"
    );
    // And a login after that, still in the same microsecond of the clock.
    let later = cookie_pair(&call(&layer, "/login", None).await);
    assert_eq!(call(&layer, "/", Some(&later)).await.body(), "alice");
}

/// "Log out my other devices": this session goes on under a new sid (same login time),
/// every other one of the user's sessions ends, and so does a copy of this request's
/// token.
#[tokio::test]
async fn end_others_keeps_this_session_under_a_new_sid() {
    let layer = layer();
    let phone = cookie_pair(&call(&layer, "/login", None).await);
    let laptop = cookie_pair(&call(&layer, "/login", None).await);
    let before = call(&layer, "/sid", Some(&laptop)).await.into_body();
    let res = call(&layer, "/others", Some(&laptop)).await;
    assert_eq!(res.body(), "others ended");
    let renewed = cookie_pair(&res);
    assert_ne!(renewed, laptop);
    assert_eq!(call(&layer, "/", Some(&renewed)).await.body(), "alice");
    assert_eq!(call(&layer, "/", Some(&laptop)).await.body(), "anonymous");
    assert_eq!(call(&layer, "/", Some(&phone)).await.body(), "anonymous");
    let after = call(&layer, "/sid", Some(&renewed)).await.into_body();
    let (sid_before, auth_before) = before.split_once(' ').unwrap();
    let (sid_after, auth_after) = after.split_once(' ').unwrap();
    assert_ne!(sid_before, sid_after);
    assert_eq!(auth_before, auth_after, "the login time stays");
    // Twice in a row: the survivor of the first is the one that calls the second.
    let res = call(&layer, "/others", Some(&renewed)).await;
    let again = cookie_pair(&res);
    assert_eq!(call(&layer, "/", Some(&again)).await.body(), "alice");
    assert_eq!(call(&layer, "/", Some(&renewed)).await.body(), "anonymous");
    // Without a session it does nothing.
    let res = call(&layer, "/others", None).await;
    assert!(res.headers().get(SET_COOKIE).is_none());
}

#[tokio::test]
async fn works_as_a_plain_tower_layer() {
    let layer = layer();
    let res = call(&layer, "/", None).await;
    assert_eq!(res.body(), "anonymous");
    assert!(res.headers().get(SET_COOKIE).is_none());

    let res = call(&layer, "/login", None).await;
    assert!(res.headers()[SET_COOKIE].is_sensitive());
    let pair = cookie_pair(&res);
    assert!(pair.starts_with("__Host-session=eyJ"));

    let res = call(&layer, "/", Some(&pair)).await;
    assert_eq!(res.body(), "alice");
    assert!(res.headers().get(SET_COOKIE).is_none());

    let res = call(&layer, "/logout", Some(&pair)).await;
    assert_eq!(res.body(), "ended");
    assert_eq!(cookie_pair(&res), "__Host-session=");
    assert_eq!(call(&layer, "/", Some(&pair)).await.body(), "anonymous");
}

/// Checks nothing, records the revocations it is asked for, and fails them if told to.
#[derive(Default)]
struct RecordingStore {
    fail: bool,
    revoked: Mutex<Vec<Revocation>>,
}

impl RevocationStore for RecordingStore {
    fn check(&self, _: SessionIds<'_>, _: UnixTime) -> Option<Revoked> {
        None
    }

    fn revoke(&self, r: Revocation, _: UnixTime) -> BoxFuture<'_, Result<Recorded, RevokeError>> {
        self.revoked.lock().unwrap().push(r);
        let fail = self.fail;
        Box::pin(async move {
            if fail {
                Err(RevokeError::Timeout {
                    after: Duration::from_millis(500),
                })
            } else {
                Ok(Recorded::Stored)
            }
        })
    }
}

#[tokio::test]
async fn a_login_revokes_the_session_it_replaces_even_if_the_store_fails() {
    for fail in [false, true] {
        let store = Arc::new(RecordingStore {
            fail,
            ..RecordingStore::default()
        });
        let layer = SessionLayer::builder(ring())
            .clock(Arc::new(ManualClock::new(UnixTime::from_secs(
                1_800_000_000,
            ))))
            .revocation_store(Arc::clone(&store) as Arc<dyn RevocationStore>)
            .build()
            .unwrap();
        let first = cookie_pair(&call(&layer, "/login", None).await);
        assert!(store.revoked.lock().unwrap().is_empty(), "nothing replaced");
        let res = call(&layer, "/login", Some(&first)).await;
        let second = cookie_pair(&res);
        assert_ne!(second, first, "a new session is written (fail = {fail})");
        assert_eq!(call(&layer, "/", Some(&second)).await.body(), "alice");
        let old_sid = layer
            .key_ring()
            .load()
            .open::<Claims<()>>(
                first.trim_start_matches("__Host-session="),
                &TokenOptions::new().with_purpose(layer.purpose()),
            )
            .unwrap()
            .into_payload()
            .sid;
        let revoked = store.revoked.lock().unwrap();
        assert!(
            matches!(&revoked[..], [Revocation::Session { sid, .. }] if Some(sid) == old_sid.as_ref()),
            "{revoked:?}"
        );
    }
}

#[tokio::test]
async fn ending_a_session_the_request_did_not_carry_writes_nothing() {
    let layer = layer();
    let res = call(&layer, "/logout", None).await;
    assert_eq!(res.body(), "ended");
    assert!(res.headers().get(SET_COOKIE).is_none());
}

/// Mid-rotation: a cookie sealed under a key this instance does not have yet gets no
/// session and no `Set-Cookie`, chunks included; the instance with the key still opens
/// it. Debris beside it is still cleared, and so is a token that fails for any other
/// reason.
#[tokio::test]
async fn an_unknown_kid_keeps_the_cookie_and_only_that_refusal_does() {
    let clock = Arc::new(ManualClock::new(UnixTime::from_secs(1_800_000_000)));
    let mut k2 = KEY;
    k2[0] = 0x22;
    let newer = KeyRing::new(
        vec![
            Key::from_bytes("t2", &k2).unwrap(),
            Key::from_jwk(&ring().keys()[0].to_jwk_secret()).unwrap(),
        ],
        None,
    )
    .unwrap();
    let b = SessionLayer::<()>::builder(newer)
        .clock(clock.clone())
        .build()
        .unwrap();
    let a = SessionLayer::<()>::builder(ring())
        .clock(clock)
        .build()
        .unwrap();
    let cookie = cookie_pair(&call(&b, "/login", None).await);
    let res = call(&a, "/", Some(&cookie)).await;
    assert_eq!(res.body(), "anonymous");
    assert!(res.headers().get(SET_COOKIE).is_none(), "{res:?}");
    assert_eq!(call(&b, "/", Some(&cookie)).await.body(), "alice");

    let res = call(&a, "/", Some(&format!("{cookie}; __Host-session.3=stale"))).await;
    assert_eq!(cleared(&res), ["__Host-session.3"], "only the debris goes");

    let mut forged = cookie.into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'Q' } else { b'A' };
    let res = call(&b, "/", Some(&String::from_utf8(forged).unwrap())).await;
    assert_eq!(res.body(), "anonymous");
    assert!(
        res.headers().get(SET_COOKIE).is_some(),
        "a forged token is cleared"
    );
}

/// The names of the cookies a response sets (here: clears).
fn cleared(res: &Response<String>) -> Vec<&str> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split('=').next().unwrap())
        .collect()
}

fn kid_of_cookie(res: &Response<String>) -> String {
    let pair = cookie_pair(res);
    kid_of(pair.split_once('=').unwrap().1)
}

/// A key set that says "k2 seals from T": every instance switches at T by its own
/// clock. Before T sessions are sealed under k1 and left alone; from T on new sessions
/// get k2 and k1 cookies are re-sealed under it; an instance whose clock is still
/// before T does not re-seal a k2 cookie back under k1.
#[tokio::test]
async fn a_scheduled_key_seals_from_its_moment_on() {
    const T: u64 = 1_800_000_000;
    let jwk = |kid: &str, seed: u8| {
        let mut b = KEY;
        b[0] = seed;
        Key::from_bytes(kid, &b)
            .unwrap()
            .to_jwk_secret()
            .to_string()
    };
    let k2 = jwk("k2", 0x32);
    let set = format!(
        r#"{{"keys":[{},{},"seals_from":{T}}}],"active_kid":"k1"}}"#,
        jwk("k1", 0x31),
        &k2[..k2.len() - 1]
    );
    let clock = Arc::new(ManualClock::new(UnixTime::from_secs(T - 100)));
    let layer = SessionLayer::<()>::builder(KeyRing::from_jwks(&set).unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let before = call(&layer, "/login", None).await;
    assert_eq!(kid_of_cookie(&before), "k1");
    let before = cookie_pair(&before);
    let res = call(&layer, "/", Some(&before)).await;
    assert_eq!(res.body(), "alice");
    assert!(res.headers().get(SET_COOKIE).is_none());

    clock.set(UnixTime::from_secs(T));
    let res = call(&layer, "/", Some(&before)).await;
    assert_eq!(res.body(), "alice");
    assert_eq!(
        kid_of_cookie(&res),
        "k2",
        "re-sealed under the new key at T"
    );
    let after = cookie_pair(&res);
    assert_eq!(kid_of_cookie(&call(&layer, "/login", None).await), "k2");

    clock.set(UnixTime::from_secs(T - 1));
    let res = call(&layer, "/", Some(&after)).await;
    assert_eq!(res.body(), "alice");
    assert!(
        res.headers().get(SET_COOKIE).is_none(),
        "a slower clock does not re-seal back under k1"
    );
}

#[tokio::test]
async fn a_refused_token_clears_its_chunks_too() {
    let layer = layer();
    let res = call(
        &layer,
        "/",
        Some("__Host-session=bad; __Host-session.1=worse; __Host-session.3=stale"),
    )
    .await;
    assert_eq!(res.body(), "anonymous");
    assert_eq!(
        cleared(&res),
        ["__Host-session", "__Host-session.1", "__Host-session.3"]
    );
}

#[test]
fn config_errors() {
    let b = || SessionLayer::<()>::builder(ring());
    assert!(matches!(
        b().cookie_name("a b").build(),
        Err(ConfigError::InvalidCookieName { .. })
    ));
    assert!(matches!(
        b().cookie_name("").build(),
        Err(ConfigError::InvalidCookieName { .. })
    ));
    assert!(matches!(
        b().host_prefix().cookie_domain("example.com").build(),
        Err(ConfigError::HostPrefixWithDomain)
    ));
    assert!(matches!(
        b().host_prefix()
            .dangerous()
            .allow_insecure_cookie()
            .done()
            .build(),
        Err(ConfigError::HostPrefixInsecure)
    ));
    assert!(matches!(
        b().max_chunks(0).build(),
        Err(ConfigError::InvalidMaxChunks { .. })
    ));
    assert!(matches!(
        b().max_chunks(17).build(),
        Err(ConfigError::InvalidMaxChunks { .. })
    ));
    assert!(matches!(
        b().token_header("bad header").build(),
        Err(ConfigError::InvalidHeaderName { .. })
    ));
    let l = b().host_prefix().build().unwrap();
    assert_eq!(l.cookie_name(), "__Host-session");
    assert_eq!(l.purpose(), "jwe-session/cookie/__Host-session");
    let l = b().transport(Transport::Bearer).build().unwrap();
    assert_eq!(l.purpose(), "jwe-session/bearer");
}

/// A store that forgets session revocations after `window` (as the Redis store's
/// bounded mirror does).
struct Forgetful(MemoryStore, Duration);

impl RevocationStore for Forgetful {
    fn check(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<Revoked> {
        self.0.check(ids, now)
    }

    fn memory_window(&self) -> Option<Duration> {
        Some(self.1)
    }

    fn revoke(
        &self,
        revocation: Revocation,
        now: UnixTime,
    ) -> jwe_session_core::BoxFuture<'_, Result<Recorded, RevokeError>> {
        self.0.revoke(revocation, now)
    }
}

/// A store that forgets a logout while a token issued before it can still be used
/// without a lookup (or, failing open, renewed from memory) is refused at build time.
#[test]
fn a_store_that_forgets_too_soon_is_refused() {
    let min = |m: u64| Duration::from_secs(m * 60);
    let build = |window: Duration, fail_open: bool, lifetimes: Lifetimes| {
        let b = SessionLayer::<()>::builder(ring())
            .lifetimes(lifetimes)
            .revocation_store(Arc::new(Forgetful(MemoryStore::new(), window)));
        let b = if fail_open {
            b.dangerous().fail_open_on_store_error().done()
        } else {
            b
        };
        b.build().map(|_| ())
    };
    let default = Lifetimes::default;
    assert!(
        build(min(16), false, default()).is_ok(),
        "the Redis default: the access lifetime plus the grace"
    );
    // The access lifetime alone leaves no room for clocks that disagree.
    let err = build(min(15), false, default()).unwrap_err();
    assert!(
        matches!(err, ConfigError::StoreWindowTooShort { window, needed } if window == min(15) && needed == min(16)),
        "{err:?}"
    );
    let err = build(min(10), false, default()).unwrap_err();
    assert!(
        matches!(err, ConfigError::StoreWindowTooShort { window, needed } if window == min(10) && needed == min(16)),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("raise the store's window"),
        "{err}"
    );
    let hour = Lifetimes::new(min(60), min(24 * 60), min(7 * 24 * 60));
    assert!(
        build(min(16), false, hour).is_err(),
        "a longer access lifetime"
    );
    // Fail-open renews from memory: it needs access + idle (or the absolute lifetime).
    assert!(build(min(16), true, default()).is_err());
    assert!(build(min(24 * 60 + 15), true, default()).is_err());
    assert!(build(min(24 * 60 + 16), true, default()).is_ok());
    let short = Lifetimes::new(min(15), min(24 * 60), min(60));
    assert!(build(min(60), true, short).is_err());
    assert!(
        build(min(61), true, short).is_ok(),
        "capped by the absolute lifetime"
    );
    // Every window the check asks for is the core's rule, nothing of its own.
    for (fail_open, l) in [
        (false, default()),
        (true, default()),
        (true, short),
        (false, hour),
    ] {
        let needed = l.mirror_window(fail_open, Duration::ZERO);
        assert!(build(needed, fail_open, l).is_ok());
        assert!(build(needed - Duration::from_secs(1), fail_open, l).is_err());
    }
}

#[tokio::test]
async fn host_prefix_cookie_attributes() {
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let layer = SessionLayer::<()>::builder(ring())
        .clock(Arc::new(clock))
        .host_prefix()
        .same_site_strict()
        .build()
        .unwrap();
    let res = call(&layer, "/login", None).await;
    let set = res.headers()[SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with("__Host-session=eyJ"), "{set}");
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=87300",
    ] {
        assert!(set.contains(attr), "{attr} missing from {set}");
    }
    assert!(!set.contains("Domain"));
}

// ---- Issue 10: hardening. Each of these failed on the code before the fix. ----

async fn send_req<T>(layer: &SessionLayer<T>, req: Request<String>) -> Response<String>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    let svc = service_fn(|req: Request<String>| async move {
        let handle = handle_of::<T>(&req);
        let body = handle
            .claims()
            .and_then(|c| c.sub)
            .unwrap_or_else(|| "anonymous".into());
        let mut res = Response::new(body);
        if let Some(cc) = req.headers().get("x-test-cache-control") {
            res.headers_mut()
                .insert(http::header::CACHE_CONTROL, cc.clone());
        }
        Ok::<_, Infallible>(res)
    });
    layer.layer(svc).oneshot(req).await.unwrap()
}

fn set_cookie_names(res: &Response<String>) -> Vec<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split('=').next().unwrap().to_owned())
        .collect()
}

fn post(path: &str, headers: &[(&str, &str)]) -> Request<String> {
    let mut b = Request::builder().method("POST").uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(String::new()).unwrap()
}

/// Item 1: a cross-site unsafe request never reaches the handler and writes nothing.
#[tokio::test]
async fn cross_site_unsafe_requests_are_refused_before_the_handler() {
    let layer = layer();
    let session = cookie_pair(&call(&layer, "/login", None).await);
    let refused: &[&[(&str, &str)]] = &[
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        &[
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://app.example"),
            ("host", "app.example"),
        ],
        &[("origin", "https://evil.example"), ("host", "app.example")],
        &[
            ("origin", "http://app.example:8080"),
            ("host", "app.example"),
        ],
        &[("origin", "null"), ("host", "app.example")],
    ];
    for headers in refused {
        for path in ["/login", "/logout"] {
            for cookie in [None, Some(session.as_str())] {
                let mut h = headers.to_vec();
                if let Some(c) = cookie {
                    h.push(("cookie", c));
                }
                let res = layer
                    .layer(service_fn(handler))
                    .oneshot(post(path, &h))
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path} {h:?}");
                assert!(res.body().is_empty(), "the handler ran: {path} {h:?}");
                assert!(res.headers().get(SET_COOKIE).is_none(), "{path} {h:?}");
            }
        }
    }
    // The session survived every attempt.
    assert_eq!(call(&layer, "/", Some(&session)).await.body(), "alice");
}

#[tokio::test]
async fn same_origin_safe_and_non_browser_requests_pass() {
    let layer = layer();
    let passing: &[(&str, &[(&str, &str)])] = &[
        ("POST", &[]),
        ("POST", &[("sec-fetch-site", "same-origin")]),
        ("POST", &[("sec-fetch-site", "none")]),
        (
            "POST",
            &[("origin", "http://app.example"), ("host", "app.example")],
        ),
        (
            "POST",
            &[
                ("origin", "https://App.Example:8443"),
                ("host", "app.example:8443"),
            ],
        ),
        (
            "POST",
            &[
                ("sec-fetch-site", "same-origin"),
                ("origin", "https://evil.example"),
                ("host", "app.example"),
            ],
        ),
        ("GET", &[("sec-fetch-site", "cross-site")]),
        (
            "HEAD",
            &[("origin", "https://evil.example"), ("host", "app.example")],
        ),
        ("OPTIONS", &[("sec-fetch-site", "cross-site")]),
    ];
    for (method, headers) in passing {
        let mut b = Request::builder().method(*method).uri("/login");
        for (k, v) in *headers {
            b = b.header(*k, *v);
        }
        let res = layer
            .layer(service_fn(handler))
            .oneshot(b.body(String::new()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{method} {headers:?}");
        assert_eq!(res.body(), "started", "{method} {headers:?}");
    }
}

/// Issue 25, item 3: a WebSocket handshake is a `GET` that opens an authenticated
/// channel, so the cross-origin check treats it as state-changing: refused unless its
/// `Origin` is the request's own (or trusted); without `Origin` (not a browser) it
/// passes.
#[tokio::test]
async fn cross_origin_websocket_handshakes_are_refused_before_the_handler() {
    let layer = layer();
    let session = cookie_pair(&call(&layer, "/login", None).await);
    let upgrade = [("upgrade", "websocket"), ("connection", "Upgrade")];
    let mode = [("sec-fetch-mode", "websocket")];
    let list = [("upgrade", "h2c, WebSocket"), ("connection", "upgrade")];
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let refused: &[(Headers, Headers)] = &[
        (
            &upgrade,
            &[("origin", "https://evil.example"), ("host", "app.example")],
        ),
        (
            &upgrade,
            &[
                ("origin", "http://app.example:8120"),
                ("host", "app.example"),
            ],
        ),
        (&upgrade, &[("origin", "null"), ("host", "app.example")]),
        (
            &mode,
            &[
                ("origin", "http://sub.app.example"),
                ("host", "app.example"),
            ],
        ),
        (
            &list,
            &[
                ("origin", "https://evil.example"),
                ("host", "app.example"),
                ("sec-fetch-site", "same-origin"),
            ],
        ),
    ];
    let handshake = |kind: &[(&str, &str)], headers: &[(&str, &str)]| {
        let mut b = Request::builder().method("GET").uri("/");
        for (k, v) in kind.iter().chain(headers) {
            b = b.header(*k, *v);
        }
        b.header("cookie", session.as_str())
            .body(String::new())
            .unwrap()
    };
    for (kind, headers) in refused {
        let res = layer
            .layer(service_fn(handler))
            .oneshot(handshake(kind, headers))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{kind:?} {headers:?}");
        assert!(res.body().is_empty(), "the handler ran: {headers:?}");
    }
    let passing: &[&[(&str, &str)]] = &[
        &[("origin", "http://app.example"), ("host", "app.example")],
        &[
            ("origin", "https://App.Example:8443"),
            ("host", "app.example:8443"),
        ],
        &[("host", "app.example")],
    ];
    for headers in passing {
        let res = layer
            .layer(service_fn(handler))
            .oneshot(handshake(&upgrade, headers))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{headers:?}");
        assert_eq!(res.body(), "alice", "{headers:?}");
    }
    // A trusted origin may open one.
    let trusting = SessionLayer::builder(ring())
        .trusted_origin("https://admin.example")
        .build()
        .unwrap();
    let session = cookie_pair(&call(&trusting, "/login", None).await);
    let mut req = handshake(
        &upgrade,
        &[("origin", "https://admin.example"), ("host", "app.example")],
    );
    req.headers_mut().insert("cookie", session.parse().unwrap());
    let res = trusting
        .layer(service_fn(handler))
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// Issue 25, item 5: the default cookie is `__Host-session`. A sibling subdomain can
/// plant `session` (with `Domain=.example.com; Path=/app`, sent first by the browser),
/// but never a `__Host-` cookie: the planted one is not even read, and the real
/// session wins. The defaults are Secure, Path=/, no Domain, as `__Host-` requires.
#[tokio::test]
async fn the_default_cookie_is_host_prefixed_so_a_planted_one_never_wins() {
    let layer = layer();
    assert_eq!(layer.cookie_name(), "__Host-session");
    let login = call(&layer, "/login", None).await;
    let set = login.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set.starts_with("__Host-session="), "{set}");
    assert!(set.contains("Secure") && set.contains("Path=/"), "{set}");
    assert!(!set.contains("Domain"), "{set}");
    let victim = cookie_pair(&login);
    let mallory = call(&layer, "/login", None).await;
    let planted = cookie_pair(&mallory).replacen("__Host-session", "session", 1);
    let both = format!("{planted}; session.1=debris; {victim}");
    assert_eq!(call(&layer, "/", Some(&both)).await.body(), "alice");
    // The planted cookies alone give no session, and nothing clears them for the
    // attacker to probe: they are not ours.
    let res = call(&layer, "/", Some(&planted)).await;
    assert_eq!(res.body(), "anonymous");
    assert!(res.headers().get(SET_COOKIE).is_none());
}

/// Item 2: whatever writes a session is not for shared caches.
#[tokio::test]
async fn responses_that_write_a_session_are_no_store() {
    let layer = layer();
    let login = call(&layer, "/login", None).await;
    assert_eq!(login.headers()[http::header::CACHE_CONTROL], "no-store");
    let pair = cookie_pair(&login);
    let logout = call(&layer, "/logout", Some(&pair)).await;
    assert_eq!(logout.headers()[http::header::CACHE_CONTROL], "no-store");
    let cleared = call(&layer, "/", Some("__Host-session=garbage")).await;
    assert!(cleared.headers().get(SET_COOKIE).is_some());
    assert_eq!(cleared.headers()[http::header::CACHE_CONTROL], "no-store");
    // Nothing written, nothing added.
    let plain = call(&layer, "/", None).await;
    assert!(plain.headers().get(http::header::CACHE_CONTROL).is_none());
}

#[tokio::test]
async fn a_handler_cache_control_is_kept_only_if_it_is_private_or_no_store() {
    let layer = layer();
    for (set, expect) in [
        ("private, max-age=60", "private, max-age=60"),
        ("no-store, no-cache", "no-store, no-cache"),
        ("public, max-age=3600", "no-store"),
        ("max-age=60", "no-store"),
    ] {
        let req = Request::builder()
            .uri("/")
            .header(COOKIE, "__Host-session=garbage")
            .header("x-test-cache-control", set)
            .body(String::new())
            .unwrap();
        let res = send_req(&layer, req).await;
        assert_eq!(res.headers()[http::header::CACHE_CONTROL], expect, "{set}");
    }
}

fn request_with_cookie_bytes(bytes: &[u8]) -> Request<String> {
    let mut req = Request::builder().uri("/").body(String::new()).unwrap();
    req.headers_mut()
        .insert(COOKIE, HeaderValue::from_bytes(bytes).unwrap());
    req
}

/// Item 3: another cookie with non-ASCII bytes does not hide ours.
#[tokio::test]
async fn a_foreign_non_ascii_cookie_does_not_hide_the_session() {
    let layer = layer();
    let pair = cookie_pair(&call(&layer, "/login", None).await);
    for header in [
        format!("lang=fran\u{e7}ais; {pair}"),
        format!("{pair}; theme=\u{1f319}"),
    ] {
        let res = send_req(&layer, request_with_cookie_bytes(header.as_bytes())).await;
        assert_eq!(res.body(), "alice", "{header}");
        assert!(res.headers().get(SET_COOKIE).is_none(), "{header}");
    }
    // Our own cookie with non-ASCII bytes is refused and cleared like any garbage.
    let res = send_req(
        &layer,
        request_with_cookie_bytes("__Host-session=\u{e7}".as_bytes()),
    )
    .await;
    assert_eq!(res.body(), "anonymous");
    assert_eq!(set_cookie_names(&res), ["__Host-session"]);
}

/// Item 4: `session.+1` is not a chunk.
#[tokio::test]
async fn chunk_numbers_are_plain_digits() {
    let layer = layer();
    let pair = cookie_pair(&call(&layer, "/login", None).await);
    for planted in [
        "session.+1=zz",
        "__Host-session.01=zz",
        "__Host-session.1 =zz",
        "session.-1=zz",
        "__Host-session.1a=zz",
    ] {
        let res = call(&layer, "/", Some(&format!("{pair}; {planted}"))).await;
        assert_eq!(res.body(), "alice", "{planted}");
    }
}

/// Item 5: a whole token beside orphan chunks opens, and the orphans are cleared.
#[tokio::test]
async fn a_whole_token_beside_orphan_chunks_opens_and_the_orphans_go() {
    let layer = layer();
    let pair = cookie_pair(&call(&layer, "/login", None).await);
    let res = call(
        &layer,
        "/",
        Some(&format!(
            "{pair}; __Host-session.1=stale; __Host-session.2=stale"
        )),
    )
    .await;
    assert_eq!(res.body(), "alice");
    assert_eq!(
        set_cookie_names(&res),
        ["__Host-session.1", "__Host-session.2"]
    );
    for c in res.headers().get_all(SET_COOKIE) {
        assert!(c.to_str().unwrap().contains("Max-Age=0"));
    }
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Notes {
    n: String,
}

fn notes_layer(max_token_len: usize) -> SessionLayer<Notes> {
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    SessionLayer::<Notes>::builder(ring())
        .clock(Arc::new(clock))
        .max_token_len(max_token_len)
        .build()
        .unwrap()
}

/// Item 6: claims too large to seal never become a 500 after the handler ran, and a
/// request that carried no cookie gets no clearing cookie.
#[tokio::test]
async fn oversized_claims_are_no_500_and_clear_nothing_they_did_not_carry() {
    let layer = notes_layer(2_000);
    let svc = |layer: &SessionLayer<Notes>| {
        layer.layer(service_fn(|req: Request<String>| async move {
            let handle = handle_of::<Notes>(&req);
            let notes = req.into_body();
            let mut res = Response::new(String::new());
            match handle.start("alice", Notes { n: notes }) {
                Ok(()) => {}
                Err(StartError::TooLarge { len, max }) => {
                    assert!(len > max && max <= 2_000, "{len} {max}");
                    *res.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
                }
                Err(e) => panic!("{e}"),
            }
            Ok::<_, Infallible>(res)
        }))
    };
    let login = |cookie: Option<&str>, notes: String| {
        let mut b = Request::builder().method("POST").uri("/login");
        if let Some(c) = cookie {
            b = b.header(COOKIE, c);
        }
        svc(&layer).oneshot(b.body(notes).unwrap())
    };
    let res = login(None, "x".repeat(30_000)).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(res.headers().get(SET_COOKIE).is_none());
    // With a session: refused the same way, and the session the request had stays.
    let pair = cookie_pair(&login(None, "small".into()).await.unwrap());
    let res = login(Some(&pair), "x".repeat(30_000)).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(res.headers().get(SET_COOKIE).is_none());
    let me = Request::builder()
        .uri("/")
        .header(COOKIE, &pair)
        .body(String::new());
    assert_eq!(send_req(&layer, me.unwrap()).await.body(), "alice");
}

/// `update` checks the size the same way and changes nothing when it refuses.
#[tokio::test]
async fn an_update_too_large_changes_nothing() {
    let layer = notes_layer(2_000);
    let svc = layer.layer(service_fn(|req: Request<String>| async move {
        let handle = handle_of::<Notes>(&req);
        let out = match req.uri().path() {
            "/login" => format!("{:?}", handle.start("alice", Notes { n: "small".into() })),
            _ => {
                let grown = handle.update(|a| a.n.push_str(&"x".repeat(30_000)));
                let kept = handle.claims().map(|c| c.app.n);
                format!("{grown:?} {kept:?}")
            }
        };
        Ok::<_, Infallible>(Response::new(out))
    }));
    let res = svc
        .clone()
        .oneshot(
            Request::builder()
                .uri("/login")
                .body(String::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let pair = cookie_pair(&res);
    let req = Request::builder()
        .uri("/grow")
        .header(COOKIE, &pair)
        .body(String::new());
    let res = svc.clone().oneshot(req.unwrap()).await.unwrap();
    assert!(res.body().starts_with("Err(TooLarge"), "{}", res.body());
    assert!(res.body().ends_with("Some(\"small\")"), "{}", res.body());
    assert!(res.headers().get(SET_COOKIE).is_none());
    let res = svc
        .oneshot(Request::builder().uri("/grow").body(String::new()).unwrap())
        .await
        .unwrap();
    assert!(res.body().starts_with("Err(NoSession)"), "{}", res.body());
}

/// Item 6: a re-seal under a newly active key with a longer kid, or a renew hook that
/// grows the claims past the limit, keeps the token the request had: no 500, no clear.
#[tokio::test]
async fn a_reseal_or_renewal_that_no_longer_fits_keeps_the_token() {
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let handle = KeyRingHandle::new(ring());
    let probe = SessionLayer::<Notes>::builder(handle.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let svc = |layer: &SessionLayer<Notes>| {
        layer.layer(service_fn(|req: Request<String>| async move {
            let handle = handle_of::<Notes>(&req);
            // Outside axum the handler opens the token (and renews it) before reading.
            handle.load().await;
            if req.uri().path() == "/login" {
                handle
                    .start(
                        "alice",
                        Notes {
                            n: "n".repeat(1_000),
                        },
                    )
                    .unwrap();
            }
            let body = handle.claims().and_then(|c| c.sub).unwrap_or_default();
            Ok::<_, Infallible>(Response::new(body))
        }))
    };
    let login = |l: &SessionLayer<Notes>| {
        svc(l).oneshot(
            Request::builder()
                .uri("/login")
                .body(String::new())
                .unwrap(),
        )
    };
    let len = cookie_pair(&login(&probe).await.unwrap()).len() - "__Host-session=".len();
    let hook_clock = clock.clone();
    let layer = SessionLayer::<Notes>::builder(handle.clone())
        .clock(Arc::new(clock.clone()))
        .max_token_len(len + 8)
        .on_renew(move |c: Claims<Notes>| {
            let grow = hook_clock.now() > UnixTime::from_secs(1_800_000_000 + 3_600);
            async move {
                if grow {
                    Renew::Update(Notes {
                        n: c.app.n + &"g".repeat(500),
                    })
                } else {
                    Renew::Keep
                }
            }
        })
        .build()
        .unwrap();
    let pair = cookie_pair(&login(&layer).await.unwrap());
    let get = |pair: &str| {
        svc(&layer).oneshot(
            Request::builder()
                .uri("/")
                .header(COOKIE, pair)
                .body(String::new())
                .unwrap(),
        )
    };
    // A new active key whose kid makes every header 100 bytes longer.
    let mut k = KEY;
    k[0] = 0x22;
    let long = Key::from_bytes(&"L".repeat(75), &k).unwrap();
    let mut old = KEY;
    old[0] = 0x11;
    let old = Key::from_bytes("t1", &old).unwrap();
    handle.replace(KeyRing::new(vec![long, old], None).unwrap());
    let res = get(&pair).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.body(), "alice");
    assert!(res.headers().get(SET_COOKIE).is_none());
    // Leftover chunks are still cleared; the main cookie is left as it is.
    let res = get(&format!("{pair}; __Host-session.1=stale"))
        .await
        .unwrap();
    assert_eq!(res.body(), "alice");
    assert_eq!(set_cookie_names(&res), ["__Host-session.1"]);
    // Back to the short kid; past exp the hook grows the claims beyond the limit.
    handle.replace(ring());
    clock.advance(Duration::from_secs(2 * 3_600));
    let res = get(&pair).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.body(), "alice", "renewed, only not written back");
    assert!(res.headers().get(SET_COOKIE).is_none());
}

/// Records the level of every event, and its fields as text.
#[derive(Default, Clone)]
struct Events(Arc<Mutex<Vec<(tracing::Level, String)>>>);

impl tracing::Subscriber for Events {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn fmt::Debug) {
                use std::fmt::Write;
                let _ = write!(self.0, "{}={v:?} ", f.name());
            }
        }
        let mut t = Text(String::new());
        e.record(&mut t);
        self.0.lock().unwrap().push((*e.metadata().level(), t.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Item 8: malformed input is ordinary traffic: refusals log at debug, never the token.
#[tokio::test(flavor = "current_thread")]
async fn refused_input_logs_at_debug_and_never_the_token() {
    let events = Events::default();
    let _guard = tracing::subscriber::set_default(events.clone());
    let layer = layer();
    let pair = cookie_pair(&call(&layer, "/login", None).await);
    let token = pair.trim_start_matches("__Host-session=");
    let mut tampered = token.as_bytes().to_vec();
    let i = tampered.len() - 30;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    // Issue 25, item 8: a kid this ring does not have is a header anyone can forge
    // without a key: debug too (and the `unknown_kid` counter), never info.
    let forger =
        KeyRing::new(vec![Key::from_bytes("forged-kid", &[7; 32]).unwrap()], None).unwrap();
    let opts = jwe_session_core::TokenOptions::new().with_purpose(layer.purpose());
    let mut claims = Claims::new(());
    claims.sub = Some("mallory".into());
    let forged = forger.seal(&claims, &opts).unwrap();
    for cookie in [
        format!("__Host-session={}", forged.as_str()),
        "__Host-session=garbage".to_owned(),
        format!("__Host-session={tampered}"),
        format!("__Host-session={token}; __Host-session.1=x"),
        format!("__Host-session={}", "a".repeat(20_000)),
    ] {
        let _ = call(&layer, "/", Some(&cookie)).await;
    }
    let _ = layer
        .layer(service_fn(handler))
        .oneshot(post(
            "/logout",
            &[("sec-fetch-site", "cross-site"), ("cookie", &pair)],
        ))
        .await
        .unwrap();
    let events = events.0.lock().unwrap();
    assert!(!events.is_empty(), "refusals are logged");
    for (level, text) in events.iter() {
        assert!(*level >= tracing::Level::DEBUG, "{level} {text}");
        assert!(
            !text.contains(&token[..40]) && !text.contains(&tampered[..40]),
            "{text}"
        );
    }
}

/// Item 9: two apps sharing keys and the cookie name, one with an issuer and one
/// without, do not accept each other's tokens.
#[tokio::test]
async fn the_default_purpose_includes_the_issuer() {
    let with_iss = |iss: Option<&str>| {
        let mut b = SessionLayer::<()>::builder(ring()).clock(Arc::new(ManualClock::new(
            UnixTime::from_secs(1_800_000_000),
        )));
        if let Some(iss) = iss {
            b = b.issuer(iss);
        }
        b.build().unwrap()
    };
    let a = with_iss(Some("https://a.example"));
    let b = with_iss(None);
    assert!(a.purpose().contains("https://a.example"), "{}", a.purpose());
    assert_ne!(a.purpose(), b.purpose());
    let token = cookie_pair(&call(&a, "/login", None).await);
    assert_eq!(call(&a, "/", Some(&token)).await.body(), "alice");
    assert_eq!(call(&b, "/", Some(&token)).await.body(), "anonymous");
    let token = cookie_pair(&call(&b, "/login", None).await);
    assert_eq!(call(&a, "/", Some(&token)).await.body(), "anonymous");
}

/// Item 9, upgrade path: a token sealed under the purpose without the issuer (before 069fde3)
/// still opens for an app that sets that issuer, and is re-sealed under the new
/// purpose; one without the issuer, or with another, does not.
#[tokio::test]
async fn tokens_from_before_the_issuer_joined_the_purpose_are_resealed() {
    let now = UnixTime::from_secs(1_800_000_000);
    let layer = SessionLayer::<()>::builder(ring())
        .clock(Arc::new(ManualClock::new(now)))
        .issuer("https://a.example")
        .build()
        .unwrap();
    let old =
        jwe_session_core::TokenOptions::new().with_purpose("jwe-session/cookie/__Host-session");
    let token = |iss: Option<&str>| {
        let mut c = Claims::new(());
        jwe_session_core::Lifetimes::default().start(&mut c, "alice", now);
        c.iss = iss.map(str::to_owned);
        format!("__Host-session={}", ring().seal(&c, &old).unwrap().as_str())
    };
    let res = call(&layer, "/", Some(&token(Some("https://a.example")))).await;
    assert_eq!(res.body(), "alice");
    let resealed = cookie_pair(&res);
    let opened = ring()
        .open::<Claims<()>>(
            resealed.trim_start_matches("__Host-session="),
            &TokenOptions::new().with_purpose(layer.purpose()),
        )
        .unwrap();
    assert_eq!(opened.payload().iss.as_deref(), Some("https://a.example"));
    let res = call(&layer, "/", Some(&resealed)).await;
    assert_eq!(res.body(), "alice");
    assert!(res.headers().get(SET_COOKIE).is_none());
    for other in [None, Some("https://b.example")] {
        let res = call(&layer, "/", Some(&token(other))).await;
        assert_eq!(res.body(), "anonymous", "{other:?}");
        assert_eq!(
            set_cookie_names(&res),
            ["__Host-session"],
            "cleared: {other:?}"
        );
    }
    // An explicit purpose has no such fallback.
    let explicit = SessionLayer::<()>::builder(ring())
        .clock(Arc::new(ManualClock::new(now)))
        .issuer("https://a.example")
        .purpose("mine")
        .build()
        .unwrap();
    let res = call(&explicit, "/", Some(&token(Some("https://a.example")))).await;
    assert_eq!(res.body(), "anonymous");
}

/// A handler for the admin tests: `/login/<user>` starts a session, anything else answers
/// whose session the request has.
async fn as_user(req: Request<String>) -> Result<Response<String>, Infallible> {
    let handle = handle_of::<()>(&req);
    let body = match req.uri().path().strip_prefix("/login/") {
        Some(user) => {
            handle.start(user, ()).unwrap();
            format!("started {user}")
        }
        None => handle
            .claims()
            .and_then(|c| c.sub)
            .unwrap_or_else(|| "anonymous".into()),
    };
    Ok(Response::new(body))
}

async fn as_user_call(
    layer: &SessionLayer<()>,
    path: &str,
    cookie: Option<&str>,
) -> Response<String> {
    call_with(layer, as_user, path, cookie).await
}

/// `SessionAdmin::end_subject` ends every session of one user begun until then, and
/// nobody else's; a session that user begins afterwards is kept. On a clock that does not
/// move, so only the layer's moment order tells before from after.
#[tokio::test]
async fn the_admin_ends_one_user_everywhere_and_no_one_else() {
    let layer = layer();
    let admin = layer.admin();
    let alice_1 = cookie_pair(&as_user_call(&layer, "/login/alice", None).await);
    let alice_2 = cookie_pair(&as_user_call(&layer, "/login/alice", None).await);
    let bob = cookie_pair(&as_user_call(&layer, "/login/bob", None).await);
    assert_eq!(
        as_user_call(&layer, "/", Some(&alice_1)).await.body(),
        "alice"
    );

    assert!(matches!(
        admin.end_subject("alice").await,
        Ok(Recorded::Stored)
    ));
    for old in [&alice_1, &alice_2] {
        assert_eq!(
            as_user_call(&layer, "/", Some(old)).await.body(),
            "anonymous"
        );
    }
    assert_eq!(as_user_call(&layer, "/", Some(&bob)).await.body(), "bob");
    let alice_3 = cookie_pair(&as_user_call(&layer, "/login/alice", None).await);
    assert_eq!(
        as_user_call(&layer, "/", Some(&alice_3)).await.body(),
        "alice"
    );
}

/// `SessionAdmin::end_everyone` ends every session begun until then; logins after it
/// are kept.
#[tokio::test]
async fn the_admin_ends_everyone_and_later_logins_are_kept() {
    let layer = layer();
    let alice = cookie_pair(&as_user_call(&layer, "/login/alice", None).await);
    let bob = cookie_pair(&as_user_call(&layer, "/login/bob", None).await);
    assert!(matches!(
        layer.admin().end_everyone().await,
        Ok(Recorded::Stored)
    ));
    for old in [&alice, &bob] {
        assert_eq!(
            as_user_call(&layer, "/", Some(old)).await.body(),
            "anonymous"
        );
    }
    let carol = cookie_pair(&as_user_call(&layer, "/login/carol", None).await);
    assert_eq!(
        as_user_call(&layer, "/", Some(&carol)).await.body(),
        "carol"
    );
}
