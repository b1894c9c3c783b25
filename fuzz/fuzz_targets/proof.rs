//! Proofs of possession: arbitrary bytes, and arbitrary header and claims JSON around a
//! real signature, never panic; whatever verifies carries a public P-256 key whose
//! thumbprint the generic RFC 7638 function agrees with. DPoP on top: arbitrary claims
//! signed by a real key never panic `check_dpop`, and the URI normalization is idempotent.
//! DBSC likewise: arbitrary bytes as registration and refresh proofs, and arbitrary claims
//! signed by a real key (with and without a `jwk`) through both checks.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use jwe_session_core::{
    check_dbsc_refresh, check_dbsc_registration, check_dpop, jwk_thumbprint, normalize_htu, verify_proof, DpopRequest, ProofKey, ProofOptions,
    PublicJwk, UnixTime,
};
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
    static KEY: OnceLock<ProofKey> = OnceLock::new();
    let key = KEY.get_or_init(|| ProofKey::generate().expect("a key"));
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = check_dbsc_registration(s);
        let _ = check_dbsc_refresh(s, key.jwk());
        if let Some(n) = normalize_htu(s) {
            assert_eq!(normalize_htu(&n).as_deref(), Some(n.as_str()), "not idempotent");
        }
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Some(m) = v.as_object() {
            let _ = jwk_thumbprint(m);
            // The same object as a real proof's claims, checked as the layer checks them.
            for typ in ["dbsc+jwt", "dpop+jwt"] {
                if let Ok(p) = key.sign(typ, m) {
                    let _ = check_dbsc_registration(&p);
                }
                if let Ok(p) = key.sign_without_jwk(typ, m) {
                    let _ = check_dbsc_refresh(&p, key.jwk());
                }
            }
            if let Ok(proof) = key.sign("dpop+jwt", m) {
                let _ = check_dpop(
                    &proof,
                    &DpopRequest {
                        method: "GET",
                        uri: "https://api.example.com/me",
                        access_token: Some("a.b.c"),
                        now: UnixTime::from_secs(1_800_000_000),
                        max_age: Duration::from_secs(60),
                        leeway: Duration::from_secs(5),
                    },
                );
            }
        }
    }
});
