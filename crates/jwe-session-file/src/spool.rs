//! Revocations from outside the process that holds the file: the spool folder beside it.
//!
//! A [`FileStore`] holds an exclusive lock on its file, so a second process cannot write
//! it while the service runs. Instead a tool ([`deliver`], what `jwe-session revoke
//! --file` calls) writes a request into `<file>.spool/`; the store polls the folder, makes
//! what it carries durable in its own commits, answers, and removes the request:
//!
//! 1. The tool writes `<id>.tmp` (synced) and renames it to `<id>.req`: a request is
//!    never seen half-written.
//! 2. The store claims a request by renaming it to `<id>.taken` (so a tool that gives up
//!    can still withdraw one nobody took), applies it (in force at once, on disk when the
//!    commit returns), lets go of the store, removes `<id>.taken` and, last, renames
//!    into place `<id>.done` (how many it applied) or `<id>.refused` (why not: a
//!    malformed request changes nothing). Once the answer is visible the spool thread
//!    holds nothing: a service that drops its store then has the file closed.
//! 3. The tool reads the answer and removes it. A `.taken` left by a crash is applied
//!    again at the next open (applying a revocation twice changes nothing).
//!
//! The store creates the folder (mode 0700 on Unix) when it opens the file: whoever may
//! write it may revoke sessions of the service, and nothing else (a request can only add
//! revocations, never lift one). When no process holds the file, [`deliver`] opens it and
//! writes directly, durably, as the service would.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Weak};
use std::time::{Duration, Instant};

use jwe_session_core::Clock as _;
use jwe_session_core::{Revocation, SessionRecord, SystemClock};
use serde::{Deserialize, Serialize};

use crate::{decode, kind_and_id, row, FileStore, FileStoreError, Inner};

/// How often a store looks into its spool folder.
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// How often a tool looks for the store's answer.
const ANSWER_POLL: Duration = Duration::from_millis(20);

/// The largest request a store reads (about 100,000 session revocations).
const MAX_REQUEST: u64 = 16 << 20;

/// The request format's version.
const VERSION: u32 = 1;

/// The spool folder of the revocation file at `path`: `<path>.spool`, beside it.
#[must_use]
pub fn spool_dir(path: &Path) -> PathBuf {
    let mut dir = path.as_os_str().to_owned();
    dir.push(".spool");
    PathBuf::from(dir)
}

/// One revocation as the file stores it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    kind: u8,
    id: String,
    at_us: u64,
    until: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    v: u32,
    revocations: Vec<Entry>,
    /// A question instead: the live sessions of this subject (the session registry). A
    /// store from before the registry refuses the request (an unknown field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sessions_of: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Done {
    applied: usize,
    /// The answer to `sessions_of`: each record's JSON ([`SessionRecord::to_json`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sessions: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Refused {
    error: String,
}

/// How [`deliver`] got the revocations into the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// No process held the file: written directly, on disk now.
    Written {
        /// How many revocations were in force (and so recorded).
        applied: usize,
    },
    /// The process holding the file took them through its spool and made them durable.
    Spooled {
        /// How many revocations were in force (and so recorded).
        applied: usize,
    },
}

