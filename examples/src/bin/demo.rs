//! The jwe-session demo: `cargo run -p jwe-session-examples --bin demo`.
//!
//! Environment:
//! - `JWE_SESSION_KEYS`: a JWK Set (make one with `jwe-session keygen --set`); without it a
//!   fresh key is generated and sessions do not survive a restart;
//! - `JWE_SESSION_KEYS_FILE`: a JWK Set file instead, re-read on `SIGHUP`, so a rotated
//!   key ring (`jwe-session rotate --keys FILE`) takes effect without a restart;
//! - `BIND`: the listen address (default `127.0.0.1:3000`);
//! - `REDIS_URL`: share revocations with other instances through Redis
//!   (`jwe-session-redis`); without it revocations live in this process;
//! - `DEMO_INSECURE_COOKIE=1`: drop `Secure` from the cookie. Chromium and Firefox accept
//!   `Secure` cookies from `http://localhost`; Safari (WebKit) and some plain-HTTP clients
//!   do not, and without this they never keep a session. Local use only.
#![forbid(unsafe_code)]

use std::net::SocketAddr;

use jwe_session_core::{KeyError, KeyRing, KeyRingHandle};
use jwe_session_examples::demo::{app, DemoOptions};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    if let Some(path) = keys_file {
        reload_on_sighup(ring.clone(), path)?;
    }
    let mut opts = DemoOptions::new(ring);
    if let Ok(url) = std::env::var("REDIS_URL") {
        let store = jwe_session_redis::RedisStore::builder(url)
            .connect()
            .await
            .map_err(|e| format!("REDIS_URL: {e}"))?;
        tracing::info!("revocations shared through Redis");
        opts.store = Some(std::sync::Arc::new(store));
    }
    opts.insecure_cookie = std::env::var("DEMO_INSECURE_COOKIE").is_ok_and(|v| v == "1");
    let router = app(opts)?;

    let bind: SocketAddr = std::env::var("BIND")
        .unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
        .parse()
        .map_err(|e| format!("BIND: {e}"))?;
    let listener = tokio::net::TcpListener::bind(bind).await?;
    tracing::info!("demo listening on http://{}", listener.local_addr()?);
    if !std::env::var("DEMO_INSECURE_COOKIE").is_ok_and(|v| v == "1") {
        tracing::info!(
            "the session cookie is Secure: Safari drops it over plain HTTP; \
             for Safari, restart with DEMO_INSECURE_COOKIE=1 (local use only)"
        );
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
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
