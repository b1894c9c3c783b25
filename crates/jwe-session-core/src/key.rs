//! Content-encryption keys: generation, `oct` JWK parsing, and the AES-GCM key schedule.

use std::fmt;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aes_gcm::aead;
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::aes::Aes192;
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::cbc_hs::{self, CbcHs512, Refused};
use crate::error::{truncate, KeyError};
use crate::header::{Headers, Written};
use crate::names::Enc;
use crate::time::UnixTime;

/// The most tokens one key may seal with random 96-bit IVs: 2^32
/// (NIST SP 800-38D §8.3, RFC 7518 §8.4). Past it, sealing fails with
/// [`SealError::KeyExhausted`](crate::SealError::KeyExhausted).
pub const SEAL_LIMIT: u64 = 1 << 32;

/// The first seal count at which a warning is logged (a quarter of [`SEAL_LIMIT`]); it is
/// logged again at every further 2^28 tokens.
pub const SEAL_WARN_AT: u64 = 1 << 30;

const SEAL_WARN_EVERY: u64 = 1 << 28;

/// The expanded AES key schedule and GHASH key (or, for CBC, the keyed MAC), built once
/// per key. The `aes`, `polyval` and `hmac` crates zeroize them on drop (their `zeroize`
/// features are enabled).
enum Cipher {
    A128(Box<Aes128Gcm>),
    A192(Box<AesGcm<Aes192, U12>>),
    A256(Box<Aes256Gcm>),
    CbcHs512(Box<CbcHs512>),
}

/// A tag as the cipher made it: 16 bytes for AES-GCM, 32 for `A256CBC-HS512`.
pub(crate) struct Tag {
    bytes: [u8; cbc_hs::TAG_LEN],
    len: usize,
}

impl Tag {
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// A content-encryption key with its kid.
///
/// The key bytes live in zeroizing memory, are never compared with `==`, and never printed:
/// `Debug` shows the kid only. Each key counts the tokens it sealed, because a key may seal
/// at most [`SEAL_LIMIT`] tokens with random IVs.
///
/// ```
/// use jwe_session_core::{Enc, Key};
///
/// let key = Key::generate("2026-11", Enc::A256Gcm)?;
/// assert_eq!(format!("{key:?}"), r#"Key { kid: "2026-11", enc: A256Gcm, can_seal: true, .. }"#);
/// # Ok::<(), jwe_session_core::KeyError>(())
/// ```
pub struct Key {
    kid: Arc<str>,
    /// The protected headers this key writes, one per purpose.
    headers: Headers,
    enc: Enc,
    can_seal: bool,
    secret: Zeroizing<Vec<u8>>,
    cipher: Cipher,
    seals: Arc<AtomicU64>,
    /// `seals_from`: the moment this key takes over sealing (a scheduled activation).
    seals_from: Option<UnixTime>,
    /// `sealed_until`: the moment this key stopped sealing, as the CLI records it.
    sealed_until: Option<UnixTime>,
    /// Set by the ring that holds the key: a token this key sealed is left as it is before
    /// this moment and re-sealed under the active key from it on (see
    /// [`KeyRing::new`](crate::KeyRing::new)).
    pub(crate) keep_until: UnixTime,
    /// How the key treats tokens without a `kid` (Auth.js's keys only; a key of a JWK Set
    /// always writes its kid and opens only tokens that name it).
    pub(crate) kidless: Kidless,
}

/// How a key treats tokens without a `kid` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kidless {
    /// Writes its kid; opens only tokens that name it.
    Refuse,
    /// Writes its kid; also opens tokens without one, when their `enc` is its own (the
    /// first Auth.js secret's keys, as `@auth/core`'s `decode` does).
    Open,
    /// Writes no kid, and opens tokens without one (NextAuth v4's key).
    Anonymous,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Key");
        d.field("kid", &&*self.kid)
            .field("enc", &self.enc)
            .field("can_seal", &self.can_seal);
        if let Some(at) = self.seals_from {
            d.field("seals_from", &at.as_secs());
        }
        if let Some(at) = self.sealed_until {
            d.field("sealed_until", &at.as_secs());
        }
        d.finish_non_exhaustive()
    }
}