/// Why [`deliver`] did not record the revocations. Each message says whether anything was
/// recorded and what to do; `Debug` reads as `Display` with the cause.
#[non_exhaustive]
pub enum DeliverError {
    /// There is no revocation file at the path (a wrong path records nothing any service
    /// reads); `create` makes one.
    NoFile {
        /// The path looked at.
        path: PathBuf,
    },
    /// The file is held by a process that keeps no spool folder: not a jwe-session
    /// file store of this release (or its folder was removed).
    NoSpool {
        /// The file.
        path: PathBuf,
    },
    /// The process holding the file did not take the request in time; it was withdrawn,
    /// so nothing was recorded.
    NotTaken {
        /// The file.
        path: PathBuf,
        /// How long it waited.
        after: Duration,
    },
    /// The process holding the file took the request but did not confirm it in time: it
    /// may or may not be recorded (delivering again is safe).
    Unconfirmed {
        /// The file.
        path: PathBuf,
        /// How long it waited.
        after: Duration,
    },
    /// The process holding the file refused the request (nothing was recorded).
    Refused {
        /// The file.
        path: PathBuf,
        /// Its reason.
        reason: String,
    },
    /// A revocation is not well-formed (nothing was recorded).
    Invalid {
        /// What is wrong.
        reason: &'static str,
    },
    /// Opening or writing the file failed.
    Store(FileStoreError),
    /// The spool folder could not be written or read.
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl std::fmt::Display for DeliverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoFile { path } => write!(
                f,
                "there is no revocation file at {}: no service reads it, so nothing was \
                 revoked; pass the path the service opens (its JWE_SESSION_REVOCATIONS or \
                 FileStore::open path), or --force to create the file",
                path.display()
            ),
            Self::NoSpool { path } => write!(
                f,
                "revocation file {} is held by a process that takes no revocations from \
                 outside (no {} folder): nothing was revoked; revoke through the service, or \
                 upgrade it to a jwe-session-file that keeps a spool",
                path.display(),
                spool_dir(path).display()
            ),
            Self::NotTaken { path, after } => write!(
                f,
                "the process holding {} did not take the revocation within {}s; it was \
                 withdrawn, nothing was revoked (is the service stuck?)",
                path.display(),
                after.as_secs_f32()
            ),
            Self::Unconfirmed { path, after } => write!(
                f,
                "the process holding {} took the revocation but did not confirm it within \
                 {}s: it may be recorded; running the command again is safe",
                path.display(),
                after.as_secs_f32()
            ),
            Self::Refused { path, reason } => write!(
                f,
                "the process holding {} refused the revocation ({reason}); nothing was revoked",
                path.display()
            ),
            Self::Invalid { reason } => write!(f, "invalid revocation: {reason}"),
            Self::Store(_) => {
                f.write_str("the revocation file could not be written; nothing was revoked")
            }
            Self::Io { path, .. } => write!(
                f,
                "{} could not be written or read; nothing was revoked",
                path.display()
            ),
        }
    }
}

impl std::fmt::Debug for DeliverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let variant = match self {
            Self::NoFile { .. } => "DeliverError::NoFile",
            Self::NoSpool { .. } => "DeliverError::NoSpool",
            Self::NotTaken { .. } => "DeliverError::NotTaken",
            Self::Unconfirmed { .. } => "DeliverError::Unconfirmed",
            Self::Refused { .. } => "DeliverError::Refused",
            Self::Invalid { .. } => "DeliverError::Invalid",
            Self::Store(_) => "DeliverError::Store",
            Self::Io { .. } => "DeliverError::Io",
        };
        jwe_session_core::debug_report(self, variant, f)
    }
}

impl std::error::Error for DeliverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(e) => Some(e),
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Records `revocations` in the revocation file at `path`, whether or not a service holds
/// it: directly when no process has it open, else through the holder's spool (see the
/// module docs), returning once they are on disk. `wait` bounds the wait for the holder.
///
/// A missing file is an error unless `create`: revocations written where no service looks
/// protect nothing.
///
/// # Errors
/// [`DeliverError`]: each variant says whether anything was recorded.
pub fn deliver(
    path: &Path,
    revocations: &[Revocation],
    wait: Duration,
    create: bool,
) -> Result<Delivery, DeliverError> {
    for r in revocations {
        r.check()
            .map_err(|e| DeliverError::Invalid { reason: e.reason() })?;
    }
    if !create && !path.exists() {
        return Err(DeliverError::NoFile {
            path: path.to_path_buf(),
        });
    }
    match FileStore::open(path) {
        Ok(store) => {
            let applied = store
                .inner
                .apply_blocking(revocations.to_vec(), SystemClock.now())
                .map_err(DeliverError::Store)?;
            // Dropping the last handle closes the file before this returns.
            drop(store);
            Ok(Delivery::Written { applied })
        }
        Err(FileStoreError::InUse { .. }) => {
            let request = Request {
                v: VERSION,
                revocations: revocations.iter().map(entry).collect(),
                sessions_of: None,
            };
            let done = spool(path, &request, wait)?;
            Ok(Delivery::Spooled {
                applied: done.applied,
            })
        }
        Err(e) => Err(DeliverError::Store(e)),
    }
}

