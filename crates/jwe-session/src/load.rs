//! The request phase: read the request's token, examine it (open, validate, ask the
//! store's memory), and let [`decide`], a pure function of what was found, say what the
//! request's session is. Metrics and renewal follow the decision in one place.

use std::borrow::Cow;
use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::{HeaderMap, Method, Uri};
use jwe_session_core::{Claims, Confirmation, OpenError, SessionIds, Stage, UnixMicros, UnixTime};
use serde::de::DeserializeOwned;

use crate::dpop::{DpopRefusal, DPOP_HEADER};
use crate::handle::{Deferred, Loaded, Pending, ProofState, SessionHandle};
use crate::metrics::Refusal;
use crate::renew::{renew, Early};
use crate::shared::Shared;

/// Where the request's token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    None,
    Cookie,
    /// `Authorization: Bearer`.
    Bearer,
    /// `Authorization: DPoP` (only read when the layer has DPoP).
    Dpop,
}

impl Source {
    /// The token came in `Authorization`: new tokens go back in the token header.
    pub(crate) fn is_header(self) -> bool {
        matches!(self, Self::Bearer | Self::Dpop)
    }
}

/// What the request carried, for the response phase.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) source: Source,
    /// Which of our cookies (bit 0 the main one, bit i chunk i) the request carried.
    pub(crate) present: u32,
    /// Chunks the request carried that are not part of its token: cleared in the response.
    pub(crate) stale: u32,
    /// The request's DPoP proof had no current server nonce, or one past half its
    /// lifetime: the response carries a fresh `DPoP-Nonce`.
    pub(crate) nonce_due: bool,
}

/// The token of `Authorization: Bearer <token>` or, when the layer has DPoP,
/// `Authorization: DPoP <token>`, and which.
pub(crate) fn authorization<'h, T>(
    shared: &Shared<T>,
    headers: &'h HeaderMap,
) -> Option<(Source, &'h str)> {
    if !shared.transport.bearer() {
        return None;
    }
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        Some((Source::Bearer, token.trim()))
    } else if scheme.eq_ignore_ascii_case("dpop") && shared.dpop.is_some() {
        Some((Source::Dpop, token.trim()))
    } else {
        None
    }
}

/// What the checks found, in the order they run: the first that applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// No token (chunks without their main cookie are `stale`, cleared on the way out).
    Nothing,
    /// A session cookie that cannot hold a token (bad characters, chunks that do not join).
    Unreadable,
    /// A token sealed with a key this ring does not have.
    UnknownKid,
    /// A token that did not open, for this reason.
    Unopened(Refusal),
    /// A token that opened, with claims that validation refused, for this reason.
    Invalid(Refusal),
    /// A token that opened with valid claims.
    Valid {
        /// Where the session stands by its claims.
        stage: Stage,
        /// The store's memory says it is revoked (asked only for a [`Stage::Fresh`] token;
        /// a renewal asks the store itself).
        revoked: bool,
        /// A claims refresh covers it (asked only for a fresh token not revoked).
        refresh_due: Option<UnixMicros>,
        /// Sealed under a key no longer active, or in an old form: seal it again.
        needs_reseal: bool,
    },
}

/// What the request's session is, decided from what was found alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// No session. `pending` says what happens to the cookie; `refused` is the reason
    /// counted, if the request carried something that was refused.
    Empty {
        pending: Pending,
        refused: Option<Refusal>,
    },
    /// A session, renewed first: past `exp` ([`Early::No`]) or for a claims refresh.
    Renew(Early),
    /// A session, sealed again in the response.
    Reseal,
    /// A session as it is.
    Keep,
}

