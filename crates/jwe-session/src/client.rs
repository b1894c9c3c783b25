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

use crate::DEFAULT_TOKEN_HEADER;

/// The token a client holds, shared by clones (thread-safe). `Debug` shows no token.
#[derive(Clone, Default)]
pub struct TokenCell(Arc<RwLock<Option<HeaderValue>>>);

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
        self.read()
            .as_ref()
            .and_then(|v| v.to_str().ok().map(str::to_owned))
    }

    /// Sets the token (one stored from an earlier run, say).
    ///
    /// # Errors
    /// [`InvalidToken`] if it cannot be sent in a header; the cell is unchanged.
    pub fn set(&self, token: &str) -> Result<(), InvalidToken> {
        let mut value =
            HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| InvalidToken)?;
        value.set_sensitive(true);
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Some(value);
        Ok(())
    }

    /// Forgets the token (after a logout).
    pub fn clear(&self) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<HeaderValue>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn authorization(&self) -> Option<HeaderValue> {
        self.read().clone()
    }

    /// Takes a new token from a response header value; ignores one that is not a token.
    fn take(&self, value: &HeaderValue) {
        let well_formed = !value.is_empty()
            && value
                .as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if well_formed {
            if let Ok(token) = value.to_str() {
                // Checked above: base64url and dots always make a header value.
                let _ = self.set(token);
            }
        }
    }
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

/// Sends the [`TokenCell`]'s token as `authorization: Bearer` and keeps new tokens from
/// responses (see the [module](self)).
#[derive(Clone, Debug)]
pub struct BearerLayer {
    token: TokenCell,
    header: HeaderName,
}

impl BearerLayer {
    /// Around a cell; new tokens come in [`DEFAULT_TOKEN_HEADER`].
    #[must_use]
    pub fn new(token: TokenCell) -> Self {
        Self {
            token,
            header: HeaderName::from_static(DEFAULT_TOKEN_HEADER),
        }
    }

    /// New tokens come in this header instead (the server's
    /// [`token_header`](crate::SessionLayerBuilder::token_header)).
    #[must_use]
    pub fn token_header(mut self, header: HeaderName) -> Self {
        self.header = header;
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
        }
    }
}

/// The service [`BearerLayer`] wraps around a client.
#[derive(Clone, Debug)]
pub struct BearerService<S> {
    inner: S,
    token: TokenCell,
    header: HeaderName,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for BearerService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = BearerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        if let Some(auth) = self.token.authorization() {
            req.headers_mut().insert(AUTHORIZATION, auth);
        }
        BearerFuture {
            inner: Box::pin(self.inner.call(req)),
            token: self.token.clone(),
            header: self.header.clone(),
        }
    }
}

/// The response future of [`BearerService`].
pub struct BearerFuture<F> {
    inner: Pin<Box<F>>,
    token: TokenCell,
    header: HeaderName,
}

impl<F> fmt::Debug for BearerFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerFuture")
    }
}

impl<F, ResB, E> Future for BearerFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let out = std::task::ready!(self.inner.as_mut().poll(cx));
        if let Ok(res) = &out {
            if let Some(value) = res.headers().get(&self.header) {
                self.token.take(value);
            }
        }
        Poll::Ready(out)
    }
}
