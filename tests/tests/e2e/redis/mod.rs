//! The Redis store against a real `redis-server`, one module per section: the store on
//! its own (expiry on every key, propagation between instances, loading at start-up), the
//! layer's policy during an outage with two demo servers, scale and faults, and live
//! revocation with claims refresh. The helpers all sections use are here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jwe_session_core::{
    KeyRing, KeyRingHandle, ManualClock, Recorded, Revocation, RevocationStore, Revoked,
    SessionIds, UnixTime,
};
use jwe_session_demo::demo::{app, DemoOptions, RoleTable};
use jwe_session_redis::RedisStore;
use jwe_session_tests::{Client, RedisServer, Server, WsClient, WsEnd};
use redis::AsyncCommands;

mod devices;
mod faults;
mod live;
mod outage;
mod store;

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(super) fn ids(sid: &str) -> SessionIds<'_> {
    SessionIds {
        sid: Some(sid),
        sub: Some("u"),
        started: Some(UnixTime::now().saturating_sub(secs(10)).into()),
        issued: None,
    }
}

pub(super) async fn store(server: &RedisServer) -> RedisStore {
    builder(server).connect().await.unwrap()
}

pub(super) fn builder(server: &RedisServer) -> jwe_session_redis::RedisStoreBuilder {
    RedisStore::builder(server.url())
        .timeout(Duration::from_millis(300))
        .max_backoff(Duration::from_millis(200))
}

/// A store on the same (test) clock as the layer it serves: its mirror judges windows by
/// the clock the layer checks with.
pub(super) async fn store_on(server: &RedisServer, clock: &ManualClock) -> RedisStore {
    builder(server)
        .clock(Arc::new(clock.clone()))
        .connect()
        .await
        .unwrap()
}

/// Waits (bounded) until `cond` holds, waking on every change of the store's mirror.
pub(super) async fn wait_for(
    store: &RedisStore,
    within: Duration,
    cond: impl Fn() -> bool,
) -> bool {
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

pub(super) const T0: u64 = 1_800_000_000;

pub(super) async fn demo_on(
    store: RedisStore,
    ring: &KeyRingHandle,
    clock: &ManualClock,
    fail_open: bool,
) -> Server {
    let mut opts = DemoOptions::new(ring.clone());
    opts.clock = Arc::new(clock.clone());
    opts.store = Some(Arc::new(store));
    let router = if fail_open {
        let layer = jwe_session_demo::demo::layer_builder(opts)
            .dangerous()
            .fail_open_on_store_error()
            .done();
        jwe_session_demo::demo::router(layer.build().unwrap())
    } else {
        app(opts).unwrap()
    };
    Server::start(router).await
}

/// Two demo servers A and B on one key ring and one Redis, and alice logged in on A.
pub(super) struct TwoDemos {
    pub(super) a: Server,
    pub(super) b: Server,
    pub(super) store_b: RedisStore,
    pub(super) on_a: Client,
    /// Alice's cookie, as a thief would copy it.
    pub(super) cookie: String,
}

pub(super) async fn two_demos(server: &RedisServer) -> TwoDemos {
    let ring = KeyRingHandle::new(KeyRing::generate());
    let clock = ManualClock::new(UnixTime::from_secs(T0));
    let store_b = store_on(server, &clock).await;
    let a = demo_on(store_on(server, &clock).await, &ring, &clock, false).await;
    let b = demo_on(store_b.clone(), &ring, &clock, false).await;
    let mut on_a = Client::new(a.url());
    on_a.login("alice").await;
    let cookie = on_a.jar["__Host-session"].clone();
    TwoDemos {
        a,
        b,
        store_b,
        on_a,
        cookie,
    }
}

impl TwoDemos {
    /// Waits (bounded) until B refuses the copied cookie, waking on B's store updates.
    pub(super) async fn wait_refused_on_b(&self, within: Duration, what: &str) {
        let deadline = Instant::now() + within;
        loop {
            let mut thief = Client::new(self.b.url());
            thief
                .jar
                .insert("__Host-session".into(), self.cookie.clone());
            if thief.get("/me").await.status == 401 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "B still accepts the cookie: {what}"
            );
            let mut u = self.store_b.updates();
            let _ = tokio::time::timeout(Duration::from_millis(100), u.changed()).await;
        }
    }
}