impl Key {
    /// A fresh random key of the given size from the operating system's RNG.
    ///
    /// # Errors
    /// [`KeyError::InvalidKid`] if `kid` is empty, longer than 128 bytes, or has characters
    /// other than printable ASCII (quotes and backslashes excluded).
    pub fn generate(kid: &str, enc: Enc) -> Result<Self, KeyError> {
        check_kid(kid)?;
        loop {
            let mut bytes = Zeroizing::new(vec![0u8; enc.key_len()]);
            OsRng.fill_bytes(&mut bytes);
            // A random key that happens to look like a passphrase (about 1 in 10^5 for 128
            // bits, far rarer for 256) would be refused when loaded back: draw again.
            let encoded = Zeroizing::new(crate::b64::encode(&bytes));
            if !looks_like_passphrase(&bytes) && !k_looks_like_text(&encoded) {
                return Self::build(kid, bytes, true);
            }
        }
    }

    /// A key from raw bytes (16, 24 or 32 of them).
    ///
    /// # Errors
    /// [`KeyError::TooShort`] under 128 bits, [`KeyError::BadLength`] for other lengths,
    /// [`KeyError::PassphraseLike`] if every byte is printable ASCII (a password, not a key),
    /// [`KeyError::InvalidKid`] for a bad kid.
    pub fn from_bytes(kid: &str, bytes: &[u8]) -> Result<Self, KeyError> {
        check_kid(kid)?;
        let bytes = Zeroizing::new(bytes.to_vec());
        check_material(kid, &bytes)?;
        Self::build(kid, bytes, true)
    }

    /// A key from one `oct` JWK (RFC 7517), e.g.
    /// `{"kty":"oct","kid":"2026-11","k":"<base64url>"}`.
    ///
    /// `kid` is required. `use`, if present, must be `"enc"`; `alg`, if present, `"dir"` or
    /// the `enc` that the key length implies; `key_ops`, if present, must include
    /// `"decrypt"`, and without `"encrypt"` the key only opens tokens. Two members of this
    /// crate's own, which other JOSE implementations ignore (RFC 7517 §4), schedule
    /// rotation: `seals_from` (the key takes over sealing at this moment, seconds since the
    /// epoch) and `sealed_until` (when it stopped sealing; a record for retiring it).
    ///
    /// # Errors
    /// A [`KeyError`] naming the member that is wrong. Errors never contain key material.
    pub fn from_jwk(json: &str) -> Result<Self, KeyError> {
        let repr: JwkRepr = KeyError::parse_object(json)?;
        Self::from_repr(repr)
    }

    pub(crate) fn from_repr(repr: JwkRepr) -> Result<Self, KeyError> {
        let kid = repr.kid.ok_or(KeyError::MissingKid)?;
        check_kid(&kid)?;
        if repr.kty != "oct" {
            return Err(KeyError::NotOct {
                kid,
                kty: truncate(&repr.kty),
            });
        }
        if let Some(u) = repr.use_ {
            if u != "enc" {
                return Err(KeyError::UseNotEnc {
                    kid,
                    found: truncate(&u),
                });
            }
        }
        let can_seal = match &repr.key_ops {
            None => true,
            Some(ops) => key_ops_can_seal(&kid, ops)?,
        };
        let Some(k) = repr.k else {
            return Err(KeyError::MissingK { kid });
        };
        if k_looks_like_text(&k) {
            return Err(KeyError::PassphraseLike { kid });
        }
        let Some(bytes) = crate::b64::decode(k.as_bytes()) else {
            return Err(KeyError::BadBase64 { kid });
        };
        check_material(&kid, &bytes)?;
        if let Some(alg) = repr.alg {
            let enc = Enc::from_key_len(bytes.len());
            if alg != "dir" && enc.map(Enc::as_str) != Some(alg.as_str()) {
                return Err(KeyError::AlgMismatch {
                    kid,
                    alg: truncate(&alg),
                    bytes: bytes.len(),
                });
            }
        }
        let seals_from = schedule_time(&kid, "seals_from", repr.seals_from)?;
        let sealed_until = schedule_time(&kid, "sealed_until", repr.sealed_until)?;
        Ok(Self::build(&kid, bytes, can_seal)?
            .with_seals_from(seals_from)
            .with_sealed_until(sealed_until))
    }

