//! A durable embedded [`RevocationStore`] for jwe-session: logouts that survive restarts
//! and crashes, on one machine, with no server to run.
//!
//! ```
//! use jwe_session_core::{Revocation, RevocationStore, SessionIds, UnixTime};
//! use jwe_session_file::FileStore;
//!
//! # let dir = std::env::temp_dir().join(format!("jwe-session-file-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # let path = dir.join("revocations.redb");
//! # let _ = std::fs::remove_file(&path);
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let now = UnixTime::now();
//! let store = FileStore::open(&path)?;
//! let logout = Revocation::Session { sid: "s1".into(), until: UnixTime::from_secs(now.as_secs() + 3_600) };
//! store.revoke(logout, now).await?; // on disk when this returns
//! drop(store);
//!
//! let reopened = FileStore::open(&path)?; // a restart
//! let ids = SessionIds { sid: Some("s1"), sub: Some("alice"), started: Some(now.into()), issued: None };
//! assert!(reopened.check(ids, now).is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How it works
//!
//! - The file is a [redb](https://docs.rs/redb) database: pure Rust, ACID, copy-on-write
//!   B-trees whose commits are checksummed, so a crash (or `SIGKILL`) at any moment leaves
//!   the last committed state. redb was chosen over SQLite (C code and a build step) and
//!   sled (unmaintained, and not crash-safe by its own account).
//! - [`revoke`](RevocationStore::revoke) applies the revocation in memory at once, hands
//!   it to a writer thread, and returns once that thread has committed it with `fsync`
//!   (redb's `Durability::Immediate`, two-phase). Concurrent revocations share one commit,
//!   so throughput grows with concurrency while each caller still waits for its own.
//! - [`check`](RevocationStore::check), the per-request check, is a memory lookup (a
//!   [`MemoryStore`] loaded at open and written through); nothing on the request path
//!   touches the disk.
//! - Every entry carries its `until`; expired entries are dropped from memory and, in the
//!   same commits as new revocations (at most once a minute) and at every open, from the
//!   file, through an index by expiry. redb reuses the freed pages, so the file stays as
//!   large as the revocations that still matter.
//!
//! # Layout (format 2)
//!
//! Five tables:
//! - `meta`: `"format"` → `2`. A redb file without it is not ours and is refused; a format
//!   this version does not read is refused naming it ([`FileStoreError::UnsupportedFormat`]).
//!   Format 1 (before kind 3) is read and marked 2 at open.
//! - `revoked`: `(kind, id)` → `(at_us, until)`, the kind a [`Scope::code`]: 0 = session
//!   (`id` = sid, `at_us` = 0), 1 = subject (`id` = sub), 2 = everyone (`id` = ""),
//!   3 = claims refresh (`id` = sub). Entries merge with [`Revocation::absorb`], the rule
//!   every store shares.
//! - `expiry`: `(until, kind, id)` → `()`, the pruning index.
//! - `devices`: `(sub, sid)` → a session registry record, the JSON of
//!   [`SessionRecord::to_json`] ("your devices": `SessionHandle::devices` in `jwe-session`).
//!   Written where a session starts, renews, moves to a new `sid` or ends, with the same
//!   durability as a revocation; read from the file when a list is asked for.
//! - `device_expiry`: `(until, sub, sid)` → `()`, its pruning index.
//!
//! The registry tables came without a new format number: a version that does not know
//! them never opens them, and the revocations they sit beside mean what they meant.
//!
//! An entry of a kind this version does not know is refused, never skipped: the file does
//! not open ([`FileStoreError::BadEntry`]), since skipping it would forget a logout (the
//! project's one policy, in [`Scope`]'s module).
//!
//! # One process
//!
//! The store holds an exclusive lock on the file while it is open. A second process (or a
//! second `FileStore` in this one) gets [`FileStoreError::InUse`] naming the path. Several
//! instances of a service need a shared store such as `jwe-session-redis`.
//!
//! # Damaged files
//!
//! The file's integrity is checked at every open (each page's checksum). A file that is not
//! a redb database, is damaged, is empty, or belongs to something else is an error naming
//! the path ([`FileStoreError::Corrupt`], [`FileStoreError::Foreign`]), never an empty
//! store and never a panic: a service should not start believing that nobody ever logged
//! out. Such a file is left as it was.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use jwe_session_core::{
    BoxFuture, Clock, MemoryStore, Recorded, RegistryError, Revocation, RevocationKey,
    RevocationStore, RevocationWatch, RevokeError, Revoked, Scope, SessionIds, SessionRecord,
    SessionRegistry, SystemClock, UnixMicros, UnixTime, WatchUnsupported,
};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use tokio::sync::oneshot;

