//! What the layer, every service and every handle share at run time: the resolved options
//! and the live parts (the store, the clock, the token cache, the moment counter), and the
//! one place a revocation made through the layer is recorded and counted.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::HeaderName;
use jwe_session_core::{
    Claims, Clock, Confirmation, KeyRingHandle, Lifetimes, Recorded, Revocation, RevocationStore,
    RevokeError, SessionIds, TokenOptions, UnixMicros, UnixTime, Validation,
};

use crate::cookies::CookieSettings;
use crate::dbsc::DeviceBound;
use crate::dpop::Dpop;
use crate::opened::OpenedCache;
use crate::options::{RejectionFormat, RenewHook, SessionCap, Transport};
use crate::origin::CrossOrigin;

/// The resolved configuration, shared by the layer, every service and every handle.
pub(crate) struct Shared<T> {
    pub(crate) ring: KeyRingHandle,
    pub(crate) opts: TokenOptions,
    pub(crate) validation: Validation,
    pub(crate) lifetimes: Lifetimes,
    pub(crate) cookie: CookieSettings,
    pub(crate) transport: Transport,
    pub(crate) token_header: HeaderName,
    pub(crate) store: Arc<dyn RevocationStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) renew: Option<RenewHook<T>>,
    pub(crate) fail_open: bool,
    pub(crate) issuer: Option<String>,
    pub(crate) audience: Option<String>,
    /// `None` when off: bearer-only transport, or turned off under `dangerous()`.
    pub(crate) cross_origin: Option<CrossOrigin>,
    /// The default purpose as layers before commit 069fde3 made it, without the issuer: accepted (and re-sealed
    /// under `opts`) only when the purpose is the default and an issuer is required, so
    /// the issuer check still tells apps apart.
    pub(crate) legacy_opts: Option<TokenOptions>,
    /// Orders session starts and revocations made through this layer.
    pub(crate) moments: Moments,
    /// Until when a token without `iss` is taken as this issuer's.
    pub(crate) issuer_grace: Option<UnixTime>,
    /// How the extractor answers a request without a session.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) rejection: RejectionFormat,
    /// Tokens opened recently, for the next request that carries one again.
    pub(crate) opened: OpenedCache<T>,
    /// DPoP, when configured.
    pub(crate) dpop: Option<Dpop>,
    /// Device-bound sessions (DBSC), when configured.
    pub(crate) dbsc: Option<DeviceBound>,
    /// The per-user session cap, when configured.
    pub(crate) cap: Option<SessionCap>,
}

/// Moments for session starts and revocation cut-offs: the clock's microseconds, but
/// strictly increasing, so "log out everywhere, then log in" through one layer always puts
/// the login after the cut-off, even when the clock has not moved (a frozen test clock, two
/// calls within one microsecond, or a wall clock stepped back).
#[derive(Debug, Default)]
pub(crate) struct Moments(AtomicU64);

impl Moments {
    pub(crate) fn next(&self, clock: &dyn Clock) -> UnixMicros {
        self.next_after(clock, UnixMicros::from_micros(0))
    }

    /// The next moment, and strictly after `floor` (a cut-off made by another instance,
    /// whose clock may be ahead of ours).
    pub(crate) fn next_after(&self, clock: &dyn Clock, floor: UnixMicros) -> UnixMicros {
        let now = clock
            .now_micros()
            .as_micros()
            .max(floor.as_micros().saturating_add(1));
        let prev = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(now.max(last.saturating_add(1)))
            })
            // The closure always returns `Some`, so this is the `Ok` value either way.
            .unwrap_or_else(|last| last);
        UnixMicros::from_micros(now.max(prev.saturating_add(1)))
    }
}

impl<T> Shared<T> {
    /// The moment of a session start, a token issue or a cut-off: the clock's
    /// microseconds, strictly increasing across this layer.
    pub(crate) fn moment(&self) -> UnixMicros {
        self.moments.next(&*self.clock)
    }

    /// New `iat`, `exp` and `jti` for claims that go on (a renewal, an update, a cycle), as
    /// of `moment`. A device-bound session's `exp` is never moved later here: only a
    /// refresh with the device's key extends it (at the DBSC refresh endpoint).
    pub(crate) fn reissue(&self, claims: &mut Claims<T>, moment: UnixMicros) {
        let kept = claims.exp;
        self.lifetimes.reissue(claims, moment);
        if claims
            .cnf
            .as_ref()
            .is_some_and(Confirmation::is_device_bound)
        {
            claims.exp = match (kept, claims.exp) {
                (Some(k), Some(e)) => Some(k.min(e)),
                (k, e) => k.or(e),
            };
        }
    }

    /// Revokes the `sid` a device-bound session had before registration, if it has not been
    /// yet (the memory of the store says), and drops it from the claims. Whether the claims
    /// changed: the token is then sealed again. A revocation the store cannot take now is
    /// tried again on the next request.
    pub(crate) async fn retire_previous(&self, claims: &mut Claims<T>, now: UnixTime) -> bool {
        let Some(prev) = claims
            .cnf
            .as_ref()
            .and_then(|c| c.dbsc.as_ref())
            .and_then(|k| k.prev.clone())
        else {
            return false;
        };
        let ids = SessionIds {
            sid: Some(&prev),
            ..SessionIds::from(&*claims)
        };
        if self.store.check(ids, now).is_none() {
            let revocation = Revocation::session(prev, claims.auth_time, now, &self.lifetimes);
            if let Err(e) = self.revoke(revocation, now).await {
                tracing::warn!(error = ?e, "the unbound sid a device-bound session replaced could not be revoked; trying again on its next request");
                return false;
            }
        }
        if let Some(key) = claims.cnf.as_mut().and_then(|c| c.dbsc.as_mut()) {
            key.prev = None;
        }
        true
    }

    /// Records a revocation made through this layer, counted by scope.
    pub(crate) async fn revoke(
        &self,
        revocation: Revocation,
        now: UnixTime,
    ) -> Result<Recorded, RevokeError> {
        crate::metrics::revoked(&revocation);
        let result = self.store.revoke(revocation, now).await;
        if result.is_err() {
            crate::metrics::store_error("revoke");
        }
        result
    }
}

impl<T> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("ring", &self.ring)
            .field("purpose", &self.opts.purpose())
            .field("lifetimes", &self.lifetimes)
            .field("cookie", &self.cookie)
            .field("transport", &self.transport)
            .field("token_header", &self.token_header)
            .field("renew_hook", &self.renew.is_some())
            .field("fail_open", &self.fail_open)
            .field("cross_origin", &self.cross_origin)
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}
