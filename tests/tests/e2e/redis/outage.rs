//! The layer's policy during an outage, and two demo servers.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_on_one_instance_is_refused_on_another() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut t = two_demos(&server).await;
    let mut on_b = Client::new(t.b.url());
    on_b.jar.insert("__Host-session".into(), t.cookie.clone());
    assert_eq!(
        on_b.get("/me").await.status,
        200,
        "one key ring: B opens A's cookie"
    );
    assert_ne!(t.a.url(), t.b.url());
    assert_eq!(t.on_a.post_form("/logout", &[]).await.status, 303);
    // B learns of the logout through Redis: the same cookie is refused there within the
    // propagation bound, though it has not expired.
    t.wait_refused_on_b(secs(2), "logged out on A").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_during_an_outage_follows_the_policy() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let ring = KeyRingHandle::new(KeyRing::generate());
    let clock = ManualClock::new(UnixTime::from_secs(T0));
    let closed = demo_on(store_on(&server, &clock).await, &ring, &clock, false).await;
    // Fail-open renews from the mirror, so the mirror keeps every logout as long as a
    // token issued before it can be renewed (the layer refuses a shorter window).
    let renewable = jwe_session_core::Lifetimes::default();
    let keep_all = RedisStore::builder(server.url())
        .timeout(Duration::from_millis(300))
        .max_backoff(Duration::from_millis(200))
        .mirror_window(renewable.mirror_window(true, Duration::ZERO))
        .clock(Arc::new(clock.clone()))
        .connect()
        .await
        .unwrap();
    let open = demo_on(keep_all, &ring, &clock, true).await;
    let mut c_closed = Client::new(closed.url());
    c_closed.login("alice").await;
    let mut c_open = Client::new(open.url());
    c_open.login("bob").await;

    server.kill();
    // Before exp nothing needs Redis: both still work.
    assert_eq!(c_closed.get("/me").await.status, 200);
    assert_eq!(c_open.get("/me").await.status, 200);

    clock.advance(secs(16 * 60));
    // Fail closed (default): no renewal, no session; the cookie is kept for later.
    let r = c_closed.get("/me").await;
    assert_eq!(r.status, 401);
    assert!(
        r.set_cookies.is_empty(),
        "cookie kept while Redis is down: {:?}",
        r.set_cookies
    );
    // Fail open: renewed from the mirror.
    let r = c_open.get("/me").await;
    assert_eq!(r.status, 200);
    assert!(r.set_cookie("__Host-session").is_some());

    // Redis back: the fail-closed instance renews again.
    server.restart();
    let deadline = Instant::now() + secs(10);
    loop {
        let r = c_closed.get("/me").await;
        if r.status == 200 {
            assert!(r.set_cookie("__Host-session").is_some());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no renewal after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
