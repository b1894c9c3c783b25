//! Device Bound Session Credentials (DBSC, W3C WebAppSec draft) in the layer: browser
//! sessions bound to a key the browser keeps (in a TPM, where it has one), statelessly.
//!
//! - **Registration.** A response that starts a session carries
//!   `Secure-Session-Registration` with a challenge sealed under the ring for that session.
//!   The browser makes a key and posts a proof by it to the registration endpoint; the
//!   layer moves the session to a new `sid` (revoking the one the unbound cookie had, so a
//!   copy of it stops working), binds it to the key (`cnf`, with the key itself), and
//!   answers the session instructions.
//! - **The bound cookie** lives the bound lifetime (10 minutes by default) and is never
//!   renewed by an ordinary request: past its `exp` it is refused.
//! - **The binding cookie** (sealed: the session's claims with its key) goes only to the
//!   refresh endpoint (`Path`, `SameSite=Strict`). A refresh without a proof gets `403`
//!   and a challenge; with a proof by the session's key, the same checks as a renewal
//!   (the store's authoritative revocation check, the absolute lifetime, the renew hook),
//!   then the next bound cookie. A revoked or expired session is told `"continue": false`.
//!
//! The endpoints themselves are in `endpoints`; here are the configuration, the challenges,
//! the binding cookie and the instructions.
//!
//! The key, the challenges and the session travel sealed; the revocation list stays the
//! only server state. Someone who copies every cookie of the browser holds the session for
//! the rest of the bound lifetime at most: the next cookie needs the device's key.

use std::fmt;
use std::time::Duration;

use http::header::HOST;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use jwe_session_core::{Claims, DbscError, KeyRing, Lifetimes, TokenOptions, UnixMicros, UnixTime};
use serde::{Deserialize, Serialize};

use crate::cookies::CookieSettings;

/// The response header that asks a browser to register a device-bound session.
pub const SECURE_SESSION_REGISTRATION: HeaderName =
    HeaderName::from_static("secure-session-registration");
/// The request header that carries a DBSC proof.
pub const SECURE_SESSION_RESPONSE: HeaderName = HeaderName::from_static("secure-session-response");
/// The response header that carries a refresh challenge.
pub const SECURE_SESSION_CHALLENGE: HeaderName =
    HeaderName::from_static("secure-session-challenge");
/// The request header that names the session a refresh is for.
pub const SEC_SECURE_SESSION_ID: HeaderName = HeaderName::from_static("sec-secure-session-id");

/// The registration endpoint's default path.
pub const DEFAULT_REGISTER_PATH: &str = "/session/dbsc/register";
/// The refresh endpoint's default path.
pub const DEFAULT_REFRESH_PATH: &str = "/session/dbsc/refresh";
/// How long a bound cookie lives by default: 10 minutes.
pub const DEFAULT_BOUND_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// How long a challenge is accepted by default: 5 minutes (browsers may cache one).
pub const DEFAULT_CHALLENGE_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// The algorithms the layer verifies, as the registration header lists them.
const ALGS: &str = "(ES256)";

/// How far ahead of this clock a challenge's moment may be (another instance's clock).
const CHALLENGE_LEEWAY: Duration = Duration::from_secs(5);

/// How the layer binds browser sessions to a device key
/// ([`SessionLayerBuilder::device_bound`](crate::SessionLayerBuilder::device_bound)).
///
/// ```
/// use std::time::Duration;
/// use jwe_session::DeviceBoundConfig;
///
/// let dbsc = DeviceBoundConfig::new()
///     .bound_lifetime(Duration::from_secs(5 * 60))
///     .public_origin("https://app.example.com");
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct DeviceBoundConfig {
    pub(crate) register_path: String,
    pub(crate) refresh_path: String,
    pub(crate) bound_lifetime: Duration,
    pub(crate) challenge_lifetime: Duration,
    pub(crate) origin: Option<String>,
    pub(crate) include_site: bool,
}

