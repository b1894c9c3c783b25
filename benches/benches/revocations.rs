//! Revocation stores: how many durable revocations per second the file store commits on
//! this machine (one caller at a time, and many at once sharing commits), and what the
//! per-request check costs in it next to the memory store, both holding 10,000 entries;
//! and what the session registry ("your devices") adds to a login or a renewal (one
//! record written) and what a device list costs (a user with five sessions), per store.
//!
//!   cd benches && cargo bench --bench revocations
//!
//! The file lives in `target/bench-revocations/`, on the disk the tests use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use jwe_session_core::{
    MemoryStore, Revocation, RevocationStore, SessionIds, SessionRecord, UnixMicros, UnixTime,
};
use jwe_session_file::FileStore;

const NOW: u64 = 1_800_000_000;
const ENTRIES: usize = 10_000;

fn file_path() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-revocations");
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let path = dir.join("revocations.redb");
    let _ = std::fs::remove_file(&path);
    path
}

fn session(sid: String) -> Revocation {
    Revocation::Session {
        sid,
        until: UnixTime::from_secs(NOW + 3_600),
    }
}

fn durable_revocations(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a runtime");
    let store = FileStore::open_at(file_path(), UnixTime::from_secs(NOW)).expect("the file opens");
    let next = Arc::new(AtomicU64::new(0));
    let mut g = c.benchmark_group("file_store_revoke");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for in_flight in [1u64, 16, 128] {
        g.throughput(Throughput::Elements(in_flight));
        g.bench_with_input(
            BenchmarkId::new("durable", format!("{in_flight}_in_flight")),
            &in_flight,
            |b, &n| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    rt.block_on(async {
                        for _ in 0..iters {
                            let batch: Vec<_> = (0..n)
                                .map(|_| {
                                    let (store, next) = (store.clone(), Arc::clone(&next));
                                    tokio::spawn(async move {
                                        let i = next.fetch_add(1, Ordering::Relaxed);
                                        store
                                            .revoke(
                                                session(format!("s{i}")),
                                                UnixTime::from_secs(NOW),
                                            )
                                            .await
                                            .expect("revoked");
                                    })
                                })
                                .collect();
                            for t in batch {
                                t.await.expect("joined");
                            }
                        }
                    });
                    start.elapsed()
                });
            },
        );
    }
    g.finish();
}

fn checks(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let now = UnixTime::from_secs(NOW);
    let memory = MemoryStore::new();
    let file = FileStore::open_at(file_path(), now).expect("the file opens");
    rt.block_on(async {
        for i in 0..ENTRIES {
            let r = session(format!("revoked-{i}"));
            memory.revoke(r.clone(), now).await.expect("revoked");
            // Concurrent writes would share commits; here one at a time is fine (setup).
            file.revoke(r, now).await.expect("revoked");
        }
        let sub = Revocation::Subject {
            sub: "alice".into(),
            at: UnixMicros::from_micros(NOW * 1_000_000),
            until: UnixTime::from_secs(NOW + 3_600),
        };
        memory.revoke(sub.clone(), now).await.expect("revoked");
        file.revoke(sub, now).await.expect("revoked");
    });
    let live = SessionIds {
        sid: Some("a-live-session-id-22ch"),
        sub: Some("bob"),
        started: Some(UnixMicros::from_micros(NOW * 1_000_000 + 1)),
        issued: None,
    };
    let revoked = SessionIds {
        sid: Some("revoked-5000"),
        ..live
    };
    let mut g = c.benchmark_group("check_10k_entries");
    for (name, store) in [
        ("memory_store", &memory as &dyn RevocationStore),
        ("file_store", &file as &dyn RevocationStore),
    ] {
        g.bench_function(BenchmarkId::new(name, "not_revoked"), |b| {
            b.iter(|| store.check(std::hint::black_box(live), now))
        });
        g.bench_function(BenchmarkId::new(name, "revoked"), |b| {
            b.iter(|| store.check(std::hint::black_box(revoked), now))
        });
    }
    g.finish();
}

/// The registry's cost where a session changes: one record written (a login or a
/// renewal; durable in the file store) and one user's list read (five sessions).
fn registry(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let now = UnixTime::from_secs(NOW);
    let memory = MemoryStore::new();
    let file = FileStore::open_at(file_path(), now).expect("the file opens");
    let until = UnixTime::from_secs(NOW + 86_400);
    let record = |sub: &str, sid: String| {
        SessionRecord::new(sid, sub, UnixMicros::from_micros(NOW * 1_000_000), until)
            .with_label("Firefox on Linux")
    };
    let mut g = c.benchmark_group("session_registry");
    g.sample_size(20);
    for (name, store) in [
        ("memory_store", &memory as &dyn RevocationStore),
        ("file_store", &file as &dyn RevocationStore),
    ] {
        let reg = store.registry().expect("a registry");
        rt.block_on(async {
            for i in 0..5 {
                reg.record(record("carol", format!("listed-{i}")), now)
                    .await
                    .expect("recorded");
            }
        });
        let next = AtomicU64::new(0);
        g.bench_function(BenchmarkId::new(name, "record_one"), |b| {
            b.iter(|| {
                let i = next.fetch_add(1, Ordering::Relaxed) % 1_000;
                rt.block_on(reg.record(record("alice", format!("s{i}")), now))
                    .expect("recorded")
            })
        });
        g.bench_function(BenchmarkId::new(name, "list_user_of_5"), |b| {
            b.iter(|| {
                rt.block_on(store.sessions_of(std::hint::black_box("carol"), now))
                    .expect("listed")
            })
        });
    }
    g.finish();
}

criterion_group! { name = revocations; config = jwe_session_benches::criterion_config(); targets = durable_revocations, checks, registry }
criterion_main!(revocations);
