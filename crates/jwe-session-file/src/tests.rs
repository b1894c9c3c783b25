use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use jwe_session_core::WatchEnd;

fn t(s: u64) -> UnixTime {
    UnixTime::from_secs(s)
}

fn us(m: u64) -> UnixMicros {
    UnixMicros::from_micros(m)
}

/// A fresh directory for one test; removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "jwe-session-file-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ids<'a>(sid: &'a str, sub: &'a str, started: UnixMicros) -> SessionIds<'a> {
    SessionIds {
        sid: Some(sid),
        sub: Some(sub),
        started: Some(started),
        issued: None,
    }
}

const NOW: u64 = 1_800_000_000;

fn session(sid: &str, until: u64) -> Revocation {
    Revocation::Session {
        sid: sid.into(),
        until: t(until),
    }
}

#[tokio::test]
async fn revocations_survive_reopening() {
    let dir = Dir::new("reopen");
    let path = dir.file("r.redb");
    let m = us(NOW * 1_000_000 + 250_000);
    {
        let s = FileStore::open_at(&path, t(NOW)).unwrap();
        assert!(s.is_empty());
        s.revoke(session("s1", NOW + 900), t(NOW)).await.unwrap();
        let sub = Revocation::Subject {
            sub: "alice".into(),
            at: m,
            until: t(NOW + 9_000),
        };
        s.revoke(sub, t(NOW)).await.unwrap();
        let all = Revocation::All {
            at: us(1),
            until: t(NOW + 60),
        };
        s.revoke(all, t(NOW)).await.unwrap();
        assert_eq!(s.stored_len().unwrap(), 3);
    }
    let s = FileStore::open_at(&path, t(NOW + 1)).unwrap();
    assert_eq!(s.len(), 3);
    // What a shared store re-sends from here: the three, whole.
    let mut snapshot = s.snapshot(t(NOW + 1));
    snapshot.sort_by_key(|r| r.until());
    assert_eq!(snapshot.len(), 3);
    assert_eq!(snapshot[1], session("s1", NOW + 900));
    assert_eq!(
        s.snapshot(t(NOW + 60)).len(),
        2,
        "the global one has expired"
    );
    let now = t(NOW + 1);
    assert_eq!(
        s.check(ids("s1", "bob", m.next()), now),
        Some(Revoked::Session)
    );
    assert_eq!(
        s.check(ids("s2", "alice", m), now),
        Some(Revoked::Subject { at: m })
    );
    assert_eq!(s.check(ids("s2", "alice", m.next()), now), None);
    assert_eq!(
        s.check(ids("s3", "carol", us(1)), now),
        Some(Revoked::All { at: us(1) })
    );
    assert_eq!(
        s.check_authoritative(ids("s1", "bob", m.next()), now)
            .await
            .unwrap(),
        Some(Revoked::Session)
    );
}

#[tokio::test]
async fn entries_merge_on_disk_as_in_memory() {
    let dir = Dir::new("merge");
    let path = dir.file("r.redb");
    {
        let s = FileStore::open_at(&path, t(NOW)).unwrap();
        let later = Revocation::Subject {
            sub: "u".into(),
            at: us(NOW * 1_000_000 + 7),
            until: t(NOW + 100),
        };
        let earlier_longer = Revocation::Subject {
            sub: "u".into(),
            at: us(NOW * 1_000_000 + 5),
            until: t(NOW + 900),
        };
        s.revoke(later, t(NOW)).await.unwrap();
        s.revoke(earlier_longer, t(NOW)).await.unwrap();
        s.revoke(session("x", NOW + 50), t(NOW)).await.unwrap();
        s.revoke(session("x", NOW + 500), t(NOW)).await.unwrap();
        s.revoke(session("x", NOW + 20), t(NOW)).await.unwrap();
        assert_eq!(s.stored_len().unwrap(), 2);
    }
    // Past the first `until`s: the merged entries kept the later cut-off and expiry.
    let now = t(NOW + 200);
    let s = FileStore::open_at(&path, now).unwrap();
    assert_eq!(
        s.check(ids("a", "u", us(NOW * 1_000_000 + 7)), now),
        Some(Revoked::Subject {
            at: us(NOW * 1_000_000 + 7)
        })
    );
    assert_eq!(s.check(ids("x", "v", us(1)), now), Some(Revoked::Session));
}