/// The file format this version writes. Format 2 added kind 3 (claims refresh); this
/// version also reads format 1 and marks such a file 2 when it opens it, so that a version
/// that does not know kind 3 refuses the file by its format instead of meeting the entry.
pub const FORMAT: u64 = 2;

/// Every format this version reads.
const READS: [u64; 2] = [1, 2];

const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const REVOKED: TableDefinition<'_, (u8, &str), (u64, u64)> = TableDefinition::new("revoked");
const EXPIRY: TableDefinition<'_, (u64, u8, &str), ()> = TableDefinition::new("expiry");
/// The session registry: `(sub, sid)` → the record's JSON ([`SessionRecord::to_json`]).
const DEVICES: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("devices");
/// The registry's pruning index: `(until, sub, sid)` → `()`.
const DEVICE_EXPIRY: TableDefinition<'_, (u64, &str, &str), ()> =
    TableDefinition::new("device_expiry");

/// How often (in seconds of the callers' clock) commits also sweep expired entries.
const PRUNE_EVERY_SECS: u64 = 60;

/// The most revocations one commit carries.
const MAX_BATCH: usize = 1_024;

/// redb's page cache. Everything the hot path needs is in memory anyway.
const CACHE_BYTES: usize = 8 << 20;

/// Why a [`FileStore`] could not be opened, or a revocation not saved. Every message names
/// the file and what to do. `Debug` reads as `Display` with the cause and the variant, so
/// `?` in `main` prints a sentence, not a struct.
#[non_exhaustive]
pub enum FileStoreError {
    /// Another process (or another `FileStore` in this one) has the file open.
    InUse {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a redb database, is empty, or is damaged.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What redb found, if it got that far.
        source: Option<redb::Error>,
    },
    /// An entry of the file cannot be read as a revocation (an unknown kind, an empty id):
    /// refused rather than skipped, since skipping would forget a logout.
    BadEntry {
        /// The file.
        path: PathBuf,
        /// The entry's kind.
        kind: u8,
    },
    /// A redb database, but not a jwe-session revocation file.
    Foreign {
        /// The file.
        path: PathBuf,
    },
    /// A revocation file in a format this version does not read (written by a newer one).
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// Its format number.
        found: u64,
    },
    /// The file could not be created or read (a missing directory, permissions).
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A commit failed (say, the disk is full): what it carried holds in this process's
    /// memory but is not on disk.
    Write {
        /// The file.
        path: PathBuf,
        /// redb's error.
        source: Arc<redb::Error>,
    },
    /// The store's writer thread has stopped; nothing more can be saved.
    Closed {
        /// The file.
        path: PathBuf,
    },
    /// A revocation is not well-formed (an empty id, say); nothing was saved.
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for FileStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InUse { path } => write!(
                f,
                "revocation file {} is open in another process (a file store serves one \
                 process; several instances need a shared store such as Redis; to revoke in \
                 it from outside, use `jwe-session revoke --file`)",
                path.display()
            ),
            Self::Corrupt { path, source } => {
                write!(
                    f,
                    "revocation file {} is damaged or not a revocation store",
                    path.display()
                )?;
                if source.is_none() {
                    f.write_str(" (the file is empty)")?;
                }
                f.write_str(
                    "; not starting with an empty list of logouts: restore the file, or \
                     delete it to forget every revocation",
                )
            }
            Self::BadEntry { path, kind } => write!(
                f,
                "revocation file {} holds an entry this version cannot read (kind {kind}); \
                 not starting without it",
                path.display()
            ),
            Self::Foreign { path } => write!(
                f,
                "{} is a redb database but not a jwe-session revocation file; refusing to use it",
                path.display()
            ),
            Self::UnsupportedFormat { path, found } => write!(
                f,
                "revocation file {} has format {found}; this version reads formats 1 to \
                 {FORMAT} (was it written by a newer version?)",
                path.display()
            ),
            Self::Io { path, .. } => write!(
                f,
                "revocation file {} could not be created or read (does its folder exist, and \
                 may this user write it?)",
                path.display()
            ),
            Self::Write { path, .. } => write!(
                f,
                "revocation not saved to {}; it holds in this process until it restarts",
                path.display()
            ),
            Self::Closed { path } => write!(
                f,
                "revocation file {}: the store's writer has stopped",
                path.display()
            ),
            Self::Invalid { path, reason } => {
                write!(f, "revocation not saved to {}: {reason}", path.display())
            }
        }
    }
}

