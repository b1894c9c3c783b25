//! [`ResponseFuture`], the future [`SessionService`](crate::SessionService) returns.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use jwe_session_core::BoxFuture;

/// The response future of [`SessionService`](crate::SessionService).
pub struct ResponseFuture<B, E> {
    inner: BoxFuture<'static, Result<Response<B>, E>>,
}

impl<B, E> ResponseFuture<B, E> {
    pub(crate) fn new(inner: BoxFuture<'static, Result<Response<B>, E>>) -> Self {
        Self { inner }
    }

    /// A response the layer gives itself, without calling the inner service.
    pub(crate) fn ready(res: Response<B>) -> Self
    where
        B: Send + 'static,
        E: Send + 'static,
    {
        Self::new(Box::pin(std::future::ready(Ok(res))))
    }
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
