//! The public key a proof carries in its header (`jwk`), checked strictly, and its RFC 7638
//! thumbprint, which is what a bound token names (`cnf.jkt`).

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::error::ProofError;
use crate::b64;
use crate::error::truncate;

/// Members that only a private (or symmetric) JWK has (RFC 7518 §6.2.2, §6.3.2, §6.4.1;
/// RFC 8037 §2). Any of them in a proof's `jwk` refuses the proof.
const PRIVATE: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A public key a proof may carry: for now an EC P-256 point (`ES256`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicJwk {
    /// An uncompressed point on P-256, its coordinates big-endian.
    P256 {
        /// The x coordinate.
        x: [u8; 32],
        /// The y coordinate.
        y: [u8; 32],
    },
}

impl PublicJwk {
    /// Reads the `jwk` of a proof signed with `alg` (`ES256`): a public key of the type
    /// `alg` uses, coordinates of the right length. Whether the point is on the curve is
    /// checked where the signature is.
    ///
    /// # Errors
    /// [`ProofError::JwkNotObject`], [`ProofError::PrivateKey`], [`ProofError::KeyType`],
    /// [`ProofError::Coordinate`].
    pub(crate) fn for_es256(jwk: &Value) -> Result<Self, ProofError> {
        let jwk = jwk.as_object().ok_or(ProofError::JwkNotObject)?;
        if let Some(member) = PRIVATE.iter().find(|m| jwk.contains_key(**m)) {
            return Err(ProofError::PrivateKey { member });
        }
        let kty = jwk.get("kty").and_then(Value::as_str);
        let crv = jwk.get("crv").and_then(Value::as_str);
        if kty != Some("EC") || crv != Some("P-256") {
            return Err(ProofError::KeyType {
                alg: "ES256",
                found: format!(
                    "kty {} crv {}",
                    kty.map_or("(none)".into(), truncate),
                    crv.map_or("(none)".into(), truncate)
                ),
            });
        }
        let coordinate = |member: &'static str| {
            jwk.get(member)
                .and_then(Value::as_str)
                .and_then(|s| b64::decode_array::<32>(s.as_bytes()))
                .ok_or(ProofError::Coordinate { member })
        };
        Ok(Self::P256 {
            x: coordinate("x")?,
            y: coordinate("y")?,
        })
    }

    /// A P-256 key from its coordinates in base64url (as a JWK's `x` and `y`); `None`
    /// unless each is 32 bytes. Whether the point is on the curve is checked where a
    /// signature is verified under it.
    #[must_use]
    pub fn from_p256_coordinates(x: &str, y: &str) -> Option<Self> {
        Some(Self::P256 {
            x: b64::decode_array::<32>(x.as_bytes())?,
            y: b64::decode_array::<32>(y.as_bytes())?,
        })
    }

    /// The coordinates in base64url, `x` then `y`.
    #[must_use]
    pub fn p256_coordinates(&self) -> (String, String) {
        match self {
            Self::P256 { x, y } => (b64::encode(x), b64::encode(y)),
        }
    }

    /// The RFC 7638 thumbprint: base64url of the SHA-256 of the key's required members,
    /// in lexicographic order, without whitespace.
    #[must_use]
    pub fn thumbprint(&self) -> String {
        match self {
            Self::P256 { x, y } => {
                let mut json = String::with_capacity(128);
                json.push_str(r#"{"crv":"P-256","kty":"EC","x":""#);
                b64::encode_to_string(x, &mut json);
                json.push_str(r#"","y":""#);
                b64::encode_to_string(y, &mut json);
                json.push_str(r#""}"#);
                b64::encode(&Sha256::digest(json.as_bytes()))
            }
        }
    }
}

/// The RFC 7638 SHA-256 thumbprint of any JWK (`RSA`, `EC`, `OKP`, `oct`), from its
/// required members as given: what a token's `cnf.jkt` is compared with, for keys this
/// crate does not verify signatures with too.
///
/// ```
/// // RFC 7638 §3.1
/// let jwk = serde_json::json!({
///     "kty": "RSA",
///     "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
///     "e": "AQAB",
///     "alg": "RS256",
///     "kid": "2011-04-29"
/// });
/// assert_eq!(
///     jwe_session_core::jwk_thumbprint(jwk.as_object().unwrap()),
///     Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs".to_owned())
/// );
/// ```
#[must_use]
pub fn jwk_thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let required: &[&str] = match jwk.get("kty")?.as_str()? {
        "RSA" => &["e", "kty", "n"],
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        "oct" => &["k", "kty"],
        _ => return None,
    };
    let mut canonical = Map::new();
    for m in required {
        canonical.insert(
            (*m).to_owned(),
            Value::String(jwk.get(*m)?.as_str()?.to_owned()),
        );
    }
    // `required` is in lexicographic order, as §3.3 requires, and the map keeps it with or
    // without serde_json's `preserve_order`; `to_string` writes no whitespace.
    let json = Value::Object(canonical).to_string();
    Some(b64::encode(&Sha256::digest(json.as_bytes())))
}