impl Default for DeviceBoundConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl DeviceBoundConfig {
    /// The defaults: endpoints at [`DEFAULT_REGISTER_PATH`] and [`DEFAULT_REFRESH_PATH`],
    /// bound cookies of [`DEFAULT_BOUND_LIFETIME`], challenges accepted for
    /// [`DEFAULT_CHALLENGE_LIFETIME`], the session scoped to the request's origin.
    pub fn new() -> Self {
        Self {
            register_path: DEFAULT_REGISTER_PATH.to_owned(),
            refresh_path: DEFAULT_REFRESH_PATH.to_owned(),
            bound_lifetime: DEFAULT_BOUND_LIFETIME,
            challenge_lifetime: DEFAULT_CHALLENGE_LIFETIME,
            origin: None,
            include_site: false,
        }
    }

    /// The registration endpoint's path (an absolute path, checked by `build`).
    pub fn register_path(mut self, path: impl Into<String>) -> Self {
        self.register_path = path.into();
        self
    }

    /// The refresh endpoint's path (an absolute path, checked by `build`); the binding
    /// cookie is scoped to it.
    pub fn refresh_path(mut self, path: impl Into<String>) -> Self {
        self.refresh_path = path.into();
        self
    }

    /// How long a bound cookie (and its token's `exp`) lives: what a thief holding every
    /// cookie can use the session for at most. At most the access lifetime (checked by
    /// `build`).
    pub fn bound_lifetime(mut self, lifetime: Duration) -> Self {
        self.bound_lifetime = lifetime;
        self
    }

    /// How long a challenge is accepted after it was made.
    pub fn challenge_lifetime(mut self, lifetime: Duration) -> Self {
        self.challenge_lifetime = lifetime;
        self
    }

    /// The origin the session instructions name as the session's scope
    /// (`https://app.example.com`); by default `https://` and the request's `Host`.
    pub fn public_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Scope the session to the whole site (`include_site`), not only the origin. Only
    /// valid when the origin's host is the registrable domain itself.
    pub fn include_site(mut self, include: bool) -> Self {
        self.include_site = include;
        self
    }
}

/// Why a DBSC request was refused. Counted in `jwe_session_dbsc_refusals_total{reason}`
/// ([`as_str`](Self::as_str)); the handler never runs for the endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DbscRefusal {
    /// The proof did not verify (form, `typ`, `alg`, key, signature, claims).
    Proof(DbscError),
    /// Not exactly one readable `Secure-Session-Response` header.
    Header,
    /// The challenge is not one this layer sealed (or for the other endpoint).
    Challenge,
    /// The challenge is older than the challenge lifetime, or ahead of this clock.
    ChallengeStale,
    /// The challenge was made for another session.
    ChallengeSession,
    /// A registration without a valid session cookie.
    NoSession,
    /// A registration for a session that is bound already (a replayed registration).
    AlreadyBound,
    /// The proof's `authorization` does not match the request's.
    Authorization,
    /// A refresh without a binding cookie, or with one that does not open.
    Binding,
    /// `Sec-Secure-Session-Id` names another session than the binding cookie's.
    SessionId,
    /// The session is revoked (or the renew hook refused it).
    Revoked,
    /// The session is past its idle window or absolute lifetime.
    Expired,
    /// The store (fail-closed) or the renew hook cannot answer now.
    Unavailable,
}

