//! Keeping a [`KeyRingHandle`] in step with its key file: [`KeyRingHandle::watch_file`].
//!
//! File events come from the `notify` crate (inotify on Linux, FSEvents on macOS, ...): the
//! folder holding the file is watched, so an in-place write, an atomic rename over the file
//! (what `jwe-session rotate` does) and a Kubernetes Secret update (a symlink swap of the
//! mounted folder's `..data`) are all seen. Where events cannot be had (the system refuses
//! another watch, or the caller asks for it: network file systems, some container mounts),
//! the file is polled instead, with notify's poll watcher comparing contents.
//!
//! Every change is read once the folder has been quiet for a moment, and swapped in only if
//! the file's bytes changed and load as a ring. A file that does not load is logged and
//! counted, and the current ring stays.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher as _};
use zeroize::Zeroizing;

use crate::error::KeyError;
use crate::ring::{KeyRing, KeyRingHandle};

/// How long the folder must be quiet before the file is read: the several events of one
/// rename, or of a Kubernetes symlink swap, make one reload.
const SETTLE: Duration = Duration::from_millis(50);

/// The longest a change waits for the folder to be quiet.
const MAX_SETTLE: Duration = Duration::from_millis(300);

/// The polling interval when events are unavailable and none was asked for.
pub const DEFAULT_KEY_FILE_POLL: Duration = Duration::from_secs(1);

/// How [`KeyRingHandle::watch_file_with`] watches.
#[derive(Clone, Debug, Default)]
pub struct KeyFileWatchOptions {
    poll: Option<Duration>,
}

impl KeyFileWatchOptions {
    /// File events where the system has them, else polling every [`DEFAULT_KEY_FILE_POLL`].
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Poll the file every `every` instead of waiting for events: for file systems whose
    /// events are unreliable (NFS and other network mounts, some container and VM shares).
    #[must_use]
    pub fn poll(mut self, every: Duration) -> Self {
        self.poll = Some(every);
        self
    }
}

/// How a [`KeyFileWatcher`] learns of changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyFileWatchMode {
    /// File-system events on the file's folder.
    Events,
    /// Reading the file at this interval.
    Polling {
        /// The interval.
        every: Duration,
    },
}

#[derive(Default)]
struct Stats {
    reloads: AtomicU64,
    failures: AtomicU64,
}

enum Msg {
    Changed,
    Stop,
}

/// Keeps a key ring in step with its file; made by [`KeyRingHandle::watch_file`].
///
/// Dropping it stops the watch (and so does dropping every handle of the ring).
#[must_use = "dropping the watcher stops the watch: keep it for as long as the service runs"]
pub struct KeyFileWatcher {
    path: PathBuf,
    mode: KeyFileWatchMode,
    stats: Arc<Stats>,
    stop: mpsc::Sender<Msg>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for KeyFileWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFileWatcher")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .field("reloads", &self.reloads())
            .field("failures", &self.failures())
            .finish()
    }
}

impl KeyFileWatcher {
    /// The file watched.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Events or polling.
    #[must_use]
    pub fn mode(&self) -> KeyFileWatchMode {
        self.mode
    }

    /// How many times a changed file was loaded and swapped in.
    #[must_use]
    pub fn reloads(&self) -> u64 {
        self.stats.reloads.load(Ordering::Relaxed)
    }

    /// How many times a changed file failed to load (the ring stayed as it was).
    #[must_use]
    pub fn failures(&self) -> u64 {
        self.stats.failures.load(Ordering::Relaxed)
    }
}

impl Drop for KeyFileWatcher {
    fn drop(&mut self) {
        let _ = self.stop.send(Msg::Stop);
        if let Some(worker) = self.worker.take() {
            // Bounded: the worker is waiting for a message or reading one small file.
            let _ = worker.join();
        }
    }
}

impl KeyRingHandle {
    /// Keeps this handle's ring in step with the JWK Set file at `path`: changes are
    /// picked up within about a second, including a Kubernetes-style atomic swap of the
    /// mounted folder, with no signal and no code in the app. A changed file that does not
    /// load is logged and counted ([`KeyFileWatcher::failures`]) and the current ring
    /// stays. The file is loaded once now, so the ring matches it from the start.
    ///
    /// Uses file-system events on the file's folder, or polling every [`DEFAULT_KEY_FILE_POLL`]
    /// where the system refuses a watch. Keep the returned watcher: dropping it stops the
    /// watch.
    ///
    /// ```no_run
    /// use jwe_session_core::{KeyRing, KeyRingHandle};
    ///
    /// let path = "/etc/my-app/keys/keys.json";
    /// let ring = KeyRingHandle::new(KeyRing::from_file(path)?);
    /// let _watch = ring.watch_file(path)?; // held for as long as the service runs
    /// # Ok::<(), jwe_session_core::KeyError>(())
    /// ```
    ///
    /// # Errors
    /// As [`KeyRing::from_file`] for the first load; [`KeyError::Watch`] if neither events
    /// nor polling can be set up.
    pub fn watch_file(&self, path: impl AsRef<Path>) -> Result<KeyFileWatcher, KeyError> {
        self.watch_file_with(path, KeyFileWatchOptions::new())
    }

