//! The client side of the bearer transport: a tower layer for HTTP and gRPC clients
//! (tonic channels, hyper clients) that sends the session token and keeps the renewed
//! one.
//!
//! A server behind [`SessionLayer`](crate::SessionLayer) with [`Transport::Bearer`](crate::Transport::Bearer)
//! sends a new token in the `x-session-token` response header (gRPC: initial metadata)
//! on login, renewal and re-seal. [`BearerLayer`] puts `authorization: Bearer <token>`
//! on every request and takes each new token from the responses into a [`TokenCell`]
//! shared by every clone of the service, so generated clients need no code of their
//! own:
//!
//! ```
//! use jwe_session::client::{BearerLayer, TokenCell};
//! use tower::ServiceBuilder;
//! # fn channel() -> tower::util::BoxCloneService<http::Request<String>, http::Response<String>, std::convert::Infallible> {
//! #     tower::util::BoxCloneService::new(tower::service_fn(|_| async { Ok(http::Response::new(String::new())) }))
//! # }
//!
//! let token = TokenCell::new();
//! // With tonic: `let channel = Endpoint::from_static("http://[::1]:50051").connect().await?;`
//! // then `GreeterClient::new(service)`; clones of the client share the token.
//! let service = ServiceBuilder::new()
//!     .layer(BearerLayer::new(token.clone()))
//!     .service(channel());
//! assert!(token.get().is_none()); // until a login answers with one
//! # let _ = service;
//! ```
//!
//! # Streaming responses
//! A token travels in the response headers, which leave before a streaming body. The
//! server therefore cannot deliver a change made while the stream runs:
//! [`SessionHandle::start`](crate::SessionHandle::start),
//! [`update`](crate::SessionHandle::update) and [`cycle`](crate::SessionHandle::cycle)
//! called after the headers were sent return a `ResponseSent` error and change nothing,
//! instead of losing the new token silently. A renewal the layer makes at the start of
//! the call is in the headers, and this layer keeps it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use jwe_session_core::{Clock, ProofKey, SystemClock};
use zeroize::Zeroizing;

use crate::dpop::{DPOP_HEADER, DPOP_NONCE_HEADER};
use crate::DEFAULT_TOKEN_HEADER;

/// The token a client holds, shared by clones (thread-safe). `Debug` shows no token.
#[derive(Clone, Default)]
pub struct TokenCell(Arc<RwLock<Option<Zeroizing<String>>>>);

impl fmt::Debug for TokenCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCell")
            .field("set", &self.read().is_some())
            .finish()
    }
}

impl TokenCell {
    /// An empty cell: requests go without a token until a response brings one.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The token held now.
    #[must_use]
    pub fn get(&self) -> Option<String> {
        self.read().as_ref().map(|t| t.as_str().to_owned())
    }

    /// Sets the token (one stored from an earlier run, say).
    ///
    /// # Errors
    /// [`InvalidToken`] if it cannot be sent in a header; the cell is unchanged.
    pub fn set(&self, token: &str) -> Result<(), InvalidToken> {
        if !is_token(token.as_bytes()) {
            return Err(InvalidToken);
        }
        *self.0.write().unwrap_or_else(PoisonError::into_inner) =
            Some(Zeroizing::new(token.to_owned()));
        Ok(())
    }

    /// Forgets the token (after a logout).
    pub fn clear(&self) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<Zeroizing<String>>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a new token from a response header value; ignores one that is not a token.
    fn take(&self, value: &HeaderValue) {
        if let Ok(token) = value.to_str() {
            let _ = self.set(token);
        }
    }
}