/// The one decision of the request phase. A token that did not open or validate is
/// cleared, except under a key another instance may hold (mid-rotation: left for it); a
/// fresh token is kept unless revoked (cleared) or refreshed (renewed early); a token
/// past `exp` is renewed while renewable and cleared after.
pub(crate) fn decide(found: Found) -> Decision {
    let empty = |pending, refused| Decision::Empty { pending, refused };
    match found {
        Found::Nothing => empty(Pending::Nothing, None),
        Found::Unreadable => empty(Pending::Clear, Some(Refusal::Malformed)),
        Found::UnknownKid => empty(Pending::Nothing, Some(Refusal::UnknownKid)),
        Found::Unopened(why) | Found::Invalid(why) => empty(Pending::Clear, Some(why)),
        Found::Valid {
            stage,
            revoked,
            refresh_due,
            needs_reseal,
        } => match stage {
            Stage::Fresh if revoked => empty(Pending::Clear, Some(Refusal::Revoked)),
            Stage::Fresh => match refresh_due {
                Some(at) => Decision::Renew(Early::Refresh(at)),
                None if needs_reseal => Decision::Reseal,
                None => Decision::Keep,
            },
            Stage::Renewable => Decision::Renew(Early::No),
            Stage::IdleExpired | Stage::AbsoluteExpired | Stage::Incomplete => {
                empty(Pending::Clear, Some(Refusal::Expired))
            }
        },
    }
}

/// The request's token: none, a cookie that cannot be one, or the token.
enum Token<'h> {
    None,
    Unreadable,
    Some(Cow<'h, str>),
}

/// Finds the request's token, bearer first (when the transport takes one).
fn read<'h, T>(shared: &Shared<T>, headers: &'h HeaderMap) -> (Token<'h>, Incoming) {
    let mut incoming = Incoming {
        source: Source::None,
        present: 0,
        stale: 0,
        nonce_due: false,
    };
    if let Some((source, t)) = authorization(shared, headers) {
        incoming.source = source;
        return (Token::Some(Cow::Borrowed(t)), incoming);
    }
    if !shared.transport.cookie() {
        return (Token::None, incoming);
    }
    let c = shared.cookie.read(headers, shared.opts.max_len());
    incoming.present = c.present;
    incoming.stale = c.stale;
    if let Some(why) = c.unreadable {
        tracing::debug!(reason = why.as_str(), "session cookie refused");
        return (Token::Unreadable, incoming);
    }
    match c.token {
        Some(t) => {
            incoming.source = Source::Cookie;
            (Token::Some(t), incoming)
        }
        None => (Token::None, incoming),
    }
}

