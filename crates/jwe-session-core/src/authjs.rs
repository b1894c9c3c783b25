//! Auth.js (v5, `@auth/core`) and NextAuth (v4) session cookies: the keys their secrets
//! derive, their cookie names and chunks, and their claims. Opening goes through the same
//! strict [`KeyRing::open`](crate::KeyRing::open) as this crate's own tokens: the ring
//! built here decides the algorithm, never the token.
//!
//! What the packages do (checked against `@auth/core` 0.41 `jwt.js` and `next-auth` 4.24
//! `jwt/index.js`, and by the interop tests, which mint with their own `encode`):
//!
//! | | Auth.js v5 | NextAuth v4 |
//! |---|---|---|
//! | cookie | `authjs.session-token`, `__Secure-authjs.session-token` on HTTPS | `next-auth.session-token`, `__Secure-next-auth.session-token` |
//! | `enc` | `A256CBC-HS512` (and `A256GCM` when opening) | `A256GCM` |
//! | key | HKDF-SHA-256(secret, salt = cookie name, info = `Auth.js Generated Encryption Key (<cookie name>)`), 64 bytes (32 for A256GCM) | HKDF-SHA-256(secret, salt = "", info = `NextAuth.js Generated Encryption Key`), 32 bytes |
//! | `kid` | RFC 7638 thumbprint of the key as an `oct` JWK (SHA-512 for 64 bytes, SHA-256 for 32) | none |
//! | secrets | several (rotation): the one whose kid matches; no kid → the first | one |
//! | chunks | over 3,936 characters: `<name>.0`, `<name>.1`, … | over 3,933 |
//! | clock tolerance | 15 s | 15 s |

use std::borrow::Cow;
use std::time::Duration;

use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use crate::b64;
use crate::error::KeyError;
use crate::key::{Key, Kidless};
use crate::names::Enc;
use crate::ring::KeyRing;

/// Which Auth.js writes the cookies: the name, chunk size and key derivation follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthJsVersion {
    /// Auth.js v5 (`@auth/core`, `next-auth@5`).
    V5,
    /// NextAuth.js v4 (`next-auth@4`).
    V4,
}

/// Auth.js's clock tolerance for `exp` and `nbf` (its `decode` passes `clockTolerance: 15`).
pub const AUTHJS_CLOCK_TOLERANCE: Duration = Duration::from_secs(15);

/// The most chunks one Auth.js session cookie is read from (16 × 3,936 characters is far
/// past what any browser sends in one `Cookie` header).
pub const AUTHJS_MAX_CHUNKS: usize = 16;

impl AuthJsVersion {
    /// The session cookie's name: with the `__Secure-` prefix when the app runs on HTTPS
    /// (Auth.js's `useSecureCookies`).
    #[must_use]
    pub const fn cookie_name(self, secure: bool) -> &'static str {
        match (self, secure) {
            (Self::V5, false) => "authjs.session-token",
            (Self::V5, true) => "__Secure-authjs.session-token",
            (Self::V4, false) => "next-auth.session-token",
            (Self::V4, true) => "__Secure-next-auth.session-token",
        }
    }

    /// The longest value one cookie holds before the token is split into chunks: 4,096
    /// less Auth.js's estimate of an empty cookie's size (160 in v5, 163 in v4).
    #[must_use]
    pub const fn chunk_size(self) -> usize {
        match self {
            Self::V5 => 4096 - 160,
            Self::V4 => 4096 - 163,
        }
    }

    /// The key ring this version's `decode` opens `cookie_name`'s tokens with: for v5
    /// [`KeyRing::from_authjs_secrets`], for v4 [`KeyRing::from_nextauth_secret`] (the
    /// first secret; v4 has one).
    ///
    /// # Errors
    /// As those two.
    pub fn ring<S: AsRef<[u8]>>(
        self,
        secrets: &[S],
        cookie_name: &str,
    ) -> Result<KeyRing, KeyError> {
        match self {
            Self::V5 => KeyRing::from_authjs_secrets(secrets, cookie_name),
            Self::V4 => {
                let first = secrets.first().ok_or(KeyError::EmptySet)?;
                KeyRing::from_nextauth_secret(first.as_ref())
            }
        }
    }
}

