//! The tonic example: `cargo run -p jwe-session-examples --bin grpc` serves `demo.Greeter`
//! on `127.0.0.1:50051` (or `BIND`), then, with `--client`, logs in and calls `WhoAmI`.
#![forbid(unsafe_code)]

use std::sync::Arc;

use jwe_session_core::{KeyError, KeyRing, SystemClock};
use jwe_session_examples::grpc::{layer, GreeterClient, GreeterServer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:50051".to_owned());
    if std::env::args().any(|a| a == "--client") {
        let mut client = GreeterClient::connect(format!("http://{bind}")).await?;
        let reply = client.login("alice", "demo").await?;
        println!("logged in, sid {}", reply.sid);
        let me = client.who_am_i().await?;
        println!("who am i: {} (sid {})", me.sub, me.sid);
        return Ok(());
    }
    let ring = match KeyRing::from_env() {
        Ok(r) => r,
        Err(KeyError::EnvMissing { .. }) => {
            eprintln!("JWE_SESSION_KEYS is not set: using a fresh random key");
            KeyRing::generate()
        }
        Err(e) => return Err(format!("JWE_SESSION_KEYS: {e}").into()),
    };
    let layer = layer(ring, Arc::new(SystemClock))?;
    eprintln!("demo.Greeter listening on {bind}");
    tonic::transport::Server::builder()
        .layer(layer)
        .add_service(GreeterServer)
        .serve_with_shutdown(bind.parse()?, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