impl DbscRefusal {
    /// The metrics label, a fixed set.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Proof(e) => e.as_str(),
            Self::Header => "header",
            Self::Challenge => "challenge",
            Self::ChallengeStale => "challenge_stale",
            Self::ChallengeSession => "challenge_session",
            Self::NoSession => "no_session",
            Self::AlreadyBound => "already_bound",
            Self::Authorization => "authorization",
            Self::Binding => "binding",
            Self::SessionId => "session_id",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for DbscRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Proof(e) => e.fmt(f),
            Self::Header => f.write_str("not exactly one readable Secure-Session-Response header"),
            Self::Challenge => f.write_str("a DBSC challenge this layer did not make"),
            Self::ChallengeStale => f.write_str("a DBSC challenge that is no longer recent"),
            Self::ChallengeSession => f.write_str("a DBSC challenge made for another session"),
            Self::NoSession => f.write_str("a DBSC registration without a session"),
            Self::AlreadyBound => f.write_str("a DBSC registration for a bound session"),
            Self::Authorization => {
                f.write_str("a DBSC proof whose authorization does not match the request's")
            }
            Self::Binding => f.write_str("a DBSC refresh without a valid binding cookie"),
            Self::SessionId => {
                f.write_str("a DBSC refresh for another session than its binding cookie's")
            }
            Self::Revoked => f.write_str("the device-bound session was revoked"),
            Self::Expired => f.write_str("the device-bound session has expired"),
            Self::Unavailable => f.write_str("the session cannot be checked now"),
        }
    }
}

impl std::error::Error for DbscRefusal {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Proof(e) => Some(e),
            _ => None,
        }
    }
}

/// What a challenge is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    Register,
    Refresh,
}

impl Purpose {
    const fn code(self) -> u8 {
        match self {
            Self::Register => 1,
            Self::Refresh => 2,
        }
    }
}

/// A sealed challenge's content: the session, the purpose, the moment (microseconds).
#[derive(Serialize, Deserialize)]
struct ChallengeBody {
    s: String,
    p: u8,
    t: u64,
}

/// Which endpoint a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Register,
    Refresh,
}

/// The layer's DBSC at run time.
pub(crate) struct DeviceBound {
    pub(crate) config: DeviceBoundConfig,
    /// The binding cookie: `Path` the refresh endpoint, `SameSite=Strict`, `Secure`.
    pub(crate) binding: CookieSettings,
    pub(crate) binding_opts: TokenOptions,
    challenge_opts: TokenOptions,
}

