//! A tonic (gRPC) service that authenticates with bearer session tokens in metadata, on
//! code generated from `proto/demo.proto` at build time (protox: no `protoc` needed).
//!
//! Server: `Login` checks a user name and password and starts a session, whose token comes
//! back in the `x-session-token` response metadata. `WhoAmI` needs a session; when the
//! token is past `exp` the layer renews it and the new one comes back the same way.
//!
//! Client: the generated `GreeterClient` over a channel wrapped in
//! [`BearerLayer`], which sends
//! `authorization: Bearer <token>` and keeps each new token from the responses, shared by
//! every clone of the client.
//!
//! `Watch` is a server-streaming call: it sends one event with whose session it is, stays
//! open, and ends with `UNAUTHENTICATED` ("session revoked") as soon as the session is
//! revoked, on this instance or, through a shared store, any other (`Session::watch`).
//!
//! Streaming responses: the token travels in the response headers, which leave before a
//! streamed body. A session change a streaming handler makes after that
//! (`start`/`update`/`cycle`) returns a `ResponseSent` error instead of being lost.

use std::sync::Arc;

use jwe_session::client::DpopSigner;
use jwe_session::client::{BearerLayer, BearerService, TokenCell};
use jwe_session::{
    Clock, ConfigError, DpopConfig, KeyRingHandle, ProofKey, SessionHandle, SessionLayer,
    SystemClock, Transport,
};
use serde::{Deserialize, Serialize};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

/// The code tonic-prost-build generated from `proto/demo.proto`.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("demo");
}

pub use pb::{LoginReply, LoginRequest, WatchEvent, WatchRequest, WhoAmIReply, WhoAmIRequest};

/// The service's own claims.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ApiClaims {
    /// What the client may do.
    pub scope: String,
}

/// The session layer for the gRPC service: bearer tokens only, bound to the client's key
/// (DPoP) when its login carried a proof. `origin` is the URL clients dial
/// (`http://127.0.0.1:50051`): a proof's `htu` is it plus `/demo.Greeter/Method`.
///
/// # Errors
/// [`ConfigError`] as [`SessionLayerBuilder::build`](jwe_session::SessionLayerBuilder::build).
pub fn layer(
    ring: impl Into<KeyRingHandle>,
    clock: Arc<dyn Clock>,
    origin: &str,
) -> Result<SessionLayer<ApiClaims>, ConfigError> {
    SessionLayer::<ApiClaims>::builder(ring)
        .transport(Transport::Bearer)
        .clock(clock)
        .dpop(DpopConfig::new().public_origin(origin))
        .build()
}

fn session<T>(req: &Request<T>) -> Result<SessionHandle<ApiClaims>, Status> {
    req.extensions()
        .get::<SessionHandle<ApiClaims>>()
        .cloned()
        .ok_or_else(|| Status::internal("Greeter served without SessionLayer"))
}

/// The `demo.Greeter` service.
#[derive(Clone, Copy, Debug, Default)]
pub struct Greeter;

#[tonic::async_trait]
impl pb::greeter_server::Greeter for Greeter {
    type WatchStream = tokio_stream::wrappers::ReceiverStream<Result<WatchEvent, Status>>;

    async fn watch(
        &self,
        req: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let handle = session(&req)?;
        let claims = handle
            .claims()
            .ok_or_else(|| Status::unauthenticated("no valid session: call Login first"))?;
        let mut watch = handle
            .watch()
            .map_err(|e| Status::internal(e.to_string()))?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let first = WatchEvent {
            sub: claims.sub.unwrap_or_default(),
            sid: claims.sid.unwrap_or_default(),
        };
        tokio::spawn(async move {
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            loop {
                tokio::select! {
                    end = &mut watch => {
                        // A claims refresh: the renew hook runs again; the stream goes on
                        // (watching the new claims) only if it passes.
                        if matches!(end, jwe_session::WatchEnd::Refreshed { .. }) {
                            if let (Ok(_), Ok(w)) = (handle.recheck().await, handle.watch()) {
                                watch = w;
                                continue;
                            }
                        }
                        tracing::info!(reason = %end, "ending a gRPC stream: session ended");
                        let _ = tx.send(Err(Status::unauthenticated("session revoked"))).await;
                        return;
                    }
                    // The client went away: nothing to end.
                    () = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }

    async fn login(&self, req: Request<LoginRequest>) -> Result<Response<LoginReply>, Status> {
        let handle = session(&req)?;
        let msg = req.into_inner();
        if msg.username.trim().is_empty() || msg.password != "demo" {
            return Err(Status::unauthenticated("wrong user name or password"));
        }
        handle
            .start(
                msg.username.trim(),
                ApiClaims {
                    scope: "read".into(),
                },
            )
            .map_err(|e| Status::resource_exhausted(e.to_string()))?;
        let sid = handle.claims().and_then(|c| c.sid).unwrap_or_default();
        Ok(Response::new(LoginReply { sid }))
    }

    async fn who_am_i(&self, req: Request<WhoAmIRequest>) -> Result<Response<WhoAmIReply>, Status> {
        let claims = session(&req)?
            .claims()
            .ok_or_else(|| Status::unauthenticated("no valid session: call Login first"))?;
        Ok(Response::new(WhoAmIReply {
            sub: claims.sub.unwrap_or_default(),
            sid: claims.sid.unwrap_or_default(),
        }))
    }
}

/// The generated server around [`Greeter`], for `Server::builder().layer(layer).add_service(..)`.
#[must_use]
pub fn server() -> pb::greeter_server::GreeterServer<Greeter> {
    pb::greeter_server::GreeterServer::new(Greeter)
}

/// The generated client over a channel that carries the session token.
pub type GreeterClient = pb::greeter_client::GreeterClient<BearerService<Channel>>;

/// Connects to `url` (`http://host:port`): the generated client, and the token cell it
/// fills and sends (empty until `Login` answers). Every call carries a DPoP proof by a
/// key made for this client, so its session is bound to that key: the token alone, copied
/// from the cell or the wire, is refused.
///
/// # Errors
/// A transport error if the connection fails.
pub async fn connect(url: String) -> Result<(GreeterClient, TokenCell), ConnectError> {
    connect_with(url, Arc::new(SystemClock)).await
}

/// As [`connect`], with the clock the proofs' `iat` is read from (a test's manual clock).
///
/// # Errors
/// As [`connect`].
pub async fn connect_with(
    url: String,
    clock: Arc<dyn Clock>,
) -> Result<(GreeterClient, TokenCell), ConnectError> {
    let signer = DpopSigner::new(ProofKey::generate()?)
        .origin(url.clone())
        .clock(clock);
    let channel = Endpoint::from_shared(url)?.connect().await?;
    let token = TokenCell::new();
    let channel = tower::ServiceBuilder::new()
        .layer(BearerLayer::new(token.clone()).dpop(signer))
        .service(channel);
    Ok((GreeterClient::new(channel), token))
}

/// Why [`connect`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The connection.
    Transport(tonic::transport::Error),
    /// No key could be made for the proofs.
    Key(jwe_session::ProofKeyError),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "cannot connect: {e}"),
            Self::Key(e) => write!(f, "cannot make a DPoP key: {e}"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport(e) => Some(e),
            Self::Key(e) => Some(e),
        }
    }
}

impl From<tonic::transport::Error> for ConnectError {
    fn from(e: tonic::transport::Error) -> Self {
        Self::Transport(e)
    }
}

impl From<jwe_session::ProofKeyError> for ConnectError {
    fn from(e: jwe_session::ProofKeyError) -> Self {
        Self::Key(e)
    }
}
