//! The response phase: revoke the session a login replaced, then write the session back
//! (seal, cookies or the token header, `Cache-Control`), or clear what the request carried.

use std::time::Duration;

use http::header::CACHE_CONTROL;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use jwe_session_core::Claims;
use serde::Serialize;

use crate::handle::{Pending, SessionHandle};
use crate::load::{Incoming, Source};
use crate::shared::Shared;

/// Revokes the session a login replaced (see [`SessionHandle::start`]).
pub(crate) async fn revoke_replaced<T>(shared: &Shared<T>, handle: &SessionHandle<T>) {
    let Some(revocation) = handle.raw().replaced.take() else {
        return;
    };
    let now = shared.clock.now();
    if let Err(e) = shared.revoke(revocation, now).await {
        tracing::warn!(error = ?e, "the session a login replaced could not be revoked");
    }
}

pub(crate) fn write<T: Serialize, B>(
    shared: &Shared<T>,
    handle: &SessionHandle<T>,
    incoming: &Incoming,
    res: &mut Response<B>,
) {
    let mut st = handle.raw();
    // From here on a change to the session could not reach the client.
    st.written = true;
    let cookies = shared.transport.cookie() && !incoming.source.is_header();
    // Clears exactly the cookies in `mask` (only ever ones the request carried: a clearing
    // cookie the request did not carry would let a cross-site form delete the user's
    // session cookie). Whether anything was written.
    let clear = |mask: u32, res: &mut Response<B>| {
        let any = cookies && mask != 0;
        if any {
            shared.cookie.clear_only(res.headers_mut(), mask);
        }
        any
    };
    let wrote = match (st.pending, &st.current) {
        // Leftover chunks beside a token that is fine as it is.
        (Pending::Nothing, _) => clear(incoming.stale, res),
        (Pending::Write, Some(claims)) if st.issued.is_some() => {
            // `issue` sealed it already and the handler handed it out: the same token.
            if let Some(token) = st.issued.as_deref() {
                deliver_header(shared, token, res);
            }
            clear(incoming.present, res);
            true
        }
        (pending @ (Pending::Write | Pending::Reseal), Some(claims)) => {
            let ring = shared.ring.load();
            let now = shared.clock.now();
            match ring.seal_at(claims, &shared.opts, now) {
                Ok(token) => {
                    let key = ring.active_at(now);
                    crate::metrics::key_seals(key.kid(), key.seal_count());
                    deliver(shared, claims, token.as_str(), incoming, res);
                    if st.started && st.issued.is_none() && claims.cnf.is_none() {
                        register_device(shared, claims, incoming, res);
                    }
                    true
                }
                Err(e) if pending == Pending::Reseal => {
                    // A renewal or re-seal that no longer fits (a longer kid, a renew hook
                    // that grew the claims) or cannot seal: the request's token stays, and
                    // the next request tries again. Never a 500 for a valid session.
                    tracing::warn!(error = %e, "session could not be re-sealed; keeping the request's token");
                    clear(incoming.stale, res)
                }
                Err(e) => {
                    // `start`/`update` checked the size, so this is the key budget or a
                    // ring swapped mid-request: the handler's change cannot be kept.
                    tracing::error!(error = %e, "session could not be sealed");
                    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    clear(incoming.present, res)
                }
            }
        }
        (Pending::Write | Pending::Reseal, None) | (Pending::Clear, _) => {
            clear(incoming.present, res)
        }
    };
    if wrote {
        no_store(res.headers_mut());
    }
    if incoming.nonce_due {
        if let Some(d) = &shared.dpop {
            let ring = shared.ring.load();
            if let Some(n) = d.fresh_nonce(&ring, shared.clock.now_micros()) {
                res.headers_mut().insert(crate::dpop::DPOP_NONCE_HEADER, n);
            }
        }
    }
}

/// Sends a freshly sealed token: cookies for browsers, the token header for bearer clients.
fn deliver<T: Serialize, B>(
    shared: &Shared<T>,
    claims: &Claims<T>,
    token: &str,
    incoming: &Incoming,
    res: &mut Response<B>,
) {
    let now = shared.clock.now();
    // A DPoP-bound token is worth nothing in a cookie: it goes only where its proofs go. A
    // device-bound (DBSC) one is a cookie, with its binding cookie beside it.
    let device = match (&claims.cnf, &shared.dbsc) {
        (None, _) => None,
        (Some(cnf), Some(d)) if cnf.is_device_bound() => Some(d),
        (Some(_), _) => {
            if incoming.source != Source::Cookie {
                deliver_header(shared, token, res);
            }
            return;
        }
    };
    let to_cookie = shared.transport.cookie() && !incoming.source.is_header();
    let to_header =
        shared.transport.bearer() && incoming.source != Source::Cookie && device.is_none();
    if to_cookie {
        let browser_session = claims.lifetimes.is_some_and(|l| l.browser_session);
        // Until the session can no longer renew: the idle window after `exp`, within the
        // absolute lifetime.
        let renewable = (!browser_session).then(|| {
            let end = shared.lifetimes.renewable_end(claims).unwrap_or(now);
            end.saturating_since(now).max(Duration::from_secs(1))
        });
        let max_age = match device {
            // A bound cookie lives until its `exp`: then the browser refreshes it.
            Some(_) => Some(
                claims
                    .exp
                    .map_or(Duration::ZERO, |exp| exp.saturating_since(now))
                    .max(Duration::from_secs(1)),
            ),
            None => renewable,
        };
        shared
            .cookie
            .write(res.headers_mut(), token, max_age, incoming.present);
        if let Some(d) = device {
            let ring = shared.ring.load();
            d.write_binding(&ring, claims, now, renewable, res.headers_mut());
        }
    }
    if to_header {
        deliver_header(shared, token, res);
    }
}

/// Asks the browser to bind the session just started to a device key (DBSC), when the
/// layer binds devices and the session went out as a cookie.
fn register_device<T, B>(
    shared: &Shared<T>,
    claims: &Claims<T>,
    incoming: &Incoming,
    res: &mut Response<B>,
) {
    let (Some(d), Some(sid)) = (&shared.dbsc, claims.sid.as_deref()) else {
        return;
    };
    if !shared.transport.cookie() || incoming.source.is_header() {
        return;
    }
    let ring = shared.ring.load();
    if let Some(v) = d.registration_header(&ring, sid, shared.clock.now_micros()) {
        res.headers_mut()
            .insert(crate::dbsc::SECURE_SESSION_REGISTRATION, v);
    }
}

/// The token in the token header, marked sensitive (never logged by hyper or h2).
fn deliver_header<T, B>(shared: &Shared<T>, token: &str, res: &mut Response<B>) {
    if !shared.transport.bearer() {
        return;
    }
    if let Ok(mut v) = HeaderValue::try_from(token) {
        v.set_sensitive(true);
        res.headers_mut().insert(shared.token_header.clone(), v);
    }
}

/// A response that writes a session must not be stored by a shared cache, which would
/// hand one user's session to the next. A handler's own `no-store` or `private` stands;
/// anything else (`public, max-age=…`) gives way to `no-store`.
pub(crate) fn no_store(headers: &mut HeaderMap) {
    let kept = headers.get_all(CACHE_CONTROL).iter().any(|v| {
        v.as_bytes().split(|b| *b == b',').any(|d| {
            let d = d.trim_ascii();
            let name = d.split(|b| *b == b'=').next().unwrap_or(d).trim_ascii();
            name.eq_ignore_ascii_case(b"no-store") || name.eq_ignore_ascii_case(b"private")
        })
    });
    if !kept {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}
