//! The follower: reads the replication log into the mirror for the life of the store. On
//! every (re)connect it compares the dataset with the one it knew ([`Resync`], the core's rule): the same,
//! it reads on from where it was; the first load, it reads the cut-offs and the log's
//! window; a Redis that lost data or came back older, it writes back what this instance
//! knows first. Between reads it checks the epoch and the log's end every second.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use jwe_session_core::{Lost, Resync};
use tokio::sync::oneshot;

use crate::conn::{bounded, Clients, Conn};
use crate::error::BackendError;
use crate::layout;
use crate::store::Shared;

/// How long one blocking read of the log waits for news.
pub(crate) const BLOCK: Duration = Duration::from_secs(1);

/// How often the follower confirms that Redis still holds our data (the epoch marker).
const EPOCH_EVERY: Duration = Duration::from_secs(1);

/// How often the follower sweeps expired entries out of the mirror (a sweep takes the
/// mirror's write lock and walks every entry, so not on every read).
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// How many log entries one read asks for.
const READ_COUNT: usize = 64;

/// Where the follower is in the log of which Redis dataset.
#[derive(Default)]
struct Position {
    epoch: Option<String>,
    last_id: Option<String>,
}

/// Follows the log for the life of the store; on any failure marks the mirror
/// disconnected, backs off and starts over from where it was. The first attempt's outcome
/// goes to `connect`, which fails if it fails.
pub(crate) async fn follow_loop(
    clients: Clients,
    shared: Arc<Shared>,
    first: oneshot::Sender<Result<usize, BackendError>>,
) {
    let mut first = Some(first);
    let mut pos = Position::default();
    let mut backoff = Duration::from_millis(50);
    loop {
        let e = match follow(&clients, &shared, &mut pos, &mut first).await {
            Ok(never) => match never {},
            Err(e) => e,
        };
        if let Some(tx) = first.take() {
            let _ = tx.send(Err(e));
            return;
        }
        tracing::warn!(error = ?e, "revocation log: Redis unreachable; retrying");
        if shared.connected.swap(false, Ordering::SeqCst) {
            backoff = Duration::from_millis(50);
            shared.bump();
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(shared.max_backoff);
    }
}

enum Never {}

async fn follow(
    clients: &Clients,
    shared: &Shared,
    pos: &mut Position,
    first: &mut Option<oneshot::Sender<Result<usize, BackendError>>>,
) -> Result<Never, BackendError> {
    let t = shared.writer.timeout;
    let mut conn = clients.blocking(t, BLOCK).await?;
    let loaded = sync(&mut conn, shared, pos, false).await?;
    shared.connected.store(true, Ordering::SeqCst);
    shared.bump();
    // Whatever waited for Redis goes now.
    shared.outbox.wake();
    if let Some(tx) = first.take() {
        let _ = tx.send(Ok(loaded));
    }
    let log = shared.writer.keys.log();
    let epoch_key = shared.writer.keys.epoch();
    let mut epoch_checked = tokio::time::Instant::now();
    let mut pruned = tokio::time::Instant::now();
    loop {
        let from = pos.last_id.clone().unwrap_or_else(|| "$".to_owned());
        let read = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(u64::try_from(BLOCK.as_millis()).unwrap_or(1000))
            .arg("STREAMS")
            .arg(&log)
            .arg(&from)
            .to_owned();
        let reply: redis::Value = bounded(BLOCK + t, read.query_async(&mut conn)).await?;
        let entries = layout::read_entries(reply);
        if let Some((id, _)) = entries.last() {
            pos.last_id = Some(id.clone());
        }
        shared.apply_entries(&entries);
        if epoch_checked.elapsed() >= EPOCH_EVERY {
            epoch_checked = tokio::time::Instant::now();
            let epoch: Option<String> =
                bounded(t, redis::cmd("GET").arg(&epoch_key).query_async(&mut conn)).await?;
            // A failover behind a proxy may keep the connection: look at the log too.
            let went_back = shared.writer.went_back(&mut conn).await?;
            if epoch != pos.epoch || went_back {
                sync(&mut conn, shared, pos, went_back).await?;
            }
        }
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = tokio::time::Instant::now();
            shared.mirror.prune(shared.clock.now());
        }
    }
}

