//! Runs one operation N times, for `benches/instructions.sh` to count under callgrind:
//! `count IMPLEMENTATION SIZE seal|open N` or `count layer REQUEST N`.

use std::hint::black_box;

use jwe_session_benches::{cases, layer};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut op: Box<dyn FnMut()> = match args.as_slice() {
        [l, kind, _] if l == "layer" => {
            let mut send = layer::request(kind).expect("a known request");
            Box::new(move || drop(black_box(send())))
        }
        [implementation, size, op, _] => {
            let mut case =
                cases::case(implementation, size).expect("a known implementation and size");
            match op.as_str() {
                "seal" => Box::new(move || {
                    black_box((case.seal)());
                }),
                "open" => Box::new(move || {
                    black_box((case.open)());
                }),
                _ => panic!("op is seal or open"),
            }
        }
        _ => {
            eprintln!("usage: count IMPLEMENTATION SIZE seal|open N | count layer REQUEST N");
            std::process::exit(2);
        }
    };
    let n: u64 = args
        .last()
        .and_then(|n| n.parse().ok())
        .expect("N is a count");
    for _ in 0..n {
        op();
    }
}
