//! The Redis store against a real `redis-server`: expiry on every key, propagation between
//! instances, loading at start-up, an outage and recovery, and two demo servers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jwe_session_core::{
    KeyRing, KeyRingHandle, ManualClock, Revocation, RevocationStore, Revoked, SessionIds,
    StoreError, UnixTime,
};
use jwe_session_examples::demo::{app, DemoOptions};
use jwe_session_redis::RedisStore;
use jwe_session_tests::{Client, RedisServer, Server};
use redis::AsyncCommands;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ids(sid: &str) -> SessionIds<'_> {
    SessionIds {
        sid: Some(sid),
        sub: Some("u"),
        started: Some(UnixTime::now().saturating_sub(secs(10)).into()),
    }
}

async fn store(server: &RedisServer) -> RedisStore {
    RedisStore::builder(server.url())
        .timeout(Duration::from_millis(300))
        .max_backoff(Duration::from_millis(200))
        .connect()
        .await
        .unwrap()
}

/// Waits (bounded) until `cond` holds, waking on every change of the store's mirror.
async fn wait_for(store: &RedisStore, within: Duration, cond: impl Fn() -> bool) -> bool {
    let mut updates = store.updates();
    let deadline = tokio::time::Instant::now() + within;
    while !cond() {
        if tokio::time::timeout_at(deadline, updates.changed())
            .await
            .is_err()
        {
            return cond();
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_expires() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let s = store(&server).await;
    let now = UnixTime::now();
    let revs = [
        Revocation::Session {
            sid: "s1".into(),
            until: now.saturating_add(secs(900)),
        },
        Revocation::Subject {
            sub: "alice".into(),
            at: now.into(),
            until: now.saturating_add(secs(7 * 86_400)),
        },
        Revocation::All {
            at: now.into(),
            until: now.saturating_add(secs(3_600)),
        },
    ];
    for r in &revs {
        s.revoke_at(r.clone(), now).await.unwrap();
    }
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = conn.keys("jwe-session:*").await.unwrap();
    assert_eq!(keys.len(), 3, "{keys:?}");
    for r in &revs {
        let key = s.key_for(r);
        let ttl: i64 = conn.ttl(&key).await.unwrap();
        let expected = r.until().as_secs() as i64 - now.as_secs() as i64;
        assert!(
            ttl > 0 && ttl <= expected && ttl >= expected - 5,
            "{key}: TTL {ttl}, expected ~{expected}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_propagate_between_instances() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = store(&server).await;
    let b = store(&server).await;
    let mut times = Vec::with_capacity(100);
    for i in 0..100 {
        let sid = format!("p{i}");
        let now = UnixTime::now();
        assert_eq!(b.check_at(ids(&sid), now), Ok(()));
        let t0 = Instant::now();
        a.revoke_at(
            Revocation::Session {
                sid: sid.clone(),
                until: now.saturating_add(secs(600)),
            },
            now,
        )
        .await
        .unwrap();
        let seen = wait_for(&b, secs(2), || b.check_at(ids(&sid), now).is_err()).await;
        assert!(seen, "revocation {i} did not reach instance B within 2 s");
        times.push(t0.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    let max = times[times.len() - 1];
    println!(
        "propagation A→B over {} revocations (revoke call start to B's mirror): median {:?}, p90 {:?}, max {:?}",
        times.len(),
        median,
        times[times.len() * 9 / 10],
        max
    );
    assert!(max < secs(1), "max propagation {max:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_started_later_loads_earlier_revocations() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = store(&server).await;
    let now = UnixTime::now();
    a.revoke_at(
        Revocation::Session {
            sid: "early".into(),
            until: now.saturating_add(secs(600)),
        },
        now,
    )
    .await
    .unwrap();
    a.revoke_at(
        Revocation::Subject {
            sub: "u".into(),
            at: now.into(),
            until: now.saturating_add(secs(600)),
        },
        now,
    )
    .await
    .unwrap();
    let late = store(&server).await;
    assert_eq!(late.check_at(ids("early"), now), Err(Revoked::Session));
    assert!(matches!(
        late.check_at(ids("other"), now),
        Err(Revoked::Subject { .. })
    ));
    // Another app's prefix sees none of it.
    let other = RedisStore::builder(server.url())
        .prefix("other-app:")
        .connect()
        .await
        .unwrap();
    assert_eq!(other.check_at(ids("early"), now), Ok(()));
    assert!(other.mirror().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_mirror_serves_revoke_errors_and_recovery_reloads() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let a = store(&server).await;
    let now = UnixTime::now();
    let until = now.saturating_add(secs(600));
    a.revoke_at(
        Revocation::Session {
            sid: "before-outage".into(),
            until,
        },
        now,
    )
    .await
    .unwrap();

    server.kill();
    assert!(
        wait_for(&a, secs(5), || !a.is_connected()).await,
        "mirror noticed the outage"
    );
    // Checks keep answering from memory.
    assert_eq!(a.check_at(ids("before-outage"), now), Err(Revoked::Session));
    assert_eq!(a.check_at(ids("fine"), now), Ok(()));
    // Revoking fails loudly and promptly, but this instance still honours it.
    let t0 = Instant::now();
    let err = a
        .revoke_at(
            Revocation::Session {
                sid: "during".into(),
                until,
            },
            now,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Unavailable { .. } | StoreError::Timeout { .. }
        ),
        "{err:?}"
    );
    assert!(t0.elapsed() < secs(2), "revoke took {:?}", t0.elapsed());
    assert_eq!(a.check_at(ids("during"), now), Err(Revoked::Session));
    // The authoritative check (renewal) fails, within the timeout.
    let t0 = Instant::now();
    assert!(a.check_authoritative_at(ids("fine"), now).await.is_err());
    assert!(t0.elapsed() < secs(2), "check took {:?}", t0.elapsed());

    // Redis comes back (empty: persistence is off). Another instance revokes a session
    // straight away; A picks it up, by its reload or by pub/sub.
    server.restart();
    let b = store(&server).await;
    b.revoke_at(
        Revocation::Session {
            sid: "missed".into(),
            until,
        },
        now,
    )
    .await
    .unwrap();
    assert!(
        wait_for(&a, secs(10), || a.is_connected()).await,
        "mirror reconnected"
    );
    assert!(wait_for(&a, secs(5), || a.check_at(ids("missed"), now).is_err()).await);
    // What A knew before the outage it still knows.
    assert_eq!(a.check_at(ids("before-outage"), now), Err(Revoked::Session));
    // And revoking works again.
    a.revoke_at(
        Revocation::Session {
            sid: "after".into(),
            until,
        },
        now,
    )
    .await
    .unwrap();
    assert!(wait_for(&b, secs(2), || b.check_at(ids("after"), now).is_err()).await);
}

/// A key written behind the mirror's back (no event) is found by the reload after a
/// reconnect: the path that covers events lost while disconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_after_reconnect_finds_keys_without_events() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let a = store(&server).await;
    let now = UnixTime::now();
    server.kill();
    assert!(wait_for(&a, secs(5), || !a.is_connected()).await);
    server.restart();
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("jwe-session:sid:silent")
        .arg(1)
        .arg("EXAT")
        .arg(now.as_secs() + 600)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(wait_for(&a, secs(10), || a.is_connected()).await);
    assert_eq!(a.check_at(ids("silent"), now), Err(Revoked::Session));
}

// ---- the layer's policy during an outage, and two demo servers -------------------------

const T0: u64 = 1_800_000_000;

async fn demo_on(
    store: RedisStore,
    ring: &KeyRingHandle,
    clock: &ManualClock,
    fail_open: bool,
) -> Server {
    let mut opts = DemoOptions::new(ring.clone());
    opts.clock = Arc::new(clock.clone());
    opts.store = Some(Arc::new(store));
    let router = if fail_open {
        let layer = jwe_session_examples::demo::layer_builder(opts)
            .dangerous()
            .fail_open_on_store_error()
            .done();
        jwe_session_examples::demo::router(layer.build().unwrap())
    } else {
        app(opts).unwrap()
    };
    Server::start(router).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_on_one_instance_is_refused_on_another() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let ring = KeyRingHandle::new(KeyRing::generate());
    let clock = ManualClock::new(UnixTime::from_secs(T0));
    let store_b = store(&server).await;
    let a = demo_on(store(&server).await, &ring, &clock, false).await;
    let b = demo_on(store_b.clone(), &ring, &clock, false).await;

    let mut on_a = Client::new(a.url());
    on_a.login("alice").await;
    let cookie = on_a.jar["session"].clone();
    let mut on_b = Client::new(b.url());
    on_b.jar.insert("session".into(), cookie.clone());
    assert_eq!(
        on_b.get("/me").await.status,
        200,
        "one key ring: B opens A's cookie"
    );

    assert_eq!(on_a.post_form("/logout", &[]).await.status, 303);
    // B learns of the logout through Redis: the same cookie is refused there within the
    // propagation bound, though it has not expired.
    let mut replay = Client::new(b.url());
    let deadline = Instant::now() + secs(2);
    loop {
        replay.jar.insert("session".into(), cookie.clone());
        let r = replay.get("/me").await;
        if r.status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B still accepts the logged-out cookie"
        );
        let mut u = store_b.updates();
        let _ = tokio::time::timeout(Duration::from_millis(100), u.changed()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_during_an_outage_follows_the_policy() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let ring = KeyRingHandle::new(KeyRing::generate());
    let clock = ManualClock::new(UnixTime::from_secs(T0));
    let closed = demo_on(store(&server).await, &ring, &clock, false).await;
    let open = demo_on(store(&server).await, &ring, &clock, true).await;
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
    assert!(r.set_cookie("session").is_some());

    // Redis back: the fail-closed instance renews again.
    server.restart();
    let deadline = Instant::now() + secs(10);
    loop {
        let r = c_closed.get("/me").await;
        if r.status == 200 {
            assert!(r.set_cookie("session").is_some());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no renewal after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
