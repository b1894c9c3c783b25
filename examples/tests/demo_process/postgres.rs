//! The demo on PostgreSQL (`DATABASE_URL`, issue 30), two processes on one real server:
//! a logout on one is refused on the other, the device list is shared, and a logout made
//! while PostgreSQL is down is queued, acknowledged, and honoured by the other instance
//! once the database is back (after a restart of the server).

use super::*;

/// Polls `/me` on `client` until it answers `want`, at most `within`; how long it took.
async fn until_status(client: &mut Client, want: StatusCode, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let got = client.get("/me").await.status;
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "/me stayed {got} (wanted {want}) for {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn two_demos_on_postgres_share_logouts_and_outlive_an_outage() {
    let Some(mut server) = jwe_session_tests::PgServer::start() else {
        return;
    };
    let database = server.database();
    let dir = scratch("demo-postgres");
    let (qa, qb) = (dir.join("a.redb"), dir.join("b.redb"));
    let env_a = [
        ("DATABASE_URL", database.as_str()),
        ("JWE_SESSION_REVOCATIONS", qa.to_str().unwrap()),
    ];
    let env_b = [
        ("DATABASE_URL", database.as_str()),
        ("JWE_SESSION_REVOCATIONS", qb.to_str().unwrap()),
    ];
    let a = Demo::start(free_port(), &env_a, dir.join("a.log"));
    let b = Demo::start(free_port(), &env_b, dir.join("b.log"));

    // A logout on A is refused on B, through NOTIFY: well under the poll interval.
    let mut alice = Client::new(a.url());
    assert_eq!(alice.login("alice").await.status, StatusCode::SEE_OTHER);
    let mut copy = browser(&b.url(), &alice.jar);
    assert_eq!(copy.get("/me").await.status, StatusCode::OK);
    assert_eq!(
        alice.post_form("/logout", &[]).await.status,
        StatusCode::SEE_OTHER
    );
    let took = until_status(&mut copy, StatusCode::UNAUTHORIZED, Duration::from_secs(5)).await;
    eprintln!("logout on A refused on B after {took:?}");

    // The device list is the database's: B lists what A started.
    let mut laptop = Client::new(a.url());
    laptop.login("bob").await;
    let mut phone = Client::new(b.url());
    phone.login("bob").await;
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&phone.get("/devices").await.body).unwrap();
    assert_eq!(list.len(), 2, "{list:?}");

    // PostgreSQL down: a logout on A is acknowledged (queued, in A's file too); B, which
    // cannot know, still serves the copy; once the server is back, B refuses it.
    let mut carol = Client::new(a.url());
    carol.login("carol").await;
    let mut carol_copy = browser(&b.url(), &carol.jar);
    assert_eq!(carol_copy.get("/me").await.status, StatusCode::OK);
    server.kill();
    assert_eq!(
        carol.post_form("/logout", &[]).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        carol.get("/me").await.status,
        StatusCode::UNAUTHORIZED,
        "A honours its own logout at once"
    );
    assert_eq!(carol_copy.get("/me").await.status, StatusCode::OK);
    server.restart();
    let took = until_status(
        &mut carol_copy,
        StatusCode::UNAUTHORIZED,
        Duration::from_secs(30),
    )
    .await;
    eprintln!("queued logout honoured on B {took:?} after PostgreSQL came back");
    assert!(
        a.log_text().contains("queued"),
        "A logged the queued logout: {}",
        a.log_text()
    );
    // The durable queue: a logout A makes while PostgreSQL is down, then A killed before
    // the database is back; only A's file holds it. A restarted on the same file sends it.
    let mut dave = Client::new(a.url());
    dave.login("dave").await;
    let mut dave_copy = browser(&b.url(), &dave.jar);
    server.kill();
    assert_eq!(
        dave.post_form("/logout", &[]).await.status,
        StatusCode::SEE_OTHER
    );
    let a_port = a.port;
    a.kill();
    server.restart();
    assert_eq!(
        dave_copy.get("/me").await.status,
        StatusCode::OK,
        "only A's queue knows"
    );
    let a = Demo::start(a_port, &env_a, dir.join("a2.log"));
    let took = until_status(
        &mut dave_copy,
        StatusCode::UNAUTHORIZED,
        Duration::from_secs(10),
    )
    .await;
    eprintln!("a logout queued on disk by a killed instance reached B {took:?} after its restart");
    drop(a);

    // Nothing of the logouts is lost across the restart: a new instance refuses both.
    let c = Demo::start(
        free_port(),
        &[
            ("DATABASE_URL", database.as_str()),
            (
                "JWE_SESSION_REVOCATIONS",
                dir.join("c.redb").to_str().unwrap(),
            ),
        ],
        dir.join("c.log"),
    );
    for jar in [&alice.jar, &carol.jar, &dave.jar] {
        let mut late = browser(&c.url(), jar);
        assert_eq!(late.get("/me").await.status, StatusCode::UNAUTHORIZED);
    }
}

#[test]
fn both_redis_and_database_urls_stop_the_demo() {
    let dir = scratch("demo-two-stores");
    let (status, log) = run_to_exit(
        &[
            ("DATABASE_URL", "postgres://nobody@127.0.0.1:1/x"),
            ("REDIS_URL", "redis://127.0.0.1:1/"),
            (
                "JWE_SESSION_REVOCATIONS",
                dir.join("r.redb").to_str().unwrap(),
            ),
        ],
        &dir.join("log"),
    );
    assert!(!status.success());
    assert!(log.contains("REDIS_URL and DATABASE_URL"), "{log}");
}

#[test]
fn an_unreachable_database_stops_the_demo_naming_the_variable() {
    let dir = scratch("demo-pg-down");
    let (status, log) = run_to_exit(
        &[
            (
                "DATABASE_URL",
                &format!("postgres://app:s3cret@127.0.0.1:{}/x", free_port()),
            ),
            (
                "JWE_SESSION_REVOCATIONS",
                dir.join("r.redb").to_str().unwrap(),
            ),
        ],
        &dir.join("log"),
    );
    assert!(!status.success());
    assert!(log.contains("DATABASE_URL"), "{log}");
    assert!(!log.contains("s3cret"), "the password leaked: {log}");
}
