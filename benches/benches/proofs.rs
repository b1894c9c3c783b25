//! Verifying a DPoP proof (ES256): which signature crate the core should verify with, and
//! what the strict checks around the signature cost.
//!
//!   cd benches && cargo bench --bench proofs
//!
//! The same proof, made once with `p256`'s signer, verified by:
//! - `verify_proof`: the core's whole check (parse, strict header and key, the point on
//!   the curve by `p256`, RFC 7638 thumbprint, the signature by `ring`, claims);
//! - `p256`: the bare RustCrypto ECDSA verification of the same bytes;
//! - `ring`: ring's `ECDSA_P256_SHA256_FIXED` verification of the same bytes;
//! - `check_dpop`: the core's whole DPoP check (the above, then htm, the normalized htu,
//!   the iat window, jti, ath), as the layer runs it on every DPoP request;
//! - `dpop-verifier` 4.4 (the other Rust DPoP verifier) on the same proof, with a replay
//!   store that records nothing (so both sides do the same work).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::time::Duration;

use jwe_session_core::{check_dpop, verify_proof, DpopRequest, ProofOptions, UnixTime};
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
        "iat": now(),
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

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

const HTU: &str = "https://resource.example.org/protectedresource";
const TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";

/// dpop-verifier's replay store, remembering nothing (our `check_dpop` leaves the replay
/// cache to the layer too).
struct NoStore;

#[async_trait::async_trait]
impl dpop_verifier::ReplayStore for NoStore {
    async fn insert_once(
        &mut self,
        _jti_hash: [u8; 32],
        _ctx: dpop_verifier::ReplayContext<'_>,
    ) -> Result<bool, dpop_verifier::DpopError> {
        Ok(true)
    }
}

/// Runs a future that never waits (dpop-verifier's, with [`NoStore`]) to its end.
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn bench(c: &mut Criterion) {
    let case = case();
    let opts = ProofOptions::new("dpop+jwt");
    assert!(verify_proof(&case.proof, &opts).is_ok());
    let ring_key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_FIXED,
        &case.sec1,
    );
    assert!(ring_key.verify(&case.signed, &case.sig).is_ok());

    let request = DpopRequest {
        method: "GET",
        uri: HTU,
        access_token: Some(TOKEN),
        now: UnixTime::from_secs(now()),
        // The bench runs for minutes; the proof stays inside the window.
        max_age: Duration::from_secs(3600),
        leeway: Duration::from_secs(5),
    };
    assert!(check_dpop(&case.proof, &request).is_ok());
    let theirs = dpop_verifier::DpopVerifier::new().with_max_age_seconds(3600);
    let verified = ready(theirs.verify(&mut NoStore, &case.proof, HTU, "GET", Some(TOKEN)));
    assert_eq!(
        verified.expect("dpop-verifier accepts it").jkt,
        check_dpop(&case.proof, &request).unwrap().thumbprint
    );

    let mut g = c.benchmark_group("dpop_proof_es256");
    g.bench_function("check_dpop (the layer's whole DPoP check)", |b| {
        b.iter(|| check_dpop(black_box(&case.proof), &request).is_ok())
    });
    g.bench_function("dpop-verifier 4.4 verify", |b| {
        b.iter(|| {
            ready(theirs.verify(
                &mut NoStore,
                black_box(&case.proof),
                HTU,
                "GET",
                Some(TOKEN),
            ))
            .is_ok()
        })
    });
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
