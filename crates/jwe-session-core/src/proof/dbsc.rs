//! Device Bound Session Credentials (W3C WebAppSec DBSC draft): what a browser's proof must
//! say. A registration proof carries the new session key in its header's `jwk`; a refresh
//! proof carries none and is verified under the key the session registered. Both name, as
//! `jti`, the challenge the server gave, and a registration may echo an `authorization`
//! value. The JWS itself is [`verify_proof`]'s and [`verify_proof_by`]'s; the challenge
//! (sealed, recent, for this session) is the caller's to judge.

use serde_json::Value;

use super::{verify_proof, verify_proof_by, ProofError, ProofOptions, PublicJwk};

/// The `typ` of a DBSC proof.
pub const DBSC_TYP: &str = "dbsc+jwt";

/// The longest challenge (`jti`) a DBSC proof may answer: a server's challenge is its own
/// choice of text, and a sealed one (a compact JWE) runs to a few hundred characters.
pub const MAX_CHALLENGE_LEN: usize = 1024;

/// A DBSC proof whose signature verified, with what its claims say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbscProof {
    /// The session key (the header's `jwk` at registration; the known key at refresh).
    pub jwk: PublicJwk,
    /// Its RFC 7638 thumbprint.
    pub thumbprint: String,
    /// The challenge it answers (`jti`).
    pub challenge: String,
    /// The `authorization` value it echoes, if any.
    pub authorization: Option<String>,
}

/// Why a DBSC proof was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DbscError {
    /// The JWS itself was refused (size, form, `typ`, `alg`, key, signature).
    Proof(ProofError),
    /// `jti` is missing, not a string, empty or longer than [`MAX_CHALLENGE_LEN`].
    Challenge,
    /// `authorization` is present and not a string.
    Authorization,
}

impl DbscError {
    /// A short label, for metrics and logs.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Proof(ProofError::UnexpectedJwk) => "unexpected_jwk",
            Self::Proof(ProofError::BadSignature) => "signature",
            Self::Proof(ProofError::Type { .. }) => "typ",
            Self::Proof(
                ProofError::AlgNotAllowed { .. }
                | ProofError::Unsigned
                | ProofError::Symmetric { .. },
            ) => "alg",
            Self::Proof(_) => "proof",
            Self::Challenge => "jti",
            Self::Authorization => "authorization",
        }
    }
}

impl std::fmt::Display for DbscError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Proof(e) => write!(f, "DBSC proof refused: {e}"),
            Self::Challenge => f.write_str("DBSC proof without a valid `jti` (the challenge)"),
            Self::Authorization => {
                f.write_str("DBSC proof with an `authorization` that is not a string")
            }
        }
    }
}

