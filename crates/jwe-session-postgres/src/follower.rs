//! The follower: reads the revocation table into the mirror for the life of the store.
//! It wakes on a `NOTIFY` (the listener's), on the listener's (re)connect, or every poll
//! interval, and reads the rows numbered after the last it saw; on every read it also
//! compares the database with the one it knew ([`Resync`], the core's rule): the same, it reads on; the
//! first load, it reads the cut-offs and the window; a database replaced or gone back in
//! time, it writes back what this instance knows first.
//!
//! The listener is a task of its own, on a connection of its own (a one-connection pool
//! with the app pool's options): it never holds one of the app's connections, and the
//! follower never waits on it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt as _;
use jwe_session_core::{Lost, Resync};
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{PgPool, Row as _};
use tokio::sync::oneshot;

use crate::conn::bounded;
use crate::error::BackendError;
use crate::rows::{self, Stored};
use crate::store::Shared;

/// How many rows one catch-up read asks for.
const READ_COUNT: i64 = 1_000;

/// How often the follower sweeps expired entries out of the mirror and the tables.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Where the follower is in which database.
#[derive(Default)]
pub(crate) struct Position {
    epoch: Option<String>,
    last: Option<i64>,
}

/// Follows the table for the life of the store. The first attempt's outcome goes to
/// `connect`, which fails if it fails; later failures mark the store disconnected and
/// are retried at the next wake-up or poll.
pub(crate) async fn follow_loop(
    shared: Arc<Shared>,
    first: oneshot::Sender<Result<usize, BackendError>>,
) {
    let mut pos = Position::default();
    match sync(&shared, &mut pos).await {
        Ok(n) => {
            set_connected(&shared, true);
            let _ = first.send(Ok(n));
        }
        Err(e) => {
            let _ = first.send(Err(e));
            return;
        }
    }
    let mut pruned = tokio::time::Instant::now();
    let mut backoff = shared.poll;
    loop {
        let _ = tokio::time::timeout(backoff, shared.news.notified()).await;
        match sync(&shared, &mut pos).await {
            Ok(_) => {
                if !shared.connected.load(Ordering::SeqCst) {
                    // Whatever waited for the database goes now.
                    shared.queued.notify_one();
                }
                set_connected(&shared, true);
                backoff = shared.poll;
            }
            Err(e) => {
                if shared.connected.load(Ordering::SeqCst) {
                    tracing::warn!(error = ?e, "revocation table: PostgreSQL unreachable; retrying");
                }
                set_connected(&shared, false);
                backoff = (backoff * 2).min(shared.max_backoff.max(shared.poll));
            }
        }
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = tokio::time::Instant::now();
            let now = shared.clock.now();
            shared.mirror.prune(now);
            if let Err(e) = shared.writer.prune(now, 1_000, 10).await {
                tracing::debug!(error = ?e, "revocation table: pruning failed; next time");
            }
        }
    }
}

fn set_connected(shared: &Shared, up: bool) {
    if shared.connected.swap(up, Ordering::SeqCst) != up {
        shared.bump();
    }
}

