//! What the test suites of the workspace share, so no suite keeps its own copy: a fresh
//! scratch folder, deterministic keys and key rings, and the `kid` of a token (through the
//! public [`inspect`], as a tool would read it).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use jwe_session_core::{inspect, Key, KeyRing, TokenOptions};

/// A fresh, empty folder for one test, under the system's temporary folder and this
/// process's id (so parallel runs and earlier runs never share it). What a previous run of
/// the same test left there is removed first.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("jwe-session-tests-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// An A256GCM key whose bytes follow from `seed` alone: the same seed, the same key, in
/// every process (so a test can run two servers that share a ring, or a browser and a
/// server).
pub fn seeded_key(kid: &str, seed: u8) -> Key {
    let bytes: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(53).wrapping_add(seed) | 0x80)
        .collect();
    Key::from_bytes(kid, &bytes).expect("a 32-byte key")
}

/// A ring of [`seeded_key`]s, the first active.
pub fn seeded_ring(kids: &[(&str, u8)]) -> KeyRing {
    KeyRing::new(kids.iter().map(|(k, s)| seeded_key(k, *s)).collect(), None).expect("a valid ring")
}

/// The `kid` in a token's protected header, read without a key.
pub fn kid_of(token: &str) -> String {
    // Trimmed: tokens often come from a command's output, newline included.
    let info = inspect(token.trim(), &TokenOptions::new()).expect("a well-formed token");
    info.header["kid"].as_str().expect("a kid").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_rings_are_the_same_in_every_call_and_differ_by_seed() {
        let a = seeded_ring(&[("k1", 1)]);
        let b = seeded_ring(&[("k1", 1)]);
        let other = seeded_ring(&[("k1", 2)]);
        let opts = TokenOptions::new();
        let token = a.seal(&jwe_session_core::Claims::new(()), &opts).unwrap();
        assert!(b.open_bytes(token.as_str(), &opts).is_ok());
        assert!(other.open_bytes(token.as_str(), &opts).is_err());
        assert_eq!(kid_of(token.as_str()), "k1");
    }

    #[test]
    fn scratch_folders_start_empty() {
        let dir = scratch("support-self-test");
        std::fs::write(dir.join("f"), b"x").unwrap();
        let again = scratch("support-self-test");
        assert_eq!(again, dir);
        assert_eq!(std::fs::read_dir(&again).unwrap().count(), 0);
    }
}

/// DPoP proofs for tests: right ones for a request, and the forgeries a server must refuse.
pub mod dpop {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use jwe_session_core::{access_token_hash, random_id, ProofKey};
    use serde_json::{json, Map, Value};

    /// The claims of a right proof: `htm`, `htu`, `iat`, a random `jti`, and `ath` when a
    /// token is named.
    pub fn claims(method: &str, htu: &str, iat: u64, token: Option<&str>) -> Map<String, Value> {
        let mut c = Map::new();
        c.insert("htm".into(), method.into());
        c.insert("htu".into(), htu.into());
        c.insert("iat".into(), iat.into());
        c.insert("jti".into(), random_id().into());
        if let Some(t) = token {
            c.insert("ath".into(), access_token_hash(t).into());
        }
        c
    }

    /// A proof with `alg: none` and no signature.
    pub fn unsigned(claims: &Map<String, Value>) -> String {
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            b64(&json!({"typ": "dpop+jwt", "alg": "none"})),
            b64(&Value::Object(claims.clone()))
        )
    }

    /// A proof signed by `key` whose header's key also carries a private member (`d`).
    pub fn with_private_member(key: &ProofKey, claims: &Map<String, Value>) -> String {
        let proof = key.sign("dpop+jwt", claims).unwrap();
        let (header, rest) = proof.split_once('.').unwrap();
        let mut h: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        h["jwk"]["d"] = "AAAA".into();
        format!("{}.{rest}", URL_SAFE_NO_PAD.encode(h.to_string()))
    }

    /// Every kind of wrong proof for `method` `htu` naming `token`, made at `iat`, by
    /// `key` (the token's) unless it says otherwise: what each is, and the `DPoP` headers
    /// to send (none, one or two).
    pub fn forgeries(
        key: &ProofKey,
        method: &str,
        htu: &str,
        iat: u64,
        token: &str,
    ) -> Vec<(&'static str, Vec<String>)> {
        let right = || claims(method, htu, iat, Some(token));
        let with = |k: &str, v: Value| {
            let mut c = right();
            c.insert(k.to_owned(), v);
            key.sign("dpop+jwt", &c).unwrap()
        };
        let without = |k: &str| {
            let mut c = right();
            c.remove(k);
            key.sign("dpop+jwt", &c).unwrap()
        };
        let thief = ProofKey::generate().unwrap();
        let other_method = if method == "GET" { "POST" } else { "GET" };
        let sign = |c: &Map<String, Value>| key.sign("dpop+jwt", c).unwrap();
        vec![
            (
                "another key (a stolen token)",
                vec![thief.sign("dpop+jwt", &right()).unwrap()],
            ),
            ("another method", vec![with("htm", other_method.into())]),
            (
                "another URL",
                vec![with("htu", format!("{htu}/other").into())],
            ),
            (
                "another origin",
                vec![with("htu", "https://evil.example/x".into())],
            ),
            (
                "a stale iat",
                vec![with("iat", iat.saturating_sub(301).into())],
            ),
            ("a future iat", vec![with("iat", (iat + 60).into())]),
            ("no ath", vec![without("ath")]),
            (
                "a wrong ath",
                vec![with("ath", access_token_hash("another token").into())],
            ),
            ("no jti", vec![without("jti")]),
            ("typ JWT", vec![key.sign("JWT", &right()).unwrap()]),
            ("alg none", vec![unsigned(&right())]),
            (
                "a private key in the header",
                vec![with_private_member(key, &right())],
            ),
            ("garbage", vec!["garbage".to_owned()]),
            ("two DPoP headers", vec![sign(&right()), sign(&right())]),
            ("no DPoP header", vec![]),
        ]
    }
}
