//! DPoP (RFC 9449) in the layer: tokens bound to a key the client holds, every request
//! proving it holds that key. The proof's JWS and claims are checked by the core
//! ([`check_dpop`]); here are the request's side (which URI it was sent to), the replay
//! cache, the stateless server nonces, and the refusal a client reads.
//!
//! What a fleet needs beyond this: the replay cache is this instance's. A proof replayed
//! within its window to *another* instance is not caught by it, only by what the proof
//! already pins (the method, the URI, the token's hash, the window of
//! [`DpopConfig::max_age`]). Turn on [server nonces](DpopConfig::nonces) to shrink what
//! such a replay can do to the nonce's lifetime, route a client to one instance (sticky
//! sessions), or keep the window short.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use http::header::{CACHE_CONTROL, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Uri};
use jwe_session_core::{
    check_dpop, normalize_htu, DpopError, DpopProof, DpopRequest, KeyRing, TokenOptions,
    UnixMicros, UnixTime,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The request header that carries a proof, and the response header of a server nonce.
pub const DPOP_HEADER: HeaderName = HeaderName::from_static("dpop");
/// The response header that carries a fresh server nonce.
pub const DPOP_NONCE_HEADER: HeaderName = HeaderName::from_static("dpop-nonce");

/// How old a proof's `iat` may be, by default: 60 seconds.
pub const DEFAULT_DPOP_MAX_AGE: Duration = Duration::from_secs(60);
/// How far ahead a proof's `iat` may be, by default: 5 seconds.
pub const DEFAULT_DPOP_LEEWAY: Duration = Duration::from_secs(5);
/// How many proof ids the replay cache holds by default.
pub const DEFAULT_REPLAY_CACHE: usize = 65_536;
/// How long a server nonce is accepted, by default: 5 minutes.
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// The algorithms the layer verifies, as `WWW-Authenticate` names them.
const ALGS: &str = "ES256";

/// How the layer checks DPoP ([`SessionLayerBuilder::dpop`](crate::SessionLayerBuilder::dpop)).
///
/// ```
/// use std::time::Duration;
/// use jwe_session::DpopConfig;
///
/// // Behind a proxy: proofs name the public URL, whatever `Host` the proxy sends on.
/// let dpop = DpopConfig::new()
///     .public_origin("https://api.example.com")
///     .require_binding()
///     .nonces(Duration::from_secs(300));
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct DpopConfig {
    pub(crate) origin: Option<String>,
    pub(crate) plain_http: bool,
    pub(crate) max_age: Duration,
    pub(crate) leeway: Duration,
    pub(crate) require: bool,
    pub(crate) nonce: Option<Duration>,
    pub(crate) replay_capacity: usize,
}

impl Default for DpopConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl DpopConfig {
    /// DPoP with the defaults: proofs of the last [`DEFAULT_DPOP_MAX_AGE`] (and
    /// [`DEFAULT_DPOP_LEEWAY`] ahead), the URI taken from the request (`https`, unless
    /// the request's URI names its scheme, and its `Host`), binding optional, no nonces.
    pub fn new() -> Self {
        Self {
            origin: None,
            plain_http: false,
            max_age: DEFAULT_DPOP_MAX_AGE,
            leeway: DEFAULT_DPOP_LEEWAY,
            require: false,
            nonce: None,
            replay_capacity: DEFAULT_REPLAY_CACHE,
        }
    }

    /// The origin clients address (`https://api.example.com`), to which the request's
    /// path is appended for the comparison with `htu`. Set it behind a proxy or a load
    /// balancer, and wherever `Host` is not to be trusted. Checked by `build`.
    pub fn public_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Without a [public origin](Self::public_origin): the service is served over plain
    /// HTTP, so a request whose URI does not name its scheme (HTTP/1.1) was sent to
    /// `http://` plus its `Host`. For local development and tests.
    pub fn plain_http(mut self) -> Self {
        self.plain_http = true;
        self
    }

    /// How old a proof may be (its `iat`), and so how long its `jti` is remembered.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// How far ahead of this clock a proof's `iat` may be.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Every session is bound: [`SessionHandle::start`](crate::SessionHandle::start)
    /// without a proof fails with [`StartError::DpopRequired`](crate::StartError::DpopRequired).
    pub fn require_binding(mut self) -> Self {
        self.require = true;
        self
    }

    /// Requires server nonces (RFC 9449 §8), accepted for `lifetime`: a proof without one,
    /// or with one that is stale, is answered `401` with `error="use_dpop_nonce"` and a
    /// fresh `DPoP-Nonce`. Nonces are stateless: sealed under the key ring with their
    /// moment, so every instance sharing the ring accepts them.
    pub fn nonces(mut self, lifetime: Duration) -> Self {
        self.nonce = Some(lifetime);
        self
    }

    /// How many proof ids the replay cache holds (at least 1). When it is full of ids
    /// still within their window, a new proof is refused (`replay_cache_full`) rather
    /// than an old id forgotten.
    pub fn replay_cache(mut self, capacity: usize) -> Self {
        self.replay_capacity = capacity.max(1);
        self
    }
}

/// Why a DPoP request was refused. The layer answers it itself: `401` with
/// `WWW-Authenticate: DPoP algs="ES256", error="…"`; the handler never runs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DpopRefusal {
    /// The proof did not verify or does not fit the request.
    Proof(DpopError),
    /// A DPoP token without a `DPoP` header.
    Missing,
    /// More than one `DPoP` header, or one that is not visible ASCII.
    Header,
    /// A proof id seen before within its window.
    Replayed,
    /// The replay cache is full of ids still within their window.
    ReplayCacheFull,
    /// Nonces are required and the proof has none, or one that is stale or not ours.
    Nonce,
    /// The proof was made with another key than the token is bound to (a stolen token).
    KeyMismatch,
    /// `Authorization: DPoP` with a token that is not bound.
    Unbound,
    /// A bound token sent as `Authorization: Bearer` (RFC 9449 §7.2).
    Downgrade,
    /// The token itself was refused (expired, revoked, tampered, …).
    Token,
}

