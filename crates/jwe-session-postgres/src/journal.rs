//! The durable queue (feature `file`): every revocation this instance made, in a
//! [`FileStore`](jwe_session_file::FileStore), so that what PostgreSQL did not take
//! survives a restart and a database that came back older can be repaired from it.
//! Without the feature, or without `queue_in`, a journal that holds nothing.

use jwe_session_core::{Revocation, Revoked, SessionIds, UnixTime};

/// This instance's durable record of the revocations it made, or nothing.
#[derive(Clone, Default)]
pub(crate) struct Journal {
    #[cfg(feature = "file")]
    file: Option<jwe_session_file::FileStore>,
}

impl Journal {
    /// A journal kept in `file`.
    #[cfg(feature = "file")]
    pub(crate) fn in_file(file: jwe_session_file::FileStore) -> Self {
        Self { file: Some(file) }
    }

    /// Every revocation it holds that is still in force at `now`.
    pub(crate) fn snapshot(&self, now: UnixTime) -> Vec<Revocation> {
        #[cfg(feature = "file")]
        if let Some(f) = &self.file {
            return f.snapshot(now);
        }
        let _ = now;
        Vec::new()
    }

    /// Why it says a session is revoked, if it does.
    pub(crate) fn revokes(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<Revoked> {
        #[cfg(feature = "file")]
        if let Some(f) = &self.file {
            use jwe_session_core::RevocationStore as _;
            return f.check(ids, now);
        }
        let _ = (ids, now);
        None
    }

    /// Records a revocation; whether it is on disk now.
    pub(crate) async fn write(&self, r: &Revocation, now: UnixTime) -> bool {
        #[cfg(feature = "file")]
        if let Some(f) = &self.file {
            use jwe_session_core::RevocationStore as _;
            return match f.revoke(r.clone(), now).await {
                Ok(_) => true,
                Err(e) => {
                    tracing::error!(error = ?e, "could not record a revocation in the durable queue");
                    false
                }
            };
        }
        let _ = (r, now);
        false
    }
}