/// 200 revocations a round, for `rounds` rounds; each round's expire before the next when
/// `expire` is set. Returns the file's size after each round.
async fn rounds_of_revocations(path: &Path, rounds: u64, expire: bool) -> Vec<u64> {
    let s = FileStore::open_at(path, t(NOW)).unwrap();
    let mut sizes = Vec::new();
    for round in 0..rounds {
        let now = NOW + round * 1_000;
        let until = if expire { now + 500 } else { NOW + 1_000_000 };
        // Concurrent, so they share a few commits.
        let writes = (0..200).map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let sid = format!("round{round}-session{i}-{}", "x".repeat(40));
                s.revoke(session(&sid, until), t(now)).await.unwrap();
            })
        });
        for w in writes.collect::<Vec<_>>() {
            w.await.unwrap();
        }
        if expire {
            // The round's first commit swept the previous round's entries.
            assert!(s.stored_len().unwrap() <= 200, "round {round}");
        }
        sizes.push(std::fs::metadata(path).unwrap().len());
    }
    sizes
}

#[tokio::test]
async fn expired_entries_leave_the_file_and_it_stops_growing() {
    let dir = Dir::new("prune");
    let (pruned, kept) = (dir.file("pruned.redb"), dir.file("kept.redb"));
    let rounds = 30;
    let sizes = rounds_of_revocations(&pruned, rounds, true).await;
    // The same writes with nothing expiring: what the file would be without pruning.
    let unpruned = rounds_of_revocations(&kept, rounds, false).await;
    let s = FileStore::open_at(&pruned, t(NOW + 100_000)).unwrap();
    assert!(s.is_empty());
    assert_eq!(s.stored_len().unwrap(), 0);
    // Freed pages are reused: the file holds about one round, whatever redb's allocation
    // steps (it doubles a region now and then, and gives it back later), while the
    // unpruned one holds all of them.
    let largest = sizes.iter().max().copied().unwrap_or_default();
    let all = unpruned.last().copied().unwrap_or_default();
    assert!(
        largest * 3 < all,
        "pruned {sizes:?} against unpruned {unpruned:?}"
    );
}

#[tokio::test]
async fn opening_prunes_what_expired_while_closed() {
    let dir = Dir::new("open-prunes");
    let path = dir.file("r.redb");
    {
        let s = FileStore::open_at(&path, t(NOW)).unwrap();
        s.revoke(session("short", NOW + 10), t(NOW)).await.unwrap();
        s.revoke(session("long", NOW + 1_000), t(NOW))
            .await
            .unwrap();
    }
    let s = FileStore::open_at(&path, t(NOW + 10)).unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s.stored_len().unwrap(), 1);
}

/// The refusals themselves are the conformance suite's; here: nothing reaches the disk.
#[tokio::test]
async fn bad_or_expired_revocations_write_nothing() {
    let dir = Dir::new("bad");
    let path = dir.file("r.redb");
    let s = FileStore::open_at(&path, t(NOW)).unwrap();
    let err = s.revoke(session("", NOW + 10), t(NOW)).await;
    assert!(matches!(err, Err(RevokeError::Invalid(_))));
    s.revoke(session("old", NOW), t(NOW)).await.unwrap();
    assert_eq!(s.stored_len().unwrap(), 0);
    assert!(s.is_empty());
}