    fn build(kid: &str, secret: Zeroizing<Vec<u8>>, can_seal: bool) -> Result<Self, KeyError> {
        let bad_len = || KeyError::BadLength {
            kid: kid.to_owned(),
            bytes: secret.len(),
        };
        let enc = Enc::from_key_len(secret.len()).ok_or_else(bad_len)?;
        let cipher = match enc {
            Enc::A128Gcm => Cipher::A128(Box::new(
                Aes128Gcm::new_from_slice(&secret).map_err(|_| bad_len())?,
            )),
            Enc::A192Gcm => Cipher::A192(Box::new(
                AesGcm::<Aes192, U12>::new_from_slice(&secret).map_err(|_| bad_len())?,
            )),
            Enc::A256Gcm => Cipher::A256(Box::new(
                Aes256Gcm::new_from_slice(&secret).map_err(|_| bad_len())?,
            )),
            Enc::A256CbcHs512 => {
                Cipher::CbcHs512(Box::new(CbcHs512::new(&secret).ok_or_else(bad_len)?))
            }
        };
        Ok(Self {
            kid: Arc::from(kid),
            headers: Headers::new(),
            enc,
            can_seal,
            secret,
            cipher,
            seals: Arc::new(AtomicU64::new(0)),
            seals_from: None,
            sealed_until: None,
            keep_until: UnixTime::EPOCH,
            kidless: Kidless::Refuse,
        })
    }

    /// A key derived from a secret (Auth.js's HKDF keys): random bytes of `enc`'s length,
    /// with no passphrase check (the bytes are a hash output, never typed).
    pub(crate) fn derived(
        kid: &str,
        secret: Zeroizing<Vec<u8>>,
        kidless: Kidless,
    ) -> Result<Self, KeyError> {
        check_kid(kid)?;
        let mut key = Self::build(kid, secret, true)?;
        key.kidless = kidless;
        Ok(key)
    }

    /// This key, restricted to opening tokens (as `"key_ops":["decrypt"]` does).
    #[must_use]
    pub fn into_decrypt_only(mut self) -> Self {
        self.can_seal = false;
        self
    }

    /// This key, scheduled to take over sealing at `at` (the JWK member `seals_from`), or
    /// not scheduled (`None`). See [`KeyRing`](crate::KeyRing) for how a ring picks the key
    /// that seals.
    #[must_use]
    pub fn with_seals_from(mut self, at: Option<UnixTime>) -> Self {
        self.seals_from = at;
        self
    }

    /// This key, recorded as having stopped sealing at `at` (the JWK member
    /// `sealed_until`), or with no such record (`None`). Only a record: `jwe-session rotate
    /// --retire` reads it to tell when nothing the key sealed can be renewed any more.
    #[must_use]
    pub fn with_sealed_until(mut self, at: Option<UnixTime>) -> Self {
        self.sealed_until = at;
        self
    }

    /// The moment this key is scheduled to take over sealing, if any (`seals_from`).
    #[must_use]
    pub fn seals_from(&self) -> Option<UnixTime> {
        self.seals_from
    }