impl KeyRing {
    /// The ring Auth.js v5 (`@auth/core`) seals and opens the cookie `cookie_name` with:
    /// for each secret (newest first, as in `AUTH_SECRET`'s rotation list) an
    /// `A256CBC-HS512` key and an `A256GCM` key, each derived with HKDF-SHA-256 (salt: the
    /// cookie name) and named by its RFC 7638 thumbprint, as Auth.js names them. The first
    /// secret's `A256CBC-HS512` key seals; a token without a kid opens under the first
    /// secret's key of its `enc`.
    ///
    /// The cookie name is the salt: a ring for `authjs.session-token` does not open
    /// `__Secure-authjs.session-token`'s tokens ([`OpenError::UnknownKid`](crate::OpenError::UnknownKid)).
    ///
    /// ```
    /// use jwe_session_core::{AuthJsClaims, Claims, KeyRing, TokenOptions};
    ///
    /// let ring = KeyRing::from_authjs_secrets(&["s3cr3t-from-AUTH_SECRET"], "authjs.session-token")?;
    /// let token = ring.seal(&serde_json::json!({"sub": "alice", "email": "a@example.com"}), &TokenOptions::new())?;
    /// let opened = ring.open::<Claims<AuthJsClaims>>(token.as_str(), &TokenOptions::new())?;
    /// assert_eq!(opened.payload().app.email.as_deref(), Some("a@example.com"));
    /// assert!(token.as_str().starts_with("eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2Q0JDLUhTNTEyIiwia2lkIjoi"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`KeyError::EmptySet`] without a secret, [`KeyError::EmptySecret`] for an empty one,
    /// [`KeyError::DuplicateKid`] for the same secret twice.
    pub fn from_authjs_secrets<S: AsRef<[u8]>>(
        secrets: &[S],
        cookie_name: &str,
    ) -> Result<Self, KeyError> {
        if secrets.is_empty() {
            return Err(KeyError::EmptySet);
        }
        let info = format!("Auth.js Generated Encryption Key ({cookie_name})");
        let mut keys = Vec::with_capacity(2 * secrets.len());
        for (index, secret) in secrets.iter().enumerate() {
            let secret = secret.as_ref();
            if secret.is_empty() {
                return Err(KeyError::EmptySecret { index });
            }
            let kidless = if index == 0 {
                Kidless::Open
            } else {
                Kidless::Refuse
            };
            for enc in [Enc::A256CbcHs512, Enc::A256Gcm] {
                let bytes = hkdf_sha256(
                    secret,
                    cookie_name.as_bytes(),
                    info.as_bytes(),
                    enc.key_len(),
                );
                let kid = oct_thumbprint(&bytes);
                keys.push(Key::derived(&kid, bytes, kidless)?);
            }
        }
        Self::new(keys, None)
    }

    /// The ring NextAuth v4 (`next-auth@4`) seals and opens its session cookie with: one
    /// `A256GCM` key, HKDF-SHA-256(secret, no salt, `NextAuth.js Generated Encryption
    /// Key`). v4 writes no kid and opens tokens without one; so does this ring's key (its
    /// kid, for [`Opened::kid`](crate::Opened::kid), is its SHA-256 thumbprint). The cookie
    /// name plays no part, so one ring serves both of v4's names.
    ///
    /// ```
    /// use jwe_session_core::{inspect, KeyRing, TokenOptions};
    ///
    /// let ring = KeyRing::from_nextauth_secret(b"s3cr3t-from-NEXTAUTH_SECRET")?;
    /// let token = ring.seal(&serde_json::json!({"sub": "alice"}), &TokenOptions::new())?;
    /// let header = inspect(token.as_str(), &TokenOptions::new())?.header;
    /// assert_eq!(serde_json::Value::from(header), serde_json::json!({"alg": "dir", "enc": "A256GCM"}));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`KeyError::EmptySecret`] for an empty secret.
    pub fn from_nextauth_secret(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.is_empty() {
            return Err(KeyError::EmptySecret { index: 0 });
        }
        let bytes = hkdf_sha256(secret, b"", b"NextAuth.js Generated Encryption Key", 32);
        let kid = oct_thumbprint(&bytes);
        Self::new(vec![Key::derived(&kid, bytes, Kidless::Anonymous)?], None)
    }
}

