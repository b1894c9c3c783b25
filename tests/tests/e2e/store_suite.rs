//! One conformance suite for every `RevocationStore`: the memory, file, Redis and
//! PostgreSQL stores must answer alike.

use std::sync::Arc;
use std::time::Duration;

use jwe_session_core::{
    Binding, Clock, Lifetimes, MemoryStore, RegistryError, Revocation, RevocationStore,
    RevokeError, Revoked, SessionIds, SessionRecord, SystemClock, UnixMicros, UnixTime, WatchEnd,
};
use jwe_session_file::FileStore;
use jwe_session_postgres::PgStore;
use jwe_session_redis::RedisStore;
use jwe_session_tests::{PgServer, RedisServer};

/// A store under test, with whatever must live as long as it (a Redis server, a file).
pub(crate) struct Fixture {
    pub(crate) store: Arc<dyn RevocationStore>,
    _guard: Option<Box<dyn std::any::Any + Send>>,
}

pub(crate) async fn memory_store() -> Option<Fixture> {
    Some(Fixture {
        store: Arc::new(MemoryStore::new()),
        _guard: None,
    })
}

pub(crate) async fn redis_store() -> Option<Fixture> {
    let server = RedisServer::start()?;
    let store = RedisStore::builder(server.url()).connect().await.unwrap();
    Some(Fixture {
        store: Arc::new(store),
        _guard: Some(Box::new(server)),
    })
}

/// A schema of its own on the process's shared PostgreSQL server.
pub(crate) async fn postgres_store() -> Option<Fixture> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let server = PgServer::shared()?;
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let pool = sqlx::PgPool::connect(&server.url()).await.unwrap();
    let store = PgStore::builder(pool)
        .schema(format!("suite_{n}"))
        .connect()
        .await
        .unwrap();
    Some(Fixture {
        store: Arc::new(store),
        _guard: None,
    })
}

/// Removes its directory when the test ends.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) async fn file_store() -> Option<Fixture> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("suite-file-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = FileStore::open(dir.join("revocations.redb")).unwrap();
    Some(Fixture {
        store: Arc::new(store),
        _guard: Some(Box::new(TempDir(dir))),
    })
}

fn ids<'a>(sid: &'a str, sub: &'a str, started: impl Into<UnixMicros>) -> SessionIds<'a> {
    SessionIds {
        sid: Some(sid),
        sub: Some(sub),
        started: Some(started.into()),
        issued: None,
    }
}