impl fmt::Debug for FileStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variant = match self {
            Self::InUse { .. } => "FileStoreError::InUse",
            Self::Corrupt { .. } => "FileStoreError::Corrupt",
            Self::BadEntry { .. } => "FileStoreError::BadEntry",
            Self::Foreign { .. } => "FileStoreError::Foreign",
            Self::UnsupportedFormat { .. } => "FileStoreError::UnsupportedFormat",
            Self::Io { .. } => "FileStoreError::Io",
            Self::Write { .. } => "FileStoreError::Write",
            Self::Closed { .. } => "FileStoreError::Closed",
            Self::Invalid { .. } => "FileStoreError::Invalid",
        };
        jwe_session_core::debug_report(self, variant, f)
    }
}

impl std::error::Error for FileStoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Corrupt {
                source: Some(e), ..
            } => Some(e),
            Self::Io { source, .. } => Some(source),
            Self::Write { source, .. } => Some(&**source),
            _ => None,
        }
    }
}

impl From<FileStoreError> for RevokeError {
    fn from(e: FileStoreError) -> Self {
        RevokeError::Unavailable {
            source: Box::new(e),
        }
    }
}

/// A [`RevocationStore`] in a file: durable before [`revoke`](RevocationStore::revoke)
/// returns, checked from memory. Cheap to clone; the file is closed (and its lock released)
/// when the last clone is dropped.
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    memory: MemoryStore,
    db: Arc<redb::Database>,
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    /// Dropped with the store: the spool thread then stops.
    spool: OnceLock<mpsc::Sender<()>>,
    /// Why spooled requests are refused, when they are (a shared store's queue).
    spool_refusal: OnceLock<&'static str>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the writer after what it already has; joining it means
        // the file is closed once the last handle is gone.
        self.jobs.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.inner.path)
            .field("entries", &self.inner.memory.len())
            .finish_non_exhaustive()
    }
}

/// One request to the writer, committed at `now`; `done` hears when it is committed.
struct Job {
    work: Work,
    now: UnixTime,
    done: Reply,
}

/// What a [`Job`] asks of the writer.
enum Work {
    /// Save a revocation that is in force.
    Revoke(Revocation),
    /// Sweep what expired, in this commit.
    Prune,
    /// Save a session's registry record, merged into the one kept (boxed: jobs stay small).
    Record(Box<SessionRecord>),
    /// Drop a session's registry record.
    Forget {
        /// Whose.
        sub: String,
        /// Which.
        sid: String,
    },
}

/// Where the writer answers: an async caller, or a thread that blocks (the spool, and
/// tools writing a file no process holds), which must not need a runtime.
enum Reply {
    Async(oneshot::Sender<Result<(), FileStoreError>>),
    Blocking(mpsc::Sender<Result<(), FileStoreError>>),
}

impl Reply {
    fn send(self, answer: Result<(), FileStoreError>) {
        let _ = match self {
            Self::Async(tx) => tx.send(answer).map_err(|_| ()),
            Self::Blocking(tx) => tx.send(answer).map_err(|_| ()),
        };
    }
}

impl Inner {
    /// Applies `revocations` at `now` (in force here at once) and waits, blocking the
    /// thread, until the writer has committed them; how many were in force. Every one is
    /// checked before any is applied.
    fn apply_blocking(
        &self,
        revocations: Vec<Revocation>,
        now: UnixTime,
    ) -> Result<usize, FileStoreError> {
        let closed = || FileStoreError::Closed {
            path: self.path.clone(),
        };
        if let Some(reason) = revocations
            .iter()
            .find_map(|r| r.check().err().map(|e| e.reason()))
        {
            return Err(FileStoreError::Invalid {
                path: self.path.clone(),
                reason,
            });
        }
        let jobs = self.jobs.as_ref().ok_or_else(closed)?;
        let (tx, rx) = mpsc::channel();
        let mut sent = 0;
        for r in revocations {
            if !matches!(self.memory.apply(&r, now), Ok(true)) {
                continue; // already in force here, or expired: nothing to save
            }
            let job = Job {
                work: Work::Revoke(r),
                now,
                done: Reply::Blocking(tx.clone()),
            };
            jobs.send(job).map_err(|_| closed())?;
            sent += 1;
        }
        for _ in 0..sent {
            rx.recv().map_err(|_| closed())??;
        }
        Ok(sent)
    }
}

