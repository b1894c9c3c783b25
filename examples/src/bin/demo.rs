//! The jwe-session demo: `cargo run -p jwe-session-examples --bin demo`.
//!
//! Environment:
//! - `JWE_SESSION_KEYS`: a JWK Set (make one with `jwe-session keygen --set`); without it a
//!   fresh key is generated and sessions do not survive a restart;
//! - `JWE_SESSION_KEYS_FILE`: a JWK Set file instead, watched (`KeyRingHandle::watch_file`):
//!   a rotated key ring (`jwe-session rotate --keys FILE ...`, a Kubernetes Secret update)
//!   takes effect within a second or two, without a restart or a signal (`SIGHUP` re-reads
//!   it too);
//! - `BIND`: the listen address (default `127.0.0.1:3000`);
//! - `JWE_SESSION_REVOCATIONS`: the revocation file (`jwe-session-file`), so logouts
//!   survive restarts and crashes. Default: `target/jwe-session-demo/revocations-<port>.redb`
//!   when run from the workspace (`cargo run`), else `jwe-session-demo-revocations-<port>.redb`
//!   in the current directory. A damaged or foreign file stops the demo with an error;
//! - `REDIS_URL`: keep revocations in Redis instead (`jwe-session-redis`), shared with
//!   other instances (`rediss://` for TLS). The revocation file above is then this
//!   instance's durable queue: a logout made while Redis is down is kept there and sent
//!   when Redis answers, even across a restart;
//!   The role table of `POST /roles` is then a Redis hash (`jwe-session-demo:roles`),
//!   so a role change reaches every instance;
//! - `DATABASE_URL`: keep revocations (and the "your devices" registry) in PostgreSQL
//!   instead (`jwe-session-postgres`, `postgres://user:pass@host/db`), shared with other
//!   instances; the store creates its schema (`jwe_session`) on first start. As with
//!   Redis, the revocation file is then this instance's durable queue. The role table
//!   stays in each instance's memory. Set at most one of `REDIS_URL` and `DATABASE_URL`;
//! - `REDIS_CLUSTER=1`: `REDIS_URL` names nodes of a Redis Cluster (comma-separated);
//!   the role table stays in each instance's memory then;
//! - `REDIS_CA_FILE`: a PEM file of CA certificates to trust for `rediss://` instead of
//!   the system's;
//! - `DEMO_INSECURE_COOKIE=1`: drop `Secure` from the cookie. Chromium and Firefox accept
//!   `Secure` cookies from `http://localhost`; Safari (WebKit) and some plain-HTTP clients
//!   do not, and without this they never keep a session. Local use only;
//! - `DEMO_TLS_CERT` and `DEMO_TLS_KEY`: PEM files of a certificate chain (leaf first) and
//!   its private key: the demo serves HTTPS (rustls) instead of HTTP;
//! - `DEMO_DBSC=1`: device-bound sessions (DBSC): a login asks the browser to bind the
//!   session to a key it keeps, and only refreshes signed by that key renew the session
//!   cookie. Browsers register only over HTTPS (set the two above, or serve behind a TLS
//!   proxy);
//! - `DEMO_DBSC_BOUND_SECONDS`: how long a bound cookie lives (default 600, at most the
//!   access lifetime of 900);
//! - `DEMO_MAX_SESSIONS`: at most this many sessions per user; a login beyond it ends the
//!   user's oldest session (on every instance). `GET /devices` lists them.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use jwe_session::{AuthJsVersion, KeyError, KeyRing, KeyRingHandle, RevocationStore};
use jwe_session_demo::demo::{app, DemoOptions, RoleTable};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let keys_file = std::env::var_os("JWE_SESSION_KEYS_FILE").map(std::path::PathBuf::from);
    let ring = match &keys_file {
        Some(path) => {
            KeyRing::from_file(path).map_err(|e| format!("JWE_SESSION_KEYS_FILE: {e}"))?
        }
        None => match KeyRing::from_env() {
            Ok(ring) => ring,
            Err(KeyError::EnvMissing { .. }) => {
                tracing::warn!(
                    "JWE_SESSION_KEYS is not set: using a fresh random key; sessions will not survive a restart"
                );
                KeyRing::generate()
            }
            Err(e) => return Err(format!("JWE_SESSION_KEYS: {e}").into()),
        },
    };
    let ring = KeyRingHandle::new(ring);
    // Held until the demo exits: dropping it would stop the watch.
    let _watch = match keys_file {
        Some(path) => {
            let watch = ring
                .watch_file(&path)
                .map_err(|e| format!("JWE_SESSION_KEYS_FILE: {e}"))?;
            reload_on_sighup(ring.clone(), path)?;
            Some(watch)
        }
        None => None,
    };
    let bind: SocketAddr = std::env::var("BIND")
        .unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
        .parse()
        .map_err(|e| format!("BIND: {e}"))?;
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let port = listener.local_addr()?.port();

    let mut opts = DemoOptions::new(ring);
    opts.store = Some(revocation_store(port).await?);
    opts.roles = role_table().await?;
    opts.insecure_cookie = std::env::var("DEMO_INSECURE_COOKIE").is_ok_and(|v| v == "1");
    opts.metrics = Some(jwe_session_demo::demo::install_metrics()?);
    let tls = tls_config()?;
    opts.https = tls.is_some();
    opts.dbsc = dbsc()?;
    opts.max_sessions = max_sessions()?;
    opts.authjs = authjs()?;
    if opts.dbsc.is_some() && tls.is_none() {
        tracing::warn!(
            "DEMO_DBSC=1 without DEMO_TLS_CERT/DEMO_TLS_KEY: browsers register device-bound sessions only over HTTPS (fine behind a TLS proxy)"
        );
    }
    let router = app(opts)?;
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Some(config) = tls {
        tracing::info!("demo listening on https://{}", listener.local_addr()?);
        jwe_session_demo::tls::serve(listener, router, config, shutdown).await;
        return Ok(());
    }

    tracing::info!("demo listening on http://{}", listener.local_addr()?);
    if !std::env::var("DEMO_INSECURE_COOKIE").is_ok_and(|v| v == "1") {
        tracing::info!(
            "the session cookie is Secure: Safari drops it over plain HTTP; \
             for Safari, restart with DEMO_INSECURE_COOKIE=1 (local use only)"
        );
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// HTTPS when `DEMO_TLS_CERT` and `DEMO_TLS_KEY` name the PEM files (both or neither).
fn tls_config() -> Result<Option<Arc<rustls::ServerConfig>>, String> {
    let cert = std::env::var_os("DEMO_TLS_CERT");
    let key = std::env::var_os("DEMO_TLS_KEY");
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => jwe_session_demo::tls::load(cert.as_ref(), key.as_ref())
            .map(Some)
            .map_err(|e| format!("DEMO_TLS_CERT/DEMO_TLS_KEY: {e}")),
        _ => Err("DEMO_TLS_CERT and DEMO_TLS_KEY go together: set both for HTTPS".to_owned()),
    }
}

