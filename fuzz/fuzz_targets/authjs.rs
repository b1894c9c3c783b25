//! Auth.js session cookies: an arbitrary `Cookie` header through `AuthJsLayer` (v5 and
//! v4) never panics and never writes a cookie (the layer is read-only by default, and a
//! refused Next.js cookie is left alone); an arbitrary string opened under an Auth.js ring
//! is an answer, never a panic; a real v5 token split into chunks at the input's points,
//! sent in any order among the input's cookies, opens when the chunks join cleanly.
#![no_main]

use std::convert::Infallible;

use http::{Request, Response};
use jwe_session::authjs::AuthJsLayer;
use jwe_session_core::{join_authjs_chunks, AuthJsClaims, Claims, KeyRing, TokenOptions};
use jwe_session_fuzz::run;
use libfuzzer_sys::fuzz_target;
use tower::{service_fn, Layer, Service};

const NAME: &str = "authjs.session-token";

fuzz_target!(|data: &[u8]| {
    for layer in [
        AuthJsLayer::<serde_json::Value>::v5(&["fuzz-secret"]).build().unwrap(),
        AuthJsLayer::<serde_json::Value>::v4("fuzz-secret").build().unwrap(),
    ] {
        let mut svc = layer.layer(service_fn(|_req: Request<()>| async move {
            Ok::<_, Infallible>(Response::new(()))
        }));
        if let Ok(v) = http::HeaderValue::from_bytes(data) {
            let req = Request::builder().header("cookie", v).body(()).unwrap();
            let res = run(svc.call(req)).unwrap();
            assert!(res.headers().get("set-cookie").is_none());
        }
    }
    let text = String::from_utf8_lossy(data);
    let ring = KeyRing::from_authjs_secrets(&["fuzz-secret"], NAME).unwrap();
    let _ = ring.open::<Claims<AuthJsClaims<serde_json::Value>>>(&text, &TokenOptions::new());
    let v4 = KeyRing::from_nextauth_secret(b"fuzz-secret").unwrap();
    let _ = v4.open::<Claims<AuthJsClaims>>(&text, &TokenOptions::new());

    // A real token cut where the input says, the parts named .0, .1, ... in an order the
    // input picks: joined, it is the token again.
    let token = ring
        .seal(&serde_json::json!({"sub": "alice", "exp": 4_000_000_000u64}), &TokenOptions::new())
        .unwrap()
        .into_string();
    let mut cuts: Vec<usize> = data.iter().map(|b| usize::from(*b) * token.len() / 256).collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts.retain(|c| *c > 0 && *c < token.len());
    cuts.truncate(15);
    let mut parts = Vec::new();
    let mut from = 0;
    for (i, c) in cuts.iter().chain(std::iter::once(&token.len())).enumerate() {
        parts.push((format!("{NAME}.{i}"), &token[from..*c]));
        from = *c;
    }
    if let Some(first) = data.first() {
        let n = parts.len();
        parts.rotate_left(usize::from(*first) % n);
    }
    let joined = join_authjs_chunks(parts.iter().map(|(n, v)| (n.as_str(), *v)), NAME, 1 << 16).unwrap();
    assert_eq!(joined.as_deref(), Some(token.as_str()));
    assert!(ring.open::<Claims<AuthJsClaims>>(&token, &TokenOptions::new()).is_ok());
});