impl FileStore {
    /// Opens the revocation file at `path`, creating it if there is none, and loads what is
    /// still in force into memory (by the system clock).
    ///
    /// # Errors
    /// [`FileStoreError`]: the file is in use, damaged, someone else's, of a newer format,
    /// or cannot be created. Nothing is changed in a file that is refused.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, FileStoreError> {
        Self::open_at(path, SystemClock.now())
    }

    /// [`open`](Self::open) with the time given: entries whose `until` is not after `now`
    /// are pruned instead of loaded.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_at(path: impl AsRef<Path>, now: UnixTime) -> Result<Self, FileStoreError> {
        let path = path.as_ref().to_path_buf();
        let db = open_db(&path)?;
        let memory = MemoryStore::new();
        let loaded = load(&db, &memory, now).map_err(|e| match e {
            Loaded::Db(e) => corrupt(&path, e),
            Loaded::BadEntry(kind) => FileStoreError::BadEntry {
                path: path.clone(),
                kind,
            },
        })?;
        let db = Arc::new(db);
        // Expired entries go at once, so a file left alone for a week does not keep them.
        let mut next_prune = UnixTime::EPOCH;
        commit(&db, &[], &[], now, &mut next_prune).map_err(|e| write_error(&path, e))?;
        let (jobs, rx) = mpsc::channel();
        let writer = {
            let (db, file) = (Arc::clone(&db), path.clone());
            std::thread::Builder::new()
                .name("jwe-session-file".into())
                .spawn(move || writer_loop(&db, &file, &rx, next_prune))
                .map_err(|source| FileStoreError::Io {
                    path: path.clone(),
                    source,
                })?
        };
        tracing::info!(path = %path.display(), entries = loaded, "revocation file opened");
        let inner = Arc::new(Inner {
            path,
            memory,
            db,
            jobs: Some(jobs),
            writer: Some(writer),
            spool: OnceLock::new(),
            spool_refusal: OnceLock::new(),
        });
        let stop = spool::serve(&inner.path, Arc::downgrade(&inner))?;
        let _ = inner.spool.set(stop);
        Ok(Self { inner })
    }

    /// Makes this store refuse revocations spooled from outside (see [`spool`]), with
    /// `reason` as the answer. For a file that is not the service's revocation list but,
    /// say, a shared store's local queue, where a revocation written here would not reach
    /// the other instances. Set once; later calls change nothing.
    pub fn refuse_spooled(&self, reason: &'static str) {
        let _ = self.inner.spool_refusal.set(reason);
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How many revocations are held in memory (sessions, subjects, the global cut-off).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.memory.len()
    }

    /// Whether no revocation is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every revocation in force at `now` (from memory; the file holds the same). A shared
    /// store that queues its writes here re-sends these to a backend that lost its data.
    #[must_use]
    pub fn snapshot(&self, now: UnixTime) -> Vec<Revocation> {
        self.inner.memory.snapshot(now)
    }

    /// How many revocations the file holds (read from disk, for monitoring and tests).
    ///
    /// # Errors
    /// [`FileStoreError::Corrupt`] if the file cannot be read.
    pub fn stored_len(&self) -> Result<u64, FileStoreError> {
        let read = || -> Result<u64, redb::Error> {
            let txn = self.inner.db.begin_read()?;
            Ok(txn.open_table(REVOKED)?.len()?)
        };
        read().map_err(|e| corrupt(&self.inner.path, e))
    }

    /// Drops every entry whose `until` is not after `now`, from memory and from the file,
    /// and returns once that is committed.
    ///
    /// # Errors
    /// [`FileStoreError`] if the commit failed or the store is closed.
    pub async fn prune(&self, now: UnixTime) -> Result<(), FileStoreError> {
        self.inner.memory.prune(now);
        let (done, rx) = oneshot::channel();
        let job = Job {
            work: Work::Prune,
            now,
            done: Reply::Async(done),
        };
        self.submit(job, rx).await
    }

    async fn submit(
        &self,
        job: Job,
        rx: oneshot::Receiver<Result<(), FileStoreError>>,
    ) -> Result<(), FileStoreError> {
        let closed = || FileStoreError::Closed {
            path: self.inner.path.clone(),
        };
        let sent = self.inner.jobs.as_ref().map(|jobs| jobs.send(job));
        if !matches!(sent, Some(Ok(()))) {
            return Err(closed());
        }
        rx.await.unwrap_or_else(|_| Err(closed()))
    }
}