/// A Next.js app's sessions that `GET /me` also accepts: `AUTH_SECRET` (and, while it
/// rotates, the older `AUTH_SECRET_1` … `AUTH_SECRET_3`, as next-auth v5 reads them), for
/// Auth.js v5's cookie, or NextAuth v4's with `AUTHJS_V4=1`.
fn authjs() -> Result<Option<(AuthJsVersion, Vec<String>)>, String> {
    let v4 = std::env::var("AUTHJS_V4").is_ok_and(|v| v == "1");
    let Some(secret) = std::env::var_os("AUTH_SECRET") else {
        if v4 {
            return Err("AUTHJS_V4=1 needs AUTH_SECRET, the Next.js app's secret".to_owned());
        }
        return Ok(None);
    };
    let text = |name: &str, v: std::ffi::OsString| {
        v.into_string()
            .map_err(|_| format!("{name} is not UTF-8"))
            .and_then(|s| {
                if s.is_empty() {
                    Err(format!(
                        "{name} is empty; set it to the Next.js app's secret"
                    ))
                } else {
                    Ok(s)
                }
            })
    };
    let mut secrets = vec![text("AUTH_SECRET", secret)?];
    for n in 1..=3 {
        let name = format!("AUTH_SECRET_{n}");
        if let Some(v) = std::env::var_os(&name) {
            secrets.push(text(&name, v)?);
        }
    }
    let version = if v4 {
        AuthJsVersion::V4
    } else {
        AuthJsVersion::V5
    };
    tracing::info!(
        cookie = version.cookie_name(false),
        "GET /me also accepts the Next.js app's Auth.js session (AUTH_SECRET)"
    );
    Ok(Some((version, secrets)))
}

/// The per-user session cap of `DEMO_MAX_SESSIONS`, if set.
fn max_sessions() -> Result<Option<usize>, String> {
    match std::env::var("DEMO_MAX_SESSIONS") {
        Err(_) => Ok(None),
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| format!("DEMO_MAX_SESSIONS: {v:?} is not a number of sessions above 0")),
    }
}

/// The bound lifetime when `DEMO_DBSC=1` (`DEMO_DBSC_BOUND_SECONDS`, default 600).
fn dbsc() -> Result<Option<std::time::Duration>, String> {
    if !std::env::var("DEMO_DBSC").is_ok_and(|v| v == "1") {
        return Ok(None);
    }
    let secs = match std::env::var("DEMO_DBSC_BOUND_SECONDS") {
        Err(_) => 600,
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                format!("DEMO_DBSC_BOUND_SECONDS: {v:?} is not a number of seconds above 0")
            })?,
    };
    Ok(Some(std::time::Duration::from_secs(secs)))
}

