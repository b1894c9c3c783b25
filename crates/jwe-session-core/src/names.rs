//! Names from the JOSE and JWT registries that errors speak of: the content-encryption
//! algorithm and the claim names. A leaf: it imports nothing from its siblings, so the
//! error types can name them without an import circle through `error.rs`.

use std::fmt;

/// The JWE content-encryption algorithm, fixed by the key's length: AES-GCM for 16, 24 and
/// 32 bytes, `A256CBC-HS512` (RFC 7518 §5.2.5, what Auth.js seals its cookies with) for 64.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Enc {
    /// AES-GCM with a 128-bit key.
    A128Gcm,
    /// AES-GCM with a 192-bit key.
    A192Gcm,
    /// AES-GCM with a 256-bit key: the default and the recommendation.
    #[default]
    A256Gcm,
    /// AES-256-CBC with HMAC-SHA-512 (RFC 7518 §5.2.5), a 64-byte key: the first half keys
    /// the MAC, the second the cipher. Auth.js's session cookies use it.
    A256CbcHs512,
}

impl Enc {
    /// The name used in JOSE headers: `"A256GCM"` and so on.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::A128Gcm => "A128GCM",
            Self::A192Gcm => "A192GCM",
            Self::A256Gcm => "A256GCM",
            Self::A256CbcHs512 => "A256CBC-HS512",
        }
    }

    /// The key length in bytes.
    #[must_use]
    pub const fn key_len(self) -> usize {
        match self {
            Self::A128Gcm => 16,
            Self::A192Gcm => 24,
            Self::A256Gcm => 32,
            Self::A256CbcHs512 => 64,
        }
    }

    /// The IV length in bytes: 12 for AES-GCM, 16 for CBC.
    pub(crate) const fn iv_len(self) -> usize {
        match self {
            Self::A256CbcHs512 => 16,
            _ => 12,
        }
    }

    /// The tag length in bytes: 16 for AES-GCM, 32 for `A256CBC-HS512`.
    pub(crate) const fn tag_len(self) -> usize {
        match self {
            Self::A256CbcHs512 => 32,
            _ => 16,
        }
    }

    /// The ciphertext length for `len` bytes of plaintext (CBC pads to whole blocks).
    pub(crate) const fn ciphertext_len(self, len: usize) -> usize {
        match self {
            Self::A256CbcHs512 => crate::cbc_hs::padded_len(len),
            _ => len,
        }
    }

    /// Parses a JOSE `enc` name; exact match only.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "A128GCM" => Some(Self::A128Gcm),
            "A192GCM" => Some(Self::A192Gcm),
            "A256GCM" => Some(Self::A256Gcm),
            "A256CBC-HS512" => Some(Self::A256CbcHs512),
            _ => None,
        }
    }

    pub(crate) fn from_key_len(len: usize) -> Option<Self> {
        match len {
            16 => Some(Self::A128Gcm),
            24 => Some(Self::A192Gcm),
            32 => Some(Self::A256Gcm),
            64 => Some(Self::A256CbcHs512),
            _ => None,
        }
    }
}

impl fmt::Display for Enc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A claim name, for [`Validation::require`](crate::Validation::require) and [`ValidationError::MissingClaim`](crate::ValidationError::MissingClaim).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Claim {
    /// `iss`
    Iss,
    /// `sub`
    Sub,
    /// `aud`
    Aud,
    /// `exp`
    Exp,
    /// `nbf`
    Nbf,
    /// `iat`
    Iat,
    /// `jti`
    Jti,
    /// `sid`
    Sid,
    /// `auth_time`
    AuthTime,
    /// `started_us` (private: when the session began, in microseconds)
    StartedUs,
    /// `issued_us` (private: when this token was issued, in microseconds)
    IssuedUs,
    /// `slt` (private: this session's own lifetimes, see [`SessionLifetimes`](crate::SessionLifetimes))
    SessionLifetimes,
    /// `cnf` (RFC 7800: the key a bound session's proofs are made with)
    Cnf,
}

impl Claim {
    /// The claim's JSON name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Iss => "iss",
            Self::Sub => "sub",
            Self::Aud => "aud",
            Self::Exp => "exp",
            Self::Nbf => "nbf",
            Self::Iat => "iat",
            Self::Jti => "jti",
            Self::Sid => "sid",
            Self::AuthTime => "auth_time",
            Self::StartedUs => "started_us",
            Self::IssuedUs => "issued_us",
            Self::SessionLifetimes => "slt",
            Self::Cnf => "cnf",
        }
    }
}