/// Brings the mirror in step with Redis: checks the epoch and the log's end (repairing a
/// Redis that lost some or all of its data), loads the cut-offs, and reads the log's window unless we know where we were.
/// Returns how many revocations it applied.
/// `went_back`: the caller found already that Redis went back in time.
async fn sync(
    conn: &mut Conn,
    shared: &Shared,
    pos: &mut Position,
    went_back: bool,
) -> Result<usize, BackendError> {
    let t = shared.writer.timeout;
    let keys = &shared.writer.keys;
    let (epoch, (secs, micros)): (Option<String>, (u64, u64)) = bounded(
        t,
        redis::pipe()
            .get(keys.epoch())
            .cmd("TIME")
            .query_async(conn),
    )
    .await?;
    let epoch = match epoch {
        Some(e) => e,
        None => {
            let fresh = format!("{:032x}", rand::random::<u128>());
            let _: Option<String> = bounded(
                t,
                redis::cmd("SET")
                    .arg(keys.epoch())
                    .arg(&fresh)
                    .arg("NX")
                    .query_async(conn),
            )
            .await?;
            let set: Option<String> =
                bounded(t, redis::cmd("GET").arg(keys.epoch()).query_async(conn)).await?;
            set.unwrap_or(fresh)
        }
    };
    let went_back = went_back || shared.writer.went_back(conn).await?;
    match Resync::decide(pos.epoch.as_deref(), &epoch, went_back) {
        Resync::Continue => {}
        Resync::Reload => pos.last_id = None,
        Resync::Repair(lost) => {
            let why = match lost {
                Lost::Replaced => "Redis lost its revocation data (epoch marker changed)",
                Lost::WentBack => "Redis came back with older data (its log ends before entries this instance saw)",
            };
            repair(shared, why).await?;
            pos.last_id = None;
        }
    }
    pos.epoch = Some(epoch);
    let mut applied = load_cutoffs(conn, shared, secs).await?;
    if pos.last_id.is_none() {
        let window_ms = shared.writer.window_ms();
        let server_ms = secs * 1000 + micros / 1000;
        let start = format!("{}-0", server_ms.saturating_sub(window_ms));
        let (n, last) = load_log(conn, shared, &start).await?;
        applied += n;
        pos.last_id = Some(last.unwrap_or(start));
    }
    Ok(applied)
}

/// Writes back what this instance knows (its mirror, with each entry's whole `until`, and
/// its durable queue) to a Redis that lost some or all of it. Idempotent: what Redis still
/// holds changes nothing and adds nothing to the log.
async fn repair(shared: &Shared, why: &'static str) -> Result<(), BackendError> {
    let now = shared.clock.now();
    let mut known = shared.mirror.snapshot(now);
    known.extend(shared.journal.snapshot(now));
    tracing::warn!(
        revocations = known.len(),
        "{why}; writing back what this instance knows"
    );
    shared.writer.raise_window().await?;
    shared.enqueue(known);
    // Counted once queued: whoever sees the count sees the queue it made.
    shared.repairs.fetch_add(1, Ordering::SeqCst);
    shared.bump();
    Ok(())
}

/// Loads the subject and global cut-offs still in force, through their index.
async fn load_cutoffs(
    conn: &mut Conn,
    shared: &Shared,
    now_secs: u64,
) -> Result<usize, BackendError> {
    let t = shared.writer.timeout;
    let names: Vec<String> = bounded(
        t,
        redis::cmd("ZRANGEBYSCORE")
            .arg(shared.writer.keys.cutoffs())
            .arg(format!("({now_secs}"))
            .arg("+inf")
            .query_async(conn),
    )
    .await?;
    let now = shared.clock.now();
    let mut applied = 0;
    for chunk in names.chunks(1000) {
        let rows = bounded(t, layout::points_query(chunk).query_async(conn)).await?;
        for r in shared.writer.keys.decode_points(chunk, rows) {
            if matches!(shared.mirror.apply(&r, now), Ok(true)) {
                applied += 1;
            }
        }
    }
    if !names.is_empty() {
        shared.bump();
    }
    Ok(applied)
}

/// Reads the log from `start` to its end; how many revocations it applied and the last id.
async fn load_log(
    conn: &mut Conn,
    shared: &Shared,
    start: &str,
) -> Result<(usize, Option<String>), BackendError> {
    let t = shared.writer.timeout;
    let log = shared.writer.keys.log();
    let mut from = start.to_owned();
    let mut last = None;
    let mut applied = 0;
    loop {
        let reply: redis::Value = bounded(
            t,
            redis::cmd("XRANGE")
                .arg(&log)
                .arg(&from)
                .arg("+")
                .arg("COUNT")
                .arg(READ_COUNT)
                .query_async(conn),
        )
        .await?;
        let entries = layout::entries(reply);
        let Some((id, _)) = entries.last() else {
            return Ok((applied, last));
        };
        from = format!("({id}");
        last = Some(id.clone());
        applied += shared.apply_entries(&entries);
        if entries.len() < READ_COUNT {
            return Ok((applied, last));
        }
    }
}
