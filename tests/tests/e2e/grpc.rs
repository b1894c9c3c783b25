//! The tonic example: bearer tokens in gRPC metadata, renewal, and refusal, through the
//! generated client and the client-side `BearerLayer`.

use std::sync::Arc;
use std::time::Duration;

use jwe_session_core::{Key, KeyRing, ManualClock, UnixTime};
use jwe_session_examples::grpc::{connect, layer, server, LoginRequest, WhoAmIRequest};
use tokio::net::TcpListener;
use tonic::Code;

async fn serve(clock: ManualClock) -> (String, tokio::sync::oneshot::Sender<()>) {
    let key = Key::from_bytes("g1", &[0x9c; 32]).unwrap();
    let ring = KeyRing::new(vec![key], None).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let layer = layer(ring, Arc::new(clock)).unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(server())
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (url, stop)
}

fn login(user: &str, password: &str) -> LoginRequest {
    LoginRequest {
        username: user.into(),
        password: password.into(),
    }
}

#[tokio::test]
async fn grpc_login_call_renew_and_refuse() {
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let (url, _stop) = serve(clock.clone()).await;
    let (mut client, token) = connect(url.clone()).await.unwrap();

    let err = client.who_am_i(WhoAmIRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = client.login(login("alice", "wrong")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(token.get().is_none());

    let reply = client
        .login(login("alice", "demo"))
        .await
        .unwrap()
        .into_inner();
    let first = token
        .get()
        .expect("the client layer kept the login's token");
    // A clone of the generated client (another task, say) shares the token.
    let mut clone = client.clone();
    let me = clone.who_am_i(WhoAmIRequest {}).await.unwrap().into_inner();
    assert_eq!(
        (me.sub.as_str(), me.sid.as_str()),
        ("alice", reply.sid.as_str())
    );
    assert_eq!(
        token.get(),
        Some(first.clone()),
        "nothing renewed before exp"
    );

    // Past exp: the layer renews and the client layer takes the new token.
    clock.advance(Duration::from_secs(16 * 60));
    let me = client
        .who_am_i(WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.sid, reply.sid);
    let renewed = token.get().unwrap();
    assert_ne!(renewed, first);
    let me = clone.who_am_i(WhoAmIRequest {}).await.unwrap().into_inner();
    assert_eq!(me.sub, "alice", "the clone sends the renewed token");
    assert_eq!(token.get(), Some(renewed), "no second renewal");

    // A forged token gets no session: unauthenticated, never an internal error.
    let (mut other, other_token) = connect(url).await.unwrap();
    let forged = format!("{}x", first.trim_start_matches("Bearer "));
    other_token.set(&forged).unwrap();
    assert_eq!(
        other.who_am_i(WhoAmIRequest {}).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}
