//! Seal and open one claim set, typical (~300 B) and large (+2 KB), with jwe-session and
//! the crates users would pick instead, in one run so the ratios are fair.
//!
//! "open" = decrypt (or verify) + deserialize the claims into a struct + check `exp`.
//! `benches/compare.sh` runs this and prints the table.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use jwe_session_benches::{claims, full, App, Full, KEY, NOW};
use jwe_session_core::{Claims, Key, KeyRing, TokenOptions, UnixTime, Validation};

fn sizes() -> [(&'static str, bool); 2] {
    [("typical", false), ("large", true)]
}

/// Token lengths are printed once, for the table.
fn report_len(name: &str, size: &str, len: usize) {
    println!("token_len,{name},{size},{len}");
}

fn jwe_session(c: &mut Criterion) {
    let ring = KeyRing::new(vec![Key::from_bytes("2026-11", &KEY).unwrap()], None).unwrap();
    let opts = TokenOptions::new().with_purpose("jwe-session/cookie/session");
    let validation = Validation::new();
    let now = UnixTime::from_secs(NOW);
    let mut g = c.benchmark_group("jwe-session");
    for (size, large) in sizes() {
        let claims = claims(large);
        let token = ring.seal(&claims, &opts).unwrap();
        report_len("jwe-session", size, token.len());
        g.bench_function(BenchmarkId::new("seal", size), |b| b.iter(|| ring.seal(black_box(&claims), &opts).unwrap()));
        g.bench_function(BenchmarkId::new("open", size), |b| {
            b.iter(|| {
                let o = ring.open::<Claims<App>>(black_box(token.as_str()), &opts).unwrap();
                validation.validate_at(o.payload(), now).unwrap();
                o
            })
        });
    }
    g.finish();
}

fn josekit(c: &mut Criterion) {
    use josekit::jwe::{self, JweHeader};
    let encrypter = jwe::Dir.encrypter_from_bytes(KEY).unwrap();
    let decrypter = jwe::Dir.decrypter_from_bytes(KEY).unwrap();
    let mut header = JweHeader::new();
    header.set_content_encryption("A256GCM");
    header.set_key_id("2026-11");
    let mut g = c.benchmark_group("josekit");
    for (size, large) in sizes() {
        let claims = full(large);
        let seal = |claims: &Full| {
            let json = serde_json::to_vec(claims).unwrap();
            jwe::serialize_compact(&json, &header, &encrypter).unwrap()
        };
        let token = seal(&claims);
        report_len("josekit", size, token.len());
        g.bench_function(BenchmarkId::new("seal", size), |b| b.iter(|| seal(black_box(&claims))));
        g.bench_function(BenchmarkId::new("open", size), |b| {
            b.iter(|| {
                let (payload, _) = jwe::deserialize_compact(black_box(&token), &decrypter).unwrap();
                let f: Full = serde_json::from_slice(&payload).unwrap();
                assert!(f.exp > NOW);
                f
            })
        });
    }
    g.finish();
}

fn biscuit(c: &mut Criterion) {
    use biscuit::jwa::{ContentEncryptionAlgorithm, EncryptionOptions, KeyManagementAlgorithm};
    use biscuit::jwe;
    use biscuit::jwk::JWK;
    use biscuit::Empty;
    let key: JWK<Empty> = JWK::new_octet_key(&KEY, Default::default());
    let mut g = c.benchmark_group("biscuit");
    for (size, large) in sizes() {
        let claims = full(large);
        // biscuit takes the nonce from the caller; a counter is the cheapest fair source.
        let mut counter: u64 = 0;
        let mut seal = |claims: &Full| {
            counter += 1;
            let mut nonce = counter.to_le_bytes().to_vec();
            nonce.resize(12, 0);
            let header = jwe::Header::from(jwe::RegisteredHeader {
                cek_algorithm: KeyManagementAlgorithm::DirectSymmetricKey,
                enc_algorithm: ContentEncryptionAlgorithm::A256GCM,
                key_id: Some("2026-11".into()),
                ..Default::default()
            });
            let json = serde_json::to_vec(claims).unwrap();
            let jwe = jwe::Compact::<Vec<u8>, Empty>::new_decrypted(header, json);
            let enc = jwe.encrypt(&key, &EncryptionOptions::AES_GCM { nonce }).unwrap();
            enc.encrypted().unwrap().encode()
        };
        let token = seal(&claims);
        report_len("biscuit", size, token.len());
        g.bench_function(BenchmarkId::new("seal", size), |b| b.iter(|| seal(black_box(&claims))));
        g.bench_function(BenchmarkId::new("open", size), |b| {
            b.iter(|| {
                let enc = jwe::Compact::<Vec<u8>, Empty>::new_encrypted(black_box(&token));
                let dec = enc
                    .decrypt(&key, KeyManagementAlgorithm::DirectSymmetricKey, ContentEncryptionAlgorithm::A256GCM)
                    .unwrap();
                let f: Full = serde_json::from_slice(dec.payload().unwrap()).unwrap();
                assert!(f.exp > NOW);
                f
            })
        });
    }
    g.finish();
}

fn cookie_private(c: &mut Criterion) {
    use cookie::{Cookie, CookieJar, Key as CookieKey};
    let mut master = [0u8; 64];
    master[..32].copy_from_slice(&KEY);
    master[32..].copy_from_slice(&KEY);
    let key = CookieKey::from(&master);
    let mut g = c.benchmark_group("cookie-private");
    for (size, large) in sizes() {
        let claims = full(large);
        let seal = |claims: &Full| {
            let mut jar = CookieJar::new();
            jar.private_mut(&key).add(Cookie::new("session", serde_json::to_string(claims).unwrap()));
            jar.get("session").unwrap().value().to_owned()
        };
        let token = seal(&claims);
        report_len("cookie-private", size, token.len());
        g.bench_function(BenchmarkId::new("seal", size), |b| b.iter(|| seal(black_box(&claims))));
        g.bench_function(BenchmarkId::new("open", size), |b| {
            b.iter(|| {
                let mut jar = CookieJar::new();
                jar.add_original(Cookie::new("session", black_box(token.clone())));
                let plain = jar.private(&key).get("session").unwrap();
                let f: Full = serde_json::from_str(plain.value()).unwrap();
                assert!(f.exp > NOW);
                f
            })
        });
    }
    g.finish();
}

fn jsonwebtoken_hs256(c: &mut Criterion) {
    use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
    let enc = EncodingKey::from_secret(&KEY);
    let dec = DecodingKey::from_secret(&KEY);
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&["https://app.example.com"]);
    validation.validate_nbf = false;
    // The fixture's exp is in 2027: fine against the real clock.
    let mut g = c.benchmark_group("jsonwebtoken-hs256");
    for (size, large) in sizes() {
        let claims = full(large);
        let token = encode(&Header::default(), &claims, &enc).unwrap();
        report_len("jsonwebtoken-hs256", size, token.len());
        g.bench_function(BenchmarkId::new("seal", size), |b| {
            b.iter(|| encode(&Header::default(), black_box(&claims), &enc).unwrap())
        });
        g.bench_function(BenchmarkId::new("open", size), |b| {
            b.iter(|| decode::<Full>(black_box(&token), &dec, &validation).unwrap())
        });
    }
    g.finish();
}