    /// The moment this key stopped sealing, if recorded (`sealed_until`).
    #[must_use]
    pub fn sealed_until(&self) -> Option<UnixTime> {
        self.sealed_until
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn kid_arc(&self) -> &Arc<str> {
        &self.kid
    }

    /// The content-encryption algorithm this key is for.
    #[must_use]
    pub fn enc(&self) -> Enc {
        self.enc
    }

    /// The base64url protected header this key writes for `purpose` (see [`Headers`]).
    pub(crate) fn header_for(&self, purpose: Option<&Arc<str>>) -> Arc<Written> {
        let kid = (self.kidless != Kidless::Anonymous).then_some(&*self.kid);
        self.headers.for_purpose(kid, self.enc, purpose)
    }

    /// Whether this key may seal (false for `"key_ops":["decrypt"]`).
    #[must_use]
    pub fn can_seal(&self) -> bool {
        self.can_seal
    }

    /// How many tokens this key has sealed in this process (see [`SEAL_LIMIT`]).
    #[must_use]
    pub fn seal_count(&self) -> u64 {
        self.seals.load(Ordering::Relaxed)
    }

    /// Carries the count over from the same key in a ring being replaced.
    pub(crate) fn inherit_seal_count(&self, other: &Key) {
        self.seals.fetch_max(other.seal_count(), Ordering::Relaxed);
    }

    #[cfg(test)]
    pub(crate) fn set_seal_count_for_tests(&self, n: u64) {
        self.seals.store(n, Ordering::Relaxed);
    }

    /// Takes one seal from the key's budget; `Err(count)` once the budget is spent.
    pub(crate) fn take_seal(&self) -> Result<(), u64> {
        let before = self.seals.fetch_add(1, Ordering::Relaxed);
        if before >= SEAL_LIMIT {
            return Err(before);
        }
        let n = before + 1;
        if n >= SEAL_WARN_AT && (n - SEAL_WARN_AT).is_multiple_of(SEAL_WARN_EVERY) {
            tracing::warn!(
                kid = %self.kid,
                sealed = n,
                limit = SEAL_LIMIT,
                "key has sealed {n} tokens of its 2^32 random-IV budget: rotate to a new key"
            );
        }
        Ok(())
    }

    /// The key as an `oct` JWK, **with its secret**. Only for writing a key file.
    #[must_use]
    pub fn to_jwk_secret(&self) -> Zeroizing<String> {
        // Built by hand into zeroizing memory: a `serde_json::Value` would leave a copy of
        // `k` behind. Every piece is JSON-safe as is: kids are printable ASCII without
        // quotes or backslashes, and base64url needs no escaping.
        // Sized up front so that no reallocation leaves a copy in freed memory.
        let mut out = Zeroizing::new(String::with_capacity(160 + self.kid.len() + 44));
        out.push_str("{\"kty\":\"oct\",\"kid\":\"");
        out.push_str(&self.kid);
        out.push_str("\",\"alg\":\"");
        out.push_str(self.enc.as_str());
        out.push('"');
        if !self.can_seal {
            out.push_str(",\"key_ops\":[\"decrypt\"]");
        }
        for (name, at) in [
            ("seals_from", self.seals_from),
            ("sealed_until", self.sealed_until),
        ] {
            if let Some(at) = at {
                // Digits only: no reallocation (the capacity covers two 20-digit numbers).
                let _ = write!(out, ",\"{name}\":{}", at.as_secs());
            }
        }
        out.push_str(",\"k\":\"");
        crate::b64::encode_to_string(&self.secret, &mut out);
        out.push_str("\"}");
        out
    }

    /// Encrypts `buf` in place under `iv` (of [`Enc::iv_len`] bytes; CBC's padding grows
    /// `buf`) and returns the tag.
    pub(crate) fn encrypt_in_place(
        &self,
        iv: &[u8],
        aad: &[u8],
        buf: &mut Zeroizing<Vec<u8>>,
    ) -> Result<Tag, Refused> {
        let mut out = Tag {
            bytes: [0; cbc_hs::TAG_LEN],
            len: self.enc.tag_len(),
        };
        let gcm = match &self.cipher {
            Cipher::CbcHs512(c) => {
                out.bytes = c.seal(iv.try_into().map_err(|_| Refused)?, aad, buf);
                return Ok(out);
            }
            Cipher::A128(c) => gcm_seal(&**c, iv, aad, buf)?,
            Cipher::A192(c) => gcm_seal(&**c, iv, aad, buf)?,
            Cipher::A256(c) => gcm_seal(&**c, iv, aad, buf)?,
        };
        out.bytes[..gcm.len()].copy_from_slice(&gcm);
        Ok(out)
    }

    /// Checks `tag` and decrypts `buf` in place (CBC's padding is cut off). The IV and tag
    /// lengths were checked against [`enc`](Self::enc) by the caller.
    pub(crate) fn decrypt_in_place(
        &self,
        iv: &[u8],
        aad: &[u8],
        buf: &mut Zeroizing<Vec<u8>>,
        tag: &[u8],
    ) -> Result<(), Refused> {
        match &self.cipher {
            Cipher::CbcHs512(c) => {
                let iv = iv.try_into().map_err(|_| Refused)?;
                let tag = tag.try_into().map_err(|_| Refused)?;
                c.open(iv, aad, buf, tag)
            }
            Cipher::A128(c) => gcm_open(&**c, iv, aad, buf, tag),
            Cipher::A192(c) => gcm_open(&**c, iv, aad, buf, tag),
            Cipher::A256(c) => gcm_open(&**c, iv, aad, buf, tag),
        }
    }
}

/// AES-GCM (any key size) encrypting in place: the 16-byte tag. An IV of the wrong
/// length is refused.
fn gcm_seal<C: AeadInOut>(
    c: &C,
    iv: &[u8],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<aead::Tag<C>, Refused> {
    let nonce = aead::Nonce::<C>::try_from(iv).map_err(|_| Refused)?;
    c.encrypt_inout_detached(&nonce, aad, buf.into())
        .map_err(|_| Refused)
}

/// AES-GCM (any key size) checking `tag` and decrypting in place. An IV or tag of the
/// wrong length is refused.
fn gcm_open<C: AeadInOut>(
    c: &C,
    iv: &[u8],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8],
) -> Result<(), Refused> {
    let nonce = aead::Nonce::<C>::try_from(iv).map_err(|_| Refused)?;
    let tag = aead::Tag::<C>::try_from(tag).map_err(|_| Refused)?;
    c.decrypt_inout_detached(&nonce, aad, buf.into(), &tag)
        .map_err(|_| Refused)
}

/// One JWK as it appears in a JWK Set; the secret is zeroized when dropped.
#[derive(Deserialize)]
pub(crate) struct JwkRepr {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    k: Option<Zeroizing<String>>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    seals_from: Option<serde_json::Value>,
    #[serde(default)]
    sealed_until: Option<serde_json::Value>,
}

/// A schedule member (`seals_from`, `sealed_until`): a JSON integer of seconds since the
/// epoch, as JWT's `NumericDate`.
fn schedule_time(
    kid: &str,
    member: &'static str,
    value: Option<serde_json::Value>,
) -> Result<Option<UnixTime>, KeyError> {
    match value {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|s| Some(UnixTime::from_secs(s)))
            .ok_or_else(|| KeyError::BadTime {
                kid: kid.to_owned(),
                member,
            }),
    }
}

