//! The DBSC endpoints the layer serves itself: registration (a proof by the new key, for
//! the session of the request's cookie) and refresh (a proof by the session's key, for the
//! session of the binding cookie). The protocol is described in the module `dbsc`.

use std::any::{Any, TypeId};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use jwe_session_core::{
    check_dbsc_refresh, check_dbsc_registration, random_id, Claims, Confirmation, OpenError,
    PublicJwk, Stage,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::dbsc::{
    DbscRefusal, DeviceBound, Endpoint, Purpose, SECURE_SESSION_CHALLENGE,
    SECURE_SESSION_REGISTRATION, SECURE_SESSION_RESPONSE, SEC_SECURE_SESSION_ID,
};
use crate::handle::{Pending, SessionHandle};
use crate::load::{load, Incoming, Source};
use crate::metrics::Refusal;
use crate::renew::{renew, Early};
use crate::respond::write;
use crate::shared::Shared;

/// Serves a request to one of the DBSC endpoints.
pub(crate) async fn serve<T, B>(
    shared: &Arc<Shared<T>>,
    endpoint: Endpoint,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response<B>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    B: Default + 'static,
{
    let Some(d) = &shared.dbsc else {
        return Answer::new(StatusCode::NOT_FOUND).into_response();
    };
    if method != Method::POST {
        let mut answer = Answer::new(StatusCode::METHOD_NOT_ALLOWED);
        answer
            .headers
            .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
        return answer.into_response();
    }
    let (res, refused) = match endpoint {
        Endpoint::Register => register(shared, d, method, uri, headers).await,
        Endpoint::Refresh => refresh(shared, d, uri, headers).await,
    };
    if let Some(r) = refused {
        crate::metrics::dbsc_refused(r.as_str());
        tracing::debug!(reason = %r, endpoint = ?endpoint, "DBSC request refused");
    }
    res
}

/// An answer the endpoints give: its status, headers and JSON body, made into the
/// service's response type once.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    json: Option<String>,
}

impl Answer {
    fn new(status: StatusCode) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            json: None,
        }
    }

    fn into_response<B: Default + 'static>(self) -> Response<B> {
        let mut res = match self.json {
            None => Response::new(B::default()),
            Some(json) => match json_body::<B>(json) {
                Some(body) => {
                    let mut res = Response::new(body);
                    res.headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    res
                }
                None => {
                    tracing::error!(
                        body = std::any::type_name::<B>(),
                        "the DBSC endpoints answer JSON, and this service's response body is not one jwe-session can write (axum's Body, http-body-util's Full<Bytes>, String, Vec<u8> or Bytes)"
                    );
                    let mut res = Response::new(B::default());
                    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    return res;
                }
            },
        };
        *res.status_mut() = self.status;
        res.headers_mut().extend(self.headers);
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }
}

/// A body of the service's type holding `json`, for the body types jwe-session knows.
fn json_body<B: 'static>(json: String) -> Option<B> {
    fn cast<B: 'static, C: 'static>(c: C) -> Option<B> {
        (Box::new(c) as Box<dyn Any>)
            .downcast::<B>()
            .ok()
            .map(|b| *b)
    }
    let want = TypeId::of::<B>();
    #[cfg(feature = "axum")]
    if want == TypeId::of::<axum_core::body::Body>() {
        return cast(axum_core::body::Body::from(json));
    }
    if want == TypeId::of::<http_body_util::Full<Bytes>>() {
        return cast(http_body_util::Full::new(Bytes::from(json)));
    }
    if want == TypeId::of::<String>() {
        return cast(json);
    }
    if want == TypeId::of::<Vec<u8>>() {
        return cast(json.into_bytes());
    }
    if want == TypeId::of::<Bytes>() {
        return cast(Bytes::from(json));
    }
    None
}

/// The one `Secure-Session-Response` header, as sent (a structured-field string's quotes,
/// if the browser added them, taken off).
fn proof_header(headers: &HeaderMap) -> Result<Option<&str>, DbscRefusal> {
    let value = crate::headers::single(headers, &SECURE_SESSION_RESPONSE)
        .map_err(|_| DbscRefusal::Header)?;
    Ok(value.map(|v| unquote(v.trim())))
}

