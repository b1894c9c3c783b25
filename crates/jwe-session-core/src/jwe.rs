//! Compact JWE (RFC 7516) with `alg: "dir"` and AES-GCM: seal and strict open.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rand::rngs::OsRng;
use rand::RngCore;
use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::{Zeroize, Zeroizing};

use crate::b64;

use crate::error::{starts_json_object, ClaimsTypeError, OpenError, SealError, Segment};
use crate::key::Key;
use crate::names::Enc;

/// The default limit on a token's length: 16 KiB.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 16 * 1024;

/// How tokens are sealed and opened: the size limit and the purpose they are bound to.
///
/// The purpose goes into the protected header as `typ`, which is authenticated as the AAD,
/// so a token sealed for one purpose (one app, one cookie) cannot be replayed as another
/// even under the same keys. Without a purpose, opening does not look at `typ` (useful for
/// tokens from other JOSE implementations and for debugging tools).
///
/// ```
/// use jwe_session_core::{KeyRing, OpenError, TokenOptions};
///
/// let ring = KeyRing::generate();
/// let app = TokenOptions::new().with_purpose("app-session");
/// let api = TokenOptions::new().with_purpose("api-session");
/// let token = ring.seal(&serde_json::json!({"sub": "alice"}), &app)?;
/// assert!(ring.open::<serde_json::Value>(token.as_str(), &app).is_ok());
/// assert!(matches!(
///     ring.open::<serde_json::Value>(token.as_str(), &api),
///     Err(OpenError::PurposeMismatch { .. })
/// ));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct TokenOptions {
    pub(crate) max_len: usize,
    pub(crate) purpose: Option<Arc<str>>,
}

impl Default for TokenOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenOptions {
    /// No purpose, a [`DEFAULT_MAX_TOKEN_LEN`] limit.
    pub fn new() -> Self {
        Self {
            max_len: DEFAULT_MAX_TOKEN_LEN,
            purpose: None,
        }
    }

    /// Sets the limit on a token's length in bytes, checked before any decoding.
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Binds tokens to a purpose (the header's `typ`).
    pub fn with_purpose(mut self, purpose: impl Into<String>) -> Self {
        self.purpose = Some(Arc::from(purpose.into()));
        self
    }

    /// The length limit.
    #[must_use]
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The purpose, if any.
    #[must_use]
    pub fn purpose(&self) -> Option<&str> {
        self.purpose.as_deref()
    }
}

/// A sealed token: ciphertext, but also a bearer credential, so `Debug` shows only its
/// length (`SessionToken(<412 bytes>)`) and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionToken(<{} bytes>)", self.0.len())
    }
}

impl SessionToken {
    /// The compact serialization.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The compact serialization, owned.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }

    /// Its length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a token is never empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl AsRef<str> for SessionToken {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// What opening a token yields: the payload, and which key opened it.
#[derive(Clone, Debug)]
pub struct Opened<P> {
    payload: P,
    kid: Arc<str>,
    /// Until when the token is left under its key (see [`KeyRing::needs_reseal`]).
    keep_until: crate::UnixTime,
}

impl<P> Opened<P> {
    /// The decrypted payload.
    #[must_use]
    pub fn payload(&self) -> &P {
        &self.payload
    }

    /// The decrypted payload, owned.
    #[must_use]
    pub fn into_payload(self) -> P {
        self.payload
    }

    /// The kid of the key that opened the token.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// True when the key that opened the token is no longer the active one (by the system
    /// clock, read only when the ring has a schedule): the caller should re-seal it under
    /// the active key. A key scheduled to seal later does not count as old.
    #[must_use]
    pub fn needs_reseal(&self) -> bool {
        match self.keep_until.as_secs() {
            0 => true,
            u64::MAX => false,
            _ => self.needs_reseal_at(crate::UnixTime::now()),
        }
    }

    /// [`needs_reseal`](Self::needs_reseal) at `now`, for callers with a
    /// [`Clock`](crate::Clock) of their own.
    #[must_use]
    pub fn needs_reseal_at(&self, now: crate::UnixTime) -> bool {
        now >= self.keep_until
    }

    pub(crate) fn map<Q>(self, f: impl FnOnce(P) -> Q) -> Opened<Q> {
        Opened {
            payload: f(self.payload),
            kid: self.kid,
            keep_until: self.keep_until,
        }
    }
}

/// A token split and decoded, before any key is involved.
pub(crate) struct Decoded<'t> {
    pub(crate) header_b64: &'t str,
    pub(crate) header_json: Zeroizing<Vec<u8>>,
    pub(crate) iv: Zeroizing<Vec<u8>>,
    pub(crate) buf: Zeroizing<Vec<u8>>,
    pub(crate) tag: Zeroizing<Vec<u8>>,
}

/// A token's five segments, still encoded.
pub(crate) struct Segments<'t> {
    header: &'t str,
    iv: &'t str,
    ciphertext: &'t str,
    tag: &'t str,
}

/// The first check of all, before anything is decoded.
pub(crate) fn check_len(token: &str, opts: &TokenOptions) -> Result<(), OpenError> {
    if token.len() > opts.max_len {
        return Err(OpenError::TooLarge {
            len: token.len(),
            max: opts.max_len,
        });
    }
    Ok(())
}

