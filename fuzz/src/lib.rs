//! Fixtures shared by the fuzz targets: one fixed key ring and a token it sealed.
#![forbid(unsafe_code)]

use jwe_session_core::{Claims, Key, KeyRing, TokenOptions, UnixTime};

/// The purpose the fuzzed tokens are bound to.
pub const PURPOSE: &str = "jwe-session/cookie/__Host-session";

/// A ring with one active and one old key.
pub fn ring() -> KeyRing {
    let k = |seed: u8| -> Vec<u8> { (0..32u8).map(|i| i.wrapping_mul(83).wrapping_add(seed) | 0x80).collect() };
    KeyRing::new(
        vec![Key::from_bytes("fuzz-2", &k(2)).unwrap(), Key::from_bytes("fuzz-1", &k(1)).unwrap()],
        None,
    )
    .unwrap()
}

/// Options with the fuzz purpose.
pub fn opts() -> TokenOptions {
    TokenOptions::new().with_purpose(PURPOSE)
}

/// Claims as the layer writes them.
pub fn claims() -> Claims<serde_json::Value> {
    let mut c = Claims::new(serde_json::json!({"roles": ["a", "b"], "n": 1}));
    c.sub = Some("alice".into());
    c.sid = Some("sid-1".into());
    c.auth_time = Some(UnixTime::from_secs(1_800_000_000));
    c.iat = c.auth_time;
    c.exp = Some(UnixTime::from_secs(4_102_444_800));
    c
}

/// Polls a future that completes without I/O (every layer call here) to the end.
pub fn run<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
