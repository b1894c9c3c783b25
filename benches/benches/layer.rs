//! What the session layer adds to a request, in-process: a bare tower service against the
//! same service behind `SessionLayer` (requests in `src/layer.rs`).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use jwe_session_benches::layer::{header_request, request, HEADER_REQUESTS, REQUESTS};

fn layer_cost(c: &mut Criterion) {
    let mut g = c.benchmark_group("layer");
    for kind in REQUESTS {
        let mut send = request(kind).expect("a known request");
        g.bench_function(kind, |b| b.iter(&mut send));
    }
    for kind in HEADER_REQUESTS {
        let (mut make, mut send) = header_request(kind).expect("a known request");
        g.bench_function(kind, |b| {
            b.iter_batched(&mut make, &mut send, BatchSize::SmallInput)
        });
    }
    g.finish();
}

criterion_group! { name = layer; config = jwe_session_benches::criterion_config(); targets = layer_cost }
criterion_main!(layer);
