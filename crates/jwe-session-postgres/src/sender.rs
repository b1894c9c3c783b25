//! The sender: writes what the queue holds whenever it holds something, backing off while
//! PostgreSQL is unreachable.

use std::sync::Arc;
use std::time::Duration;

use jwe_session_core::Revocation;

use crate::conn::refused;
use crate::error::BackendError;
use crate::store::Shared;
use crate::writer::BATCH;

/// Writes queued revocations whenever there are some, backing off while PostgreSQL is
/// unreachable. A batch the database refuses for its data (not an outage, not a missing
/// grant) is sent again one revocation at a time, so one entry it will never take is set
/// aside, logged, and holds back nothing else.
pub(crate) async fn send_loop(shared: Arc<Shared>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let batch = shared.queue.batch(BATCH * 4);
        if batch.is_empty() {
            shared.queued.notified().await;
            continue;
        }
        let now = shared.clock.now();
        let outcome = match shared.writer.send(&batch, now).await {
            Err(e) if refused(&e) => isolate(&shared, &batch, now).await,
            other => other,
        };
        match outcome {
            Ok(changed) => {
                let left = shared.queue.settle(&batch);
                shared.bump();
                tracing::info!(
                    sent = batch.len(),
                    changed,
                    left,
                    "queued revocations written to PostgreSQL"
                );
                backoff = Duration::from_millis(50);
            }
            Err(e) => {
                if backoff == Duration::from_millis(50) {
                    tracing::warn!(error = ?e, queued = batch.len(), "PostgreSQL refuses queued revocations; retrying with backoff");
                } else {
                    tracing::debug!(error = ?e, queued = batch.len(), "PostgreSQL still refuses queued revocations");
                }
                let _ = tokio::time::timeout(backoff, shared.queued.notified()).await;
                backoff = (backoff * 2).min(shared.max_backoff);
            }
        }
    }
}

/// Sends a refused batch one revocation at a time: each one taken leaves the queue, each
/// one refused for its data is dropped with a warning; an outage stops it.
async fn isolate(
    shared: &Shared,
    batch: &[Revocation],
    now: jwe_session_core::UnixTime,
) -> Result<u64, BackendError> {
    let mut changed = 0;
    for one in batch {
        match shared.writer.send(std::slice::from_ref(one), now).await {
            Ok(n) => changed += n,
            Err(e) if refused(&e) => {
                tracing::warn!(
                    error = ?e,
                    scope = %one.scope(),
                    "PostgreSQL refuses one revocation; dropped from the queue (the others go on)"
                );
            }
            Err(e) => return Err(e),
        }
        shared.queue.settle(std::slice::from_ref(one));
    }
    Ok(changed)
}