/// The durable queue of a shared store (`queue_in` of the Redis and PostgreSQL stores).
impl jwe_session_core::DurableJournal for FileStore {
    fn snapshot(&self, now: UnixTime) -> Vec<Revocation> {
        FileStore::snapshot(self, now)
    }

    fn revokes(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<Revoked> {
        self.check(ids, now)
    }

    fn record<'a>(
        &'a self,
        revocation: &'a Revocation,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<(), RevokeError>> {
        Box::pin(async move { self.revoke(revocation.clone(), now).await.map(|_| ()) })
    }
}

impl RevocationStore for FileStore {
    fn check(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<Revoked> {
        self.inner.memory.check(ids, now)
    }

    fn refresh_due(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<UnixMicros> {
        self.inner.memory.refresh_due(ids, now)
    }

    fn watch(
        &self,
        ids: SessionIds<'_>,
        now: UnixTime,
    ) -> Result<RevocationWatch, WatchUnsupported> {
        self.inner.memory.watch(ids, now)
    }

    fn registry(&self) -> Option<&dyn SessionRegistry> {
        Some(self)
    }

    fn revoke(
        &self,
        revocation: Revocation,
        now: UnixTime,
    ) -> BoxFuture<'_, Result<Recorded, RevokeError>> {
        Box::pin(async move {
            // In force here at once (a malformed one is refused, changing nothing);
            // durable when this returns.
            if !self.inner.memory.apply(&revocation, now)? {
                return Ok(Recorded::Stored);
            }
            let (done, rx) = oneshot::channel();
            let job = Job {
                work: Work::Revoke(revocation),
                now,
                done: Reply::Async(done),
            };
            self.submit(job, rx).await?;
            Ok(Recorded::Stored)
        })
    }
}

/// The session registry, on disk in the same file and with the same durability as the
/// revocations: a record (or its removal) is committed with `fsync` when the call returns,
/// and read from the file when asked (nothing of it is held in memory).
impl SessionRegistry for FileStore {
    fn record<'a>(
        &'a self,
        record: SessionRecord,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<(), RegistryError>> {
        Box::pin(async move {
            if !record.to_keep(now)? {
                return Ok(());
            }
            self.registry_job(Work::Record(Box::new(record)), now).await
        })
    }

    fn remove<'a>(
        &'a self,
        sub: &'a str,
        sid: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<(), RegistryError>> {
        Box::pin(async move {
            let work = Work::Forget {
                sub: sub.to_owned(),
                sid: sid.to_owned(),
            };
            self.registry_job(work, now).await
        })
    }

    fn records_of<'a>(
        &'a self,
        sub: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Vec<SessionRecord>, RegistryError>> {
        let read = records_of(&self.inner.db, sub, now).map_err(|e| RegistryError::Unavailable {
            source: Box::new(corrupt(&self.inner.path, e)),
        });
        Box::pin(async move { read })
    }
}

impl FileStore {
    /// [`RevocationStore::sessions_of`] without a runtime: this store's registry and
    /// revocation checks never wait (the file is read in place, revocations are in
    /// memory), so the one rule runs to completion in a single poll. For the spool thread
    /// and tools.
    pub(crate) fn live_sessions_now(
        &self,
        sub: &str,
        now: UnixTime,
    ) -> Result<Vec<SessionRecord>, RegistryError> {
        let mut fut = self.sessions_of(sub, now);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match fut.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(result) => result,
            std::task::Poll::Pending => Err(RegistryError::Unavailable {
                source: "the file store's registry did not answer at once".into(),
            }),
        }
    }