/// The live sessions of `sub` in the session registry of the revocation file at `path`
/// (what `jwe-session sessions --file` prints), oldest first, whether or not a service
/// holds it: read directly when no process has it open, else asked of the holder through
/// its spool. The same list the service's `SessionHandle::devices` shows.
///
/// # Errors
/// [`DeliverError`]: no file, a holder without a spool or from before the registry
/// ([`DeliverError::Refused`]), no answer in `wait`, an unreadable file.
pub fn sessions_of(
    path: &Path,
    sub: &str,
    wait: Duration,
) -> Result<Vec<SessionRecord>, DeliverError> {
    if !path.exists() {
        return Err(DeliverError::NoFile {
            path: path.to_path_buf(),
        });
    }
    match FileStore::open(path) {
        Ok(store) => {
            let live = store
                .live_sessions_now(sub, SystemClock.now())
                .map_err(|e| DeliverError::Refused {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?;
            drop(store);
            Ok(live)
        }
        Err(FileStoreError::InUse { .. }) => {
            let request = Request {
                v: VERSION,
                revocations: Vec::new(),
                sessions_of: Some(sub.to_owned()),
            };
            let refused = |reason: &str| DeliverError::Refused {
                path: path.to_path_buf(),
                reason: reason.to_owned(),
            };
            let done = spool(path, &request, wait)?;
            let records = done
                .sessions
                .ok_or_else(|| refused("it did not answer the question"))?;
            records
                .iter()
                .map(|r| {
                    SessionRecord::from_json(r.as_bytes())
                        .map_err(|_| refused("it answered a record this version cannot read"))
                })
                .collect()
        }
        Err(e) => Err(DeliverError::Store(e)),
    }
}

/// Hands `request` to the process holding the file at `path` and waits for its answer.
fn spool(path: &Path, request: &Request, wait: Duration) -> Result<Done, DeliverError> {
    let dir = spool_dir(path);
    if !dir.is_dir() {
        return Err(DeliverError::NoSpool {
            path: path.to_path_buf(),
        });
    }
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| DeliverError::Io { path: p, source }
    };
    let bytes = serde_json::to_vec(request).map_err(|e| DeliverError::Io {
        path: dir.clone(),
        source: e.into(),
    })?;
    let id = request_id();
    let file = |ext: &str| dir.join(format!("{id}.{ext}"));
    let (tmp, req) = (file("tmp"), file("req"));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, &req));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&dir)(e));
    }
    let (done, refused) = (file("done"), file("refused"));
    let answer = |deadline: Instant| -> Result<Option<Done>, DeliverError> {
        while Instant::now() < deadline {
            if let Some(d) = read_answer(path, &done, &refused)? {
                return Ok(Some(d));
            }
            std::thread::sleep(ANSWER_POLL);
        }
        read_answer(path, &done, &refused)
    };
    if let Some(d) = answer(Instant::now() + wait)? {
        return Ok(d);
    }
    // Withdraw it if nobody took it; if it was taken, give the holder as long again.
    match std::fs::remove_file(&req) {
        Ok(()) => Err(DeliverError::NotTaken {
            path: path.to_path_buf(),
            after: wait,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match answer(Instant::now() + wait)? {
                Some(d) => Ok(d),
                None => Err(DeliverError::Unconfirmed {
                    path: path.to_path_buf(),
                    after: wait * 2,
                }),
            }
        }
        Err(e) => Err(io(&req)(e)),
    }
}

fn read_answer(path: &Path, done: &Path, refused: &Path) -> Result<Option<Done>, DeliverError> {
    let take = |p: &Path| -> Result<Option<Vec<u8>>, DeliverError> {
        match std::fs::read(p) {
            Ok(b) => {
                let _ = std::fs::remove_file(p);
                Ok(Some(b))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(DeliverError::Io {
                path: p.to_path_buf(),
                source,
            }),
        }
    };
    if let Some(b) = take(done)? {
        let done = serde_json::from_slice::<Done>(&b).unwrap_or(Done {
            applied: 0,
            sessions: None,
        });
        return Ok(Some(done));
    }
    if let Some(b) = take(refused)? {
        let reason = serde_json::from_slice::<Refused>(&b)
            .map_or_else(|_| "no reason given".to_owned(), |r| r.error);
        return Err(DeliverError::Refused {
            path: path.to_path_buf(),
            reason,
        });
    }
    Ok(None)
}

/// A name no other request has: the time, this process, and a count within it.
fn request_id() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:020}-{}-{n}", std::process::id())
}

fn entry(r: &Revocation) -> Entry {
    let (kind, id) = kind_and_id(r.key());
    let (at_us, until) = row(r);
    Entry {
        kind,
        id: id.to_owned(),
        at_us,
        until,
    }
}

