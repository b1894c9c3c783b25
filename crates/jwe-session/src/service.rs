//! `SessionLayer` and `SessionService`: the request and response paths.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use jwe_session_core::{BoxFuture, Claims, KeyRingHandle, RevocationStore, SessionIds, Stage};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tower_layer::Layer;
use tower_service::Service;

use crate::config::{Config, Renew, SessionLayerBuilder};
use crate::handle::{Pending, SessionHandle};

/// The tower layer: opens the session on the way in, writes it back on the way out.
///
/// Cheap to clone (the configuration is behind an `Arc`). `T` is the application's own
/// claims type, flattened into the token beside the registered claims.
///
/// # Deployment caveat
///
/// - The cookie is `Secure` by default, so browsers send it only over HTTPS (and to
///   `http://localhost`). Behind a TLS-terminating proxy that is what you want; for plain
///   HTTP development use `.dangerous().allow_insecure_cookie()`.
/// - Prefer `.host_prefix()` (`__Host-session`) when the app owns its host name: no
///   subdomain can then set or shadow the cookie. It rules out `Domain`.
/// - `SameSite=Lax` keeps cross-site `POST`s from carrying the cookie, which is the CSRF
///   protection of the default setup. Cross-site `GET`s still carry it, so `GET` handlers
///   must not change state.
/// - Several instances need one key ring and a shared revocation store
///   (`jwe-session-redis`); the in-memory default only revokes on the instance that
///   logged out.
pub struct SessionLayer<T> {
    config: Arc<Config<T>>,
}

impl<T> Clone for SessionLayer<T> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
        }
    }
}

impl<T> fmt::Debug for SessionLayer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("config", &self.config)
            .finish()
    }
}

impl<T: Send + 'static> SessionLayer<T> {
    /// Starts a configuration with secure defaults around a key ring (or a
    /// [`KeyRingHandle`] for rings swapped at run time).
    pub fn builder(ring: impl Into<KeyRingHandle>) -> SessionLayerBuilder<T> {
        SessionLayerBuilder::new(ring.into())
    }
}

impl<T> SessionLayer<T> {
    pub(crate) fn from_config(config: Arc<Config<T>>) -> Self {
        Self { config }
    }

    /// The key ring handle: call [`KeyRingHandle::replace`] to rotate without a restart.
    #[must_use]
    pub fn key_ring(&self) -> &KeyRingHandle {
        &self.config.ring
    }

    /// The revocation store, for revoking outside a request (an admin action, say).
    #[must_use]
    pub fn revocation_store(&self) -> &Arc<dyn RevocationStore> {
        &self.config.store
    }

    /// The cookie name, prefix included.
    #[must_use]
    pub fn cookie_name(&self) -> &str {
        self.config.cookie.name()
    }

    /// The purpose tokens are bound to.
    #[must_use]
    pub fn purpose(&self) -> &str {
        self.config.opts.purpose().unwrap_or_default()
    }
}

