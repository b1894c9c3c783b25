//! The layer's cost per request, in-process: the same handler bare and behind
//! `SessionLayer`, shared by the criterion bench (`benches/layer.rs`) and the instruction
//! counter (`src/bin/count.rs`).

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use http::{Request, Response};
use jwe_session::{
    DeviceBoundConfig, DpopConfig, ProofKey, SessionHandle, SessionLayer, Transport,
};
use jwe_session_core::{Key, KeyRing, ManualClock, UnixTime};
use tower::{service_fn, Layer, Service};

use crate::{App, KEY, NOW};

/// The requests measured, in the order of the table.
pub const REQUESTS: [&str; 7] = [
    "bare service",
    "no cookie",
    "valid cookie",
    "valid cookie (cache off)",
    "valid cookie, route never reads it (cache off)",
    "device-bound cookie",
    "login",
];

/// Every future here completes without I/O: poll it to the end on this thread.
fn run<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

async fn handler(req: Request<()>) -> Result<Response<bool>, Infallible> {
    // A static route: never reads the session.
    if req.uri().path() == "/static" {
        return Ok(Response::new(false));
    }
    // The handler only asks whether there is a session, so the figures are the layer's.
    let active = req
        .extensions()
        .get::<SessionHandle<App>>()
        .is_some_and(SessionHandle::is_active);
    if req.uri().path() == "/login" {
        if let Some(h) = req.extensions().get::<SessionHandle<App>>() {
            h.start("alice", crate::claims(false).app).ok();
        }
    }
    Ok(Response::new(active))
}

/// One request kind, ready to be sent again and again: `bare service` (no layer),
/// `no cookie`, `valid cookie` (the steady path: the token seen before, served from the
/// layer's token cache, then validated and checked against the memory revocation store,
/// nothing written back), `valid cookie (cache off)` (the same with the cache off: every
/// request opens the token, as the first request with a token does), `valid cookie, route
/// never reads it (cache off)` (a static route behind the layer: the token is never
/// opened), `device-bound cookie` (a DBSC-bound session's cookie on a layer with device
/// binding, steady path) or `login` (seal and `Set-Cookie`).
pub fn request(kind: &str) -> Option<Box<dyn FnMut() -> Response<bool>>> {
    let ring = KeyRing::new(vec![Key::from_bytes("2026-11", &KEY).unwrap()], None).unwrap();
    let clock = ManualClock::new(UnixTime::from_secs(NOW));
    let cache = if kind.ends_with("(cache off)") {
        0
    } else {
        1024
    };
    let mut builder = SessionLayer::<App>::builder(ring)
        .clock(Arc::new(clock))
        .token_cache(cache);
    if kind == "device-bound cookie" {
        builder = builder.device_bound(DeviceBoundConfig::new());
    }
    let layer = builder.build().unwrap();
    let mut bare = service_fn(handler);
    let mut layered = layer.layer(service_fn(handler));
    let get = |path: &str, cookie: Option<&str>| {
        let mut b = Request::builder().uri(path).header("host", HOST);
        if let Some(c) = cookie {
            b = b.header("cookie", c);
        }
        b.body(()).unwrap()
    };
    let login = run(layered.call(get("/login", None))).unwrap();
    let mut cookie = session_cookie(&login).expect("a login cookie");
    if kind == "device-bound cookie" {
        cookie = bind(&mut layered, &login, &cookie);
    }
    Some(match kind {
        "bare service" => {
            Box::new(move || run(bare.call(black_box(get("/me", Some(&cookie))))).unwrap())
        }
        "no cookie" => Box::new(move || run(layered.call(black_box(get("/me", None)))).unwrap()),
        "valid cookie" | "valid cookie (cache off)" | "device-bound cookie" => {
            Box::new(move || {
                let res = run(layered.call(black_box(get("/me", Some(&cookie))))).unwrap();
                debug_assert!(*res.body() && res.headers().get("set-cookie").is_none());
                res
            })
        }
        "valid cookie, route never reads it (cache off)" => Box::new(move || {
            let res = run(layered.call(black_box(get("/static", Some(&cookie))))).unwrap();
            debug_assert!(res.headers().get("set-cookie").is_none());
            res
        }),
        "login" => Box::new(move || run(layered.call(get("/login", None))).unwrap()),
        _ => return None,
    })
}

const HOST: &str = "app.example.com";

