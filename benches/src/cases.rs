//! Every implementation the benchmarks compare, as closures over the same fixture, so that
//! the criterion bench (`benches/tokens.rs`) and the instruction counter (`src/bin/count.rs`)
//! measure exactly the same code.
//!
//! "seal" = serialize the claims + encrypt (or sign) + encode; "open" = decode + decrypt (or
//! verify) + deserialize the claims into a struct + check `exp`.

use std::hint::black_box;

use crate::{claims, full, App, Full, KEY, NOW};

/// One implementation at one claim-set size.
pub struct Case {
    /// `jwe-session`, `josekit`, … as in the CSV.
    pub implementation: &'static str,
    /// `typical` or `large`.
    pub size: &'static str,
    /// Length of the token it produces.
    pub token_len: usize,
    /// Seals the fixture; returns the token's length.
    pub seal: Box<dyn FnMut() -> usize>,
    /// Opens the token sealed once up front; returns the `exp` it read.
    pub open: Box<dyn FnMut() -> u64>,
}

/// The implementations, in the order of the table.
pub const IMPLEMENTATIONS: [&str; 7] = [
    "jwe-session",
    "jwe-session-authjs",
    "josekit",
    "biscuit",
    "cookie-private",
    "jsonwebtoken-hs256",
    "aes-gcm-floor",
];

/// The claim-set sizes: name and whether the 2 KB field is there.
pub const SIZES: [(&str, bool); 2] = [("typical", false), ("large", true)];

/// Builds one case.
pub fn case(implementation: &str, size: &str) -> Option<Case> {
    let large = SIZES.iter().find(|(s, _)| *s == size)?.1;
    let size = SIZES.iter().find(|(s, _)| *s == size)?.0;
    let (implementation, (token_len, seal, open)) = match implementation {
        "jwe-session" => ("jwe-session", jwe_session(large)),
        "jwe-session-authjs" => ("jwe-session-authjs", jwe_session_authjs(large)),
        "josekit" => ("josekit", josekit(large)),
        "biscuit" => ("biscuit", biscuit(large)),
        "cookie-private" => ("cookie-private", cookie_private(large)),
        "jsonwebtoken-hs256" => ("jsonwebtoken-hs256", jsonwebtoken_hs256(large)),
        "aes-gcm-floor" => ("aes-gcm-floor", aes_gcm_floor(large)),
        _ => return None,
    };
    Some(Case {
        implementation,
        size,
        token_len,
        seal,
        open,
    })
}

type Parts = (usize, Box<dyn FnMut() -> usize>, Box<dyn FnMut() -> u64>);

fn jwe_session(large: bool) -> Parts {
    use jwe_session_core::{Claims, Key, KeyRing, TokenOptions, UnixTime, Validation};
    let ring = std::rc::Rc::new(
        KeyRing::new(vec![Key::from_bytes("2026-11", &KEY).unwrap()], None).unwrap(),
    );
    let opts = std::rc::Rc::new(TokenOptions::new().with_purpose("jwe-session/cookie/session"));
    let claims = claims(large);
    let token = ring.seal(&claims, &opts).unwrap().into_string();
    let (ring2, opts2) = (std::rc::Rc::clone(&ring), std::rc::Rc::clone(&opts));
    let validation = Validation::new();
    let now = UnixTime::from_secs(NOW);
    (
        token.len(),
        Box::new(move || ring.seal(black_box(&claims), &opts).unwrap().len()),
        Box::new(move || {
            let o = ring2
                .open::<Claims<App>>(black_box(&token), &opts2)
                .unwrap();
            validation.validate_at(o.payload(), now).unwrap();
            o.payload().exp.unwrap().as_secs()
        }),
    )
}

/// The same claims as an Auth.js v5 session cookie: `A256CBC-HS512` under the key
/// `KeyRing::from_authjs_secrets` derives, opened as `AuthJsLayer` opens it (Auth.js's
/// claims around the app's, `exp` with its 15 s tolerance).
fn jwe_session_authjs(large: bool) -> Parts {
    use jwe_session_core::{
        AuthJsClaims, Claims, KeyRing, TokenOptions, UnixTime, Validation, AUTHJS_CLOCK_TOLERANCE,
    };
    let ring = std::rc::Rc::new(
        KeyRing::from_authjs_secrets(&["bench-auth-secret"], "authjs.session-token").unwrap(),
    );
    let opts = std::rc::Rc::new(TokenOptions::new());
    let claims = claims(large);
    let token = ring.seal(&claims, &opts).unwrap().into_string();
    let (ring2, opts2) = (std::rc::Rc::clone(&ring), std::rc::Rc::clone(&opts));
    let validation = Validation::new().leeway(AUTHJS_CLOCK_TOLERANCE);
    let now = UnixTime::from_secs(NOW);
    // The app's claims less `email`, which is Auth.js's own (in `AuthJsClaims`).
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct NextApp {
        roles: Vec<String>,
        locale: String,
        tenant: String,
        #[serde(default)]
        extra: Option<String>,
    }
    (
        token.len(),
        Box::new(move || ring.seal(black_box(&claims), &opts).unwrap().len()),
        Box::new(move || {
            let o = ring2
                .open::<Claims<AuthJsClaims<NextApp>>>(black_box(&token), &opts2)
                .unwrap();
            validation.validate_at(o.payload(), now).unwrap();
            o.payload().exp.unwrap().as_secs()
        }),
    )
}

