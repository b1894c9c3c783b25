//! Tokens cross over to and from panva/jose (Node.js), an independent JOSE implementation.
//!
//! Needs `node` and `npm ci --prefix tests/interop`. Without them the tests skip with a loud
//! message, unless `JWE_SESSION_REQUIRE_INTEROP=1` (CI sets it), when they fail.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwe_session_core::{Claims, Enc, Key, KeyRing, Lifetimes, TokenOptions, UnixTime};
use jwe_session_tests::Jose;
use serde_json::{json, Value};

fn key_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len as u8)
        .map(|i| i.wrapping_mul(71).wrapping_add(seed) | 0x80)
        .collect()
}

fn jwk(kid: &str, bytes: &[u8]) -> Value {
    json!({"kty": "oct", "kid": kid, "k": URL_SAFE_NO_PAD.encode(bytes)})
}

fn claims() -> Claims<Value> {
    let mut c =
        Claims::new(json!({"roles": ["admin", "ops"], "email": "a@example.com", "név": "Ünïcödé"}));
    Lifetimes::default().start(&mut c, "alice", UnixTime::from_secs(1_800_000_000));
    c
}

#[test]
fn our_tokens_open_in_jose_for_every_key_size() {
    let Some(jose) = Jose::find() else { return };
    for enc in [Enc::A128Gcm, Enc::A192Gcm, Enc::A256Gcm] {
        let bytes = key_bytes(enc.key_len(), 3);
        let ring = KeyRing::new(vec![Key::from_bytes("ours", &bytes).unwrap()], None).unwrap();
        let opts = TokenOptions::new().with_purpose("jwe-session/cookie/session");
        let sent = claims();
        let token = ring.seal(&sent, &opts).unwrap();
        let out = jose
            .call(&json!({"op": "decrypt", "jwk": jwk("ours", &bytes), "token": token.as_str()}));
        assert_eq!(
            out["header"],
            json!({"alg": "dir", "enc": enc.as_str(), "kid": "ours", "typ": "jwe-session/cookie/session"})
        );
        let back: Value = serde_json::from_str(out["plaintext"].as_str().unwrap()).unwrap();
        assert_eq!(back, serde_json::to_value(&sent).unwrap());
    }
}

#[test]
fn jose_tokens_open_here_for_every_key_size() {
    let Some(jose) = Jose::find() else { return };
    for enc in [Enc::A128Gcm, Enc::A192Gcm, Enc::A256Gcm] {
        let bytes = key_bytes(enc.key_len(), 9);
        let ring = KeyRing::new(vec![Key::from_bytes("theirs", &bytes).unwrap()], None).unwrap();
        let sent = claims();
        let plaintext = serde_json::to_string(&sent).unwrap();
        // Their header order and an extra member (cty) we do not use: both allowed.
        let header = json!({"enc": enc.as_str(), "cty": "JWT", "kid": "theirs", "alg": "dir"});
        let out = jose.call(
            &json!({"op": "encrypt", "jwk": jwk("theirs", &bytes), "header": header, "plaintext": plaintext}),
        );
        let token = out["token"].as_str().unwrap();
        let opened = ring
            .open::<Claims<Value>>(token, &TokenOptions::new())
            .unwrap();
        assert_eq!(opened.payload(), &sent);
        assert_eq!(opened.kid(), "theirs");
        // One flipped byte in their token is refused here too.
        let mut b = token.as_bytes().to_vec();
        let i = b.len() - 5;
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        assert!(ring
            .open_bytes(std::str::from_utf8(&b).unwrap(), &TokenOptions::new())
            .is_err());
    }
}

#[test]
fn jose_refuses_our_tokens_under_another_key() {
    let Some(jose) = Jose::find() else { return };
    let ring = KeyRing::new(vec![Key::from_bytes("k", &key_bytes(32, 1)).unwrap()], None).unwrap();
    let token = ring.seal(&claims(), &TokenOptions::new()).unwrap();
    let req = json!({"op": "decrypt", "jwk": jwk("k", &key_bytes(32, 2)), "token": token.as_str()});
    let out = jose.run(&req);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

/// A key set with this crate's schedule members (`seals_from`, `sealed_until`,
/// `active_kid`), as `jwe-session rotate` writes it, is an ordinary JWK Set to jose: it
/// imports the keys and opens our tokens with them.
#[test]
fn jose_reads_a_key_set_with_schedule_members() {
    let Some(jose) = Jose::find() else { return };
    let set = json!({
        "keys": [
            {"kty": "oct", "kid": "old", "k": URL_SAFE_NO_PAD.encode(key_bytes(32, 1)), "sealed_until": 1_700_000_000u64},
            {"kty": "oct", "kid": "new", "k": URL_SAFE_NO_PAD.encode(key_bytes(32, 2)), "seals_from": 1_800_000_000u64},
        ],
        "active_kid": "old",
    });
    let ring = KeyRing::from_jwks(&set.to_string()).unwrap();
    let exported: Value = serde_json::from_str(&ring.to_jwks_secret()).unwrap();
    let sent = claims();
    for (at, kid) in [(1_799_999_999, "old"), (1_800_000_000, "new")] {
        let token = ring
            .seal_at(&sent, &TokenOptions::new(), UnixTime::from_secs(at))
            .unwrap();
        let out =
            jose.call(&json!({"op": "decrypt_set", "jwks": exported, "token": token.as_str()}));
        assert_eq!(out["header"]["kid"], kid);
        let back: Value = serde_json::from_str(out["plaintext"].as_str().unwrap()).unwrap();
        assert_eq!(back, serde_json::to_value(&sent).unwrap());
    }
}
