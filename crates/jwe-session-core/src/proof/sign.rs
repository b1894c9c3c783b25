//! The client's side of a proof: an ES256 key it holds, and the proofs it signs with it.

use std::fmt;

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::jwk::PublicJwk;
use crate::b64;

/// Why a proof key could not be made or used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofKeyError {
    /// The system's random source failed.
    Random,
    /// The bytes are not a PKCS#8 (RFC 5958) P-256 private key, or the PEM around them is
    /// not `-----BEGIN PRIVATE KEY-----` with base64 inside.
    InvalidKey,
    /// Signing failed (the random source, for the nonce).
    Sign,
}

impl fmt::Display for ProofKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Random => "the system random source failed",
            Self::InvalidKey => "not a PKCS#8 P-256 private key",
            Self::Sign => "the proof could not be signed",
        })
    }
}

impl std::error::Error for ProofKeyError {}

/// An ES256 (P-256) signing key a client holds, for the proofs it sends (DPoP). The private
/// half never leaves it: `Debug` shows only the public key's thumbprint, and the PKCS#8
/// bytes it was made from are wiped.
///
/// ```
/// use jwe_session_core::{verify_proof, ProofKey, ProofOptions};
///
/// let key = ProofKey::generate()?;
/// let mut claims = serde_json::Map::new();
/// claims.insert("htm".into(), "GET".into());
/// let proof = key.sign("dpop+jwt", &claims)?;
/// let verified = verify_proof(&proof, &ProofOptions::new("dpop+jwt")).unwrap();
/// assert_eq!(verified.thumbprint(), key.thumbprint());
/// # Ok::<(), jwe_session_core::ProofKeyError>(())
/// ```
pub struct ProofKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
    jwk: PublicJwk,
    thumbprint: String,
    /// The header's `"jwk"` member, serialized once.
    jwk_json: String,
}

impl fmt::Debug for ProofKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProofKey")
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

impl ProofKey {
    /// A new key from the system's random source.
    ///
    /// # Errors
    /// [`ProofKeyError::Random`].
    pub fn generate() -> Result<Self, ProofKeyError> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| ProofKeyError::Random)?;
        let der = Zeroizing::new(doc.as_ref().to_vec());
        Self::from_pkcs8_der(&der)
    }

    /// A new key, and its PKCS#8 DER encoding to keep (wipe it when done; it is the
    /// private key).
    ///
    /// # Errors
    /// [`ProofKeyError::Random`].
    pub fn generate_pkcs8() -> Result<(Self, Zeroizing<Vec<u8>>), ProofKeyError> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| ProofKeyError::Random)?;
        let der = Zeroizing::new(doc.as_ref().to_vec());
        Ok((Self::from_pkcs8_der(&der)?, der))
    }

    /// The key in a PKCS#8 DER document (`openssl genpkey -algorithm EC -pkeyopt
    /// ec_paramgen_curve:P-256 -outform DER`).
    ///
    /// # Errors
    /// [`ProofKeyError::InvalidKey`].
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, ProofKeyError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|_| ProofKeyError::InvalidKey)?;
        let point = pair.public_key().as_ref();
        let (Some(&0x04), Some(x), Some(y)) = (
            point.first(),
            point.get(1..33).and_then(|s| <[u8; 32]>::try_from(s).ok()),
            point.get(33..65).and_then(|s| <[u8; 32]>::try_from(s).ok()),
        ) else {
            return Err(ProofKeyError::InvalidKey);
        };
        let jwk = PublicJwk::P256 { x, y };
        let thumbprint = jwk.thumbprint();
        let jwk_json = format!(
            r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}"}}"#,
            b64::encode(&x),
            b64::encode(&y)
        );
        Ok(Self {
            pair,
            rng,
            jwk,
            thumbprint,
            jwk_json,
        })
    }

    /// The key in a PEM file of PKCS#8 (`-----BEGIN PRIVATE KEY-----`, what `openssl
    /// genpkey` writes).
    ///
    /// # Errors
    /// [`ProofKeyError::InvalidKey`].
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, ProofKeyError> {
        let body = pem
            .trim()
            .strip_prefix("-----BEGIN PRIVATE KEY-----")
            .and_then(|s| s.strip_suffix("-----END PRIVATE KEY-----"))
            .ok_or(ProofKeyError::InvalidKey)?;
        // Standard base64 (RFC 7468) read as base64url: the two alphabets differ in two
        // symbols, and the padding is implied by the length.
        let url: Zeroizing<Vec<u8>> = Zeroizing::new(
            body.bytes()
                .filter(|c| !c.is_ascii_whitespace())
                .map(|c| match c {
                    b'+' => b'-',
                    b'/' => b'_',
                    b'-' | b'_' => b'!',
                    c => c,
                })
                .collect(),
        );
        let url = url
            .strip_suffix(b"==")
            .or_else(|| url.strip_suffix(b"="))
            .unwrap_or(&url);
        let der = b64::decode(url).ok_or(ProofKeyError::InvalidKey)?;
        Self::from_pkcs8_der(&der)
    }

    /// The public key.
    #[must_use]
    pub fn jwk(&self) -> &PublicJwk {
        &self.jwk
    }

    /// The public key's RFC 7638 thumbprint (what a token bound to it names as `cnf.jkt`).
    #[must_use]
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// Signs a compact-JWS proof of `typ` over `claims`, the public key in its header.
    ///
    /// # Errors
    /// [`ProofKeyError::Sign`].
    pub fn sign(&self, typ: &str, claims: &Map<String, Value>) -> Result<String, ProofKeyError> {
        let header = format!(
            r#"{{"typ":{},"alg":"ES256","jwk":{}}}"#,
            Value::from(typ),
            self.jwk_json
        );
        self.sign_with_header(&header, claims)
    }

    /// Signs a proof whose header names no key, for a verifier that holds it already (a
    /// DBSC refresh: `{"typ":…,"alg":"ES256"}`).
    ///
    /// # Errors
    /// As [`sign`](Self::sign).
    pub fn sign_without_jwk(
        &self,
        typ: &str,
        claims: &Map<String, Value>,
    ) -> Result<String, ProofKeyError> {
        let header = format!(r#"{{"typ":{},"alg":"ES256"}}"#, Value::from(typ));
        self.sign_with_header(&header, claims)
    }

    fn sign_with_header(
        &self,
        header: &str,
        claims: &Map<String, Value>,
    ) -> Result<String, ProofKeyError> {
        let payload = serde_json::to_vec(claims).map_err(|_| ProofKeyError::Sign)?;
        let mut out = Vec::with_capacity(header.len() * 4 / 3 + payload.len() * 4 / 3 + 100);
        b64::encode_into(header.as_bytes(), &mut out);
        out.push(b'.');
        b64::encode_into(&payload, &mut out);
        let sig = self
            .pair
            .sign(&self.rng, &out)
            .map_err(|_| ProofKeyError::Sign)?;
        out.push(b'.');
        b64::encode_into(sig.as_ref(), &mut out);
        String::from_utf8(out).map_err(|_| ProofKeyError::Sign)
    }
}