/// The structural checks after the size limit, cheapest first: five segments, empty
/// encrypted key.
pub(crate) fn split(token: &str) -> Result<Segments<'_>, OpenError> {
    let mut parts = [""; 5];
    let mut found = 0;
    for part in token.split('.') {
        if found == 5 {
            return Err(OpenError::SegmentCount { found: 6 });
        }
        parts[found] = part;
        found += 1;
    }
    if found != 5 {
        return Err(OpenError::SegmentCount { found });
    }
    let [header, encrypted_key, iv, ciphertext, tag] = parts;
    if !encrypted_key.is_empty() {
        return Err(OpenError::EncryptedKeyNotEmpty);
    }
    Ok(Segments {
        header,
        iv,
        ciphertext,
        tag,
    })
}

/// The rest of the structural checks: canonical base64url of every segment, and a
/// protected header that is a JSON object.
pub(crate) fn decode(s: Segments<'_>) -> Result<Decoded<'_>, OpenError> {
    let header_json = decode_segment(s.header, Segment::Header)?;
    let iv = decode_segment(s.iv, Segment::Iv)?;
    let buf = decode_segment(s.ciphertext, Segment::Ciphertext)?;
    let tag = decode_segment(s.tag, Segment::Tag)?;
    if !starts_json_object(&header_json) {
        return Err(OpenError::HeaderNotJson);
    }
    Ok(Decoded {
        header_b64: s.header,
        header_json,
        iv,
        buf,
        tag,
    })
}

/// IV and tag lengths (the key's algorithm's), then the AEAD.
pub(crate) fn finish(
    key: &Key,
    header_b64: &str,
    iv: &[u8],
    mut buf: Zeroizing<Vec<u8>>,
    tag: &[u8],
) -> Result<Opened<Zeroizing<Vec<u8>>>, OpenError> {
    let enc = key.enc();
    if iv.len() != enc.iv_len() {
        return Err(OpenError::IvLength { len: iv.len() });
    }
    if tag.len() != enc.tag_len() {
        return Err(OpenError::TagLength { len: tag.len() });
    }
    key.decrypt_in_place(iv, header_b64.as_bytes(), &mut buf, tag)
        .map_err(|_| OpenError::Decrypt)?;
    Ok(Opened {
        payload: buf,
        kid: Arc::clone(key.kid_arc()),
        keep_until: key.keep_until,
    })
}

/// What can be learned from a token without its key: the protected header and the size of
/// each segment. The payload stays encrypted.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TokenInfo {
    /// The protected header, as sent (not checked against any key).
    pub header: serde_json::Map<String, serde_json::Value>,
    /// Length of the base64url protected header, in bytes.
    pub header_len: usize,
    /// Decoded IV length in bytes (12 for a well-formed token).
    pub iv_len: usize,
    /// Decoded ciphertext length in bytes (the payload's length).
    pub ciphertext_len: usize,
    /// Decoded tag length in bytes (16 for a well-formed token).
    pub tag_len: usize,
}

/// Reads a token's header and segment sizes without a key (for debugging tools). Runs the
/// same structural checks as [`KeyRing::open_bytes`](crate::KeyRing::open_bytes) up to and including the header JSON.
///
/// # Errors
/// [`OpenError::TooLarge`], [`OpenError::SegmentCount`], [`OpenError::EncryptedKeyNotEmpty`],
/// [`OpenError::Base64`], [`OpenError::HeaderNotJson`].
pub fn inspect(token: &str, opts: &TokenOptions) -> Result<TokenInfo, OpenError> {
    check_len(token, opts)?;
    let d = decode(split(token)?)?;
    let header = serde_json::from_slice(&d.header_json).map_err(|_| OpenError::HeaderNotJson)?;
    Ok(TokenInfo {
        header,
        header_len: d.header_b64.len(),
        iv_len: d.iv.len(),
        ciphertext_len: d.buf.len(),
        tag_len: d.tag.len(),
    })
}

/// The capacity the last claims needed, so that the next serialization (usually of claims
/// of about the same size) starts with room enough and never has to grow. Only a hint.
static CLAIMS_CAPACITY: AtomicUsize = AtomicUsize::new(256);

pub(crate) fn serialize_claims<T: Serialize + ?Sized>(
    claims: &T,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let hint = CLAIMS_CAPACITY.load(Ordering::Relaxed);
    let mut buf = SecretBuf(Zeroizing::new(Vec::with_capacity(hint)));
    serde_json::to_writer(&mut buf, claims)
        .map_err(|e| SealError::Claims(ClaimsTypeError::sealing(e)))?;
    let SecretBuf(buf) = buf;
    if buf.first() != Some(&b'{') {
        return Err(SealError::ClaimsNotObject);
    }
    // Room for a little more than this time; capped so one huge claim set (refused later
    // by the size limit) does not make every later buffer huge.
    let next = (buf.len() + buf.len() / 8 + 64).min(MAX_CLAIMS_CAPACITY);
    if next != hint {
        CLAIMS_CAPACITY.store(next, Ordering::Relaxed);
    }
    Ok(buf)
}

/// The largest capacity [`CLAIMS_CAPACITY`] suggests (claims this long are past any
/// cookie's limit).
const MAX_CLAIMS_CAPACITY: usize = 64 * 1024;