/// HKDF-SHA-256 (RFC 5869) of `len` bytes; an empty salt is HKDF's default (zeros), as in
/// `@panva/hkdf`.
fn hkdf_sha256(ikm: &[u8], salt: &[u8], info: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    let mut okm = Zeroizing::new(vec![0u8; len]);
    // `len` is 32 or 64 here, far below HKDF-SHA-256's 8,160-byte limit.
    let expanded = Hkdf::<Sha256>::new(Some(salt), ikm).expand(info, &mut okm);
    debug_assert!(expanded.is_ok());
    okm
}

/// The RFC 7638 thumbprint of `key` as an `oct` JWK (`{"k":…,"kty":"oct"}`, members in
/// lexicographic order, no whitespace), hashed as Auth.js names its keys: SHA-512 for a
/// 64-byte key, SHA-256 otherwise. The JSON holds the key, so it is built in zeroizing
/// memory (unlike [`jwk_thumbprint`](crate::jwk_thumbprint)'s public keys).
fn oct_thumbprint(key: &[u8]) -> String {
    let mut json = Zeroizing::new(String::with_capacity(32 + b64::encoded_len(key.len())));
    json.push_str("{\"k\":\"");
    b64::encode_to_string(key, &mut json);
    json.push_str("\",\"kty\":\"oct\"}");
    if key.len() == 64 {
        b64::encode(&Sha512::digest(json.as_bytes()))
    } else {
        b64::encode(&Sha256::digest(json.as_bytes()))
    }
}

/// The claims Auth.js puts in a session token beside the registered ones (`sub`, `iat`,
/// `exp`, `jti`, read by [`Claims`](crate::Claims)): the user's `name`, `email` and
/// `picture` (each may be `null` or absent), and whatever the app's `jwt` callback adds,
/// read into `T`. `name`, `email` and `picture` are taken here first, so `T` must not
/// declare them (a `T` field `email` would be reported missing).
///
/// ```
/// use jwe_session_core::{AuthJsClaims, Claims};
/// use serde::Deserialize;
///
/// #[derive(Deserialize, Debug)]
/// struct Extra { role: String }
///
/// let c: Claims<AuthJsClaims<Extra>> = serde_json::from_str(
///     r#"{"name":"Alice","email":"a@example.com","picture":null,"sub":"u1","role":"admin","iat":1,"exp":2,"jti":"j"}"#,
/// )?;
/// assert_eq!((c.sub.as_deref(), c.app.email.as_deref()), (Some("u1"), Some("a@example.com")));
/// assert_eq!((c.app.picture, c.app.extra.role.as_str()), (None, "admin"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthJsClaims<T = ()> {
    /// The user's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The user's e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's picture (a URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// What the app's `jwt` callback added.
    #[serde(flatten)]
    pub extra: T,
}

impl<T> AuthJsClaims<T> {
    /// Claims with the app's part only.
    pub fn new(extra: T) -> Self {
        Self {
            name: None,
            email: None,
            picture: None,
            extra,
        }
    }
}

/// Why the session cookies a request carried do not make one Auth.js token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChunkError {
    /// The chunks are not `.0` to `.n-1` without a gap: this one is missing.
    Missing {
        /// The first missing chunk's number.
        index: usize,
    },
    /// Both the whole cookie and chunks of it: which one is the session is a guess, and
    /// this crate does not guess.
    WholeAndChunks,
    /// A chunk numbered [`AUTHJS_MAX_CHUNKS`] or more.
    TooMany,
    /// Together the chunks are longer than the token limit.
    TooLong {
        /// Their length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing { index } => write!(f, "session cookie chunk {index} is missing"),
            Self::WholeAndChunks => f.write_str("the session cookie came both whole and in chunks"),
            Self::TooMany => write!(
                f,
                "the session cookie has more than {AUTHJS_MAX_CHUNKS} chunks"
            ),
            Self::TooLong { len, max } => write!(
                f,
                "the session cookie's chunks hold {len} bytes, more than the limit of {max}"
            ),
        }
    }
}

impl std::error::Error for ChunkError {}

