//! `AuthJsLayer`: Next.js session cookies (Auth.js v5, NextAuth v4) through real requests on
//! an injected clock. The tokens here are sealed with the core's Auth.js rings, which the
//! interop tests (`tests/tests/e2e/authjs.rs`) prove equal to what `@auth/core` and
//! `next-auth@4` write and read.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::COOKIE;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use jwe_session::authjs::{AuthJsLayer, AuthJsSession, DEFAULT_MAX_AGE, DEFAULT_UPDATE_AGE};
use jwe_session::core::{split_authjs_token, Revocation, RevocationStore, TokenOptions};
use jwe_session::{
    AuthJsClaims, AuthJsVersion, Claims, Clock, KeyRing, Lifetimes, ManualClock, MemoryStore,
    UnixMicros, UnixTime,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower::ServiceExt;

use crate::http::send;

const T0: u64 = 1_800_000_000;
const V5: &str = "authjs.session-token";
const V5_SECURE: &str = "__Secure-authjs.session-token";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Extra {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    notes: Option<String>,
}

async fn me(session: AuthJsSession<Extra>) -> String {
    json!({
        "sub": session.sub(),
        "email": session.app.email,
        "role": session.app.extra.role,
        "cookie": session.cookie_name(),
    })
    .to_string()
}

async fn logout(session: AuthJsSession<Extra>) -> StatusCode {
    match session.end().await {
        Ok(_) => StatusCode::NO_CONTENT,
        Err(jwe_session::RevokeError::Invalid(_)) => StatusCode::BAD_REQUEST,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

async fn maybe(session: Option<AuthJsSession<Extra>>) -> String {
    session.map_or_else(|| "anonymous".to_owned(), |s| s.sub().to_owned())
}

fn app(layer: AuthJsLayer<Extra>) -> Router {
    Router::new()
        .route("/me", get(me))
        .route("/maybe", get(maybe))
        .route("/logout", post(logout))
        .layer(layer)
}

/// A token as Auth.js's `encode` makes it at `iat`: `{name,email,picture,sub}` and the
/// app's claims, `iat`, `exp = iat + maxAge`, a `jti`.
fn minted(ring: &KeyRing, sub: &str, iat: u64, notes: usize) -> String {
    let claims = json!({
        "name": "Alice", "email": format!("{sub}@example.com"), "picture": null, "sub": sub,
        "role": "admin", "notes": "n".repeat(notes),
        "iat": iat, "exp": iat + DEFAULT_MAX_AGE.as_secs(), "jti": format!("jti-{sub}-{iat}"),
    });
    ring.seal(&claims, &TokenOptions::new().with_max_len(1 << 16))
        .unwrap()
        .into_string()
}

fn cookies(token: &str, name: &str, version: AuthJsVersion) -> String {
    split_authjs_token(token, name, version)
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(UnixTime::from_secs(T0)))
}

/// The app behind a v5 layer that renews as Auth.js does by default.
fn renewing_app(clock: &Arc<ManualClock>) -> Router {
    let layer = AuthJsLayer::<Extra>::v5(&["current-secret"])
        .clock(clock.clone())
        .renew(DEFAULT_MAX_AGE, DEFAULT_UPDATE_AGE)
        .build()
        .unwrap();
    app(layer)
}

fn v5_layer(clock: &Arc<ManualClock>, store: Arc<MemoryStore>) -> AuthJsLayer<Extra> {
    AuthJsLayer::<Extra>::v5(&["current-secret", "previous-secret"])
        .clock(clock.clone())
        .revocation_store(store)
        .build()
        .unwrap()
}

#[tokio::test]
async fn whole_chunked_and_secure_cookies_open_and_the_refused_are_left_alone() {
    let clock = clock();
    let app = app(v5_layer(&clock, Arc::new(MemoryStore::new())));
    let plain = KeyRing::from_authjs_secrets(&["current-secret"], V5).unwrap();
    let secure = KeyRing::from_authjs_secrets(&["current-secret"], V5_SECURE).unwrap();
    let previous = KeyRing::from_authjs_secrets(&["previous-secret"], V5).unwrap();

    let whole = minted(&plain, "alice", T0, 0);
    let a = send(
        &app,
        "GET",
        "/me",
        Some(&cookies(&whole, V5, AuthJsVersion::V5)),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let me: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(
        me,
        json!({"sub": "alice", "email": "alice@example.com", "role": "admin", "cookie": V5})
    );
    assert!(a.set_cookie.is_empty(), "read-only by default");

    // Chunked (three cookies), in any order, beside other cookies.
    let big = minted(&plain, "bob", T0, 9_000);
    let mut parts: Vec<String> = split_authjs_token(&big, V5, AuthJsVersion::V5)
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    assert!(parts.len() >= 3, "{}", parts.len());
    parts.reverse();
    parts.insert(1, "theme=dark".to_owned());
    let a = send(&app, "GET", "/me", Some(&parts.join("; "))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("\"bob\""));

    // The HTTPS name has its own key; it wins over the plain one.
    let on_https = minted(&secure, "carol", T0, 0);
    let both = format!(
        "{}; {}",
        cookies(&whole, V5, AuthJsVersion::V5),
        cookies(&on_https, V5_SECURE, AuthJsVersion::V5)
    );
    let a = send(&app, "GET", "/me", Some(&both)).await;
    assert!(
        a.body.contains("\"carol\"") && a.body.contains(V5_SECURE),
        "{}",
        a.body
    );

    // A token of the previous secret (rotation) still opens.
    let old = minted(&previous, "dave", T0, 0);
    let a = send(
        &app,
        "GET",
        "/me",
        Some(&cookies(&old, V5, AuthJsVersion::V5)),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);

    // Refused: another secret, the other name's key, a changed byte, a gap in the chunks,
    // whole and chunks at once. Each a 401, and the cookie is never cleared.
    let stranger = KeyRing::from_authjs_secrets(&["someone-else"], V5).unwrap();
    let mut changed = whole.clone().into_bytes();
    let at = changed.len() - 30;
    changed[at] = if changed[at] == b'A' { b'B' } else { b'A' };
    let changed = String::from_utf8(changed).unwrap();
    let chunks = split_authjs_token(&big, V5, AuthJsVersion::V5);
    let gap = format!(
        "{}={}; {}={}",
        chunks[0].0, chunks[0].1, chunks[2].0, chunks[2].1
    );
    let refused = [
        cookies(&minted(&stranger, "eve", T0, 0), V5, AuthJsVersion::V5),
        cookies(&whole, V5_SECURE, AuthJsVersion::V5),
        cookies(&changed, V5, AuthJsVersion::V5),
        gap,
        format!(
            "{}; {}",
            cookies(&big, V5, AuthJsVersion::V5),
            cookies(&whole, V5, AuthJsVersion::V5)
        ),
    ];
    for (i, cookie) in refused.iter().enumerate() {
        let a = send(&app, "GET", "/me", Some(cookie)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "case {i}");
        assert!(
            a.set_cookie.is_empty(),
            "case {i}: the Next.js app's cookie was touched"
        );
        assert_eq!(
            send(&app, "GET", "/maybe", Some(cookie)).await.body,
            "anonymous"
        );
    }
    assert_eq!(
        send(&app, "GET", "/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn expiry_has_auth_js_tolerance_and_sub_is_required() {
    let clock = clock();
    let app = app(v5_layer(&clock, Arc::new(MemoryStore::new())));
    let ring = KeyRing::from_authjs_secrets(&["current-secret"], V5).unwrap();
    let exp = T0 + DEFAULT_MAX_AGE.as_secs();
    let cookie = cookies(&minted(&ring, "alice", T0, 0), V5, AuthJsVersion::V5);
    clock.set(UnixTime::from_secs(exp + 14));
    assert_eq!(
        send(&app, "GET", "/me", Some(&cookie)).await.status,
        StatusCode::OK
    );
    clock.set(UnixTime::from_secs(exp + 15));
    assert_eq!(
        send(&app, "GET", "/me", Some(&cookie)).await.status,
        StatusCode::UNAUTHORIZED
    );

    clock.set(UnixTime::from_secs(T0));
    let no_sub = ring
        .seal(
            &json!({"email": "x@example.com", "iat": T0, "exp": exp}),
            &TokenOptions::new(),
        )
        .unwrap();
    let no_exp = ring
        .seal(&json!({"sub": "x", "iat": T0}), &TokenOptions::new())
        .unwrap();
    for t in [no_sub, no_exp] {
        let a = send(
            &app,
            "GET",
            "/me",
            Some(&cookies(t.as_str(), V5, AuthJsVersion::V5)),
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn logout_everywhere_and_session_revocations_apply() {
    let clock = clock();
    let store = Arc::new(MemoryStore::new());
    let app = app(v5_layer(&clock, store.clone()));
    let ring = KeyRing::from_authjs_secrets(&["current-secret"], V5).unwrap();
    let lifetimes = Lifetimes::default();
    let before = cookies(&minted(&ring, "alice", T0, 0), V5, AuthJsVersion::V5);
    let bobs = cookies(&minted(&ring, "bob", T0, 0), V5, AuthJsVersion::V5);
    clock.set(UnixTime::from_secs(T0 + 10));

    // Log out everywhere for alice at T0 + 5: her token of T0 is refused, bob's is not,
    // and a token Next.js issues after the cut-off works.
    let at = UnixMicros::from(UnixTime::from_secs(T0 + 5));
    store
        .revoke(Revocation::subject("alice", at, &lifetimes), clock.now())
        .await
        .unwrap();
    assert_eq!(
        send(&app, "GET", "/me", Some(&before)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app, "GET", "/me", Some(&bobs)).await.status,
        StatusCode::OK
    );
    let after = cookies(&minted(&ring, "alice", T0 + 10, 0), V5, AuthJsVersion::V5);
    assert_eq!(
        send(&app, "GET", "/me", Some(&after)).await.status,
        StatusCode::OK
    );

    // A `sid` from the app's jwt callback (stable across Next.js's re-encodes) and an
    // `auth_time`: logout of the session by its sid ends every token of it.
    let with_sid = |iat: u64| {
        let claims = json!({"sub": "carol", "sid": "s-carol-1", "auth_time": T0, "iat": iat, "exp": iat + 3600, "jti": format!("j{iat}")});
        cookies(
            ring.seal(&claims, &TokenOptions::new()).unwrap().as_str(),
            V5,
            AuthJsVersion::V5,
        )
    };
    let first = with_sid(T0);
    let a = send(&app, "POST", "/logout", Some(&first)).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(a.set_cookie.is_empty());
    for t in [first, with_sid(T0 + 10)] {
        assert_eq!(
            send(&app, "GET", "/me", Some(&t)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Neither sid nor jti: nothing to revoke by, refused typed (and nothing recorded).
    let bare = ring
        .seal(
            &json!({"sub": "erin", "iat": T0, "exp": T0 + 3600}),
            &TokenOptions::new(),
        )
        .unwrap();
    let bare = cookies(bare.as_str(), V5, AuthJsVersion::V5);
    assert_eq!(
        send(&app, "POST", "/logout", Some(&bare)).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(&app, "GET", "/me", Some(&bare)).await.status,
        StatusCode::OK
    );
    // Without a sid, the jti is what logout revokes.
    let lone = cookies(&minted(&ring, "dave", T0 + 10, 0), V5, AuthJsVersion::V5);
    assert_eq!(
        send(&app, "POST", "/logout", Some(&lone)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&app, "GET", "/me", Some(&lone)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn renewal_writes_auth_js_cookies_with_its_chunks_and_attributes() {
    let clock = clock();
    let app = renewing_app(&clock);
    let ring = KeyRing::from_authjs_secrets(&["current-secret"], V5_SECURE).unwrap();
    // Several chunks today; the renewed token (same claims) as many, so nothing left over.
    let token = minted(&ring, "alice", T0, 9_000);
    let cookie = cookies(&token, V5_SECURE, AuthJsVersion::V5);

    // Younger than the update age: nothing written.
    clock.set(UnixTime::from_secs(T0 + DEFAULT_UPDATE_AGE.as_secs() - 1));
    assert!(send(&app, "GET", "/me", Some(&cookie))
        .await
        .set_cookie
        .is_empty());

    // A day old: renewed, in Auth.js's chunks and attributes.
    let now = T0 + DEFAULT_UPDATE_AGE.as_secs();
    clock.set(UnixTime::from_secs(now));
    let a = send(&app, "GET", "/me", Some(&cookie)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.cache_control.as_deref(), Some("no-store"));
    let chunks = split_authjs_token(&token, V5_SECURE, AuthJsVersion::V5).len();
    assert_eq!(
        a.set_cookie.len(),
        chunks,
        "as many chunks as before, none to clear"
    );
    let mut pairs = Vec::new();
    for (i, c) in a.set_cookie.iter().enumerate() {
        let parsed = cookie::Cookie::parse(c.as_str()).unwrap();
        assert_eq!(parsed.name(), format!("{V5_SECURE}.{i}"));
        assert_eq!(parsed.path(), Some("/"));
        assert_eq!(parsed.http_only(), Some(true));
        assert_eq!(parsed.secure(), Some(true));
        assert_eq!(parsed.same_site(), Some(cookie::SameSite::Lax));
        let expires = parsed.expires_datetime().unwrap().unix_timestamp();
        assert_eq!(
            u64::try_from(expires).unwrap(),
            now + DEFAULT_MAX_AGE.as_secs()
        );
        pairs.push((parsed.name().to_owned(), parsed.value().to_owned()));
    }
    let joined: String = pairs.iter().map(|p| p.1.as_str()).collect();
    let renewed = ring
        .open::<Claims<AuthJsClaims<Extra>>>(&joined, &TokenOptions::new().with_max_len(1 << 16))
        .unwrap()
        .into_payload();
    let before = ring
        .open::<Claims<AuthJsClaims<Extra>>>(&token, &TokenOptions::new().with_max_len(1 << 16))
        .unwrap()
        .into_payload();
    assert_eq!(renewed.iat, Some(UnixTime::from_secs(now)));
    assert_eq!(
        renewed.exp,
        Some(UnixTime::from_secs(now + DEFAULT_MAX_AGE.as_secs()))
    );
    assert_ne!(renewed.jti, before.jti);
    assert_eq!(
        (renewed.sub.clone(), renewed.app.clone()),
        (before.sub.clone(), before.app.clone())
    );

    // Chunks that do not join (a stray fourth beside the three) are refused, not guessed.
    let stray = format!("{cookie}; {V5_SECURE}.{chunks}=zzz");
    assert_eq!(
        send(&app, "GET", "/me", Some(&stray)).await.status,
        StatusCode::UNAUTHORIZED
    );

    // A session ended by the handler is not renewed.
    let a = send(&app, "POST", "/logout", Some(&cookie)).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(a.set_cookie.is_empty());
}

#[tokio::test]
async fn a_shorter_renewed_token_clears_the_chunks_it_no_longer_needs() {
    let clock = clock();
    let app = renewing_app(&clock);
    let ring = KeyRing::from_authjs_secrets(&["current-secret"], V5).unwrap();
    // A token in two chunks only because of a long `jti`: renewed (a fresh 22-character
    // jti), it fits in one cookie, and the two chunks must go, as Auth.js's SessionStore
    // cleans them (empty value, Max-Age=0, same attributes).
    let exp = T0 + DEFAULT_MAX_AGE.as_secs();
    let claims = json!({"sub": "alice", "iat": T0, "exp": exp, "jti": "j".repeat(3_500)});
    let token = ring
        .seal(&claims, &TokenOptions::new())
        .unwrap()
        .into_string();
    assert_eq!(split_authjs_token(&token, V5, AuthJsVersion::V5).len(), 2);
    // Cookies that only look like its chunks are not the layer's to clear.
    let cookie = format!(
        "{}; {V5}.01=x; {V5}-legacy=y",
        cookies(&token, V5, AuthJsVersion::V5)
    );
    clock.set(UnixTime::from_secs(T0 + DEFAULT_UPDATE_AGE.as_secs()));
    let a = send(&app, "GET", "/me", Some(&cookie)).await;
    assert_eq!(a.status, StatusCode::OK);
    let set: Vec<cookie::Cookie<'_>> = a
        .set_cookie
        .iter()
        .map(|c| cookie::Cookie::parse(c.as_str()).unwrap())
        .collect();
    let names: Vec<&str> = set.iter().map(cookie::Cookie::name).collect();
    assert_eq!(names, [V5, &format!("{V5}.0"), &format!("{V5}.1")]);
    assert!(!set[0].value().is_empty());
    for cleared in &set[1..] {
        assert_eq!(cleared.value(), "");
        assert_eq!(cleared.max_age(), Some(cookie::time::Duration::ZERO));
        assert_eq!(
            (cleared.path(), cleared.http_only(), cleared.secure()),
            (Some("/"), Some(true), None),
            "no Secure on the plain name"
        );
    }
}

#[tokio::test]
async fn cross_origin_unsafe_requests_are_refused_before_the_handler() {
    let clock = clock();
    let store = Arc::new(MemoryStore::new());
    let app = app(v5_layer(&clock, store.clone()));
    let ring = KeyRing::from_authjs_secrets(&["current-secret"], V5).unwrap();
    let cookie = cookies(&minted(&ring, "alice", T0, 0), V5, AuthJsVersion::V5);
    let req = Request::post("/logout")
        .header(COOKIE, &cookie)
        .header("sec-fetch-site", "cross-site")
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // The handler did not run: the session is not revoked.
    assert_eq!(
        send(&app, "GET", "/me", Some(&cookie)).await.status,
        StatusCode::OK
    );
    // Trusting the Next.js app's origin lets it through.
    let trusted = AuthJsLayer::<Extra>::v5(&["current-secret"])
        .clock(clock.clone())
        .trusted_origin("https://app.example.com")
        .build()
        .unwrap();
    let req = Request::post("/logout")
        .header(COOKIE, &cookie)
        .header("sec-fetch-site", "same-site")
        .header("origin", "https://app.example.com")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        self::app(trusted).oneshot(req).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn next_auth_v4_cookies_open_under_their_own_names() {
    let clock = clock();
    let layer = AuthJsLayer::<Extra>::v4("v4-secret")
        .clock(clock.clone())
        .build()
        .unwrap();
    let app = app(layer);
    let ring = KeyRing::from_nextauth_secret(b"v4-secret").unwrap();
    let token = minted(&ring, "alice", T0, 5_000);
    for name in [
        "next-auth.session-token",
        "__Secure-next-auth.session-token",
    ] {
        let a = send(
            &app,
            "GET",
            "/me",
            Some(&cookies(&token, name, AuthJsVersion::V4)),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{name}");
        assert!(a.body.contains(name));
    }
    // A v5 cookie name is not read by a v4 layer.
    let a = send(
        &app,
        "GET",
        "/me",
        Some(&cookies(&token, V5, AuthJsVersion::V4)),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

#[test]
fn bad_configurations_are_refused() {
    let none: [&str; 0] = [];
    assert!(AuthJsLayer::<()>::v5(&none).build().is_err());
    assert!(AuthJsLayer::<()>::v5(&[""]).build().is_err());
    assert!(AuthJsLayer::<()>::v5(&["s"])
        .trusted_origin("not an origin")
        .build()
        .is_err());
    assert!(AuthJsLayer::<()>::v5(&["s"])
        .renew(Duration::from_secs(60), Duration::from_secs(60))
        .build()
        .is_err());
    let e = AuthJsLayer::<()>::v5(&[""]).build().unwrap_err();
    assert!(e.to_string().contains("AUTH_SECRET"), "{e}");
}
