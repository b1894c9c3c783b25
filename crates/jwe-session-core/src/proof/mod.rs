//! Proofs of possession: a compact JWS (RFC 7515) that a client signs with a key it holds
//! and carries, public, in the header's `jwk`; DPoP (RFC 9449) and device-bound sessions use
//! them. Read strictly, in this order, the first failure returned: size, three parts,
//! canonical base64url, a header that is a JSON object without repeated members, `typ`
//! exactly as required, `alg` from the allow-list (never `none`, never HMAC), no `crit` or
//! `b64`, a `jwk` that is a public key of the type `alg` uses and a point on its curve, the
//! signature, and claims that are a JSON object. What the claims must say (`htm`, `htu`,
//! `iat`, …) is the caller's protocol; this module hands them over verified.
//!
//! A leaf of the crate: it knows base64url and its own errors, nothing of tokens or keys
//! rings.

mod dbsc;
mod dpop;
mod error;
mod jwk;
mod sign;

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

pub use dbsc::{
    check_dbsc_refresh, check_dbsc_registration, DbscError, DbscProof, DBSC_TYP, MAX_CHALLENGE_LEN,
};
pub use dpop::{
    access_token_hash, check_dpop, normalize_htu, DpopError, DpopProof, DpopRequest, DPOP_TYP,
    MAX_JTI_LEN,
};
pub use error::{ProofError, ProofPart};
pub use jwk::{jwk_thumbprint, PublicJwk};
pub use sign::{ProofKey, ProofKeyError};

use crate::b64;
use crate::error::truncate;

/// The default limit on a proof's length: 4 KiB (an ES256 DPoP proof is about 600 bytes).
pub const DEFAULT_MAX_PROOF_LEN: usize = 4 * 1024;

/// A signature algorithm a proof may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProofAlg {
    /// ECDSA on P-256 with SHA-256 (RFC 7518 §3.4), 64-byte `r || s` signatures.
    Es256,
}

impl ProofAlg {
    /// The JOSE name (`"ES256"`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }
}

/// What a proof must be: its `typ`, its size limit, the algorithms allowed.
///
/// ```
/// use jwe_session_core::{ProofAlg, ProofOptions};
///
/// let dpop = ProofOptions::new("dpop+jwt");
/// assert_eq!(dpop.algs(), &[ProofAlg::Es256]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct ProofOptions {
    typ: &'static str,
    max_len: usize,
    algs: Vec<ProofAlg>,
}

impl ProofOptions {
    /// Proofs of `typ` (`"dpop+jwt"`, `"dbsc+jwt"`), at most
    /// [`DEFAULT_MAX_PROOF_LEN`] long, signed with ES256.
    pub fn new(typ: &'static str) -> Self {
        Self {
            typ,
            max_len: DEFAULT_MAX_PROOF_LEN,
            algs: vec![ProofAlg::Es256],
        }
    }

    /// A different size limit.
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// The algorithms allowed (at least one; an empty list allows none).
    pub fn with_algs(mut self, algs: &[ProofAlg]) -> Self {
        self.algs = algs.to_vec();
        self
    }

    /// The algorithms allowed.
    #[must_use]
    pub fn algs(&self) -> &[ProofAlg] {
        &self.algs
    }

    /// The `typ` required.
    #[must_use]
    pub fn typ(&self) -> &'static str {
        self.typ
    }
}

/// A proof whose signature verified under the key it carries.
#[derive(Clone, Debug, PartialEq)]
pub struct Proof {
    alg: ProofAlg,
    jwk: PublicJwk,
    thumbprint: String,
    claims: Map<String, Value>,
}

impl Proof {
    /// The algorithm it was signed with.
    #[must_use]
    pub fn alg(&self) -> ProofAlg {
        self.alg
    }

    /// The public key it carries (and was verified under).
    #[must_use]
    pub fn jwk(&self) -> &PublicJwk {
        &self.jwk
    }

    /// The key's RFC 7638 thumbprint: what a token bound to it names as `cnf.jkt`.
    #[must_use]
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// Its claims, verified but not yet judged.
    #[must_use]
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }
}

/// The header members that matter. A repeated member is an error (serde's derive refuses
/// duplicates), unknown members are ignored, except the extensions refused below.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    alg: Option<Cow<'a, str>>,
    #[serde(default)]
    jwk: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
    #[serde(default, deserialize_with = "present")]
    b64: bool,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

/// A JSON object whose members are each named once: a repeated claim (`"htu"` twice,
/// the second for another URL) is refused, not resolved by whichever parser reads last.
struct UniqueMap(Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = UniqueMap;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<UniqueMap, A::Error> {
                let mut out = Map::new();
                while let Some((k, v)) = m.next_entry::<String, Value>()? {
                    if out.contains_key(&k) {
                        return Err(serde::de::Error::custom("a repeated member"));
                    }
                    out.insert(k, v);
                }
                Ok(UniqueMap(out))
            }
        }
        d.deserialize_map(Members)
    }
}