/// Holds `LISTEN` on the channel on a connection of its own for the life of the store,
/// waking the follower on every notification and every (re)connect (so it catches up on
/// what came while nobody listened). Backs off while PostgreSQL is unreachable.
pub(crate) async fn listen_loop(shared: Arc<Shared>, pool: PgPool) {
    let options = (*pool.connect_options()).clone();
    let own = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(shared.writer.timeout.max(Duration::from_secs(1)))
        .connect_lazy_with(options);
    let channel = shared.writer.sql.channel().to_owned();
    let mut backoff = Duration::from_millis(50);
    loop {
        let opened = bounded(shared.writer.timeout, async {
            let mut l = PgListener::connect_with(&own).await?;
            l.listen(&channel).await?;
            Ok::<_, sqlx::Error>(l)
        })
        .await;
        match opened {
            Ok(mut listener) => {
                shared.listening.store(true, Ordering::SeqCst);
                // Listening now: a catch-up from here misses nothing.
                shared.news.notify_one();
                backoff = Duration::from_millis(50);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(_)) => shared.news.notify_one(),
                        // Lost and reconnected (LISTEN again): catch up.
                        Ok(None) => shared.news.notify_one(),
                        Err(e) => {
                            tracing::warn!(error = ?e, "revocation channel: listener lost; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(error = ?e, "revocation channel: cannot listen yet"),
        }
        shared.listening.store(false, Ordering::SeqCst);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(shared.max_backoff);
    }
}

/// Brings the mirror in step with the table; how many revocations it applied.
pub(crate) async fn sync(shared: &Shared, pos: &mut Position) -> Result<usize, BackendError> {
    let w = &shared.writer;
    // What was seen before asking was in the table before it answered: a write that
    // lands meanwhile cannot look like a loss.
    let seen = w.seen();
    let row = bounded(
        w.timeout,
        sqlx::query(w.sql.state.clone()).fetch_one(&w.pool),
    )
    .await?;
    let epoch: Option<String> = row.try_get(0).map_err(BackendError::from)?;
    let newest: i64 = row.try_get(1).map_err(BackendError::from)?;
    let Some(epoch) = epoch else {
        return Err(BackendError::Schema {
            schema: w.sql.schema.clone(),
            found: None,
            expected: crate::schema::FORMAT,
        });
    };
    let went_back = newest < seen;
    match Resync::decide(pos.epoch.as_deref(), &epoch, went_back) {
        Resync::Continue => {}
        Resync::Reload => pos.last = None,
        Resync::Repair(lost) => {
            let why = match lost {
                Lost::Replaced => "the revocation schema was replaced (epoch changed)",
                Lost::WentBack => "PostgreSQL came back with older data (its newest revocation is older than one this instance saw)",
            };
            repair(shared, why);
            w.rewind(seen, newest);
            pos.last = None;
        }
    }
    pos.epoch = Some(epoch);
    match pos.last {
        None => {
            let (n, last) = load(shared).await?;
            pos.last = Some(last);
            Ok(n)
        }
        Some(from) => {
            let mut from = from;
            let mut applied = 0;
            loop {
                let rows = bounded(
                    w.timeout,
                    sqlx::query(w.sql.since.clone())
                        .bind(from)
                        .bind(READ_COUNT)
                        .fetch_all(&w.pool),
                )
                .await?;
                let rows: Vec<Stored> = rows.iter().filter_map(rows::decode_or_set_aside).collect();
                let Some(last) = rows.last().map(|s| s.seq) else {
                    break;
                };
                from = last;
                applied += shared.apply(&rows);
                if i64::try_from(rows.len()).unwrap_or(0) < READ_COUNT {
                    break;
                }
            }
            pos.last = Some(from);
            Ok(applied)
        }
    }
}

/// The first load (and every reload): in one repeatable-read transaction, the newest
/// number, the cut-offs in force and the session revocations of the window. Its cost
/// follows the revocations that matter, never the table's size. How many it applied, and
/// the number to read on from.
async fn load(shared: &Shared) -> Result<(usize, i64), BackendError> {
    let w = &shared.writer;
    let now = shared.clock.now();
    let window_us = i64::try_from(shared.window.as_micros()).unwrap_or(i64::MAX);
    // Long: a first load may read a million rows; each row is small.
    let limit = w.timeout.max(Duration::from_secs(30));
    let (newest, stored) = bounded(limit, async {
        let mut tx = w.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
        let state = sqlx::query(w.sql.state.clone()).fetch_one(&mut *tx).await?;
        let newest: i64 = state.try_get(1)?;
        let db_now_us: i64 = state.try_get(2)?;
        let mut stored = Vec::new();
        {
            let mut cut = sqlx::query(w.sql.cutoffs.clone())
                .bind(rows::secs(now))
                .fetch(&mut *tx);
            while let Some(r) = cut.try_next().await? {
                stored.extend(rows::decode_or_set_aside(&r));
            }
        }
        {
            let mut recent = sqlx::query(w.sql.recent.clone())
                .bind(db_now_us.saturating_sub(window_us))
                .bind(rows::secs(now))
                .fetch(&mut *tx);
            while let Some(r) = recent.try_next().await? {
                stored.extend(rows::decode_or_set_aside(&r));
            }
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>((newest, stored))
    })
    .await?;
    let n = shared.apply(&stored);
    w.saw(newest);
    tracing::info!(
        revocations = n,
        mirror = shared.mirror.len(),
        "revocation mirror loaded from PostgreSQL"
    );
    Ok((n, newest))
}

/// Writes back what this instance knows (its mirror, with each entry's whole `until`, and
/// its durable queue) to a database that lost some of it, through the queue. Idempotent:
/// what the table still holds changes nothing and announces nothing.
fn repair(shared: &Shared, why: &'static str) {
    let now = shared.clock.now();
    let mut known = shared.mirror.snapshot(now);
    known.extend(shared.journal.snapshot(now));
    tracing::warn!(
        revocations = known.len(),
        "{why}; writing back what this instance knows"
    );
    shared.enqueue(known);
    shared.repairs.fetch_add(1, Ordering::SeqCst);
    shared.bump();
}