/// The Auth.js session token that `cookies` (name, value pairs, in the order the request
/// sent them) hold under `name`: the cookie `name` itself, or the chunks `name.0`,
/// `name.1`, … joined in numeric order. `None` when there is neither.
///
/// Strict where Auth.js's own reader guesses: chunk numbers are plain decimal (`name.01`
/// and `name.+1` are other cookies and ignored); a gap, a chunk past
/// [`AUTHJS_MAX_CHUNKS`], or the whole cookie beside chunks is an error, never a token
/// glued from parts that do not belong together. Empty values count as absent (a cleared
/// cookie), and a name sent twice counts once, the first (the most specific path).
///
/// ```
/// use jwe_session_core::{join_authjs_chunks, ChunkError};
///
/// let name = "authjs.session-token";
/// let sent = [("authjs.session-token.1", "def"), ("other", "x"), ("authjs.session-token.0", "abc")];
/// assert_eq!(join_authjs_chunks(sent, name, 100)?.as_deref(), Some("abcdef"));
/// let gap = [("authjs.session-token.0", "abc"), ("authjs.session-token.2", "ghi")];
/// assert_eq!(join_authjs_chunks(gap, name, 100), Err(ChunkError::Missing { index: 1 }));
/// # Ok::<(), ChunkError>(())
/// ```
///
/// # Errors
/// [`ChunkError`].
pub fn join_authjs_chunks<'a, I>(
    cookies: I,
    name: &str,
    max_len: usize,
) -> Result<Option<Cow<'a, str>>, ChunkError>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut whole: Option<&'a str> = None;
    let mut chunks: [Option<&'a str>; AUTHJS_MAX_CHUNKS] = [None; AUTHJS_MAX_CHUNKS];
    let mut count = 0;
    for (n, value) in cookies {
        if value.is_empty() {
            continue;
        }
        let index = match part(n, name) {
            None => continue,
            Some(Part::Whole) => {
                whole.get_or_insert(value);
                continue;
            }
            Some(Part::Chunk(index)) => index,
        };
        let slot = chunks.get_mut(index).ok_or(ChunkError::TooMany)?;
        if slot.is_none() {
            *slot = Some(value);
            count = count.max(index + 1);
        }
    }
    if count == 0 {
        return Ok(whole
            .map(|w| check_len(w, max_len))
            .transpose()?
            .map(Cow::Borrowed));
    }
    if whole.is_some() {
        return Err(ChunkError::WholeAndChunks);
    }
    let mut len = 0;
    for (index, chunk) in chunks[..count].iter().enumerate() {
        len += chunk.ok_or(ChunkError::Missing { index })?.len();
    }
    if len > max_len {
        return Err(ChunkError::TooLong { len, max: max_len });
    }
    if count == 1 {
        return Ok(chunks[0].map(Cow::Borrowed));
    }
    let mut joined = String::with_capacity(len);
    for chunk in chunks[..count].iter().flatten() {
        joined.push_str(chunk);
    }
    Ok(Some(Cow::Owned(joined)))
}

fn check_len(value: &str, max: usize) -> Result<&str, ChunkError> {
    if value.len() > max {
        return Err(ChunkError::TooLong {
            len: value.len(),
            max,
        });
    }
    Ok(value)
}

/// Whether the cookie `cookie` is the Auth.js session cookie `name` or one of its chunks
/// (`name.0`, `name.1`, … below [`AUTHJS_MAX_CHUNKS`]), as [`join_authjs_chunks`] reads
/// them: what a renewal replaces or clears, and nothing else.
///
/// ```
/// use jwe_session_core::is_authjs_cookie;
///
/// let name = "authjs.session-token";
/// assert!(is_authjs_cookie("authjs.session-token", name));
/// assert!(is_authjs_cookie("authjs.session-token.3", name));
/// assert!(!is_authjs_cookie("authjs.session-token.03", name));
/// assert!(!is_authjs_cookie("authjs.session-token-legacy", name));
/// ```
#[must_use]
pub fn is_authjs_cookie(cookie: &str, name: &str) -> bool {
    match part(cookie, name) {
        Some(Part::Whole) => true,
        Some(Part::Chunk(i)) => i < AUTHJS_MAX_CHUNKS,
        None => false,
    }
}

