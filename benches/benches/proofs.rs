//! Verifying a DPoP proof (ES256): which signature crate the core should verify with, and
//! what the strict checks around the signature cost.
//!
//!   cd benches && cargo bench --bench proofs
//!
//! The same proof, made once with `p256`'s signer, verified by:
//! - `verify_proof`: the core's whole check (parse, strict header and key, the point on
//!   the curve by `p256`, RFC 7638 thumbprint, the signature by `ring`, claims);
//! - `p256`: the bare RustCrypto ECDSA verification of the same bytes;
//! - `ring`: ring's `ECDSA_P256_SHA256_FIXED` verification of the same bytes.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use jwe_session_core::{verify_proof, ProofOptions};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

struct Case {
    proof: String,
    signed: Vec<u8>,
    sig: Vec<u8>,
    sec1: Vec<u8>,
}

fn case() -> Case {
    let key = SigningKey::from_slice(&[0x42; 32]).expect("a scalar");
    let sec1 = key.verifying_key().to_sec1_bytes().to_vec();
    let header = serde_json::json!({
        "typ": "dpop+jwt",
        "alg": "ES256",
        "jwk": {"kty": "EC", "crv": "P-256", "x": b64(&sec1[1..33]), "y": b64(&sec1[33..])},
    });
    let claims = serde_json::json!({
        "jti": "e1j3V_bKic8-LAEB",
        "htm": "GET",
        "htu": "https://resource.example.org/protectedresource",
        "iat": 1_800_000_000u64,
        "ath": "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo",
    });
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig: Signature = key.sign(signed.as_bytes());
    let sig = sig.to_bytes().to_vec();
    let proof = format!("{signed}.{}", b64(&sig));
    Case {
        proof,
        signed: signed.into_bytes(),
        sig,
        sec1,
    }
}

fn bench(c: &mut Criterion) {
    let case = case();
    let opts = ProofOptions::new("dpop+jwt");
    assert!(verify_proof(&case.proof, &opts).is_ok());
    let ring_key =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &case.sec1);
    assert!(ring_key.verify(&case.signed, &case.sig).is_ok());

    let mut g = c.benchmark_group("dpop_proof_es256");
    g.bench_function("verify_proof (all checks; ring signature)", |b| {
        b.iter(|| verify_proof(black_box(&case.proof), &opts).is_ok())
    });
    g.bench_function("p256 verify only", |b| {
        b.iter(|| {
            let key = VerifyingKey::from_sec1_bytes(black_box(&case.sec1)).expect("a point");
            let sig = Signature::from_slice(&case.sig).expect("64 bytes");
            key.verify(black_box(&case.signed), &sig).is_ok()
        })
    });
    g.bench_function("ring verify only", |b| {
        b.iter(|| {
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_FIXED,
                black_box(&case.sec1),
            )
            .verify(black_box(&case.signed), &case.sig)
            .is_ok()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