    async fn registry_job(&self, work: Work, now: UnixTime) -> Result<(), RegistryError> {
        let (done, rx) = oneshot::channel();
        let job = Job {
            work,
            now,
            done: Reply::Async(done),
        };
        self.submit(job, rx)
            .await
            .map_err(|e| RegistryError::Unavailable {
                source: Box::new(e),
            })
    }
}

/// Every record of `sub` whose `until` is after `now`, read from the file. A record this
/// version cannot read is an error, never skipped.
fn records_of(
    db: &redb::Database,
    sub: &str,
    now: UnixTime,
) -> Result<Vec<SessionRecord>, redb::Error> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(DEVICES) {
        Ok(t) => t,
        // A file from before the registry: no record yet.
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for row in table.range((sub, "")..)? {
        let (key, value) = row?;
        let (owner, _) = key.value();
        if owner != sub {
            break;
        }
        let record = SessionRecord::from_json(value.value()).map_err(|e| {
            redb::Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })?;
        if record.until > now {
            out.push(record);
        }
    }
    Ok(out)
}

fn corrupt(path: &Path, e: impl Into<redb::Error>) -> FileStoreError {
    FileStoreError::Corrupt {
        path: path.to_path_buf(),
        source: Some(e.into()),
    }
}

fn write_error(path: &Path, e: impl Into<redb::Error>) -> FileStoreError {
    FileStoreError::Write {
        path: path.to_path_buf(),
        source: Arc::new(e.into()),
    }
}

fn builder() -> redb::Builder {
    let mut b = redb::Builder::new();
    b.set_cache_size(CACHE_BYTES)
        // Verify every page's checksum at open: a damaged file is an error, not a panic.
        .set_check_integrity_on_open(true);
    b
}

/// Opens an existing file (never initializing it: an empty or truncated file is an
/// error), or creates a new one atomically: a fresh database is made under a temporary
/// name and linked into place, so `path` is never an empty file of ours.
fn open_db(path: &Path) -> Result<redb::Database, FileStoreError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() == 0 => {
            return Err(FileStoreError::Corrupt {
                path: path.to_path_buf(),
                source: None,
            })
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path)?,
        Err(source) => {
            return Err(FileStoreError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    }
    let db = builder().open(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen | redb::DatabaseError::LockProtocolMismatch => {
            FileStoreError::InUse {
                path: path.to_path_buf(),
            }
        }
        // A file that exists but reads short or wrong is damaged, like any other damage;
        // only what keeps us from reading at all (permissions, say) is an I/O error.
        redb::DatabaseError::Storage(redb::StorageError::Io(source))
            if !matches!(
                source.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            FileStoreError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
        other => corrupt(path, other),
    })?;
    check_format(&db, path)?;
    Ok(db)
}

fn check_format(db: &redb::Database, path: &Path) -> Result<(), FileStoreError> {
    let txn = db.begin_read().map_err(|e| corrupt(path, e))?;
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(
            redb::TableError::TableDoesNotExist(_) | redb::TableError::TableTypeMismatch { .. },
        ) => {
            return Err(FileStoreError::Foreign {
                path: path.to_path_buf(),
            })
        }
        Err(e) => return Err(corrupt(path, e)),
    };
    let found = meta
        .get("format")
        .map_err(|e| corrupt(path, e))?
        .map(|v| v.value());
    // Every page the read holds is let go before a write.
    drop(meta);
    drop(txn);
    match found {
        Some(FORMAT) => Ok(()),
        Some(v) if READS.contains(&v) => upgrade(db).map_err(|e| write_error(path, e)),
        Some(found) => Err(FileStoreError::UnsupportedFormat {
            path: path.to_path_buf(),
            found,
        }),
        None => Err(FileStoreError::Foreign {
            path: path.to_path_buf(),
        }),
    }
}

/// Marks a file of an older format this version reads as [`FORMAT`] (what it may now
/// hold), durably.
fn upgrade(db: &redb::Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    txn.open_table(META)?.insert("format", FORMAT)?;
    txn.commit()?;
    Ok(())
}