/// Whether `bytes` can be a token: base64url and dots, so always a header value.
fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The token is not something that can travel in an `authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidToken;

impl fmt::Display for InvalidToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the token cannot be sent in an authorization header")
    }
}

impl std::error::Error for InvalidToken {}

/// A client's DPoP: the key it proves possession of, and the server's latest nonce.
/// Clones share both.
#[derive(Clone)]
pub struct DpopSigner {
    key: Arc<ProofKey>,
    nonce: Arc<RwLock<Option<String>>>,
    origin: Option<Arc<str>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for DpopSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopSigner")
            .field("key", &self.key)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl DpopSigner {
    /// Proofs made with `key` (a new one from [`ProofKey::generate`], or one kept in a
    /// PKCS#8 file: [`ProofKey::from_pkcs8_pem`]).
    #[must_use]
    pub fn new(key: ProofKey) -> Self {
        Self {
            key: Arc::new(key),
            nonce: Arc::default(),
            origin: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// The clock for the proofs' `iat` (default the system's): a test's manual clock, the
    /// same the server under test judges by.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The origin the server checks `htu` against (`https://api.example.com`), when the
    /// requests' URIs do not name it (or name an internal address). Without it, `htu` is
    /// the request URI's scheme, authority and path.
    #[must_use]
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        let o: String = origin.into();
        self.origin = Some(Arc::from(o.trim_end_matches('/')));
        self
    }

    /// The key.
    #[must_use]
    pub fn key(&self) -> &ProofKey {
        &self.key
    }

    /// The last `DPoP-Nonce` the server sent, if any.
    #[must_use]
    pub fn nonce(&self) -> Option<String> {
        self.nonce
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn remember_nonce(&self, headers: &http::HeaderMap) {
        if let Some(n) = headers.get(DPOP_NONCE_HEADER).and_then(|v| v.to_str().ok()) {
            *self.nonce.write().unwrap_or_else(PoisonError::into_inner) = Some(n.to_owned());
        }
    }

    /// A fresh proof for `method` `uri` naming `token`: `htm`, `htu`, `iat` now, a random
    /// `jti`, `ath`, and the server's latest nonce. `None` when the URI has no origin and
    /// none is configured.
    fn proof(&self, method: &http::Method, uri: &http::Uri, token: Option<&str>) -> Option<String> {
        let htu = match (&self.origin, uri.scheme_str(), uri.authority()) {
            (Some(o), _, _) => format!("{o}{}", uri.path()),
            (None, Some(scheme), Some(a)) => format!("{scheme}://{a}{}", uri.path()),
            _ => return None,
        };
        let iat = self.clock.now().as_secs();
        let mut claims = serde_json::Map::new();
        claims.insert("htm".into(), method.as_str().into());
        claims.insert("htu".into(), htu.into());
        claims.insert("iat".into(), iat.into());
        claims.insert("jti".into(), jwe_session_core::random_id().into());
        if let Some(t) = token {
            claims.insert("ath".into(), jwe_session_core::access_token_hash(t).into());
        }
        if let Some(n) = self.nonce() {
            claims.insert("nonce".into(), n.into());
        }
        self.key.sign(jwe_session_core::DPOP_TYP, &claims).ok()
    }
}

/// Sends the [`TokenCell`]'s token as `authorization: Bearer` (or, with
/// [`dpop`](Self::dpop), `authorization: DPoP` and a fresh proof) and keeps new tokens from
/// responses (see the [module](self)).
#[derive(Clone, Debug)]
pub struct BearerLayer {
    token: TokenCell,
    header: HeaderName,
    dpop: Option<DpopSigner>,
}

impl BearerLayer {
    /// Around a cell; new tokens come in [`DEFAULT_TOKEN_HEADER`].
    #[must_use]
    pub fn new(token: TokenCell) -> Self {
        Self {
            token,
            header: HeaderName::from_static(DEFAULT_TOKEN_HEADER),
            dpop: None,
        }
    }

    /// New tokens come in this header instead (the server's
    /// [`token_header`](crate::SessionLayerBuilder::token_header)).
    #[must_use]
    pub fn token_header(mut self, header: HeaderName) -> Self {
        self.header = header;
        self
    }

    /// Proves possession of a key on every request (DPoP, RFC 9449): a fresh `DPoP` proof
    /// (htm, htu, iat, a random jti, and ath once there is a token), the token as
    /// `authorization: DPoP`, the server's latest `DPoP-Nonce` in the proof. A login
    /// through this layer is bound to the key, so the token is worth nothing without it.
    ///
    /// A request the server answers `401` with `error="use_dpop_nonce"` is sent once
    /// more, with the new nonce, when its body is empty (so it can be sent again); a
    /// request with a body gets the `401`, and the next request carries the nonce.
    ///
    /// ```
    /// use jwe_session::client::{BearerLayer, DpopSigner, TokenCell};
    /// use jwe_session::ProofKey;
    ///
    /// let signer = DpopSigner::new(ProofKey::generate()?).origin("https://api.example.com");
    /// let layer = BearerLayer::new(TokenCell::new()).dpop(signer);
    /// # Ok::<(), jwe_session::ProofKeyError>(())
    /// ```
    #[must_use]
    pub fn dpop(mut self, signer: DpopSigner) -> Self {
        self.dpop = Some(signer);
        self
    }

