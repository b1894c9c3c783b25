//! Scale and faults (issue 12): many revocations, Redis restarted, flushed, or back with
//! older data, eviction, bad entries.

use super::*;

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn session(sid: &str, until: UnixTime) -> Revocation {
    Revocation::Session {
        sid: sid.into(),
        until,
    }
}

/// `a` revokes `sid`; `b` refuses it from its mirror (within 2 s, through the log) and at
/// renewal (its point key).
async fn revoked_on_both(a: &RedisStore, b: &RedisStore, sid: &str) {
    let now = UnixTime::now();
    a.revoke(session(sid, now.saturating_add(secs(600))), now)
        .await
        .unwrap();
    assert!(
        wait_for(b, secs(2), || b.check(ids(sid), now).is_some()).await,
        "{sid} did not reach B"
    );
    assert_eq!(
        b.check_authoritative(ids(sid), now).await.unwrap(),
        Some(Revoked::Session)
    );
}

/// Item 1: Redis's "not revoked" never overrides what this instance knows. The point key
/// is deleted behind the store's back (as a lossy failover would); the authoritative check,
/// which renewal runs, still refuses the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_forgetting_never_overrides_what_an_instance_knows() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = store(&server).await;
    let now = UnixTime::now();
    let r = session("gone", now.saturating_add(secs(600)));
    a.revoke(r.clone(), now).await.unwrap();
    let mut conn = redis_conn(&server.url()).await;
    let _: () = conn.del(a.key_for(&r)).await.unwrap();
    assert_eq!(
        a.check_authoritative(ids("gone"), now).await.unwrap(),
        Some(Revoked::Session)
    );
    assert_eq!(a.check_authoritative(ids("fine"), now).await.unwrap(), None);
}

/// Item 3: a Redis restarted without persistence comes back empty. The instance that
/// knew the revocations notices (the epoch marker is gone), writes them back, and an
/// instance started afterwards refuses them — from its mirror and at renewal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_lost_its_data_is_repaired() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let a = store(&server).await;
    let now = UnixTime::now();
    let until = now.saturating_add(secs(600));
    a.revoke(session("stolen", until), now).await.unwrap();
    a.revoke(
        Revocation::Subject {
            sub: "mallory".into(),
            at: now.into(),
            until,
        },
        now,
    )
    .await
    .unwrap();
    server.restart();
    assert!(
        wait_for(&a, secs(10), || a.repairs() == 1
            && a.queued() == 0
            && a.is_connected())
        .await,
        "A did not repair Redis: repairs {}, queued {}",
        a.repairs(),
        a.queued()
    );
    let late = store(&server).await;
    assert_eq!(late.check(ids("stolen"), now), Some(Revoked::Session));
    let mallory = SessionIds {
        sid: Some("m1"),
        sub: Some("mallory"),
        started: Some(now.into()),
        issued: None,
    };
    assert!(matches!(
        late.check(mallory, now),
        Some(Revoked::Subject { .. })
    ));
    assert_eq!(
        late.check_authoritative(ids("stolen"), now).await.unwrap(),
        Some(Revoked::Session)
    );
}

/// Issue 25, item 1: Redis comes back with older data (restarted from a snapshot taken
/// before a logout, as after an AOF `everysec` power cut or a failover to a lagging
/// replica). The epoch marker survives, so only the log's position tells: the instance
/// that saw newer entries writes back what it knows, and an instance started afterwards
/// refuses the logged-out session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restored_from_an_older_snapshot_is_repaired() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let a = store(&server).await;
    let mut conn = redis_conn(&server.url()).await;
    let _: () = redis::cmd("SAVE").query_async(&mut conn).await.unwrap();
    let now = UnixTime::now();
    a.revoke(
        session("after-snapshot", now.saturating_add(secs(600))),
        now,
    )
    .await
    .unwrap();
    drop(conn);
    server.kill(); // SHUTDOWN NOSAVE: the logout is lost, the snapshot stays
    server.restart();
    let mut conn = redis_conn(&server.url()).await;
    let epoch: Option<String> = conn.get("{jwe-session:}epoch").await.unwrap();
    assert!(epoch.is_some(), "the snapshot holds the epoch marker");
    assert!(
        wait_for(&a, secs(10), || a.repairs() == 1
            && a.queued() == 0
            && a.is_connected())
        .await,
        "A did not notice that Redis went back in time: repairs {}, queued {}",
        a.repairs(),
        a.queued()
    );
    let b = store(&server).await;
    assert_eq!(b.check(ids("after-snapshot"), now), Some(Revoked::Session));
    assert_eq!(
        b.check_authoritative(ids("after-snapshot"), now)
            .await
            .unwrap(),
        Some(Revoked::Session)
    );
}

