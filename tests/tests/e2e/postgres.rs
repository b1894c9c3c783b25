//! The PostgreSQL store against a real server (issue 30): followers miss nothing while
//! their backends are killed, the polling fallback without `LISTEN`, `NOTIFY` well ahead
//! of the poll, a database that went back in time or was replaced is repaired, pruning in
//! bounded batches, and a least-privilege role that can do everything a service does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jwe_session_core::{
    Clock, ManualClock, Recorded, Revocation, RevocationStore, Revoked, SessionIds, SessionRecord,
    UnixMicros, UnixTime,
};
use jwe_session_postgres::{BackendError, PgPool, PgStore};
use jwe_session_tests::PgServer;

fn ids(sid: &str) -> SessionIds<'_> {
    SessionIds {
        sid: Some(sid),
        sub: Some("alice"),
        started: Some(UnixMicros::from_micros(1_000_000)),
        issued: None,
    }
}

fn session(sid: &str) -> Revocation {
    Revocation::Session {
        sid: sid.into(),
        until: UnixTime::from_secs(UnixTime::now().as_secs() + 3_600),
    }
}

/// Waits (bounded) until `store` refuses every sid; how long it took.
async fn until_refused(store: &PgStore, sids: &[String], within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let now = UnixTime::now();
        let missing = sids
            .iter()
            .filter(|s| store.check(ids(s), now).is_none())
            .count();
        if missing == 0 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{missing} of {} revocations never reached the store",
            sids.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn pool(url: &str) -> PgPool {
    PgPool::connect(url).await.unwrap()
}

/// Revocations written while every backend of the follower (its listener and its pool's
/// connections) is killed again and again with `pg_terminate_backend`: none is missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_whose_backends_are_killed_misses_nothing() {
    let Some(server) = PgServer::shared() else {
        return;
    };
    let url = server.database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let writer = PgStore::builder(pool(&url).await).connect().await.unwrap();
    let follower = PgStore::builder(pool(&url).await)
        .poll_interval(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let kill = format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = '{db}' AND pid <> pg_backend_pid()"
    );
    let mut sids = Vec::new();
    let mut queued = 0;
    for round in 0..10 {
        // Kills the writer's connections too: what it cannot write it queues and re-sends.
        let killed: u32 = server.psql(&db, &kill).parse().unwrap();
        assert!(killed > 0, "round {round}: nothing was killed");
        for i in 0..20 {
            let sid = format!("r{round}-{i}");
            if let Recorded::Queued { .. } =
                writer.revoke(session(&sid), UnixTime::now()).await.unwrap()
            {
                queued += 1;
            }
            sids.push(sid);
        }
    }
    let took = until_refused(&follower, &sids, Duration::from_secs(30)).await;
    eprintln!(
        "{} revocations across 10 rounds of pg_terminate_backend ({queued} queued by the \
         writer): all on the follower {took:?} after the last",
        sids.len()
    );
    assert_eq!(writer.queued(), 0);
}

