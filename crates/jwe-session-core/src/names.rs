//! Names from the JOSE and JWT registries that errors speak of: the content-encryption
//! algorithm and the claim names. A leaf: it imports nothing from its siblings, so the
//! error types can name them without an import circle through `error.rs`.

use std::fmt;

/// The JWE content-encryption algorithm, fixed by the key's length.
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
}

impl Enc {
    /// The name used in JOSE headers: `"A256GCM"` and so on.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::A128Gcm => "A128GCM",
            Self::A192Gcm => "A192GCM",
            Self::A256Gcm => "A256GCM",
        }
    }

    /// The key length in bytes.
    #[must_use]
    pub const fn key_len(self) -> usize {
        match self {
            Self::A128Gcm => 16,
            Self::A192Gcm => 24,
            Self::A256Gcm => 32,
        }
    }

    /// Parses a JOSE `enc` name; exact match only.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "A128GCM" => Some(Self::A128Gcm),
            "A192GCM" => Some(Self::A192Gcm),
            "A256GCM" => Some(Self::A256Gcm),
            _ => None,
        }
    }

    pub(crate) fn from_key_len(len: usize) -> Option<Self> {
        match len {
            16 => Some(Self::A128Gcm),
            24 => Some(Self::A192Gcm),
            32 => Some(Self::A256Gcm),
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