    /// The cell the layer reads and fills.
    #[must_use]
    pub fn token(&self) -> &TokenCell {
        &self.token
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = BearerService<S>;

    fn layer(&self, inner: S) -> BearerService<S> {
        BearerService {
            inner,
            token: self.token.clone(),
            header: self.header.clone(),
            dpop: self.dpop.clone(),
        }
    }
}

/// The service [`BearerLayer`] wraps around a client.
#[derive(Clone, Debug)]
pub struct BearerService<S> {
    inner: S,
    token: TokenCell,
    header: HeaderName,
    dpop: Option<DpopSigner>,
}

impl<S> BearerService<S> {
    /// Puts the token (and, with DPoP, a fresh proof) on a request.
    fn authorize<B>(&self, req: &mut Request<B>) {
        let token = self.token.get();
        let h = req.headers_mut();
        h.remove(DPOP_HEADER);
        let scheme = match &self.dpop {
            None => "Bearer",
            Some(signer) => {
                let (method, uri) = (req.method().clone(), req.uri().clone());
                match signer.proof(&method, &uri, token.as_deref()) {
                    Some(p) => {
                        if let Ok(v) = HeaderValue::try_from(p) {
                            req.headers_mut().insert(DPOP_HEADER, v);
                        }
                    }
                    None => tracing::warn!(
                        uri = %uri,
                        "no origin for the DPoP proof: set DpopSigner::origin"
                    ),
                }
                "DPoP"
            }
        };
        let h = req.headers_mut();
        match token.and_then(|t| HeaderValue::try_from(format!("{scheme} {t}")).ok()) {
            Some(mut v) => {
                v.set_sensitive(true);
                h.insert(AUTHORIZATION, v);
            }
            None => {
                h.remove(AUTHORIZATION);
            }
        }
    }
}

/// Whether a response asks for another DPoP nonce than the request's proof carried: a
/// `401` (a resource, RFC 9449 §9, `error="use_dpop_nonce"`) or a `400` (a login,
/// §8, the error in the body) with a new `DPoP-Nonce`.
fn wants_nonce<B>(res: &Response<B>, sent: Option<&str>) -> bool {
    let status = res.status().as_u16();
    let fresh = res
        .headers()
        .get(DPOP_NONCE_HEADER)
        .and_then(|v| v.to_str().ok());
    matches!(status, 400 | 401) && fresh.is_some() && fresh != sent
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for BearerService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqB: http_body::Body + Default + Send + 'static,
    ResB: Send + 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = BearerFuture<ResB, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let sent_nonce = self.dpop.as_ref().and_then(DpopSigner::nonce);
        self.authorize(&mut req);
        // An empty body can be sent again; the parts are kept for that.
        let again = (self.dpop.is_some() && req.body().size_hint().exact() == Some(0)).then(|| {
            let mut copy = Request::new(ReqB::default());
            *copy.method_mut() = req.method().clone();
            *copy.uri_mut() = req.uri().clone();
            *copy.version_mut() = req.version();
            *copy.headers_mut() = req.headers().clone();
            copy
        });
        // The inner service that was polled ready is the one to call; leave a clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let this = self.clone();
        BearerFuture(Box::pin(async move {
            let res = inner.call(req).await?;
            this.keep(&res);
            match again {
                Some(mut copy) if wants_nonce(&res, sent_nonce.as_deref()) => {
                    this.authorize(&mut copy);
                    let mut inner = this.inner.clone();
                    std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
                    let res = inner.call(copy).await?;
                    this.keep(&res);
                    Ok(res)
                }
                _ => Ok(res),
            }
        }))
    }
}

impl<S> BearerService<S> {
    /// Keeps what a response brings: a new token, a new nonce.
    fn keep<B>(&self, res: &Response<B>) {
        if let Some(value) = res.headers().get(&self.header) {
            self.token.take(value);
        }
        if let Some(signer) = &self.dpop {
            signer.remember_nonce(res.headers());
        }
    }
}

/// The response future of [`BearerService`].
pub struct BearerFuture<ResB, E>(Pin<Box<dyn Future<Output = Result<Response<ResB>, E>> + Send>>);

impl<ResB, E> fmt::Debug for BearerFuture<ResB, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerFuture")
    }
}

impl<ResB, E> Future for BearerFuture<ResB, E> {
    type Output = Result<Response<ResB>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}
