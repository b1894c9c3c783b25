//! Shared fixtures for the benchmarks: the claim sets every implementation seals and opens.
#![forbid(unsafe_code)]
#![allow(missing_docs)]

use serde::{Deserialize, Serialize};

pub mod cases;
pub mod layer;

/// A typical session (~300 bytes of JSON) plus, in the large case, a 2 KB field.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Full {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    pub sid: String,
    pub roles: Vec<String>,
    pub email: String,
    pub locale: String,
    pub tenant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
}

/// The application part of [`Full`], for `jwe_session_core::Claims<App>`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct App {
    pub roles: Vec<String>,
    pub email: String,
    pub locale: String,
    pub tenant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
}

pub const NOW: u64 = 1_800_000_000;

pub fn full(large: bool) -> Full {
    Full {
        iss: "https://auth.example.com".into(),
        sub: "user-8f14e45fceea167a5a36dedd4bea2543".into(),
        aud: "https://app.example.com".into(),
        exp: NOW + 900,
        nbf: NOW,
        iat: NOW,
        jti: "b5c1f1a1-0cf8-4a3e-9f4e-3c2d1e0f9a8b".into(),
        sid: "S1Jk0cZpV3m9Qe2xT7uYbw".into(),
        roles: vec!["editor".into(), "billing-admin".into()],
        email: "alexandra.jones@example.com".into(),
        locale: "en-GB".into(),
        tenant: "tenant-42-eu-west".into(),
        extra: large.then(|| "x".repeat(2048)),
    }
}

pub fn claims(large: bool) -> jwe_session_core::Claims<App> {
    let f = full(large);
    let mut c = jwe_session_core::Claims::new(App {
        roles: f.roles,
        email: f.email,
        locale: f.locale,
        tenant: f.tenant,
        extra: f.extra,
    });
    c.iss = Some(f.iss);
    c.sub = Some(f.sub);
    c.aud = Some(jwe_session_core::Audience::one(f.aud));
    c.exp = Some(jwe_session_core::UnixTime::from_secs(f.exp));
    c.nbf = Some(jwe_session_core::UnixTime::from_secs(f.nbf));
    c.iat = Some(jwe_session_core::UnixTime::from_secs(f.iat));
    c.jti = Some(f.jti);
    c.sid = Some(f.sid);
    c
}

pub const KEY: [u8; 32] = [
    0x8b, 0x1f, 0x3a, 0xc4, 0x5e, 0x90, 0x27, 0xd6, 0x61, 0xf3, 0x0c, 0xa8, 0x4d, 0xb2, 0x19, 0xe7,
    0x33, 0x7a, 0xce, 0x05, 0x98, 0x6f, 0xd1, 0x42, 0xbb, 0x2c, 0x80, 0x57, 0xf9, 0x14, 0x6e, 0xa3,
];

/// The criterion settings both benches use; `COMPARE_QUICK=1` shortens them.
pub fn criterion_config() -> criterion::Criterion {
    use std::time::Duration;
    let quick = std::env::var("COMPARE_QUICK").is_ok();
    criterion::Criterion::default()
        .warm_up_time(Duration::from_millis(if quick { 300 } else { 1000 }))
        .measurement_time(Duration::from_millis(if quick { 700 } else { 3000 }))
        .sample_size(if quick { 30 } else { 60 })
}
