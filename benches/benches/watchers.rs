//! Live revocation: what idle session watches cost (memory, registration) and how long a
//! global revocation takes to reach 10,000 of them, each awaited by its own task as a
//! WebSocket handler would.
//!
//!   cd benches && cargo bench --bench watchers
//!
//! Memory is printed once per run (resident set growth over 100,000 watches, per watch):
//! criterion times, it does not weigh.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use jwe_session_core::{
    MemoryStore, Revocation, RevocationStore, RevocationWatch, SessionIds, UnixMicros, UnixTime,
};

const NOW: u64 = 1_800_000_000;
const WATCHERS: usize = 10_000;

fn watch(store: &MemoryStore, i: usize) -> RevocationWatch {
    let sid = format!("sid-{i:016}");
    let sub = format!("user-{}", i % 1_000);
    let ids = SessionIds {
        sid: Some(&sid),
        sub: Some(&sub),
        started: Some(UnixMicros::from(UnixTime::from_secs(NOW - 60))),
        issued: None,
    };
    store
        .watch(ids, UnixTime::from_secs(NOW))
        .expect("the memory store watches")
}

/// Resident set size, from /proc (Linux); 0 elsewhere.
fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn report_memory() {
    const N: usize = 100_000;
    let store = MemoryStore::new();
    let before = rss_bytes();
    let held: Vec<_> = (0..N).map(|i| watch(&store, i)).collect();
    let after = rss_bytes();
    println!(
        "memory: {N} idle watches grew the resident set by {} KiB, {} bytes per watch \
         ({} KiB for {WATCHERS})",
        (after.saturating_sub(before)) / 1024,
        after.saturating_sub(before) / N,
        after.saturating_sub(before) / N * WATCHERS / 1024,
    );
    drop(held);
}

fn watchers(c: &mut Criterion) {
    report_memory();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a runtime");
    let mut g = c.benchmark_group("watchers_10k");
    g.sample_size(20).measurement_time(Duration::from_secs(5));

    g.bench_function("register", |b| {
        b.iter_batched(
            MemoryStore::new,
            |store| {
                let held: Vec<_> = (0..WATCHERS).map(|i| watch(&store, i)).collect();
                (store, held)
            },
            BatchSize::LargeInput,
        );
    });

    // A logout with 10,000 other sessions watched: the index finds the one.
    g.bench_function("logout_one_among_10k", |b| {
        let store = MemoryStore::new();
        let held: Vec<_> = (0..WATCHERS).map(|i| watch(&store, i)).collect();
        let mut n = 0u64;
        b.iter(|| {
            n += 1;
            let r = Revocation::Session {
                sid: format!("not-watched-{n}"),
                until: UnixTime::from_secs(NOW + 3_600),
            };
            store.apply(&r, UnixTime::from_secs(NOW)).expect("applied")
        });
        drop(held);
    });

    // Emergency: every watch completes, and every task awaiting one wakes and finishes.
    g.bench_function("global_revocation_wakes_all", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let store = Arc::new(MemoryStore::new());
                let tasks: Vec<_> = (0..WATCHERS).map(|i| rt.spawn(watch(&store, i))).collect();
                // Let every task poll its watch once (registering its waker).
                rt.block_on(async { tokio::time::sleep(Duration::from_millis(20)).await });
                let start = Instant::now();
                let all = Revocation::All {
                    at: UnixMicros::from(UnixTime::from_secs(NOW)),
                    until: UnixTime::from_secs(NOW + 3_600),
                };
                store
                    .apply(&all, UnixTime::from_secs(NOW))
                    .expect("applied");
                rt.block_on(async {
                    for t in tasks {
                        t.await.expect("the task ends");
                    }
                });
                total += start.elapsed();
            }
            total
        });
    });
    g.finish();
}

criterion_group!(benches, watchers);
criterion_main!(benches);
