//! Why a layer could not be built.

use std::fmt;

/// Why a configuration was refused. `Debug` reads as `Display` followed by the variant,
/// so `?` in `main` prints what to change.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A cookie name must be 1..=64 characters of `A-Z a-z 0-9 - _`.
    InvalidCookieName {
        /// The name given.
        name: String,
    },
    /// `__Host-` cookies may not have a `Domain` (RFC 6265bis §4.1.3.2). The prefix is the
    /// default: a cookie shared with subdomains needs `.dangerous().no_host_prefix()`.
    HostPrefixWithDomain,
    /// `__Host-` cookies must have `Path=/`. The prefix is the default: a cookie scoped
    /// to a path needs `.dangerous().no_host_prefix()`.
    HostPrefixWithPath {
        /// The path given.
        path: String,
    },
    /// `__Host-` cookies must be `Secure`.
    HostPrefixInsecure,
    /// The token header name is not a valid HTTP header name.
    InvalidHeaderName {
        /// The name given.
        name: String,
    },
    /// `max_chunks` must be 1..=16.
    InvalidMaxChunks {
        /// The value given.
        max_chunks: usize,
    },
    /// A trusted origin must be `http://host[:port]` or `https://host[:port]`.
    InvalidTrustedOrigin {
        /// The origin given.
        origin: String,
    },
    /// A path exempt from cross-origin protection must start with `/`.
    InvalidExemptPath {
        /// The path given.
        path: String,
    },
    /// The revocation store keeps a logout in memory for less time than a token issued
    /// before it can be used without a lookup (the access lifetime plus leeway), or, with
    /// fail-open renewal, can still be renewed from memory: a revoked token would be
    /// accepted. Raise the store's window (e.g. `RedisStoreBuilder::mirror_window`).
    StoreWindowTooShort {
        /// How long the store keeps one.
        window: std::time::Duration,
        /// How long this layer needs.
        needed: std::time::Duration,
    },
    /// DPoP binds tokens sent in `Authorization`: the transport must be
    /// [`Transport::Bearer`](crate::Transport::Bearer) or [`Transport::Both`](crate::Transport::Both).
    DpopWithoutBearer,
    /// Device-bound sessions (DBSC) are browser cookies: the transport must carry cookies.
    DeviceBoundWithoutCookie,
    /// Device-bound sessions need HTTPS: browsers register them only for a `Secure` cookie.
    DeviceBoundInsecure,
    /// A DBSC endpoint path must start with `/`, be distinct from the other one, and have
    /// no query, fragment, `;`, `"` or whitespace.
    InvalidDeviceBoundPath {
        /// The path given.
        path: String,
    },
    /// The bound lifetime must be more than zero and at most the access lifetime (the
    /// revocation store's window is sized for that).
    DeviceBoundLifetime {
        /// The bound lifetime given.
        bound: std::time::Duration,
        /// The access lifetime, the longest allowed.
        access: std::time::Duration,
    },
    /// A DPoP public origin must be `http://host[:port]` or `https://host[:port]`.
    InvalidDpopOrigin {
        /// The origin given.
        origin: String,
    },
    /// A session cap of zero would refuse every login.
    SessionCapZero,
    /// A session cap counts the sessions the store's registry lists, and this revocation
    /// store keeps none.
    SessionCapWithoutRegistry,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::StoreWindowTooShort { window, needed } => write!(
                f,
                "the revocation store keeps a logout in memory for {}s, but tokens issued before \
                 it stay usable without a lookup for {}s (with fail-open renewal: renewable \
                 from memory); raise the store's window",
                window.as_secs(),
                needed.as_secs()
            ),
            Self::InvalidCookieName { name } => write!(
                f,
                "cookie name {name:?} is not allowed: use 1 to 64 of A-Z a-z 0-9 - _"
            ),
            Self::HostPrefixWithDomain => f.write_str(
                "a __Host- cookie (the default) cannot have a Domain: drop cookie_domain, or \
                 share the cookie with subdomains through .dangerous().no_host_prefix()",
            ),
            Self::HostPrefixWithPath { path } => write!(
                f,
                "a __Host- cookie (the default) must have Path=/, not {path:?}: drop \
                 cookie_path, or scope the cookie through .dangerous().no_host_prefix()"
            ),
            Self::HostPrefixInsecure => f.write_str("a __Host- cookie must be Secure"),
            Self::InvalidHeaderName { name } => write!(f, "{name:?} is not a valid header name"),
            Self::InvalidMaxChunks { max_chunks } => {
                write!(f, "max_chunks is {max_chunks}; use 1 to 16")
            }
            Self::InvalidTrustedOrigin { origin } => write!(
                f,
                "trusted origin {origin:?} is not scheme://host[:port] (http or https, no path)"
            ),
            Self::InvalidExemptPath { path } => {
                write!(f, "exempt path {path:?} does not start with '/'")
            }
            Self::DeviceBoundWithoutCookie => f.write_str(
                "device-bound sessions are cookies: use Transport::Cookie or Transport::Both",
            ),
            Self::DeviceBoundInsecure => f.write_str(
                "device-bound sessions need HTTPS and a Secure cookie (not allow_insecure_cookie or local development)",
            ),
            Self::InvalidDeviceBoundPath { path } => write!(
                f,
                "DBSC endpoint path {path:?} must start with '/', differ from the other, and have no query, ';', '\"' or whitespace"
            ),
            Self::DeviceBoundLifetime { bound, access } => write!(
                f,
                "the bound lifetime {bound:?} must be more than zero and at most the access lifetime {access:?}"
            ),
            Self::DpopWithoutBearer => f.write_str(
                "DPoP needs tokens in the Authorization header: use Transport::Bearer or Transport::Both",
            ),
            Self::InvalidDpopOrigin { origin } => write!(
                f,
                "DPoP public origin {origin:?} is not scheme://host[:port] (http or https, no path)"
            ),
            Self::SessionCapZero => {
                f.write_str("max_sessions_per_user is 0, which would refuse every login: use 1 or more")
            }
            Self::SessionCapWithoutRegistry => f.write_str(
                "max_sessions_per_user needs a revocation store that keeps a session registry (MemoryStore, FileStore and RedisStore do)",
            ),
        }
    }
}

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variant = match self {
            Self::InvalidCookieName { .. } => "ConfigError::InvalidCookieName",
            Self::HostPrefixWithDomain => "ConfigError::HostPrefixWithDomain",
            Self::HostPrefixWithPath { .. } => "ConfigError::HostPrefixWithPath",
            Self::HostPrefixInsecure => "ConfigError::HostPrefixInsecure",
            Self::InvalidHeaderName { .. } => "ConfigError::InvalidHeaderName",
            Self::InvalidMaxChunks { .. } => "ConfigError::InvalidMaxChunks",
            Self::InvalidTrustedOrigin { .. } => "ConfigError::InvalidTrustedOrigin",
            Self::InvalidExemptPath { .. } => "ConfigError::InvalidExemptPath",
            Self::StoreWindowTooShort { .. } => "ConfigError::StoreWindowTooShort",
            Self::DpopWithoutBearer => "ConfigError::DpopWithoutBearer",
            Self::DeviceBoundWithoutCookie => "ConfigError::DeviceBoundWithoutCookie",
            Self::DeviceBoundInsecure => "ConfigError::DeviceBoundInsecure",
            Self::InvalidDeviceBoundPath { .. } => "ConfigError::InvalidDeviceBoundPath",
            Self::DeviceBoundLifetime { .. } => "ConfigError::DeviceBoundLifetime",
            Self::InvalidDpopOrigin { .. } => "ConfigError::InvalidDpopOrigin",
            Self::SessionCapZero => "ConfigError::SessionCapZero",
            Self::SessionCapWithoutRegistry => "ConfigError::SessionCapWithoutRegistry",
        };
        jwe_session_core::debug_report(self, variant, f)
    }
}

impl std::error::Error for ConfigError {}