/// The length `claims` serialize to, checked to be a JSON object, without a copy of them.
pub(crate) fn claims_len<T: Serialize + ?Sized>(claims: &T) -> Result<usize, SealError> {
    let mut measure = Measure::default();
    serde_json::to_writer(&mut measure, claims)
        .map_err(|e| SealError::Claims(ClaimsTypeError::sealing(e)))?;
    if measure.first != Some(b'{') {
        return Err(SealError::ClaimsNotObject);
    }
    Ok(measure.len)
}

/// The length of what is written, and its first byte; nothing is kept.
#[derive(Default)]
struct Measure {
    len: usize,
    first: Option<u8>,
}

impl io::Write for Measure {
    #[inline]
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.len == 0 {
            self.first = data.first().copied();
        }
        self.len += data.len();
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Plaintext being written: when it must grow, the bigger buffer is allocated here and the
/// old one zeroized, where `Vec`'s own growth would free the old buffer with the claims
/// still in it.
struct SecretBuf(Zeroizing<Vec<u8>>);

impl SecretBuf {
    #[cold]
    #[inline(never)]
    fn grow(&mut self, need: usize) {
        let mut bigger = Zeroizing::new(Vec::with_capacity(need.max(2 * self.0.capacity())));
        bigger.extend_from_slice(&self.0);
        // The old buffer is dropped here, zeroized.
        self.0 = bigger;
    }
}

impl io::Write for SecretBuf {
    #[inline]
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_all(data)?;
        Ok(data.len())
    }

    #[inline]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let need = self.0.len() + data.len();
        if need > self.0.capacity() {
            self.grow(need);
        }
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Wipes decrypted bytes in one pass. `Zeroizing<Vec<u8>>` on its own wipes a `Vec` one
/// volatile byte at a time; its slice and spare capacity are each wiped in bulk.
pub(crate) fn wipe(mut payload: Zeroizing<Vec<u8>>) {
    let mut bytes = std::mem::take(&mut *payload);
    bytes.as_mut_slice().zeroize();
    bytes.spare_capacity_mut().zeroize();
}

/// Parses a decrypted payload as claims, as [`KeyRing::open`](crate::KeyRing::open) does: for callers that opened
/// the bytes themselves (with [`KeyRing::open_bytes`](crate::KeyRing::open_bytes)) and still need the raw payload.
///
/// # Errors
/// [`OpenError::ClaimsNotObject`] for anything but a JSON object, [`OpenError::ClaimsType`]
/// for an object that does not fit `T`.
pub fn parse_claims<T: DeserializeOwned>(payload: &[u8]) -> Result<T, OpenError> {
    if !starts_json_object(payload) {
        return Err(OpenError::ClaimsNotObject);
    }
    // JSON is UTF-8 (RFC 8259 §8.1). One check of the whole payload is cheaper than
    // serde_json's check of each string it reads from bytes. The claims reader then takes
    // what this crate writes and leaves the rest, and every error, to serde_json.
    let json = std::str::from_utf8(payload).map_err(|_| OpenError::ClaimsNotObject)?;
    crate::json::from_str(json).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            OpenError::ClaimsType(ClaimsTypeError::opening::<T>(e, json))
        }
        _ => OpenError::ClaimsNotObject,
    })
}

fn decode_segment(segment: &str, which: Segment) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    b64::decode(segment.as_bytes()).ok_or(OpenError::Base64 { segment: which })
}

pub(crate) fn seal_with(
    key: &Key,
    payload: Zeroizing<Vec<u8>>,
    opts: &TokenOptions,
) -> Result<SessionToken, SealError> {
    let header = key.header_for(opts.purpose.as_ref());
    let len = sealed_len(key.enc(), header.b64.len(), payload.len());
    if len > opts.max_len {
        return Err(SealError::TooLarge {
            len,
            max: opts.max_len,
        });
    }
    key.take_seal().map_err(|_| SealError::KeyExhausted {
        kid: key.kid().to_owned(),
    })?;
    // Straight from the OS for every token: a user-space pool would be faster, but after a
    // fork() two processes would hand out the same IVs, and GCM does not survive that.
    let mut iv = [0u8; 16];
    let iv = &mut iv[..key.enc().iv_len()];
    OsRng.fill_bytes(iv);
    seal_raw(key, &header.b64, iv, payload)
}

/// The length of a token whose base64url header is `header_len` bytes and whose plaintext
/// is `payload_len` bytes, sealed with `enc`.
pub(crate) const fn sealed_len(enc: Enc, header_len: usize, payload_len: usize) -> usize {
    // header . (empty) . iv . ciphertext . tag
    header_len
        + 2
        + b64::encoded_len(enc.iv_len())
        + 1
        + b64::encoded_len(enc.ciphertext_len(payload_len))
        + 1
        + b64::encoded_len(enc.tag_len())
}

