//! Three demo instances on one shared store (Redis or PostgreSQL) under a steady stream
//! of revocations, for `benches/revocations.sh` and `benches/revocations-postgres.sh`:
//! how long a revocation made on instance 0 takes to be refused by instances 1 and 2
//! (p50/p99/max), and request throughput on the three while idle and during the storm.
//!
//! `storm URL [RATE_PER_S] [SECONDS]` (defaults 1000 and 10): `redis://…` for the Redis
//! store, `postgres://…` for the PostgreSQL one. Each instance is a demo router with its
//! own store (own connections, own follower, own mirror) on its own port, as separate
//! processes would have; they share this process's two cores with the load generator, so
//! the figures are a floor.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jwe_session_core::{KeyRing, KeyRingHandle, Revocation, RevocationStore, SessionIds, UnixTime};
use jwe_session_demo::demo::{app, DemoOptions};
use jwe_session_postgres::PgStore;
use jwe_session_redis::RedisStore;
use jwe_session_tests::{Client, Server};
use tokio::sync::watch;

const LOAD_TASKS: usize = 4;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        eprintln!("usage: storm (REDIS_URL | POSTGRES_URL) [RATE_PER_S] [SECONDS]");
        std::process::exit(2);
    };
    let rate: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);

    let ring = KeyRingHandle::new(KeyRing::generate());
    let mut stores = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..3 {
        let store = connect(&url).await;
        let mut opts = DemoOptions::new(ring.clone());
        opts.store = Some(Arc::clone(&store.0));
        servers.push(Server::start(app(opts).unwrap()).await);
        stores.push(store);
    }
    let mut login = Client::new(servers[0].url());
    assert_eq!(login.login("load").await.status, 303);
    let cookie = login.jar["__Host-session"].clone();
    let urls: Vec<String> = servers.iter().map(Server::url).collect();

    let idle = load(&urls, &cookie, Duration::from_secs(3)).await;
    println!(
        "throughput idle: {idle:.0} requests/s (GET /me, {LOAD_TASKS} clients over 3 instances)"
    );

    // The storm: instance 0 revokes `storm-N` at `rate` per second; instances 1 and 2
    // note when each one is refused by their mirror.
    let total = rate * seconds;
    let started: Arc<Mutex<Vec<Option<Instant>>>> =
        Arc::new(Mutex::new(vec![None; usize::try_from(total).unwrap()]));
    let mut watchers = Vec::new();
    for (store, updates) in &stores[1..] {
        let store = Arc::clone(store);
        let mut updates = updates.clone();
        let started = Arc::clone(&started);
        watchers.push(tokio::spawn(async move {
            let mut next = 0u64;
            let mut lat = Vec::with_capacity(usize::try_from(total).unwrap());
            let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds + 10);
            while next < total {
                let now = UnixTime::now();
                while next < total {
                    let sid = format!("storm-{next}");
                    let ids = SessionIds {
                        sid: Some(&sid),
                        sub: None,
                        started: None,
                        issued: None,
                    };
                    if store.check(ids, now).is_some() {
                        let t0 = started.lock().unwrap()[usize::try_from(next).unwrap()];
                        if let Some(t0) = t0 {
                            lat.push(t0.elapsed());
                        }
                        next += 1;
                    } else {
                        break;
                    }
                }
                if tokio::time::timeout_at(deadline, updates.changed())
                    .await
                    .is_err()
                {
                    break;
                }
            }
            lat
        }));
    }
    let revoker = {
        let store = Arc::clone(&stores[0].0);
        let started = Arc::clone(&started);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for n in 0..total {
                tick.tick().await;
                let now = UnixTime::now();
                started.lock().unwrap()[usize::try_from(n).unwrap()] = Some(Instant::now());
                let r = Revocation::Session {
                    sid: format!("storm-{n}"),
                    until: now.saturating_add(Duration::from_secs(3600)),
                };
                store.revoke(r, now).await.unwrap();
            }
        })
    };
    let storm = load(
        &urls,
        &cookie,
        Duration::from_secs(seconds.saturating_sub(1).max(1)),
    )
    .await;
    revoker.await.unwrap();
    let mut lat = Vec::new();
    let mut missing = 0;
    for w in watchers {
        let l = w.await.unwrap();
        missing += total - u64::try_from(l.len()).unwrap();
        lat.extend(l);
    }
    lat.sort();
    let pct = |p: usize| lat[(lat.len() * p / 100).min(lat.len() - 1)];
    println!(
        "propagation ({} revocations at {rate}/s, seen on 2 instances): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, not seen {missing}",
        total,
        pct(50).as_secs_f64() * 1e3,
        pct(99).as_secs_f64() * 1e3,
        lat[lat.len() - 1].as_secs_f64() * 1e3,
    );
    println!(
        "throughput during the storm: {storm:.0} requests/s ({:.0}% of idle)",
        storm / idle * 100.0
    );
}

/// A store on `url`, and the counter it moves whenever its mirror changes.
async fn connect(url: &str) -> (Arc<dyn RevocationStore>, watch::Receiver<u64>) {
    if url.starts_with("postgres") {
        let pool = jwe_session_postgres::PgPool::connect(url).await.unwrap();
        let store = PgStore::builder(pool).connect().await.unwrap();
        let updates = store.updates();
        (Arc::new(store), updates)
    } else {
        let store = RedisStore::builder(url).connect().await.unwrap();
        let updates = store.updates();
        (Arc::new(store), updates)
    }
}

/// GET /me with a valid cookie from `LOAD_TASKS` clients, round-robin over the instances,
/// for `how_long`; requests per second answered 200.
async fn load(urls: &[String], cookie: &str, how_long: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + how_long;
    let tasks: Vec<_> = (0..LOAD_TASKS)
        .map(|i| {
            let mut clients: Vec<Client> = urls
                .iter()
                .map(|u| {
                    let mut c = Client::new(u.clone());
                    c.jar.insert("__Host-session".into(), cookie.to_owned());
                    c
                })
                .collect();
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let mut k = i;
                while Instant::now() < end {
                    let c = &mut clients[k % 3];
                    k += 1;
                    if c.get("/me").await.status == 200 {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / how_long.as_secs_f64()
}