impl DpopRefusal {
    /// The `error` of the `WWW-Authenticate` challenge: `invalid_dpop_proof`,
    /// `use_dpop_nonce` or `invalid_token`.
    #[must_use]
    pub fn error_code(&self) -> &'static str {
        match self {
            Self::Proof(_)
            | Self::Missing
            | Self::Header
            | Self::Replayed
            | Self::ReplayCacheFull
            | Self::KeyMismatch => "invalid_dpop_proof",
            Self::Nonce => "use_dpop_nonce",
            Self::Unbound | Self::Downgrade | Self::Token => "invalid_token",
        }
    }

    /// The metrics label (`jwe_session_dpop_refusals_total{reason}`), a fixed set.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Proof(e) => e.as_str(),
            Self::Missing => "missing",
            Self::Header => "header",
            Self::Replayed => "replayed",
            Self::ReplayCacheFull => "replay_cache_full",
            Self::Nonce => "nonce",
            Self::KeyMismatch => "key_mismatch",
            Self::Unbound => "unbound",
            Self::Downgrade => "downgrade",
            Self::Token => "token",
        }
    }
}

impl fmt::Display for DpopRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Proof(e) => e.fmt(f),
            Self::Missing => f.write_str("a DPoP token without a DPoP proof"),
            Self::Header => f.write_str("not exactly one readable DPoP header"),
            Self::Replayed => f.write_str("a DPoP proof used before"),
            Self::ReplayCacheFull => f.write_str("the DPoP replay cache is full"),
            Self::Nonce => f.write_str("a DPoP proof without a current server nonce"),
            Self::KeyMismatch => f.write_str("a DPoP proof by another key than the token's"),
            Self::Unbound => f.write_str("a DPoP token that is not bound to a key"),
            Self::Downgrade => f.write_str("a DPoP-bound token sent as a bearer token"),
            Self::Token => f.write_str("the token was refused"),
        }
    }
}

impl std::error::Error for DpopRefusal {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Proof(e) => Some(e),
            _ => None,
        }
    }
}

/// The layer's DPoP at run time: the configuration resolved, the replay cache.
pub(crate) struct Dpop {
    config: DpopConfig,
    /// The public origin, normalized.
    origin: Option<String>,
    replay: ReplayCache,
    nonce_opts: TokenOptions,
}

impl fmt::Debug for Dpop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dpop")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A sealed server nonce's content: when it was made.
#[derive(Serialize, Deserialize)]
struct NonceBody {
    /// Microseconds since the epoch.
    t: u64,
}

