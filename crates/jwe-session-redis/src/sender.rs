//! The sender: sends what the outbox holds whenever it holds something, backing off while
//! Redis is unreachable.

use std::sync::Arc;
use std::time::Duration;

use crate::conn;
use crate::error::BackendError;
use crate::layout;
use crate::store::Shared;

/// Sends queued revocations whenever there are some, backing off while Redis is
/// unreachable. A batch that Redis refuses (a script error, not an outage) is sent again
/// one revocation at a time, so one entry Redis will never take is set aside, logged once,
/// and holds back nothing else.
pub(crate) async fn send_loop(shared: Arc<Shared>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let batch = shared.outbox.batch(layout::BATCH * 8);
        if batch.is_empty() {
            shared.outbox.changed().await;
            continue;
        }
        let outcome = match shared.writer.send(&batch).await {
            Err(e) if conn::refused(&e) => isolate(&shared, &batch).await,
            other => other,
        };
        match outcome {
            Ok(changed) => {
                // What was merged into an entry meanwhile stays: it goes next round.
                let left = shared.outbox.settle(&batch);
                shared.bump();
                tracing::info!(
                    sent = batch.len(),
                    changed,
                    left,
                    "queued revocations sent to Redis"
                );
                backoff = Duration::from_millis(50);
            }
            Err(e) => {
                if backoff == Duration::from_millis(50) {
                    tracing::warn!(error = ?e, queued = batch.len(), "Redis refuses queued revocations; retrying with backoff");
                } else {
                    tracing::debug!(error = ?e, queued = batch.len(), "Redis still refuses queued revocations");
                }
                let _ = tokio::time::timeout(backoff, shared.outbox.changed()).await;
                backoff = (backoff * 2).min(shared.max_backoff);
            }
        }
    }
}

/// Sends a refused batch one revocation at a time: each one Redis takes leaves the queue,
/// each one it refuses is dropped with a warning; an outage stops it (what is left goes
/// in the next round). How many changed what Redis held.
async fn isolate(
    shared: &Shared,
    batch: &[jwe_session_core::Revocation],
) -> Result<usize, BackendError> {
    let mut changed = 0;
    for one in batch {
        match shared.writer.send(std::slice::from_ref(one)).await {
            Ok(n) => changed += n,
            Err(e) if conn::refused(&e) => {
                tracing::warn!(
                    error = ?e,
                    key = shared.writer.keys.point(one).as_str(),
                    "Redis refuses one revocation; dropped from the queue (the others go on)"
                );
            }
            Err(e) => return Err(e),
        }
        shared.outbox.settle(std::slice::from_ref(one));
    }
    Ok(changed)
}
