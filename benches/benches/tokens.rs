//! Seal and open one claim set, typical (~300 B) and large (+2 KB), with jwe-session and
//! the crates users would pick instead, in one run so the ratios are fair.
//!
//! The implementations are in `src/cases.rs` (shared with the instruction counter).
//! `benches/compare.sh` runs this and prints the table.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use jwe_session_benches::cases::{case, IMPLEMENTATIONS, SIZES};

fn tokens(c: &mut Criterion) {
    for implementation in IMPLEMENTATIONS {
        let mut g = c.benchmark_group(implementation);
        for (size, _) in SIZES {
            let mut case = case(implementation, size).expect("a known case");
            // Token lengths are printed once, for the table.
            println!("token_len,{implementation},{size},{}", case.token_len);
            g.bench_function(BenchmarkId::new("seal", size), |b| b.iter(&mut case.seal));
            g.bench_function(BenchmarkId::new("open", size), |b| b.iter(&mut case.open));
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = jwe_session_benches::criterion_config();
    targets = tokens
}
criterion_main!(benches);
