//! Sealing and opening with a ring: which key seals (the active one, or the one named), which
//! key opens (the one the header names), and the fast path for tokens this ring sealed. The
//! token format itself is `jwe`'s; the header is `header`'s.

use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

use super::KeyRing;
use crate::b64;
use crate::error::{truncate, OpenError, SealError};
use crate::header;
use crate::jwe::{
    check_len, claims_len, decode, finish, parse_claims, seal_with, sealed_len, serialize_claims,
    split, wipe, Decoded, Opened, SessionToken, TokenOptions,
};
use crate::key::Kidless;

impl KeyRing {
    /// Seals `claims` (anything that serializes to a JSON object) with the key active now
    /// (by the system clock; see [`seal_at`](Self::seal_at)).
    ///
    /// # Errors
    /// [`SealError::Claims`]/[`SealError::ClaimsNotObject`] for claims that are not a JSON
    /// object, [`SealError::TooLarge`] past the limit, [`SealError::KeyExhausted`] once the
    /// key's IV budget is spent.
    pub fn seal<T: Serialize + ?Sized>(
        &self,
        claims: &T,
        opts: &TokenOptions,
    ) -> Result<SessionToken, SealError> {
        seal_with(self.active(), serialize_claims(claims)?, opts)
    }

    /// Seals `claims` with the key active at `now` ([`active_at`](Self::active_at)), for
    /// callers with a [`Clock`](crate::Clock) of their own.
    ///
    /// # Errors
    /// As [`seal`](Self::seal).
    pub fn seal_at<T: Serialize + ?Sized>(
        &self,
        claims: &T,
        opts: &TokenOptions,
        now: crate::UnixTime,
    ) -> Result<SessionToken, SealError> {
        seal_with(self.active_at(now), serialize_claims(claims)?, opts)
    }

    /// Checks, without sealing, that `claims` would seal within `opts`' limit under every
    /// key of this ring: the length is that of the longest protected header any key writes
    /// for this purpose, so a rotation to another key cannot push the token over. Returns
    /// that worst-case length.
    ///
    /// The layer calls this when a handler starts or changes a session, so claims too
    /// large for the cookie are refused while the handler can still answer.
    ///
    /// ```
    /// use jwe_session_core::{KeyRing, SealError, TokenOptions};
    ///
    /// let ring = KeyRing::generate();
    /// let opts = TokenOptions::new().with_max_len(300);
    /// assert!(ring.check_fits(&serde_json::json!({"sub": "alice"}), &opts).is_ok());
    /// let big = serde_json::json!({"notes": "x".repeat(300)});
    /// assert!(matches!(ring.check_fits(&big, &opts), Err(SealError::TooLarge { max: 300, .. })));
    /// ```
    ///
    /// # Errors
    /// [`SealError::TooLarge`] past the limit, [`SealError::Claims`] /
    /// [`SealError::ClaimsNotObject`] for claims that are not a JSON object.
    pub fn check_fits<T: Serialize + ?Sized>(
        &self,
        claims: &T,
        opts: &TokenOptions,
    ) -> Result<usize, SealError> {
        let claims_len = claims_len(claims)?;
        let len = self
            .keys()
            .iter()
            .map(|k| {
                sealed_len(
                    k.enc(),
                    k.header_for(opts.purpose.as_ref()).b64.len(),
                    claims_len,
                )
            })
            .max()
            .unwrap_or(0);
        if len > opts.max_len {
            return Err(SealError::TooLarge {
                len,
                max: opts.max_len,
            });
        }
        Ok(len)
    }

    /// Opens a token into `T` (a JSON object's type), without time checks: run
    /// [`Validation`](crate::Validation) on the result.
    ///
    /// # Errors
    /// Any [`OpenError`], in the documented order.
    pub fn open<T: DeserializeOwned>(
        &self,
        token: &str,
        opts: &TokenOptions,
    ) -> Result<Opened<T>, OpenError> {
        let opened = self.open_bytes(token, opts)?;
        let claims = parse_claims(opened.payload());
        let opened = opened.map(wipe);
        let claims = claims?;
        Ok(opened.map(|()| claims))
    }

    /// Seals arbitrary bytes with the active key (the payload need not be JSON).
    ///
    /// # Errors
    /// [`SealError::TooLarge`], [`SealError::KeyExhausted`].
    pub fn seal_bytes(
        &self,
        payload: &[u8],
        opts: &TokenOptions,
    ) -> Result<SessionToken, SealError> {
        seal_with(self.active(), Zeroizing::new(payload.to_vec()), opts)
    }

    /// Seals arbitrary bytes with the key named `kid`.
    ///
    /// # Errors
    /// [`SealError::UnknownKid`], [`SealError::DecryptOnly`], and as
    /// [`seal_bytes`](Self::seal_bytes).
    pub fn seal_bytes_with_kid(
        &self,
        kid: &str,
        payload: &[u8],
        opts: &TokenOptions,
    ) -> Result<SessionToken, SealError> {
        let key = self
            .get(kid)
            .ok_or_else(|| SealError::UnknownKid { kid: truncate(kid) })?;
        if !key.can_seal() {
            return Err(SealError::DecryptOnly {
                kid: key.kid().to_owned(),
            });
        }
        seal_with(key, Zeroizing::new(payload.to_vec()), opts)
    }