impl<S, T> Layer<S> for SessionLayer<T> {
    type Service = SessionService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
pub struct SessionService<S, T> {
    inner: S,
    config: Arc<Config<T>>,
}

impl<S: Clone, T> Clone for SessionService<S, T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

impl<S: fmt::Debug, T> fmt::Debug for SessionService<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, T> SessionService<S, T> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, owned.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The response future of [`SessionService`].
pub struct ResponseFuture<B, E> {
    inner: BoxFuture<'static, Result<Response<B>, E>>,
}

impl<B, E> fmt::Debug for ResponseFuture<B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl<B, E> Future for ResponseFuture<B, E> {
    type Output = Result<Response<B>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<S, T, ReqB, ResB> Service<Request<ReqB>> for SessionService<S, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqB: Send + 'static,
    ResB: Send + 'static,
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<ResB, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        // The inner service that was polled ready is the one to call; leave a clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        ResponseFuture {
            inner: Box::pin(async move {
                let (handle, incoming) = load(&config, req.headers()).await;
                req.extensions_mut().insert(handle.clone());
                let mut res = inner.call(req).await?;
                revoke_replaced(&config, &handle).await;
                write(&config, &handle, &incoming, &mut res);
                Ok(res)
            }),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    None,
    Cookie,
    Bearer,
}

#[derive(Debug)]
struct Incoming {
    source: Source,
    /// Which of our cookies (bit 0 the main one, bit i chunk i) the request carried.
    present: u32,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn load<T>(config: &Arc<Config<T>>, headers: &HeaderMap) -> (SessionHandle<T>, Incoming)
where
    T: DeserializeOwned + Clone + Send + 'static,
{
    let empty = |pending, incoming| {
        (
            SessionHandle::new(Arc::clone(config), None, pending),
            incoming,
        )
    };
    let mut incoming = Incoming {
        source: Source::None,
        present: 0,
    };
    let mut token = None;
    if config.transport.bearer() {
        if let Some(t) = bearer(headers) {
            token = Some(Cow::Borrowed(t));
            incoming.source = Source::Bearer;
        }
    }
    if token.is_none() && config.transport.cookie() {
        let c = config.cookie.read(headers, config.opts.max_len());
        incoming.present = c.present;
        if c.oversized {
            tracing::warn!(
                reason = "cookie chunks exceed the token limit",
                "session refused"
            );
            return empty(Pending::Clear, incoming);
        }
        if c.token.is_some() {
            incoming.source = Source::Cookie;
        }
        token = c.token;
    }
    let Some(token) = token else {
        // Chunks without their main cookie are debris: clear them.
        let pending = if incoming.present != 0 {
            Pending::Clear
        } else {
            Pending::Nothing
        };
        return empty(pending, incoming);
    };

    let now = config.clock.now();
    let ring = config.ring.load();
    let opened = match ring.open::<Claims<T>>(&token, &config.opts) {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(reason = %e, "session token refused");
            return empty(Pending::Clear, incoming);
        }
    };
    let needs_reseal = opened.needs_reseal();
    let mut claims = opened.into_payload();
    if let Err(e) = config.validation.validate_at(&claims, now) {
        tracing::info!(reason = %e, "session claims refused");
        return empty(Pending::Clear, incoming);
    }
    let pending = match config.lifetimes.stage_at(&claims, now) {
        Stage::Fresh => {
            if let Err(r) = config.store.check_at(SessionIds::from(&claims), now) {
                tracing::info!(reason = %r, "session revoked");
                return empty(Pending::Clear, incoming);
            }
            if needs_reseal {
                Pending::Write
            } else {
                Pending::Nothing
            }
        }
        Stage::Renewable => match renew(config, claims, now).await {
            Ok(renewed) => {
                claims = renewed;
                Pending::Write
            }
            Err(pending) => return empty(pending, incoming),
        },
        stage => {
            tracing::info!(reason = ?stage, "session expired");
            return empty(Pending::Clear, incoming);
        }
    };
    (
        SessionHandle::new(Arc::clone(config), Some(claims), pending),
        incoming,
    )
}

/// Renews a session past `exp`: the authoritative revocation check, then the hook.
/// `Err` carries what to do with the cookie instead.
async fn renew<T: Clone + Send + 'static>(
    config: &Config<T>,
    mut claims: Claims<T>,
    now: jwe_session_core::UnixTime,
) -> Result<Claims<T>, Pending> {
    let verdict = config
        .store
        .check_authoritative_at(SessionIds::from(&claims), now)
        .await;
    let verdict = match verdict {
        Ok(v) => v,
        Err(e) if config.fail_open => {
            tracing::warn!(error = %e, policy = "fail-open", "revocation store unavailable; renewing from the local view");
            config.store.check_at(SessionIds::from(&claims), now)
        }
        Err(e) => {
            // Keep the cookie: once the store answers again the session can still renew.
            tracing::warn!(error = %e, policy = "fail-closed", "revocation store unavailable; not renewing");
            return Err(Pending::Nothing);
        }
    };
    if let Err(r) = verdict {
        tracing::info!(reason = %r, "session revoked");
        return Err(Pending::Clear);
    }
    if let Some(hook) = &config.renew {
        match hook(claims.clone()).await {
            Renew::Keep => {}
            Renew::Update(app) => claims.app = app,
            Renew::Refuse => {
                tracing::info!(reason = "renew hook refused", "session ended");
                return Err(Pending::Clear);
            }
        }
    }
    config.lifetimes.reissue(&mut claims, now);
    Ok(claims)
}