    /// [`watch_file`](Self::watch_file) with options (polling instead of events).
    ///
    /// # Errors
    /// As [`watch_file`](Self::watch_file).
    pub fn watch_file_with(
        &self,
        path: impl AsRef<Path>,
        options: KeyFileWatchOptions,
    ) -> Result<KeyFileWatcher, KeyError> {
        let path = absolute(path.as_ref());
        let (text, ring) = read_ring(&path)?;
        if !self.holds(&ring) {
            self.replace(ring);
        }
        let (tx, rx) = mpsc::channel();
        let notify_tx = tx.clone();
        let handler = move |event: notify::Result<notify::Event>| {
            // Reads (opens and closes without a write; this watcher's own among them)
            // change nothing. Errors do count: a dropped event queue is a reason to look.
            if event.is_ok_and(|e| e.kind.is_access()) {
                return;
            }
            let _ = notify_tx.send(Msg::Changed);
        };
        let (watcher, mode) = start(&path, options, handler)?;
        let stats = Arc::new(Stats::default());
        let worker = Worker {
            ring: Arc::downgrade(&self.0),
            path: path.clone(),
            stats: Arc::clone(&stats),
            last: text,
            _watcher: watcher,
        };
        let worker = std::thread::Builder::new()
            .name("jwe-session-key-file".into())
            .spawn(move || worker.run(&rx))
            .map_err(|source| KeyError::Watch {
                path: path.clone(),
                source,
            })?;
        tracing::info!(path = %path.display(), mode = ?mode, "watching the key file");
        Ok(KeyFileWatcher {
            path,
            mode,
            stats,
            stop: tx,
            worker: Some(worker),
        })
    }

    /// Whether the current ring is the same as `ring` (same keys, order and schedule).
    fn holds(&self, ring: &KeyRing) -> bool {
        *self.load().to_jwks_secret() == *ring.to_jwks_secret()
    }
}

/// `path` made absolute, so a later change of the working directory does not matter.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// The file's bytes and the ring they hold.
fn read_ring(path: &Path) -> Result<(Zeroizing<Vec<u8>>, KeyRing), KeyError> {
    let bytes = KeyRing::read_file(path)?;
    let ring = KeyRing::from_file_contents(path, &bytes)?;
    Ok((bytes, ring))
}

/// Sets up events on the folder, or polling: what was asked for, or what the system allows.
fn start<H: notify::EventHandler + Clone>(
    path: &Path,
    options: KeyFileWatchOptions,
    handler: H,
) -> Result<(Box<dyn notify::Watcher + Send>, KeyFileWatchMode), KeyError> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let every = match options.poll {
        Some(every) => every,
        None => match events(folder, path, handler.clone()) {
            Ok(w) => return Ok((w, KeyFileWatchMode::Events)),
            Err(e) => {
                tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "file events unavailable; polling the key file instead"
                );
                DEFAULT_KEY_FILE_POLL
            }
        },
    };
    let config = notify::Config::default()
        .with_poll_interval(every)
        .with_compare_contents(true)
        .with_follow_symlinks(true);
    let watch_error = |e: notify::Error| KeyError::Watch {
        path: path.to_owned(),
        source: std::io::Error::other(e),
    };
    let mut poller = notify::PollWatcher::new(handler, config).map_err(watch_error)?;
    poller
        .watch(path, RecursiveMode::NonRecursive)
        .map_err(watch_error)?;
    Ok((Box::new(poller), KeyFileWatchMode::Polling { every }))
}

/// Events on the file's folder, and on the folder of the file a symlink leads to.
fn events<H: notify::EventHandler>(
    folder: &Path,
    path: &Path,
    handler: H,
) -> notify::Result<Box<dyn notify::Watcher + Send>> {
    let mut watcher = notify::recommended_watcher(handler)?;
    watcher.watch(folder, RecursiveMode::NonRecursive)?;
    if let Some(target) = std::fs::canonicalize(path)
        .ok()
        .and_then(|t| t.parent().map(Path::to_owned))
    {
        let folder = std::fs::canonicalize(folder).unwrap_or_else(|_| folder.to_owned());
        if target != folder {
            // A symlink to a file elsewhere: in-place writes there are seen there. (A
            // Kubernetes swap replaces that folder; the swap itself shows in `folder`.)
            let _ = watcher.watch(&target, RecursiveMode::NonRecursive);
        }
    }
    Ok(Box::new(watcher))
}

