//! Auth.js session cookies against Auth.js's own packages (`tests/interop/authjs.mjs`):
//! `@auth/core` 0.41.3 (v5) and `next-auth` 4.24.15 (v4), pinned in
//! `tests/interop/package-lock.json`. They mint with their `encode`; the Rust side opens
//! every token with the right claims and refuses a wrong secret, a wrong salt and a changed
//! byte with typed errors. The Rust side seals and splits; their `decode` and `getToken`
//! (which reads the Cookie header, chunks and all) open it.

use jwe_session_core::{
    join_authjs_chunks, split_authjs_token, AuthJsClaims, AuthJsVersion, Claims, KeyRing,
    OpenError, TokenOptions, UnixTime, Validation, AUTHJS_CLOCK_TOLERANCE,
};
use jwe_session_tests::AuthJs;
use serde_json::{json, Map, Value};

type Extra = Map<String, Value>;

const V5: &str = "authjs.session-token";
const V5_SECURE: &str = "__Secure-authjs.session-token";
const V4: &str = "next-auth.session-token";

fn opts() -> TokenOptions {
    // Chunked Auth.js cookies run past the default 16 KiB in these tests.
    TokenOptions::new().with_max_len(64 * 1024)
}

fn user(extra: usize) -> Value {
    json!({
        "name": "Alice Liddell",
        "email": "alice@example.com",
        "picture": "https://example.com/a.png",
        "sub": "user-42",
        "role": "admin",
        "notes": "n".repeat(extra),
    })
}

fn encode(version: u8, secret: Value, salt: &str, token: &Value) -> Value {
    json!({"op": "encode", "version": version, "secret": secret, "salt": salt, "token": token, "maxAge": 3600})
}

fn token_of(answer: &Value) -> String {
    answer["token"].as_str().unwrap().to_owned()
}

/// The claims as the Rust side reads them, checked against what was minted.
fn check_claims(c: &Claims<AuthJsClaims<Extra>>, minted: &Value) {
    assert_eq!(c.sub.as_deref(), minted["sub"].as_str());
    assert_eq!(c.app.name.as_deref(), minted["name"].as_str());
    assert_eq!(c.app.email.as_deref(), minted["email"].as_str());
    assert_eq!(c.app.picture.as_deref(), minted["picture"].as_str());
    assert_eq!(c.app.extra["role"], minted["role"]);
    assert_eq!(c.app.extra["notes"], minted["notes"]);
    // encode sets iat, exp (iat + maxAge) and a random jti.
    let (iat, exp) = (c.iat.unwrap(), c.exp.unwrap());
    assert_eq!(exp.as_secs() - iat.as_secs(), 3600);
    assert_eq!(c.jti.as_ref().map(String::len), Some(36), "a UUID");
    Validation::new()
        .leeway(AUTHJS_CLOCK_TOLERANCE)
        .validate_at(c, iat)
        .unwrap();
}

#[test]
fn tokens_minted_by_auth_js_v5_open_here() {
    let Some(node) = AuthJs::find() else { return };
    let small = user(0);
    let big = user(6_000);
    let answers = node.call(&[
        encode(5, json!("v5-secret"), V5, &small),
        encode(5, json!("v5-secret"), V5, &big),
        encode(5, json!("v5-secret"), V5_SECURE, &small),
        // Rotation: minted under the old secret, or under [new, old] (the new one seals).
        encode(5, json!(["v5-old"]), V5, &small),
        encode(5, json!(["v5-secret", "v5-old"]), V5, &small),
    ]);
    let ring = KeyRing::from_authjs_secrets(&["v5-secret", "v5-old"], V5).unwrap();
    let secure = KeyRing::from_authjs_secrets(&["v5-secret"], V5_SECURE).unwrap();
    for (i, minted) in [&small, &big, &small, &small, &small]
        .into_iter()
        .enumerate()
    {
        let token = token_of(&answers[i]);
        let ring = if i == 2 { &secure } else { &ring };
        let opened = ring
            .open::<Claims<AuthJsClaims<Extra>>>(&token, &opts())
            .unwrap_or_else(|e| panic!("case {i}: {e}"));
        check_claims(opened.payload(), minted);
    }
    // The rotated token opened under the old secret's key, by its kid.
    let old = ring
        .open::<Claims<AuthJsClaims<Extra>>>(&token_of(&answers[3]), &opts())
        .unwrap();
    assert_eq!(old.kid(), ring.keys()[2].kid());
    assert_eq!(old.kid().len(), 86, "a SHA-512 thumbprint");
}

#[test]
fn tokens_minted_by_next_auth_v4_open_here() {
    let Some(node) = AuthJs::find() else { return };
    let small = user(0);
    let big = user(6_000);
    let answers = node.call(&[
        json!({"op": "encode", "version": 4, "secret": "v4-secret", "token": small, "maxAge": 3600}),
        json!({"op": "encode", "version": 4, "secret": "v4-secret", "token": big, "maxAge": 3600}),
    ]);
    let ring = KeyRing::from_nextauth_secret(b"v4-secret").unwrap();
    for (i, minted) in [&small, &big].into_iter().enumerate() {
        let opened = ring
            .open::<Claims<AuthJsClaims<Extra>>>(&token_of(&answers[i]), &opts())
            .unwrap();
        check_claims(opened.payload(), minted);
    }
}

