//! [`SessionLayerBuilder`] and [`DangerousOptions`]: every option, checked once at `build`.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use cookie::SameSite;
use http::HeaderName;
use jwe_session_core::{
    Claim, Claims, Clock, KeyRingHandle, Lifetimes, MemoryStore, RevocationStore, SystemClock,
    TokenOptions, UnixTime, Validation, DEFAULT_MAX_TOKEN_LEN,
};

use crate::cookies::CookieSettings;
use crate::dbsc::{DeviceBound, DeviceBoundConfig};
use crate::dpop::{Dpop, DpopConfig};
use crate::opened::OpenedCache;
use crate::origin::CrossOrigin;

use crate::error::ConfigError;
use crate::layer::SessionLayer;
use crate::options::{
    OverCap, RejectionFormat, Renew, RenewHook, SessionCap, Transport, DEFAULT_COOKIE_NAME,
    DEFAULT_TOKEN_CACHE, DEFAULT_TOKEN_HEADER,
};
use crate::shared::{Moments, Shared};

// Here, not in `layer`: the builder builds the layer, so the layer does not import it.
impl<T: Send + 'static> SessionLayer<T> {
    /// Starts a configuration with secure defaults around a key ring (or a
    /// [`KeyRingHandle`] for rings swapped at run time).
    pub fn builder(ring: impl Into<KeyRingHandle>) -> SessionLayerBuilder<T> {
        SessionLayerBuilder::new(ring.into())
    }
}

