//! DPoP (RFC 9449): what a verified proof's claims must say for one request. The proof's
//! signature and key are [`verify_proof`]'s; here are `htm`, `htu` (compared after RFC 3986
//! normalization), `iat` within a window, `jti`, `ath` and `nonce` (handed back for the
//! caller, who keeps the replay cache and seals nonces).

use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{verify_proof, ProofError, ProofOptions};
use crate::b64;
use crate::error::truncate;
use crate::time::UnixTime;

/// The `typ` of a DPoP proof.
pub const DPOP_TYP: &str = "dpop+jwt";

/// The longest `jti` accepted (RFC 9449 asks for at least 96 random bits; a client's UUID
/// or 32 base64url characters is typical).
pub const MAX_JTI_LEN: usize = 256;

/// What one request requires of its DPoP proof.
#[derive(Clone, Copy, Debug)]
pub struct DpopRequest<'a> {
    /// The request's method (`GET`, `POST`), compared exactly.
    pub method: &'a str,
    /// The request's URI as the client addressed it: scheme, authority and path (a query or
    /// fragment is ignored). Compared with the proof's `htu` after normalization.
    pub uri: &'a str,
    /// The access token the request carries, whose hash the proof's `ath` must be; `None`
    /// for a login, whose proof has no token to name.
    pub access_token: Option<&'a str>,
    /// Now.
    pub now: UnixTime,
    /// How old `iat` may be.
    pub max_age: Duration,
    /// How far ahead of `now` `iat` may be (the client's clock running fast).
    pub leeway: Duration,
}

/// A DPoP proof that is right for its request. The replay cache and the nonce are the
/// caller's: [`jti`](Self::jti) and [`nonce`](Self::nonce) are what it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpopProof {
    /// The key's RFC 7638 thumbprint (what a bound token names as `cnf.jkt`).
    pub thumbprint: String,
    /// The proof's id, unique per proof.
    pub jti: String,
    /// When the client made it.
    pub iat: UnixTime,
    /// The server nonce it carries, if any.
    pub nonce: Option<String>,
}

/// Why a DPoP proof was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DpopError {
    /// The JWS itself was refused (size, form, `typ`, `alg`, key, signature).
    Proof(ProofError),
    /// A required claim is missing or of the wrong JSON type.
    Claim {
        /// The claim: `htm`, `htu`, `iat`, `jti`, `ath` or `nonce`.
        claim: &'static str,
    },
    /// `htm` is not the request's method.
    Method {
        /// The `htm` found, shortened.
        found: String,
    },
    /// `htu` is not the request's URI.
    Uri {
        /// The `htu` found, shortened.
        found: String,
    },
    /// `iat` is older than the window.
    Stale,
    /// `iat` is further ahead than the leeway.
    Future,
    /// `jti` is empty or longer than [`MAX_JTI_LEN`].
    Jti,
    /// `ath` is not the hash of the access token.
    AccessTokenHash,
}

impl DpopError {
    /// A short label, for metrics and logs.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Proof(_) => "proof",
            Self::Claim { .. } => "claim",
            Self::Method { .. } => "htm",
            Self::Uri { .. } => "htu",
            Self::Stale => "iat_stale",
            Self::Future => "iat_future",
            Self::Jti => "jti",
            Self::AccessTokenHash => "ath",
        }
    }
}

impl std::fmt::Display for DpopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Proof(e) => write!(f, "DPoP proof refused: {e}"),
            Self::Claim { claim } => write!(f, "DPoP proof without a valid `{claim}`"),
            Self::Method { found } => write!(f, "DPoP proof for another method ({found})"),
            Self::Uri { found } => write!(f, "DPoP proof for another URI ({found})"),
            Self::Stale => f.write_str("DPoP proof too old"),
            Self::Future => f.write_str("DPoP proof issued in the future"),
            Self::Jti => f.write_str("DPoP proof with an empty or overlong `jti`"),
            Self::AccessTokenHash => f.write_str("DPoP proof for another access token"),
        }
    }
}