fn josekit(large: bool) -> Parts {
    use josekit::jwe::{self, JweHeader};
    let encrypter = jwe::Dir.encrypter_from_bytes(KEY).unwrap();
    let decrypter = jwe::Dir.decrypter_from_bytes(KEY).unwrap();
    let mut header = JweHeader::new();
    header.set_content_encryption("A256GCM");
    header.set_key_id("2026-11");
    let claims = full(large);
    let seal = move || {
        let json = serde_json::to_vec(black_box(&claims)).unwrap();
        jwe::serialize_compact(&json, &header, &encrypter).unwrap()
    };
    let token = seal();
    (
        token.len(),
        Box::new(move || seal().len()),
        Box::new(move || {
            let (payload, _) = jwe::deserialize_compact(black_box(&token), &decrypter).unwrap();
            let f: Full = serde_json::from_slice(&payload).unwrap();
            assert!(f.exp > NOW);
            f.exp
        }),
    )
}

fn biscuit(large: bool) -> Parts {
    use biscuit::jwa::{ContentEncryptionAlgorithm, EncryptionOptions, KeyManagementAlgorithm};
    use biscuit::jwe;
    use biscuit::jwk::JWK;
    use biscuit::Empty;
    let key: JWK<Empty> = JWK::new_octet_key(&KEY, Default::default());
    let key2 = key.clone();
    let claims = full(large);
    // biscuit takes the nonce from the caller; a counter is the cheapest fair source.
    let mut counter: u64 = 0;
    let mut seal = move || {
        counter += 1;
        let mut nonce = counter.to_le_bytes().to_vec();
        nonce.resize(12, 0);
        let header = jwe::Header::from(jwe::RegisteredHeader {
            cek_algorithm: KeyManagementAlgorithm::DirectSymmetricKey,
            enc_algorithm: ContentEncryptionAlgorithm::A256GCM,
            key_id: Some("2026-11".into()),
            ..Default::default()
        });
        let json = serde_json::to_vec(black_box(&claims)).unwrap();
        let jwe = jwe::Compact::<Vec<u8>, Empty>::new_decrypted(header, json);
        let enc = jwe
            .encrypt(&key, &EncryptionOptions::AES_GCM { nonce })
            .unwrap();
        enc.encrypted().unwrap().encode()
    };
    let token = seal();
    (
        token.len(),
        Box::new(move || seal().len()),
        Box::new(move || {
            let enc = jwe::Compact::<Vec<u8>, Empty>::new_encrypted(black_box(&token));
            let dec = enc
                .decrypt(
                    &key2,
                    KeyManagementAlgorithm::DirectSymmetricKey,
                    ContentEncryptionAlgorithm::A256GCM,
                )
                .unwrap();
            let f: Full = serde_json::from_slice(dec.payload().unwrap()).unwrap();
            assert!(f.exp > NOW);
            f.exp
        }),
    )
}

fn cookie_private(large: bool) -> Parts {
    use cookie::{Cookie, CookieJar, Key as CookieKey};
    let mut master = [0u8; 64];
    master[..32].copy_from_slice(&KEY);
    master[32..].copy_from_slice(&KEY);
    let key = CookieKey::from(&master);
    let key2 = key.clone();
    let claims = full(large);
    let seal = move || {
        let mut jar = CookieJar::new();
        jar.private_mut(&key).add(Cookie::new(
            "session",
            serde_json::to_string(black_box(&claims)).unwrap(),
        ));
        jar.get("session").unwrap().value().to_owned()
    };
    let token = seal();
    (
        token.len(),
        Box::new(move || seal().len()),
        Box::new(move || {
            let mut jar = CookieJar::new();
            jar.add_original(Cookie::new("session", black_box(token.clone())));
            let plain = jar.private(&key2).get("session").unwrap();
            let f: Full = serde_json::from_str(plain.value()).unwrap();
            assert!(f.exp > NOW);
            f.exp
        }),
    )
}

fn jsonwebtoken_hs256(large: bool) -> Parts {
    use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
    let enc = EncodingKey::from_secret(&KEY);
    let dec = DecodingKey::from_secret(&KEY);
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&["https://app.example.com"]);
    validation.validate_nbf = false;
    // The fixture's exp is in 2027: fine against the real clock.
    let claims = full(large);
    let token = encode(&Header::default(), &claims, &enc).unwrap();
    (
        token.len(),
        Box::new(move || {
            encode(&Header::default(), black_box(&claims), &enc)
                .unwrap()
                .len()
        }),
        Box::new(move || {
            decode::<Full>(black_box(&token), &dec, &validation)
                .unwrap()
                .claims
                .exp
        }),
    )
}

/// AES-256-GCM with a prepared cipher on the raw JSON bytes: no base64, no JSON, no header.
fn aes_gcm_floor(large: bool) -> Parts {
    use aes_gcm::aead::{AeadInOut, KeyInit};
    use aes_gcm::{Aes256Gcm, Nonce};
    let cipher = Aes256Gcm::new_from_slice(&KEY).unwrap();
    let cipher2 = cipher.clone();
    let nonce = Nonce::from([7u8; 12]);
    let plain = serde_json::to_vec(&full(large)).unwrap();
    let mut sealed = plain.clone();
    let tag = cipher
        .encrypt_inout_detached(&nonce, b"", sealed.as_mut_slice().into())
        .unwrap();
    let (mut buf, mut buf2) = (plain.clone(), plain.clone());
    (
        sealed.len() + 28,
        Box::new(move || {
            buf.copy_from_slice(&plain);
            cipher
                .encrypt_inout_detached(&nonce, b"", black_box(buf.as_mut_slice()).into())
                .unwrap();
            buf.len()
        }),
        Box::new(move || {
            buf2.copy_from_slice(&sealed);
            cipher2
                .decrypt_inout_detached(&nonce, b"", black_box(buf2.as_mut_slice()).into(), &tag)
                .unwrap();
            NOW
        }),
    )
}