/// Builds a [`SessionLayer`](crate::SessionLayer). Every default is the secure choice;
/// options that weaken security say so in their names.
#[must_use]
pub struct SessionLayerBuilder<T> {
    ring: KeyRingHandle,
    cookie_name: String,
    /// `None`: the default (on, unless the cookie is not `Secure`); `Some` when chosen.
    host_prefix: Option<bool>,
    domain: Option<String>,
    path: String,
    same_site: SameSite,
    secure: bool,
    max_chunks: usize,
    max_token_len: usize,
    purpose: Option<String>,
    lifetimes: Lifetimes,
    leeway: Duration,
    issuer: Option<String>,
    audience: Option<String>,
    transport: Transport,
    token_header: String,
    store: Arc<dyn RevocationStore>,
    clock: Arc<dyn Clock>,
    renew: Option<RenewHook<T>>,
    fail_open: bool,
    cross_origin: bool,
    trusted_origins: Vec<String>,
    exempt_paths: Vec<String>,
    issuer_grace: Option<UnixTime>,
    rejection: RejectionFormat,
    local_development: bool,
    token_cache: usize,
    dpop: Option<DpopConfig>,
    dbsc: Option<DeviceBoundConfig>,
    cap: Option<SessionCap>,
    _claims: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for SessionLayerBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayerBuilder")
            .field("ring", &self.ring)
            .field("cookie_name", &self.cookie_name)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> SessionLayerBuilder<T> {
    pub(crate) fn new(ring: KeyRingHandle) -> Self {
        Self {
            ring,
            cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
            host_prefix: None,
            domain: None,
            path: "/".to_owned(),
            same_site: SameSite::Lax,
            secure: true,
            max_chunks: 5,
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            purpose: None,
            lifetimes: Lifetimes::default(),
            leeway: Duration::ZERO,
            issuer: None,
            audience: None,
            transport: Transport::Cookie,
            token_header: DEFAULT_TOKEN_HEADER.to_owned(),
            store: Arc::new(MemoryStore::new()),
            clock: Arc::new(SystemClock),
            renew: None,
            fail_open: false,
            cross_origin: true,
            trusted_origins: Vec::new(),
            exempt_paths: Vec::new(),
            issuer_grace: None,
            rejection: RejectionFormat::PlainText,
            local_development: false,
            token_cache: DEFAULT_TOKEN_CACHE,
            dpop: None,
            dbsc: None,
            cap: None,
            _claims: PhantomData,
        }
    }

    /// The cookie name (default `session`, sent as `__Host-session`: see
    /// [`host_prefix`](Self::host_prefix)); chunks are `NAME.1`, `NAME.2`, ...
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// Prefixes the cookie name with `__Host-` (the default): the browser then insists on
    /// `Secure`, `Path=/` and no `Domain`, so no subdomain can plant or overwrite the
    /// cookie. The default gives way only to an insecure cookie
    /// ([`allow_insecure_cookie`](DangerousOptions::allow_insecure_cookie),
    /// [`local_development`](DangerousOptions::local_development)), which cannot carry it;
    /// calling this makes it a requirement ([`ConfigError::HostPrefixInsecure`] then).
    ///
    /// # Security
    /// A cookie without the prefix can be planted by any sibling subdomain, with a
    /// `Domain` and a longer `Path` that browsers send first: a login CSRF that no
    /// cross-origin check sees, and chunk debris that breaks chunked sessions. Turn it
    /// off only with [`no_host_prefix`](DangerousOptions::no_host_prefix).
    pub fn host_prefix(mut self) -> Self {
        self.host_prefix = Some(true);
        self.path = "/".to_owned();
        self
    }

    /// Sets the cookie's `Domain`, sharing it with subdomains (default: host only). A
    /// `__Host-` cookie (the default) cannot have one: this needs
    /// [`no_host_prefix`](DangerousOptions::no_host_prefix)
    /// ([`ConfigError::HostPrefixWithDomain`] otherwise).
    pub fn cookie_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Sets the cookie's `Path` (default `/`). A `__Host-` cookie (the default) must have
    /// `Path=/`: another path needs [`no_host_prefix`](DangerousOptions::no_host_prefix)
    /// ([`ConfigError::HostPrefixWithPath`] otherwise).
    pub fn cookie_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Sets `SameSite=Strict` instead of the default `Lax`.
    pub fn same_site_strict(mut self) -> Self {
        self.same_site = SameSite::Strict;
        self
    }

    /// At most this many cookies carry one token (default 5; 1 disables chunking).
    pub fn max_chunks(mut self, n: usize) -> Self {
        self.max_chunks = n;
        self
    }

    /// The longest token accepted or produced, in bytes (default 16 KiB).
    pub fn max_token_len(mut self, n: usize) -> Self {
        self.max_token_len = n;
        self
    }

    /// The purpose tokens are bound to (the header's `typ`): a token sealed for one
    /// purpose never opens for another.
    ///
    /// Default: `jwe-session/cookie/<cookie name>` (or `jwe-session/bearer` for bearer-only
    /// layers), followed by `;iss=<issuer>` when an [`issuer`](Self::issuer) is set. Tokens
    /// sealed before commit 069fde3 (CHANGELOG.md) under the purpose without the issuer still open for such a layer
    /// (their `iss` must match) and are re-sealed under the new one as users come back.
    ///
    /// # Security
    /// Apps that share a key ring must not share a purpose, or each accepts the other's
    /// tokens: give each its own issuer (which also changes the default purpose) or its
    /// own purpose.
    pub fn purpose(mut self, purpose: impl Into<String>) -> Self {
        self.purpose = Some(purpose.into());
        self
    }

    /// The three session clocks (default 15 min access, 24 h idle, 7 days absolute).
    pub fn lifetimes(mut self, lifetimes: Lifetimes) -> Self {
        self.lifetimes = lifetimes;
        self
    }

    /// Allowed clock skew for `nbf` (default none).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Sets `iss` on new sessions and requires it on incoming ones.
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuer = Some(iss.into());
        self
    }

    /// Adds an [`issuer`](Self::issuer) to an app already in production without logging
    /// everyone out: until `until`, a token without `iss` (sealed before the issuer was
    /// set) is taken as this issuer's and re-sealed with it in the same response. From
    /// `until` on, `iss` is required as usual. Choose `until` past the absolute lifetime of
    /// the sessions started before the deploy (7 days by default), or past the moment
    /// most of them have been back.
    ///
    /// Tokens whose `iss` is another issuer are still refused; only the missing claim is
    /// forgiven. Without [`issuer`](Self::issuer) this does nothing.
    ///
    /// # Security
    /// During the grace period a token without `iss` sealed under this ring and purpose
    /// opens here: that is exactly what was accepted before the issuer was added, so
    /// nothing is opened that was not before.
    pub fn accept_missing_issuer_until(mut self, until: UnixTime) -> Self {
        self.issuer_grace = Some(until);
        self
    }

    /// How a request that needs a session and has none is answered (default
    /// [`RejectionFormat::PlainText`]); APIs choose [`RejectionFormat::Json`].
    pub fn rejection_format(mut self, format: RejectionFormat) -> Self {
        self.rejection = format;
        self
    }