struct Worker {
    ring: Weak<ArcSwap<KeyRing>>,
    path: PathBuf,
    stats: Arc<Stats>,
    /// The bytes last read, so that events that change nothing (other files in the folder,
    /// a touch) neither reload nor count as failures.
    last: Zeroizing<Vec<u8>>,
    /// Owned here so that it stops when the worker does.
    _watcher: Box<dyn notify::Watcher + Send>,
}

impl Worker {
    fn run(mut self, rx: &mpsc::Receiver<Msg>) {
        loop {
            match rx.recv() {
                Ok(Msg::Changed) => {}
                Ok(Msg::Stop) | Err(_) => return,
            }
            // Wait until the folder is quiet, but not for ever: a folder that is never quiet
            // (a log file beside the keys) still gets its file read.
            let deadline = Instant::now() + MAX_SETTLE;
            while let Some(wait) = deadline
                .checked_duration_since(Instant::now())
                .map(|left| left.min(SETTLE))
            {
                match rx.recv_timeout(wait) {
                    Ok(Msg::Changed) => {}
                    Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                    Err(RecvTimeoutError::Timeout) => break,
                }
            }
            let Some(ring) = self.ring.upgrade() else {
                // Every handle of the ring is gone: nothing left to keep in step.
                return;
            };
            self.reload(&KeyRingHandle(ring));
        }
    }

