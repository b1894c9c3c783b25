//! The claims reader agrees with serde_json on any payload: what `parse_claims` reads,
//! serde_json reads to the same value, and what serde_json refuses, `parse_claims` refuses.
#![no_main]

use jwe_session_core::{parse_claims, Claims};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn agrees<T: DeserializeOwned + PartialEq + std::fmt::Debug>(payload: &[u8]) {
    let object = payload.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    // JSON is UTF-8 (RFC 8259 §8.1): the payload is checked whole, as `parse_claims` does
    // (serde_json's own byte reader skips the check in strings it ignores).
    let judge = std::str::from_utf8(payload)
        .ok()
        .and_then(|json| serde_json::from_str::<T>(json).ok())
        .filter(|_| object);
    assert_eq!(parse_claims::<T>(payload).ok(), judge, "{:?}", String::from_utf8_lossy(payload));
}

#[derive(serde::Deserialize, Debug, PartialEq)]
struct App {
    roles: Vec<String>,
    #[serde(default)]
    n: Option<i32>,
    #[serde(default)]
    on: Option<bool>,
}

fuzz_target!(|data: &[u8]| {
    agrees::<Claims<Value>>(data);
    agrees::<Claims<()>>(data);
    agrees::<Claims<App>>(data);
    agrees::<Value>(data);
});