/// Issue 25, item 2: the write-back after Redis lost everything keeps each revocation's
/// real expiry. The incident tool (a writer without a mirror) revokes a session for a
/// week; the instance that learned it from the log holds it for its window only, yet
/// writes it back for the week.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_back_keeps_the_real_expiry() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = store(&server).await;
    let writer = RedisStore::builder(server.url())
        .connect_writer()
        .await
        .unwrap();
    let now = UnixTime::now();
    let week = now.saturating_add(secs(7 * 86_400));
    let r = session("leaked", week);
    writer.revoke_batch(std::slice::from_ref(&r)).await.unwrap();
    assert!(wait_for(&a, secs(5), || a.check(ids("leaked"), now).is_some()).await);
    let mut conn = redis_conn(&server.url()).await;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
    assert!(
        wait_for(&a, secs(10), || a.repairs() == 1 && a.queued() == 0).await,
        "A did not repair Redis"
    );
    let exat: i64 = redis::cmd("EXPIRETIME")
        .arg(a.key_for(&r))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        exat,
        i64::try_from(week.as_secs()).unwrap(),
        "written back with its real expiry, not the mirror's window"
    );
}

/// Issue 25, item 6: a writer whose clock is behind cannot shorten a revocation. Readers
/// keep a session revocation for their window from when Redis took it (the log entry's
/// id, stamped by Redis), whatever `made` the writer put in the entry; and this version's
/// writer puts Redis's own time there, for readers of earlier versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_writer_cannot_shorten_a_revocation() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let before = store(&server).await;
    let mut conn = redis_conn(&server.url()).await;
    let now = UnixTime::now();
    let until = now.saturating_add(secs(3600));
    // The entry a writer 1000 s behind (of this version or an earlier one) leaves.
    let r = session("skewed", until);
    let _: () = redis::cmd("SET")
        .arg(before.key_for(&r))
        .arg(1)
        .arg("EXAT")
        .arg(until.as_secs())
        .query_async(&mut conn)
        .await
        .unwrap();
    let skewed = format!("s {until} {} skewed", now.saturating_sub(secs(1000)));
    let _: String = conn
        .xadd("{jwe-session:}log", "*", &[("r", skewed.as_str())])
        .await
        .unwrap();
    assert!(
        wait_for(&before, secs(5), || before
            .check(ids("skewed"), now)
            .is_some())
        .await,
        "an instance following the log dropped a revocation stamped by a slow clock"
    );
    let after = store(&server).await;
    assert_eq!(
        after.check(ids("skewed"), now),
        Some(Revoked::Session),
        "an instance started afterwards dropped it"
    );
    let writer = RedisStore::builder(server.url())
        .connect_writer()
        .await
        .unwrap();
    writer
        .revoke_batch(&[session("stamped", until)])
        .await
        .unwrap();
    let last: redis::streams::StreamRangeReply = conn
        .xrevrange_count("{jwe-session:}log", "+", "-", 1)
        .await
        .unwrap();
    let entry = &last.ids[0];
    let value: String = entry.get("r").unwrap();
    let made: u64 = value.split(' ').nth(2).unwrap().parse().unwrap();
    let (redis_now, _): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    assert!(
        redis_now.abs_diff(made) <= 5,
        "made {made} is not Redis's time {redis_now}: {value}"
    );
}

