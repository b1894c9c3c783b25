//! The layer's cost per request, in-process: the same handler bare and behind
//! `SessionLayer`, shared by the criterion bench (`benches/layer.rs`) and the instruction
//! counter (`src/bin/count.rs`).

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use http::{Request, Response};
use jwe_session::{SessionHandle, SessionLayer};
use jwe_session_core::{Key, KeyRing, ManualClock, UnixTime};
use tower::{service_fn, Layer, Service};

use crate::{App, KEY, NOW};

/// The requests measured, in the order of the table.
pub const REQUESTS: [&str; 5] = [
    "bare service",
    "no cookie",
    "valid cookie",
    "valid cookie (cache off)",
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
/// request opens the token, as the first request with a token does) or `login` (seal and
/// `Set-Cookie`).
pub fn request(kind: &str) -> Option<Box<dyn FnMut() -> Response<bool>>> {
    let ring = KeyRing::new(vec![Key::from_bytes("2026-11", &KEY).unwrap()], None).unwrap();
    let clock = ManualClock::new(UnixTime::from_secs(NOW));
    let cache = if kind == "valid cookie (cache off)" {
        0
    } else {
        1024
    };
    let layer = SessionLayer::<App>::builder(ring)
        .clock(Arc::new(clock))
        .token_cache(cache)
        .build()
        .unwrap();
    let mut bare = service_fn(handler);
    let mut layered = layer.layer(service_fn(handler));
    let get = |path: &str, cookie: Option<&str>| {
        let mut b = Request::builder().uri(path);
        if let Some(c) = cookie {
            b = b.header("cookie", c);
        }
        b.body(()).unwrap()
    };
    let login = run(layered.call(get("/login", None))).unwrap();
    let set = login.headers()["set-cookie"].to_str().unwrap();
    let cookie = set.split(';').next().unwrap().to_owned();
    Some(match kind {
        "bare service" => {
            Box::new(move || run(bare.call(black_box(get("/me", Some(&cookie))))).unwrap())
        }
        "no cookie" => Box::new(move || run(layered.call(black_box(get("/me", None)))).unwrap()),
        "valid cookie" | "valid cookie (cache off)" => Box::new(move || {
            let res = run(layered.call(black_box(get("/me", Some(&cookie))))).unwrap();
            debug_assert!(*res.body() && res.headers().get("set-cookie").is_none());
            res
        }),
        "login" => Box::new(move || run(layered.call(get("/login", None))).unwrap()),
        _ => return None,
    })
}
