//! The tonic example: `cargo run -p jwe-session-examples --bin grpc` serves `demo.Greeter`
//! on `127.0.0.1:50051` (or `BIND`), then, with `--client`, logs in and calls `WhoAmI`.
#![forbid(unsafe_code)]

use std::sync::Arc;

use jwe_session::{KeyError, KeyRing, SystemClock};
use jwe_session_demo::grpc::{connect, layer, server, LoginRequest, WhoAmIRequest};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:50051".to_owned());
    if std::env::args().any(|a| a == "--client") {
        let (mut client, _token) = connect(format!("http://{bind}")).await?;
        let reply = client
            .login(LoginRequest {
                username: "alice".into(),
                password: "demo".into(),
            })
            .await?
            .into_inner();
        println!("logged in, sid {}", reply.sid);
        // The client layer kept the token from the login and sends it now.
        let me = client.who_am_i(WhoAmIRequest {}).await?.into_inner();
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
    let layer = layer(ring, Arc::new(SystemClock), &format!("http://{bind}"))?;
    eprintln!("demo.Greeter listening on {bind}");
    tonic::transport::Server::builder()
        .layer(layer)
        .add_service(server())
        .serve_with_shutdown(bind.parse()?, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
