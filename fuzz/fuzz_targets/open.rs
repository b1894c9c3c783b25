//! Opening arbitrary tokens never panics; whatever opens re-seals and opens to the same claims.
#![no_main]

use jwe_session_core::{Claims, TokenOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let ring = jwe_session_fuzz::ring();
    for opts in [jwe_session_fuzz::opts(), TokenOptions::new()] {
        let _ = ring.open_bytes(token, &opts);
        if let Ok(opened) = ring.open::<Claims<serde_json::Value>>(token, &opts) {
            let claims = opened.into_payload();
            let again = ring.seal(&claims, &opts).expect("what opened seals again");
            let back = ring.open::<Claims<serde_json::Value>>(again.as_str(), &opts).expect("and opens");
            assert_eq!(back.payload(), &claims);
        }
    }
});
