//! The store on its own: expiry on every key, propagation between instances, loading at
//! start-up.

use super::*;

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
        s.revoke(r.clone(), now).await.unwrap();
    }
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys: Vec<String> = conn.keys("{jwe-session:}*").await.unwrap();
    keys.sort();
    // Three point keys, and the layout's own: the log, the cut-off index, the window and
    // the epoch marker.
    assert_eq!(
        keys,
        [
            "{jwe-session:}all",
            "{jwe-session:}cutoffs",
            "{jwe-session:}epoch",
            "{jwe-session:}log",
            "{jwe-session:}sid:s1",
            "{jwe-session:}sub:alice",
            "{jwe-session:}window"
        ]
    );
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
        assert_eq!(b.check(ids(&sid), now), None);
        let t0 = Instant::now();
        a.revoke(
            Revocation::Session {
                sid: sid.clone(),
                until: now.saturating_add(secs(600)),
            },
            now,
        )
        .await
        .unwrap();
        let seen = wait_for(&b, secs(2), || b.check(ids(&sid), now).is_some()).await;
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
    a.revoke(
        Revocation::Session {
            sid: "early".into(),
            until: now.saturating_add(secs(600)),
        },
        now,
    )
    .await
    .unwrap();
    a.revoke(
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
    assert_eq!(late.check(ids("early"), now), Some(Revoked::Session));
    assert!(matches!(
        late.check(ids("other"), now),
        Some(Revoked::Subject { .. })
    ));
    // Another app's prefix sees none of it.
    let other = RedisStore::builder(server.url())
        .prefix("other-app:")
        .connect()
        .await
        .unwrap();
    assert_eq!(other.check(ids("early"), now), None);
    assert_eq!(other.mirrored(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_mirror_serves_revoke_queues_and_recovery_catches_up() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let a = store(&server).await;
    let now = UnixTime::now();
    let until = now.saturating_add(secs(600));
    a.revoke(
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
    assert_eq!(a.check(ids("before-outage"), now), Some(Revoked::Session));
    assert_eq!(a.check(ids("fine"), now), None);
    // Revoking says so promptly (queued here), and this instance honours it at once.
    let t0 = Instant::now();
    let recorded = a
        .revoke(
            Revocation::Session {
                sid: "during".into(),
                until,
            },
            now,
        )
        .await
        .unwrap();
    assert!(
        matches!(recorded, Recorded::Queued { durable: false, .. }),
        "{recorded:?}"
    );
    assert!(t0.elapsed() < secs(2), "revoke took {:?}", t0.elapsed());
    assert_eq!(a.queued(), 1);
    assert_eq!(a.check(ids("during"), now), Some(Revoked::Session));
    // The authoritative check (renewal) fails, within the timeout.
    let t0 = Instant::now();
    assert!(a.check_authoritative(ids("fine"), now).await.is_err());
    assert!(t0.elapsed() < secs(2), "check took {:?}", t0.elapsed());

    // Redis comes back (empty: persistence is off). Another instance revokes a session
    // straight away; A picks it up from the log once it reconnects.
    server.restart();
    let b = store(&server).await;
    b.revoke(
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
    assert!(wait_for(&a, secs(5), || a.check(ids("missed"), now).is_some()).await);
    // What A queued during the outage reached Redis, and B, on its own.
    assert!(
        wait_for(&b, secs(5), || b.check(ids("during"), now).is_some()).await,
        "A's queued revocation did not reach B"
    );
    assert!(wait_for(&a, secs(5), || a.queued() == 0).await);
    // What A knew before the outage it still knows.
    assert_eq!(a.check(ids("before-outage"), now), Some(Revoked::Session));
    // And revoking works again.
    a.revoke(
        Revocation::Session {
            sid: "after".into(),
            until,
        },
        now,
    )
    .await
    .unwrap();
    assert!(wait_for(&b, secs(2), || b.check(ids("after"), now).is_some()).await);
}
