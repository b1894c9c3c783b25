//! Renewal: the authoritative revocation check and the app's renew hook, for a token past
//! `exp`, a claims refresh, and [`SessionHandle::recheck`](crate::SessionHandle::recheck).

use std::time::Instant;

use jwe_session_core::{Claims, SessionIds, UnixMicros};

use crate::handle::{Pending, SessionHandle};
use crate::metrics::Refusal;
use crate::options::Renew;
use crate::shared::Shared;

/// Why a session is renewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Early {
    /// Past `exp`: the usual renewal.
    No,
    /// Before `exp`, for the claims refresh made at this moment.
    Refresh(UnixMicros),
}

/// Renews a session past `exp` (or before it, for a claims refresh): the authoritative
/// revocation check, then the hook. `Err` carries what to do with the cookie instead, and
/// why.
pub(crate) async fn renew<T: Clone + Send + 'static>(
    shared: &Shared<T>,
    mut claims: Claims<T>,
    now: jwe_session_core::UnixTime,
    early: Early,
) -> Result<Claims<T>, (Pending, Refusal)> {
    let began = Instant::now();
    let verdict = shared
        .store
        .check_authoritative(SessionIds::from(&claims), now)
        .await;
    crate::metrics::authoritative_check(began.elapsed());
    let verdict = match verdict {
        Ok(v) => v,
        Err(e) if shared.fail_open || matches!(early, Early::Refresh(_)) => {
            // A token before its `exp` is trusted from the local view anyway: a refresh
            // the store cannot check still applies the hook's claims, never logs out.
            crate::metrics::store_error("check");
            tracing::warn!(error = ?e, policy = "fail-open", "revocation store unavailable; renewing from the local view");
            shared.store.check(SessionIds::from(&claims), now)
        }
        Err(e) => {
            crate::metrics::store_error("check");
            // Keep the cookie: once the store answers again the session can still renew.
            tracing::warn!(error = ?e, policy = "fail-closed", "revocation store unavailable; not renewing");
            return Err((Pending::Nothing, Refusal::StoreUnavailable));
        }
    };
    if let Some(r) = verdict {
        tracing::debug!(reason = %r, "session revoked");
        return Err((Pending::Clear, Refusal::Revoked));
    }
    if let Some(hook) = &shared.renew {
        match hook(claims.clone()).await {
            Renew::Keep => {}
            Renew::Update(app) => claims.app = app,
            Renew::Refuse => {
                tracing::debug!(reason = "renew hook refused", "session ended");
                return Err((Pending::Clear, Refusal::RenewRefused));
            }
            Renew::Unavailable => {
                // Keep the cookie: the hook decides once its data answers again.
                tracing::debug!(reason = "renew hook unavailable", "session not renewed");
                return Err((Pending::Nothing, Refusal::RenewUnavailable));
            }
        }
    }
    // To the microsecond, from the layer's strictly increasing source, and after the
    // refresh being answered even if it came from an instance whose clock is ahead: the
    // new token is never caught by it again.
    let issued = match early {
        Early::No => shared.moment(),
        Early::Refresh(at) => shared.moments.next_after(&*shared.clock, at),
    };
    shared.reissue(&mut claims, issued);
    shared.note_renewal(&claims, issued.secs()).await;
    Ok(claims)
}

// `recheck` lives here, beside the renewal it reruns: the handle module does not import
// the service.
impl<T: Clone + Send + 'static> SessionHandle<T> {
    /// Checks the session again as a renewal would, for a long-lived connection (a
    /// WebSocket, a gRPC stream) whose request was answered long ago: the absolute
    /// lifetime, the store's authoritative revocation check, and the app's renew hook
    /// (`on_renew`), which may change the claims or refuse (a ban). Run it when a
    /// [`watch`](Self::watch) completes with
    /// [`WatchEnd::Refreshed`](jwe_session_core::WatchEnd::Refreshed), then watch again:
    /// the new claims are issued after the refresh, which no longer covers them.
    ///
    /// The handle then holds the new claims (if the response has not been written yet,
    /// it carries them as a renewed token), or no session after a refusal.
    ///
    /// ```
    /// # async fn on_refresh(handle: jwe_session::SessionHandle<()>) {
    /// match handle.recheck().await {
    ///     Ok(claims) => { /* go on with `claims`; watch again */ }
    ///     Err(e) => { /* close the connection: `e` says why */ }
    /// }
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`crate::RecheckError::NoSession`] without a session; [`crate::RecheckError::Expired`] past the
    /// absolute lifetime; [`crate::RecheckError::Revoked`]; [`crate::RecheckError::Refused`] when the
    /// renew hook refuses; [`crate::RecheckError::Unavailable`] when the store (fail-closed) or
    /// the hook ([`Renew::Unavailable`](crate::Renew::Unavailable)) cannot answer: the
    /// session is not ended, but not vouched for either.
    pub async fn recheck(&self) -> Result<Claims<T>, crate::RecheckError> {
        self.load().await;
        let claims = self.claims().ok_or(crate::RecheckError::NoSession)?;
        let now = self.shared.clock.now();
        let early = match self.shared.lifetimes.stage(&claims, now) {
            jwe_session_core::Stage::AbsoluteExpired | jwe_session_core::Stage::Incomplete => {
                self.end_here();
                return Err(crate::RecheckError::Expired);
            }
            _ => self
                .shared
                .store
                .refresh_due(SessionIds::from(&claims), now)
                .map_or(Early::No, Early::Refresh),
        };
        match renew(&self.shared, claims, now, early).await {
            Ok(renewed) => {
                let mut st = self.lock();
                st.current = Some(renewed.clone());
                if !st.written && st.pending == Pending::Nothing {
                    st.pending = Pending::Reseal;
                }
                Ok(renewed)
            }
            Err((_, Refusal::Revoked)) => {
                self.end_here();
                Err(crate::RecheckError::Revoked)
            }
            Err((_, Refusal::RenewRefused)) => {
                self.end_here();
                Err(crate::RecheckError::Refused)
            }
            Err(_) => Err(crate::RecheckError::Unavailable),
        }
    }

    /// No session from here on; the cookie is cleared if the response is still to come.
    fn end_here(&self) {
        let mut st = self.lock();
        st.current = None;
        if !st.written {
            st.pending = Pending::Clear;
        }
    }
}