    /// Opens a token into its raw payload bytes (zeroized on drop).
    ///
    /// Checks run in this order and the first failure is returned: size limit, five
    /// segments, empty encrypted key, canonical base64url of each segment, header JSON,
    /// `alg == "dir"`, no `zip`, no `crit`, known `kid`, `enc` matching the key, purpose,
    /// IV and tag lengths, and the AEAD.
    ///
    /// # Errors
    /// Any [`OpenError`] up to [`OpenError::Decrypt`].
    pub fn open_bytes(
        &self,
        token: &str,
        opts: &TokenOptions,
    ) -> Result<Opened<Zeroizing<Vec<u8>>>, OpenError> {
        check_len(token, opts)?;
        self.open_usual(token, opts)
            .unwrap_or_else(|| self.open_strict(token, opts))
    }

    /// Every check in the documented order, for any token.
    pub(crate) fn open_strict(
        &self,
        token: &str,
        opts: &TokenOptions,
    ) -> Result<Opened<Zeroizing<Vec<u8>>>, OpenError> {
        let segments = split(token)?;
        let Decoded {
            header_b64,
            header_json,
            iv,
            buf,
            tag,
        } = decode(segments)?;
        let header = header::parse(&header_json)?;
        let enc = header.enc.as_deref();
        let key = match header.kid.as_deref() {
            Some(kid) => self
                .get(kid)
                .ok_or_else(|| OpenError::UnknownKid { kid: truncate(kid) })?,
            None => self.kidless_key(enc)?,
        };
        let enc = enc.ok_or(OpenError::MissingHeader { field: "enc" })?;
        if enc != key.enc().as_str() {
            return Err(OpenError::EncMismatch {
                kid: key.kid().to_owned(),
                expected: key.enc(),
                found: truncate(enc),
            });
        }
        if let Some(expected) = opts.purpose() {
            if header.typ.as_deref() != Some(expected) {
                return Err(OpenError::PurposeMismatch {
                    expected: Some(expected.to_owned()),
                    found: header.typ.as_deref().map(truncate),
                });
            }
        }
        finish(key, header_b64, &iv, buf, &tag)
    }

    /// The key for a token without a `kid`: a key of this ring that opens such tokens
    /// (Auth.js's first secret, NextAuth v4's only key) and whose `enc` is the token's; the
    /// first such key when none matches, so that the `enc` check names the mismatch. A ring
    /// from a JWK Set has none: [`OpenError::MissingHeader`] `kid`, as always.
    fn kidless_key(&self, enc: Option<&str>) -> Result<&crate::Key, OpenError> {
        let mut open = self.keys().iter().filter(|k| k.kidless != Kidless::Refuse);
        let first = open
            .clone()
            .next()
            .ok_or(OpenError::MissingHeader { field: "kid" })?;
        Ok(open
            .find(|k| Some(k.enc().as_str()) == enc)
            .unwrap_or(first))
    }

    /// The shape every token this ring sealed has: a header byte-identical to the one a key
    /// of the ring writes for this purpose (so alg, zip, crit, kid, enc and typ already
    /// passed), an empty encrypted key, a 16-character IV, a 22-character tag, and canonical
    /// base64url throughout. Such a token is opened without splitting or parsing its header.
    ///
    /// Anything else returns `None` and goes through the strict path, which finds the
    /// first failure in the documented order: every token this accepts, the strict path
    /// accepts too, with the same result. Only the AEAD's verdict is final here, as every
    /// check the strict path runs before it has passed.
    pub(crate) fn open_usual(
        &self,
        token: &str,
        opts: &TokenOptions,
    ) -> Option<Result<Opened<Zeroizing<Vec<u8>>>, OpenError>> {
        const IV: usize = b64::encoded_len(12);
        const TAG: usize = b64::encoded_len(16);
        let bytes = token.as_bytes();
        let (key, header) = self.keys().iter().find_map(|k| {
            // AES-GCM's shape only: Auth.js's A256CBC-HS512 tokens take the strict path.
            if k.enc().iv_len() != 12 {
                return None;
            }
            let h = k.header_for(opts.purpose.as_ref());
            let n = h.b64.len();
            (bytes.starts_with(h.b64.as_bytes()) && bytes.get(n..n + 2) == Some(b"..".as_slice()))
                .then_some((k, h))
        })?;
        let rest = bytes.get(header.b64.len() + 2..)?;
        if rest.len() < IV + 1 + 1 + TAG {
            return None;
        }
        let tag_at = rest.len() - TAG;
        if rest[IV] != b'.' || rest[tag_at - 1] != b'.' {
            return None;
        }
        let iv = b64::decode_array::<12>(&rest[..IV])?;
        let tag = b64::decode_array::<16>(&rest[tag_at..])?;
        let buf = b64::decode(&rest[IV + 1..tag_at - 1])?;
        Some(finish(key, &header.b64, &iv, buf, &tag))
    }
}