impl std::error::Error for DpopError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Proof(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ProofError> for DpopError {
    fn from(e: ProofError) -> Self {
        Self::Proof(e)
    }
}

/// Verifies a DPoP proof for a request (RFC 9449 §4.3, steps 1–11 but the replay check and
/// the nonce, which are the caller's).
///
/// ```
/// use std::time::Duration;
/// use jwe_session_core::{access_token_hash, check_dpop, DpopRequest, ProofKey, UnixTime};
///
/// let key = ProofKey::generate().unwrap();
/// let token = "eyJ...";
/// let claims = serde_json::json!({
///     "htm": "GET", "htu": "https://API.example.com:443/me", "iat": 1_700_000_000,
///     "jti": "e1j3V_bKic8-LAEB", "ath": access_token_hash(token),
/// });
/// let proof = key.sign("dpop+jwt", claims.as_object().unwrap()).unwrap();
/// let request = DpopRequest {
///     method: "GET",
///     uri: "https://api.example.com/me?page=2",
///     access_token: Some(token),
///     now: UnixTime::from_secs(1_700_000_010),
///     max_age: Duration::from_secs(60),
///     leeway: Duration::from_secs(5),
/// };
/// let checked = check_dpop(&proof, &request).unwrap();
/// assert_eq!(checked.thumbprint, key.thumbprint());
/// ```
///
/// # Errors
/// The first [`DpopError`] that applies.
pub fn check_dpop(proof: &str, req: &DpopRequest<'_>) -> Result<DpopProof, DpopError> {
    let verified = verify_proof(proof, &ProofOptions::new(DPOP_TYP))?;
    let claims = verified.claims();
    let string = |claim: &'static str| {
        claims
            .get(claim)
            .and_then(Value::as_str)
            .ok_or(DpopError::Claim { claim })
    };
    let htm = string("htm")?;
    if htm != req.method {
        return Err(DpopError::Method {
            found: truncate(htm),
        });
    }
    let htu = string("htu")?;
    match (normalize_htu(htu), normalize_htu(req.uri)) {
        (Some(a), Some(b)) if a == b => {}
        _ => {
            return Err(DpopError::Uri {
                found: truncate(htu),
            })
        }
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_u64)
        .map(UnixTime::from_secs)
        .ok_or(DpopError::Claim { claim: "iat" })?;
    if iat > req.now.saturating_add(req.leeway) {
        return Err(DpopError::Future);
    }
    if req.now.saturating_since(iat) > req.max_age {
        return Err(DpopError::Stale);
    }
    let jti = string("jti")?;
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err(DpopError::Jti);
    }
    if let Some(token) = req.access_token {
        let ath = string("ath")?;
        if !constant_time_eq(ath.as_bytes(), access_token_hash(token).as_bytes()) {
            return Err(DpopError::AccessTokenHash);
        }
    }
    let nonce = match claims.get("nonce") {
        None => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(_) => return Err(DpopError::Claim { claim: "nonce" }),
    };
    Ok(DpopProof {
        thumbprint: verified.thumbprint().to_owned(),
        jti: jti.to_owned(),
        iat,
        nonce,
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y))) == 0
}

/// `ath`: base64url(SHA-256(the access token's ASCII)), RFC 9449 §4.2.
#[must_use]
pub fn access_token_hash(token: &str) -> String {
    b64::encode(&Sha256::digest(token.as_bytes()))
}

/// An `http`/`https` URI as DPoP compares it (RFC 9449 §4.3 step 9, RFC 3986 §6.2.2–6.2.3):
/// scheme and host lowercased, the scheme's default port dropped, an empty path as `/`,
/// percent-encodings uppercased and those of unreserved characters decoded, dot segments
/// removed, query and fragment dropped. `None` for anything else (another scheme, no host,
/// user information, a bad port or percent-encoding, a character a URI cannot hold).
///
/// ```
/// use jwe_session_core::normalize_htu;
///
/// assert_eq!(
///     normalize_htu("HTTPS://Api.Example.COM:443/a/./b/../c%7e?x#y").as_deref(),
///     Some("https://api.example.com/a/c~"),
/// );
/// assert_eq!(normalize_htu("https://user@api.example.com/"), None);
/// ```
#[must_use]
pub fn normalize_htu(uri: &str) -> Option<String> {
    let uri = uri.split(['?', '#']).next().unwrap_or("");
    if !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    if authority.contains('@') || authority.is_empty() {
        return None;
    }
    // An IPv6 literal keeps its colons inside the brackets.
    let port_at = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => Some(i),
        _ => None,
    };
    let (host, port) = match port_at {
        Some(i) => (&authority[..i], Some(&authority[i + 1..])),
        None => (authority, None),
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) && p.len() <= 5 => {
            let n: u32 = p.parse().ok()?;
            if n > 65_535 {
                return None;
            }
            let n = n.to_string();
            (n != default_port).then_some(n)
        }
        Some(_) => return None,
    };
    let mut out = format!("{scheme}://{}", host.to_ascii_lowercase());
    if let Some(p) = port {
        out.push(':');
        out.push_str(&p);
    }
    let path = normalize_percent(if path.is_empty() { "/" } else { path })?;
    out.push_str(&remove_dot_segments(&path));
    Some(out)
}

