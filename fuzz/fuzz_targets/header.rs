//! Arbitrary protected headers (as JSON bytes) in an otherwise well-formed token: inspect and
//! open never panic, and a header that parses re-serializes to a header that parses the same.
#![no_main]

use jwe_session_core::{inspect, TokenOptions};
use libfuzzer_sys::fuzz_target;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 4 / 3 + 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(B64[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let token = format!("{}..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA", b64(data));
    let ring = jwe_session_fuzz::ring();
    let _ = ring.open_bytes(&token, &jwe_session_fuzz::opts());
    let _ = ring.open_bytes(&token, &TokenOptions::new());
    if let Ok(info) = inspect(&token, &TokenOptions::new()) {
        let json = serde_json::to_vec(&info.header).unwrap();
        let again = format!("{}..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA", b64(&json));
        let back = inspect(&again, &TokenOptions::new()).expect("a re-serialized header parses");
        assert_eq!(back.header, info.header);
    }
});
