//! The layer's options that are not the builder: where tokens travel, how a missing
//! session is answered, what the renew hook may say, and the defaults.

use std::sync::Arc;

use jwe_session_core::{BoxFuture, Claims};

/// Where the layer looks for a token and where it writes one back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Transport {
    /// An `HttpOnly` cookie (browsers). The default.
    #[default]
    Cookie,
    /// `Authorization: Bearer <token>` in, the renewal header out (APIs, gRPC metadata).
    Bearer,
    /// Either: a bearer header wins over a cookie when both are sent.
    Both,
}

impl Transport {
    pub(crate) fn cookie(self) -> bool {
        matches!(self, Self::Cookie | Self::Both)
    }

    pub(crate) fn bearer(self) -> bool {
        matches!(self, Self::Bearer | Self::Both)
    }
}

/// How a request without a session is answered when a handler requires one (the
/// `Session<T>` extractor's rejection, feature `axum`).
///
/// Either way the status is `401`, and with the bearer transport the response carries
/// `WWW-Authenticate: Bearer` (RFC 6750 §3), with `error="invalid_token"` when the request
/// sent a token that was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RejectionFormat {
    /// `text/plain`: `no valid session: log in first`. The default.
    #[default]
    PlainText,
    /// `application/json`: `{"error":"no_session","message":"no valid session: log in first"}`.
    Json,
}

/// The default response header (and gRPC metadata key) that carries a new or renewed token
/// to bearer clients.
pub const DEFAULT_TOKEN_HEADER: &str = "x-session-token";

/// The default cookie name, before the `__Host-` prefix the layer adds by default: the
/// browser sees `__Host-session`.
pub const DEFAULT_COOKIE_NAME: &str = "session";

/// How many recently opened tokens a layer keeps by default
/// ([`SessionLayerBuilder::token_cache`](crate::SessionLayerBuilder::token_cache)).
pub const DEFAULT_TOKEN_CACHE: usize = 1024;

/// What a renew hook decides for a session being renewed after `exp` (or early, for a
/// claims refresh, or for a long-lived connection's
/// [`recheck`](crate::SessionHandle::recheck)).
#[derive(Debug)]
#[non_exhaustive]
pub enum Renew<T> {
    /// Renew with the claims as they are.
    Keep,
    /// Renew with these application claims instead (fresh roles from a database, say).
    Update(T),
    /// End the session (the account was banned, say): no session, cookie cleared.
    Refuse,
    /// The hook cannot decide now (its database does not answer): no renewal and no
    /// session for this request, but the cookie is kept, and the next request asks again.
    /// The fail-closed answer for the hook's own data, as the layer's for the revocation
    /// store: answering [`Keep`](Self::Keep) instead would let a user banned during the
    /// outage renew with their old claims.
    Unavailable,
}

pub(crate) type RenewHook<T> = Arc<dyn Fn(Claims<T>) -> BoxFuture<'static, Renew<T>> + Send + Sync>;

/// What a login does when its user already has as many live sessions as
/// [`SessionLayerBuilder::max_sessions_per_user`](crate::SessionLayerBuilder::max_sessions_per_user)
/// allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OverCap {
    /// The new session starts and the user's oldest sessions end (revoked on every
    /// instance), so at most the cap remain. The default.
    #[default]
    EndOldest,
    /// The new login is refused with [`StartError::TooManySessions`](crate::StartError::TooManySessions)
    /// until the user ends a session. Checked by
    /// [`SessionHandle::start_checked`](crate::SessionHandle::start_checked), which reads the
    /// registry; the synchronous `start`, `start_with` and `issue` cannot, and refuse with
    /// [`StartError::CapNeedsCheckedStart`](crate::StartError::CapNeedsCheckedStart).
    RefuseNew,
}

/// The per-user session cap: at most `max` live sessions, and what a login beyond it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SessionCap {
    pub(crate) max: usize,
    pub(crate) policy: OverCap,
}

/// What the session registry ("your devices") records about the device a session was
/// started on, beside the session id, subject, start, last renewal and binding the layer
/// records itself. Nothing is recorded unless the app supplies it at login
/// ([`SessionHandle::describe_device`](crate::SessionHandle::describe_device)).
///
/// ```
/// use jwe_session::DeviceInfo;
///
/// let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";
/// let info = DeviceInfo::from_user_agent(ua).network([203, 0, 113, 77].into());
/// assert_eq!(info.label_text(), Some("Chrome on Linux"));
/// assert_eq!(info.network_text(), Some("203.0.113.0/24"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    label: Option<String>,
    network: Option<String>,
}

impl DeviceInfo {
    /// Nothing recorded.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A short label the user will recognize ("Firefox on Linux", "Work laptop"): control
    /// characters dropped, at most 128 bytes kept.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// A coarse network hint from the client's address: its `/24` (IPv4) or `/48` (IPv6),
    /// never the address itself.
    #[must_use]
    pub fn network(mut self, ip: std::net::IpAddr) -> Self {
        use std::net::IpAddr;
        self.network = Some(match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                format!("{a}.{b}.{c}.0/24")
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
                format!("{net}/48")
            }
        });
        self
    }

    /// The client's full address as the network hint.
    ///
    /// # Security
    /// A full address is personal data: keep it only where your privacy notice says so.
    /// [`network`](Self::network) keeps only the network.
    #[must_use]
    pub fn exact_network(mut self, ip: std::net::IpAddr) -> Self {
        self.network = Some(ip.to_string());
        self
    }

    /// A label derived from a `User-Agent` header: the browser family and the operating
    /// system ("Firefox on Windows", "Safari on iOS"), or `None` for what it does not
    /// recognize. Coarse on purpose: a label for a person, not a fingerprint.
    #[must_use]
    pub fn from_user_agent(user_agent: &str) -> Self {
        let ua = user_agent;
        let browser = [
            ("Edg/", "Edge"),
            ("OPR/", "Opera"),
            ("Firefox/", "Firefox"),
            ("Chrome/", "Chrome"),
            ("Chromium/", "Chromium"),
            ("Safari/", "Safari"),
            ("curl/", "curl"),
        ]
        .into_iter()
        .find(|(needle, _)| ua.contains(needle))
        .map(|(_, name)| name);
        let os = [
            ("Android", "Android"),
            ("iPhone", "iOS"),
            ("iPad", "iPadOS"),
            ("CrOS", "ChromeOS"),
            ("Windows", "Windows"),
            ("Mac OS X", "macOS"),
            ("Linux", "Linux"),
        ]
        .into_iter()
        .find(|(needle, _)| ua.contains(needle))
        .map(|(_, name)| name);
        let label = match (browser, os) {
            (Some(b), Some(o)) => Some(format!("{b} on {o}")),
            (Some(b), None) => Some(b.to_owned()),
            (None, Some(o)) => Some(o.to_owned()),
            (None, None) => None,
        };
        Self {
            label,
            network: None,
        }
    }

    /// The label, if any.
    #[must_use]
    pub fn label_text(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// The network hint, if any.
    #[must_use]
    pub fn network_text(&self) -> Option<&str> {
        self.network.as_deref()
    }
}