    fn reload(&mut self, handle: &KeyRingHandle) {
        let bytes = match KeyRing::read_file(&self.path) {
            Ok(bytes) => bytes,
            Err(e) => return self.fail(&e),
        };
        if *bytes == *self.last {
            return;
        }
        self.last = bytes;
        match KeyRing::from_file_contents(&self.path, &self.last) {
            Ok(ring) if handle.holds(&ring) => {}
            Ok(ring) => {
                handle.replace(ring);
                self.stats.reloads.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.fail(&e),
        }
    }

    fn fail(&self, e: &KeyError) {
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            path = %self.path.display(),
            error = %e,
            "key file changed but did not load; keeping the current key ring"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Enc, Key};

    /// A fresh folder under the system's temporary directory.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("jwe-watch-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A one-key set with `kid`.
    fn set(kid: &str) -> String {
        let key = Key::generate(kid, Enc::A256Gcm).unwrap();
        format!("{{\"keys\":[{}]}}", *key.to_jwk_secret())
    }

    /// Writes `text` to a temporary name and renames it over `path`, as `rotate` does.
    fn replace(path: &Path, text: &str) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    /// Waits (bounded: 5 s) until `handle`'s active kid is `kid`; how long that took.
    fn picked_up(handle: &KeyRingHandle, kid: &str) -> Duration {
        let start = Instant::now();
        while handle.load().active().kid() != kid {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{kid} was not picked up; the ring is {:?}",
                handle.load()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        start.elapsed()
    }

    fn within_two_seconds(took: Duration) {
        assert!(took < Duration::from_secs(2), "took {took:?}");
    }

    /// A Kubernetes Secret volume: `keys.json -> ..data/keys.json`, `..data -> ..v1`. An
    /// update writes a new folder, points `..data_tmp` at it, renames that over `..data`
    /// (atomic) and removes the old folder.
    #[cfg(unix)]
    fn kubernetes_volume(dir: &Path, text: &str) -> PathBuf {
        std::fs::create_dir(dir.join("..v1")).unwrap();
        std::fs::write(dir.join("..v1/keys.json"), text).unwrap();
        std::os::unix::fs::symlink("..v1", dir.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/keys.json", dir.join("keys.json")).unwrap();
        dir.join("keys.json")
    }

    #[cfg(unix)]
    fn kubernetes_update(dir: &Path, version: u32, text: &str) {
        let new = format!("..v{version}");
        std::fs::create_dir(dir.join(&new)).unwrap();
        std::fs::write(dir.join(&new).join("keys.json"), text).unwrap();
        std::os::unix::fs::symlink(&new, dir.join("..data_tmp")).unwrap();
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
        std::fs::remove_dir_all(dir.join(format!("..v{}", version - 1))).unwrap();
    }

    #[test]
    fn writes_and_renames_are_picked_up_within_two_seconds() {
        let dir = scratch("writes");
        let path = dir.join("keys.json");
        std::fs::write(&path, set("a")).unwrap();
        let handle = KeyRingHandle::new(KeyRing::generate());
        let watch = handle.watch_file(&path).unwrap();
        assert_eq!(watch.mode(), KeyFileWatchMode::Events);
        assert_eq!(handle.load().active().kid(), "a", "loaded at once");
        std::fs::write(&path, set("b")).unwrap();
        within_two_seconds(picked_up(&handle, "b"));
        replace(&path, &set("c"));
        within_two_seconds(picked_up(&handle, "c"));
        assert_eq!(watch.reloads(), 2);
        assert_eq!(watch.failures(), 0);
        // Other files in the folder change nothing and are not failures.
        std::fs::write(dir.join("notes.txt"), "not keys").unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!((watch.reloads(), watch.failures()), (2, 0));
        drop(watch);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_kubernetes_symlink_swap_is_picked_up_by_events_and_by_polling() {
        for (name, options) in [
            ("k8s-events", KeyFileWatchOptions::new()),
            (
                "k8s-polling",
                KeyFileWatchOptions::new().poll(DEFAULT_KEY_FILE_POLL),
            ),
        ] {
            let dir = scratch(name);
            let path = kubernetes_volume(&dir, &set("v1"));
            let handle = KeyRingHandle::new(KeyRing::from_file(&path).unwrap());
            let watch = handle.watch_file_with(&path, options.clone()).unwrap();
            for version in 2..=3 {
                let kid = format!("v{version}");
                kubernetes_update(&dir, version, &set(&kid));
                within_two_seconds(picked_up(&handle, &kid));
            }
            assert_eq!(watch.reloads(), 2, "{name}");
            assert_eq!(watch.failures(), 0, "{name}");
            drop(watch);
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    /// A folder that is never quiet (a log written beside the keys, something reading
    /// files there) still gets its key file read, and reads do not count as changes.
    #[test]
    fn a_busy_folder_does_not_hold_a_change_back() {
        let dir = scratch("busy");
        let path = dir.join("keys.json");
        std::fs::write(&path, set("before")).unwrap();
        let handle = KeyRingHandle::new(KeyRing::from_file(&path).unwrap());
        let watch = handle.watch_file(&path).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let busy = {
            let (stop, log) = (Arc::clone(&stop), dir.join("app.log"));
            std::thread::spawn(move || {
                use std::io::Write as _;
                let mut f = std::fs::File::create(&log).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    writeln!(f, "a line").unwrap();
                    let _ = std::fs::read(&log);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        replace(&path, &set("after"));
        within_two_seconds(picked_up(&handle, "after"));
        stop.store(true, Ordering::Relaxed);
        busy.join().unwrap();
        assert_eq!((watch.reloads(), watch.failures()), (1, 0));
        drop(watch);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_that_does_not_load_is_counted_and_the_ring_stays() {
        let dir = scratch("bad");
        let path = dir.join("keys.json");
        std::fs::write(&path, set("good")).unwrap();
        let handle = KeyRingHandle::new(KeyRing::from_file(&path).unwrap());
        let watch = handle.watch_file(&path).unwrap();
        replace(&path, r#"{"keys":[{"kty":"oct","#);
        let start = Instant::now();
        while watch.failures() == 0 {
            assert!(start.elapsed() < Duration::from_secs(5), "never counted");
            std::thread::sleep(Duration::from_millis(10));
        }
        within_two_seconds(start.elapsed());
        assert_eq!(handle.load().active().kid(), "good");
        assert_eq!(watch.reloads(), 0);
        replace(&path, &set("fixed"));
        within_two_seconds(picked_up(&handle, "fixed"));
        assert_eq!(watch.failures(), 1);
        drop(watch);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dropping_the_watcher_stops_the_watch() {
        let dir = scratch("drop");
        let path = dir.join("keys.json");
        std::fs::write(&path, set("first")).unwrap();
        let handle = KeyRingHandle::new(KeyRing::from_file(&path).unwrap());
        let watch = handle.watch_file(&path).unwrap();
        drop(watch);
        replace(&path, &set("second"));
        // Four times the settling delay and more than events take: nothing comes.
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(handle.load().active().kid(), "first");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_that_does_not_load_at_the_start_is_an_error() {
        let dir = scratch("start");
        let handle = KeyRingHandle::new(KeyRing::generate());
        let before = handle.load().active().kid().to_owned();
        assert!(matches!(
            handle.watch_file(dir.join("missing.json")),
            Err(KeyError::Io { .. })
        ));
        std::fs::write(dir.join("bad.json"), "{").unwrap();
        assert!(matches!(
            handle.watch_file(dir.join("bad.json")),
            Err(KeyError::Json { .. })
        ));
        assert_eq!(handle.load().active().kid(), before);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