impl Dpop {
    /// Resolves a configuration; `Err` names what is wrong with the public origin.
    pub(crate) fn new(config: DpopConfig, purpose: &str) -> Result<Self, String> {
        let origin = match &config.origin {
            None => None,
            Some(o) => {
                let n = normalize_htu(o)
                    .filter(|n| n.ends_with('/') && n.matches('/').count() == 3)
                    .ok_or_else(|| o.clone())?;
                Some(n.trim_end_matches('/').to_owned())
            }
        };
        Ok(Self {
            replay: ReplayCache::new(config.replay_capacity),
            nonce_opts: TokenOptions::new()
                .with_max_len(512)
                .with_purpose(format!("{purpose}/dpop-nonce")),
            origin,
            config,
        })
    }

    pub(crate) fn required(&self) -> bool {
        self.config.require
    }

    /// The URI a request was sent to, as its proof must name it.
    fn target(&self, uri: &Uri, headers: &HeaderMap) -> Option<String> {
        let path = uri.path();
        if let Some(origin) = &self.origin {
            return Some(format!("{origin}{path}"));
        }
        let scheme = uri.scheme_str().unwrap_or(if self.config.plain_http {
            "http"
        } else {
            "https"
        });
        let host = match uri.authority() {
            Some(a) => a.as_str(),
            None => headers.get(http::header::HOST)?.to_str().ok()?,
        };
        Some(format!("{scheme}://{host}{path}"))
    }

    /// Checks the request's proof, if it has one: `Ok(None)` without a `DPoP` header.
    /// `token` is the access token it must name (`None` for a login). The proof's id is
    /// not yet remembered: [`commit`](Self::commit) does that once everything else passed.
    pub(crate) fn check(
        &self,
        ring: &KeyRing,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        token: Option<&str>,
        now: UnixMicros,
    ) -> Result<Option<Checked>, DpopRefusal> {
        let Some(proof) =
            crate::headers::single(headers, &DPOP_HEADER).map_err(|_| DpopRefusal::Header)?
        else {
            return Ok(None);
        };
        let target = self
            .target(uri, headers)
            .ok_or(DpopRefusal::Proof(DpopError::Uri {
                found: String::new(),
            }))?;
        let proof = check_dpop(
            proof,
            &DpopRequest {
                method: method.as_str(),
                uri: &target,
                access_token: token,
                now: now.secs(),
                max_age: self.config.max_age,
                leeway: self.config.leeway,
            },
        )
        .map_err(DpopRefusal::Proof)?;
        let mut renew_nonce = false;
        if let Some(lifetime) = self.config.nonce {
            let made = proof
                .nonce
                .as_deref()
                .and_then(|n| ring.open::<NonceBody>(n, &self.nonce_opts).ok())
                .map(|o| UnixMicros::from_micros(o.payload().t));
            let age =
                made.map(|m| Duration::from_micros(now.as_micros().saturating_sub(m.as_micros())));
            match age {
                Some(age)
                    if age <= lifetime
                        && made.is_some_and(|m| m <= now.saturating_add(self.config.leeway)) =>
                {
                    renew_nonce = age > lifetime / 2;
                }
                _ => return Err(DpopRefusal::Nonce),
            }
        }
        Ok(Some(Checked { proof, renew_nonce }))
    }

    /// Remembers a checked proof's id; refuses one seen before within its window.
    pub(crate) fn commit(&self, checked: &Checked, now: UnixTime) -> Result<(), DpopRefusal> {
        let until = checked
            .proof
            .iat
            .saturating_add(self.config.max_age)
            .saturating_add(Duration::from_secs(1));
        self.replay
            .insert(&checked.proof.thumbprint, &checked.proof.jti, until, now)
    }

    /// A fresh server nonce, if nonces are on (and the ring can seal one).
    pub(crate) fn fresh_nonce(&self, ring: &KeyRing, now: UnixMicros) -> Option<HeaderValue> {
        self.config.nonce?;
        let sealed = ring
            .seal_at(
                &NonceBody { t: now.as_micros() },
                &self.nonce_opts,
                now.secs(),
            )
            .ok()?;
        HeaderValue::try_from(sealed.as_str()).ok()
    }