fn key_ops_can_seal(kid: &str, ops: &[String]) -> Result<bool, KeyError> {
    let bad = || KeyError::KeyOps {
        kid: kid.to_owned(),
    };
    let mut encrypt = false;
    let mut decrypt = false;
    for op in ops {
        let seen = match op.as_str() {
            "encrypt" => &mut encrypt,
            "decrypt" => &mut decrypt,
            _ => return Err(bad()),
        };
        if *seen {
            return Err(bad());
        }
        *seen = true;
    }
    if !decrypt {
        return Err(bad());
    }
    Ok(encrypt)
}

pub(crate) fn check_kid(kid: &str) -> Result<(), KeyError> {
    let ok = !kid.is_empty()
        && kid.len() <= 128
        && kid
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if ok {
        Ok(())
    } else {
        Err(KeyError::InvalidKid { kid: truncate(kid) })
    }
}

fn check_material(kid: &str, bytes: &[u8]) -> Result<(), KeyError> {
    if bytes.len() < 16 {
        return Err(KeyError::TooShort {
            kid: kid.to_owned(),
            bits: bytes.len() * 8,
        });
    }
    if Enc::from_key_len(bytes.len()).is_none() {
        return Err(KeyError::BadLength {
            kid: kid.to_owned(),
            bytes: bytes.len(),
        });
    }
    if looks_like_passphrase(bytes) {
        return Err(KeyError::PassphraseLike {
            kid: kid.to_owned(),
        });
    }
    Ok(())
}

