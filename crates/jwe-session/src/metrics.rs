//! What the layer reports through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`, on by default). The app installs the recorder it wants (Prometheus, StatsD,
//! OpenTelemetry, ...); without one every call is a no-op.
//!
//! | name | kind | labels | counts |
//! |---|---|---|---|
//! | `jwe_session_sessions_opened_total` | counter | | requests that carried a valid session |
//! | `jwe_session_sessions_started_total` | counter | | sessions started (logins) |
//! | `jwe_session_sessions_renewed_total` | counter | | sessions renewed past `exp` |
//! | `jwe_session_sessions_refreshed_total` | counter | | sessions renewed before `exp` by a claims refresh |
//! | `jwe_session_sessions_resealed_total` | counter | | tokens re-sealed under a newly active key |
//! | `jwe_session_sessions_refused_total` | counter | `reason` | tokens refused, by reason (below) |
//! | `jwe_session_revocations_total` | counter | `scope`: `session`, `subject`, `all`, `refresh` | revocations made through a [`SessionHandle`](crate::SessionHandle) |
//! | `jwe_session_cross_origin_refusals_total` | counter | | unsafe cross-origin requests refused with `403` |
//! | `jwe_session_dpop_refusals_total` | counter | `reason` | DPoP requests refused with `401` ([`DpopRefusal::as_str`](crate::DpopRefusal::as_str)) |
//! | `jwe_session_dbsc_registrations_total` | counter | | device-bound sessions registered (DBSC) |
//! | `jwe_session_dbsc_refreshes_total` | counter | | device-bound sessions refreshed with the device key |
//! | `jwe_session_dbsc_refusals_total` | counter | `reason` | DBSC registrations and refreshes refused ([`DbscRefusal::as_str`](crate::DbscRefusal::as_str)) |
//! | `jwe_session_sessions_capped_total` | counter | | sessions ended, or logins refused, by the per-user session cap |
//! | `jwe_session_store_errors_total` | counter | `op`: `revoke`, `check`, `registry` | revocation store (and session registry) failures |
//! | `jwe_session_key_seals` | gauge | `kid` | tokens this process sealed under the key |
//! | `jwe_session_key_budget_used_ratio` | gauge | `kid` | those seals over the key's budget ([`SEAL_LIMIT`](jwe_session_core::SEAL_LIMIT)); rotate well before 1 |
//! | `jwe_session_authoritative_check_seconds` | histogram | | latency of the store's authoritative check at renewal |
//!
//! Refusal reasons are a fixed set, never taken from input: `malformed` (not a token of
//! ours: shape, encoding, header, or an unreadable cookie), `unknown_kid` (sealed under a
//! key this instance lacks; the cookie is kept), `purpose` (sealed for another purpose),
//! `decrypt` (tampered, or another key with the same kid), `claims` (claims that do not
//! fit the type or fail validation), `expired` (idle or absolute lifetime over),
//! `revoked`, `renew_refused` (the `on_renew` hook said no), `renew_unavailable` (the hook
//! could not decide: its data was unreachable; the cookie is kept) and `store_unavailable`
//! (a renewal the store could not check, fail-closed); with DPoP, `bound` (a bound token sent
//! without its proof: a cookie, or `Bearer`), `unbound` (`Authorization: DPoP` with a token
//! bound to no key) and `key_mismatch` (a proof by another key: a stolen token); with DBSC,
//! `bound_expired` (a device-bound cookie past its `exp`, which only a refresh renews). `unknown_kid` is also what forged
//! headers count under: alert on its rate outside a rotation.