fn aes_gcm_floor(c: &mut Criterion) {
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    use aes_gcm::{Aes256Gcm, Nonce};
    let cipher = Aes256Gcm::new_from_slice(&KEY).unwrap();
    let nonce = Nonce::from_slice(&[7u8; 12]);
    let mut g = c.benchmark_group("aes-gcm-floor");
    for (size, large) in sizes() {
        let plain = serde_json::to_vec(&full(large)).unwrap();
        let mut sealed = plain.clone();
        let tag = cipher.encrypt_in_place_detached(nonce, b"", &mut sealed).unwrap();
        report_len("aes-gcm-floor", size, sealed.len() + 28);
        let mut buf = plain.clone();
        g.bench_function(BenchmarkId::new("seal", size), |b| {
            b.iter(|| {
                buf.copy_from_slice(&plain);
                cipher.encrypt_in_place_detached(nonce, b"", black_box(&mut buf)).unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("open", size), |b| {
            b.iter(|| {
                buf.copy_from_slice(&sealed);
                cipher.decrypt_in_place_detached(nonce, b"", black_box(&mut buf), &tag).unwrap()
            })
        });
    }
    g.finish();
}


criterion_group! {
    name = tokens;
    config = jwe_session_benches::criterion_config();
    targets = jwe_session, josekit, biscuit, cookie_private, jsonwebtoken_hs256, aes_gcm_floor
}
criterion_main!(tokens);
