//! What the session layer adds to a request, in-process: a bare tower service against the
//! same service behind `SessionLayer`, with no cookie, with a valid cookie (the steady path:
//! open, validate, memory revocation check, nothing written back), and with a login (seal
//! and Set-Cookie).

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use criterion::{criterion_group, criterion_main, Criterion};
use http::{Request, Response};
use jwe_session::{SessionHandle, SessionLayer};
use jwe_session_benches::{App, KEY};
use jwe_session_core::{Key, KeyRing, ManualClock, UnixTime};
use tower::{service_fn, Layer, Service};

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
    let active = req.extensions().get::<SessionHandle<App>>().is_some_and(SessionHandle::is_active);
    if req.uri().path() == "/login" {
        if let Some(h) = req.extensions().get::<SessionHandle<App>>() {
            let app = jwe_session_benches::claims(false).app;
            h.start("alice", app);
        }
    }
    Ok(Response::new(active))
}

fn layer_cost(c: &mut Criterion) {
    let ring = KeyRing::new(vec![Key::from_bytes("2026-11", &KEY).unwrap()], None).unwrap();
    let clock = ManualClock::new(UnixTime::from_secs(jwe_session_benches::NOW));
    let layer = SessionLayer::<App>::builder(ring).clock(Arc::new(clock)).build().unwrap();
    let mut bare = service_fn(handler);
    let mut layered = layer.layer(service_fn(handler));

    let login = run(layered.call(Request::builder().uri("/login").body(()).unwrap())).unwrap();
    let set = login.headers()["set-cookie"].to_str().unwrap();
    let cookie = set.split(';').next().unwrap().to_owned();
    let req = |cookie: Option<&str>| {
        let mut b = Request::builder().uri("/me");
        if let Some(c) = cookie {
            b = b.header("cookie", c);
        }
        b.body(()).unwrap()
    };

    let mut g = c.benchmark_group("layer");
    g.bench_function("bare service", |b| b.iter(|| run(bare.call(black_box(req(Some(&cookie)))))));
    g.bench_function("layer, no cookie", |b| b.iter(|| run(layered.call(black_box(req(None))))));
    g.bench_function("layer, valid cookie", |b| {
        b.iter(|| {
            let res = run(layered.call(black_box(req(Some(&cookie))))).unwrap();
            debug_assert!(res.headers().get("set-cookie").is_none());
            res
        })
    });
    g.bench_function("layer, login (seal + Set-Cookie)", |b| {
        b.iter(|| run(layered.call(Request::builder().uri("/login").body(()).unwrap())))
    });
    g.finish();
}


criterion_group! { name = layer; config = jwe_session_benches::criterion_config(); targets = layer_cost }
criterion_main!(layer);