/// Counter: requests that carried a valid session.
pub const SESSIONS_OPENED: &str = "jwe_session_sessions_opened_total";
/// Counter: sessions started (logins).
pub const SESSIONS_STARTED: &str = "jwe_session_sessions_started_total";
/// Counter: sessions renewed past `exp`.
pub const SESSIONS_RENEWED: &str = "jwe_session_sessions_renewed_total";
/// Counter: sessions renewed before `exp` by a claims refresh.
pub const SESSIONS_REFRESHED: &str = "jwe_session_sessions_refreshed_total";
/// Counter: tokens re-sealed under a newly active key.
pub const SESSIONS_RESEALED: &str = "jwe_session_sessions_resealed_total";
/// Counter, label `reason`: tokens refused.
pub const SESSIONS_REFUSED: &str = "jwe_session_sessions_refused_total";
/// Counter, label `scope`: revocations made through a session handle.
pub const REVOCATIONS: &str = "jwe_session_revocations_total";
/// Counter: unsafe cross-origin requests refused with `403`.
pub const CROSS_ORIGIN_REFUSALS: &str = "jwe_session_cross_origin_refusals_total";
/// Counter, label `reason`: DPoP requests refused with `401`.
pub const DPOP_REFUSALS: &str = "jwe_session_dpop_refusals_total";
/// Device-bound sessions registered.
pub const DBSC_REGISTRATIONS: &str = "jwe_session_dbsc_registrations_total";
/// Device-bound sessions refreshed with the device key.
pub const DBSC_REFRESHES: &str = "jwe_session_dbsc_refreshes_total";
/// DBSC registrations and refreshes refused, by `reason`.
pub const DBSC_REFUSALS: &str = "jwe_session_dbsc_refusals_total";
/// Counter: sessions ended, or logins refused, by the per-user session cap.
pub const SESSIONS_CAPPED: &str = "jwe_session_sessions_capped_total";
/// Counter, label `op`: revocation store failures.
pub const STORE_ERRORS: &str = "jwe_session_store_errors_total";
/// Gauge, label `kid`: tokens this process sealed under the key.
pub const KEY_SEALS: &str = "jwe_session_key_seals";
/// Gauge, label `kid`: those seals over the key's budget.
pub const KEY_BUDGET_USED: &str = "jwe_session_key_budget_used_ratio";
/// Histogram: latency of the store's authoritative check at renewal, in seconds.
pub const AUTHORITATIVE_CHECK_SECONDS: &str = "jwe_session_authoritative_check_seconds";

/// The fixed set of refusal reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Malformed,
    UnknownKid,
    Purpose,
    Decrypt,
    Claims,
    Expired,
    Revoked,
    RenewRefused,
    RenewUnavailable,
    StoreUnavailable,
    /// A token bound to a key, sent without its proof (a cookie, a bearer header).
    Bound,
    /// `Authorization: DPoP` with a token bound to no key.
    Unbound,
    /// A DPoP proof by another key than the token's.
    KeyMismatch,
    /// A device-bound (DBSC) cookie past its `exp`: only a refresh with the key renews it.
    BoundExpired,
}

impl Refusal {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnknownKid => "unknown_kid",
            Self::Purpose => "purpose",
            Self::Decrypt => "decrypt",
            Self::Claims => "claims",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::RenewRefused => "renew_refused",
            Self::RenewUnavailable => "renew_unavailable",
            Self::StoreUnavailable => "store_unavailable",
            Self::Bound => "bound",
            Self::Unbound => "unbound",
            Self::KeyMismatch => "key_mismatch",
            Self::BoundExpired => "bound_expired",
        }
    }

    /// The reason a validation error counts under: lifetimes that ran out are `expired`.
    pub(crate) fn of_validation(e: &jwe_session_core::ValidationError) -> Self {
        use jwe_session_core::ValidationError as E;
        match e {
            E::Expired { .. } | E::AbsoluteLifetimeExceeded { .. } => Self::Expired,
            _ => Self::Claims,
        }
    }

    /// The reason an opening error counts under.
    pub(crate) fn of(e: &jwe_session_core::OpenError) -> Self {
        use jwe_session_core::OpenError as E;
        match e {
            E::PurposeMismatch { .. } => Self::Purpose,
            E::Decrypt => Self::Decrypt,
            E::ClaimsNotObject | E::ClaimsType(_) => Self::Claims,
            _ => Self::Malformed,
        }
    }
}