#[test]
fn wrong_secrets_salts_and_changed_bytes_are_refused_typed() {
    let Some(node) = AuthJs::find() else { return };
    let answers = node.call(&[
        encode(5, json!("right"), V5, &user(0)),
        json!({"op": "encode", "version": 4, "secret": "right", "token": user(0), "maxAge": 3600}),
    ]);
    let (v5, v4) = (token_of(&answers[0]), token_of(&answers[1]));
    let open = |ring: &KeyRing, t: &str| ring.open::<Claims<AuthJsClaims<Extra>>>(t, &opts());

    // v5 names its key: another secret or another salt (cookie name) knows no such kid.
    let wrong_secret = KeyRing::from_authjs_secrets(&["wrong"], V5).unwrap();
    assert!(matches!(
        open(&wrong_secret, &v5),
        Err(OpenError::UnknownKid { .. })
    ));
    let wrong_salt = KeyRing::from_authjs_secrets(&["right"], V5_SECURE).unwrap();
    assert!(matches!(
        open(&wrong_salt, &v5),
        Err(OpenError::UnknownKid { .. })
    ));
    // v4 names none: the tag does not verify.
    let wrong_v4 = KeyRing::from_nextauth_secret(b"wrong").unwrap();
    assert!(matches!(open(&wrong_v4, &v4), Err(OpenError::Decrypt)));
    // A v5 token is not a v4 one, nor the other way round.
    let right_v4 = KeyRing::from_nextauth_secret(b"right").unwrap();
    assert!(open(&right_v4, &v5).is_err());
    // (A kid-less A256GCM token is tried, as Auth.js tries it, under the first secret's
    // A256GCM key, which v5 derives differently: the tag fails.)
    let right_v5 = KeyRing::from_authjs_secrets(&["right"], V5).unwrap();
    assert!(matches!(open(&right_v5, &v4), Err(OpenError::Decrypt)));

    // Every byte of each token, changed: refused, never a panic, never other claims.
    for (ring, token) in [(&right_v5, &v5), (&right_v4, &v4)] {
        assert!(open(ring, token).is_ok());
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).unwrap();
            assert!(open(ring, &changed).is_err(), "byte {i} of {token}");
        }
    }
}