fn create(path: &Path) -> Result<(), FileStoreError> {
    let io = |source| FileStoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".creating-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let made = (|| -> Result<(), redb::Error> {
        let db = builder().create(&tmp)?;
        let txn = db.begin_write()?;
        txn.open_table(META)?.insert("format", FORMAT)?;
        txn.open_table(REVOKED)?;
        txn.open_table(EXPIRY)?;
        txn.commit()?;
        Ok(())
    })();
    if let Err(e) = made {
        let _ = std::fs::remove_file(&tmp);
        return Err(match e {
            redb::Error::Io(source) => io(source),
            other => write_error(path, other),
        });
    }
    // A hard link never replaces a file: if another process created `path` meanwhile, its
    // file wins and we open that one.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            #[cfg(unix)]
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(e)),
    }
}

/// Why the entries could not be loaded.
enum Loaded {
    Db(redb::Error),
    BadEntry(u8),
}

impl<E: Into<redb::Error>> From<E> for Loaded {
    fn from(e: E) -> Self {
        Self::Db(e.into())
    }
}

fn load(db: &redb::Database, memory: &MemoryStore, now: UnixTime) -> Result<usize, Loaded> {
    let txn = db.begin_read()?;
    let table = txn.open_table(REVOKED)?;
    let mut loaded = 0;
    for row in table.iter()? {
        let (key, value) = row?;
        let (kind, id) = key.value();
        let (at, until) = value.value();
        let r = decode(kind, id, at, until).ok_or(Loaded::BadEntry(kind))?;
        if matches!(memory.apply(&r, now), Ok(true)) {
            loaded += 1;
        }
    }
    Ok(loaded)
}

fn decode(kind: u8, id: &str, at: u64, until: u64) -> Option<Revocation> {
    let until = UnixTime::from_secs(until);
    let at = UnixMicros::from_micros(at);
    let r = match Scope::from_code(kind)? {
        Scope::Session => Revocation::Session {
            sid: id.to_owned(),
            until,
        },
        Scope::Subject => Revocation::Subject {
            sub: id.to_owned(),
            at,
            until,
        },
        Scope::All if id.is_empty() => Revocation::All { at, until },
        Scope::All => return None,
        Scope::Tokens => Revocation::Tokens {
            sub: id.to_owned(),
            at,
            until,
        },
    };
    r.check().ok().map(|()| r)
}

/// The stored value: `(at_us, until)`; `at_us` is 0 for a session.
fn row(r: &Revocation) -> (u64, u64) {
    let at = r.at().map_or(0, UnixMicros::as_micros);
    (at, r.until().as_secs())
}

fn kind_and_id(key: RevocationKey<'_>) -> (u8, &str) {
    (key.scope().code(), key.id())
}

/// One durable commit: `batch` merged into the file, plus a sweep of expired entries when
/// one is due.
fn commit(
    db: &redb::Database,
    batch: &[Revocation],
    registry: &[Work],
    now: UnixTime,
    next_prune: &mut UnixTime,
) -> Result<(), redb::Error> {
    let mut txn = db.begin_write()?;
    // On disk (fsync) when `commit` returns. Two-phase: the commit slot is made primary
    // only after the data it points to is flushed, so a crash can never leave the file
    // pointing at a commit whose pages did not all land (redb's defence against crafted
    // data defeating its checksums, which revoked ids are: they come from requests).
    txn.set_durability(redb::Durability::Immediate)
        .map_err(redb::Error::from)?;
    txn.set_two_phase_commit(true);
    {
        let mut revoked = txn.open_table(REVOKED)?;
        let mut expiry = txn.open_table(EXPIRY)?;
        // Only revocations in force reach the writer (`MemoryStore::apply` said so).
        for r in batch {
            let (kind, id) = kind_and_id(r.key());
            let mut merged = r.clone();
            let old = revoked
                .get((kind, id))?
                .map(|v| v.value())
                .and_then(|(at, until)| decode(kind, id, at, until));
            if let Some(old) = &old {
                merged.absorb(old);
                expiry.remove((old.until().as_secs(), kind, id))?;
            }
            let (at, until) = row(&merged);
            revoked.insert((kind, id), (at, until))?;
            expiry.insert((until, kind, id), ())?;
        }
        let mut devices = txn.open_table(DEVICES)?;
        let mut device_expiry = txn.open_table(DEVICE_EXPIRY)?;
        for work in registry {
            match work {
                Work::Record(record) => {
                    let key = (record.sub.as_str(), record.sid.as_str());
                    let mut merged = record.as_ref().clone();
                    let old = devices
                        .get(key)?
                        .and_then(|v| SessionRecord::from_json(v.value()).ok());
                    if let Some(old) = old {
                        let mut kept = old.clone();
                        kept.absorb(record.as_ref());
                        merged = kept;
                        device_expiry.remove((old.until.as_secs(), key.0, key.1))?;
                    }
                    devices.insert(key, merged.to_json().as_bytes())?;
                    device_expiry.insert((merged.until.as_secs(), key.0, key.1), ())?;
                }
                Work::Forget { sub, sid } => {
                    let key = (sub.as_str(), sid.as_str());
                    let old = devices
                        .remove(key)?
                        .and_then(|v| SessionRecord::from_json(v.value()).ok());
                    if let Some(old) = old {
                        device_expiry.remove((old.until.as_secs(), key.0, key.1))?;
                    }
                }
                Work::Revoke(_) | Work::Prune => {}
            }
        }
        if now >= *next_prune {
            prune(&mut revoked, &mut expiry, now)?;
            prune_devices(&mut devices, &mut device_expiry, now)?;
            *next_prune = UnixTime::from_secs(now.as_secs().saturating_add(PRUNE_EVERY_SECS));
        }
    }
    txn.commit()?;
    Ok(())
}

