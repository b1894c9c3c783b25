//! The jwe-session demo: `cargo run -p jwe-session-examples --bin demo`.
//!
//! Environment:
//! - `JWE_SESSION_KEYS`: a JWK Set (make one with `jwe-session keygen --set`); without it a
//!   fresh key is generated and sessions do not survive a restart;
//! - `BIND`: the listen address (default `127.0.0.1:3000`);
//! - `REDIS_URL`: share revocations with other instances through Redis
//!   (`jwe-session-redis`); without it revocations live in this process;
//! - `DEMO_INSECURE_COOKIE=1`: drop `Secure` from the cookie (for plain-HTTP clients that
//!   refuse `Secure` cookies; browsers accept them from localhost).
#![forbid(unsafe_code)]

use std::net::SocketAddr;

use jwe_session_core::{KeyError, KeyRing};
use jwe_session_examples::demo::{app, DemoOptions};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let ring = match KeyRing::from_env() {
        Ok(ring) => ring,
        Err(KeyError::EnvMissing { .. }) => {
            tracing::warn!(
                "JWE_SESSION_KEYS is not set: using a fresh random key; sessions will not survive a restart"
            );
            KeyRing::generate()
        }
        Err(e) => return Err(format!("JWE_SESSION_KEYS: {e}").into()),
    };
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
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