/// `listen(false)` (PgBouncer in transaction mode): the follower polls and still gets
/// every revocation within its interval; with `LISTEN` and a poll of a minute, a
/// revocation arrives within a second (the `NOTIFY`, not the poll).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_without_listen_and_notify_without_polling() {
    let Some(server) = PgServer::shared() else {
        return;
    };
    let url = server.database();
    let writer = PgStore::builder(pool(&url).await).connect().await.unwrap();
    let polling = PgStore::builder(pool(&url).await)
        .listen(false)
        .poll_interval(Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    let listening = PgStore::builder(pool(&url).await)
        .poll_interval(Duration::from_secs(60))
        .connect()
        .await
        .unwrap();
    assert!(!polling.is_listening());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !listening.is_listening() {
        assert!(Instant::now() < deadline, "the listener never listened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sids: Vec<String> = (0..50).map(|i| format!("p{i}")).collect();
    for s in &sids {
        writer.revoke(session(s), UnixTime::now()).await.unwrap();
    }
    let notified = until_refused(&listening, &sids, Duration::from_secs(1)).await;
    let polled = until_refused(&polling, &sids, Duration::from_secs(5)).await;
    eprintln!("NOTIFY: all 50 in {notified:?}; polling (100 ms): {polled:?} later");
}

/// A database that went back in time (the newest rows gone, as after a failover to a
/// lagging standby) and a schema replaced (dropped and made again, a new epoch): each
/// instance writes back what it knows, and a new instance refuses the sessions again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_went_back_or_was_replaced_is_repaired() {
    let Some(server) = PgServer::shared() else {
        return;
    };
    let url = server.database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let a = PgStore::builder(pool(&url).await)
        .poll_interval(Duration::from_millis(50))
        .connect()
        .await
        .unwrap();
    for s in ["old", "new"] {
        a.revoke(session(s), UnixTime::now()).await.unwrap();
    }
    // Gone back: the newest row lost.
    server.psql(
        &db,
        "DELETE FROM jwe_session.revocations WHERE seq = (SELECT max(seq) FROM jwe_session.revocations)",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.psql(
        &db,
        "SELECT count(*) FROM jwe_session.revocations WHERE id = 'new'",
    ) != "1"
    {
        assert!(
            Instant::now() < deadline,
            "the lost row was never written back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(a.repairs() >= 1);
    // Replaced: dropped and made again by another instance's start-up.
    server.psql(&db, "DROP SCHEMA jwe_session CASCADE");
    let b = PgStore::builder(pool(&url).await).connect().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.psql(&db, "SELECT count(*) FROM jwe_session.revocations") != "2" {
        assert!(
            Instant::now() < deadline,
            "the replaced schema was never repaired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sids = ["old".to_owned(), "new".to_owned()];
    until_refused(&b, &sids, Duration::from_secs(5)).await;
    assert!(a.repairs() >= 2);
}

/// Expired rows go in bounded batches (revocations but the newest, and registry records);
/// what is in force stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_deletes_what_expired_in_batches() {
    let Some(server) = PgServer::shared() else {
        return;
    };
    let url = server.database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let t0 = UnixTime::now();
    let clock = Arc::new(ManualClock::new(t0));
    let store = PgStore::builder(pool(&url).await)
        .clock(Arc::clone(&clock) as Arc<dyn Clock>)
        .connect()
        .await
        .unwrap();
    let soon = UnixTime::from_secs(t0.as_secs() + 10);
    let later = UnixTime::from_secs(t0.as_secs() + 10_000);
    let revs: Vec<Revocation> = (0..250)
        .map(|i| Revocation::Session {
            sid: format!("x{i}"),
            until: soon,
        })
        .chain([Revocation::Session {
            sid: "kept".into(),
            until: later,
        }])
        .chain([Revocation::Session {
            sid: "newest".into(),
            until: soon,
        }])
        .collect();
    for r in revs {
        store.revoke(r, t0).await.unwrap();
    }
    let reg = store.registry().unwrap();
    for i in 0..30 {
        let r = SessionRecord::new(format!("d{i}"), "alice", UnixMicros::from(t0), soon);
        reg.record(r, t0).await.unwrap();
    }
    let count = |t: &str| server.psql(&db, &format!("SELECT count(*) FROM jwe_session.{t}"));
    assert_eq!(
        store.prune(t0, 100, 10).await.unwrap(),
        0,
        "nothing expired yet"
    );
    let past = UnixTime::from_secs(t0.as_secs() + 11);
    // One round of 100 each: bounded.
    assert_eq!(store.prune(past, 100, 1).await.unwrap(), 130);
    assert_eq!(count("revocations"), "152");
    assert_eq!(store.prune(past, 100, 10).await.unwrap(), 150);
    assert_eq!(
        count("revocations"),
        "2",
        "the one in force and the newest stay"
    );
    assert_eq!(count("devices"), "0");
    clock.set(past);
    assert!(store.check(ids("kept"), past).is_some());
}

/// The grants of `sql/grants.sql`, and no more: a service role connects with
/// `migrate(false)` to a schema the owner made, and revokes, checks, records devices and
/// prunes; it cannot create or drop anything. Without the schema it is refused, typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_least_privilege_role_does_what_a_service_does() {
    let Some(server) = PgServer::shared() else {
        return;
    };
    let owner_url = server.database();
    let db = owner_url.rsplit('/').next().unwrap().to_owned();
    let role = format!("svc_{db}");
    server.psql(&db, &format!("CREATE ROLE {role} LOGIN"));
    let app_url = server.url_for(&role, &db);
    // Before the schema exists: refused, naming it.
    let err = PgStore::builder(pool(&app_url).await)
        .migrate(false)
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BackendError::Schema { found: None, .. }),
        "{err:?}"
    );
    // A role that may not create is refused by migrate(true) too, nothing made.
    server.psql(&db, "REVOKE CREATE ON SCHEMA public FROM PUBLIC");
    server.psql(&db, &format!("REVOKE CREATE ON DATABASE {db} FROM PUBLIC"));
    let err = PgStore::builder(pool(&app_url).await)
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::Unavailable { .. }), "{err:?}");

    jwe_session_postgres::migrate(&pool(&owner_url).await, "jwe_session")
        .await
        .unwrap();
    let grants = include_str!("../../../crates/jwe-session-postgres/sql/grants.sql")
        .replace(" TO app;", &format!(" TO {role};"));
    server.psql(&db, &grants);

    let store = PgStore::builder(pool(&app_url).await)
        .migrate(false)
        .connect()
        .await
        .unwrap();
    let now = UnixTime::now();
    assert!(matches!(
        store.revoke(session("s1"), now).await.unwrap(),
        Recorded::Stored
    ));
    let reader = PgStore::builder(pool(&app_url).await)
        .migrate(false)
        .mirror_window(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    assert_eq!(
        reader.check_authoritative(ids("s1"), now).await.unwrap(),
        Some(Revoked::Session)
    );
    let reg = store.registry().unwrap();
    let until = UnixTime::from_secs(now.as_secs() + 60);
    reg.record(
        SessionRecord::new("s2", "alice", UnixMicros::from(now), until),
        now,
    )
    .await
    .unwrap();
    assert_eq!(store.sessions_of("alice", now).await.unwrap().len(), 1);
    store.prune(now, 100, 1).await.unwrap();
    // And no more than that.
    for ddl in [
        "DROP TABLE jwe_session.revocations".to_owned(),
        "CREATE TABLE jwe_session.x (a int)".to_owned(),
        "DELETE FROM jwe_session.meta".to_owned(),
    ] {
        let as_role = format!("SET ROLE {role}; {ddl}");
        let err = server.try_psql(&db, &as_role).unwrap_err();
        assert!(
            err.contains("permission denied") || err.contains("must be owner"),
            "{err}"
        );
    }
}

/// A first start reads only what matters: with many old session revocations stored
/// (made long before the window, as the database stamps them), start-up loads none of
/// them, and a cut-off in force whatever its age.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_loads_the_window_and_the_cutoffs_only() {
    let Some(server) = PgServer::shared() else {
        return;
    };
    let url = server.database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let writer = PgStore::builder(pool(&url).await).connect().await.unwrap();
    let revs: Vec<Revocation> = (0..3_000).map(|i| session(&format!("old{i}"))).collect();
    for chunk in revs.chunks(1_000) {
        for r in chunk {
            writer.revoke(r.clone(), UnixTime::now()).await.unwrap();
        }
    }
    writer
        .revoke(
            Revocation::Subject {
                sub: "alice".into(),
                at: UnixMicros::from_micros(5_000_000),
                until: UnixTime::from_secs(UnixTime::now().as_secs() + 3_600),
            },
            UnixTime::now(),
        )
        .await
        .unwrap();
    // Made two hours ago, by the database's clock.
    server.psql(
        &db,
        "UPDATE jwe_session.revocations SET made_us = made_us - 7200000000",
    );
    let late = PgStore::builder(pool(&url).await).connect().await.unwrap();
    assert_eq!(late.mirrored(), 1, "the cut-off only");
    assert!(matches!(
        late.check(ids("x"), UnixTime::now()),
        Some(Revoked::Subject { .. })
    ));
    // An old session revocation is still found where it matters: at renewal.
    let old = SessionIds {
        sub: Some("bob"),
        ..ids("old7")
    };
    assert_eq!(
        late.check_authoritative(old, UnixTime::now())
            .await
            .unwrap(),
        Some(Revoked::Session)
    );
}

