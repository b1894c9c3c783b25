//! Bounding calls: every call to PostgreSQL gets the store's timeout, and its failure
//! becomes a [`BackendError`].

use std::future::Future;
use std::time::Duration;

use crate::error::BackendError;

/// Runs `call`, failing with [`BackendError::Timeout`] after `timeout`.
pub(crate) async fn bounded<T, E>(
    timeout: Duration,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, BackendError>
where
    BackendError: From<E>,
{
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result.map_err(BackendError::from),
        Err(_) => Err(BackendError::Timeout { after: timeout }),
    }
}

/// Whether PostgreSQL refused the data itself (SQLSTATE class 22, a value out of range,
/// or 23, a constraint): sending the same again will not help. Anything else (an outage,
/// a missing grant, a schema dropped) may pass later, so what was queued stays queued.
pub(crate) fn refused(e: &BackendError) -> bool {
    let BackendError::Unavailable { source } = e else {
        return false;
    };
    match source.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(db)) => db
            .code()
            .is_some_and(|c| c.starts_with("22") || c.starts_with("23")),
        _ => false,
    }
}
