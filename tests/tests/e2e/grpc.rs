//! The tonic example: bearer tokens in gRPC metadata, renewal, and refusal.

use std::sync::Arc;
use std::time::Duration;

use jwe_session_core::{Key, KeyRing, ManualClock, UnixTime};
use jwe_session_examples::grpc::{layer, GreeterClient, GreeterServer};
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
            .add_service(GreeterServer)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (url, stop)
}

#[tokio::test]
async fn grpc_login_call_renew_and_refuse() {
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let (url, _stop) = serve(clock.clone()).await;
    let mut client = GreeterClient::connect(url.clone()).await.unwrap();

    let err = client.who_am_i().await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = client.login("alice", "wrong").await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(client.token().is_none());

    let reply = client.login("alice", "demo").await.unwrap();
    let first = client.token().unwrap().to_owned();
    let me = client.who_am_i().await.unwrap();
    assert_eq!(
        (me.sub.as_str(), me.sid.as_str()),
        ("alice", reply.sid.as_str())
    );
    assert_eq!(
        client.token(),
        Some(first.as_str()),
        "nothing renewed before exp"
    );

    // Past exp: the layer renews and the new token arrives in response metadata.
    clock.advance(Duration::from_secs(16 * 60));
    let me = client.who_am_i().await.unwrap();
    assert_eq!(me.sid, reply.sid);
    assert_ne!(client.token(), Some(first.as_str()));

    // A forged token gets no session: unauthenticated, never an internal error.
    let mut other = GreeterClient::connect(url).await.unwrap();
    other.set_token(Some(format!("{first}x")));
    assert_eq!(
        other.who_am_i().await.unwrap_err().code(),
        Code::Unauthenticated
    );
}