/// A row this version cannot read (a scope from a later format, written past the table's
/// checks) is set aside, never taken for another scope; the rows beside it load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_this_version_cannot_read_is_set_aside() {
    let Some(server) = PgServer::shared() else {
        return;
    };
    let url = server.database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let writer = PgStore::builder(pool(&url).await).connect().await.unwrap();
    writer
        .revoke(session("good"), UnixTime::now())
        .await
        .unwrap();
    server.psql(
        &db,
        "ALTER TABLE jwe_session.revocations DROP CONSTRAINT revocations_scope_check; \
         INSERT INTO jwe_session.revocations VALUES \
         (9, 'alice', 1, 253402300799, 0, nextval('jwe_session.revocation_seq'))",
    );
    let reader = PgStore::builder(pool(&url).await).connect().await.unwrap();
    assert_eq!(reader.mirrored(), 1);
    assert_eq!(
        reader.check(ids("good"), UnixTime::now()),
        Some(Revoked::Session)
    );
    assert_eq!(reader.check(ids("other"), UnixTime::now()), None);
    assert_eq!(
        reader
            .check_authoritative(ids("other"), UnixTime::now())
            .await
            .unwrap(),
        None
    );
}

/// TLS through rustls, trusting only the CA a test made (`sslmode=verify-full`): the
/// store connects, writes, and a second store hears of it over its own TLS connection
/// (`LISTEN` included); without the CA the handshake is refused, typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca() {
    let Some(server) = PgServer::start_tls() else {
        return;
    };
    let plain = server.database();
    let ca = server.tls_ca_file().unwrap();
    let tls = format!("{plain}?sslmode=verify-full&sslrootcert={ca}");
    let a = PgStore::builder(pool(&tls).await).connect().await.unwrap();
    let b = PgStore::builder(pool(&tls).await)
        .poll_interval(Duration::from_secs(60))
        .connect()
        .await
        .unwrap();
    a.revoke(session("over-tls"), UnixTime::now())
        .await
        .unwrap();
    until_refused(&b, &["over-tls".to_owned()], Duration::from_secs(5)).await;
    assert!(b.is_listening());
    let db = plain.rsplit('/').next().unwrap().to_owned();
    assert_eq!(
        server.psql(
            &db,
            "SELECT count(*) > 0 FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE ssl AND datname = current_database()"
        ),
        "t",
        "the stores' connections are TLS"
    );
    // The system's roots do not know the test CA: refused.
    let untrusted = format!("{plain}?sslmode=verify-full");
    let err = PgPool::connect(&untrusted).await.unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("certificate")
            || err.to_string().to_lowercase().contains("tls"),
        "{err}"
    );
}