impl std::error::Error for DbscError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Proof(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ProofError> for DbscError {
    fn from(e: ProofError) -> Self {
        Self::Proof(e)
    }
}

/// Checks a registration proof (the `Secure-Session-Response` header of a request to the
/// registration endpoint): `typ` `dbsc+jwt`, ES256, the new session key in `jwk`, `jti`.
///
/// ```
/// use jwe_session_core::{check_dbsc_registration, ProofKey};
///
/// let browser = ProofKey::generate().unwrap();
/// let claims = serde_json::json!({ "jti": "the challenge" });
/// let proof = browser.sign("dbsc+jwt", claims.as_object().unwrap()).unwrap();
/// let checked = check_dbsc_registration(&proof).unwrap();
/// assert_eq!(checked.challenge, "the challenge");
/// assert_eq!(checked.thumbprint, browser.thumbprint());
/// ```
///
/// # Errors
/// The first [`DbscError`] that applies.
pub fn check_dbsc_registration(proof: &str) -> Result<DbscProof, DbscError> {
    let verified = verify_proof(proof, &ProofOptions::new(DBSC_TYP))?;
    judge(
        verified.jwk().clone(),
        verified.thumbprint().to_owned(),
        verified.claims(),
    )
}

/// Checks a refresh proof under the key the session registered with: the same claims as
/// at registration, and no `jwk` in the header (a key a refresh proof names is never
/// trusted; [`ProofError::UnexpectedJwk`]).
///
/// # Errors
/// The first [`DbscError`] that applies.
pub fn check_dbsc_refresh(proof: &str, key: &PublicJwk) -> Result<DbscProof, DbscError> {
    let verified = verify_proof_by(proof, &ProofOptions::new(DBSC_TYP), key)?;
    judge(
        verified.jwk().clone(),
        verified.thumbprint().to_owned(),
        verified.claims(),
    )
}

fn judge(
    jwk: PublicJwk,
    thumbprint: String,
    claims: &serde_json::Map<String, Value>,
) -> Result<DbscProof, DbscError> {
    let challenge = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty() && j.len() <= MAX_CHALLENGE_LEN)
        .ok_or(DbscError::Challenge)?;
    let authorization = match claims.get("authorization") {
        None => None,
        Some(Value::String(a)) => Some(a.clone()),
        Some(_) => return Err(DbscError::Authorization),
    };
    Ok(DbscProof {
        jwk,
        thumbprint,
        challenge: challenge.to_owned(),
        authorization,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::proof::ProofKey;

    fn sign(key: &ProofKey, typ: &str, claims: &Value) -> String {
        key.sign(typ, claims.as_object().unwrap()).unwrap()
    }

    /// The registration proof Chromium 156 sent in a manual test on this machine
    /// (software key): header `{"alg":"ES256","jwk":{…},"typ":"dbsc+jwt"}`, claims
    /// `{"jti":"chal-reg-1"}`.
    const CHROMIUM_REGISTRATION: &str = "eyJhbGciOiJFUzI1NiIsImp3ayI6eyJjcnYiOiJQLTI1NiIsImt0eSI6IkVDIiwieCI6IldDVTlIMWlYMGFGN2JFWUlTQU9QcUlydV9lRjFsV2dzYzN6M1h1cVB1bVkiLCJ5IjoiUUtzSDRIVlIwdUVQblRDSkV3YVV5bWtvN1ItZGIyUmg2bFhGQ0F2ck9sbyJ9LCJ0eXAiOiJkYnNjK2p3dCJ9.eyJqdGkiOiJjaGFsLXJlZy0xIn0.BzNkmPGdWbaBvuVvt-d0rU-Cli34eH4MHeD1z_LWTSY1cM-6l4hjwClXN0apPyzLoSnxIDWAw6pdGcZV4_Xb3A";
    /// Its refresh proof, without `jwk`, answering challenge `chal-ref-1796319319`.
    const CHROMIUM_REFRESH: &str = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImRic2Mrand0In0.eyJqdGkiOiJjaGFsLXJlZi0xNzk2MzE5MzE5In0.zgW8dB-E2xKTXhxzCcCUrh6krrTuGCiqu7D6ibnsbqhQadgi_7136vb7DG8FU-0tBF1PFltKBtn0sIhwAu_g-w";

    #[test]
    fn chromiums_own_proofs_verify() {
        let reg = check_dbsc_registration(CHROMIUM_REGISTRATION).unwrap();
        assert_eq!(reg.challenge, "chal-reg-1");
        assert_eq!(reg.authorization, None);
        let refresh = check_dbsc_refresh(CHROMIUM_REFRESH, &reg.jwk).unwrap();
        assert_eq!(refresh.challenge, "chal-ref-1796319319");
        assert_eq!(refresh.thumbprint, reg.thumbprint);
        // A registration proof is not a refresh proof (it names its key), nor the reverse.
        assert_eq!(
            check_dbsc_refresh(CHROMIUM_REGISTRATION, &reg.jwk),
            Err(DbscError::Proof(ProofError::UnexpectedJwk))
        );
        assert_eq!(
            check_dbsc_registration(CHROMIUM_REFRESH),
            Err(DbscError::Proof(ProofError::MissingHeader {
                member: "jwk"
            }))
        );
    }

    #[test]
    fn a_refresh_by_another_key_or_naming_one_is_refused() {
        let device = ProofKey::generate().unwrap();
        let thief = ProofKey::generate().unwrap();
        let proof = sign(&thief, DBSC_TYP, &json!({"jti": "c"}));
        // Signed by the thief, with the thief's key in the header: refused for the jwk.
        assert_eq!(
            check_dbsc_refresh(&proof, device.jwk()),
            Err(DbscError::Proof(ProofError::UnexpectedJwk))
        );
        // The thief's signature over a header without jwk: the device key does not verify it.
        let bare = strip_jwk(&thief, &json!({"jti": "c"}));
        assert_eq!(
            check_dbsc_refresh(&bare, device.jwk()),
            Err(DbscError::Proof(ProofError::BadSignature))
        );
        assert!(check_dbsc_refresh(&bare, thief.jwk()).is_ok());
    }

    #[test]
    fn claims_are_judged() {
        let key = ProofKey::generate().unwrap();
        for (claims, want) in [
            (json!({}), DbscError::Challenge),
            (json!({"jti": ""}), DbscError::Challenge),
            (json!({"jti": 7}), DbscError::Challenge),
            (
                json!({"jti": "x".repeat(MAX_CHALLENGE_LEN + 1)}),
                DbscError::Challenge,
            ),
            (
                json!({"jti": "c", "authorization": 1}),
                DbscError::Authorization,
            ),
        ] {
            let proof = sign(&key, DBSC_TYP, &claims);
            assert_eq!(check_dbsc_registration(&proof), Err(want), "{claims}");
        }
        let proof = sign(
            &key,
            DBSC_TYP,
            &json!({"jti": "c", "authorization": "code"}),
        );
        assert_eq!(
            check_dbsc_registration(&proof)
                .unwrap()
                .authorization
                .as_deref(),
            Some("code")
        );
        let dpop = sign(&key, "dpop+jwt", &json!({"jti": "c"}));
        assert!(matches!(
            check_dbsc_registration(&dpop),
            Err(DbscError::Proof(ProofError::Type { .. }))
        ));
    }

    /// A proof by `key` whose header has no `jwk` (as a refresh proof is).
    fn strip_jwk(key: &ProofKey, claims: &Value) -> String {
        key.sign_without_jwk(DBSC_TYP, claims.as_object().unwrap())
            .unwrap()
    }
}