/// Opens and checks a token, logging what it finds (never the token). The claims come
/// back only when they are [`Found::Valid`]. A bound token is valid only from
/// `Authorization: DPoP` with a proof by its key (`proof_key`, the proof's thumbprint).
fn examine<T>(
    shared: &Shared<T>,
    token: &str,
    now: UnixTime,
    source: Source,
    proof_key: Option<&str>,
) -> (Found, Option<Claims<T>>)
where
    T: DeserializeOwned + Clone + Send + 'static,
{
    let ring = shared.ring.load();
    let mut legacy = false;
    // A token this instance opened before is served from the cache: only the opening is
    // skipped; every check below still runs.
    let cached = shared.opened.get(&ring, token);
    let fresh = cached.is_none();
    let opened = match cached {
        Some(o) => Ok(o),
        None => match (
            ring.open::<Claims<T>>(token, &shared.opts),
            &shared.legacy_opts,
        ) {
            (Err(OpenError::PurposeMismatch { .. }), Some(legacy_opts)) => {
                // A token of this app from before 069fde3, sealed before the issuer joined
                // the default purpose: the issuer check below keeps other apps' tokens out.
                legacy = true;
                ring.open::<Claims<T>>(token, legacy_opts)
            }
            (other, _) => other,
        },
    };
    let opened = match opened {
        Ok(o) => o,
        Err(OpenError::UnknownKid { kid }) => {
            // Mid-rotation another instance may hold this key (a rolling deploy, a staged
            // key not yet loaded here): no session for this request, and the cookie stays
            // for the instance that can open it. Anyone can forge such a header without a
            // key: debug per request; the `unknown_kid` counter is what an operator
            // alerts on during a rotation.
            tracing::debug!(kid = ?kid, "session token sealed with a key this ring does not have; cookie left in place");
            return (Found::UnknownKid, None);
        }
        Err(e) => {
            // Malformed or forged tokens are ordinary internet traffic: debug, not warn.
            tracing::debug!(reason = %e, "session token refused");
            return (Found::Unopened(Refusal::of(&e)), None);
        }
    };
    if fresh && !legacy {
        // Legacy tokens are re-sealed in this response: not worth keeping.
        shared.opened.put(&ring, token, &opened);
    }
    let mut needs_reseal = opened.needs_reseal_at(now) || legacy;
    let mut claims = opened.into_payload();
    if claims.iss.is_none()
        && shared.issuer.is_some()
        && shared.issuer_grace.is_some_and(|until| now < until)
    {
        // Sealed before the app set an issuer: within the grace period it is taken as
        // this issuer's and re-sealed with `iss` in this response.
        claims.iss.clone_from(&shared.issuer);
        needs_reseal = true;
    }
    if let Err(e) = shared.validation.validate_at(&claims, now) {
        tracing::debug!(reason = %e, "session claims refused");
        return (Found::Invalid(Refusal::of_validation(&e)), None);
    }
    // A DPoP-bound token goes only with proofs by its key; a device-bound (DBSC) one only
    // as a cookie of a layer that binds devices. Neither passes for the other.
    let device = claims
        .cnf
        .as_ref()
        .is_some_and(Confirmation::is_device_bound);
    let binding = match (&claims.cnf, source, proof_key) {
        (Some(_), Source::Cookie, _) if device && shared.dbsc.is_some() => None,
        (Some(cnf), Source::Dpop, Some(key)) if !device && crate::opened::same(&cnf.jkt, key) => {
            None
        }
        (Some(_), Source::Dpop, _) => Some(Refusal::KeyMismatch),
        (None, Source::Dpop, _) => Some(Refusal::Unbound),
        (Some(_), _, _) => Some(Refusal::Bound),
        (None, _, _) => None,
    };
    if let Some(why) = binding {
        tracing::debug!(reason = why.as_str(), "session token refused: its binding");
        return (Found::Invalid(why), None);
    }
    let stage = shared.lifetimes.stage(&claims, now);
    if device && stage == Stage::Renewable {
        // The security property of DBSC: past its short `exp` a bound cookie is worth
        // nothing; only the refresh endpoint, with the device's key, yields the next one.
        tracing::debug!(
            "device-bound session token past its exp: refused (refresh with the device key)"
        );
        return (Found::Invalid(Refusal::BoundExpired), None);
    }
    let (mut revoked, mut refresh_due) = (false, None);
    if stage == Stage::Fresh {
        let ids = SessionIds::from(&claims);
        match shared.store.check(ids, now) {
            Some(r) => {
                tracing::debug!(reason = %r, "session revoked");
                revoked = true;
            }
            None => refresh_due = shared.store.refresh_due(ids, now),
        }
    } else if stage != Stage::Renewable {
        tracing::debug!(reason = ?stage, "session expired");
    }
    let found = Found::Valid {
        stage,
        revoked,
        refresh_due,
        needs_reseal,
    };
    (found, Some(claims))
}

impl<T> Loaded<T> {
    /// No session. `refused` is the reason counted, if the request carried something that
    /// was refused.
    fn empty(pending: Pending, refused: Option<Refusal>, source: Source) -> Self {
        if let Some(r) = refused {
            crate::metrics::refused(r);
        }
        Self {
            current: None,
            pending,
            // A token (or an unreadable cookie) that gave no session.
            refused: source != Source::None || pending == Pending::Clear,
        }
    }
}

/// What a decision leaves to do: nothing that waits, or a renewal (the store's
/// authoritative check and the renew hook).
enum Next<T> {
    Ready(Loaded<T>),
    Renew(Claims<T>, UnixTime, Early),
}

/// The part of a decision that needs no waiting.
fn next<T>(decision: Decision, claims: Option<(Claims<T>, UnixTime)>, source: Source) -> Next<T> {
    let session = |claims, pending| {
        Next::Ready(Loaded {
            current: Some(claims),
            pending,
            refused: false,
        })
    };
    match (decision, claims) {
        (Decision::Empty { pending, refused }, _) => {
            Next::Ready(Loaded::empty(pending, refused, source))
        }
        (Decision::Renew(early), Some((claims, now))) => Next::Renew(claims, now, early),
        (Decision::Reseal, Some((claims, _))) => {
            crate::metrics::resealed();
            session(claims, Pending::Reseal)
        }
        (Decision::Keep, Some((claims, _))) => session(claims, Pending::Nothing),
        // A session decision comes only with valid claims.
        (_, None) => Next::Ready(Loaded::empty(Pending::Nothing, None, source)),
    }
}