/// Issue 25, item 7: one entry out of range (written by anyone with write access to
/// Redis) is refused on reading, and never holds back the real revocations written back
/// with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_range_entry_never_stalls_the_write_back() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = store(&server).await;
    let mut conn = redis_conn(&server.url()).await;
    let forever = format!("a 1 {}", u64::MAX - 1);
    let _: String = conn
        .xadd("{jwe-session:}log", "*", &[("r", forever.as_str())])
        .await
        .unwrap();
    let now = UnixTime::now();
    for sid in ["real", "clobbered"] {
        a.revoke(session(sid, now.saturating_add(secs(600))), now)
            .await
            .unwrap();
    }
    assert!(wait_for(&a, secs(5), || a.check(ids("real"), now).is_some()).await);
    // Redis loses everything, and one point key comes back as another type: the script
    // fails on it, and only on it.
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
    let _: () = conn
        .rpush("{jwe-session:}sid:clobbered", "x")
        .await
        .unwrap();
    assert!(
        wait_for(&a, secs(10), || a.repairs() == 1 && a.queued() == 0).await,
        "the write-back stalled: repairs {}, queued {}",
        a.repairs(),
        a.queued()
    );
    let late = store(&server).await;
    assert_eq!(late.check(ids("real"), now), Some(Revoked::Session));
}

/// After a Redis restart, the first authoritative check must not fail on the connection
/// the restart broke: a fail-closed 401 for a valid user otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_check_after_a_redis_restart_answers() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let a = store(&server).await;
    let now = UnixTime::now();
    assert_eq!(a.check_authoritative(ids("x"), now).await.unwrap(), None);
    server.restart();
    assert!(
        wait_for(&a, secs(10), || a.repairs() == 1 && a.is_connected()).await,
        "follower reconnected"
    );
    assert_eq!(
        a.check_authoritative(ids("x"), now).await.unwrap(),
        None,
        "first check after the restart"
    );
}

/// Item 2 with a durable queue: a revocation made while Redis is down survives a restart
/// of the instance that made it, and reaches the others once Redis answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_queue_survives_a_restart_of_the_instance() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let dir = jwe_session_test_support::scratch("redis-queue");
    let path = dir.join("queue.redb");
    let now = UnixTime::now();
    let durable = |server: &RedisServer| {
        RedisStore::builder(server.url())
            .timeout(Duration::from_millis(300))
            .max_backoff(Duration::from_millis(200))
            .queue_in(jwe_session_file::FileStore::open(&path).unwrap())
    };
    {
        let a = durable(&server).connect().await.unwrap();
        server.kill();
        let recorded = a
            .revoke(session("while-down", now.saturating_add(secs(600))), now)
            .await
            .unwrap();
        assert!(
            matches!(recorded, Recorded::Queued { durable: true, .. }),
            "{recorded:?}"
        );
        assert_eq!(a.queued(), 1);
    } // the instance stops before Redis comes back
    server.restart();
    let b = store(&server).await;
    assert_eq!(b.check(ids("while-down"), now), None);
    let a = durable(&server).connect().await.unwrap();
    assert!(
        wait_for(&b, secs(5), || b.check(ids("while-down"), now).is_some()).await,
        "the queued revocation did not reach B after A restarted"
    );
    assert!(wait_for(&a, secs(5), || a.queued() == 0).await);
    drop(a);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Items 4 and 5: start-up reads the cut-offs and the log's window, never the keyspace,
/// and keeps in memory only the session revocations a token could still be unexpired
/// for. 3,000 unrelated keys share the database; revocations made 30 minutes ago (by the
/// writers' clock) stay out of the mirror, yet renewal still refuses them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_loads_only_what_the_hot_path_needs() {
    let Some(server) = RedisServer::start_with(&["--enable-debug-command", "local"]) else {
        return;
    };
    let mut conn = redis_conn(&server.url()).await;
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(3000)
        .arg("cache:")
        .query_async(&mut conn)
        .await
        .unwrap();
    let now = UnixTime::now();
    let old = now.saturating_sub(secs(30 * 60));
    let until = now.saturating_add(secs(86_400));
    // What writers left 30 minutes ago: point keys, and log entries whose ids (Redis's
    // clock) say when.
    for batch in 0..4u64 {
        let mut pipe = redis::pipe();
        let mut fields = Vec::new();
        for i in batch * 500..(batch + 1) * 500 {
            pipe.cmd("SET")
                .arg(format!("{{jwe-session:}}sid:old{i}"))
                .arg(1)
                .arg("EXAT")
                .arg(until.as_secs())
                .ignore();
            fields.push(("r".to_owned(), format!("s {until} {old} old{i}")));
        }
        pipe.xadd(
            "{jwe-session:}log",
            format!("{}-{batch}", old.as_secs() * 1000),
            &fields,
        )
        .ignore();
        let _: () = pipe.query_async(&mut conn).await.unwrap();
    }
    let writer = RedisStore::builder(server.url())
        .connect_writer()
        .await
        .unwrap();
    let cut = Revocation::Subject {
        sub: "u".into(),
        at: old.saturating_sub(secs(3600)).into(),
        until,
    };
    writer.revoke_batch(&[cut]).await.unwrap();
    let fresh: Vec<Revocation> = (0..10)
        .map(|i| session(&format!("new{i}"), until))
        .collect();
    writer.revoke_batch(&fresh).await.unwrap();
    // A repeat changes nothing and writes nothing new to the log.
    assert_eq!(writer.revoke_batch(&fresh).await.unwrap(), 0);

    let late = store(&server).await;
    assert_eq!(
        late.mirrored(),
        11,
        "10 recent sessions and 1 subject cut-off"
    );
    assert_eq!(late.check(ids("new3"), now), Some(Revoked::Session));
    assert_eq!(late.check(ids("old3"), now), None, "outside the window");
    assert_eq!(
        late.check_authoritative(ids("old3"), now).await.unwrap(),
        Some(Revoked::Session),
        "renewal still refuses it"
    );
    let len: usize = conn.xlen("{jwe-session:}log").await.unwrap();
    assert_eq!(
        len, 2,
        "the entries older than the window are trimmed; one per batch that changed something"
    );
}

