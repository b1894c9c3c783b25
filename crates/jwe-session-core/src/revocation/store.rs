//! The store trait: what the layer asks of wherever revocations are kept, one result type
//! per operation.

use std::future::Future;
use std::pin::Pin;

use super::model::{Revocation, Revoked, SessionIds};
use super::registry::{RegistryError, SessionRecord, SessionRegistry};
use super::watch::RevocationWatch;
use crate::error::{CheckError, Recorded, RevokeError, WatchUnsupported};
use crate::time::{UnixMicros, UnixTime};

/// A boxed, `Send` future, as the object-safe [`RevocationStore`] methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where revocations are kept.
///
/// [`check`](Self::check) is the hot path: it runs on every request and must answer from
/// memory. [`check_authoritative`](Self::check_authoritative) runs when a token is renewed
/// and may ask a shared backend. [`revoke`](Self::revoke) records one. Each operation has
/// its own result: a check says why a session is revoked, if it is; a revoke says how it
/// was [`Recorded`]; each fails only with what that operation can fail with.
///
/// Every method takes `now`, the caller's clock (the layer's injected one); none reads the
/// system clock.
pub trait RevocationStore: Send + Sync + 'static {
    /// Why a session is revoked, from memory; `None` if it is not.
    fn check(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<Revoked>;

    /// Whether a claims refresh ([`Revocation::Tokens`]) takes this token through
    /// renewal before its `exp`, from memory, like [`check`](Self::check): the refresh's
    /// moment if so (the renewed token must be issued after it). A store that does not keep
    /// refreshes answers `None` (the default): its tokens then renew at `exp` only.
    fn refresh_due(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<UnixMicros> {
        let _ = (ids, now);
        None
    }

    /// Watches a session: the returned [`RevocationWatch`] completes when a revocation
    /// that ends it reaches this store's memory (from this instance, or through a shared
    /// backend from any other), or a claims refresh that covers its token does
    /// ([`WatchEnd::Refreshed`](super::WatchEnd::Refreshed)), and at once if either is in force already. No polling:
    /// the store wakes exactly the watches a revocation ends.
    ///
    /// # Errors
    /// [`WatchUnsupported`] from a store that cannot watch (the default; every store of
    /// this project can).
    fn watch(
        &self,
        ids: SessionIds<'_>,
        now: UnixTime,
    ) -> Result<RevocationWatch, WatchUnsupported> {
        let _ = (ids, now);
        Err(WatchUnsupported)
    }

    /// The authoritative answer, for renewal: why the session is revoked, if it is. Stores
    /// without a remote backend answer from memory, which is the default.
    ///
    /// # Errors
    /// [`CheckError`] if a shared backend could not answer.
    fn check_authoritative<'a>(
        &'a self,
        ids: SessionIds<'a>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<Revoked>, CheckError>> {
        let answer = self.check(ids, now);
        Box::pin(async move { Ok(answer) })
    }

    /// How long after it was made this store keeps a session revocation where
    /// [`check`](Self::check) sees it; `None` (the default) means until the revocation's
    /// `until`. A store that forgets sooner (a shared store's bounded mirror) says so, and
    /// the session layer refuses a store that forgets before every token the revocation
    /// affects has expired ([`Lifetimes::mirror_window`](crate::Lifetimes::mirror_window)).
    fn memory_window(&self) -> Option<std::time::Duration> {
        None
    }

    /// The session registry this store keeps ("your devices"), if it keeps one: `None`
    /// by default. [`MemoryStore`](super::MemoryStore), `FileStore` and `RedisStore` keep
    /// one.
    fn registry(&self) -> Option<&dyn SessionRegistry> {
        None
    }

    /// The live sessions of `sub`, oldest first: the registry's records whose `until` is
    /// after `now` and whose session no revocation ends (by the
    /// [authoritative check](Self::check_authoritative): a logout, a logout everywhere, an
    /// emergency cut-off, made on any instance). The one rule for what a device list shows
    /// and a per-user cap counts. It only reads.
    ///
    /// # Errors
    /// [`RegistryError::Unsupported`] from a store without a registry; the backend's
    /// [`RegistryError::Timeout`] or [`RegistryError::Unavailable`] when the registry or
    /// the revocation check could not answer.
    fn sessions_of<'a>(
        &'a self,
        sub: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Vec<SessionRecord>, RegistryError>> {
        Box::pin(async move {
            let registry = self.registry().ok_or(RegistryError::Unsupported)?;
            let mut live = Vec::new();
            for record in registry.records_of(sub, now).await? {
                if record.sub != sub || record.until <= now {
                    continue;
                }
                let ids = SessionIds {
                    sid: Some(&record.sid),
                    sub: Some(&record.sub),
                    started: Some(record.started),
                    issued: None,
                };
                // Revoked by any scope: not listed. The record itself stays until its
                // `until` (a list never writes); the layer removes what it ends.
                if self.check_authoritative(ids, now).await?.is_none() {
                    live.push(record);
                }
            }
            live.sort_by(|a, b| a.started.cmp(&b.started).then_with(|| a.sid.cmp(&b.sid)));
            Ok(live)
        })
    }

    /// Records a revocation, in force on this instance when it returns `Ok`: either
    /// [`Recorded::Stored`] where every instance sees it, or [`Recorded::Queued`] here,
    /// sent on by the store.
    ///
    /// # Errors
    /// [`RevokeError`]: nothing was recorded.
    fn revoke(
        &self,
        revocation: Revocation,
        now: UnixTime,
    ) -> BoxFuture<'_, Result<Recorded, RevokeError>>;
}