    /// The layer's own answer to a refused DPoP request: `401`, or for a gRPC request
    /// (`content-type: application/grpc…`) a trailers-only `UNAUTHENTICATED` (status 16),
    /// which a gRPC client reports as the call's error, streaming calls included. The
    /// challenge is in the headers either way.
    pub(crate) fn refusal<B: Default>(
        &self,
        refusal: &DpopRefusal,
        ring: &KeyRing,
        now: UnixMicros,
        request: &HeaderMap,
    ) -> Response<B> {
        crate::metrics::dpop_refused(refusal.as_str());
        tracing::debug!(reason = %refusal, "DPoP request refused");
        let mut res = Response::new(B::default());
        let grpc = request
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        let h = res.headers_mut();
        if grpc {
            h.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            h.insert("grpc-status", HeaderValue::from_static("16"));
            h.insert(
                "grpc-message",
                HeaderValue::from_static(refusal.error_code()),
            );
        } else {
            *res.status_mut() = StatusCode::UNAUTHORIZED;
        }
        let h = res.headers_mut();
        let challenge = format!(
            r#"DPoP algs="{ALGS}", error="{}", error_description="{}""#,
            refusal.error_code(),
            refusal.as_str()
        );
        if let Ok(v) = HeaderValue::try_from(challenge) {
            h.insert(WWW_AUTHENTICATE, v);
        }
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if *refusal == DpopRefusal::Nonce {
            if let Some(n) = self.fresh_nonce(ring, now) {
                h.insert(DPOP_NONCE_HEADER, n);
            }
        }
        res
    }
}

/// A proof that fits its request, with whether its nonce should be replaced.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) proof: DpopProof,
    pub(crate) renew_nonce: bool,
}

/// The proof ids seen within their windows, by a hash of the key and the id: a fixed
/// number of shards, each a bounded map. A full shard first drops what has expired; if
/// it is still full, a new proof is refused, never an unexpired id forgotten.
struct ReplayCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
}

const SHARDS: usize = 16;

/// A shard: the first 16 bytes of SHA-256(thumbprint, 0, jti), to when it is remembered.
type Shard = HashMap<[u8; 16], UnixTime>;

impl ReplayCache {
    fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    fn insert(
        &self,
        thumbprint: &str,
        jti: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<(), DpopRefusal> {
        let mut h = Sha256::new();
        h.update(thumbprint.as_bytes());
        h.update([0]);
        h.update(jti.as_bytes());
        let digest = h.finalize();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        let shard = &self.shards[usize::from(key[0]) % SHARDS];
        let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(seen_until) = map.get(&key) {
            if *seen_until > now {
                return Err(DpopRefusal::Replayed);
            }
        }
        if map.len() >= self.per_shard && !map.contains_key(&key) {
            map.retain(|_, until| *until > now);
            if map.len() >= self.per_shard {
                return Err(DpopRefusal::ReplayCacheFull);
            }
        }
        map.insert(key, until);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replay_cache_refuses_a_repeat_until_it_expires_and_never_forgets_early() {
        let cache = ReplayCache::new(SHARDS);
        let now = UnixTime::from_secs(1000);
        let until = UnixTime::from_secs(1061);
        assert_eq!(cache.insert("k", "a", until, now), Ok(()));
        assert_eq!(
            cache.insert("k", "a", until, now),
            Err(DpopRefusal::Replayed)
        );
        // The same id under another key is another proof.
        assert_eq!(cache.insert("k2", "a", until, now), Ok(()));
        // Past its window the id may come again (the proof's `iat` refuses it anyway).
        assert_eq!(cache.insert("k", "a", until, until), Ok(()));
        // One slot per shard: a second live id in a full shard is refused, not swapped.
        let mut refused = 0;
        for i in 0..200 {
            if cache.insert("k3", &i.to_string(), until, now) == Err(DpopRefusal::ReplayCacheFull) {
                refused += 1;
            }
        }
        assert!(refused > 150, "{refused}");
        // Once they expire there is room again.
        let later = UnixTime::from_secs(2000);
        assert_eq!(
            cache.insert("k3", "fresh", UnixTime::from_secs(2061), later),
            Ok(())
        );
    }

    #[test]
    fn origins_are_checked_and_normalized() {
        let ok = Dpop::new(
            DpopConfig::new().public_origin("HTTPS://Api.Example.com:443"),
            "p",
        )
        .unwrap();
        assert_eq!(ok.origin.as_deref(), Some("https://api.example.com"));
        for bad in [
            "api.example.com",
            "https://api.example.com/v1",
            "ftp://x",
            "https://u@a",
        ] {
            assert!(
                Dpop::new(DpopConfig::new().public_origin(bad), "p").is_err(),
                "{bad}"
            );
        }
    }
}