/// Drops the registry records whose `until` is not after `now`.
fn prune_devices(
    devices: &mut redb::Table<'_, (&str, &str), &[u8]>,
    expiry: &mut redb::Table<'_, (u64, &str, &str), ()>,
    now: UnixTime,
) -> Result<usize, redb::Error> {
    let end = now.as_secs().saturating_add(1);
    let mut gone = Vec::new();
    for row in expiry.range((0u64, "", "")..(end, "", ""))? {
        let (key, _) = row?;
        let (until, sub, sid) = key.value();
        gone.push((until, sub.to_owned(), sid.to_owned()));
    }
    for (until, sub, sid) in &gone {
        expiry.remove((*until, sub.as_str(), sid.as_str()))?;
        devices.remove((sub.as_str(), sid.as_str()))?;
    }
    Ok(gone.len())
}

fn prune(
    revoked: &mut redb::Table<'_, (u8, &str), (u64, u64)>,
    expiry: &mut redb::Table<'_, (u64, u8, &str), ()>,
    now: UnixTime,
) -> Result<usize, redb::Error> {
    let end = now.as_secs().saturating_add(1);
    let mut gone = Vec::new();
    for row in expiry.range((0u64, 0u8, "")..(end, 0u8, ""))? {
        let (key, _) = row?;
        let (until, kind, id) = key.value();
        gone.push((until, kind, id.to_owned()));
    }
    for (until, kind, id) in &gone {
        expiry.remove((*until, *kind, id.as_str()))?;
        revoked.remove((*kind, id.as_str()))?;
    }
    Ok(gone.len())
}

/// The writer: takes what is queued (up to [`MAX_BATCH`]), commits it once, answers every
/// caller in the batch. Runs until the last handle is dropped.
fn writer_loop(
    db: &redb::Database,
    path: &Path,
    jobs: &mpsc::Receiver<Job>,
    mut next_prune: UnixTime,
) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut now = UnixTime::EPOCH;
        let mut revocations = Vec::with_capacity(batch.len());
        let mut registry = Vec::new();
        let mut callers = Vec::with_capacity(batch.len());
        for job in batch {
            now = now.max(job.now);
            match job.work {
                Work::Revoke(r) => revocations.push(r),
                // `prune`: sweep in this commit, whenever the last sweep was.
                Work::Prune => next_prune = UnixTime::EPOCH,
                // In order: a record and its removal in one batch end removed.
                work @ (Work::Record(_) | Work::Forget { .. }) => registry.push(work),
            }
            callers.push(job.done);
        }
        let result = commit(db, &revocations, &registry, now, &mut next_prune).map_err(Arc::new);
        if let Err(e) = &result {
            tracing::error!(path = %path.display(), error = %e, "revocations not saved to disk");
        }
        for done in callers {
            let answer = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(FileStoreError::Write {
                    path: path.to_path_buf(),
                    source: Arc::clone(e),
                }),
            };
            done.send(answer);
        }
    }
}

pub mod spool;

pub use spool::{deliver, sessions_of, DeliverError, Delivery};

#[cfg(test)]
mod tests;