/// Creates the spool folder (owner only) and starts the thread that serves it.
pub(crate) fn serve(path: &Path, inner: Weak<Inner>) -> Result<mpsc::Sender<()>, FileStoreError> {
    let dir = spool_dir(path);
    let io = {
        let dir = dir.clone();
        move |source| FileStoreError::Io { path: dir, source }
    };
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(e) => return Err(io(e)),
    }
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("jwe-session-spool".into())
        .spawn(move || {
            // A `.taken` left by a crash first, then whatever arrives.
            loop {
                for (request, claimed) in pending(&dir) {
                    // Only while there is work does this thread hold the store, and
                    // `answer` lets go of it before the answer is visible: a caller that
                    // drops its last handle once it has been answered closes the file.
                    let Some(inner) = inner.upgrade() else { return };
                    answer(inner, &dir, &request, claimed);
                }
                match stopped.recv_timeout(POLL) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            }
        })
        .map_err(io)?;
    Ok(stop)
}

/// Requests waiting in `dir`, oldest name first, and whether each is already claimed.
fn pending(dir: &Path) -> Vec<(PathBuf, bool)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, bool)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter_map(|p| match p.extension().and_then(|e| e.to_str()) {
            Some("req") => Some((p, false)),
            Some("taken") => Some((p, true)),
            _ => None,
        })
        .collect();
    found.sort();
    found
}

fn answer(inner: Arc<Inner>, dir: &Path, request: &Path, claimed: bool) {
    let taken = request.with_extension("taken");
    if !claimed && std::fs::rename(request, &taken).is_err() {
        return; // withdrawn meanwhile
    }
    let result = match inner.spool_refusal.get() {
        Some(reason) => Err((*reason).to_owned()),
        None => Ok(()),
    }
    .and_then(|()| read_request(&taken))
    .and_then(|(revs, question)| {
        let now = SystemClock.now();
        let applied = inner.apply_blocking(revs, now).map_err(|e| e.to_string())?;
        let sessions = match question {
            Some(sub) => Some(
                FileStore {
                    inner: Arc::clone(&inner),
                }
                .live_sessions_now(&sub, now)
                .map_err(|e| format!("{e:?}"))?
                .iter()
                .map(SessionRecord::to_json)
                .collect(),
            ),
            None => None,
        };
        Ok(Done { applied, sessions })
    });
    let (ext, body) = match &result {
        Ok(done) => {
            tracing::info!(
                path = %inner.path.display(),
                applied = done.applied,
                "a spooled request answered"
            );
            ("done", serde_json::to_vec(done))
        }
        Err(error) => {
            tracing::warn!(
                path = %inner.path.display(),
                error = %error,
                "a spooled revocation request was refused"
            );
            (
                "refused",
                serde_json::to_vec(&Refused {
                    error: error.clone(),
                }),
            )
        }
    };
    // What is applied is durable; from here on the store is not needed.
    drop(inner);
    // The answer appears last, by rename, once the claim is gone: whoever sees it finds
    // the spool as it will stay. A crash before the rename leaves no answer, and the
    // caller reports a timeout for a revocation that was in fact saved (the safe side;
    // revoking again changes nothing).
    let out = taken.with_extension(ext);
    let tmp = taken.with_extension(format!("{ext}.tmp"));
    let written = body
        .map_err(std::io::Error::from)
        .and_then(|b| std::fs::write(&tmp, b));
    let _ = std::fs::remove_file(&taken);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &out)) {
        tracing::error!(dir = %dir.display(), error = %e, "could not answer a spooled request");
        let _ = std::fs::remove_file(&tmp);
    }
}

/// A request's revocations, and its question; a malformed request is refused whole.
fn read_request(path: &Path) -> Result<(Vec<Revocation>, Option<String>), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("could not read it: {e}"))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_REQUEST + 1), &mut bytes)
        .map_err(|e| format!("could not read it: {e}"))?;
    if bytes.len() as u64 > MAX_REQUEST {
        return Err(format!("larger than {MAX_REQUEST} bytes"));
    }
    let request: Request =
        serde_json::from_slice(&bytes).map_err(|e| format!("not a revocation request: {e}"))?;
    if request.v != VERSION {
        return Err(format!(
            "request format {} (this store reads {VERSION})",
            request.v
        ));
    }
    let revocations = request
        .revocations
        .iter()
        .map(|e| {
            decode(e.kind, &e.id, e.at_us, e.until)
                .ok_or_else(|| format!("a revocation of kind {} is not well-formed", e.kind))
        })
        .collect::<Result<_, _>>()?;
    Ok((revocations, request.sessions_of))
}
