//! The layer's cookie path: an arbitrary `Cookie` header never panics or errors the
//! response; a real session split into chunks at arbitrary points, sent in any order among
//! junk cookies (a stale chunk beyond the token's count among them), is reassembled and
//! opened.
#![no_main]

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use jwe_session::{SessionHandle, SessionLayer};
use jwe_session_core::{ManualClock, UnixTime};
use jwe_session_fuzz::run;
use libfuzzer_sys::fuzz_target;
use tower::{service_fn, Layer, Service};

fn call(cookie: &[u8]) -> Option<bool> {
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_100));
    let layer = SessionLayer::<serde_json::Value>::builder(jwe_session_fuzz::ring())
        .clock(Arc::new(clock))
        .build()
        .unwrap();
    let mut svc = layer.layer(service_fn(|req: Request<()>| async move {
        let h = req.extensions().get::<SessionHandle<serde_json::Value>>().cloned().unwrap();
        Ok::<_, Infallible>(Response::new(h.is_active()))
    }));
    let req = Request::builder().header("cookie", http::HeaderValue::from_bytes(cookie).ok()?).body(()).ok()?;
    let res = run(svc.call(req)).unwrap();
    assert!(res.status().is_success());
    Some(*res.body())
}

fuzz_target!(|data: &[u8]| {
    let _ = call(data);

    // A valid session, chunked at points chosen by the input, in an order chosen by it.
    let ring = jwe_session_fuzz::ring();
    let token = ring.seal(&jwe_session_fuzz::claims(), &jwe_session_fuzz::opts()).unwrap().into_string();
    let cuts = data.first().map_or(1, |b| usize::from(b % 5) + 1);
    let mut parts = Vec::new();
    let mut rest = token.as_str();
    for i in 0..cuts {
        let at = if i + 1 == cuts {
            rest.len()
        } else {
            data.get(i + 1).map_or(1, |b| usize::from(*b) % rest.len().max(1)).min(rest.len())
        };
        let (a, b) = rest.split_at(at);
        parts.push(a);
        rest = b;
    }
    // The chunk format (see the layer's cookies module): a whole token as it is; a split
    // one as `~{n}~{id}~{part 0}`, then `{id}~{part i}`, id = the tag's first 8 characters.
    let id = &token[token.rfind('.').unwrap() + 1..][..8];
    let n = parts.len();
    let mut cookies: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| match (i, n) {
            (0, 1) => format!("__Host-session={p}"),
            (0, _) => format!("__Host-session=~{n}~{id}~{p}"),
            _ => format!("__Host-session.{i}={id}~{p}"),
        })
        .collect();
    cookies.push("other=1".into());
    // What a sibling subdomain could plant without the `__Host-` prefix: never read.
    cookies.push("session=planted".into());
    cookies.push("__Host-sessionx=2".into());
    cookies.push("__Host-session.+1=3".into());
    cookies.push(format!("__Host-session.{}=stale~x", n.max(1) + 1));
    if let Some(r) = data.get(7) {
        let n = cookies.len();
        cookies.rotate_left(usize::from(*r) % n);
    }
    let header = cookies.join("; ");
    assert_eq!(call(header.as_bytes()), Some(true), "{header}");
});
