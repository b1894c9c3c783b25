//! The request phase: read the request's token, examine it (open, validate, ask the
//! store's memory), and let [`decide`], a pure function of what was found, say what the
//! request's session is. Metrics and renewal follow the decision in one place.

use std::borrow::Cow;
use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::HeaderMap;
use jwe_session_core::{Claims, OpenError, SessionIds, Stage, UnixMicros, UnixTime};
use serde::de::DeserializeOwned;

use crate::handle::{Pending, SessionHandle};
use crate::metrics::Refusal;
use crate::renew::{renew, Early};
use crate::shared::Shared;

/// Where the request's token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    None,
    Cookie,
    Bearer,
}

/// What the request carried, for the response phase.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) source: Source,
    /// Which of our cookies (bit 0 the main one, bit i chunk i) the request carried.
    pub(crate) present: u32,
    /// Chunks the request carried that are not part of its token: cleared in the response.
    pub(crate) stale: u32,
}

/// The token of `Authorization: Bearer <token>`, if the request has one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
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
    };
    if shared.transport.bearer() {
        if let Some(t) = bearer(headers) {
            incoming.source = Source::Bearer;
            return (Token::Some(Cow::Borrowed(t)), incoming);
        }
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
/// back only when they are [`Found::Valid`].
fn examine<T>(shared: &Shared<T>, token: &str, now: UnixTime) -> (Found, Option<Claims<T>>)
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
    let stage = shared.lifetimes.stage(&claims, now);
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

/// The request phase: the request's session, in a handle, and what it carried.
pub(crate) async fn load<T>(
    shared: &Arc<Shared<T>>,
    headers: &HeaderMap,
) -> (SessionHandle<T>, Incoming)
where
    T: DeserializeOwned + Clone + Send + 'static,
{
    let (token, incoming) = read(shared, headers);
    // One moment for a token's whole request phase: what validation judged, renewal renews
    // at (read only when there is a token).
    let (found, claims) = match &token {
        Token::None => (Found::Nothing, None),
        Token::Unreadable => (Found::Unreadable, None),
        Token::Some(t) => {
            let now = shared.clock.now();
            let (found, claims) = examine(shared, t, now);
            (found, claims.map(|c| (c, now)))
        }
    };
    let empty = |pending, refused: Option<Refusal>, incoming: Incoming| {
        if let Some(r) = refused {
            crate::metrics::refused(r);
        }
        let handle = SessionHandle::new(Arc::clone(shared), None, pending);
        // A token (or an unreadable cookie) that gave no session.
        handle.lock().refused = incoming.source != Source::None || pending == Pending::Clear;
        (handle, incoming)
    };
    let (pending, claims) = match (decide(found), claims) {
        (Decision::Empty { pending, refused }, _) => return empty(pending, refused, incoming),
        (Decision::Renew(early), Some((claims, now))) => {
            match renew(shared, claims, now, early).await {
                Ok(renewed) => {
                    match early {
                        Early::No => crate::metrics::renewed(),
                        Early::Refresh(_) => crate::metrics::refreshed(),
                    }
                    (Pending::Reseal, renewed)
                }
                Err((pending, reason)) => return empty(pending, Some(reason), incoming),
            }
        }
        (Decision::Reseal, Some((claims, _))) => {
            crate::metrics::resealed();
            (Pending::Reseal, claims)
        }
        (Decision::Keep, Some((claims, _))) => (Pending::Nothing, claims),
        // A session decision comes only with valid claims.
        (_, None) => return empty(Pending::Nothing, None, incoming),
    };
    crate::metrics::opened();
    (
        SessionHandle::new(Arc::clone(shared), Some(claims), pending),
        incoming,
    )
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