/// A structured-field string without its quotes, or a bare value as it is.
fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// The registration endpoint: the session of the request's cookie, a proof by the new
/// key answering that session's registration challenge.
async fn register<T, B>(
    shared: &Arc<Shared<T>>,
    d: &DeviceBound,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> (Response<B>, Option<DbscRefusal>)
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    B: Default + 'static,
{
    let refuse = |r: DbscRefusal| (Answer::new(StatusCode::FORBIDDEN).into_response(), Some(r));
    let Ok((handle, incoming)) = load(shared, method, uri, headers).await else {
        return refuse(DbscRefusal::NoSession);
    };
    let claims = match handle.claims() {
        Some(c) if incoming.source == Source::Cookie => c,
        _ => return refuse(DbscRefusal::NoSession),
    };
    if claims.cnf.is_some() {
        return refuse(DbscRefusal::AlreadyBound);
    }
    let Some(sid) = claims.sid.clone() else {
        return refuse(DbscRefusal::NoSession);
    };
    let proof = match proof_header(headers) {
        Ok(Some(p)) => p,
        Ok(None) | Err(_) => return refuse(DbscRefusal::Header),
    };
    let proof = match check_dbsc_registration(proof) {
        Ok(p) => p,
        Err(e) => return refuse(DbscRefusal::Proof(e)),
    };
    // An `authorization` is only ever what the request itself carries.
    let request_auth = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some(a) = &proof.authorization {
        if request_auth != Some(a.as_str()) {
            return refuse(DbscRefusal::Authorization);
        }
    }
    let now = shared.clock.now_micros();
    let ring = shared.ring.load();
    if let Err(r) = d.check_challenge(&ring, &proof.challenge, Purpose::Register, &sid, now) {
        let mut answer = Answer::new(StatusCode::FORBIDDEN);
        if r == DbscRefusal::ChallengeStale {
            // A browser that waited too long registers again with a fresh challenge.
            if let Some(v) = d.registration_header(&ring, &sid, now) {
                answer.headers.insert(SECURE_SESSION_REGISTRATION, v);
            }
        }
        return (answer.into_response(), Some(r));
    }
    // The bound session moves to a new `sid`. The old one (the unbound cookie of the login,
    // and any copy of it or of this registration) is revoked when the bound cookie is first
    // used: revoking it now would refuse, and clear, the requests the browser sent with it
    // before it had the bound cookie (the page a login redirects to, say).
    let moment = shared.moment();
    let mut bound = claims;
    let new_sid = random_id();
    let old_sid = bound.sid.replace(new_sid.clone());
    let mut cnf = Confirmation::device(new_sid.clone(), &proof.jwk);
    if let Some(key) = cnf.dbsc.as_mut() {
        key.prev = old_sid;
    }
    bound.cnf = Some(cnf);
    shared.lifetimes.reissue(&mut bound, moment);
    d.extend(&shared.lifetimes, &mut bound, moment.secs());
    handle.bind_device(bound);
    let mut answer = Answer::new(StatusCode::OK);
    answer.json = Some(d.instructions(&new_sid, &shared.cookie, &d.origin(uri, headers)));
    let mut res = answer.into_response();
    write(shared, &handle, &incoming, &mut res);
    crate::devices::settle(shared, &handle).await;
    crate::metrics::dbsc_registered();
    (res, None)
}

/// The refresh endpoint: the binding cookie's session, a proof by its key answering a
/// refresh challenge for it, then a renewal's checks and the next bound cookie.
async fn refresh<T, B>(
    shared: &Arc<Shared<T>>,
    d: &DeviceBound,
    uri: &Uri,
    headers: &HeaderMap,
) -> (Response<B>, Option<DbscRefusal>)
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    B: Default + 'static,
{
    let now = shared.clock.now_micros();
    let ring = shared.ring.load();
    let session = shared.cookie.read(headers, shared.opts.max_len());
    let binding = d.binding.read(headers, d.binding_opts.max_len());
    let asked = headers
        .get(SEC_SECURE_SESSION_ID)
        .and_then(|v| v.to_str().ok())
        .map(|v| unquote(v.trim()).to_owned());
    // The session is over for the browser: it stops refreshing and drops the key.
    let end = |id: Option<String>, why: DbscRefusal| {
        let mut answer = Answer::new(StatusCode::OK);
        answer.json = Some(
            serde_json::json!({ "session_identifier": id.unwrap_or_default(), "continue": false })
                .to_string(),
        );
        shared
            .cookie
            .clear_only(&mut answer.headers, session.present);
        d.binding.clear_only(&mut answer.headers, binding.present);
        (answer.into_response(), Some(why))
    };
    let opened = match binding.token.as_deref() {
        None => return end(asked, DbscRefusal::Binding),
        Some(t) => ring.open::<Claims<T>>(t, &d.binding_opts),
    };
    let claims = match opened {
        Ok(o) => o.into_payload(),
        Err(OpenError::UnknownKid { .. }) => {
            // Mid-rotation another instance may hold the key: nothing ends here.
            return (
                Answer::new(StatusCode::FORBIDDEN).into_response(),
                Some(DbscRefusal::Binding),
            );
        }
        Err(_) => return end(asked, DbscRefusal::Binding),
    };
    let Some((id, key)) = device_key(&claims) else {
        return end(asked, DbscRefusal::Binding);
    };
    if shared.validation.validate_at(&claims, now.secs()).is_err() {
        return end(Some(id), DbscRefusal::Binding);
    }
    if asked.as_deref().is_some_and(|a| a != id) {
        return (
            Answer::new(StatusCode::FORBIDDEN).into_response(),
            Some(DbscRefusal::SessionId),
        );
    }
    let challenge = |why: Option<DbscRefusal>| {
        let mut answer = Answer::new(StatusCode::FORBIDDEN);
        if let Some(v) = d.challenge_header(&ring, &id, now) {
            answer.headers.insert(SECURE_SESSION_CHALLENGE, v);
        }
        (answer.into_response(), why)
    };
    let proof = match proof_header(headers) {
        Ok(Some(p)) => p,
        // The first step of every refresh: the browser asks, the layer challenges.
        Ok(None) => return challenge(None),
        Err(r) => return challenge(Some(r)),
    };
    let proof = match check_dbsc_refresh(proof, &key) {
        Ok(p) => p,
        Err(e) => return challenge(Some(DbscRefusal::Proof(e))),
    };
    if let Err(r) = d.check_challenge(&ring, &proof.challenge, Purpose::Refresh, &id, now) {
        return challenge(Some(r));
    }
    let mut claims = claims;
    shared.retire_previous(&mut claims, now.secs()).await;
    match shared.lifetimes.stage(&claims, now.secs()) {
        Stage::Fresh | Stage::Renewable => {}
        Stage::IdleExpired | Stage::AbsoluteExpired | Stage::Incomplete => {
            return end(Some(id.clone()), DbscRefusal::Expired)
        }
    }
    let mut claims = match renew(shared, claims, now.secs(), Early::No).await {
        Ok(c) => c,
        Err((_, Refusal::Revoked | Refusal::RenewRefused)) => {
            return end(Some(id.clone()), DbscRefusal::Revoked)
        }
        Err(_) => {
            return (
                Answer::new(StatusCode::SERVICE_UNAVAILABLE).into_response(),
                Some(DbscRefusal::Unavailable),
            )
        }
    };
    let issued = claims
        .issued_us
        .map_or(now.secs(), jwe_session_core::UnixMicros::secs);
    d.extend(&shared.lifetimes, &mut claims, issued);
    let handle = SessionHandle::new(Arc::clone(shared), Some(claims), Pending::Write);
    let incoming = Incoming {
        source: Source::Cookie,
        present: session.present,
        stale: 0,
        nonce_due: false,
    };
    let mut answer = Answer::new(StatusCode::OK);
    answer.json = Some(d.instructions(&id, &shared.cookie, &d.origin(uri, headers)));
    let mut res = answer.into_response();
    write(shared, &handle, &incoming, &mut res);
    crate::metrics::dbsc_refreshed();
    (res, None)
}

/// A device-bound session's DBSC identifier and key, from its claims.
fn device_key<T>(claims: &Claims<T>) -> Option<(String, PublicJwk)> {
    let key = claims.cnf.as_ref()?.dbsc.as_ref()?;
    Some((key.id.clone(), key.public_jwk()?))
}