/// Which part of the session cookie `name` the cookie `cookie` is.
enum Part {
    /// `name` itself.
    Whole,
    /// `name.i`, `i` written plainly (any size: the callers bound it).
    Chunk(usize),
}

/// The one reading of cookie names for [`join_authjs_chunks`] and [`is_authjs_cookie`].
fn part(cookie: &str, name: &str) -> Option<Part> {
    match cookie.strip_prefix(name)? {
        "" => Some(Part::Whole),
        rest => rest
            .strip_prefix('.')
            .and_then(chunk_number)
            .map(Part::Chunk),
    }
}

/// A chunk number: ASCII digits, no sign, no leading zero (but `0` itself).
fn chunk_number(digits: &str) -> Option<usize> {
    let ok = !digits.is_empty()
        && digits.len() <= 3
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    ok.then(|| digits.parse().ok()).flatten()
}

/// The values an Auth.js session token is written as: the whole token under `name` when it
/// fits in one cookie of `version`'s chunk size, else `name.0`, `name.1`, … of that size,
/// as Auth.js's `SessionStore.chunk` splits it. (Tokens are ASCII: the split never cuts a
/// character.)
///
/// ```
/// use jwe_session_core::{split_authjs_token, AuthJsVersion};
///
/// let token = "x".repeat(5000);
/// let parts = split_authjs_token(&token, "authjs.session-token", AuthJsVersion::V5);
/// assert_eq!(parts.len(), 2);
/// assert_eq!((parts[0].0.as_str(), parts[0].1.len()), ("authjs.session-token.0", 3936));
/// assert_eq!((parts[1].0.as_str(), parts[1].1.len()), ("authjs.session-token.1", 1064));
/// ```
#[must_use]
pub fn split_authjs_token<'t>(
    token: &'t str,
    name: &str,
    version: AuthJsVersion,
) -> Vec<(String, &'t str)> {
    let size = version.chunk_size();
    if token.len() <= size {
        return vec![(name.to_owned(), token)];
    }
    let mut parts = Vec::with_capacity(token.len().div_ceil(size));
    let mut rest = token;
    while !rest.is_empty() {
        // A token is ASCII, so every cut is a character boundary; any other text is cut
        // before the character the size would split, and nothing is lost.
        let mut end = size.min(rest.len());
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (part, tail) = rest.split_at(end);
        parts.push((format!("{name}.{}", parts.len()), part));
        rest = tail;
    }
    parts
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::claims::Claims;
    use crate::error::OpenError;
    use crate::jwe::{inspect, TokenOptions};

    const RFC5869: &str = include_str!("../vectors/rfc5869.json");

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn hkdf_derives_rfc5869s_okms() {
        let v: serde_json::Value = serde_json::from_str(RFC5869).unwrap();
        let cases = v["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 3);
        for c in cases {
            let field = |n: &str| hex(c[n].as_str().unwrap());
            let okm = hkdf_sha256(
                &field("IKM"),
                &field("salt"),
                &field("info"),
                usize::try_from(c["L"].as_u64().unwrap()).unwrap(),
            );
            assert_eq!(
                okm.as_slice(),
                field("OKM").as_slice(),
                "case {}",
                c["case"]
            );
        }
    }

    #[test]
    fn thumbprints_hash_the_canonical_oct_jwk() {
        // The canonical form by hand, hashed independently.
        let key = [7u8; 64];
        let json = format!(r#"{{"k":"{}","kty":"oct"}}"#, b64::encode(&key));
        assert_eq!(
            oct_thumbprint(&key),
            b64::encode(&Sha512::digest(json.as_bytes()))
        );
        assert_eq!(oct_thumbprint(&key).len(), 86);
        let key = [7u8; 32];
        let json = format!(r#"{{"k":"{}","kty":"oct"}}"#, b64::encode(&key));
        assert_eq!(
            oct_thumbprint(&key),
            b64::encode(&Sha256::digest(json.as_bytes()))
        );
        // And it agrees with the RFC 7638 code the proofs use.
        let jwk: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json).unwrap();
        assert_eq!(crate::jwk_thumbprint(&jwk).unwrap(), oct_thumbprint(&key));
    }

    #[test]
    fn v5_ring_seals_cbc_names_keys_by_thumbprint_and_opens_gcm_too() {
        let name = "authjs.session-token";
        let ring = KeyRing::from_authjs_secrets(&["new-secret", "old-secret"], name).unwrap();
        assert_eq!(ring.keys().len(), 4);
        assert_eq!(ring.active().enc(), Enc::A256CbcHs512);
        let opts = TokenOptions::new();
        let token = ring.seal(&serde_json::json!({"sub": "a"}), &opts).unwrap();
        let header = inspect(token.as_str(), &opts).unwrap().header;
        assert_eq!(
            header.len(),
            3,
            "alg, enc, kid and nothing else: {header:?}"
        );
        assert_eq!(header["enc"], "A256CBC-HS512");
        assert_eq!(header["kid"].as_str().unwrap().len(), 86);

        // The old secret's ring opens nothing of the new one's, and the other way round.
        let old = KeyRing::from_authjs_secrets(&["old-secret"], name).unwrap();
        assert!(matches!(
            old.open::<serde_json::Value>(token.as_str(), &opts),
            Err(OpenError::UnknownKid { .. })
        ));
        let old_token = old.seal(&serde_json::json!({"sub": "b"}), &opts).unwrap();
        assert_eq!(
            ring.open::<serde_json::Value>(old_token.as_str(), &opts)
                .unwrap()
                .payload()["sub"],
            "b"
        );
        // Another cookie name is another salt: another key.
        let secure =
            KeyRing::from_authjs_secrets(&["new-secret"], "__Secure-authjs.session-token").unwrap();
        assert!(matches!(
            secure.open::<serde_json::Value>(token.as_str(), &opts),
            Err(OpenError::UnknownKid { .. })
        ));
        // The A256GCM key of a secret opens tokens sealed with it.
        let gcm = ring
            .seal_bytes_with_kid(ring.keys()[1].kid(), b"{}", &opts)
            .unwrap();
        assert_eq!(
            inspect(gcm.as_str(), &opts).unwrap().header["enc"],
            "A256GCM"
        );
        assert!(ring.open::<serde_json::Value>(gcm.as_str(), &opts).is_ok());
    }

    /// A token's header re-encoded without its kid, the rest as it was (the AAD changes, so
    /// the tag no longer verifies unless the header is the one the token was sealed with).
    fn without_kid(ring: &KeyRing, enc: Enc, payload: &[u8]) -> String {
        let key = ring.keys().iter().find(|k| k.enc() == enc).unwrap();
        let header = crate::header::encode(None, enc, None);
        let iv = [9u8; 16];
        crate::jwe::seal_raw(
            key,
            &header,
            &iv[..enc.iv_len()],
            Zeroizing::new(payload.to_vec()),
        )
        .unwrap()
        .into_string()
    }

    #[test]
    fn tokens_without_a_kid_open_under_the_first_secret_by_their_enc() {
        let name = "authjs.session-token";
        let ring = KeyRing::from_authjs_secrets(&["first", "second"], name).unwrap();
        let opts = TokenOptions::new();
        for enc in [Enc::A256CbcHs512, Enc::A256Gcm] {
            let token = without_kid(&ring, enc, br#"{"sub":"k"}"#);
            let opened = ring.open::<serde_json::Value>(&token, &opts).unwrap();
            assert_eq!(opened.payload()["sub"], "k");
        }
        // Sealed under the second secret without a kid: not found, as in Auth.js.
        let second = KeyRing::from_authjs_secrets(&["second"], name).unwrap();
        let token = without_kid(&second, Enc::A256CbcHs512, b"{}");
        assert!(matches!(
            ring.open::<serde_json::Value>(&token, &opts),
            Err(OpenError::Decrypt)
        ));
        // A JWK Set ring still wants a kid.
        let plain = KeyRing::generate();
        let token = without_kid(&plain, Enc::A256Gcm, b"{}");
        assert!(matches!(
            plain.open::<serde_json::Value>(&token, &opts),
            Err(OpenError::MissingHeader { field: "kid" })
        ));
    }

    #[test]
    fn v4_ring_writes_and_opens_tokens_without_a_kid() {
        let ring = KeyRing::from_nextauth_secret(b"v4-secret").unwrap();
        let opts = TokenOptions::new();
        let token = ring.seal(&serde_json::json!({"sub": "c"}), &opts).unwrap();
        let header = inspect(token.as_str(), &opts).unwrap().header;
        assert_eq!(
            serde_json::Value::from(header),
            serde_json::json!({"alg":"dir","enc":"A256GCM"})
        );
        // The strict path and the fast path agree.
        let strict = ring.open_strict(token.as_str(), &opts).unwrap();
        assert_eq!(strict.payload().as_slice(), br#"{"sub":"c"}"#);
        assert!(ring.open_usual(token.as_str(), &opts).unwrap().is_ok());
        // Another secret: the tag fails.
        let other = KeyRing::from_nextauth_secret(b"v4-other").unwrap();
        assert!(matches!(
            other.open::<serde_json::Value>(token.as_str(), &opts),
            Err(OpenError::Decrypt)
        ));
        // A CBC token under a v4 ring: its enc is not the key's.
        let v5 = KeyRing::from_authjs_secrets(&["v4-secret"], "next-auth.session-token").unwrap();
        let cbc = without_kid(&v5, Enc::A256CbcHs512, b"{}");
        assert!(matches!(
            ring.open::<serde_json::Value>(&cbc, &opts),
            Err(OpenError::EncMismatch { .. })
        ));
    }

    #[test]
    fn empty_secrets_are_refused() {
        let none: [&str; 0] = [];
        assert!(matches!(
            KeyRing::from_authjs_secrets(&none, "n"),
            Err(KeyError::EmptySet)
        ));
        assert!(matches!(
            KeyRing::from_authjs_secrets(&["a", ""], "n"),
            Err(KeyError::EmptySecret { index: 1 })
        ));
        assert!(matches!(
            KeyRing::from_nextauth_secret(b""),
            Err(KeyError::EmptySecret { index: 0 })
        ));
        assert!(matches!(
            KeyRing::from_authjs_secrets(&["a", "a"], "n"),
            Err(KeyError::DuplicateKid { .. })
        ));
    }

    #[test]
    fn every_byte_of_a_cbc_token_is_covered() {
        let ring = KeyRing::from_authjs_secrets(&["tamper"], "authjs.session-token").unwrap();
        let opts = TokenOptions::new();
        let token = ring
            .seal(&serde_json::json!({"sub": "t"}), &opts)
            .unwrap()
            .into_string();
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let Ok(t) = String::from_utf8(bytes) else {
                continue;
            };
            assert!(
                ring.open::<Claims<AuthJsClaims>>(&t, &opts).is_err(),
                "byte {i} changed and the token still opened"
            );
        }
    }

    #[test]
    fn claims_read_nulls_and_extras() {
        let c: Claims<AuthJsClaims<serde_json::Map<String, serde_json::Value>>> =
            serde_json::from_str(
                r#"{"name":null,"email":"e@x","sub":"s","iat":1,"exp":2,"jti":"j","role":"r"}"#,
            )
            .unwrap();
        assert_eq!(c.app.name, None);
        assert_eq!(c.app.extra["role"], "r");
        assert!(
            !c.app.extra.contains_key("sub"),
            "registered claims stay out of T"
        );
        let c: Claims<AuthJsClaims> = serde_json::from_str(r#"{"sub":"s","picture":"p"}"#).unwrap();
        assert_eq!(c.app.picture.as_deref(), Some("p"));
        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(back, serde_json::json!({"sub":"s","picture":"p"}));
    }

    #[test]
    fn chunks_join_in_order_and_refuse_what_does_not_fit() {
        let n = "authjs.session-token";
        let j = |c: &[(&'static str, &'static str)]| join_authjs_chunks(c.iter().copied(), n, 64);
        assert_eq!(j(&[]).unwrap(), None);
        assert_eq!(j(&[("other", "x")]).unwrap(), None);
        assert_eq!(j(&[(n, "whole")]).unwrap().as_deref(), Some("whole"));
        assert_eq!(j(&[(n, "")]).unwrap(), None, "a cleared cookie");
        let c = [
            ("authjs.session-token.2", "c"),
            ("authjs.session-token.0", "a"),
            ("authjs.session-token.1", "b"),
        ];
        assert_eq!(j(&c).unwrap().as_deref(), Some("abc"));
        // Numeric, not lexical, order.
        let many: Vec<(String, String)> = (0..12)
            .map(|i| (format!("{n}.{i}"), format!("{i},")))
            .collect();
        let joined = join_authjs_chunks(
            many.iter().rev().map(|(a, b)| (a.as_str(), b.as_str())),
            n,
            64,
        )
        .unwrap()
        .unwrap();
        assert_eq!(joined, "0,1,2,3,4,5,6,7,8,9,10,11,");
        assert_eq!(
            j(&[("authjs.session-token.1", "b")]),
            Err(ChunkError::Missing { index: 0 })
        );
        assert_eq!(
            j(&[("authjs.session-token.0", "a"), (n, "w")]),
            Err(ChunkError::WholeAndChunks)
        );
        assert_eq!(
            j(&[("authjs.session-token.16", "a")]),
            Err(ChunkError::TooMany)
        );
        // Not chunk names: ignored.
        for odd in [
            "authjs.session-token.01",
            "authjs.session-token.+1",
            "authjs.session-token.",
            "authjs.session-token.x",
            "authjs.session-tokenx",
        ] {
            assert_eq!(
                j(&[(odd, "zzz"), (n, "w")]).unwrap().as_deref(),
                Some("w"),
                "{odd}"
            );
        }
        // The first of a repeated name counts.
        assert_eq!(
            j(&[(n, "first"), (n, "second")]).unwrap().as_deref(),
            Some("first")
        );
        assert!(matches!(
            j(&[(n, &*"x".repeat(65).leak())]),
            Err(ChunkError::TooLong { len: 65, max: 64 })
        ));
    }

    #[test]
    fn splitting_uses_each_versions_size() {
        let t = "y".repeat(3936);
        assert_eq!(
            split_authjs_token(&t, "n", AuthJsVersion::V5),
            vec![("n".to_owned(), t.as_str())]
        );
        let t = "y".repeat(3934);
        let parts = split_authjs_token(&t, "n", AuthJsVersion::V4);
        assert_eq!(
            parts.iter().map(|p| p.1.len()).collect::<Vec<_>>(),
            [3933, 1]
        );
        assert_eq!(parts[1].0, "n.1");
    }

    #[test]
    fn text_that_is_not_a_token_is_cut_between_characters() {
        // Byte 3936 (v5's chunk size) falls inside an `é`: nothing may be lost there.
        let t = format!("x{}", "é".repeat(2000));
        let parts = split_authjs_token(&t, "n", AuthJsVersion::V5);
        assert_eq!(
            parts.iter().map(|p| p.1.len()).collect::<Vec<_>>(),
            [3935, 66]
        );
        let joined = join_authjs_chunks(parts.iter().map(|(n, v)| (n.as_str(), *v)), "n", 1 << 20);
        assert_eq!(joined.unwrap().as_deref(), Some(t.as_str()));
    }

    proptest! {
        /// Whatever is split is joined back to the same token, in any order the browser
        /// sends the cookies.
        #[test]
        fn split_then_join_is_the_identity(len in 1usize..20_000, rotate in 0usize..8, v4 in any::<bool>()) {
            let version = if v4 { AuthJsVersion::V4 } else { AuthJsVersion::V5 };
            let token: String = (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            let mut parts = split_authjs_token(&token, "authjs.session-token", version);
            let r = rotate % parts.len();
            parts.rotate_left(r);
            let joined = join_authjs_chunks(parts.iter().map(|(n, v)| (n.as_str(), *v)), "authjs.session-token", 1 << 20).unwrap();
            prop_assert_eq!(joined.as_deref(), Some(token.as_str()));
        }

        /// Any cookie names and values: an answer, never a panic.
        #[test]
        fn joining_never_panics(pairs in proptest::collection::vec(("(authjs\\.session-token)?[.0-9a-z+]{0,4}", "[ -~]{0,8}"), 0..12)) {
            let _ = join_authjs_chunks(pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())), "authjs.session-token", 40);
        }
    }
}
