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
//! The key, the challenges and the session travel sealed; the revocation list stays the
//! only server state. Someone who copies every cookie of the browser holds the session for
//! the rest of the bound lifetime at most: the next cookie needs the device's key.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Uri};
use jwe_session_core::{
    check_dbsc_refresh, check_dbsc_registration, random_id, Claims, Confirmation, DbscError,
    KeyRing, OpenError, PublicJwk, Revocation, SessionIds, Stage, TokenOptions, UnixMicros,
    UnixTime,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::cookies::CookieSettings;
use crate::handle::{Pending, SessionHandle};
use crate::load::{load, Incoming, Source};
use crate::metrics::Refusal;
use crate::renew::{renew, Early};
use crate::respond::write;
use crate::shared::Shared;

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
enum Purpose {
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
    config: DeviceBoundConfig,
    /// The binding cookie: `Path` the refresh endpoint, `SameSite=Strict`, `Secure`.
    binding: CookieSettings,
    binding_opts: TokenOptions,
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
    fn check_challenge(
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

    fn challenge_header(&self, ring: &KeyRing, id: &str, now: UnixMicros) -> Option<HeaderValue> {
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
    pub(crate) fn extend<T>(&self, shared: &Shared<T>, claims: &mut Claims<T>, issued: UnixTime) {
        let life = shared.lifetimes.for_claims(claims);
        let mut exp = issued.saturating_add(self.config.bound_lifetime);
        if let Some(auth) = claims.auth_time {
            exp = exp.min(auth.saturating_add(life.absolute()));
        }
        claims.exp = Some(exp);
    }

    /// The session instructions (registration, refresh).
    fn instructions(&self, id: &str, shared_cookie: &CookieSettings, origin: &str) -> String {
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

    fn origin(&self, uri: &Uri, headers: &HeaderMap) -> String {
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

/// Serves a request to one of the DBSC endpoints.
pub(crate) async fn serve<T, B>(
    shared: &Arc<Shared<T>>,
    endpoint: Endpoint,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response<B>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    B: Default + 'static,
{
    let Some(d) = &shared.dbsc else {
        return status(StatusCode::NOT_FOUND);
    };
    if method != Method::POST {
        let mut res = status(StatusCode::METHOD_NOT_ALLOWED);
        res.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
        return res;
    }
    let (res, refused) = match endpoint {
        Endpoint::Register => register(shared, d, method, uri, headers).await,
        Endpoint::Refresh => refresh(shared, d, uri, headers).await,
    };
    if let Some(r) = refused {
        crate::metrics::dbsc_refused(r.as_str());
        tracing::debug!(reason = %r, endpoint = ?endpoint, "DBSC request refused");
    }
    res
}

/// An answer the endpoints give: its status, headers and JSON body, made into the
/// service's response type once.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    json: Option<String>,
}

impl Answer {
    fn new(status: StatusCode) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            json: None,
        }
    }

    fn into_response<B: Default + 'static>(self) -> Response<B> {
        let mut res = match self.json {
            None => Response::new(B::default()),
            Some(json) => match json_body::<B>(json) {
                Some(body) => {
                    let mut res = Response::new(body);
                    res.headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    res
                }
                None => {
                    tracing::error!(
                        body = std::any::type_name::<B>(),
                        "the DBSC endpoints answer JSON, and this service's response body is not one jwe-session can write (axum's Body, http-body-util's Full<Bytes>, String, Vec<u8> or Bytes)"
                    );
                    let mut res = Response::new(B::default());
                    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    return res;
                }
            },
        };
        *res.status_mut() = self.status;
        res.headers_mut().extend(self.headers);
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }
}

fn status<B: Default>(status: StatusCode) -> Response<B> {
    let mut res = Response::new(B::default());
    *res.status_mut() = status;
    res
}

/// A body of the service's type holding `json`, for the body types jwe-session knows.
fn json_body<B: 'static>(json: String) -> Option<B> {
    fn cast<B: 'static, C: 'static>(c: C) -> Option<B> {
        (Box::new(c) as Box<dyn Any>)
            .downcast::<B>()
            .ok()
            .map(|b| *b)
    }
    let want = TypeId::of::<B>();
    #[cfg(feature = "axum")]
    if want == TypeId::of::<axum_core::body::Body>() {
        return cast(axum_core::body::Body::from(json));
    }
    if want == TypeId::of::<http_body_util::Full<Bytes>>() {
        return cast(http_body_util::Full::new(Bytes::from(json)));
    }
    if want == TypeId::of::<String>() {
        return cast(json);
    }
    if want == TypeId::of::<Vec<u8>>() {
        return cast(json.into_bytes());
    }
    if want == TypeId::of::<Bytes>() {
        return cast(Bytes::from(json));
    }
    None
}

/// The one `Secure-Session-Response` header, as sent (a structured-field string's quotes,
/// if the browser added them, taken off).
fn proof_header(headers: &HeaderMap) -> Result<Option<&str>, DbscRefusal> {
    let mut values = headers.get_all(SECURE_SESSION_RESPONSE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return match headers.contains_key(SECURE_SESSION_RESPONSE) {
            true => Err(DbscRefusal::Header),
            false => Ok(None),
        };
    };
    let v = value.to_str().map_err(|_| DbscRefusal::Header)?.trim();
    Ok(Some(unquote(v)))
}

/// A structured-field string without its quotes, or a bare value as it is.
fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// The registration endpoint: the session of the request's cookie, a proof by the new
/// key answering that session's registration challenge.
async fn register<T, B>(
    shared: &Arc<Shared<T>>,
    d: &DeviceBound,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> (Response<B>, Option<DbscRefusal>)
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    B: Default + 'static,
{
    let refuse = |r: DbscRefusal| (Answer::new(StatusCode::FORBIDDEN).into_response(), Some(r));
    let Ok((handle, incoming)) = load(shared, method, uri, headers).await else {
        return refuse(DbscRefusal::NoSession);
    };
    let claims = match handle.claims() {
        Some(c) if incoming.source == Source::Cookie => c,
        _ => return refuse(DbscRefusal::NoSession),
    };
    if claims.cnf.is_some() {
        return refuse(DbscRefusal::AlreadyBound);
    }
    let Some(sid) = claims.sid.clone() else {
        return refuse(DbscRefusal::NoSession);
    };
    let proof = match proof_header(headers) {
        Ok(Some(p)) => p,
        Ok(None) | Err(_) => return refuse(DbscRefusal::Header),
    };
    let proof = match check_dbsc_registration(proof) {
        Ok(p) => p,
        Err(e) => return refuse(DbscRefusal::Proof(e)),
    };
    // An `authorization` is only ever what the request itself carries.
    let request_auth = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some(a) = &proof.authorization {
        if request_auth != Some(a.as_str()) {
            return refuse(DbscRefusal::Authorization);
        }
    }
    let now = shared.clock.now_micros();
    let ring = shared.ring.load();
    if let Err(r) = d.check_challenge(&ring, &proof.challenge, Purpose::Register, &sid, now) {
        let mut answer = Answer::new(StatusCode::FORBIDDEN);
        if r == DbscRefusal::ChallengeStale {
            // A browser that waited too long registers again with a fresh challenge.
            if let Some(v) = d.registration_header(&ring, &sid, now) {
                answer.headers.insert(SECURE_SESSION_REGISTRATION, v);
            }
        }
        return (answer.into_response(), Some(r));
    }
    // The bound session moves to a new `sid`. The old one (the unbound cookie of the login,
    // and any copy of it or of this registration) is revoked when the bound cookie is first
    // used: revoking it now would refuse, and clear, the requests the browser sent with it
    // before it had the bound cookie (the page a login redirects to, say).
    let moment = shared.moment();
    let mut bound = claims;
    let new_sid = random_id();
    let old_sid = bound.sid.replace(new_sid.clone());
    let mut cnf = Confirmation::device(new_sid.clone(), &proof.jwk);
    if let Some(key) = cnf.dbsc.as_mut() {
        key.prev = old_sid;
    }
    bound.cnf = Some(cnf);
    shared.lifetimes.reissue(&mut bound, moment);
    d.extend(shared, &mut bound, moment.secs());
    handle.bind_device(bound);
    let mut answer = Answer::new(StatusCode::OK);
    answer.json = Some(d.instructions(&new_sid, &shared.cookie, &d.origin(uri, headers)));
    let mut res = answer.into_response();
    write(shared, &handle, &incoming, &mut res);
    crate::metrics::dbsc_registered();
    (res, None)
}

/// The refresh endpoint: the binding cookie's session, a proof by its key answering a
/// refresh challenge for it, then a renewal's checks and the next bound cookie.
async fn refresh<T, B>(
    shared: &Arc<Shared<T>>,
    d: &DeviceBound,
    uri: &Uri,
    headers: &HeaderMap,
) -> (Response<B>, Option<DbscRefusal>)
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    B: Default + 'static,
{
    let now = shared.clock.now_micros();
    let ring = shared.ring.load();
    let session = shared.cookie.read(headers, shared.opts.max_len());
    let binding = d.binding.read(headers, d.binding_opts.max_len());
    let asked = headers
        .get(SEC_SECURE_SESSION_ID)
        .and_then(|v| v.to_str().ok())
        .map(|v| unquote(v.trim()).to_owned());
    // The session is over for the browser: it stops refreshing and drops the key.
    let end = |id: Option<String>, why: DbscRefusal| {
        let mut answer = Answer::new(StatusCode::OK);
        answer.json = Some(
            serde_json::json!({ "session_identifier": id.unwrap_or_default(), "continue": false })
                .to_string(),
        );
        shared
            .cookie
            .clear_only(&mut answer.headers, session.present);
        d.binding.clear_only(&mut answer.headers, binding.present);
        (answer.into_response(), Some(why))
    };
    let opened = match binding.token.as_deref() {
        None => return end(asked, DbscRefusal::Binding),
        Some(t) => ring.open::<Claims<T>>(t, &d.binding_opts),
    };
    let claims = match opened {
        Ok(o) => o.into_payload(),
        Err(OpenError::UnknownKid { .. }) => {
            // Mid-rotation another instance may hold the key: nothing ends here.
            return (
                Answer::new(StatusCode::FORBIDDEN).into_response(),
                Some(DbscRefusal::Binding),
            );
        }
        Err(_) => return end(asked, DbscRefusal::Binding),
    };
    let Some((id, key)) = device_key(&claims) else {
        return end(asked, DbscRefusal::Binding);
    };
    if shared.validation.validate_at(&claims, now.secs()).is_err() {
        return end(Some(id), DbscRefusal::Binding);
    }
    if asked.as_deref().is_some_and(|a| a != id) {
        return (
            Answer::new(StatusCode::FORBIDDEN).into_response(),
            Some(DbscRefusal::SessionId),
        );
    }
    let challenge = |why: Option<DbscRefusal>| {
        let mut answer = Answer::new(StatusCode::FORBIDDEN);
        if let Some(v) = d.challenge_header(&ring, &id, now) {
            answer.headers.insert(SECURE_SESSION_CHALLENGE, v);
        }
        (answer.into_response(), why)
    };
    let proof = match proof_header(headers) {
        Ok(Some(p)) => p,
        // The first step of every refresh: the browser asks, the layer challenges.
        Ok(None) => return challenge(None),
        Err(r) => return challenge(Some(r)),
    };
    let proof = match check_dbsc_refresh(proof, &key) {
        Ok(p) => p,
        Err(e) => return challenge(Some(DbscRefusal::Proof(e))),
    };
    if let Err(r) = d.check_challenge(&ring, &proof.challenge, Purpose::Refresh, &id, now) {
        return challenge(Some(r));
    }
    let mut claims = claims;
    retire_previous(shared, &mut claims, now.secs()).await;
    match shared.lifetimes.stage(&claims, now.secs()) {
        Stage::Fresh | Stage::Renewable => {}
        Stage::IdleExpired | Stage::AbsoluteExpired | Stage::Incomplete => {
            return end(Some(id.clone()), DbscRefusal::Expired)
        }
    }
    let mut claims = match renew(shared, claims, now.secs(), Early::No).await {
        Ok(c) => c,
        Err((_, Refusal::Revoked | Refusal::RenewRefused)) => {
            return end(Some(id.clone()), DbscRefusal::Revoked)
        }
        Err(_) => {
            return (
                Answer::new(StatusCode::SERVICE_UNAVAILABLE).into_response(),
                Some(DbscRefusal::Unavailable),
            )
        }
    };
    let issued = claims
        .issued_us
        .map_or(now.secs(), jwe_session_core::UnixMicros::secs);
    d.extend(shared, &mut claims, issued);
    let handle = SessionHandle::new(Arc::clone(shared), Some(claims), Pending::Write);
    let incoming = Incoming {
        source: Source::Cookie,
        present: session.present,
        stale: 0,
        nonce_due: false,
    };
    let mut answer = Answer::new(StatusCode::OK);
    answer.json = Some(d.instructions(&id, &shared.cookie, &d.origin(uri, headers)));
    let mut res = answer.into_response();
    write(shared, &handle, &incoming, &mut res);
    crate::metrics::dbsc_refreshed();
    (res, None)
}

/// Revokes the `sid` a device-bound session had before registration, if it has not been
/// yet (the memory of the store says), and drops it from the claims. Whether the claims
/// changed: the token is then sealed again. A revocation the store cannot take now is
/// tried again on the next request.
pub(crate) async fn retire_previous<T>(
    shared: &Shared<T>,
    claims: &mut Claims<T>,
    now: UnixTime,
) -> bool {
    let Some(prev) = claims
        .cnf
        .as_ref()
        .and_then(|c| c.dbsc.as_ref())
        .and_then(|k| k.prev.clone())
    else {
        return false;
    };
    let ids = SessionIds {
        sid: Some(&prev),
        ..SessionIds::from(&*claims)
    };
    if shared.store.check(ids, now).is_none() {
        let revocation = Revocation::session(prev, claims.auth_time, now, &shared.lifetimes);
        if let Err(e) = shared.revoke(revocation, now).await {
            tracing::warn!(error = ?e, "the unbound sid a device-bound session replaced could not be revoked; trying again on its next request");
            return false;
        }
    }
    if let Some(key) = claims.cnf.as_mut().and_then(|c| c.dbsc.as_mut()) {
        key.prev = None;
    }
    true
}

/// A device-bound session's DBSC identifier and key, from its claims.
fn device_key<T>(claims: &Claims<T>) -> Option<(String, PublicJwk)> {
    let key = claims.cnf.as_ref()?.dbsc.as_ref()?;
    Some((key.id.clone(), key.public_jwk()?))
}