fn us(micros: u64) -> UnixMicros {
    UnixMicros::from_micros(micros)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(crate) async fn session_scope(s: &dyn RevocationStore) {
    let now = UnixTime::now();
    let start = now.saturating_sub(secs(60));
    s.revoke(
        Revocation::Session {
            sid: "s1".into(),
            until: now.saturating_add(secs(100)),
        },
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        s.check(ids("s1", "alice", start), now),
        Some(Revoked::Session)
    );
    assert_eq!(s.check(ids("s2", "alice", start), now), None);
    assert_eq!(
        s.check_authoritative(ids("s1", "alice", start), now)
            .await
            .unwrap(),
        Some(Revoked::Session)
    );
    assert_eq!(
        s.check_authoritative(ids("s2", "alice", start), now)
            .await
            .unwrap(),
        None
    );
    // Forgotten once no token of it could be renewed.
    let later = now.saturating_add(secs(100));
    assert_eq!(s.check(ids("s1", "alice", start), later), None);
    assert_eq!(
        s.check_authoritative(ids("s1", "alice", start), later)
            .await
            .unwrap(),
        None
    );
}

/// The one rule: a cut-off at M ends sessions begun at or before M (to the microsecond)
/// and none begun after, even in the same millisecond.
pub(crate) async fn subject_scope(s: &dyn RevocationStore) {
    let m = SystemClock.now_micros();
    let now = m.secs();
    let ms = 1_000;
    let r = Revocation::Subject {
        sub: "alice".into(),
        at: m,
        until: now.saturating_add(secs(600)),
    };
    s.revoke(r, now).await.unwrap();
    let older = now.saturating_sub(secs(1));
    assert_eq!(
        s.check(ids("a", "alice", older), now),
        Some(Revoked::Subject { at: m })
    );
    for (started, revoked) in [
        (m.as_micros() - ms, true),
        (m.as_micros(), true),
        (m.as_micros() + 1, false),
        (m.as_micros() + ms, false),
    ] {
        for check in [
            s.check(ids("b", "alice", us(started)), now),
            s.check_authoritative(ids("b", "alice", us(started)), now)
                .await
                .unwrap(),
        ] {
            assert_eq!(check.is_some(), revoked, "began {started}, cut-off {m}");
        }
    }
    assert_eq!(s.check(ids("c", "bob", older), now), None);
    assert_eq!(
        s.check_authoritative(ids("a", "alice", older), now)
            .await
            .unwrap(),
        Some(Revoked::Subject { at: m })
    );
    assert_eq!(
        s.check_authoritative(ids("c", "bob", older), now)
            .await
            .unwrap(),
        None
    );
    // An earlier cut-off never moves it back.
    let r = Revocation::Subject {
        sub: "alice".into(),
        at: older.into(),
        until: now.saturating_add(secs(60)),
    };
    s.revoke(r, now).await.unwrap();
    for check in [
        s.check(ids("a", "alice", m), now),
        s.check_authoritative(ids("a", "alice", m), now)
            .await
            .unwrap(),
    ] {
        assert_eq!(check, Some(Revoked::Subject { at: m }));
    }
    assert!(
        s.check(ids("a", "alice", older), now.saturating_add(secs(300)))
            .is_some(),
        "kept the later expiry"
    );
}

pub(crate) async fn all_scope(s: &dyn RevocationStore) {
    let m = SystemClock.now_micros();
    let now = m.secs();
    s.revoke(
        Revocation::All {
            at: m,
            until: now.saturating_add(secs(600)),
        },
        now,
    )
    .await
    .unwrap();
    let older = now.saturating_sub(secs(1));
    assert_eq!(
        s.check(ids("x", "anyone", older), now),
        Some(Revoked::All { at: m })
    );
    assert_eq!(
        s.check(ids("x", "anyone", m), now),
        Some(Revoked::All { at: m })
    );
    assert_eq!(s.check(ids("y", "anyone", m.next()), now), None);
    let unknown = SessionIds {
        sid: Some("z"),
        sub: None,
        started: None,
        issued: None,
    };
    assert!(
        s.check(unknown, now).is_some(),
        "a session of unknown start is cut"
    );
    assert!(s
        .check_authoritative(ids("x", "anyone", older), now)
        .await
        .unwrap()
        .is_some());
}

pub(crate) async fn bad_input_changes_nothing(s: &dyn RevocationStore) {
    let now = UnixTime::now();
    let until = now.saturating_add(secs(60));
    let err = s
        .revoke(
            Revocation::Session {
                sid: String::new(),
                until,
            },
            now,
        )
        .await;
    assert!(matches!(err, Err(RevokeError::Invalid(_))));
    let err = s
        .revoke(
            Revocation::Subject {
                sub: String::new(),
                at: now.into(),
                until,
            },
            now,
        )
        .await;
    assert!(matches!(err, Err(RevokeError::Invalid(_))));
    let any = SessionIds {
        sid: Some(""),
        sub: Some(""),
        started: Some(now.saturating_sub(secs(5)).into()),
        issued: None,
    };
    assert_eq!(s.check(any, now), None);
    assert_eq!(s.check_authoritative(any, now).await.unwrap(), None);
    // Already past its `until`: accepted, nothing to remember.
    s.revoke(
        Revocation::Session {
            sid: "old".into(),
            until: now,
        },
        now,
    )
    .await
    .unwrap();
    assert_eq!(s.check(ids("old", "u", now), now), None);
}

pub(crate) async fn concurrent_revoke_and_check(s: Arc<dyn RevocationStore>) {
    let now = UnixTime::now();
    let until = now.saturating_add(secs(300));
    let mut tasks = Vec::new();
    for t in 0..8 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let sid = format!("c{t}-{i}");
                let id = SessionIds {
                    sid: Some(&sid),
                    sub: None,
                    started: Some(now.into()),
                    issued: None,
                };
                assert_eq!(s.check(id, now), None);
                s.revoke(
                    Revocation::Session {
                        sid: sid.clone(),
                        until,
                    },
                    now,
                )
                .await
                .unwrap();
                assert_eq!(s.check(id, now), Some(Revoked::Session));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// A claims refresh: tokens of the subject issued up to its moment renew early; none is
/// refused, others are untouched, and the entry is kept like a cut-off.
pub(crate) async fn refresh_scope(s: &dyn RevocationStore) {
    let now = UnixTime::now();
    let at = UnixMicros::from(now);
    let token = |sub, issued| SessionIds {
        issued: Some(issued),
        ..ids("r1", sub, now.saturating_sub(secs(60)))
    };
    assert!(s.refresh_due(token("rita", at), now).is_none());
    s.revoke(
        Revocation::Tokens {
            sub: "rita".into(),
            at,
            until: now.saturating_add(secs(960)),
        },
        now,
    )
    .await
    .unwrap();
    assert!(s.refresh_due(token("rita", at), now).is_some());
    assert!(
        s.refresh_due(token("rita", at.next()), now).is_none(),
        "issued after"
    );
    assert!(
        s.refresh_due(token("other", at), now).is_none(),
        "another subject"
    );
    assert_eq!(s.check(token("rita", at), now), None, "never refused");
    assert_eq!(
        s.check_authoritative(token("rita", at), now).await.unwrap(),
        None
    );
    assert!(s
        .revoke(
            Revocation::Tokens {
                sub: String::new(),
                at,
                until: now.saturating_add(secs(960)),
            },
            now,
        )
        .await
        .is_err());
}

/// A watch completes when its session is revoked by sid, by subject, or globally, and at
/// once when it is revoked already; a claims refresh completes, as a refresh, only the
/// watches of the tokens it covers (issued at or before it).
pub(crate) async fn watches_complete(s: &dyn RevocationStore) {
    let now = UnixTime::now();
    let begun = now.saturating_sub(secs(60));
    let within = Duration::from_secs(2);
    // Tokens issued after the refresh below: it does not cover them.
    let renewed = |sid, sub| SessionIds {
        issued: Some(now.saturating_add(secs(1)).into()),
        ..ids(sid, sub, begun)
    };
    let by_sid = s.watch(renewed("w1", "wendy"), now).unwrap();
    let by_sub = s.watch(renewed("w2", "wendy"), now).unwrap();
    let by_refresh = s.watch(ids("w5", "wendy", begun), now).unwrap();
    let by_all = s.watch(ids("w3", "walt", begun), now).unwrap();
    let later = s.watch(ids("w4", "walt", now.saturating_add(secs(1))), now);
    let later = later.unwrap();
    let until = now.saturating_add(secs(900));
    let refresh = Revocation::Tokens {
        sub: "wendy".into(),
        at: now.into(),
        until,
    };
    s.revoke(refresh, now).await.unwrap();
    assert_eq!(
        tokio::time::timeout(within, by_refresh).await.unwrap(),
        WatchEnd::Refreshed { at: now.into() }
    );
    let logout = Revocation::Session {
        sid: "w1".into(),
        until,
    };
    s.revoke(logout, now).await.unwrap();
    assert_eq!(
        tokio::time::timeout(within, by_sid).await.unwrap(),
        WatchEnd::Revoked(Revoked::Session)
    );
    assert_eq!(
        by_sub.revoked(),
        None,
        "a refresh of later tokens and another sid end nothing"
    );
    let everywhere = Revocation::Subject {
        sub: "wendy".into(),
        at: now.into(),
        until,
    };
    s.revoke(everywhere, now).await.unwrap();
    assert_eq!(
        tokio::time::timeout(within, by_sub).await.unwrap(),
        WatchEnd::Revoked(Revoked::Subject { at: now.into() })
    );
    let all = Revocation::All {
        at: now.into(),
        until,
    };
    s.revoke(all, now).await.unwrap();
    assert_eq!(
        tokio::time::timeout(within, by_all).await.unwrap(),
        WatchEnd::Revoked(Revoked::All { at: now.into() })
    );
    assert_eq!(later.revoked(), None, "begun after the cut-off");
    // Begun after the global cut-off, so only its own logout ends it.
    let again = s.watch(ids("w1", "x", now.saturating_add(secs(1))), now);
    let again = again.unwrap();
    assert_eq!(again.revoked(), Some(Revoked::Session), "revoked already");
}

/// The session registry ("your devices"): records merge by one rule, a list shows only
/// live sessions (any revocation scope hides a record), each store keeps users apart, and
/// a record leaves at its `until`.
pub(crate) async fn session_registry(s: &dyn RevocationStore) {
    let reg = s
        .registry()
        .expect("every store of this project keeps a registry");
    let now = UnixTime::now();
    let t0 = SystemClock.now_micros();
    let until = now.saturating_add(secs(3_600));
    let rec =
        |sid: &str, sub: &str, started: UnixMicros| SessionRecord::new(sid, sub, started, until);
    reg.record(
        rec("s1", "alice", t0)
            .with_label("Phone")
            .with_network("203.0.113.0/24"),
        now,
    )
    .await
    .unwrap();
    reg.record(
        rec("s2", "alice", us(t0.as_micros() + 5)).with_binding(Binding::Dpop),
        now,
    )
    .await
    .unwrap();
    reg.record(rec("s3", "bob", t0), now).await.unwrap();
    let sids = |v: &[SessionRecord]| v.iter().map(|r| r.sid.clone()).collect::<Vec<_>>();
    let alice = s.sessions_of("alice", now).await.unwrap();
    assert_eq!(sids(&alice), ["s1", "s2"], "oldest first, alice's only");
    assert_eq!(alice[0].label.as_deref(), Some("Phone"));
    assert_eq!(alice[0].network.as_deref(), Some("203.0.113.0/24"));
    assert_eq!(alice[1].binding, Binding::Dpop);
    assert_eq!(sids(&s.sessions_of("bob", now).await.unwrap()), ["s3"]);
    assert!(s.sessions_of("carol", now).await.unwrap().is_empty());

    // A renewal carries no label: the login's stays; renewed and until move on, never back.
    let later = now.saturating_add(secs(600));
    let renewal = rec("s1", "alice", t0).renewed_at(later, until.saturating_add(secs(600)));
    reg.record(renewal, now).await.unwrap();
    reg.record(rec("s1", "alice", t0), now).await.unwrap();
    let alice = s.sessions_of("alice", now).await.unwrap();
    assert_eq!(alice[0].label.as_deref(), Some("Phone"));
    assert_eq!(alice[0].renewed, later);
    assert_eq!(alice[0].until, until.saturating_add(secs(600)));

    // Removing names the owner: bob cannot remove alice's record.
    reg.remove("bob", "s1", now).await.unwrap();
    assert_eq!(
        sids(&s.sessions_of("alice", now).await.unwrap()),
        ["s1", "s2"]
    );

    // A logout hides the record (which stays until its `until`: a list only reads).
    s.revoke(
        Revocation::session("s2", Some(now), now, &Lifetimes::default()),
        now,
    )
    .await
    .unwrap();
    assert_eq!(sids(&s.sessions_of("alice", now).await.unwrap()), ["s1"]);
    assert_eq!(reg.records_of("alice", now).await.unwrap().len(), 2);

    // Logout everywhere at M hides what began by M, not what begins after.
    let m = SystemClock.now_micros();
    let after = us(m.as_micros() + 1);
    reg.record(rec("s4", "alice", after), now).await.unwrap();
    s.revoke(Revocation::subject("alice", m, &Lifetimes::default()), now)
        .await
        .unwrap();
    assert_eq!(sids(&s.sessions_of("alice", now).await.unwrap()), ["s4"]);
    assert_eq!(sids(&s.sessions_of("bob", now).await.unwrap()), ["s3"]);

    reg.remove("alice", "s4", now).await.unwrap();
    assert!(s.sessions_of("alice", now).await.unwrap().is_empty());

    // Gone once it can no longer renew.
    let past = until.saturating_add(secs(1));
    assert!(s.sessions_of("bob", past).await.unwrap().is_empty());

    // Bad input is refused and changes nothing.
    for bad in [rec("", "bob", t0), rec("s9", "", t0)] {
        assert!(matches!(
            reg.record(bad, now).await,
            Err(RegistryError::Invalid { .. })
        ));
    }
    assert_eq!(sids(&s.sessions_of("bob", now).await.unwrap()), ["s3"]);
}

macro_rules! revocation_store_suite {
    ($name:ident) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn session_scope() {
                let Some(f) = super::$name().await else {
                    return;
                };
                super::session_scope(&*f.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn subject_scope() {
                let Some(f) = super::$name().await else {
                    return;
                };
                super::subject_scope(&*f.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn all_scope() {
                let Some(f) = super::$name().await else {
                    return;
                };
                super::all_scope(&*f.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn bad_input_changes_nothing() {
                let Some(f) = super::$name().await else {
                    return;
                };
                super::bad_input_changes_nothing(&*f.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_revoke_and_check() {
                let Some(f) = super::$name().await else {
                    return;
                };
                super::concurrent_revoke_and_check(Arc::clone(&f.store)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn refresh_scope() {
                let Some(f) = super::$name().await else {
                    return;
                };
                super::refresh_scope(&*f.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn watches_complete() {
                let Some(f) = super::$name().await else {
                    return;
                };
                super::watches_complete(&*f.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn session_registry() {
                let Some(f) = super::$name().await else {
                    return;
                };
                super::session_registry(&*f.store).await;
            }
        }
    };
}

revocation_store_suite!(memory_store);
revocation_store_suite!(file_store);
revocation_store_suite!(redis_store);
revocation_store_suite!(postgres_store);
