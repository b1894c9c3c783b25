//! Connections: one standalone Redis or a Cluster, plain or TLS, behind one type.

use std::time::Duration;

use crate::error::BackendError;
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, TlsCertificates, Value};

/// Where the store connects.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) urls: Vec<String>,
    pub(crate) cluster: bool,
    pub(crate) root_ca: Option<Vec<u8>>,
}

/// The clients a store needs: one for commands, one for the follower's blocking reads.
pub(crate) enum Clients {
    Single(Box<redis::Client>),
    Cluster(Box<ClusterClients>),
}

pub(crate) struct ClusterClients {
    commands: redis::cluster::ClusterClient,
    blocking: redis::cluster::ClusterClient,
}

/// A connection for commands (reconnecting) or for blocking reads.
#[derive(Clone)]
pub(crate) enum Conn {
    Manager(ConnectionManager),
    Plain(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Manager(c) => c.req_packed_command(cmd),
            Self::Plain(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Manager(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Plain(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Manager(c) => c.get_db(),
            Self::Plain(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// What the store was doing when Redis failed: the message an operator reads first
/// (never the URL itself, which may carry a password), with Redis's error as the cause.
#[derive(Debug)]
struct Context {
    what: String,
    source: redis::RedisError,
}

impl std::fmt::Display for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for Context {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// `BackendError::Unavailable` saying what failed; `Timeout`s stay as they are.
fn context(e: BackendError, what: impl FnOnce() -> String) -> BackendError {
    match e {
        BackendError::Unavailable { source } => match source.downcast::<redis::RedisError>() {
            Ok(source) => BackendError::Unavailable {
                source: Box::new(Context {
                    what: what(),
                    source: *source,
                }),
            },
            Err(source) => BackendError::Unavailable { source },
        },
        other => other,
    }
}

const URL_SHAPE: &str = "use redis://[user:password@]host[:port][/db], or rediss:// for TLS";

pub(crate) fn unavailable(e: redis::RedisError) -> BackendError {
    BackendError::unavailable(e)
}

/// Runs `fut`, bounded by `after`.
pub(crate) async fn bounded<T>(
    after: Duration,
    fut: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, BackendError> {
    match tokio::time::timeout(after, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(unavailable(e)),
        Err(_) => Err(BackendError::Timeout { after }),
    }
}

/// Whether a failed call may succeed at once on a fresh connection: the old one was
/// dropped (a restarted Redis, a failover), not refused by the server.
pub(crate) fn stale(e: &BackendError) -> bool {
    match e {
        BackendError::Unavailable { source } => source
            .downcast_ref::<redis::RedisError>()
            .is_some_and(|e| e.is_connection_dropped() || e.is_io_error()),
        _ => false,
    }
}

/// Whether Redis refused a call for what it carries (a script's `ERR`, a key of another
/// type), which no retry will change. An outage, a failover (`READONLY`, `LOADING`), memory
/// pressure (`OOM`) or a missing permission (`NOPERM`, which an operator fixes) is not:
/// what such a call carried must be kept and re-sent.
pub(crate) fn refused(e: &BackendError) -> bool {
    match e {
        BackendError::Unavailable { source } => {
            source.downcast_ref::<redis::RedisError>().is_some_and(|e| {
                e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError)
                    || e.code() == Some("WRONGTYPE")
            })
        }
        _ => false,
    }
}

impl Target {
    fn certs(&self) -> TlsCertificates {
        TlsCertificates {
            client_tls: None,
            root_cert: self.root_ca.clone(),
        }
    }

    pub(crate) fn clients(
        &self,
        timeout: Duration,
        block: Duration,
    ) -> Result<Clients, BackendError> {
        if self.urls.iter().any(|u| u.starts_with("rediss://")) {
            // rustls needs a crypto provider; install ring unless the app chose one.
            if rustls::crypto::CryptoProvider::get_default().is_none() {
                let _ = rustls::crypto::ring::default_provider().install_default();
            }
        }
        if self.cluster {
            let build = |response: Duration| {
                let mut b = ClusterClientBuilder::new(self.urls.clone())
                    .connection_timeout(timeout)
                    .response_timeout(response)
                    .retries(2);
                if self.root_ca.is_some() {
                    b = b.certs(self.certs());
                }
                b.build().map_err(unavailable).map_err(|e| {
                    context(e, || {
                        format!("a Redis Cluster node URL did not parse: {URL_SHAPE}")
                    })
                })
            };
            return Ok(Clients::Cluster(Box::new(ClusterClients {
                commands: build(timeout)?,
                blocking: build(block + timeout)?,
            })));
        }
        let [url] = self.urls.as_slice() else {
            return Err(BackendError::unavailable(
                "a standalone Redis takes exactly one URL",
            ));
        };
        let client = match &self.root_ca {
            Some(_) => redis::Client::build_with_tls(url.as_str(), self.certs()),
            None => redis::Client::open(url.as_str()),
        }
        .map_err(unavailable)
        .map_err(|e| context(e, || format!("the Redis URL did not parse: {URL_SHAPE}")))?;
        Ok(Clients::Single(Box::new(client)))
    }
}

/// "could not connect to Redis at host:port" (the address only, never credentials).
fn connecting(client: &redis::Client) -> String {
    format!(
        "could not connect to Redis at {} (is it running there, and does it take this \
         user and password?)",
        client.get_connection_info().addr()
    )
}

impl Clients {
    /// The reconnecting connection for commands.
    pub(crate) async fn commands(
        &self,
        timeout: Duration,
        max_backoff: Duration,
    ) -> Result<Conn, BackendError> {
        match self {
            Self::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(max_backoff);
                let conn = bounded(timeout, client.get_connection_manager_with_config(config))
                    .await
                    .map_err(|e| context(e, || connecting(client)))?;
                Ok(Conn::Manager(conn))
            }
            Self::Cluster(c) => {
                let conn = bounded(timeout * 2, c.commands.get_async_connection())
                    .await
                    .map_err(|e| context(e, || "could not connect to the Redis Cluster".into()))?;
                Ok(Conn::Cluster(conn))
            }
        }
    }

    /// A fresh connection for the follower, whose reads block up to `block`.
    pub(crate) async fn blocking(
        &self,
        timeout: Duration,
        block: Duration,
    ) -> Result<Conn, BackendError> {
        match self {
            Self::Single(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(block + timeout));
                let conn = bounded(
                    timeout,
                    client.get_multiplexed_async_connection_with_config(&config),
                )
                .await?;
                Ok(Conn::Plain(conn))
            }
            Self::Cluster(c) => {
                let conn = bounded(timeout * 2, c.blocking.get_async_connection()).await?;
                Ok(Conn::Cluster(conn))
            }
        }
    }
}