/// Uppercases percent-encodings and decodes those of unreserved characters.
fn normalize_percent(path: &str) -> Option<String> {
    let b = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c != b'%' {
            out.push(char::from(c));
            i += 1;
            continue;
        }
        let hex = b.get(i + 1..i + 3)?;
        let s = std::str::from_utf8(hex).ok()?;
        let v = u8::from_str_radix(s, 16).ok()?;
        if v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(v));
        } else {
            out.push('%');
            out.push_str(&s.to_ascii_uppercase());
        }
        i += 3;
    }
    Some(out)
}

/// RFC 3986 §5.2.4, for an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut parts = path.split('/').skip(1).peekable();
    let mut trailing = false;
    while let Some(seg) = parts.next() {
        let last = parts.peek().is_none();
        match seg {
            "." => trailing = last,
            ".." => {
                segments.pop();
                trailing = last;
            }
            s => {
                segments.push(s);
                trailing = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing || out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map};

    use super::*;
    use crate::proof::ProofKey;

    const NOW: u64 = 1_700_000_000;
    const TOKEN: &str = "the.access.token";

    fn request(access_token: Option<&str>) -> DpopRequest<'_> {
        DpopRequest {
            method: "POST",
            uri: "https://api.example.com/orders",
            access_token,
            now: UnixTime::from_secs(NOW),
            max_age: Duration::from_secs(60),
            leeway: Duration::from_secs(5),
        }
    }

    fn claims() -> Map<String, Value> {
        let Value::Object(m) = json!({
            "htm": "POST", "htu": "https://api.example.com/orders", "iat": NOW,
            "jti": "4a1b9c", "ath": access_token_hash(TOKEN),
        }) else {
            unreachable!()
        };
        m
    }

    fn with(f: impl FnOnce(&mut Map<String, Value>)) -> Map<String, Value> {
        let mut c = claims();
        f(&mut c);
        c
    }

    #[test]
    fn a_right_proof_passes_and_says_who_made_it() {
        let key = ProofKey::generate().unwrap();
        let proof = key.sign(DPOP_TYP, &claims()).unwrap();
        let ok = check_dpop(&proof, &request(Some(TOKEN))).unwrap();
        assert_eq!(ok.thumbprint, key.thumbprint());
        assert_eq!(ok.jti, "4a1b9c");
        assert_eq!(ok.iat, UnixTime::from_secs(NOW));
        assert_eq!(ok.nonce, None);
        // A login's proof names no token; an `ath` it has anyway is not judged.
        assert!(check_dpop(&proof, &request(None)).is_ok());
        let nonce = key
            .sign(
                DPOP_TYP,
                &with(|c| drop(c.insert("nonce".into(), "n1".into()))),
            )
            .unwrap();
        assert_eq!(
            check_dpop(&nonce, &request(None)).unwrap().nonce.as_deref(),
            Some("n1")
        );
    }

    /// Every claim check, each alone: the proof is otherwise right.
    #[test]
    fn each_claim_check_refuses_on_its_own() {
        let key = ProofKey::generate().unwrap();
        let cases: Vec<(Map<String, Value>, DpopError)> = vec![
            (
                with(|c| drop(c.remove("htm"))),
                DpopError::Claim { claim: "htm" },
            ),
            (
                with(|c| drop(c.insert("htm".into(), 1.into()))),
                DpopError::Claim { claim: "htm" },
            ),
            (
                with(|c| drop(c.insert("htm".into(), "post".into()))),
                DpopError::Method {
                    found: "post".into(),
                },
            ),
            (
                with(|c| drop(c.remove("htu"))),
                DpopError::Claim { claim: "htu" },
            ),
            (
                with(|c| drop(c.insert("htu".into(), "https://api.example.com/orders/1".into()))),
                DpopError::Uri {
                    found: "https://api.example.com/orders/1".into(),
                },
            ),
            (
                with(|c| drop(c.insert("htu".into(), "http://api.example.com/orders".into()))),
                DpopError::Uri {
                    found: "http://api.example.com/orders".into(),
                },
            ),
            (
                with(|c| drop(c.insert("htu".into(), "https://evil.example/orders".into()))),
                DpopError::Uri {
                    found: "https://evil.example/orders".into(),
                },
            ),
            (
                with(|c| drop(c.remove("iat"))),
                DpopError::Claim { claim: "iat" },
            ),
            (
                with(|c| drop(c.insert("iat".into(), "1700000000".into()))),
                DpopError::Claim { claim: "iat" },
            ),
            (
                with(|c| drop(c.insert("iat".into(), json!(1.7e9)))),
                DpopError::Claim { claim: "iat" },
            ),
            (
                with(|c| drop(c.insert("iat".into(), (NOW - 61).into()))),
                DpopError::Stale,
            ),
            (
                with(|c| drop(c.insert("iat".into(), (NOW + 6).into()))),
                DpopError::Future,
            ),
            (
                with(|c| drop(c.remove("jti"))),
                DpopError::Claim { claim: "jti" },
            ),
            (
                with(|c| drop(c.insert("jti".into(), "".into()))),
                DpopError::Jti,
            ),
            (
                with(|c| drop(c.insert("jti".into(), "j".repeat(257).into()))),
                DpopError::Jti,
            ),
            (
                with(|c| drop(c.remove("ath"))),
                DpopError::Claim { claim: "ath" },
            ),
            (
                with(|c| drop(c.insert("ath".into(), access_token_hash("other").into()))),
                DpopError::AccessTokenHash,
            ),
            (
                with(|c| drop(c.insert("nonce".into(), 5.into()))),
                DpopError::Claim { claim: "nonce" },
            ),
        ];
        for (claims, expected) in cases {
            let proof = key.sign(DPOP_TYP, &claims).unwrap();
            assert_eq!(
                check_dpop(&proof, &request(Some(TOKEN))),
                Err(expected),
                "{claims:?}"
            );
        }
        // The window's edges are inside it.
        for iat in [NOW - 60, NOW + 5] {
            let proof = key
                .sign(
                    DPOP_TYP,
                    &with(|c| drop(c.insert("iat".into(), iat.into()))),
                )
                .unwrap();
            assert!(check_dpop(&proof, &request(Some(TOKEN))).is_ok(), "{iat}");
        }
        // Another `typ` is the JWS check's refusal.
        let jwt = key.sign("JWT", &claims()).unwrap();
        assert!(matches!(
            check_dpop(&jwt, &request(Some(TOKEN))),
            Err(DpopError::Proof(ProofError::Type { .. }))
        ));
    }

    #[test]
    fn uris_compare_after_normalization() {
        let same = [
            (
                "https://api.example.com/orders",
                "HTTPS://API.EXAMPLE.COM/orders",
            ),
            (
                "https://api.example.com/orders",
                "https://api.example.com:443/orders",
            ),
            ("http://a.example/", "http://a.example:80"),
            ("http://a.example/", "http://a.example"),
            ("https://a.example/x", "https://a.example/x?q=1#f"),
            ("https://a.example/%7Euser", "https://a.example/~user"),
            ("https://a.example/a%2fb", "https://a.example/a%2Fb"),
            ("https://a.example/a/b/../c", "https://a.example/a/./c"),
            ("https://[::1]:8443/x", "https://[::1]:8443/x"),
            ("https://a.example:08443/x", "https://a.example:8443/x"),
        ];
        for (a, b) in same {
            assert_eq!(normalize_htu(a), normalize_htu(b), "{a} vs {b}");
            assert!(normalize_htu(a).is_some(), "{a}");
        }
        let different = [
            ("https://a.example/x", "https://a.example/X"),
            ("https://a.example/x", "http://a.example/x"),
            ("https://a.example/x", "https://a.example:8443/x"),
            ("https://a.example/a%2Fb", "https://a.example/a/b"),
            ("https://a.example/x", "https://a.example/x/"),
        ];
        for (a, b) in different {
            assert_ne!(normalize_htu(a), normalize_htu(b), "{a} vs {b}");
        }
        for bad in [
            "",
            "/orders",
            "ftp://a.example/",
            "https://",
            "https://:443/",
            "https://u:p@a.example/",
            "https://a.example:99999/",
            "https://a.example:8x/",
            "https://a.example/%zz",
            "https://a.example/%4",
            "https://a.example/a b",
            "https://a.example/\u{e9}",
        ] {
            assert_eq!(normalize_htu(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Normalizing never panics, a normalized URI is its own normal form, and case in
        /// the scheme and host never matters.
        #[test]
        fn normalization_is_idempotent_and_case_blind(
            scheme in "(?i:https?)",
            host in "[a-zA-Z0-9.-]{1,20}",
            port in proptest::option::of(0u32..70_000),
            path in "(/[a-zA-Z0-9._~%-]{0,8}){0,4}",
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let uri = format!("{scheme}://{host}{port}{path}");
            if let Some(n) = normalize_htu(&uri) {
                proptest::prop_assert_eq!(normalize_htu(&n), Some(n.clone()));
                let upper = format!("{}://{}{port}{path}", scheme.to_uppercase(), host.to_uppercase());
                proptest::prop_assert_eq!(normalize_htu(&upper), Some(n));
            }
        }

        #[test]
        fn anything_normalizes_or_is_refused(s in ".{0,80}") {
            let _ = normalize_htu(&s);
        }
    }

    #[test]
    fn the_access_token_hash_is_rfc_9449s() {
        // RFC 9449 §7.1's example token and its `ath`.
        assert_eq!(
            access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }
}