/// Revokes the session a login replaced (see [`SessionHandle::start`]).
async fn revoke_replaced<T>(config: &Config<T>, handle: &SessionHandle<T>) {
    let Some(revocation) = handle.lock().replaced.take() else {
        return;
    };
    let now = config.clock.now();
    if let Err(e) = config.store.revoke_at(revocation, now).await {
        tracing::warn!(error = %e, "the session a login replaced could not be revoked");
    }
}

fn write<T: Serialize, B>(
    config: &Config<T>,
    handle: &SessionHandle<T>,
    incoming: &Incoming,
    res: &mut Response<B>,
) {
    let st = handle.lock();
    match (st.pending, &st.current) {
        (Pending::Nothing, _) => {}
        (Pending::Write, Some(claims)) => {
            let ring = config.ring.load();
            let token = match ring.seal(claims, &config.opts) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "session could not be sealed");
                    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    if config.transport.cookie() {
                        config.cookie.clear(res.headers_mut(), incoming.present);
                    }
                    return;
                }
            };
            let now = config.clock.now();
            let to_cookie = config.transport.cookie() && incoming.source != Source::Bearer;
            let to_header = config.transport.bearer() && incoming.source != Source::Cookie;
            if to_cookie {
                let end = match (claims.exp, claims.auth_time) {
                    (Some(exp), Some(auth)) => exp
                        .saturating_add(config.lifetimes.idle())
                        .min(auth.saturating_add(config.lifetimes.absolute())),
                    _ => now,
                };
                let max_age = end.saturating_since(now).max(Duration::from_secs(1));
                config
                    .cookie
                    .write(res.headers_mut(), token.as_str(), max_age, incoming.present);
            }
            if to_header {
                if let Ok(mut v) = HeaderValue::try_from(token.as_str()) {
                    v.set_sensitive(true);
                    res.headers_mut().insert(config.token_header.clone(), v);
                }
            }
        }
        (Pending::Write, None) | (Pending::Clear, _) => {
            // Only cookies the request carried need clearing. Writing a clearing cookie
            // regardless would let a cross-site form (which, under SameSite=Lax, arrives
            // without the cookie) delete the user's session cookie: a logout CSRF.
            if config.transport.cookie()
                && incoming.source != Source::Bearer
                && incoming.present != 0
            {
                config.cookie.clear(res.headers_mut(), incoming.present);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use std::sync::Mutex;

    use http::header::{COOKIE, SET_COOKIE};
    use jwe_session_core::{Key, KeyRing, ManualClock, Revocation, StoreError, UnixTime};
    use tower::{service_fn, ServiceExt};

    use super::*;
    use crate::config::ConfigError;

    const KEY: [u8; 32] = [0xa5; 32];

    fn ring() -> KeyRing {
        let mut k = KEY;
        k[0] = 0x11;
        KeyRing::new(vec![Key::from_bytes("t1", &k).unwrap()], None).unwrap()
    }

    /// A plain tower service (no axum): the handler finds the handle in extensions.
    async fn handler(req: Request<String>) -> Result<Response<String>, Infallible> {
        let handle = req
            .extensions()
            .get::<SessionHandle<()>>()
            .cloned()
            .expect("layer ran");
        let body = match req.uri().path() {
            "/login" => {
                handle.start("alice", ());
                "started".to_owned()
            }
            "/logout" => {
                handle.end().await.unwrap();
                "ended".to_owned()
            }
            _ => handle
                .claims()
                .and_then(|c| c.sub)
                .unwrap_or_else(|| "anonymous".into()),
        };
        Ok(Response::new(body))
    }

    fn layer() -> SessionLayer<()> {
        let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
        SessionLayer::builder(ring())
            .clock(Arc::new(clock))
            .build()
            .unwrap()
    }

    async fn call(layer: &SessionLayer<()>, path: &str, cookie: Option<&str>) -> Response<String> {
        let mut req = Request::builder().uri(path);
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        layer
            .layer(service_fn(handler))
            .oneshot(req.body(String::new()).unwrap())
            .await
            .unwrap()
    }

    fn cookie_pair(res: &Response<String>) -> String {
        let set = res.headers()[SET_COOKIE].to_str().unwrap();
        set.split(';').next().unwrap().to_owned()
    }

    #[tokio::test]
    async fn works_as_a_plain_tower_layer() {
        let layer = layer();
        let res = call(&layer, "/", None).await;
        assert_eq!(res.body(), "anonymous");
        assert!(res.headers().get(SET_COOKIE).is_none());

        let res = call(&layer, "/login", None).await;
        assert!(res.headers()[SET_COOKIE].is_sensitive());
        let pair = cookie_pair(&res);
        assert!(pair.starts_with("session=eyJ"));

        let res = call(&layer, "/", Some(&pair)).await;
        assert_eq!(res.body(), "alice");
        assert!(res.headers().get(SET_COOKIE).is_none());

        let res = call(&layer, "/logout", Some(&pair)).await;
        assert_eq!(res.body(), "ended");
        assert_eq!(cookie_pair(&res), "session=");
        assert_eq!(call(&layer, "/", Some(&pair)).await.body(), "anonymous");
    }

    /// Checks nothing, records the revocations it is asked for, and fails them if told to.
    #[derive(Default)]
    struct RecordingStore {
        fail: bool,
        revoked: Mutex<Vec<Revocation>>,
    }

    impl RevocationStore for RecordingStore {
        fn check_at(
            &self,
            _: SessionIds<'_>,
            _: UnixTime,
        ) -> Result<(), jwe_session_core::Revoked> {
            Ok(())
        }

        fn revoke_at(&self, r: Revocation, _: UnixTime) -> BoxFuture<'_, Result<(), StoreError>> {
            self.revoked.lock().unwrap().push(r);
            let fail = self.fail;
            Box::pin(async move {
                if fail {
                    Err(StoreError::Timeout {
                        after: Duration::from_millis(500),
                    })
                } else {
                    Ok(())
                }
            })
        }
    }

    #[tokio::test]
    async fn a_login_revokes_the_session_it_replaces_even_if_the_store_fails() {
        for fail in [false, true] {
            let store = Arc::new(RecordingStore {
                fail,
                ..RecordingStore::default()
            });
            let layer = SessionLayer::builder(ring())
                .clock(Arc::new(ManualClock::new(UnixTime::from_secs(
                    1_800_000_000,
                ))))
                .revocation_store(Arc::clone(&store) as Arc<dyn RevocationStore>)
                .build()
                .unwrap();
            let first = cookie_pair(&call(&layer, "/login", None).await);
            assert!(store.revoked.lock().unwrap().is_empty(), "nothing replaced");
            let res = call(&layer, "/login", Some(&first)).await;
            let second = cookie_pair(&res);
            assert_ne!(second, first, "a new session is written (fail = {fail})");
            assert_eq!(call(&layer, "/", Some(&second)).await.body(), "alice");
            let old_sid = layer
                .config
                .ring
                .load()
                .open::<Claims<()>>(first.trim_start_matches("session="), &layer.config.opts)
                .unwrap()
                .into_payload()
                .sid;
            let revoked = store.revoked.lock().unwrap();
            assert!(
                matches!(&revoked[..], [Revocation::Session { sid, .. }] if Some(sid) == old_sid.as_ref()),
                "{revoked:?}"
            );
        }
    }

    #[tokio::test]
    async fn ending_a_session_the_request_did_not_carry_writes_nothing() {
        let layer = layer();
        let res = call(&layer, "/logout", None).await;
        assert_eq!(res.body(), "ended");
        assert!(res.headers().get(SET_COOKIE).is_none());
    }

    #[tokio::test]
    async fn a_refused_token_clears_its_chunks_too() {
        let layer = layer();
        let res = call(
            &layer,
            "/",
            Some("session=bad; session.1=worse; session.3=stale"),
        )
        .await;
        assert_eq!(res.body(), "anonymous");
        let cleared: Vec<&str> = res
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().split('=').next().unwrap())
            .collect();
        assert_eq!(cleared, ["session", "session.1", "session.3"]);
    }

    #[test]
    fn config_errors() {
        let b = || SessionLayer::<()>::builder(ring());
        assert!(matches!(
            b().cookie_name("a b").build(),
            Err(ConfigError::InvalidCookieName { .. })
        ));
        assert!(matches!(
            b().cookie_name("").build(),
            Err(ConfigError::InvalidCookieName { .. })
        ));
        assert!(matches!(
            b().host_prefix().cookie_domain("example.com").build(),
            Err(ConfigError::HostPrefixWithDomain)
        ));
        assert!(matches!(
            b().host_prefix()
                .dangerous()
                .allow_insecure_cookie()
                .done()
                .build(),
            Err(ConfigError::HostPrefixInsecure)
        ));
        assert!(matches!(
            b().max_chunks(0).build(),
            Err(ConfigError::InvalidMaxChunks { .. })
        ));
        assert!(matches!(
            b().max_chunks(17).build(),
            Err(ConfigError::InvalidMaxChunks { .. })
        ));
        assert!(matches!(
            b().token_header("bad header").build(),
            Err(ConfigError::InvalidHeaderName { .. })
        ));
        let l = b().host_prefix().build().unwrap();
        assert_eq!(l.cookie_name(), "__Host-session");
        assert_eq!(l.purpose(), "jwe-session/cookie/__Host-session");
        let l = b().transport(crate::Transport::Bearer).build().unwrap();
        assert_eq!(l.purpose(), "jwe-session/bearer");
    }

    #[tokio::test]
    async fn host_prefix_cookie_attributes() {
        let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
        let layer = SessionLayer::<()>::builder(ring())
            .clock(Arc::new(clock))
            .host_prefix()
            .same_site_strict()
            .build()
            .unwrap();
        let res = call(&layer, "/login", None).await;
        let set = res.headers()[SET_COOKIE].to_str().unwrap();
        assert!(set.starts_with("__Host-session=eyJ"), "{set}");
        for attr in [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=87300",
        ] {
            assert!(set.contains(attr), "{attr} missing from {set}");
        }
        assert!(!set.contains("Domain"));
    }

    #[test]
    fn debug_never_shows_keys() {
        let layer = layer();
        let handle = SessionHandle::<()>::new(Arc::clone(&layer.config), None, Pending::Nothing);
        let b64 = |b: &[u8]| {
            use std::fmt::Write;
            b.iter().fold(String::new(), |mut s, x| {
                let _ = write!(s, "{x:02x}");
                s
            })
        };
        for dbg in [
            format!("{layer:?}"),
            format!("{handle:?}"),
            format!("{:?}", SessionLayer::<()>::builder(ring())),
        ] {
            assert!(!dbg.contains(&b64(&KEY[1..])), "{dbg}");
            assert!(!dbg.contains("paWlpaWl"), "{dbg}");
        }
        assert!(format!("{layer:?}").contains("t1"));
    }
}