/// Renews a session the decision said to renew. `Err(())` when it could not be, for a DPoP
/// request (the layer answers it); otherwise a refused renewal is no session.
async fn renewed<T>(
    shared: &Shared<T>,
    (claims, now, early): (Claims<T>, UnixTime, Early),
    source: Source,
) -> Result<Loaded<T>, ()>
where
    T: Clone + Send + 'static,
{
    match renew(shared, claims, now, early).await {
        Ok(renewed) => {
            match early {
                Early::No => crate::metrics::renewed(),
                Early::Refresh(_) => crate::metrics::refreshed(),
            }
            Ok(Loaded {
                current: Some(renewed),
                pending: Pending::Reseal,
                refused: false,
            })
        }
        Err(_) if source == Source::Dpop => Err(()),
        Err((pending, reason)) => Ok(Loaded::empty(pending, Some(reason), source)),
    }
}

/// A session found: a device-bound session's first use retires the unbound sid it
/// replaced (sealed again then), and it is counted.
async fn found_session<T>(shared: &Shared<T>, mut loaded: Loaded<T>, now: UnixTime) -> Loaded<T> {
    if let (Some(claims), Some(_)) = (loaded.current.as_mut(), &shared.dbsc) {
        if shared.retire_previous(claims, now).await && loaded.pending == Pending::Nothing {
            loaded.pending = Pending::Reseal;
        }
    }
    counted(loaded)
}

/// Counts a request that has a session.
fn counted<T>(loaded: Loaded<T>) -> Loaded<T> {
    if loaded.current.is_some() {
        crate::metrics::opened();
    }
    loaded
}

/// Whether the request's token can wait for the first access to the session (see
/// [`SessionHandle::load`]): a cookie, on a layer without DBSC, with no DPoP proof sent.
/// A device-bound cookie's first use retires the login's cookie, whatever the route; a
/// token in `Authorization` comes from an API client (tonic, hyper), which reads the
/// session on nearly every call, often synchronously, and a DPoP request is answered by
/// the layer (refusals included) before the handler.
fn deferrable<T>(shared: &Shared<T>, source: Source, proof_sent: bool) -> bool {
    source == Source::Cookie && shared.dbsc.is_none() && !proof_sent
}

/// A cookie whose opening waits for the first access to the request's session, with
/// the two ways of opening it, instantiated here where the claims type's bounds are known
/// (the handle has none).
fn defer<T>(token: String) -> Deferred<T>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    Deferred {
        token,
        open: |shared, token| Box::pin(async move { open_later(&shared, &token).await }),
        open_now: |shared, token| open_now(shared, token),
    }
}

/// Opens and judges a deferred cookie (the moment is this one: the first access).
fn judge<T>(shared: &Shared<T>, token: &str) -> (Decision, Option<(Claims<T>, UnixTime)>)
where
    T: DeserializeOwned + Clone + Send + 'static,
{
    let now = shared.clock.now_micros().secs();
    let (found, claims) = examine(shared, token, now, Source::Cookie, None);
    (decide(found), claims.map(|c| (c, now)))
}

/// Everything a deferred cookie needs, renewal included.
async fn open_later<T>(shared: &Shared<T>, token: &str) -> Loaded<T>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    let (decision, claims) = judge(shared, token);
    let now = claims.as_ref().map(|(_, now)| *now);
    let loaded = match next(decision, claims, Source::Cookie) {
        Next::Ready(loaded) => loaded,
        // A cookie is never a DPoP request: `renewed` refuses only those.
        Next::Renew(c, now, early) => renewed(shared, (c, now, early), Source::Cookie)
            .await
            .unwrap_or_else(|()| Loaded::empty(Pending::Nothing, None, Source::Cookie)),
    };
    match now {
        Some(now) => found_session(shared, loaded, now).await,
        None => loaded,
    }
}