/// The `name=value` of the session cookie a response sets, if it sets one.
fn session_cookie(res: &Response<bool>) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// Registers a device key for the session of `cookie` (the DBSC registration the login
/// asked for), and uses the bound cookie once: its first use retires the login's cookie
/// and seals it again. Returns the bound cookie of the steady path.
fn bind<S>(layered: &mut S, login: &Response<bool>, cookie: &str) -> String
where
    S: Service<Request<()>, Response = Response<bool>, Error = Infallible>,
{
    let header = login.headers()[jwe_session::dbsc::SECURE_SESSION_REGISTRATION]
        .to_str()
        .unwrap();
    let at = header.find("challenge=\"").unwrap() + "challenge=\"".len();
    let challenge = &header[at..at + header[at..].find('"').unwrap()];
    let key = ProofKey::generate().unwrap();
    let mut claims = serde_json::Map::new();
    claims.insert("jti".into(), challenge.into());
    let proof = key.sign("dbsc+jwt", &claims).unwrap();
    let req = Request::builder()
        .method("POST")
        .uri("/session/dbsc/register")
        .header("host", HOST)
        .header("cookie", cookie)
        .header(jwe_session::dbsc::SECURE_SESSION_RESPONSE, proof)
        .body(())
        .unwrap();
    let res = run(layered.call(req)).unwrap();
    let bound = session_cookie(&res).expect("the bound cookie");
    let first = Request::builder()
        .uri("/me")
        .header("host", HOST)
        .header("cookie", &bound)
        .body(())
        .unwrap();
    let res = run(layered.call(first)).unwrap();
    assert!(*res.body(), "the bound cookie opens");
    session_cookie(&res).unwrap_or(bound)
}

/// The bearer-transport requests, measured apart because a DPoP request needs a new proof
/// each time (made in criterion's setup, outside the measurement).
pub const HEADER_REQUESTS: [&str; 2] = ["valid bearer token", "valid DPoP token and proof"];

/// A request kind of [`HEADER_REQUESTS`]: a maker of the next request (for DPoP, with a
/// fresh proof by the token's key) and the layered service that answers it. Both layers
/// have DPoP on, so the bearer row pays what a DPoP-enabled layer costs a bearer token.
#[allow(clippy::type_complexity)]
pub fn header_request(
    kind: &str,
) -> Option<(
    Box<dyn FnMut() -> Request<()>>,
    Box<dyn FnMut(Request<()>) -> Response<bool>>,
)> {
    const ORIGIN: &str = "https://api.example.com";
    let ring = KeyRing::new(vec![Key::from_bytes("2026-11", &KEY).unwrap()], None).unwrap();
    let layer = SessionLayer::<App>::builder(ring)
        .clock(Arc::new(ManualClock::new(UnixTime::from_secs(NOW))))
        .transport(Transport::Bearer)
        // Every proof of a run stays in the window (the clock does not move), so the
        // cache holds them all.
        .dpop(
            DpopConfig::new()
                .public_origin(ORIGIN)
                .replay_cache(1 << 21),
        )
        .build()
        .unwrap();
    let mut layered = layer.layer(service_fn(handler));
    let key = ProofKey::generate().unwrap();
    let proof = move |method: &str, path: &str, token: Option<&str>| {
        let mut c = serde_json::Map::new();
        c.insert("htm".into(), method.into());
        c.insert("htu".into(), format!("{ORIGIN}{path}").into());
        c.insert("iat".into(), NOW.into());
        c.insert("jti".into(), jwe_session_core::random_id().into());
        if let Some(t) = token {
            c.insert("ath".into(), jwe_session_core::access_token_hash(t).into());
        }
        key.sign("dpop+jwt", &c).unwrap()
    };
    let dpop = kind == "valid DPoP token and proof";
    let mut login = Request::builder().uri("/login");
    if dpop {
        login = login.header("dpop", proof("GET", "/login", None));
    }
    let res = run(layered.call(login.body(()).unwrap())).unwrap();
    let token = res.headers()["x-session-token"]
        .to_str()
        .unwrap()
        .to_owned();
    let make: Box<dyn FnMut() -> Request<()>> = match kind {
        "valid bearer token" => {
            let auth = format!("Bearer {token}");
            Box::new(move || {
                Request::builder()
                    .uri("/me")
                    .header("authorization", &auth)
                    .body(())
                    .unwrap()
            })
        }
        "valid DPoP token and proof" => {
            let auth = format!("DPoP {token}");
            Box::new(move || {
                Request::builder()
                    .uri("/me")
                    .header("authorization", &auth)
                    .header("dpop", proof("GET", "/me", Some(&token)))
                    .body(())
                    .unwrap()
            })
        }
        _ => return None,
    };
    let send = Box::new(move |req| {
        let res = run(layered.call(black_box(req))).unwrap();
        assert!(*res.body(), "the request had its session");
        res
    });
    Some((make, send))
}