/// Seals with an explicit header and IV, encrypting the payload in place. Only
/// `seal_with` (random IV) and the RFC vector tests (fixed IV) call it.
pub(crate) fn seal_raw(
    key: &Key,
    header_b64: &str,
    iv: &[u8],
    mut buf: Zeroizing<Vec<u8>>,
) -> Result<SessionToken, SealError> {
    let len = sealed_len(key.enc(), header_b64.len(), buf.len());
    let tag = key
        .encrypt_in_place(iv, header_b64.as_bytes(), &mut buf)
        .map_err(|_| SealError::Encrypt)?;
    // Ciphertext now, which the token shows anyway: out of `Zeroizing`, it is freed
    // without being wiped (the spare capacity never held plaintext: nothing wrote there).
    let buf = std::mem::take(&mut *buf);
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(header_b64.as_bytes());
    out.extend_from_slice(b"..");
    b64::encode_into(iv, &mut out);
    out.push(b'.');
    b64::encode_into(&buf, &mut out);
    out.push(b'.');
    b64::encode_into(tag.as_slice(), &mut out);
    // Always ASCII: a base64url header, dots and base64url segments.
    String::from_utf8(out)
        .map(SessionToken)
        .map_err(|_| SealError::Encrypt)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    use proptest::prelude::*;
    use serde::Deserialize;

    use super::*;
    use crate::claims::Claims;
    use crate::key::Key;
    use crate::names::Enc;
    use crate::ring::KeyRing;
    use crate::time::UnixTime;

    /// RFC 7520 §5.6 (dir + A128GCM), as published in the IETF JOSE cookbook.
    const RFC7520_5_6: &str = include_str!("../vectors/rfc7520-5.6.json");
    /// RFC 7516 Appendix A.1, the A256GCM content-encryption step.
    const RFC7516_A1: &str = include_str!("../vectors/rfc7516-A.1-a256gcm-content.json");

    #[derive(Deserialize)]
    struct Rfc7520 {
        key_jwk: serde_json::Value,
        plaintext: String,
        protected_b64: String,
        iv_b64: String,
        compact: String,
    }

    fn rfc7520() -> (Rfc7520, KeyRing) {
        let v: Rfc7520 = serde_json::from_str(RFC7520_5_6).unwrap();
        let jwks = serde_json::json!({ "keys": [v.key_jwk] }).to_string();
        let ring = KeyRing::from_jwks(&jwks).unwrap();
        (v, ring)
    }

    fn ring_of(seeds: &[(&str, u8, Enc)]) -> KeyRing {
        let keys = seeds
            .iter()
            .map(|(kid, seed, enc)| {
                let bytes: Vec<u8> = (0..enc.key_len() as u8)
                    .map(|i| i.wrapping_mul(29).wrapping_add(*seed) | 0x80)
                    .collect();
                Key::from_bytes(kid, &bytes).unwrap()
            })
            .collect();
        KeyRing::new(keys, None).unwrap()
    }

    fn opts() -> TokenOptions {
        TokenOptions::new()
    }

    #[test]
    fn rfc7520_5_6_opens_to_its_plaintext() {
        let (v, ring) = rfc7520();
        let opened = ring.open_bytes(&v.compact, &opts()).unwrap();
        assert_eq!(opened.payload().as_slice(), v.plaintext.as_bytes());
        assert_eq!(opened.kid(), "77c7e2b8-6e13-45cf-8672-617b5b45243a");
        assert!(!opened.needs_reseal());
        assert_eq!(ring.active().enc(), Enc::A128Gcm);
        // Its payload is text, not claims.
        assert!(matches!(
            ring.open::<serde_json::Value>(&v.compact, &opts()),
            Err(OpenError::ClaimsNotObject)
        ));
    }

    /// Found by the `header` fuzz target: numbers in a header (and in claims) must parse
    /// to the double they name, so that what inspect shows re-serializes to the same value.
    /// serde_json's default float parser is off by an ulp here; `float_roundtrip` is on.
    #[test]
    fn header_numbers_round_trip_exactly() {
        let header = r#"{"":"fuzx","kid":222222222222222222222222222222222222222222222222222222222223222222222222222222}"#;
        let token = format!(
            "{}..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA",
            URL_SAFE_NO_PAD.encode(header)
        );
        let info = inspect(&token, &opts()).unwrap();
        let again = serde_json::to_vec(&info.header).unwrap();
        let token2 = format!(
            "{}..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA",
            URL_SAFE_NO_PAD.encode(again)
        );
        assert_eq!(inspect(&token2, &opts()).unwrap().header, info.header);
    }

    /// A token from release 0.1.0: later releases must keep opening it.
    #[test]
    fn frozen_tokens_from_earlier_releases_still_open() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/frozen");
        let ring = KeyRing::from_file(dir.join("keys.json")).unwrap();
        let token = std::fs::read_to_string(dir.join("v0.1.0.jwe")).unwrap();
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("v0.1.0.claims.json")).unwrap())
                .unwrap();
        let opts = TokenOptions::new().with_purpose("jwe-session/cookie/session");
        let opened = ring
            .open::<Claims<serde_json::Value>>(token.trim(), &opts)
            .unwrap();
        assert_eq!(serde_json::to_value(opened.payload()).unwrap(), expected);
        assert_eq!(opened.kid(), "frozen-2026-11");
    }

    #[test]
    fn inspect_reads_header_and_sizes_without_a_key() {
        let (v, _) = rfc7520();
        let info = inspect(&v.compact, &opts()).unwrap();
        assert_eq!(info.header["alg"], "dir");
        assert_eq!(info.header["enc"], "A128GCM");
        assert_eq!(info.header["kid"], "77c7e2b8-6e13-45cf-8672-617b5b45243a");
        assert_eq!(
            (info.iv_len, info.ciphertext_len, info.tag_len),
            (12, 273, 16)
        );
        assert_eq!(info.header_len, v.protected_b64.len());
        assert!(matches!(
            inspect("a.b", &opts()),
            Err(OpenError::SegmentCount { found: 2 })
        ));
        let array = format!("{}..AAAA.AAAA.AAAA", URL_SAFE_NO_PAD.encode("[1]"));
        assert!(matches!(
            inspect(&array, &opts()),
            Err(OpenError::HeaderNotJson)
        ));
    }

    #[test]
    fn rfc7520_5_6_reseals_byte_for_byte() {
        let (v, ring) = rfc7520();
        let iv: [u8; 12] = URL_SAFE_NO_PAD
            .decode(&v.iv_b64)
            .unwrap()
            .try_into()
            .unwrap();
        let payload = Zeroizing::new(v.plaintext.as_bytes().to_vec());
        let token = seal_raw(ring.active(), &v.protected_b64, &iv, payload).unwrap();
        assert_eq!(token.as_str(), v.compact);
    }

    #[test]
    fn rfc7516_a1_a256gcm_content_step() {
        let v: serde_json::Value = serde_json::from_str(RFC7516_A1).unwrap();
        let d = |f: &str| URL_SAFE_NO_PAD.decode(v[f].as_str().unwrap()).unwrap();
        let key = Key::from_bytes("a1", &d("cek_b64")).unwrap();
        assert_eq!(key.enc(), Enc::A256Gcm);
        let aad = v["protected_b64"].as_str().unwrap().as_bytes();
        let iv: [u8; 12] = d("iv_b64").try_into().unwrap();
        let tag: [u8; 16] = d("tag_b64").try_into().unwrap();
        let mut buf = Zeroizing::new(d("ciphertext_b64"));
        key.decrypt_in_place(&iv, aad, &mut buf, &tag).unwrap();
        assert_eq!(buf.as_slice(), v["plaintext"].as_str().unwrap().as_bytes());
        let got_tag = key.encrypt_in_place(&iv, aad, &mut buf).unwrap();
        assert_eq!(*buf, d("ciphertext_b64"));
        assert_eq!(got_tag.as_slice(), tag);
    }

    fn variant(e: &OpenError) -> String {
        match e {
            OpenError::TooLarge { .. } => "TooLarge".into(),
            OpenError::SegmentCount { found } => format!("SegmentCount({found})"),
            OpenError::EncryptedKeyNotEmpty => "EncryptedKeyNotEmpty".into(),
            OpenError::Base64 { segment } => format!("Base64({segment:?})"),
            OpenError::HeaderNotJson => "HeaderNotJson".into(),
            OpenError::MissingHeader { field } => format!("MissingHeader({field})"),
            OpenError::UnsupportedAlg { found } => format!("UnsupportedAlg({found})"),
            OpenError::Compressed => "Compressed".into(),
            OpenError::Critical => "Critical".into(),
            OpenError::UnknownKid { kid } => format!("UnknownKid({kid})"),
            OpenError::EncMismatch { found, .. } => format!("EncMismatch({found})"),
            OpenError::PurposeMismatch { .. } => "PurposeMismatch".into(),
            OpenError::IvLength { len } => format!("IvLength({len})"),
            OpenError::TagLength { len } => format!("TagLength({len})"),
            OpenError::Decrypt => "Decrypt".into(),
            OpenError::ClaimsNotObject => "ClaimsNotObject".into(),
            OpenError::ClaimsType(_) => "ClaimsType".into(),
        }
    }

    /// Every file in `vectors/reject/` and the variant it must produce.
    const REJECTS: &[(&str, &str)] = &[
        ("too_large", "TooLarge"),
        ("segments_4", "SegmentCount(4)"),
        ("segments_6", "SegmentCount(6)"),
        ("encrypted_key_not_empty", "EncryptedKeyNotEmpty"),
        ("base64_padded_tag", "Base64(Tag)"),
        ("base64_trailing_bits_tag", "Base64(Tag)"),
        ("base64_std_alphabet_ciphertext", "Base64(Ciphertext)"),
        ("base64_whitespace_iv", "Base64(Iv)"),
        ("base64_bad_header", "Base64(Header)"),
        ("header_not_json", "HeaderNotJson"),
        ("header_array", "HeaderNotJson"),
        ("header_duplicate_alg", "HeaderNotJson"),
        ("header_kid_not_string", "HeaderNotJson"),
        ("missing_alg", "MissingHeader(alg)"),
        ("alg_rsa_oaep", "UnsupportedAlg(RSA-OAEP)"),
        ("alg_none", "UnsupportedAlg(none)"),
        ("zip_deflate", "Compressed"),
        ("crit_present", "Critical"),
        ("missing_kid", "MissingHeader(kid)"),
        ("unknown_kid", "UnknownKid(not-in-the-ring)"),
        ("missing_enc", "MissingHeader(enc)"),
        ("enc_mismatch", "EncMismatch(A256GCM)"),
        ("enc_cbc_hs", "EncMismatch(A128CBC-HS256)"),
        ("iv_length_9", "IvLength(9)"),
        ("iv_empty", "IvLength(0)"),
        ("tag_length_12", "TagLength(12)"),
        ("decrypt_flipped_ciphertext", "Decrypt"),
        ("decrypt_flipped_tag", "Decrypt"),
        ("decrypt_reordered_header", "Decrypt"),
    ];

    #[test]
    fn every_named_reject_vector_fails_with_its_variant() {
        let (_, ring) = rfc7520();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/reject");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        let mut named: Vec<String> = REJECTS.iter().map(|(n, _)| format!("{n}.jwe")).collect();
        named.sort();
        assert_eq!(
            files, named,
            "every reject file needs an expected variant, and vice versa"
        );
        for (name, expected) in REJECTS {
            let token = std::fs::read_to_string(dir.join(format!("{name}.jwe"))).unwrap();
            let err = ring.open_bytes(&token, &opts()).unwrap_err();
            assert_eq!(&variant(&err), expected, "{name}: {err}");
        }
    }

    #[test]
    fn limit_is_checked_before_decoding_and_is_configurable() {
        let (v, ring) = rfc7520();
        let tight = TokenOptions::new().with_max_len(v.compact.len() - 1);
        assert!(matches!(
            ring.open_bytes(&v.compact, &tight),
            Err(OpenError::TooLarge { len, max }) if len == v.compact.len() && max == len - 1
        ));
        // Even garbage of the wrong shape reports the size first.
        let junk = "!".repeat(DEFAULT_MAX_TOKEN_LEN + 1);
        assert!(matches!(
            ring.open_bytes(&junk, &opts()),
            Err(OpenError::TooLarge { .. })
        ));
        // Sealing refuses what opening would refuse.
        let big = vec![b'x'; 20_000];
        assert!(matches!(
            ring.seal_bytes(&big, &opts()),
            Err(SealError::TooLarge { .. })
        ));
        assert!(ring
            .seal_bytes(&big, &TokenOptions::new().with_max_len(40_000))
            .is_ok());
    }

    #[test]
    fn purpose_binding() {
        let ring = ring_of(&[("k", 1, Enc::A256Gcm)]);
        let a = TokenOptions::new().with_purpose("cookie:app-a");
        let b = TokenOptions::new().with_purpose("cookie:app-b");
        let tok = ring.seal_bytes(b"{}", &a).unwrap();
        assert!(ring.open_bytes(tok.as_str(), &a).is_ok());
        assert!(matches!(
            ring.open_bytes(tok.as_str(), &b),
            Err(OpenError::PurposeMismatch { expected: Some(e), found: Some(f) })
                if e == "cookie:app-b" && f == "cookie:app-a"
        ));
        // A purpose-less token is refused where a purpose is expected...
        let plain = ring.seal_bytes(b"{}", &opts()).unwrap();
        assert!(matches!(
            ring.open_bytes(plain.as_str(), &a),
            Err(OpenError::PurposeMismatch { found: None, .. })
        ));
        // ...and without an expected purpose, typ is not looked at.
        assert!(ring.open_bytes(tok.as_str(), &opts()).is_ok());
        // Purposes with JSON-special characters are escaped, not injected.
        let odd = TokenOptions::new().with_purpose("a\",\"kid\":\"x");
        let t = ring.seal_bytes(b"{}", &odd).unwrap();
        assert!(ring.open_bytes(t.as_str(), &odd).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// `check_fits` measures without keeping a copy: its length is the sealed token's,
        /// byte for byte, whatever needs escaping, and one byte less of room refuses it.
        #[test]
        fn check_fits_measures_what_seal_writes(note in any::<String>(), n in 0u64..u64::MAX) {
            let ring = ring_of(&[("k", 1, Enc::A256Gcm)]);
            let claims = serde_json::json!({"sub": note, "n": n, "roles": [note.clone()]});
            let len = ring.check_fits(&claims, &opts()).unwrap();
            prop_assert_eq!(len, ring.seal(&claims, &opts()).unwrap().len());
            let tight = opts().with_max_len(len - 1);
            prop_assert!(
                matches!(ring.check_fits(&claims, &tight), Err(SealError::TooLarge { len: l, .. }) if l == len),
                "one byte short was not refused"
            );
            prop_assert!(matches!(ring.check_fits(&note, &opts()), Err(SealError::ClaimsNotObject)));
        }
    }

    #[test]
    fn plaintext_grows_only_through_buffers_that_are_wiped() {
        use std::io::Write as _;
        let mut buf = SecretBuf(Zeroizing::new(Vec::with_capacity(4)));
        let mut expected = Vec::new();
        let mut grew = 0;
        for piece in [&b"{"[..], b"\"sub\":", &[b'x'; 37], b"", b"}", &[b'y'; 300]] {
            let (cap, ptr) = (buf.0.capacity(), buf.0.as_ptr());
            buf.write_all(piece).unwrap();
            expected.extend_from_slice(piece);
            assert_eq!(buf.0.as_slice(), expected.as_slice());
            if buf.0.capacity() == cap {
                // No growth of its own: `Vec` never moved the bytes (and left a copy).
                assert_eq!(buf.0.as_ptr(), ptr);
            } else {
                grew += 1;
                assert!(buf.0.capacity() >= 2 * cap);
            }
        }
        assert_eq!(grew, 4);
        // Serialized claims come out whole whatever the hint says.
        let big = serde_json::json!({"notes": "z".repeat(5000)});
        let small = serde_json::json!({"sub": "alice"});
        for claims in [&big, &small, &big] {
            assert_eq!(
                *serialize_claims(claims).unwrap(),
                serde_json::to_vec(claims).unwrap()
            );
        }
    }

    #[test]
    fn claims_errors() {
        let ring = ring_of(&[("k", 1, Enc::A256Gcm)]);
        #[derive(Deserialize, Debug)]
        struct Strict {
            #[allow(dead_code)]
            roles: Vec<String>,
        }
        let t = ring
            .seal(&serde_json::json!({"exp": "soon"}), &opts())
            .unwrap();
        let err = ring.open::<Claims<()>>(t.as_str(), &opts()).unwrap_err();
        assert!(matches!(err, OpenError::ClaimsType(_)), "{err:?}");
        let t = ring
            .seal(&serde_json::json!({"roles": "admin-secret"}), &opts())
            .unwrap();
        let OpenError::ClaimsType(e) = ring
            .open::<Claims<Strict>>(t.as_str(), &opts())
            .unwrap_err()
        else {
            panic!("expected ClaimsType")
        };
        let shown = OpenError::ClaimsType(e);
        assert!(
            !shown.to_string().contains("admin-secret"),
            "Display must not echo claims"
        );
        for payload in [
            &b"[1,2]"[..],
            b"\"str\"",
            b"{not json",
            b"",
            b"{\"a\":\"\xff\"}",
        ] {
            let t = ring.seal_bytes(payload, &opts()).unwrap();
            assert!(
                matches!(
                    ring.open::<serde_json::Value>(t.as_str(), &opts()),
                    Err(OpenError::ClaimsNotObject)
                ),
                "{payload:?}"
            );
        }
        assert!(matches!(
            ring.seal(&[1, 2], &opts()),
            Err(SealError::ClaimsNotObject)
        ));
        assert!(matches!(
            ring.seal("s", &opts()),
            Err(SealError::ClaimsNotObject)
        ));
    }

    #[test]
    fn round_trips_for_every_key_size() {
        for enc in [Enc::A128Gcm, Enc::A192Gcm, Enc::A256Gcm] {
            let ring = ring_of(&[("k", 3, enc)]);
            let mut c = Claims::new(serde_json::json!({"roles": ["a", "b"], "n": 1}));
            c.sub = Some("alice".into());
            c.exp = Some(UnixTime::from_secs(2_000_000_000));
            let t = ring.seal(&c, &opts()).unwrap();
            let header = URL_SAFE_NO_PAD
                .decode(t.as_str().split('.').next().unwrap())
                .unwrap();
            assert_eq!(
                std::str::from_utf8(&header).unwrap(),
                format!(r#"{{"alg":"dir","enc":"{}","kid":"k"}}"#, enc.as_str())
            );
            let back = ring
                .open::<Claims<serde_json::Value>>(t.as_str(), &opts())
                .unwrap();
            assert_eq!(back.payload(), &c);
            assert_eq!(back.kid(), "k");
            // A fresh IV every time.
            assert_ne!(ring.seal(&c, &opts()).unwrap(), t);
        }
    }

    #[test]
    fn rotation() {
        let old = ring_of(&[("k1", 1, Enc::A256Gcm)]);
        let t1 = old.seal_bytes(b"{}", &opts()).unwrap();
        let rotated = ring_of(&[("k2", 2, Enc::A256Gcm), ("k1", 1, Enc::A256Gcm)]);
        let o1 = rotated.open_bytes(t1.as_str(), &opts()).unwrap();
        assert_eq!(o1.kid(), "k1");
        assert!(o1.needs_reseal());
        let t2 = rotated.seal_bytes(b"{}", &opts()).unwrap();
        let o2 = rotated.open_bytes(t2.as_str(), &opts()).unwrap();
        assert_eq!(o2.kid(), "k2");
        assert!(!o2.needs_reseal());
        assert_eq!(
            rotated.get("k1").unwrap().seal_count(),
            0,
            "only the active key seals"
        );
        assert_eq!(rotated.get("k2").unwrap().seal_count(), 1);
        let dropped = ring_of(&[("k2", 2, Enc::A256Gcm)]);
        assert!(matches!(
            dropped.open_bytes(t1.as_str(), &opts()),
            Err(OpenError::UnknownKid { kid }) if kid == "k1"
        ));
        assert!(dropped.open_bytes(t2.as_str(), &opts()).is_ok());
        // A key of the same kid but other bytes: one detail-free error.
        let forged = ring_of(&[("k2", 9, Enc::A256Gcm)]);
        assert!(matches!(
            forged.open_bytes(t2.as_str(), &opts()),
            Err(OpenError::Decrypt)
        ));
    }

    #[test]
    fn tokens_this_ring_seals_take_the_usual_path() {
        let (ring, tok) = sample();
        let o = TokenOptions::new().with_purpose("p");
        let usual = ring.open_usual(&tok, &o).expect("the usual shape").unwrap();
        assert_eq!(
            *usual.payload(),
            *ring.open_strict(&tok, &o).unwrap().payload()
        );
        // Another purpose's header is not this ring's usual one: the strict path decides.
        assert!(ring.open_usual(&tok, &opts()).is_none());
    }

    #[test]
    fn sealing_with_a_named_kid() {
        let ring = ring_of(&[("k2", 2, Enc::A256Gcm), ("k1", 1, Enc::A128Gcm)]);
        let t = ring.seal_bytes_with_kid("k1", b"{}", &opts()).unwrap();
        assert_eq!(ring.open_bytes(t.as_str(), &opts()).unwrap().kid(), "k1");
        assert!(matches!(
            ring.seal_bytes_with_kid("zz", b"{}", &opts()),
            Err(SealError::UnknownKid { .. })
        ));
        let keys = vec![
            Key::generate("a", Enc::A256Gcm).unwrap(),
            Key::generate("b", Enc::A256Gcm)
                .unwrap()
                .into_decrypt_only(),
        ];
        let ring = KeyRing::new(keys, None).unwrap();
        assert!(matches!(
            ring.seal_bytes_with_kid("b", b"{}", &opts()),
            Err(SealError::DecryptOnly { .. })
        ));
    }

    #[test]
    fn exhausted_keys_refuse_to_seal() {
        let ring = ring_of(&[("k", 1, Enc::A256Gcm)]);
        ring.active()
            .set_seal_count_for_tests(crate::key::SEAL_LIMIT);
        assert!(matches!(
            ring.seal_bytes(b"{}", &opts()),
            Err(SealError::KeyExhausted { .. })
        ));
    }

    #[test]
    fn token_debug_hides_the_token() {
        let ring = ring_of(&[("k", 1, Enc::A256Gcm)]);
        let t = ring.seal_bytes(b"{}", &opts()).unwrap();
        assert_eq!(
            format!("{t:?}"),
            format!("SessionToken(<{} bytes>)", t.len())
        );
    }

    fn sample() -> (KeyRing, String) {
        let ring = ring_of(&[("k", 5, Enc::A256Gcm)]);
        let mut c = Claims::new(());
        c.sub = Some("alice".into());
        c.sid = Some("s".into());
        c.exp = Some(UnixTime::from_secs(2_000_000_000));
        let t = ring
            .seal(&c, &TokenOptions::new().with_purpose("p"))
            .unwrap()
            .into_string();
        (ring, t)
    }

    #[test]
    fn every_single_byte_flip_is_rejected() {
        let (ring, tok) = sample();
        let o = TokenOptions::new().with_purpose("p");
        for i in 0..tok.len() {
            for b in [b'A', b'z', b'0', b'-', b'.', b'='] {
                let mut bytes = tok.clone().into_bytes();
                if bytes[i] == b {
                    continue;
                }
                bytes[i] = b;
                let s = String::from_utf8(bytes).unwrap();
                assert!(
                    ring.open_bytes(&s, &o).is_err(),
                    "flip at {i} to {b} opened"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_byte_flip_truncation_or_append_is_rejected(
            i in 0usize..10_000, b in 1u8..=255, cut in 1usize..10_000, tail in ".{1,8}"
        ) {
            let (ring, tok) = sample();
            let o = TokenOptions::new().with_purpose("p");
            let mut bytes = tok.clone().into_bytes();
            let i = i % bytes.len();
            bytes[i] ^= b;
            if let Ok(s) = String::from_utf8(bytes) {
                prop_assert!(ring.open_bytes(&s, &o).is_err());
            }
            let cut = cut % tok.len();
            prop_assert!(ring.open_bytes(&tok[..cut], &o).is_err());
            let longer = format!("{}{}", tok, tail);
            prop_assert!(ring.open_bytes(&longer, &o).is_err());
        }

        #[test]
        fn the_usual_path_agrees_with_the_strict_path(
            edits in proptest::collection::vec(
                (0usize..10_000, 0u8..3, proptest::sample::select(b".=+/-_AQgw0 ".to_vec())),
                1..4,
            )
        ) {
            let (ring, tok) = sample();
            let o = TokenOptions::new().with_purpose("p");
            let mut bytes = tok.into_bytes();
            for (i, op, c) in edits {
                let i = i % (bytes.len() + 1);
                match op {
                    0 if i < bytes.len() => bytes[i] = c,
                    1 if i < bytes.len() => { bytes.remove(i); }
                    _ => bytes.insert(i, c),
                }
            }
            let t = String::from_utf8(bytes).unwrap();
            let seen = |r: Result<Opened<Zeroizing<Vec<u8>>>, OpenError>| {
                r.map(|o| (o.payload().to_vec(), o.kid().to_owned(), o.needs_reseal()))
                    .map_err(|e| format!("{e:?}"))
            };
            if let Some(usual) = ring.open_usual(&t, &o) {
                prop_assert_eq!(seen(usual), seen(ring.open_strict(&t, &o)));
            }
        }

        #[test]
        fn arbitrary_strings_never_panic(s in "\\PC{0,300}") {
            let (ring, _) = sample();
            let _ = ring.open::<Claims<serde_json::Value>>(&s, &opts());
        }

        #[test]
        fn arbitrary_five_segment_tokens_never_panic(
            segs in proptest::collection::vec("[A-Za-z0-9_=+/-]{0,40}", 5)
        ) {
            let (ring, _) = sample();
            let _ = ring.open_bytes(&segs.join("."), &opts());
        }

        #[test]
        fn arbitrary_headers_never_panic(h in proptest::collection::vec(any::<u8>(), 0..80)) {
            let (ring, tok) = sample();
            let rest = tok.split_once('.').unwrap().1;
            let t = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(h));
            prop_assert!(ring.open_bytes(&t, &opts()).is_err());
        }

        #[test]
        fn payload_round_trip(p in proptest::collection::vec(any::<u8>(), 0..2_000)) {
            let (ring, _) = sample();
            let t = ring.seal_bytes(&p, &opts()).unwrap();
            let opened = ring.open_bytes(t.as_str(), &opts()).unwrap();
            prop_assert_eq!(opened.payload().as_slice(), &p[..]);
        }
    }
}