/// Verifies a compact-JWS proof against `opts`, in the order the module describes, under
/// the public key its header's `jwk` carries.
///
/// # Errors
/// The first [`ProofError`] that applies.
pub fn verify_proof(proof: &str, opts: &ProofOptions) -> Result<Proof, ProofError> {
    verify(proof, opts, None)
}

/// Verifies a compact-JWS proof as [`verify_proof`] does, but under a key the caller
/// already holds (a device-bound session's refresh, whose key came at registration). A
/// `jwk` in the header is refused, whichever key it names: the key a proof is checked with
/// is never the proof's own choice.
///
/// # Errors
/// The first [`ProofError`] that applies; [`ProofError::UnexpectedJwk`] for a header that
/// carries a `jwk`.
pub fn verify_proof_by(
    proof: &str,
    opts: &ProofOptions,
    key: &PublicJwk,
) -> Result<Proof, ProofError> {
    verify(proof, opts, Some(key))
}

fn verify(
    proof: &str,
    opts: &ProofOptions,
    given: Option<&PublicJwk>,
) -> Result<Proof, ProofError> {
    if proof.len() > opts.max_len {
        return Err(ProofError::TooLarge {
            len: proof.len(),
            max: opts.max_len,
        });
    }
    let mut parts = proof.splitn(4, '.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProofError::PartCount {
            found: proof.split('.').take(4).count(),
        });
    };
    let decode = |s: &str, part| b64::decode(s.as_bytes()).ok_or(ProofError::Base64 { part });
    let header_json = decode(header_b64, ProofPart::Header)?;
    let payload_json = decode(payload_b64, ProofPart::Payload)?;
    let sig = decode(sig_b64, ProofPart::Signature)?;
    if header_json.first() != Some(&b'{') {
        return Err(ProofError::HeaderNotJson);
    }
    let header: Header<'_> =
        serde_json::from_slice(&header_json).map_err(|_| ProofError::HeaderNotJson)?;
    if header.typ.as_deref() != Some(opts.typ) {
        return Err(ProofError::Type {
            expected: opts.typ,
            found: header.typ.as_deref().map(truncate),
        });
    }
    let alg_name = header
        .alg
        .ok_or(ProofError::MissingHeader { member: "alg" })?;
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(ProofError::Unsigned);
    }
    if alg_name.starts_with("HS") {
        return Err(ProofError::Symmetric {
            alg: truncate(&alg_name),
        });
    }
    let alg = ProofAlg::from_name(&alg_name)
        .filter(|a| opts.algs.contains(a))
        .ok_or_else(|| ProofError::AlgNotAllowed {
            alg: truncate(&alg_name),
        })?;
    if header.crit {
        return Err(ProofError::Extension { member: "crit" });
    }
    if header.b64 {
        return Err(ProofError::Extension { member: "b64" });
    }
    let jwk = match (given, header.jwk) {
        (Some(_), Some(_)) => return Err(ProofError::UnexpectedJwk),
        (Some(key), None) => key.clone(),
        (None, None) => return Err(ProofError::MissingHeader { member: "jwk" }),
        (None, Some(jwk_json)) => match alg {
            ProofAlg::Es256 => PublicJwk::for_es256(&jwk_json)?,
        },
    };
    // What was signed: the two parts as sent (RFC 7515 §5.2).
    let signed_len = header_b64.len() + 1 + payload_b64.len();
    let signed = &proof.as_bytes()[..signed_len];
    match &jwk {
        PublicJwk::P256 { x, y } => verify_es256(x, y, signed, &sig)?,
    }
    if payload_json.first() != Some(&b'{') {
        return Err(ProofError::ClaimsNotJson);
    }
    let UniqueMap(claims) =
        serde_json::from_slice(&payload_json).map_err(|_| ProofError::ClaimsNotJson)?;
    let thumbprint = jwk.thumbprint();
    Ok(Proof {
        alg,
        jwk,
        thumbprint,
        claims,
    })
}