    /// Sets `aud` on new sessions and requires it on incoming ones.
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audience = Some(aud.into());
        self
    }

    /// Where tokens travel (default [`Transport::Cookie`]).
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Binds bearer tokens to a key the client holds (DPoP, RFC 9449): a login whose request
    /// carries a valid `DPoP` proof starts a session bound to the proof's key
    /// (`cnf.jkt`), and from then on every request with that token must carry a fresh
    /// proof by the same key, as `Authorization: DPoP <token>`. A stolen token is worth
    /// nothing without the key. Needs [`Transport::Bearer`] or [`Transport::Both`]; see
    /// [`DpopConfig`] for the checks and the module `dpop` notes for fleets.
    ///
    /// ```
    /// use jwe_session::{DpopConfig, KeyRing, SessionLayer, Transport};
    /// # let ring = KeyRing::generate();
    /// let layer = SessionLayer::<()>::builder(ring)
    ///     .transport(Transport::Bearer)
    ///     .dpop(DpopConfig::new().public_origin("https://api.example.com"))
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dpop(mut self, config: DpopConfig) -> Self {
        self.dpop = Some(config);
        self
    }

    /// Binds browser sessions to a key the browser keeps (Device Bound Session
    /// Credentials): a response that starts a session asks the browser to register one,
    /// the layer serves the registration and refresh endpoints itself (defaults
    /// `POST /session/dbsc/register` and `POST /session/dbsc/refresh`), a bound cookie
    /// lives only the [bound lifetime](DeviceBoundConfig::bound_lifetime) and only a
    /// refresh signed by the device's key yields the next. Browsers without DBSC keep
    /// ordinary sessions. Cookie transport, HTTPS only; see the module
    /// [`dbsc`](crate::dbsc).
    ///
    /// ```
    /// use jwe_session::{DeviceBoundConfig, KeyRing, SessionLayer};
    ///
    /// let ring = KeyRing::generate();
    /// let layer = SessionLayer::<()>::builder(ring)
    ///     .device_bound(DeviceBoundConfig::new())
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn device_bound(mut self, config: DeviceBoundConfig) -> Self {
        self.dbsc = Some(config);
        self
    }

    /// The response header that carries new tokens to bearer clients (default
    /// [`DEFAULT_TOKEN_HEADER`]).
    pub fn token_header(mut self, name: impl Into<String>) -> Self {
        self.token_header = name.into();
        self
    }

    /// The revocation store (default: a [`MemoryStore`] of this process).
    ///
    /// # Security
    /// The default forgets every logout when the process restarts: a logged-out cookie
    /// (or a stolen copy) works again until its absolute lifetime. For one instance use
    /// `jwe_session_file::FileStore` (revocations on disk before `end()` returns); for
    /// several, `jwe_session_redis::RedisStore`.
    pub fn revocation_store(mut self, store: Arc<dyn RevocationStore>) -> Self {
        self.store = store;
        self
    }

    /// At most `max` live sessions per user (a user's devices, as the session registry
    /// lists them): a login beyond it ends the user's oldest sessions
    /// ([`OverCap::EndOldest`], the default) or is refused
    /// ([`over_cap`](Self::over_cap)`(`[`OverCap::RefuseNew`]`)`). The count is read from
    /// the store's registry when the login's response leaves, so the revocation store must
    /// keep one (every store of this project does).
    ///
    /// Two logins of one user at the same moment on two instances may both count the
    /// sessions before either is recorded: the cap can then be passed by one until the
    /// next login.
    ///
    /// ```
    /// # use jwe_session::{KeyRing, SessionLayer};
    /// let layer = SessionLayer::<()>::builder(KeyRing::generate())
    ///     .max_sessions_per_user(5)
    ///     .build()?;
    /// # Ok::<(), jwe_session::ConfigError>(())
    /// ```
    pub fn max_sessions_per_user(mut self, max: usize) -> Self {
        let policy = self.cap.map_or(OverCap::EndOldest, |c| c.policy);
        self.cap = Some(SessionCap { max, policy });
        self
    }

    /// What a login beyond [`max_sessions_per_user`](Self::max_sessions_per_user) does
    /// (default [`OverCap::EndOldest`]). Without a cap it changes nothing.
    pub fn over_cap(mut self, policy: OverCap) -> Self {
        if let Some(cap) = &mut self.cap {
            cap.policy = policy;
        }
        self
    }

    /// How many recently opened tokens the layer keeps (default
    /// [`DEFAULT_TOKEN_CACHE`]; 0 keeps none). A browser sends the same token on every
    /// request until it is renewed: a request whose token is kept skips decrypting and
    /// parsing it, and still runs every check after that (claims validation, lifetimes,
    /// the revocation check), so it is refused exactly when it would be otherwise.
    ///
    /// Each kept token costs its length plus its claims in memory, about 1–2 KB for
    /// typical sessions, and the claims stay in memory until another token takes the
    /// slot. Tokens are matched on their exact bytes, in constant time, and only under
    /// the key ring that opened them: a rotation that replaces the ring empties the cache
    /// in effect.
    pub fn token_cache(mut self, capacity: usize) -> Self {
        self.token_cache = capacity;
        self
    }

    /// The clock (default: the system clock). Tests pass a
    /// [`ManualClock`](jwe_session_core::ManualClock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Called when a session past `exp` is renewed, or earlier when a claims refresh
    /// ([`SessionAdmin::refresh_claims_of`](crate::SessionAdmin::refresh_claims_of))
    /// names its subject, after the authoritative revocation check: return
    /// [`Renew::Update`] to refresh claims or [`Renew::Refuse`] to end it.
    pub fn on_renew<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Claims<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Renew<T>> + Send + 'static,
    {
        self.renew = Some(Arc::new(move |claims| Box::pin(hook(claims))));
        self
    }

    /// Lets unsafe requests (`POST`, `PUT`, `DELETE`, ...) from this origin through the
    /// cross-origin protection: `scheme://host[:port]`, as browsers send it in `Origin`.
    ///
    /// # Cross-origin protection
    /// With the cookie transport the layer refuses, with `403` and before the handler
    /// runs, every request with a method other than `GET`, `HEAD` or `OPTIONS` that a
    /// browser marks as cross-origin: `Sec-Fetch-Site` other than `same-origin` or `none`,
    /// or, without that header, an `Origin` whose host and port are not the request's
    /// `Host`. Requests with neither header (curl, other servers) pass. This stops a page
    /// on another site from logging the user in as someone else, or out, with a form post
    /// (`SameSite=Lax` lets top-level cross-site posts set cookies). Behind a proxy that
    /// rewrites `Host`, trust the public origin here.
    pub fn trusted_origin(mut self, origin: impl Into<String>) -> Self {
        self.trusted_origins.push(origin.into());
        self
    }

    /// Exempts a path from cross-origin protection (webhooks that other sites post to):
    /// the exact path, or every path below it when it ends in `/`.
    pub fn cross_origin_exempt_path(mut self, path: impl Into<String>) -> Self {
        self.exempt_paths.push(path.into());
        self
    }

    /// Options that weaken security, each named for what it gives up.
    pub fn dangerous(self) -> DangerousOptions<T> {
        DangerousOptions(self)
    }

    /// Checks the configuration and builds the layer.
    ///
    /// # Errors
    /// A [`ConfigError`] for a bad cookie or header name, `__Host-` with a domain or
    /// without `Secure`, a chunk limit out of range, or a malformed trusted origin or
    /// exempt path.
    pub fn build(mut self) -> Result<SessionLayer<T>, ConfigError> {
        if self.local_development {
            tracing::warn!(
                cookie = %self.cookie_name,
                "local development mode: the session cookie is not Secure and has no __Host- prefix; never use this in production"
            );
            self.secure = false;
            self.host_prefix = Some(false);
        }
        // The default: `__Host-` whenever the cookie is `Secure` (it cannot be otherwise).
        let host_prefix = self.host_prefix.unwrap_or(self.secure);
        let name_ok = (1..=64).contains(&self.cookie_name.len())
            && self
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(ConfigError::InvalidCookieName {
                name: self.cookie_name,
            });
        }
        if host_prefix && self.domain.is_some() {
            return Err(ConfigError::HostPrefixWithDomain);
        }
        if host_prefix && self.path != "/" {
            return Err(ConfigError::HostPrefixWithPath { path: self.path });
        }
        if host_prefix && !self.secure {
            return Err(ConfigError::HostPrefixInsecure);
        }
        if !(1..=crate::cookies::MAX_CHUNKS).contains(&self.max_chunks) {
            return Err(ConfigError::InvalidMaxChunks {
                max_chunks: self.max_chunks,
            });
        }
        let token_header = HeaderName::try_from(self.token_header.as_str()).map_err(|_| {
            ConfigError::InvalidHeaderName {
                name: self.token_header.clone(),
            }
        })?;
        let full_name = if host_prefix {
            format!("__Host-{}", self.cookie_name)
        } else {
            self.cookie_name.clone()
        };
        if let Some(window) = self.store.memory_window() {
            let needed = self.lifetimes.mirror_window(self.fail_open, self.leeway);
            if window < needed {
                return Err(ConfigError::StoreWindowTooShort { window, needed });
            }
        }
        let mut cross_origin = CrossOrigin::default();
        for origin in self.trusted_origins {
            if cross_origin.trust(&origin).is_none() {
                return Err(ConfigError::InvalidTrustedOrigin { origin });
            }
        }
        for path in self.exempt_paths {
            if cross_origin.exempt(&path).is_none() {
                return Err(ConfigError::InvalidExemptPath { path });
            }
        }
        let cross_origin = (self.cross_origin && self.transport.cookie()).then_some(cross_origin);
        if self.dpop.is_some() && !self.transport.bearer() {
            return Err(ConfigError::DpopWithoutBearer);
        }
        let base_purpose = if self.transport == Transport::Bearer {
            "jwe-session/bearer".to_owned()
        } else {
            format!("jwe-session/cookie/{full_name}")
        };
        let (purpose, legacy_purpose) = match (self.purpose, &self.issuer) {
            (Some(p), _) => (p, None),
            (None, Some(iss)) => (format!("{base_purpose};iss={iss}"), Some(base_purpose)),
            (None, None) => (base_purpose, None),
        };
        let dpop = match self.dpop {
            None => None,
            Some(config) => Some(
                Dpop::new(config, &purpose)
                    .map_err(|origin| ConfigError::InvalidDpopOrigin { origin })?,
            ),
        };
        let dbsc_name = full_name.clone();
        let dbsc_domain = self.domain.clone();
        let cookie = CookieSettings::new(
            full_name,
            self.domain,
            self.path,
            self.same_site,
            self.secure,
            self.max_chunks,
        );
        let max_len = if self.transport.cookie() {
            self.max_token_len.min(cookie.capacity())
        } else {
            self.max_token_len
        };
        let dbsc = match self.dbsc {
            None => None,
            Some(config) => {
                if !self.transport.cookie() {
                    return Err(ConfigError::DeviceBoundWithoutCookie);
                }
                if !self.secure {
                    return Err(ConfigError::DeviceBoundInsecure);
                }
                let path_ok = |p: &str| {
                    p.starts_with('/')
                        && p.bytes()
                            .all(|b| b.is_ascii_graphic() && !b"?#;\"\\".contains(&b))
                };
                for path in [&config.register_path, &config.refresh_path] {
                    if !path_ok(path) || config.register_path == config.refresh_path {
                        return Err(ConfigError::InvalidDeviceBoundPath { path: path.clone() });
                    }
                }
                let access = self.lifetimes.access();
                if config.bound_lifetime.is_zero() || config.bound_lifetime > access {
                    return Err(ConfigError::DeviceBoundLifetime {
                        bound: config.bound_lifetime,
                        access,
                    });
                }
                Some(DeviceBound::new(
                    config,
                    &dbsc_name,
                    dbsc_domain,
                    self.max_chunks,
                    max_len,
                    &purpose,
                ))
            }
        };
        if let Some(cap) = self.cap {
            if cap.max == 0 {
                return Err(ConfigError::SessionCapZero);
            }
            if self.store.registry().is_none() {
                return Err(ConfigError::SessionCapWithoutRegistry);
            }
        }
        let mut validation = Validation::new()
            .dangerous_skip_exp()
            .leeway(self.leeway)
            .require(&[Claim::Exp, Claim::Sid, Claim::Sub])
            .absolute_lifetime(self.lifetimes.absolute());
        if let Some(iss) = &self.issuer {
            validation = validation.issuer(iss.clone());
        }
        if let Some(aud) = &self.audience {
            validation = validation.audience([aud.clone()]);
        }
        let shared = Shared {
            ring: self.ring,
            opts: TokenOptions::new()
                .with_purpose(purpose)
                .with_max_len(max_len),
            legacy_opts: legacy_purpose
                .map(|p| TokenOptions::new().with_purpose(p).with_max_len(max_len)),
            validation,
            lifetimes: self.lifetimes,
            cookie,
            transport: self.transport,
            token_header,
            store: self.store,
            clock: self.clock,
            renew: self.renew,
            fail_open: self.fail_open,
            issuer: self.issuer,
            audience: self.audience,
            cross_origin,
            moments: Moments::default(),
            issuer_grace: self.issuer_grace,
            rejection: self.rejection,
            opened: OpenedCache::new(self.token_cache),
            dpop,
            dbsc,
            cap: self.cap,
        };
        Ok(SessionLayer::from_shared(Arc::new(shared)))
    }
}