/// PostgreSQL down: a revocation holds here at once and is queued (acknowledged, not
/// durable without `queue_in`), the authoritative check fails typed (the layer's policy
/// decides), and once the server is back the queue goes out and another store sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_queues_and_fails_the_authoritative_check_typed() {
    let Some(mut server) = PgServer::start() else {
        return;
    };
    let url = server.database();
    let a = PgStore::builder(pool(&url).await)
        .timeout(Duration::from_millis(500))
        .max_backoff(Duration::from_millis(200))
        .poll_interval(Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    server.kill();
    let now = UnixTime::now();
    match a.revoke(session("during"), now).await.unwrap() {
        Recorded::Queued { durable, .. } => assert!(!durable),
        other => panic!("{other:?}"),
    }
    assert_eq!(a.queued(), 1);
    assert_eq!(a.check(ids("during"), now), Some(Revoked::Session));
    assert!(matches!(
        a.check_authoritative(ids("someone"), now).await,
        Err(jwe_session_core::CheckError::Unavailable { .. }
            | jwe_session_core::CheckError::Timeout { .. })
    ));
    let deadline = Instant::now() + Duration::from_secs(5);
    while a.is_connected() {
        assert!(
            Instant::now() < deadline,
            "the store never noticed the outage"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    while a.queued() > 0 || !a.is_connected() {
        assert!(Instant::now() < deadline, "the queue never went out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let b = PgStore::builder(pool(&url).await).connect().await.unwrap();
    assert_eq!(
        b.check(ids("during"), UnixTime::now()),
        Some(Revoked::Session)
    );
}