fn verify_es256(x: &[u8; 32], y: &[u8; 32], signed: &[u8], sig: &[u8]) -> Result<(), ProofError> {
    if sig.len() != 64 {
        return Err(ProofError::SignatureLength { len: sig.len() });
    }
    let mut sec1 = [0u8; 65];
    sec1[0] = 0x04;
    sec1[1..33].copy_from_slice(x);
    sec1[33..].copy_from_slice(y);
    // Its own answer for a point off the curve (ring folds it into "does not verify").
    p256::PublicKey::from_sec1_bytes(&sec1).map_err(|_| ProofError::NotOnCurve)?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &sec1)
        .verify(signed, sig)
        .map_err(|_| ProofError::BadSignature)
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::Signer as _;
    use p256::ecdsa::{Signature, SigningKey};
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn key(seed: u8) -> SigningKey {
        let mut bytes = [0x11u8; 32];
        bytes[31] = seed;
        SigningKey::from_slice(&bytes).unwrap()
    }

    /// The public JWK of `key`, as a client puts it in the header.
    fn public_jwk(key: &SigningKey) -> Value {
        let point = key.verifying_key().to_sec1_bytes();
        assert_eq!(point.len(), 65);
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": b64::encode(&point[1..33]),
            "y": b64::encode(&point[33..]),
        })
    }

    fn sign(key: &SigningKey, header: &Value, claims: &Value) -> String {
        let mut out = b64::encode(header.to_string().as_bytes());
        out.push('.');
        out.push_str(&b64::encode(claims.to_string().as_bytes()));
        let sig: Signature = key.sign(out.as_bytes());
        out.push('.');
        out.push_str(&b64::encode(&sig.to_bytes()));
        out
    }

    fn header(key: &SigningKey) -> Value {
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(key)})
    }

    fn claims() -> Value {
        json!({"jti": "j1", "htm": "GET", "htu": "https://api.example/me", "iat": 1_800_000_000})
    }

    fn opts() -> ProofOptions {
        ProofOptions::new("dpop+jwt")
    }

    #[test]
    fn a_signed_proof_verifies_and_names_its_key() {
        let k = key(1);
        let proof = verify_proof(&sign(&k, &header(&k), &claims()), &opts()).unwrap();
        assert_eq!(proof.alg(), ProofAlg::Es256);
        assert_eq!(proof.claims()["htm"], "GET");
        // Our thumbprint agrees with the generic RFC 7638 one over the JSON as sent.
        let jwk = public_jwk(&k);
        assert_eq!(
            Some(proof.thumbprint().to_owned()),
            jwk_thumbprint(jwk.as_object().unwrap())
        );
    }

    /// RFC 9449 §6.1's key and its `jkt`, also computed with Python's `hashlib` over the
    /// canonical JSON (`json.dumps(sort_keys=True, separators=(',', ':'))`).
    #[test]
    fn the_rfc_9449_thumbprint() {
        let x = b64::decode_array::<32>(b"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs").unwrap();
        let y = b64::decode_array::<32>(b"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA").unwrap();
        assert_eq!(
            PublicJwk::P256 { x, y }.thumbprint(),
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        );
    }

    /// Every way a header or key can be wrong is its own refusal.
    #[test]
    fn every_header_and_key_refusal() {
        let k = key(2);
        let jwk = public_jwk(&k);
        let with = |f: &dyn Fn(&mut Map<String, Value>)| {
            let mut h = header(&k);
            f(h.as_object_mut().unwrap());
            verify_proof(&sign(&k, &h, &claims()), &opts())
        };
        let jwk_with = |f: &dyn Fn(&mut Map<String, Value>)| {
            let mut j = jwk.clone();
            f(j.as_object_mut().unwrap());
            with(&|h| {
                h.insert("jwk".into(), j.clone());
            })
        };
        assert!(matches!(
            with(&|h| {
                h.insert("typ".into(), "JWT".into());
            }),
            Err(ProofError::Type { found: Some(t), .. }) if t == "JWT"
        ));
        assert!(matches!(
            with(&|h| {
                h.remove("typ");
            }),
            Err(ProofError::Type { found: None, .. })
        ));
        assert_eq!(
            with(&|h| {
                h.insert("alg".into(), "none".into());
            }),
            Err(ProofError::Unsigned)
        );
        assert!(matches!(
            with(&|h| {
                h.insert("alg".into(), "HS256".into());
            }),
            Err(ProofError::Symmetric { .. })
        ));
        assert!(matches!(
            with(&|h| {
                h.insert("alg".into(), "RS256".into());
            }),
            Err(ProofError::AlgNotAllowed { .. })
        ));
        assert_eq!(
            with(&|h| {
                h.remove("alg");
            }),
            Err(ProofError::MissingHeader { member: "alg" })
        );
        assert_eq!(
            with(&|h| {
                h.insert("crit".into(), json!(["exp"]));
            }),
            Err(ProofError::Extension { member: "crit" })
        );
        assert_eq!(
            with(&|h| {
                h.insert("b64".into(), json!(false));
            }),
            Err(ProofError::Extension { member: "b64" })
        );
        assert_eq!(
            with(&|h| {
                h.remove("jwk");
            }),
            Err(ProofError::MissingHeader { member: "jwk" })
        );
        assert_eq!(
            with(&|h| {
                h.insert("jwk".into(), "a string".into());
            }),
            Err(ProofError::JwkNotObject)
        );
        assert_eq!(
            jwk_with(&|j| {
                j.insert("d".into(), "AAAA".into());
            }),
            Err(ProofError::PrivateKey { member: "d" })
        );
        assert!(matches!(
            jwk_with(&|j| {
                j.insert("kty".into(), "RSA".into());
            }),
            Err(ProofError::KeyType { alg: "ES256", .. })
        ));
        assert!(matches!(
            jwk_with(&|j| {
                j.insert("crv".into(), "P-384".into());
            }),
            Err(ProofError::KeyType { .. })
        ));
        assert_eq!(
            jwk_with(&|j| {
                j.insert("x".into(), "AAAA".into());
            }),
            Err(ProofError::Coordinate { member: "x" })
        );
        assert_eq!(
            jwk_with(&|j| {
                j.remove("y");
            }),
            Err(ProofError::Coordinate { member: "y" })
        );
        // A point off the curve: y + 1.
        let mut y = b64::decode_array::<32>(jwk["y"].as_str().unwrap().as_bytes()).unwrap();
        y[31] ^= 1;
        assert_eq!(
            jwk_with(&|j| {
                j.insert("y".into(), b64::encode(&y).into());
            }),
            Err(ProofError::NotOnCurve)
        );
        // Signed by another key than the one it carries: a thief's copy.
        let thief = key(3);
        assert_eq!(
            verify_proof(&sign(&thief, &header(&k), &claims()), &opts()),
            Err(ProofError::BadSignature)
        );
    }

    #[test]
    fn every_structural_refusal() {
        let k = key(4);
        let good = sign(&k, &header(&k), &claims());
        assert!(matches!(
            verify_proof(&good, &opts().with_max_len(good.len() - 1)),
            Err(ProofError::TooLarge { .. })
        ));
        let (hp, sig) = good.rsplit_once('.').unwrap();
        assert_eq!(
            verify_proof(hp, &opts()),
            Err(ProofError::PartCount { found: 2 })
        );
        assert_eq!(
            verify_proof(&format!("{good}.x"), &opts()),
            Err(ProofError::PartCount { found: 4 })
        );
        assert_eq!(
            verify_proof(&format!("{hp}.{sig}="), &opts()),
            Err(ProofError::Base64 {
                part: ProofPart::Signature
            })
        );
        assert_eq!(
            verify_proof(&format!("{hp}.{}", &sig[..sig.len() - 2]), &opts()),
            Err(ProofError::SignatureLength { len: 63 })
        );
        // A repeated header member.
        let h = format!(
            r#"{{"typ":"dpop+jwt","typ":"dpop+jwt","alg":"ES256","jwk":{}}}"#,
            public_jwk(&k)
        );
        let mut t = b64::encode(h.as_bytes());
        t.push('.');
        t.push_str(&b64::encode(claims().to_string().as_bytes()));
        let sig: Signature = k.sign(t.as_bytes());
        let t = format!("{t}.{}", b64::encode(&sig.to_bytes()));
        assert_eq!(verify_proof(&t, &opts()), Err(ProofError::HeaderNotJson));
        // A repeated claim, properly signed.
        let body = r#"{"htu":"https://a.example/","htu":"https://b.example/"}"#;
        let mut t = b64::encode(header(&k).to_string().as_bytes());
        t.push('.');
        t.push_str(&b64::encode(body.as_bytes()));
        let sig: Signature = k.sign(t.as_bytes());
        let t = format!("{t}.{}", b64::encode(&sig.to_bytes()));
        assert_eq!(verify_proof(&t, &opts()), Err(ProofError::ClaimsNotJson));
        // Claims that are not an object, properly signed.
        assert_eq!(
            verify_proof(&sign(&k, &header(&k), &json!([1, 2])), &opts()),
            Err(ProofError::ClaimsNotJson)
        );
    }

    /// Flipping any byte of a good proof never verifies and never panics.
    #[test]
    fn every_byte_flipped_is_refused() {
        let k = key(5);
        let good = sign(&k, &header(&k), &claims());
        for i in 0..good.len() {
            let mut bytes = good.clone().into_bytes();
            bytes[i] ^= 0x01;
            let Ok(s) = String::from_utf8(bytes) else {
                continue;
            };
            assert!(
                verify_proof(&s, &opts()).is_err(),
                "byte {i} flipped verified"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(s in ".{0,600}") {
            let _ = verify_proof(&s, &opts());
        }

        #[test]
        fn arbitrary_parts_never_panic(h in "[A-Za-z0-9_-]{0,200}", p in "[A-Za-z0-9_-]{0,100}", g in "[A-Za-z0-9_-]{0,100}") {
            let _ = verify_proof(&format!("{h}.{p}.{g}"), &opts());
        }
    }
}
