//! The file store with real processes: a writer killed with SIGKILL at random moments
//! loses nothing it acknowledged and leaves a file that opens; a second process is refused.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jwe_session_core::{RevocationStore, Revoked, SessionIds, UnixTime};
use jwe_session_file::{FileStore, FileStoreError};
use jwe_session_test_support::scratch;

/// Kill rounds in [`sigkill_at_random_moments_loses_no_acknowledged_revocation`].
const ROUNDS: u32 = 100;

/// xorshift64*: reproducible from the seed the test prints.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// The child, with every whole line it printed collected by a reader thread.
struct Writer {
    child: Child,
    acked: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    stderr: PathBuf,
}

impl Writer {
    fn spawn(file: &Path, prefix: &str, stderr: PathBuf) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_revoke-loop"))
            .arg(file)
            .arg(prefix)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let acked = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&acked);
        let reader = std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut line = String::new();
            // A line cut short by the kill has no newline: it was not acknowledged.
            while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
                if let Some(sid) = line.strip_suffix('\n') {
                    sink.lock().unwrap().push(sid.to_owned());
                }
                line.clear();
            }
        });
        Self {
            child,
            acked,
            reader: Some(reader),
            stderr,
        }
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// SIGKILL, then everything it had acknowledged (lines still in the pipe included).
    fn kill(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let status = self.child.wait().unwrap();
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        assert!(
            status.code().is_none(),
            "the writer exited on its own ({status}): {stderr}"
        );
        std::mem::take(&mut *self.acked.lock().unwrap())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_revocation() {
    let dir = scratch("file-store-crash");
    let file = dir.join("revocations.redb");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed: {seed}");
    let mut rng = Rng(seed);
    let mut acked: Vec<String> = Vec::new();
    let mut killed_while_opening = 0;
    for round in 0..ROUNDS {
        let writer = Writer::spawn(&file, &format!("r{round}"), dir.join("stderr"));
        if rng.below(4) == 0 {
            // Any moment from the start: during open, its integrity check and first commit.
            std::thread::sleep(Duration::from_micros(rng.below(30_000)));
            if writer.acked() == 0 {
                killed_while_opening += 1;
            }
        } else {
            // A moment in the middle of a stream of commits.
            let deadline = Instant::now() + Duration::from_secs(20);
            while writer.acked() == 0 {
                assert!(
                    Instant::now() < deadline,
                    "round {round}: no revocation acknowledged"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            if round % 10 == 1 {
                // A second process while the writer holds the file: refused, by name.
                match FileStore::open(&file) {
                    Err(e @ FileStoreError::InUse { .. }) => {
                        assert!(e.to_string().contains(file.to_str().unwrap()), "{e}");
                    }
                    other => panic!("round {round}: a second open gave {other:?}"),
                }
            }
            std::thread::sleep(Duration::from_micros(rng.below(40_000)));
        }
        acked.extend(writer.kill());

        let store = FileStore::open(&file)
            .unwrap_or_else(|e| panic!("round {round} (seed {seed}): the file did not open: {e}"));
        let now = UnixTime::now();
        for sid in &acked {
            let ids = SessionIds {
                sid: Some(sid),
                sub: None,
                started: Some(now.into()),
                issued: None,
            };
            assert_eq!(
                store.check(ids, now),
                Some(Revoked::Session),
                "round {round} (seed {seed}): acknowledged {sid} is gone"
            );
        }
        assert!(store.stored_len().unwrap() >= acked.len() as u64);
    }
    eprintln!(
        "crash test: {ROUNDS} SIGKILLs ({killed_while_opening} before the first commit), \
         {} acknowledged revocations, all present",
        acked.len()
    );
    assert!(
        acked.len() > ROUNDS as usize,
        "too few writes to mean anything"
    );
}