#[cfg(feature = "metrics")]
mod imp {
    use std::time::Duration;

    use jwe_session_core::{Revocation, SEAL_LIMIT};

    use super::Refusal;

    pub(crate) fn opened() {
        metrics::counter!(super::SESSIONS_OPENED).increment(1);
    }

    pub(crate) fn started() {
        metrics::counter!(super::SESSIONS_STARTED).increment(1);
    }

    pub(crate) fn renewed() {
        metrics::counter!(super::SESSIONS_RENEWED).increment(1);
    }

    pub(crate) fn refreshed() {
        metrics::counter!(super::SESSIONS_REFRESHED).increment(1);
    }

    pub(crate) fn resealed() {
        metrics::counter!(super::SESSIONS_RESEALED).increment(1);
    }

    pub(crate) fn refused(reason: Refusal) {
        metrics::counter!(super::SESSIONS_REFUSED, "reason" => reason.as_str()).increment(1);
    }

    pub(crate) fn revoked(r: &Revocation) {
        metrics::counter!(super::REVOCATIONS, "scope" => r.scope().label()).increment(1);
    }

    pub(crate) fn cross_origin_refused() {
        metrics::counter!(super::CROSS_ORIGIN_REFUSALS).increment(1);
    }

    pub(crate) fn dpop_refused(reason: &'static str) {
        metrics::counter!(super::DPOP_REFUSALS, "reason" => reason).increment(1);
    }

    pub(crate) fn dbsc_registered() {
        metrics::counter!(super::DBSC_REGISTRATIONS).increment(1);
    }

    pub(crate) fn dbsc_refreshed() {
        metrics::counter!(super::DBSC_REFRESHES).increment(1);
    }

    pub(crate) fn dbsc_refused(reason: &'static str) {
        metrics::counter!(super::DBSC_REFUSALS, "reason" => reason).increment(1);
    }

    pub(crate) fn capped() {
        metrics::counter!(super::SESSIONS_CAPPED).increment(1);
    }

    pub(crate) fn store_error(op: &'static str) {
        metrics::counter!(super::STORE_ERRORS, "op" => op).increment(1);
    }

    pub(crate) fn key_seals(kid: &str, count: u64) {
        // Seal counts stay far below 2^53, where f64 stops being exact.
        #[allow(clippy::cast_precision_loss)]
        let (count, limit) = (count as f64, SEAL_LIMIT as f64);
        metrics::gauge!(super::KEY_SEALS, "kid" => kid.to_owned()).set(count);
        metrics::gauge!(super::KEY_BUDGET_USED, "kid" => kid.to_owned()).set(count / limit);
    }

    pub(crate) fn authoritative_check(took: Duration) {
        metrics::histogram!(super::AUTHORITATIVE_CHECK_SECONDS).record(took.as_secs_f64());
    }
}

#[cfg(not(feature = "metrics"))]
mod imp {
    use std::time::Duration;

    use jwe_session_core::Revocation;

    use super::Refusal;

    pub(crate) fn opened() {}
    pub(crate) fn started() {}
    pub(crate) fn renewed() {}
    pub(crate) fn refreshed() {}
    pub(crate) fn resealed() {}
    pub(crate) fn refused(_: Refusal) {}
    pub(crate) fn revoked(_: &Revocation) {}
    pub(crate) fn cross_origin_refused() {}
    pub(crate) fn dpop_refused(_: &'static str) {}
    pub(crate) fn dbsc_registered() {}
    pub(crate) fn dbsc_refreshed() {}
    pub(crate) fn dbsc_refused(_: &'static str) {}
    pub(crate) fn capped() {}
    pub(crate) fn store_error(_: &'static str) {}
    pub(crate) fn key_seals(_: &str, _: u64) {}
    pub(crate) fn authoritative_check(_: Duration) {}
}

pub(crate) use imp::*;