impl fmt::Debug for DeviceBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceBound")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl DeviceBound {
    /// Resolves a configuration for the session cookie `cookie_name` (its full name) and
    /// the layer's purpose.
    pub(crate) fn new(
        config: DeviceBoundConfig,
        cookie_name: &str,
        domain: Option<String>,
        max_chunks: usize,
        max_len: usize,
        purpose: &str,
    ) -> Self {
        // `__Host-` requires `Path=/`; the binding cookie's path is the refresh endpoint.
        let base = cookie_name
            .strip_prefix("__Host-")
            .or_else(|| cookie_name.strip_prefix("__Secure-"))
            .unwrap_or(cookie_name);
        let binding = CookieSettings::new(
            format!("__Secure-{base}-dbsc"),
            domain,
            config.refresh_path.clone(),
            cookie::SameSite::Strict,
            true,
            max_chunks,
        );
        let binding_len = max_len.min(binding.capacity());
        Self {
            binding_opts: TokenOptions::new()
                .with_max_len(binding_len)
                .with_purpose(format!("{purpose}/dbsc-binding")),
            challenge_opts: TokenOptions::new()
                .with_max_len(jwe_session_core::MAX_CHALLENGE_LEN)
                .with_purpose(format!("{purpose}/dbsc-challenge")),
            binding,
            config,
        }
    }

    /// Which endpoint, if any, a request is for.
    pub(crate) fn endpoint(&self, path: &str) -> Option<Endpoint> {
        if path == self.config.register_path {
            Some(Endpoint::Register)
        } else if path == self.config.refresh_path {
            Some(Endpoint::Refresh)
        } else {
            None
        }
    }

    fn challenge(
        &self,
        ring: &KeyRing,
        sid: &str,
        purpose: Purpose,
        now: UnixMicros,
    ) -> Option<String> {
        let body = ChallengeBody {
            s: sid.to_owned(),
            p: purpose.code(),
            t: now.as_micros(),
        };
        ring.seal_at(&body, &self.challenge_opts, now.secs())
            .ok()
            .map(jwe_session_core::SessionToken::into_string)
    }

    /// Judges a proof's challenge: sealed here, for `purpose`, for session `sid`, recent.
    pub(crate) fn check_challenge(
        &self,
        ring: &KeyRing,
        challenge: &str,
        purpose: Purpose,
        sid: &str,
        now: UnixMicros,
    ) -> Result<(), DbscRefusal> {
        let opened = ring
            .open::<ChallengeBody>(challenge, &self.challenge_opts)
            .map_err(|_| DbscRefusal::Challenge)?;
        let body = opened.payload();
        if body.p != purpose.code() {
            return Err(DbscRefusal::Challenge);
        }
        let made = UnixMicros::from_micros(body.t);
        let age = Duration::from_micros(now.as_micros().saturating_sub(body.t));
        if age > self.config.challenge_lifetime || made > now.saturating_add(CHALLENGE_LEEWAY) {
            return Err(DbscRefusal::ChallengeStale);
        }
        if !crate::opened::same(&body.s, sid) {
            return Err(DbscRefusal::ChallengeSession);
        }
        Ok(())
    }

    /// The `Secure-Session-Registration` value for a session just started.
    pub(crate) fn registration_header(
        &self,
        ring: &KeyRing,
        sid: &str,
        now: UnixMicros,
    ) -> Option<HeaderValue> {
        let challenge = self.challenge(ring, sid, Purpose::Register, now)?;
        HeaderValue::try_from(format!(
            r#"{ALGS};path="{}";challenge="{challenge}""#,
            self.config.register_path
        ))
        .ok()
    }

    pub(crate) fn challenge_header(
        &self,
        ring: &KeyRing,
        id: &str,
        now: UnixMicros,
    ) -> Option<HeaderValue> {
        let challenge = self.challenge(ring, id, Purpose::Refresh, now)?;
        HeaderValue::try_from(format!(r#""{challenge}";id="{id}""#)).ok()
    }

    /// Writes the binding cookie for a device-bound session's claims, living as long as
    /// the session may renew (`max_age`).
    pub(crate) fn write_binding<T: Serialize>(
        &self,
        ring: &KeyRing,
        claims: &Claims<T>,
        now: UnixTime,
        max_age: Option<Duration>,
        headers: &mut HeaderMap,
    ) {
        match ring.seal_at(claims, &self.binding_opts, now) {
            Ok(token) => self.binding.write(headers, token.as_str(), max_age, 0),
            Err(e) => {
                tracing::warn!(error = %e, "the DBSC binding cookie could not be sealed; the session cannot refresh");
            }
        }
    }

    /// The next bound `exp`: the bound lifetime from `issued`, never past the session's
    /// absolute end.
    pub(crate) fn extend<T>(
        &self,
        lifetimes: &Lifetimes,
        claims: &mut Claims<T>,
        issued: UnixTime,
    ) {
        let life = lifetimes.for_claims(claims);
        let mut exp = issued.saturating_add(self.config.bound_lifetime);
        if let Some(auth) = claims.auth_time {
            exp = exp.min(auth.saturating_add(life.absolute()));
        }
        claims.exp = Some(exp);
    }

    /// The session instructions (registration, refresh).
    pub(crate) fn instructions(
        &self,
        id: &str,
        shared_cookie: &CookieSettings,
        origin: &str,
    ) -> String {
        serde_json::json!({
            "session_identifier": id,
            "refresh_url": self.config.refresh_path,
            "scope": {
                "origin": origin,
                "include_site": self.config.include_site,
            },
            "credentials": [{
                "type": "cookie",
                "name": shared_cookie.name(),
                "attributes": shared_cookie.attributes(),
            }],
        })
        .to_string()
    }

    pub(crate) fn origin(&self, uri: &Uri, headers: &HeaderMap) -> String {
        if let Some(o) = &self.config.origin {
            return o.clone();
        }
        let host = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| headers.get(HOST)?.to_str().ok().map(str::to_owned))
            .unwrap_or_default();
        format!("https://{host}")
    }
}
