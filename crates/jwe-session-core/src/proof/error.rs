//! Why a proof was refused: one variant per check, none carrying the proof or a key.

use std::fmt;

/// A part of a compact JWS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofPart {
    /// The protected header.
    Header,
    /// The claims.
    Payload,
    /// The signature.
    Signature,
}

impl fmt::Display for ProofPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Header => "header",
            Self::Payload => "payload",
            Self::Signature => "signature",
        })
    }
}

/// Why a proof of possession was refused. Each check has its own variant, in the order the
/// checks run; untrusted strings are shortened, and no variant holds the proof, a key or a
/// signature.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// Longer than the limit, refused before anything is decoded.
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not three dot-separated parts (a JWE, a JWS in JSON form, garbage).
    PartCount {
        /// How many parts were found (capped at 4).
        found: usize,
    },
    /// A part is not canonical base64url without padding.
    Base64 {
        /// Which part.
        part: ProofPart,
    },
    /// The header is not a JSON object (or repeats a member).
    HeaderNotJson,
    /// The claims are not a JSON object (or repeat a member).
    ClaimsNotJson,
    /// `typ` is missing or not the one required.
    Type {
        /// The `typ` required.
        expected: &'static str,
        /// The `typ` found, shortened.
        found: Option<String>,
    },
    /// A required header member is missing.
    MissingHeader {
        /// Which one.
        member: &'static str,
    },
    /// `alg: none`: an unsigned proof proves nothing.
    Unsigned,
    /// A symmetric `alg` (`HS256` …): a shared secret proves nothing about a client's key.
    Symmetric {
        /// The `alg` found.
        alg: String,
    },
    /// An `alg` outside the allow-list.
    AlgNotAllowed {
        /// The `alg` found, shortened.
        alg: String,
    },
    /// `crit` or `b64`: extensions this verifier does not implement.
    Extension {
        /// Which member.
        member: &'static str,
    },
    /// `jwk` is not a JSON object.
    JwkNotObject,
    /// A `jwk` in a proof that is verified under a key the verifier already holds
    /// ([`verify_proof_by`](super::verify_proof_by)): never trusted, so refused.
    UnexpectedJwk,
    /// `jwk` holds a private key member (`d`, `p`, `k`, …): a client must never send it.
    PrivateKey {
        /// The member.
        member: &'static str,
    },
    /// `kty` (or `crv`) does not match `alg`.
    KeyType {
        /// The `alg` of the proof.
        alg: &'static str,
        /// What the key says, shortened.
        found: String,
    },
    /// A coordinate is missing, not base64url, or of the wrong length.
    Coordinate {
        /// Which member (`x`, `y`).
        member: &'static str,
    },
    /// The point is not on the curve (or is the identity).
    NotOnCurve,
    /// The signature has the wrong length for `alg`.
    SignatureLength {
        /// Its length in bytes.
        len: usize,
    },
    /// The signature does not verify under `jwk`.
    BadSignature,
}

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => {
                write!(f, "proof of {len} bytes is over the limit of {max}")
            }
            Self::PartCount { found } => {
                write!(f, "a proof is a compact JWS of 3 parts; found {found}")
            }
            Self::Base64 { part } => write!(f, "proof {part} is not canonical base64url"),
            Self::HeaderNotJson => f.write_str("proof header is not a JSON object"),
            Self::ClaimsNotJson => f.write_str("proof claims are not a JSON object"),
            Self::Type { expected, found } => match found {
                Some(t) => write!(f, "proof typ is {t:?}, not {expected:?}"),
                None => write!(f, "proof has no typ (must be {expected:?})"),
            },
            Self::MissingHeader { member } => write!(f, "proof header has no {member:?}"),
            Self::Unsigned => f.write_str("proof is unsigned (alg none)"),
            Self::Symmetric { alg } => {
                write!(
                    f,
                    "proof alg {alg} is symmetric; a proof needs the client's own key"
                )
            }
            Self::AlgNotAllowed { alg } => write!(f, "proof alg {alg:?} is not allowed"),
            Self::Extension { member } => {
                write!(
                    f,
                    "proof header carries {member:?}, an extension not supported"
                )
            }
            Self::JwkNotObject => f.write_str("proof jwk is not a JSON object"),
            Self::UnexpectedJwk => f.write_str(
                "proof carries a jwk where the key is known already: a proof never chooses its key",
            ),
            Self::PrivateKey { member } => write!(
                f,
                "proof jwk holds the private member {member:?}: only a public key belongs there"
            ),
            Self::KeyType { alg, found } => {
                write!(f, "proof jwk is {found}, which alg {alg} does not use")
            }
            Self::Coordinate { member } => {
                write!(f, "proof jwk {member:?} is missing or of the wrong length")
            }
            Self::NotOnCurve => f.write_str("proof jwk is not a point on its curve"),
            Self::SignatureLength { len } => {
                write!(
                    f,
                    "proof signature of {len} bytes is the wrong length for its alg"
                )
            }
            Self::BadSignature => f.write_str("proof signature does not verify under its jwk"),
        }
    }
}

impl std::error::Error for ProofError {}