#[test]
fn tokens_sealed_here_open_in_auth_js_and_next_auth() {
    let Some(node) = AuthJs::find() else { return };
    let now = UnixTime::now().as_secs();
    let claims = |extra: usize| {
        let mut c = user(extra);
        c["iat"] = json!(now);
        c["exp"] = json!(now + 600);
        c["jti"] = json!("0b7c9a43-58b0-4c3e-9a55-8a0f7f3f2d11");
        c
    };
    let v5 = KeyRing::from_authjs_secrets(&["here-new", "here-old"], V5).unwrap();
    let v5_secure = KeyRing::from_authjs_secrets(&["here-new"], V5_SECURE).unwrap();
    let v4 = KeyRing::from_nextauth_secret(b"here-v4").unwrap();
    let small_v5 = v5.seal(&claims(0), &opts()).unwrap().into_string();
    let big_v5 = v5.seal(&claims(9_000), &opts()).unwrap().into_string();
    let secure_v5 = v5_secure.seal(&claims(0), &opts()).unwrap().into_string();
    let small_v4 = v4.seal(&claims(0), &opts()).unwrap().into_string();
    let big_v4 = v4.seal(&claims(9_000), &opts()).unwrap().into_string();

    // The cookies as the Rust side would set them, sent back as a browser would.
    let cookie_header = |token: &str, name: &str, version| {
        split_authjs_token(token, name, version)
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let big_v5_cookies = cookie_header(&big_v5, V5, AuthJsVersion::V5);
    let big_v4_cookies = cookie_header(&big_v4, V4, AuthJsVersion::V4);
    assert!(
        big_v5_cookies.contains("authjs.session-token.2="),
        "three chunks"
    );
    let answers = node.call(&[
        json!({"op": "decode", "version": 5, "secret": ["here-new", "here-old"], "salt": V5, "token": small_v5}),
        json!({"op": "decode", "version": 5, "secret": "here-old", "salt": V5, "token": small_v5}),
        json!({"op": "decode", "version": 5, "secret": "here-new", "salt": V5_SECURE, "token": secure_v5}),
        json!({"op": "getToken", "version": 5, "secret": "here-new", "secureCookie": false, "cookie": big_v5_cookies}),
        json!({"op": "decode", "version": 4, "secret": "here-v4", "token": small_v4}),
        json!({"op": "getToken", "version": 4, "secret": "here-v4", "secureCookie": false, "cookie": big_v4_cookies}),
        json!({"op": "decode", "version": 4, "secret": "other", "token": small_v4}),
    ]);
    for (i, extra) in [(0, 0), (2, 0), (3, 9_000), (4, 0), (5, 9_000)] {
        assert_eq!(
            answers[i]["payload"],
            claims(extra),
            "answer {i}: {}",
            answers[i]
        );
    }
    // Sealed under the new secret: the old one alone does not open it; nor another v4 one.
    assert!(answers[1]["error"].is_string(), "{}", answers[1]);
    assert!(answers[6]["error"].is_string(), "{}", answers[6]);
}

#[test]
fn chunks_are_split_as_auth_js_splits_them_and_joined_from_its_cookies() {
    let Some(node) = AuthJs::find() else { return };
    // Around each version's chunk size, and several chunks.
    let cases: Vec<(u8, &str, usize)> = [3_935, 3_936, 3_937, 7_872, 7_873, 12_000]
        .into_iter()
        .map(|n| (5, V5_SECURE, n))
        .chain([3_932, 3_933, 3_934, 9_000].into_iter().map(|n| (4, V4, n)))
        .collect();
    let value = |n: usize| "abcdefghij".repeat(n / 10 + 1)[..n].to_owned();
    let reqs: Vec<Value> = cases
        .iter()
        .map(|&(version, name, n)| json!({"op": "chunk", "version": version, "name": name, "value": value(n), "secure": true}))
        .collect();
    let answers = node.call(&reqs);
    for ((version, name, n), answer) in cases.into_iter().zip(answers) {
        let v = if version == 5 {
            AuthJsVersion::V5
        } else {
            AuthJsVersion::V4
        };
        let token = value(n);
        let theirs: Vec<(String, String)> =
            jwe_session_tests::cookie_pairs(&answer["cookies"]).collect();
        let ours: Vec<(String, String)> = split_authjs_token(&token, name, v)
            .into_iter()
            .map(|(a, b)| (a, b.to_owned()))
            .collect();
        assert_eq!(ours, theirs, "v{version}, {n} characters");
        // And their cookies join back to the token, in whatever order they come.
        let joined = join_authjs_chunks(
            theirs.iter().rev().map(|(a, b)| (a.as_str(), b.as_str())),
            name,
            64 * 1024,
        )
        .unwrap();
        assert_eq!(joined.as_deref(), Some(token.as_str()));
    }
}

/// The layer's renewal, read back by Auth.js itself: a day-old session through
/// `AuthJsLayer::renew` over real HTTP, its `Set-Cookie` chunks sent as a browser would to
/// `@auth/core`'s `getToken` (v5) and `next-auth@4`'s (v4), which open them.
#[tokio::test]
async fn renewed_cookies_written_by_the_layer_are_read_by_get_token() {
    use jwe_session::authjs::{AuthJsLayer, AuthJsSession, DEFAULT_MAX_AGE, DEFAULT_UPDATE_AGE};
    use jwe_session_tests::{Client, Server};

    let Some(node) = AuthJs::find() else { return };
    async fn me(s: AuthJsSession<Extra>) -> String {
        s.sub().to_owned()
    }
    let now = UnixTime::now().as_secs();
    let old = |c: &mut Value| {
        c["iat"] = json!(now - 2 * 86_400);
        c["exp"] = json!(now + 86_400);
        c["jti"] = json!("old");
    };
    for (version, name) in [(5u8, V5), (4, V4)] {
        let (layer, ring) = if version == 5 {
            (
                AuthJsLayer::<Extra>::v5(&["renew-secret"]),
                KeyRing::from_authjs_secrets(&["renew-secret"], V5).unwrap(),
            )
        } else {
            (
                AuthJsLayer::<Extra>::v4("renew-secret"),
                KeyRing::from_nextauth_secret(b"renew-secret").unwrap(),
            )
        };
        let layer = layer
            .renew(DEFAULT_MAX_AGE, DEFAULT_UPDATE_AGE)
            .build()
            .unwrap();
        let server = Server::start(
            axum::Router::new()
                .route("/me", axum::routing::get(me))
                .layer(layer),
        )
        .await;
        let mut claims = user(7_000);
        old(&mut claims);
        let token = ring.seal(&claims, &opts()).unwrap().into_string();
        let v = if version == 5 {
            AuthJsVersion::V5
        } else {
            AuthJsVersion::V4
        };
        let mut client = Client::new(server.url());
        client.jar = split_authjs_token(&token, name, v)
            .into_iter()
            .map(|(n, v)| (n, v.to_owned()))
            .collect();
        let reply = client.get("/me").await;
        assert_eq!(reply.body, "user-42");
        assert!(
            reply.set_cookies.len() >= 2,
            "chunked: {:?}",
            reply.set_cookies
        );
        let header = reply
            .set_cookies
            .iter()
            .filter(|c| !c.value().is_empty())
            .map(|c| format!("{}={}", c.name(), c.value()))
            .collect::<Vec<_>>()
            .join("; ");
        let answer = node.one(json!({"op": "getToken", "version": version, "secret": "renew-secret", "secureCookie": false, "cookie": header}));
        let payload = &answer["payload"];
        assert_eq!(payload["sub"], "user-42", "v{version}: {answer}");
        assert_eq!(payload["notes"], claims["notes"]);
        assert!(payload["iat"].as_u64().unwrap() >= now, "re-issued now");
        assert_ne!(payload["jti"], "old");
    }
}