/// No keyspace scan, no pub/sub, nothing outside the prefix: the store works for the
/// least-privilege ACL user the README documents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_least_privilege_acl_user_is_enough() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut conn = redis_conn(&server.url()).await;
    let rule =
        "on >s3cret resetkeys ~{jwe-session:}* resetchannels -@all +get +set +eval +evalsha \
                +expiretime +exists +type +xadd +xrange +xread +xinfo|stream +zrangebyscore +zadd \
                +zremrangebyscore +time +ping +hello +script|load +config|get";
    let mut cmd = redis::cmd("ACL");
    cmd.arg("SETUSER").arg("jwe");
    for part in rule.split_whitespace() {
        cmd.arg(part);
    }
    let _: () = cmd.query_async(&mut conn).await.unwrap();
    let url = server.url().replace("redis://", "redis://jwe:s3cret@");
    let connect = || {
        RedisStore::builder(url.clone())
            .timeout(Duration::from_millis(500))
            .connect()
    };
    let a = connect().await.unwrap();
    let b = connect().await.unwrap();
    revoked_on_both(&a, &b, "acl").await;
    // This Redis runs without maxmemory, where the policy does not matter; the store read it.
    assert_eq!(a.eviction_policy(), Some("noeviction"));
    let denied: redis::RedisResult<Vec<String>> = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
        .keys("*")
        .await;
    assert!(denied.is_err(), "the ACL user may not list keys");
}

/// A reconnect replays what was written while the follower was away, from the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_replays_what_it_missed() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = store(&server).await;
    let writer = RedisStore::builder(server.url())
        .connect_writer()
        .await
        .unwrap();
    let mut conn = redis_conn(&server.url()).await;
    let now = UnixTime::now();
    // Drop every client connection but ours; write at once, while A reconnects.
    let _: usize = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("SKIPME")
        .arg("yes")
        .query_async(&mut conn)
        .await
        .unwrap();
    let revs: Vec<Revocation> = (0..50)
        .map(|i| session(&format!("m{i}"), now.saturating_add(secs(600))))
        .collect();
    writer.revoke_batch(&revs).await.unwrap();
    assert!(
        wait_for(&a, secs(5), || (0..50)
            .all(|i| a.check(ids(&format!("m{i}")), now).is_some()))
        .await,
        "A missed revocations written while it reconnected"
    );
}

/// Item 7: `rediss://` against a redis-server that speaks only TLS, with a certificate
/// from a CA the test makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_works() {
    let Some(server) = RedisServer::start_tls() else {
        return;
    };
    let ca = server.tls_ca_pem().unwrap().to_owned();
    let connect = || {
        RedisStore::builder(server.url())
            .tls_root_certificates(ca.clone())
            .timeout(Duration::from_secs(2))
            .connect()
    };
    let a = connect().await.unwrap();
    let b = connect().await.unwrap();
    revoked_on_both(&a, &b, "over-tls").await;
    // Without the CA the server's certificate is refused.
    let untrusted = RedisStore::builder(server.url())
        .timeout(Duration::from_secs(2))
        .connect()
        .await;
    assert!(untrusted.is_err(), "an unknown CA must be refused");
}