/// Raw key bytes that are all printable ASCII are a password typed by a person, not a key:
/// 16 random bytes are all printable with probability (95/256)^16 ≈ 10^-7.
fn looks_like_passphrase(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| (0x20..0x7f).contains(b))
}

/// A `k` value of random bytes has upper- and lower-case letters (a 22-character one lacks
/// either with probability about 2·10^-5). Digits and dashes only, like
/// `12345-67890-09876-54321`, or one letter case only, is something a person typed.
fn k_looks_like_text(k: &str) -> bool {
    let upper = k.bytes().any(|b| b.is_ascii_uppercase());
    let lower = k.bytes().any(|b| b.is_ascii_lowercase());
    // Spaces and punctuation are in no base64 alphabet: a sentence or a password, said
    // before "not base64url" (which would send the user to re-encode it).
    let typed = k
        .bytes()
        .any(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/' | b'=')));
    !(upper && lower) || typed
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    use super::*;
    use crate::header::HEADER_PURPOSES;

    const K256: [u8; 32] = [
        0x8b, 0x1f, 0x3a, 0xc4, 0x5e, 0x90, 0x27, 0xd6, 0x61, 0xf3, 0x0c, 0xa8, 0x4d, 0xb2, 0x19,
        0xe7, 0x33, 0x7a, 0xce, 0x05, 0x98, 0x6f, 0xd1, 0x42, 0xbb, 0x2c, 0x80, 0x57, 0xf9, 0x14,
        0x6e, 0xa3,
    ];

    fn jwk(k: &[u8], extra: &str) -> String {
        format!(
            r#"{{"kty":"oct","kid":"k1","k":"{}"{extra}}}"#,
            URL_SAFE_NO_PAD.encode(k)
        )
    }

    #[test]
    fn parses_each_size_and_names_its_enc() {
        for (len, enc) in [(16, Enc::A128Gcm), (24, Enc::A192Gcm), (32, Enc::A256Gcm)] {
            let key = Key::from_jwk(&jwk(&K256[..len], "")).unwrap();
            assert_eq!(key.enc(), enc);
            assert_eq!(key.kid(), "k1");
            assert!(key.can_seal());
            assert_eq!(Enc::from_name(enc.as_str()), Some(enc));
        }
    }

    #[test]
    fn a_64_byte_key_is_a256cbc_hs512_and_round_trips() {
        let bytes: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) | 0x80).collect();
        let key = Key::from_jwk(&jwk(&bytes, r#","alg":"A256CBC-HS512""#)).unwrap();
        assert_eq!(key.enc(), Enc::A256CbcHs512);
        assert_eq!(Enc::from_name("A256CBC-HS512"), Some(Enc::A256CbcHs512));
        let err = Key::from_jwk(&jwk(&bytes, r#","alg":"A256GCM""#)).unwrap_err();
        assert!(matches!(err, KeyError::AlgMismatch { .. }), "{err:?}");
        let ring = crate::KeyRing::new(vec![key], None).unwrap();
        let opts = crate::TokenOptions::new();
        let token = ring.seal(&serde_json::json!({"sub": "s"}), &opts).unwrap();
        let info = crate::inspect(token.as_str(), &opts).unwrap();
        assert_eq!(
            (info.iv_len, info.tag_len, info.ciphertext_len % 16),
            (16, 32, 0)
        );
        let back = ring
            .open::<serde_json::Value>(token.as_str(), &opts)
            .unwrap();
        assert_eq!(back.payload()["sub"], "s");
        // The worst case check_fits promises is what sealing makes.
        let fits = ring
            .check_fits(&serde_json::json!({"sub": "s"}), &opts)
            .unwrap();
        assert_eq!(fits, token.len());
    }

    #[test]
    fn generated_keys_default_to_a256gcm_and_load_back() {
        let key = Key::generate("g", Enc::default()).unwrap();
        assert_eq!(key.enc(), Enc::A256Gcm);
        let back = Key::from_jwk(&key.to_jwk_secret()).unwrap();
        assert_eq!(back.enc(), Enc::A256Gcm);
        for enc in [Enc::A128Gcm, Enc::A192Gcm] {
            for _ in 0..50 {
                let k = Key::generate("g", enc).unwrap();
                Key::from_jwk(&k.to_jwk_secret()).unwrap();
            }
        }
    }

    #[test]
    fn short_keys_are_refused_with_their_size() {
        let err = Key::from_jwk(&jwk(&K256[..8], "")).unwrap_err();
        assert!(
            matches!(err, KeyError::TooShort { bits: 64, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("keygen"), "{err}");
        let err = Key::from_bytes("k", &K256[..15]).unwrap_err();
        assert!(matches!(err, KeyError::TooShort { bits: 120, .. }));
    }

    #[test]
    fn odd_lengths_are_refused() {
        let err = Key::from_jwk(&jwk(&K256[..20], "")).unwrap_err();
        assert!(
            matches!(err, KeyError::BadLength { bytes: 20, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn passphrases_are_refused() {
        // The example from DESIGN.md, as a `k` value.
        let err =
            Key::from_jwk(r#"{"kty":"oct","kid":"p","k":"12345-67890-09876-54321"}"#).unwrap_err();
        assert!(matches!(err, KeyError::PassphraseLike { .. }), "{err:?}");
        assert!(err.to_string().contains("jwe-session keygen"), "{err}");
        // A password base64url-encoded so that it passes the text check.
        let encoded = URL_SAFE_NO_PAD.encode(b"Correct Horse Battery Staple 123");
        let err =
            Key::from_jwk(&format!(r#"{{"kty":"oct","kid":"p","k":"{encoded}"}}"#)).unwrap_err();
        assert!(matches!(err, KeyError::PassphraseLike { .. }), "{err:?}");
        // A password typed as it is, with spaces and punctuation: a password first, not
        // "not base64url".
        let err = Key::from_jwk(r#"{"kty":"oct","kid":"p","k":"Correct Horse Battery Staple!"}"#)
            .unwrap_err();
        assert!(matches!(err, KeyError::PassphraseLike { .. }), "{err:?}");
        // Standard base64 with padding is base64, just the wrong alphabet: said so.
        let err = Key::from_jwk(
            r#"{"kty":"oct","kid":"p","k":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+/w=="}"#,
        )
        .unwrap_err();
        assert!(matches!(err, KeyError::BadBase64 { .. }), "{err:?}");
        assert!(err.to_string().contains("no = padding"), "{err}");
        // And as raw bytes.
        let err = Key::from_bytes("p", b"hunter2hunter2hunter2hunter2hunt").unwrap_err();
        assert!(matches!(err, KeyError::PassphraseLike { .. }));
    }

    #[test]
    fn jwk_members_are_checked() {
        let e = |extra: &str| Key::from_jwk(&jwk(&K256, extra)).unwrap_err();
        assert!(matches!(e(r#","use":"sig""#), KeyError::UseNotEnc { .. }));
        assert!(matches!(
            e(r#","alg":"A128GCM""#),
            KeyError::AlgMismatch { bytes: 32, .. }
        ));
        assert!(matches!(
            e(r#","alg":"HS256""#),
            KeyError::AlgMismatch { .. }
        ));
        assert!(matches!(
            e(r#","key_ops":["sign"]"#),
            KeyError::KeyOps { .. }
        ));
        assert!(matches!(
            e(r#","key_ops":["encrypt"]"#),
            KeyError::KeyOps { .. }
        ));
        assert!(matches!(
            e(r#","key_ops":["decrypt","decrypt"]"#),
            KeyError::KeyOps { .. }
        ));
        let ok = |extra: &str| Key::from_jwk(&jwk(&K256, extra)).unwrap();
        assert!(ok(r#","alg":"A256GCM","use":"enc""#).can_seal());
        assert!(ok(r#","alg":"dir""#).can_seal());
        assert!(!ok(r#","key_ops":["decrypt"]"#).can_seal());
        assert!(ok(r#","key_ops":["encrypt","decrypt"]"#).can_seal());

        let e = |json: &str| Key::from_jwk(json).unwrap_err();
        let k = URL_SAFE_NO_PAD.encode(K256);
        assert!(matches!(
            e(&format!(r#"{{"kty":"oct","k":"{k}"}}"#)),
            KeyError::MissingKid
        ));
        assert!(matches!(
            e(r#"{"kty":"oct","kid":"a"}"#),
            KeyError::MissingK { .. }
        ));
        assert!(matches!(
            e(&format!(r#"{{"kty":"RSA","kid":"a","k":"{k}"}}"#)),
            KeyError::NotOct { .. }
        ));
        assert!(matches!(
            e(&format!(r#"{{"kty":"oct","kid":"","k":"{k}"}}"#)),
            KeyError::InvalidKid { .. }
        ));
        assert!(matches!(
            e(&format!(r#"{{"kty":"oct","kid":"a b","k":"{k}"}}"#)),
            KeyError::InvalidKid { .. }
        ));
        assert!(matches!(
            e(&format!(r#"{{"kty":"oct","kid":"a","k":"{k}="}}"#)),
            KeyError::BadBase64 { .. }
        ));
        assert!(matches!(e("not json"), KeyError::Json { .. }));
        assert!(matches!(e("[]"), KeyError::Json { .. }));
    }

    #[test]
    fn debug_and_errors_never_show_key_bytes() {
        let k = URL_SAFE_NO_PAD.encode(K256);
        let key = Key::from_jwk(&jwk(&K256, "")).unwrap();
        let dbg = format!("{key:?}");
        assert!(!dbg.contains(&k), "{dbg}");
        assert_eq!(
            dbg,
            r#"Key { kid: "k1", enc: A256Gcm, can_seal: true, .. }"#
        );
        // A JSON type error quoting the value must not echo it.
        let err = Key::from_jwk(&format!(r#"{{"kty":"oct","kid":"a","k":["{k}"]}}"#)).unwrap_err();
        assert!(!format!("{err} {err:?}").contains(&k));
        let err =
            Key::from_jwk(&format!(r#"{{"kty":"oct","kid":"a","k":"{k}","alg":7}}"#)).unwrap_err();
        assert!(!format!("{err} {err:?}").contains(&k));
    }

    #[test]
    fn headers_are_kept_per_purpose() {
        let key = Key::from_bytes("k1", &K256).unwrap();
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("cookie"), Arc::from("bearer"));
        let first_a = key.header_for(Some(&a));
        let first_b = key.header_for(Some(&b));
        let none = key.header_for(None);
        // Alternating purposes reuse what was built, whether or not the Arc is the same one.
        assert!(Arc::ptr_eq(
            &first_a,
            &key.header_for(Some(&Arc::from("cookie")))
        ));
        assert!(Arc::ptr_eq(&first_b, &key.header_for(Some(&b))));
        assert!(Arc::ptr_eq(&none, &key.header_for(None)));
        assert_ne!(first_a.b64, first_b.b64);
        // Bounded: past HEADER_PURPOSES the oldest goes, and comes back rebuilt, identical.
        for i in 0..HEADER_PURPOSES {
            key.header_for(Some(&Arc::from(format!("p{i}"))));
        }
        assert_eq!(key.headers.len(), HEADER_PURPOSES);
        let again = key.header_for(Some(&a));
        assert!(!Arc::ptr_eq(&first_a, &again));
        assert_eq!(first_a.b64, again.b64);
    }

    #[test]
    fn seal_budget_counts_warns_and_stops() {
        let key = Key::generate("b", Enc::A256Gcm).unwrap();
        assert_eq!(key.seal_count(), 0);
        key.take_seal().unwrap();
        assert_eq!(key.seal_count(), 1);
        key.set_seal_count_for_tests(SEAL_LIMIT - 1);
        key.take_seal().unwrap();
        assert_eq!(key.take_seal(), Err(SEAL_LIMIT));
    }
}
