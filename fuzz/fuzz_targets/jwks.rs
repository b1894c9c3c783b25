//! Parsing arbitrary JWK Sets never panics; a set that loads exports and loads back the same.
#![no_main]

use jwe_session_core::KeyRing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else { return };
    let Ok(ring) = KeyRing::from_jwks(json) else { return };
    let back = KeyRing::from_jwks(&ring.to_jwks_secret()).expect("an exported ring loads");
    assert_eq!(back.active().kid(), ring.active().kid());
    let kids = |r: &KeyRing| {
        let mut v: Vec<(String, bool)> = r.keys().iter().map(|k| (k.kid().to_owned(), k.can_seal())).collect();
        v.sort();
        v
    };
    assert_eq!(kids(&back), kids(&ring));
    // And both rings open what either seals.
    let t = ring.seal_bytes(b"{}", &Default::default()).unwrap();
    assert!(back.open_bytes(t.as_str(), &Default::default()).is_ok());
});
