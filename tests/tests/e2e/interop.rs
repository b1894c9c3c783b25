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
fn our_tokens_open_in_jose_for_every_key_size_and_enc() {
    let Some(jose) = Jose::find() else { return };
    for enc in [Enc::A128Gcm, Enc::A192Gcm, Enc::A256Gcm, Enc::A256CbcHs512] {
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
fn jose_tokens_open_here_for_every_key_size_and_enc() {
    let Some(jose) = Jose::find() else { return };
    for enc in [Enc::A128Gcm, Enc::A192Gcm, Enc::A256Gcm, Enc::A256CbcHs512] {
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

/// DPoP across implementations: proofs made by panva/dpop (Node.js) and by Python's
/// `cryptography` are accepted by the layer, login and request, with the thumbprint each
/// computed; proofs our client signs verify in jose (`jwtVerify` with `EmbeddedJWK`).
mod dpop {
    use std::convert::Infallible;
    use std::sync::Arc;

    use axum::http::{Request, Response, StatusCode};
    use jwe_session::{DpopConfig, ManualClock, ProofKey, SessionHandle, SessionLayer, Transport};
    use jwe_session_core::{access_token_hash, UnixTime};
    use jwe_session_tests::{Jose, PythonProofs};
    use serde_json::{json, Value};
    use tower::{service_fn, Layer, ServiceExt};

    const ORIGIN: &str = "https://api.example.com";

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn layer() -> SessionLayer<()> {
        SessionLayer::builder(jwe_session_test_support::seeded_ring(&[("i1", 3)]))
            .clock(Arc::new(ManualClock::new(UnixTime::from_secs(now()))))
            .transport(Transport::Bearer)
            .dpop(DpopConfig::new().public_origin(ORIGIN))
            .build()
            .unwrap()
    }

    /// `/login` issues a token; any other path answers the session's `cnf.jkt`.
    async fn handler(req: Request<String>) -> Result<Response<String>, Infallible> {
        let handle = req
            .extensions()
            .get::<SessionHandle<()>>()
            .cloned()
            .unwrap();
        let body = if req.uri().path() == "/login" {
            match handle.issue("alice", ()) {
                Ok(t) => format!("{} {}", t.token_type().as_str(), t.token()),
                Err(e) => format!("refused {e}"),
            }
        } else {
            handle
                .claims()
                .and_then(|c| c.cnf)
                .map_or("no session".to_owned(), |c| c.jkt)
        };
        Ok(Response::new(body))
    }

    async fn send(layer: &SessionLayer<()>, req: axum::http::request::Builder) -> Response<String> {
        layer
            .layer(service_fn(handler))
            .oneshot(req.body(String::new()).unwrap())
            .await
            .unwrap()
    }

    /// Logs in with `login_proof`, then calls `/me` with the proof `me_proof` makes for
    /// the token: the thumbprint the session is bound to.
    async fn login_and_call(login_proof: String, me_proof: impl FnOnce(&str) -> String) -> String {
        let layer = layer();
        let res = send(&layer, Request::post("/login").header("dpop", login_proof)).await;
        let body = res.into_body();
        let token = body
            .strip_prefix("DPoP ")
            .unwrap_or_else(|| panic!("not bound: {body}"))
            .to_owned();
        let res = send(
            &layer,
            Request::get("/me")
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", me_proof(&token)),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "{:?}", res.headers());
        res.into_body()
    }

    #[tokio::test]
    async fn panva_dpop_proofs_are_accepted_by_the_layer() {
        let Some(jose) = Jose::find() else { return };
        let key = jose.call(&json!({"op": "dpop_key"}));
        let proof = |htm: &str, path: &str, token: Option<&str>| {
            let mut req = json!({"op": "dpop_proof", "jwk": key["jwk"], "htu": format!("{ORIGIN}{path}"), "htm": htm});
            if let Some(t) = token {
                req["access_token"] = t.into();
            }
            jose.call(&req)["proof"].as_str().unwrap().to_owned()
        };
        let bound = login_and_call(proof("POST", "/login", None), |t| {
            proof("GET", "/me", Some(t))
        })
        .await;
        assert_eq!(bound, key["thumbprint"].as_str().unwrap());
    }

    #[tokio::test]
    async fn python_cryptography_proofs_are_accepted_by_the_layer() {
        let Some(py) = PythonProofs::find() else {
            return;
        };
        let login =
            py.call(&json!({"htm": "POST", "htu": format!("{ORIGIN}/login"), "iat": now()}));
        let me = |token: &str| {
            let out = py.call(&json!({
                "htm": "GET", "htu": format!("{ORIGIN}/me"), "iat": now(),
                "access_token": token, "key": login["key"],
            }));
            out["proofs"][0].as_str().unwrap().to_owned()
        };
        let bound = login_and_call(login["proofs"][0].as_str().unwrap().to_owned(), me).await;
        assert_eq!(bound, login["thumbprint"].as_str().unwrap());
        // Our PEM reader takes the key Python wrote, and names the same thumbprint.
        let key = ProofKey::from_pkcs8_pem(login["key"].as_str().unwrap()).unwrap();
        assert_eq!(key.thumbprint(), bound);
    }

    #[test]
    fn our_proofs_verify_in_jose_with_the_same_thumbprint() {
        let Some(jose) = Jose::find() else { return };
        let key = ProofKey::generate().unwrap();
        let claims = jwe_session_test_support::dpop::claims(
            "GET",
            &format!("{ORIGIN}/me"),
            now(),
            Some("the.token"),
        );
        let proof = key.sign("dpop+jwt", &claims).unwrap();
        let out = jose.call(&json!({"op": "verify_proof", "proof": proof, "typ": "dpop+jwt"}));
        assert_eq!(out["thumbprint"], key.thumbprint());
        assert_eq!(out["header"]["alg"], "ES256");
        assert!(out["header"]["jwk"].get("d").is_none());
        assert_eq!(out["payload"]["ath"], access_token_hash("the.token"));
        assert_eq!(out["payload"], Value::Object(claims));
        // A proof with one byte of its signature changed does not verify there either.
        let mut bad = proof.into_bytes();
        let last = bad.len() - 2;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).unwrap();
        assert!(!jose
            .run(&json!({"op": "verify_proof", "proof": bad, "typ": "dpop+jwt"}))
            .status
            .success());
    }
}

/// DBSC proofs across implementations: panva/jose's `SignJWT` makes registration and
/// refresh proofs that the core checks, and jose verifies ours under the key alone.
/// (Chromium's own proofs are the core's test vectors and the browser test's traffic.)
mod dbsc {
    use jwe_session::core::{check_dbsc_refresh, check_dbsc_registration, DbscError, ProofError};
    use jwe_session::ProofKey;
    use jwe_session_tests::Jose;
    use serde_json::json;

    #[test]
    fn jose_dbsc_proofs_are_checked_here_and_ours_verify_there() {
        let Some(jose) = Jose::find() else { return };
        let key = jose.call(&json!({"op": "dpop_key"}));
        let proof = |embed: bool| {
            let req = json!({"op": "dbsc_proof", "jwk": key["jwk"], "jti": "the challenge", "embed": embed});
            jose.call(&req)["proof"].as_str().unwrap().to_owned()
        };
        let reg = check_dbsc_registration(&proof(true)).unwrap();
        assert_eq!(reg.challenge, "the challenge");
        assert_eq!(reg.thumbprint, key["thumbprint"].as_str().unwrap());
        let refresh = check_dbsc_refresh(&proof(false), &reg.jwk).unwrap();
        assert_eq!(refresh.challenge, "the challenge");
        // A refresh proof that names a key is refused, even its own.
        assert_eq!(
            check_dbsc_refresh(&proof(true), &reg.jwk),
            Err(DbscError::Proof(ProofError::UnexpectedJwk))
        );
        // Ours: the refresh form (no jwk) verifies in jose under the public key alone.
        let ours = ProofKey::generate().unwrap();
        let claims = json!({"jti": "c2"});
        let signed = ours
            .sign_without_jwk("dbsc+jwt", claims.as_object().unwrap())
            .unwrap();
        let (x, y) = ours.jwk().p256_coordinates();
        let public = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y});
        let out = jose
            .call(&json!({"op": "verify_with", "proof": signed, "typ": "dbsc+jwt", "jwk": public}));
        assert_eq!(out["payload"]["jti"], "c2");
        assert!(out["header"].get("jwk").is_none());
        let registration = ours.sign("dbsc+jwt", claims.as_object().unwrap()).unwrap();
        let out =
            jose.call(&json!({"op": "verify_proof", "proof": registration, "typ": "dbsc+jwt"}));
        assert_eq!(out["thumbprint"], ours.thumbprint());
    }
}