/// Options that weaken security; reached through [`SessionLayerBuilder::dangerous`].
#[must_use]
pub struct DangerousOptions<T>(SessionLayerBuilder<T>);

impl<T> fmt::Debug for DangerousOptions<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DangerousOptions").field(&self.0).finish()
    }
}

impl<T: Send + 'static> DangerousOptions<T> {
    /// Drops `Secure`, so the cookie also travels over plain HTTP; the default `__Host-`
    /// prefix goes with it (it requires `Secure`).
    ///
    /// # Security
    /// Anyone on the network path can then copy the session, and sibling subdomains can
    /// plant one. Only for local development with clients that refuse `Secure` cookies
    /// over `http://`.
    pub fn allow_insecure_cookie(mut self) -> Self {
        self.0.secure = false;
        self
    }

    /// Drops the default `__Host-` prefix: the cookie is named exactly
    /// [`cookie_name`](SessionLayerBuilder::cookie_name), and may have a `Domain` or a
    /// `Path`. For apps that share the cookie with subdomains, or that must keep an
    /// existing cookie name.
    ///
    /// # Security
    /// Any sibling subdomain can then plant a cookie of that name, with a `Domain` and a
    /// longer `Path` that browsers send first: a login CSRF that no cross-origin check
    /// sees, and chunk debris that breaks chunked sessions until it expires.
    pub fn no_host_prefix(mut self) -> Self {
        self.0.host_prefix = Some(false);
        self
    }

    /// Drops `SameSite`, so the cookie is sent on cross-site requests too (and needs
    /// `Secure`, as browsers require for `SameSite=None`).
    ///
    /// # Security
    /// Cross-site forms can then act as the user: add CSRF protection.
    pub fn same_site_none(mut self) -> Self {
        self.0.same_site = SameSite::None;
        self
    }

    /// When the revocation store cannot answer during a renewal, renew from the local view
    /// instead of ending the session (the default, fail closed).
    ///
    /// # Security
    /// A revocation the local view missed then lasts another access lifetime.
    pub fn fail_open_on_store_error(mut self) -> Self {
        self.0.fail_open = true;
        self
    }

    /// Turns off the cross-origin protection of the cookie transport (see
    /// [`SessionLayerBuilder::trusted_origin`]).
    ///
    /// # Security
    /// A page on any site can then post forms that act with the user's cookie or plant
    /// its own session (login CSRF): only for apps that protect every state-changing
    /// route by other means (CSRF tokens, or `SameSite=Strict` plus no top-level
    /// cross-site posts). Prefer trusting origins or exempting paths.
    pub fn disable_cross_origin_protection(mut self) -> Self {
        self.0.cross_origin = false;
        self
    }

    /// One switch for local development over plain HTTP (`http://localhost`), meant to be
    /// driven by configuration: `.dangerous().local_development(cfg.dev).done()`. When
    /// `enabled`, the cookie drops `Secure` and the `__Host-` prefix (which requires
    /// `Secure`), so [`host_prefix`](SessionLayerBuilder::host_prefix) and this combine
    /// without [`ConfigError::HostPrefixInsecure`], and every browser keeps the cookie over
    /// `http://`. `build` logs a warning. When not enabled, nothing changes.
    ///
    /// # Security
    /// Anyone on the network path can copy a session sent over plain HTTP. Never enable it
    /// in production; tie it to a development-only setting.
    pub fn local_development(mut self, enabled: bool) -> Self {
        self.0.local_development = enabled;
        self
    }

    /// Back to the builder.
    pub fn done(self) -> SessionLayerBuilder<T> {
        self.0
    }

    /// Checks the configuration and builds the layer, as
    /// [`SessionLayerBuilder::build`]: `.dangerous().local_development(dev).build()`
    /// needs no `.done()`.
    ///
    /// # Errors
    /// As [`SessionLayerBuilder::build`].
    pub fn build(self) -> Result<SessionLayer<T>, ConfigError> {
        self.0.build()
    }
}