/// Item 7: a real 3-master Redis Cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_works() {
    let Some(cluster) = jwe_session_tests::RedisCluster::start(3) else {
        return;
    };
    let connect = || {
        RedisStore::cluster_builder(cluster.urls())
            .timeout(Duration::from_secs(1))
            .connect()
    };
    let a = connect().await.unwrap();
    let b = connect().await.unwrap();
    revoked_on_both(&a, &b, "c1").await;
    let now = UnixTime::now();
    let until = now.saturating_add(secs(600));
    a.revoke(
        Revocation::Subject {
            sub: "u".into(),
            at: UnixTime::now().saturating_sub(secs(5)).into(),
            until,
        },
        now,
    )
    .await
    .unwrap();
    assert!(matches!(
        b.check_authoritative(ids("other"), now).await.unwrap(),
        Some(Revoked::Subject { .. })
    ));
    let late = connect().await.unwrap();
    assert_eq!(late.check(ids("c1"), now), Some(Revoked::Session));
    let writer = RedisStore::cluster_builder(cluster.urls())
        .connect_writer()
        .await
        .unwrap();
    let revs: Vec<Revocation> = (0..1200)
        .map(|i| session(&format!("bulk{i}"), until))
        .collect();
    assert_eq!(writer.revoke_batch(&revs).await.unwrap(), 1200);
    assert!(wait_for(&b, secs(2), || b.check(ids("bulk1199"), now).is_some()).await);
}

/// The issue's scenario on two demo servers: Redis stops, `POST /logout` on A; the user is
/// logged out there, and once Redis is back B refuses a stolen copy of the cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_while_redis_is_down_reaches_the_other_instance() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let mut t = two_demos(&server).await;
    server.kill();
    let r = t.on_a.post_form("/logout", &[]).await;
    assert_eq!(
        r.status, 303,
        "logged out here, the revocation queued: {}",
        r.body
    );
    server.restart();
    t.wait_refused_on_b(secs(10), "logged out on A while Redis was down")
        .await;
}

/// A session watched on instance B completes when A revokes it (logout, logout
/// everywhere, emergency), through the log; a claims refresh made on A reaches B's hot
/// path the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_and_refreshes_reach_another_instance() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = store(&server).await;
    let b = store(&server).await;
    let now = UnixTime::now();
    let begun = now.saturating_sub(secs(10)).into();
    let until = now.saturating_add(secs(900));
    let ids_of = |sid, sub| SessionIds {
        sid: Some(sid),
        sub: Some(sub),
        started: Some(begun),
        issued: Some(begun),
    };
    let cases = [
        (
            "x1",
            "xena",
            Revocation::Session {
                sid: "x1".into(),
                until,
            },
        ),
        (
            "y1",
            "yuri",
            Revocation::Subject {
                sub: "yuri".into(),
                at: now.into(),
                until,
            },
        ),
        (
            "z1",
            "zoe",
            Revocation::All {
                at: now.into(),
                until,
            },
        ),
    ];
    for (sid, sub, revocation) in cases {
        let watch = b.watch(ids_of(sid, sub), now).unwrap();
        let t0 = Instant::now();
        a.revoke(revocation.clone(), now).await.unwrap();
        let why = tokio::time::timeout(secs(1), watch)
            .await
            .unwrap_or_else(|_| panic!("B's watch did not complete within 1 s: {revocation:?}"));
        assert_eq!(why.revoked(), revocation.revokes(ids_of(sid, sub), now));
        println!("{revocation:?} reached B's watch in {:?}", t0.elapsed());
    }
    let refresh = Revocation::Tokens {
        sub: "rosa".into(),
        at: now.into(),
        until,
    };
    a.revoke(refresh, now).await.unwrap();
    let due = wait_for(&b, secs(2), || {
        b.refresh_due(ids_of("r1", "rosa"), now).is_some()
    })
    .await;
    assert!(due, "the refresh did not reach B within 2 s");
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = conn.ttl("{jwe-session:}refresh:rosa").await.unwrap();
    assert!(ttl > 890 && ttl <= 900, "refresh key TTL {ttl}");
}
