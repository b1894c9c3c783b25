//! [`SessionService`]: the request's phases in order. The cross-origin check, then
//! `load` (read and judge the token), the inner service, then
//! `respond` (revoke what a login replaced, write the session back).

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tower_service::Service;

use crate::devices::settle;
use crate::future::ResponseFuture;
use crate::load::{authorization, load};
use crate::respond::{revoke_replaced, write};
use crate::shared::Shared;

/// The service [`SessionLayer`](crate::SessionLayer) wraps around an inner service.
pub struct SessionService<S, T> {
    inner: S,
    shared: Arc<Shared<T>>,
}

impl<S, T> SessionService<S, T> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<T>>) -> Self {
        Self { inner, shared }
    }
}

impl<S: Clone, T> Clone for SessionService<S, T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
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

impl<S, T, ReqB, ResB> Service<Request<ReqB>> for SessionService<S, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqB: Send + 'static,
    ResB: Default + Send + 'static,
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<ResB, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        if let Err(refusal) = cross_origin_check(&self.shared, &req) {
            let res = crate::origin::forbidden(refusal, &req);
            return ResponseFuture::ready(res);
        }
        let shared = Arc::clone(&self.shared);
        // The DBSC endpoints are the layer's own (after the cross-origin check); the inner
        // service is not called.
        if let Some(endpoint) = shared
            .dbsc
            .as_ref()
            .and_then(|d| d.endpoint(req.uri().path()))
        {
            return ResponseFuture::new(Box::pin(async move {
                let (parts, _body) = req.into_parts();
                Ok(crate::endpoints::serve(
                    &shared,
                    endpoint,
                    &parts.method,
                    &parts.uri,
                    &parts.headers,
                )
                .await)
            }));
        }
        // The inner service that was polled ready is the one to call; leave a clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::new(Box::pin(async move {
            let loaded = load(&shared, req.method(), req.uri(), req.headers()).await;
            let (handle, incoming) = match (loaded, &shared.dpop) {
                (Ok(loaded), _) => loaded,
                (Err(refusal), Some(dpop)) => {
                    let ring = shared.ring.load();
                    let now = shared.clock.now_micros();
                    return Ok(dpop.refusal(&refusal, &ring, now, req.headers()));
                }
                // A DPoP refusal comes only from a layer with DPoP.
                (Err(_), None) => {
                    let mut res = Response::new(ResB::default());
                    *res.status_mut() = StatusCode::UNAUTHORIZED;
                    return Ok(res);
                }
            };
            req.extensions_mut().insert(handle.clone());
            let mut res = inner.call(req).await?;
            revoke_replaced(&shared, &handle).await;
            write(&shared, &handle, &incoming, &mut res);
            settle(&shared, &handle).await;
            Ok(res)
        }))
    }
}

/// The cross-origin protection of the cookie transport (see
/// [`SessionLayerBuilder::trusted_origin`]). A request that carries a bearer token is not
/// subject to it: it has no ambient credential, and no cookie is written for it.
fn cross_origin_check<T, B>(
    shared: &Shared<T>,
    req: &Request<B>,
) -> Result<(), crate::origin::OriginRefusal> {
    let Some(co) = &shared.cross_origin else {
        return Ok(());
    };
    if authorization(shared, req.headers()).is_some() {
        return Ok(());
    }
    co.check(req)
}
