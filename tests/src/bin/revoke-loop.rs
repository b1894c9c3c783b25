//! A child process for the file store's crash test: opens the revocation file given as the
//! first argument and revokes sessions named `<prefix>-<task>-<n>` from four tasks at once,
//! printing each sid on its own line once `revoke` has returned (the revocation is on
//! disk). The test kills it with SIGKILL at random moments.
//!
//! Exits 2 with the error on stderr if the file does not open. Stops by itself after 30 s.
#![forbid(unsafe_code)]

use std::io::Write;
use std::time::{Duration, Instant};

use jwe_session_core::{Revocation, RevocationStore, UnixTime};
use jwe_session_file::FileStore;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(prefix)) = (args.next(), args.next()) else {
        eprintln!("usage: revoke-loop FILE PREFIX");
        std::process::exit(2);
    };
    let store = match FileStore::open(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let tasks: Vec<_> = (0..4)
        .map(|task| {
            let (store, prefix) = (store.clone(), prefix.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let sid = format!("{prefix}-{task}-{n}");
                    let now = UnixTime::now();
                    let until = now.saturating_add(Duration::from_secs(3_600));
                    let r = Revocation::Session {
                        sid: sid.clone(),
                        until,
                    };
                    if let Err(e) = store.revoke(r, now).await {
                        eprintln!("{e}");
                        std::process::exit(3);
                    }
                    // One write per line: the parent only counts whole lines.
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(format!("{sid}\n").as_bytes());
                    let _ = out.flush();
                    n += 1;
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}
