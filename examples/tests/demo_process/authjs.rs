//! The demo reading a Next.js app's session (issue 31): with `AUTH_SECRET`, `GET /me` also
//! accepts an Auth.js v5 cookie minted by `@auth/core`'s own `encode` (whole, chunked, on
//! the `__Secure-` name), answers its claims, and refuses another secret's or an altered
//! one with `401` without touching it; `AUTHJS_V4=1` reads NextAuth v4's cookie instead.

use jwe_session_core::{split_authjs_token, AuthJsVersion};
use jwe_session_tests::AuthJs;
use serde_json::json;

use super::*;

const SECRET: &str = "the-next-js-apps-secret-6f1d0c5e";

/// A browser holding the Next.js app's session cookie(s) for `token`.
fn next_browser(url: &str, token: &str, name: &str, version: AuthJsVersion) -> Client {
    let jar = split_authjs_token(token, name, version)
        .into_iter()
        .map(|(n, v)| (n, v.to_owned()))
        .collect();
    browser(url, &jar)
}

fn user(notes: usize) -> serde_json::Value {
    json!({"name": "Alice", "email": "alice@example.com", "picture": null, "sub": "next-user-7", "plan": "pro", "notes": "n".repeat(notes)})
}

#[tokio::test]
async fn me_accepts_the_next_js_apps_session_with_auth_secret() {
    let Some(node) = AuthJs::find() else { return };
    let dir = scratch("demo-authjs");
    let minted = node.call(&[
        json!({"op": "encode", "version": 5, "secret": SECRET, "salt": "authjs.session-token", "token": user(0), "maxAge": 3600}),
        json!({"op": "encode", "version": 5, "secret": SECRET, "salt": "authjs.session-token", "token": user(6_000), "maxAge": 3600}),
        json!({"op": "encode", "version": 5, "secret": SECRET, "salt": "__Secure-authjs.session-token", "token": user(0), "maxAge": 3600}),
        json!({"op": "encode", "version": 5, "secret": "another-apps-secret", "salt": "authjs.session-token", "token": user(0), "maxAge": 3600}),
    ]);
    let token = |i: usize| minted[i]["token"].as_str().unwrap().to_owned();
    let demo = Demo::start(
        free_port(),
        &[("AUTH_SECRET", SECRET)],
        dir.join("demo.log"),
    );
    let url = demo.url();

    let cases = [
        (token(0), "authjs.session-token", 1),
        (token(1), "authjs.session-token", 3),
        (token(2), "__Secure-authjs.session-token", 1),
    ];
    for (token, name, cookies) in &cases {
        let mut b = next_browser(&url, token, name, AuthJsVersion::V5);
        assert_eq!(b.jar.len(), *cookies, "{name}");
        let reply = b.get("/me").await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.body);
        let me: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(me["sub"], "next-user-7");
        assert_eq!(me["email"], "alice@example.com");
        assert_eq!(me["plan"], "pro");
        assert!(me["exp"].as_u64().unwrap() > me["iat"].as_u64().unwrap());
        assert!(
            reply.set_cookies.is_empty(),
            "the demo wrote over the Next.js cookie"
        );
    }

    // Another app's secret, a changed byte, a missing chunk: 401, cookie not cleared.
    let mut altered = token(0).into_bytes();
    let at = altered.len() / 2;
    altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let mut gap = next_browser(&url, &token(1), "authjs.session-token", AuthJsVersion::V5);
    gap.jar.remove("authjs.session-token.1");
    let mut refused = vec![
        next_browser(&url, &token(3), "authjs.session-token", AuthJsVersion::V5),
        next_browser(&url, &altered, "authjs.session-token", AuthJsVersion::V5),
        gap,
    ];
    for b in &mut refused {
        let reply = b.get("/me").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
        assert!(
            reply.set_cookies.is_empty(),
            "a refused Next.js cookie was touched"
        );
    }

    // The demo's own sessions are unchanged beside it.
    let mut own = Client::new(&url);
    assert_eq!(own.login("bob").await.status, StatusCode::SEE_OTHER);
    let me: serde_json::Value = serde_json::from_str(&own.get("/me").await.body).unwrap();
    assert_eq!(me["sub"], "bob");
}

#[tokio::test]
async fn authjs_v4_reads_next_auths_cookie_and_bad_settings_stop_the_demo() {
    let Some(node) = AuthJs::find() else { return };
    let dir = scratch("demo-authjs-v4");
    let minted = node.call(&[
        json!({"op": "encode", "version": 4, "secret": SECRET, "token": user(0), "maxAge": 3600}),
        json!({"op": "encode", "version": 5, "secret": SECRET, "salt": "authjs.session-token", "token": user(0), "maxAge": 3600}),
    ]);
    let (v4, v5) = (
        minted[0]["token"].as_str().unwrap().to_owned(),
        minted[1]["token"].as_str().unwrap().to_owned(),
    );
    let env = [("AUTH_SECRET", SECRET), ("AUTHJS_V4", "1")];
    let demo = Demo::start(free_port(), &env, dir.join("demo.log"));
    let mut b = next_browser(
        &demo.url(),
        &v4,
        "next-auth.session-token",
        AuthJsVersion::V4,
    );
    let reply = b.get("/me").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body.contains("next-user-7"));
    // With AUTHJS_V4=1 the v5 cookie is not read.
    let mut b = next_browser(&demo.url(), &v5, "authjs.session-token", AuthJsVersion::V5);
    assert_eq!(b.get("/me").await.status, StatusCode::UNAUTHORIZED);
    drop(demo);

    // Without AUTH_SECRET the demo does not read Next.js cookies at all.
    let demo = Demo::start(free_port(), &[], dir.join("none.log"));
    let mut b = next_browser(&demo.url(), &v5, "authjs.session-token", AuthJsVersion::V5);
    assert_eq!(b.get("/me").await.status, StatusCode::UNAUTHORIZED);
    drop(demo);

    for (env, says) in [
        (vec![("AUTH_SECRET", "")], "AUTH_SECRET"),
        (vec![("AUTHJS_V4", "1")], "AUTH_SECRET"),
    ] {
        let (status, log) = run_to_exit(&env, &dir.join("bad.log"));
        assert!(!status.success());
        assert!(log.contains(says), "{log}");
    }
}
