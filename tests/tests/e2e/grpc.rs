//! The tonic example: bearer tokens in gRPC metadata, renewal, and refusal, through the
//! generated client and the client-side `BearerLayer`.

use std::sync::Arc;
use std::time::Duration;

use jwe_session_core::{Key, KeyRing, ManualClock, Revocation, RevocationStore, UnixTime};
use jwe_session_demo::grpc::{
    connect_with, layer, server, LoginRequest, WatchRequest, WhoAmIRequest,
};
use tokio::net::TcpListener;
use tonic::Code;

async fn serve(clock: ManualClock) -> (String, tokio::sync::oneshot::Sender<()>) {
    let (url, stop, _) = serve_with_store(clock).await;
    (url, stop)
}

/// The service, and its revocation store (to revoke from outside, as another instance or
/// the CLI would through a shared store).
async fn serve_with_store(
    clock: ManualClock,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    Arc<dyn RevocationStore>,
) {
    let key = Key::from_bytes("g1", &[0x9c; 32]).unwrap();
    let ring = KeyRing::new(vec![key], None).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let layer = layer(ring, Arc::new(clock), &url).unwrap();
    let store = Arc::clone(layer.revocation_store());
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
    (url, stop, store)
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
    let (mut client, token) = connect_with(url.clone(), Arc::new(clock.clone()))
        .await
        .unwrap();

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
    let (mut other, other_token) = connect_with(url, Arc::new(clock.clone())).await.unwrap();
    let forged = format!("{first}x");
    other_token.set(&forged).unwrap();
    assert_eq!(
        other.who_am_i(WhoAmIRequest {}).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

/// The example's sessions are bound to the client's key (DPoP in metadata): the token
/// alone, taken from one client and put in another with its own key, or sent as a plain
/// bearer token, is refused; the client that holds the key goes on.
#[tokio::test]
async fn a_stolen_grpc_token_is_worthless() {
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let (url, _stop) = serve(clock.clone()).await;
    let (mut client, token) = connect_with(url.clone(), Arc::new(clock.clone()))
        .await
        .unwrap();
    client.login(login("alice", "demo")).await.unwrap();
    let stolen = token.get().unwrap();

    let (mut thief, thief_token) = connect_with(url.clone(), Arc::new(clock.clone()))
        .await
        .unwrap();
    thief_token.set(&stolen).unwrap();
    let err = thief.who_am_i(WhoAmIRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");

    // As a plain bearer token, without any proof: refused too (no downgrade).
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let cell = jwe_session::client::TokenCell::new();
    cell.set(&stolen).unwrap();
    let channel = tower::ServiceBuilder::new()
        .layer(jwe_session::client::BearerLayer::new(cell))
        .service(channel);
    let mut plain = jwe_session_demo::grpc::pb::greeter_client::GreeterClient::new(channel);
    let err = plain.who_am_i(WhoAmIRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");

    let me = client
        .who_am_i(WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.sub, "alice");
}

/// `Watch`, a server-streaming call: whose session it is, then nothing until the session
/// is revoked mid-stream, when the stream ends with `UNAUTHENTICATED`. Without a session
/// the call is refused at once.
#[tokio::test]
async fn a_stream_ends_unauthenticated_when_its_session_is_revoked() {
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let (url, _stop, store) = serve_with_store(clock.clone()).await;
    let (mut client, _token) = connect_with(url, Arc::new(clock.clone())).await.unwrap();
    let err = client.watch(WatchRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let sid = client
        .login(login("alice", "demo"))
        .await
        .unwrap()
        .into_inner()
        .sid;
    let mut stream = client.watch(WatchRequest {}).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(
        (first.sub.as_str(), first.sid.as_str()),
        ("alice", sid.as_str())
    );
    // Open and quiet while the session stands.
    let quiet = tokio::time::timeout(Duration::from_millis(200), stream.message()).await;
    assert!(quiet.is_err(), "the stream ended early: {quiet:?}");
    // Another party revokes the session (a logout elsewhere, the CLI): the stream ends.
    let logout = Revocation::Session {
        sid,
        until: UnixTime::from_secs(1_800_100_000),
    };
    store
        .revoke(logout, UnixTime::from_secs(1_800_000_000))
        .await
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(1), stream.message())
        .await
        .expect("the stream did not end within 1 s");
    let status = ended.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "session revoked");
    // And a new call with the revoked token is refused.
    let err = client.watch(WatchRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}
