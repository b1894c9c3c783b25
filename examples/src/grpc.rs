//! A tonic (gRPC) service that authenticates with bearer session tokens in metadata.
//!
//! `Login` checks a user name and password and starts a session: the token comes back in
//! the `x-session-token` response metadata. `WhoAmI` needs a session: the client sends
//! `authorization: Bearer <token>`; when the token is past `exp` the layer renews it and
//! the new one comes back in `x-session-token` again.
//!
//! The messages are written with `prost`'s derive and the service by hand, so the example
//! needs no `protoc`; a real service would generate the same code from a `.proto` file:
//!
//! ```proto
//! package demo;
//! service Greeter {
//!   rpc Login(LoginRequest) returns (LoginReply);
//!   rpc WhoAmI(WhoAmIRequest) returns (WhoAmIReply);
//! }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use jwe_session::{ConfigError, SessionHandle, SessionLayer, Transport};
use jwe_session_core::{Clock, KeyRingHandle};
use serde::{Deserialize, Serialize};
use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::{NamedService, UnaryService};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

/// `demo.LoginRequest`
#[derive(Clone, PartialEq, prost::Message)]
pub struct LoginRequest {
    /// User name.
    #[prost(string, tag = "1")]
    pub username: String,
    /// Password (`demo`).
    #[prost(string, tag = "2")]
    pub password: String,
}

/// `demo.LoginReply`
#[derive(Clone, PartialEq, prost::Message)]
pub struct LoginReply {
    /// The session id (the token itself travels in metadata).
    #[prost(string, tag = "1")]
    pub sid: String,
}

/// `demo.WhoAmIRequest`
#[derive(Clone, PartialEq, prost::Message)]
pub struct WhoAmIRequest {}

/// `demo.WhoAmIReply`
#[derive(Clone, PartialEq, prost::Message)]
pub struct WhoAmIReply {
    /// The session's subject.
    #[prost(string, tag = "1")]
    pub sub: String,
    /// The session id.
    #[prost(string, tag = "2")]
    pub sid: String,
}

/// The service's own claims.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ApiClaims {
    /// What the client may do.
    pub scope: String,
}

/// The session layer for the gRPC service: bearer tokens only.
///
/// # Errors
/// [`ConfigError`] as [`SessionLayerBuilder::build`](jwe_session::SessionLayerBuilder::build).
pub fn layer(
    ring: impl Into<KeyRingHandle>,
    clock: Arc<dyn Clock>,
) -> Result<SessionLayer<ApiClaims>, ConfigError> {
    SessionLayer::<ApiClaims>::builder(ring)
        .transport(Transport::Bearer)
        .clock(clock)
        .build()
}

fn session(ext: &tonic::Extensions) -> Result<SessionHandle<ApiClaims>, Status> {
    ext.get::<SessionHandle<ApiClaims>>()
        .cloned()
        .ok_or_else(|| Status::internal("Greeter served without SessionLayer"))
}

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

struct Login;

impl UnaryService<LoginRequest> for Login {
    type Response = LoginReply;
    type Future = BoxFut<Result<Response<LoginReply>, Status>>;

    fn call(&mut self, req: Request<LoginRequest>) -> Self::Future {
        Box::pin(async move {
            let handle = session(req.extensions())?;
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
        })
    }
}

struct WhoAmI;

impl UnaryService<WhoAmIRequest> for WhoAmI {
    type Response = WhoAmIReply;
    type Future = BoxFut<Result<Response<WhoAmIReply>, Status>>;

    fn call(&mut self, req: Request<WhoAmIRequest>) -> Self::Future {
        Box::pin(async move {
            let claims = session(req.extensions())?
                .claims()
                .ok_or_else(|| Status::unauthenticated("no valid session: call Login first"))?;
            Ok(Response::new(WhoAmIReply {
                sub: claims.sub.unwrap_or_default(),
                sid: claims.sid.unwrap_or_default(),
            }))
        })
    }
}

/// The `demo.Greeter` service, written as tonic's generated code would be.
#[derive(Clone, Debug, Default)]
pub struct GreeterServer;

impl NamedService for GreeterServer {
    const NAME: &'static str = "demo.Greeter";
}

impl<B> tower_service::Service<http::Request<B>> for GreeterServer
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFut<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        Box::pin(async move {
            Ok(match req.uri().path() {
                "/demo.Greeter/Login" => {
                    let mut grpc = tonic::server::Grpc::new(ProstCodec::default());
                    grpc.unary(Login, req).await
                }
                "/demo.Greeter/WhoAmI" => {
                    let mut grpc = tonic::server::Grpc::new(ProstCodec::default());
                    grpc.unary(WhoAmI, req).await
                }
                _ => Status::unimplemented("no such method").into_http(),
            })
        })
    }
}

/// A client for `demo.Greeter` that keeps the session token it is given.
#[derive(Debug)]
pub struct GreeterClient {
    grpc: tonic::client::Grpc<tonic::transport::Channel>,
    token: Option<String>,
}

impl GreeterClient {
    /// Connects to `http://host:port`.
    ///
    /// # Errors
    /// A transport error if the connection fails.
    pub async fn connect(url: String) -> Result<Self, tonic::transport::Error> {
        let channel = tonic::transport::Endpoint::from_shared(url)?
            .connect()
            .await?;
        Ok(Self {
            grpc: tonic::client::Grpc::new(channel),
            token: None,
        })
    }

    /// The token held now.
    #[must_use]
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Replaces the token held (to replay an old one, say).
    pub fn set_token(&mut self, token: Option<String>) {
        self.token = token;
    }

    async fn unary<Req, Res>(&mut self, msg: Req, path: &'static str) -> Result<Res, Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Res: prost::Message + Default + Send + Sync + 'static,
    {
        let mut req = Request::new(msg);
        if let Some(t) = &self.token {
            let value = format!("Bearer {t}")
                .parse()
                .map_err(|_| Status::internal("token is not valid metadata"))?;
            req.metadata_mut().insert("authorization", value);
        }
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let res = self
            .grpc
            .unary(
                req,
                http::uri::PathAndQuery::from_static(path),
                ProstCodec::default(),
            )
            .await?;
        if let Some(t) = res.metadata().get(jwe_session::DEFAULT_TOKEN_HEADER) {
            self.token = t.to_str().ok().map(str::to_owned);
        }
        Ok(res.into_inner())
    }

    /// Logs in; the client keeps the token.
    ///
    /// # Errors
    /// `unauthenticated` for a wrong password.
    pub async fn login(&mut self, username: &str, password: &str) -> Result<LoginReply, Status> {
        let msg = LoginRequest {
            username: username.into(),
            password: password.into(),
        };
        self.unary(msg, "/demo.Greeter/Login").await
    }

    /// Asks who the session belongs to.
    ///
    /// # Errors
    /// `unauthenticated` without a valid session.
    pub async fn who_am_i(&mut self) -> Result<WhoAmIReply, Status> {
        self.unary(WhoAmIRequest {}, "/demo.Greeter/WhoAmI").await
    }
}
