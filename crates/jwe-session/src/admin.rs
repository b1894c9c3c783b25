//! [`SessionAdmin`]: the store-wide operations, which act on other users' sessions. Kept off
//! the per-request [`SessionHandle`](crate::SessionHandle), which acts on its own session.

use std::fmt;
use std::sync::Arc;

use jwe_session_core::{Recorded, RegistryError, Revocation, RevokeError, SessionRecord};

use crate::shared::Shared;

/// Operations on sessions other than the request's own: refresh a user's claims, end
/// every session of a user, end everyone's. From [`SessionLayer::admin`](crate::SessionLayer::admin),
/// for an admin page, a background job or a ban; each is recorded in the layer's
/// revocation store (and so reaches every instance sharing it) and counted in the
/// metrics like a revocation made through a handle.
///
/// Cheap to clone; hand it to the handlers that need it (axum's `State` or `Extension`).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use jwe_session::{KeyRing, Recorded, SessionLayer};
///
/// let layer = SessionLayer::<()>::builder(KeyRing::generate()).build()?;
/// let admin = layer.admin();
/// // Roles of bob changed in the app's database: his tokens renew through `on_renew`.
/// assert!(matches!(admin.refresh_claims_of("bob").await?, Recorded::Stored));
/// // Bob is banned: every session he began until now ends, on every instance.
/// admin.end_subject("bob").await?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct SessionAdmin<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for SessionAdmin<T> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> fmt::Debug for SessionAdmin<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionAdmin").finish_non_exhaustive()
    }
}

impl<T> SessionAdmin<T> {
    pub(crate) fn new(shared: Arc<Shared<T>>) -> Self {
        Self { shared }
    }

    /// Takes every token of `sub` issued up to now through renewal on its next request,
    /// on every instance: the authoritative check and the app's renew hook (`on_renew`)
    /// run, so claims that changed (roles, say) apply at once rather than at the next
    /// renewal. Open [`watch`](crate::SessionHandle::watch)es of `sub`'s sessions complete
    /// with [`WatchEnd::Refreshed`](crate::WatchEnd::Refreshed). Nothing is ended: a token
    /// that renews goes on. Kept in the store until every token issued before it has
    /// passed its `exp`.
    ///
    /// # Errors
    /// [`RevokeError`] if the store could not record it (`Ok(Recorded::Queued { .. })`:
    /// in force here, sent on by the store).
    pub async fn refresh_claims_of(&self, sub: impl Into<String>) -> Result<Recorded, RevokeError> {
        let at = self.shared.moment();
        let r = Revocation::tokens(sub, at, &self.shared.lifetimes);
        self.shared.revoke(r, at.secs()).await
    }

    /// Ends every session of `sub` begun up to now, on every instance (a ban, a
    /// compromised account); a session `sub` begins afterwards is not affected.
    ///
    /// # Errors
    /// As [`refresh_claims_of`](Self::refresh_claims_of).
    pub async fn end_subject(&self, sub: impl Into<String>) -> Result<Recorded, RevokeError> {
        let at = self.shared.moment();
        let r = Revocation::subject(sub, at, &self.shared.lifetimes);
        self.shared.revoke(r, at.secs()).await
    }

    /// Ends every session of every user begun up to now (an emergency: a key leaked, a
    /// breach); everyone logs in again.
    ///
    /// # Errors
    /// As [`refresh_claims_of`](Self::refresh_claims_of).
    pub async fn end_everyone(&self) -> Result<Recorded, RevokeError> {
        let at = self.shared.moment();
        let r = Revocation::everyone(at, &self.shared.lifetimes);
        self.shared.revoke(r, at.secs()).await
    }

    /// The live sessions of `sub` ("their devices"), oldest first: for an admin page or a
    /// support tool. The same list [`SessionHandle::devices`](crate::SessionHandle::devices)
    /// shows the user.
    ///
    /// # Errors
    /// [`RegistryError::Unsupported`] from a store without a registry; the backend's
    /// errors when it could not answer.
    pub async fn devices_of(&self, sub: &str) -> Result<Vec<SessionRecord>, RegistryError> {
        self.shared
            .live_sessions(sub, self.shared.clock.now())
            .await
    }

    /// Ends one session of `sub` by its `sid`, on every instance. `Ok(None)` when `sub`
    /// has no live session with that `sid` (nothing revoked).
    ///
    /// # Errors
    /// [`EndDeviceError::Registry`](crate::EndDeviceError::Registry) when the registry
    /// could not be read, [`EndDeviceError::Revoke`](crate::EndDeviceError::Revoke) when the
    /// revocation could not be recorded.
    pub async fn end_device_of(
        &self,
        sub: &str,
        sid: &str,
    ) -> Result<Option<Recorded>, crate::EndDeviceError> {
        let now = self.shared.clock.now();
        let live = self
            .shared
            .live_sessions(sub, now)
            .await
            .map_err(crate::EndDeviceError::Registry)?;
        let Some(record) = live.into_iter().find(|r| r.sid == sid) else {
            return Ok(None);
        };
        self.shared
            .end_listed(&record, now)
            .await
            .map(Some)
            .map_err(crate::EndDeviceError::Revoke)
    }
}