/// What needs no waiting, for a handle first used synchronously: a session that needs
/// renewal is then no session for this request (its cookie stays).
fn open_now<T>(shared: &Shared<T>, token: &str) -> Loaded<T>
where
    T: DeserializeOwned + Clone + Send + 'static,
{
    let (decision, claims) = judge(shared, token);
    match next(decision, claims, Source::Cookie) {
        // Not deferred with DBSC: nothing to retire.
        Next::Ready(loaded) => counted(loaded),
        Next::Renew(..) => {
            if !SYNC_RENEWAL.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(
                    "a session past its exp was first read synchronously from the \
                     request's SessionHandle: its renewal waits for the store, so this \
                     request has no session (its cookie stays). Call \
                     `handle.load().await` before reading the handle outside an axum \
                     extractor (said once)"
                );
            }
            Loaded::nothing()
        }
    }
}

static SYNC_RENEWAL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The request phase: the request's session, in a handle, and what it carried; or a DPoP
/// refusal, which the layer answers itself. A token that can wait ([`deferrable`]) is
/// opened on the first access to the handle, not here: a route that never reads the
/// session never pays for it.
pub(crate) async fn load<T>(
    shared: &Arc<Shared<T>>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(SessionHandle<T>, Incoming), DpopRefusal>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    let (token, mut incoming) = read(shared, headers);
    let dpop = shared.dpop.as_ref();
    let proof_sent = dpop.is_some() && headers.contains_key(DPOP_HEADER);
    if deferrable(shared, incoming.source, proof_sent) {
        if let Token::Some(t) = token {
            let deferred = defer(t.into_owned());
            return Ok((
                SessionHandle::deferred(Arc::clone(shared), deferred),
                incoming,
            ));
        }
    }
    // One moment for a token's whole request phase: what validation judged, renewal renews
    // at, what a proof's `iat` is compared with (read only when there is something to judge).
    let now_us = match (&token, proof_sent) {
        (Token::None, false) => None,
        _ => Some(shared.clock.now_micros()),
    };
    // The request's proof: for a DPoP token (required), or for a login (none yet).
    let mut proof = ProofState::None;
    let mut checked = None;
    if let (Some(d), Some(now)) = (dpop, now_us) {
        match (incoming.source, &token) {
            (Source::Dpop, Token::Some(t)) => {
                let ring = shared.ring.load();
                match d.check(&ring, method, uri, headers, Some(t), now) {
                    Ok(Some(c)) => {
                        incoming.nonce_due = c.renew_nonce;
                        checked = Some(c);
                    }
                    Ok(None) => return Err(DpopRefusal::Missing),
                    Err(e) => return Err(e),
                }
            }
            (Source::None, _) if proof_sent => {
                let ring = shared.ring.load();
                proof = match d.check(&ring, method, uri, headers, None, now) {
                    Ok(Some(c)) => {
                        incoming.nonce_due = c.renew_nonce;
                        match d.commit(&c, now.secs()) {
                            Ok(()) => ProofState::Valid(c.proof.thumbprint),
                            Err(e) => ProofState::Refused(e),
                        }
                    }
                    Ok(None) => ProofState::None,
                    Err(e) => {
                        incoming.nonce_due = e == DpopRefusal::Nonce;
                        tracing::debug!(reason = %e, "login DPoP proof refused");
                        ProofState::Refused(e)
                    }
                };
            }
            _ => {}
        }
    }
    let (found, claims) = match (&token, now_us) {
        (Token::Unreadable, _) => (Found::Unreadable, None),
        (Token::None, _) | (_, None) => (Found::Nothing, None),
        (Token::Some(t), Some(now_us)) => {
            let now = now_us.secs();
            let key = checked.as_ref().map(|c| c.proof.thumbprint.as_str());
            let (found, claims) = examine(shared, t, now, incoming.source, key);
            (found, claims.map(|c| (c, now)))
        }
    };
    let decision = decide(found);
    // DPoP is answered by the layer: whatever refuses the token refuses the request.
    let dpop_refusal = match (dpop, incoming.source, decision) {
        (Some(_), Source::Dpop, Decision::Empty { refused, .. }) => Some(match refused {
            Some(Refusal::KeyMismatch) => DpopRefusal::KeyMismatch,
            Some(Refusal::Unbound) => DpopRefusal::Unbound,
            _ => DpopRefusal::Token,
        }),
        (
            Some(_),
            Source::Bearer,
            Decision::Empty {
                refused: Some(Refusal::Bound),
                ..
            },
        ) => Some(DpopRefusal::Downgrade),
        _ => None,
    };
    if let Some(r) = dpop_refusal {
        if let Decision::Empty {
            refused: Some(why), ..
        } = decision
        {
            crate::metrics::refused(why);
        }
        return Err(r);
    }
    if let (Some(d), Some(c), Some(now)) = (dpop, &checked, now_us) {
        // The proof fits the request and the token: only now is its id spent, so a
        // refused request cannot use up the cache.
        d.commit(c, now.secs())?;
        proof = ProofState::Valid(c.proof.thumbprint.clone());
    }
    let loaded = match next(decision, claims, incoming.source) {
        Next::Ready(loaded) => loaded,
        Next::Renew(c, now, early) => renewed(shared, (c, now, early), incoming.source)
            .await
            .map_err(|()| DpopRefusal::Token)?,
    };
    let loaded = match now_us {
        Some(now) => found_session(shared, loaded, now.secs()).await,
        None => loaded,
    };
    let handle = SessionHandle::loaded(Arc::clone(shared), loaded);
    handle.raw().proof = proof;
    Ok((handle, incoming))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(stage: Stage, revoked: bool, refresh: Option<u64>, reseal: bool) -> Found {
        Found::Valid {
            stage,
            revoked,
            refresh_due: refresh.map(UnixMicros::from_micros),
            needs_reseal: reseal,
        }
    }

    fn empty(pending: Pending, refused: Option<Refusal>) -> Decision {
        Decision::Empty { pending, refused }
    }

    /// Every row of the request phase's decision, one per distinct outcome.
    #[test]
    fn the_decision_table() {
        use Stage::*;
        let at = UnixMicros::from_micros(7);
        let rows: &[(Found, Decision)] = &[
            (Found::Nothing, empty(Pending::Nothing, None)),
            (
                Found::Unreadable,
                empty(Pending::Clear, Some(Refusal::Malformed)),
            ),
            // Mid-rotation: no session here, and the cookie stays for another instance.
            (
                Found::UnknownKid,
                empty(Pending::Nothing, Some(Refusal::UnknownKid)),
            ),
            (
                Found::Unopened(Refusal::Decrypt),
                empty(Pending::Clear, Some(Refusal::Decrypt)),
            ),
            (
                Found::Unopened(Refusal::Purpose),
                empty(Pending::Clear, Some(Refusal::Purpose)),
            ),
            (
                Found::Invalid(Refusal::Claims),
                empty(Pending::Clear, Some(Refusal::Claims)),
            ),
            (
                Found::Invalid(Refusal::Expired),
                empty(Pending::Clear, Some(Refusal::Expired)),
            ),
            (valid(Fresh, false, None, false), Decision::Keep),
            (valid(Fresh, false, None, true), Decision::Reseal),
            // Revoked wins over everything else a fresh token has.
            (
                valid(Fresh, true, None, true),
                empty(Pending::Clear, Some(Refusal::Revoked)),
            ),
            (
                valid(Fresh, true, Some(7), false),
                empty(Pending::Clear, Some(Refusal::Revoked)),
            ),
            // A claims refresh renews early, re-seal or not (renewal seals anyway).
            (
                valid(Fresh, false, Some(7), false),
                Decision::Renew(Early::Refresh(at)),
            ),
            (
                valid(Fresh, false, Some(7), true),
                Decision::Renew(Early::Refresh(at)),
            ),
            // Past `exp`: renewal decides (the store itself is asked there).
            (
                valid(Renewable, false, None, false),
                Decision::Renew(Early::No),
            ),
            (
                valid(Renewable, false, None, true),
                Decision::Renew(Early::No),
            ),
            (
                valid(IdleExpired, false, None, false),
                empty(Pending::Clear, Some(Refusal::Expired)),
            ),
            (
                valid(AbsoluteExpired, false, None, true),
                empty(Pending::Clear, Some(Refusal::Expired)),
            ),
            (
                valid(Incomplete, false, None, false),
                empty(Pending::Clear, Some(Refusal::Expired)),
            ),
        ];
        for (found, expected) in rows {
            assert_eq!(decide(*found), *expected, "{found:?}");
        }
    }
}