/// The role table (`POST /roles`): in Redis with a single-node `REDIS_URL`, so every
/// instance reads the same roles; in memory otherwise (and on a Redis Cluster, where it is
/// per instance).
async fn role_table() -> Result<RoleTable, String> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !std::env::var("REDIS_CLUSTER").is_ok_and(|v| v == "1") => {
            RoleTable::redis(url.trim())
                .await
                .map_err(|e| format!("REDIS_URL (role table): {e}"))
        }
        _ => Ok(RoleTable::memory()),
    }
}

/// Redis when `REDIS_URL` is set, PostgreSQL when `DATABASE_URL` is; otherwise the
/// revocation file.
async fn revocation_store(port: u16) -> Result<Arc<dyn RevocationStore>, String> {
    let database = std::env::var("DATABASE_URL").ok();
    if database.is_some() && std::env::var_os("REDIS_URL").is_some() {
        return Err("REDIS_URL and DATABASE_URL are both set: choose one revocation store".into());
    }
    let path = match std::env::var_os("JWE_SESSION_REVOCATIONS") {
        Some(p) => PathBuf::from(p),
        None => default_revocations_file(port)?,
    };
    let file = jwe_session_file::FileStore::open(&path)
        .map_err(|e| format!("JWE_SESSION_REVOCATIONS: {e}"))?;
    if let Some(url) = database {
        // The URL may carry a password: errors name the variable and the cause only.
        // Five seconds to reach the database at start-up, not the driver's thirty.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(url.trim())
            .await
            .map_err(|e| format!("DATABASE_URL: {e}"))?;
        let store = jwe_session_postgres::PgStore::builder(pool)
            .queue_in(file)
            .connect()
            .await
            .map_err(|e| format!("DATABASE_URL: {e}"))?;
        tracing::info!(queue = %path.display(), "revocations shared through PostgreSQL");
        return Ok(Arc::new(store));
    }
    if let Ok(url) = std::env::var("REDIS_URL") {
        let urls: Vec<&str> = url.split(',').map(str::trim).collect();
        let builder = if std::env::var("REDIS_CLUSTER").is_ok_and(|v| v == "1") {
            jwe_session_redis::RedisStore::cluster_builder(urls)
        } else {
            jwe_session_redis::RedisStore::builder(url.clone())
        };
        let builder = match std::env::var_os("REDIS_CA_FILE") {
            Some(ca) => builder.tls_root_certificates(
                std::fs::read(&ca).map_err(|e| format!("REDIS_CA_FILE: {e}"))?,
            ),
            None => builder,
        };
        // The revocation file becomes this instance's durable queue: a logout Redis does
        // not take survives a restart and is sent when Redis answers.
        let store = builder
            .queue_in(file)
            .connect()
            .await
            .map_err(|e| format!("REDIS_URL: {e}"))?;
        tracing::info!(queue = %path.display(), "revocations shared through Redis");
        return Ok(Arc::new(store));
    }
    let store = file;
    tracing::info!(
        file = %path.display(),
        entries = store.len(),
        "revocations kept in a file: logouts survive restarts"
    );
    Ok(Arc::new(store))
}

/// `target/jwe-session-demo/revocations-<port>.redb` beside the binary's build directory
/// when run with cargo, else `jwe-session-demo-revocations-<port>.redb` here. One file per
/// port, so two demos side by side do not contend for one.
fn default_revocations_file(port: u16) -> Result<PathBuf, String> {
    let target = std::env::current_exe().ok().and_then(|exe| {
        let profile = exe.parent()?;
        matches!(profile.file_name()?.to_str()?, "debug" | "release")
            .then(|| profile.parent().map(PathBuf::from))
            .flatten()
    });
    match target {
        Some(target) => {
            let dir = target.join("jwe-session-demo");
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            Ok(dir.join(format!("revocations-{port}.redb")))
        }
        None => Ok(PathBuf::from(format!(
            "jwe-session-demo-revocations-{port}.redb"
        ))),
    }
}

/// Re-reads the key file on every SIGHUP; a file that does not load leaves the ring as it was.
#[cfg(unix)]
fn reload_on_sighup(ring: KeyRingHandle, path: std::path::PathBuf) -> std::io::Result<()> {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match ring.reload_from_file(&path) {
                Ok(()) => tracing::info!(active = ring.load().active().kid(), "key ring reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "key ring not reloaded; keeping the current one")
                }
            }
        }
    });
    Ok(())
}

#[cfg(not(unix))]
fn reload_on_sighup(_: KeyRingHandle, _: std::path::PathBuf) -> std::io::Result<()> {
    Ok(())
}
