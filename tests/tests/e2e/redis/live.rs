//! Live revocation and claims refresh, two demo servers on one Redis.

use super::*;

/// Two demo servers on one key ring, one Redis (revocations and the role table).
async fn two_live_demos(server: &RedisServer) -> (Server, Server, RedisStore, ManualClock) {
    let ring = KeyRingHandle::new(KeyRing::generate());
    let clock = ManualClock::new(UnixTime::from_secs(T0));
    let roles = RoleTable::redis(&server.url()).await.unwrap();
    let store_b = store_on(server, &clock).await;
    let mut servers = Vec::new();
    for s in [store_on(server, &clock).await, store_b.clone()] {
        let mut opts = DemoOptions::new(ring.clone());
        opts.clock = Arc::new(clock.clone());
        opts.store = Some(Arc::new(s));
        opts.roles = roles.clone();
        servers.push(Server::start(app(opts).unwrap()).await);
    }
    let b = servers.pop().unwrap();
    (servers.pop().unwrap(), b, store_b, clock)
}

fn revoked() -> WsEnd {
    WsEnd::Closed(4401, "session revoked".into())
}

/// `GET /ws` over real sockets: 401 before the upgrade without a session; the user's
/// `sub` first; closed with 4401 within a second when the session is revoked on this or
/// the other instance (logout, logout everywhere), and only then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_closes_when_its_session_is_revoked_on_either_instance() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (a, b, _, clock) = two_live_demos(&server).await;
    let nobody = std::collections::BTreeMap::new();
    assert_eq!(WsClient::connect(&b.url(), &nobody).await.err(), Some(401));
    let mut garbage = nobody.clone();
    garbage.insert("__Host-session".into(), "not-a-token".into());
    assert_eq!(WsClient::connect(&a.url(), &garbage).await.err(), Some(401));

    // Logout on A: the sockets on A and on B close.
    let mut alice = Client::new(a.url());
    alice.login("alice").await;
    let mut on_a = WsClient::connect(&a.url(), &alice.jar).await.unwrap();
    let mut on_b = WsClient::connect(&b.url(), &alice.jar).await.unwrap();
    for ws in [&mut on_a, &mut on_b] {
        assert_eq!(ws.text(secs(1)).await.as_deref(), Some("alice"));
    }
    let mut bob = Client::new(a.url());
    bob.login("bob").await;
    let mut bobs = WsClient::connect(&b.url(), &bob.jar).await.unwrap();
    assert_eq!(bobs.text(secs(1)).await.as_deref(), Some("bob"));
    let t0 = Instant::now();
    assert_eq!(alice.post_form("/logout", &[]).await.status, 303);
    assert_eq!(on_a.end(secs(1)).await, revoked(), "same instance");
    assert_eq!(on_b.end(secs(1)).await, revoked(), "other instance");
    println!(
        "logout on A closed the sockets on A and B in {:?}",
        t0.elapsed()
    );

    // Logout everywhere from a laptop on B: alice's phone socket on A closes.
    let mut phone = Client::new(a.url());
    phone.login("alice").await;
    let mut phone_ws = WsClient::connect(&a.url(), &phone.jar).await.unwrap();
    phone_ws.text(secs(1)).await.unwrap();
    let mut laptop = Client::new(b.url());
    laptop.login("alice").await;
    // The two instances share a frozen test clock, and each orders its own moments only:
    // a second passes, as it does between a login and a logout on real clocks.
    clock.advance(secs(1));
    let t0 = Instant::now();
    assert_eq!(
        laptop.post_form("/logout-everywhere", &[]).await.status,
        303
    );
    assert_eq!(phone_ws.end(secs(1)).await, revoked());
    println!(
        "logout everywhere on B closed alice's socket on A in {:?}",
        t0.elapsed()
    );
    // Bob's socket heard nothing of it.
    assert_eq!(bobs.end(Duration::from_millis(300)).await, WsEnd::StillOpen);
}

/// `POST /roles` on A (by the admin): alice's next request on B is
/// renewed before its `exp` with the new roles, and the one after that is not renewed
/// again. Bad forms get 400 and change nothing; without a session, 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_change_reaches_the_users_next_request_on_another_instance() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (a, b, store_b, _) = two_live_demos(&server).await;
    let mut alice = Client::new(b.url());
    alice.login("alice").await;
    let me = alice.get("/me").await;
    assert_eq!(me.status, 200);
    assert!(me.set_cookies.is_empty(), "a fresh token is not renewed");
    let claims: serde_json::Value = serde_json::from_str(&me.body).unwrap();
    assert_eq!(claims["roles"], serde_json::json!(["user"]));

    let mut bob = Client::new(a.url());
    let form = [("username", "alice"), ("roles", "editor, reviewer")];
    assert_eq!(bob.post_form("/roles", &form).await.status, 401);
    bob.login("bob").await;
    assert_eq!(
        bob.post_form("/roles", &form).await.status,
        403,
        "not an admin"
    );
    let mut admin = Client::new(a.url());
    admin.login("admin").await;
    for bad in [
        [("username", "alice"), ("roles", "<script>")],
        [("username", " "), ("roles", "editor")],
    ] {
        assert_eq!(admin.post_form("/roles", &bad).await.status, 400, "{bad:?}");
    }
    assert_eq!(admin.post_form("/roles", &form).await.status, 303);

    // B learns of the refresh through Redis (within the propagation bound).
    let deadline = Instant::now() + secs(2);
    let renewed = loop {
        let me = alice.get("/me").await;
        assert_eq!(me.status, 200);
        let claims: serde_json::Value = serde_json::from_str(&me.body).unwrap();
        if claims["roles"] == serde_json::json!(["editor", "reviewer"]) {
            break me;
        }
        assert!(me.set_cookies.is_empty(), "renewed without the new roles");
        assert!(
            Instant::now() < deadline,
            "B did not refresh alice's claims"
        );
        let mut u = store_b.updates();
        let _ = tokio::time::timeout(Duration::from_millis(100), u.changed()).await;
    };
    assert_eq!(renewed.set_cookies.len(), 1, "a renewed cookie");
    let again = alice.get("/me").await;
    assert!(again.set_cookies.is_empty(), "not renewed a second time");
    assert!(again.body.contains("editor"));
    // Bob's own session was not touched.
    let bobs = bob.get("/me").await;
    assert!(bobs.set_cookies.is_empty());
    assert!(bobs.body.contains(r#""roles":["user"]"#), "{}", bobs.body);
}