#[tokio::test]
async fn a_second_open_of_the_same_file_is_refused_until_the_first_closes() {
    let dir = Dir::new("in-use");
    let path = dir.file("r.redb");
    let first = FileStore::open_at(&path, t(NOW)).unwrap();
    first.revoke(session("s", NOW + 100), t(NOW)).await.unwrap();
    let clone = first.clone();
    let err = FileStore::open_at(&path, t(NOW)).unwrap_err();
    assert!(matches!(&err, FileStoreError::InUse { path: p } if *p == path));
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
    assert!(err.to_string().contains("another process"), "{err}");
    drop(first);
    assert!(
        FileStore::open_at(&path, t(NOW)).is_err(),
        "a clone holds it"
    );
    drop(clone);
    let again = FileStore::open_at(&path, t(NOW)).unwrap();
    assert_eq!(again.len(), 1);
}

#[test]
fn files_that_are_not_ours_are_refused_unchanged() {
    let dir = Dir::new("foreign");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("text", b"not a database\n".to_vec()),
        ("zeros", vec![0u8; 64 * 1024]),
        ("ones", vec![0xffu8; 4096]),
    ];
    for (name, bytes) in cases {
        let path = dir.file(name);
        std::fs::write(&path, &bytes).unwrap();
        let err = FileStore::open_at(&path, t(NOW)).unwrap_err();
        assert!(
            matches!(err, FileStoreError::Corrupt { .. }),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name} was changed");
    }

    // Another application's redb database.
    let path = dir.file("other-app.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(TableDefinition::<&str, &str>::new("users"))
            .unwrap()
            .insert("k", "v")
            .unwrap();
        txn.commit().unwrap();
    }
    let err = FileStore::open_at(&path, t(NOW)).unwrap_err();
    assert!(matches!(err, FileStoreError::Foreign { .. }), "{err:?}");
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");

    // A `meta` table of another shape, and a format from the future.
    for (name, meta) in [("odd-meta", None), ("future", Some(FORMAT + 1))] {
        let path = dir.file(name);
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            match meta {
                None => {
                    txn.open_table(TableDefinition::<u64, u64>::new("meta"))
                        .unwrap()
                        .insert(1, 1)
                        .unwrap();
                }
                Some(f) => {
                    txn.open_table(META).unwrap().insert("format", f).unwrap();
                }
            }
            txn.commit().unwrap();
        }
        let err = FileStore::open_at(&path, t(NOW)).unwrap_err();
        match meta {
            None => assert!(matches!(err, FileStoreError::Foreign { .. }), "{err:?}"),
            Some(f) => assert!(
                matches!(err, FileStoreError::UnsupportedFormat { found, .. } if found == f),
                "{err:?}"
            ),
        }
    }

    // Our format, with an entry this version cannot read: refused, not skipped.
    let path = dir.file("bad-entry.redb");
    drop(FileStore::open_at(&path, t(NOW)).unwrap());
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(REVOKED)
            .unwrap()
            .insert((7u8, "x"), (0u64, NOW + 100))
            .unwrap();
        txn.commit().unwrap();
    }
    let err = FileStore::open_at(&path, t(NOW)).unwrap_err();
    assert!(
        matches!(err, FileStoreError::BadEntry { kind: 7, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");

    let missing_dir = dir.file("no/such/dir/r.redb");
    let err = FileStore::open_at(&missing_dir, t(NOW)).unwrap_err();
    assert!(matches!(err, FileStoreError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("no/such/dir"), "{err}");
}

/// Format 1 (before kind 3 had a format of its own) still opens, refresh entries and all,
/// and is marked format 2 at open, so a version that reads only format 1 (and may not know
/// kind 3) refuses it by its format instead of meeting the entry.
#[test]
fn a_format_one_file_opens_and_is_marked_format_two() {
    let dir = Dir::new("format-one");
    let path = dir.file("old.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META).unwrap().insert("format", 1).unwrap();
        let mut revoked = txn.open_table(REVOKED).unwrap();
        revoked.insert((0u8, "s1"), (0u64, NOW + 900)).unwrap();
        revoked
            .insert((3u8, "alice"), (NOW * 1_000_000, NOW + 900))
            .unwrap();
        drop(revoked);
        let mut expiry = txn.open_table(EXPIRY).unwrap();
        expiry.insert((NOW + 900, 0u8, "s1"), ()).unwrap();
        expiry.insert((NOW + 900, 3u8, "alice"), ()).unwrap();
        drop(expiry);
        txn.commit().unwrap();
    }
    let store = FileStore::open_at(&path, t(NOW)).unwrap();
    assert_eq!(
        store.check(ids("s1", "bob", us(1)), t(NOW)),
        Some(Revoked::Session)
    );
    assert!(store
        .refresh_due(
            SessionIds {
                sid: Some("s2"),
                sub: Some("alice"),
                started: Some(us(1)),
                issued: Some(us(1)),
            },
            t(NOW)
        )
        .is_some());
    drop(store);
    let db = redb::Database::open(&path).unwrap();
    let txn = db.begin_read().unwrap();
    let format = txn
        .open_table(META)
        .unwrap()
        .get("format")
        .unwrap()
        .unwrap();
    assert_eq!(format.value(), FORMAT);
    assert_eq!(FORMAT, 2);
}

/// The bytes of a closed revocation file holding 50 session revocations.
async fn fifty_revocations(dir: &Dir) -> Vec<u8> {
    let path = dir.file("r.redb");
    {
        let s = FileStore::open_at(&path, t(NOW)).unwrap();
        for i in 0..50 {
            s.revoke(session(&format!("s{i}"), NOW + 1_000), t(NOW))
                .await
                .unwrap();
        }
    }
    std::fs::read(&path).unwrap()
}

/// Damage anywhere in a real file: the open either refuses it (naming the file) or, when
/// the byte was in space redb does not use, opens with every revocation. Never a panic and
/// never a silently shorter list.
#[tokio::test]
async fn damaged_files_are_refused_or_complete_never_partial() {
    let dir = Dir::new("flip");
    let good = fifty_revocations(&dir).await;
    let copy = dir.file("copy.redb");
    let (mut refused, mut opened) = (0, 0);
    // The first page (header, commit slots) densely, the rest sampled.
    let positions: Vec<usize> = (0..good.len().min(4_096))
        .step_by(16)
        .chain((4_096..good.len()).step_by(509))
        .collect();
    for &i in &positions {
        let mut bad = good.clone();
        bad[i] ^= 0x5a;
        std::fs::write(&copy, &bad).unwrap();
        let opened_store = std::panic::catch_unwind(|| FileStore::open_at(&copy, t(NOW)))
            .unwrap_or_else(|_| {
                panic!("byte {i} of {}: the open panicked", good.len());
            });
        match opened_store {
            Ok(s) => {
                opened += 1;
                assert_eq!(s.len(), 50, "byte {i}: opened with entries missing");
            }
            Err(e) => {
                refused += 1;
                assert!(e.to_string().contains(copy.to_str().unwrap()), "{e}");
            }
        }
    }
    assert!(
        refused > 0 && opened > 0,
        "{refused} refused, {opened} opened"
    );
}

/// Issue 25, item 9: a file cut short (below one page, or anywhere) gets the same
/// variant and message as every other damage, never a bare I/O error ("failed to fill
/// whole buffer"), and never opens with entries missing.
#[tokio::test]
async fn a_truncated_file_is_damaged_like_any_other() {
    let dir = Dir::new("truncated");
    let good = fifty_revocations(&dir).await;
    let copy = dir.file("cut.redb");
    let below_a_page = [1, 7, 64, 100, 511, 512, 1_000, 2_048, 4_095];
    let anywhere = (4_096..good.len()).step_by(1_021);
    for len in below_a_page.into_iter().chain(anywhere) {
        std::fs::write(&copy, &good[..len]).unwrap();
        match FileStore::open_at(&copy, t(NOW)) {
            Ok(s) => {
                assert!(len >= 4_096, "{len} bytes opened");
                assert_eq!(s.len(), 50, "{len} bytes: opened with entries missing");
            }
            Err(e) => {
                assert!(
                    matches!(e, FileStoreError::Corrupt { .. }),
                    "{len} bytes: {e:?}"
                );
                let text = e.to_string();
                assert!(text.contains("is damaged"), "{len} bytes: {text}");
                assert!(text.contains(copy.to_str().unwrap()), "{text}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_revocations_share_commits_and_all_land() {
    let dir = Dir::new("concurrent");
    let path = dir.file("r.redb");
    let s = FileStore::open_at(&path, t(NOW)).unwrap();
    let mut tasks = Vec::new();
    for task in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..20 {
                let sid = format!("t{task}-{i}");
                s.revoke(session(&sid, NOW + 600), t(NOW)).await.unwrap();
                assert_eq!(
                    s.check(ids(&sid, "u", us(1)), t(NOW)),
                    Some(Revoked::Session)
                );
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(s.stored_len().unwrap(), 320);
    let debug = format!("{s:?}");
    assert!(debug.contains("entries: 320"), "{debug}");
    drop(s);
    let s = FileStore::open_at(&path, t(NOW)).unwrap();
    assert_eq!(s.len(), 320);
}

/// A claims refresh is durable like the other scopes, and a watch completes when a
/// revocation lands here; neither kind of entry disturbs the other.
#[tokio::test]
async fn refreshes_survive_reopening_and_watches_complete() {
    let dir = Dir::new("refresh");
    let path = dir.file("r.redb");
    let m = us(NOW * 1_000_000 + 7);
    let refresh = Revocation::Tokens {
        sub: "alice".into(),
        at: m,
        until: t(NOW + 960),
    };
    let token = |issued| SessionIds {
        issued: Some(issued),
        ..ids("s1", "alice", us(1))
    };
    {
        let s = FileStore::open_at(&path, t(NOW)).unwrap();
        let covered = s.watch(token(m), t(NOW)).unwrap();
        let watch = s.watch(token(m.next()), t(NOW)).unwrap();
        s.revoke(refresh.clone(), t(NOW)).await.unwrap();
        assert!(s.refresh_due(token(m), t(NOW)).is_some());
        assert_eq!(covered.ended(), Some(WatchEnd::Refreshed { at: m }));
        assert_eq!(covered.revoked(), None, "a refresh ends no session");
        assert_eq!(watch.ended(), None, "issued after the refresh");
        s.revoke(session("s1", NOW + 900), t(NOW)).await.unwrap();
        assert_eq!(watch.await, WatchEnd::Revoked(Revoked::Session));
    }
    let s = FileStore::open_at(&path, t(NOW + 1)).unwrap();
    assert!(s.refresh_due(token(m), t(NOW + 1)).is_some());
    assert!(s.refresh_due(token(m.next()), t(NOW + 1)).is_none());
    assert!(s.snapshot(t(NOW + 1)).contains(&refresh));
    // Still revoked after the restart: a new watch completes at once.
    let again = s.watch(ids("s1", "alice", us(1)), t(NOW + 1)).unwrap();
    assert_eq!(again.revoked(), Some(Revoked::Session));
}

mod from_outside {
    use std::time::Duration;

    use super::*;
    use crate::spool::spool_dir;

    const WAIT: Duration = Duration::from_secs(10);

    fn far() -> u64 {
        SystemClock.now().as_secs() + 3_600
    }

    fn now_us() -> UnixMicros {
        SystemClock.now_micros()
    }

    #[test]
    fn a_file_nobody_holds_is_written_directly() {
        let dir = Dir::new("outside-direct");
        let path = dir.file("revocations.redb");
        drop(FileStore::open(&path).unwrap());
        let until = far();
        let got = deliver(&path, &[session("s1", until)], WAIT, false).unwrap();
        assert_eq!(got, Delivery::Written { applied: 1 });
        let store = FileStore::open(&path).unwrap();
        assert_eq!(
            store.check(ids("s1", "alice", now_us()), SystemClock.now()),
            Some(Revoked::Session)
        );
        // Again: the same revocation, still one entry.
        drop(store);
        let got = deliver(&path, &[session("s1", until)], WAIT, false).unwrap();
        assert_eq!(got, Delivery::Written { applied: 1 });
        assert_eq!(FileStore::open(&path).unwrap().stored_len().unwrap(), 1);
    }

    #[test]
    fn a_held_file_takes_revocations_through_its_spool_durably() {
        let dir = Dir::new("outside-spooled");
        let path = dir.file("revocations.redb");
        let store = FileStore::open(&path).unwrap();
        let now = SystemClock.now_micros();
        let revs = [
            session("s1", far()),
            Revocation::Subject {
                sub: "bob".into(),
                at: now,
                until: t(far()),
            },
        ];
        let got = deliver(&path, &revs, WAIT, false).unwrap();
        assert_eq!(got, Delivery::Spooled { applied: 2 });
        // In force in the running store when `deliver` returns...
        let clock = SystemClock.now();
        assert_eq!(
            store.check(ids("s1", "alice", now), clock),
            Some(Revoked::Session)
        );
        assert!(store.check(ids("s2", "bob", now), clock).is_some());
        assert_eq!(store.check(ids("s2", "alice", now), clock), None);
        // ...and on disk: a restart keeps it.
        assert_eq!(store.stored_len().unwrap(), 2);
        drop(store);
        let store = FileStore::open(&path).unwrap();
        assert_eq!(
            store.check(ids("s1", "alice", now), clock),
            Some(Revoked::Session)
        );
        // The spool is left empty.
        let left: Vec<_> = std::fs::read_dir(spool_dir(&path)).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    /// The spool thread lets go of the store before its answer is visible, so a service
    /// that drops its last handle once a revocation is confirmed has the file closed
    /// (CI once reopened it while the spool thread still held it: `InUse`).
    #[test]
    fn a_store_dropped_once_answered_is_closed() {
        let dir = Dir::new("outside-dropped");
        let path = dir.file("revocations.redb");
        for round in 0..20 {
            let store = FileStore::open(&path).unwrap();
            let rev = session(&format!("s{round}"), far());
            let got = deliver(&path, &[rev], WAIT, false).unwrap();
            assert_eq!(got, Delivery::Spooled { applied: 1 });
            drop(store);
            let reopened = FileStore::open(&path);
            assert!(reopened.is_ok(), "round {round}: {reopened:?}");
        }
        assert_eq!(FileStore::open(&path).unwrap().stored_len().unwrap(), 20);
    }

    #[test]
    fn a_missing_file_is_refused_and_not_created() {
        let dir = Dir::new("outside-missing");
        let path = dir.file("typo.redb");
        let e = deliver(&path, &[session("s1", far())], WAIT, false).unwrap_err();
        assert!(matches!(e, DeliverError::NoFile { .. }), "{e:?}");
        assert!(e.to_string().contains("typo.redb"), "{e}");
        assert!(!path.exists());
        // With `create`, it is made and holds the revocation.
        let got = deliver(&path, &[session("s1", far())], WAIT, true).unwrap();
        assert_eq!(got, Delivery::Written { applied: 1 });
        assert_eq!(FileStore::open(&path).unwrap().stored_len().unwrap(), 1);
    }

    #[test]
    fn a_malformed_revocation_changes_nothing() {
        let dir = Dir::new("outside-malformed");
        let path = dir.file("revocations.redb");
        let store = FileStore::open(&path).unwrap();
        let e = deliver(
            &path,
            &[session("ok", far()), session("", far())],
            WAIT,
            false,
        )
        .unwrap_err();
        assert!(matches!(e, DeliverError::Invalid { .. }), "{e:?}");
        assert_eq!(store.stored_len().unwrap(), 0);
    }

    #[test]
    fn a_malformed_request_is_refused_whole() {
        let dir = Dir::new("outside-bad-request");
        let path = dir.file("revocations.redb");
        let store = FileStore::open(&path).unwrap();
        let spool = spool_dir(&path);
        let bad = [
            r#"{"v":1,"revocations":[{"kind":0,"id":"a","at_us":0,"until":9999999999},{"kind":9,"id":"b","at_us":0,"until":9999999999}]}"#,
            r#"{"v":2,"revocations":[]}"#,
            "not json",
            r#"{"v":1,"revocations":[{"kind":0,"id":"","at_us":0,"until":9999999999}]}"#,
        ];
        for (i, body) in bad.iter().enumerate() {
            std::fs::write(spool.join(format!("{i}.req")), body).unwrap();
        }
        let deadline = std::time::Instant::now() + WAIT;
        while (0..bad.len()).any(|i| !spool.join(format!("{i}.refused")).exists()) {
            assert!(std::time::Instant::now() < deadline, "no answer");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(store.stored_len().unwrap(), 0);
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn a_store_that_refuses_the_spool_says_why() {
        let dir = Dir::new("outside-refused");
        let path = dir.file("queue.redb");
        let store = FileStore::open(&path).unwrap();
        store.refuse_spooled("a queue");
        let e = deliver(&path, &[session("s1", far())], WAIT, false).unwrap_err();
        assert!(matches!(e, DeliverError::Refused { .. }), "{e:?}");
        assert!(e.to_string().contains("a queue"), "{e}");
        assert_eq!(store.stored_len().unwrap(), 0);
    }

    #[test]
    fn a_holder_that_never_answers_gets_the_request_withdrawn() {
        let dir = Dir::new("outside-silent");
        let path = dir.file("revocations.redb");
        drop(FileStore::open(&path).unwrap());
        // The lock held by something that does not serve the spool.
        let db = redb::Database::open(&path).unwrap();
        let e = deliver(
            &path,
            &[session("s1", far())],
            Duration::from_millis(300),
            false,
        )
        .unwrap_err();
        assert!(matches!(e, DeliverError::NotTaken { .. }), "{e:?}");
        let left: Vec<_> = std::fs::read_dir(spool_dir(&path)).unwrap().collect();
        assert!(left.is_empty(), "withdrawn: {left:?}");
        // Without a spool folder at all, it says so at once.
        std::fs::remove_dir(spool_dir(&path)).unwrap();
        let e = deliver(&path, &[session("s1", far())], WAIT, false).unwrap_err();
        assert!(matches!(e, DeliverError::NoSpool { .. }), "{e:?}");
        drop(db);
    }
}

/// The registry is on disk: records survive a reopen, a revoked one leaves the list, and
/// the blocking listing (the spool's) agrees with the async one.
#[tokio::test]
async fn session_records_survive_a_reopen() {
    let dir = Dir::new("registry-reopen");
    let path = dir.file("r.redb");
    let now = t(1_000);
    {
        let store = FileStore::open_at(&path, now).unwrap();
        let reg = store.registry().unwrap();
        for (sid, start) in [("s1", 10), ("s2", 20)] {
            let r = SessionRecord::new(sid, "alice", us(start), t(5_000)).with_label("Phone");
            reg.record(r, now).await.unwrap();
        }
        assert_eq!(store.live_sessions_now("alice", now).unwrap().len(), 2);
    }
    let store = FileStore::open_at(&path, now).unwrap();
    let live = store.sessions_of("alice", now).await.unwrap();
    assert_eq!(live.len(), 2);
    assert_eq!(live[0].label.as_deref(), Some("Phone"));
    store
        .revoke(
            Revocation::Session {
                sid: "s1".into(),
                until: t(4_000),
            },
            now,
        )
        .await
        .unwrap();
    let blocking = std::thread::scope(|s| {
        s.spawn(|| store.live_sessions_now("alice", now).unwrap())
            .join()
            .unwrap()
    });
    assert_eq!(blocking.len(), 1);
    assert_eq!(blocking, store.sessions_of("alice", now).await.unwrap());
    // Past `until`: gone at the next open.
    drop(store);
    let store = FileStore::open_at(&path, t(5_000)).unwrap();
    assert!(store
        .live_sessions_now("alice", t(5_000))
        .unwrap()
        .is_empty());
}
