//! The session layer and the demo app over real HTTP, with an injected clock.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use jwe_session::{Renew, Session, SessionHandle, SessionLayer, Transport};
use jwe_session_core::{
    Claims, Enc, KeyRingHandle, Lifetimes, ManualClock, TokenOptions, UnixTime,
};
use jwe_session_demo::demo::{app, DemoClaims, DemoOptions};
use jwe_session_test_support::{kid_of, seeded_key, seeded_ring};
use jwe_session_tests::{Client, Reply, Server};

const T0: u64 = 1_800_000_000;
const MIN: Duration = Duration::from_secs(60);

struct Demo {
    server: Server,
    clock: ManualClock,
    ring: KeyRingHandle,
}

async fn demo() -> Demo {
    let clock = ManualClock::new(UnixTime::from_secs(T0));
    let handle = KeyRingHandle::new(seeded_ring(&[("k1", 1)]));
    let mut opts = DemoOptions::new(handle.clone());
    opts.clock = Arc::new(clock.clone());
    let server = Server::start(app(opts).unwrap()).await;
    Demo {
        server,
        clock,
        ring: handle,
    }
}

fn assert_cleared(r: &Reply, name: &str) {
    let c = r
        .set_cookie(name)
        .unwrap_or_else(|| panic!("no Set-Cookie for {name}: {r:?}"));
    assert_eq!(c.value(), "");
    assert_eq!(c.max_age(), Some(cookie::time::Duration::ZERO));
}

#[tokio::test]
async fn login_me_renew_logout_and_replay() {
    let d = demo().await;
    let mut c = Client::new(d.server.url());

    let r = c.login("alice").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.headers["location"], "/");
    let set = r
        .set_cookie("__Host-session")
        .expect("login sets the cookie");
    assert_eq!(set.http_only(), Some(true));
    assert_eq!(set.secure(), Some(true));
    assert_eq!(set.same_site(), Some(cookie::SameSite::Lax));
    assert_eq!(set.path(), Some("/"));
    // Max-Age covers the idle window after exp: 15 min + 24 h.
    assert_eq!(
        set.max_age(),
        Some(cookie::time::Duration::seconds(15 * 60 + 24 * 3600))
    );

    let r = c.get("/me").await;
    assert_eq!(r.status, 200);
    assert!(
        r.set_cookies.is_empty(),
        "nothing changed, nothing written: {:?}",
        r.set_cookies
    );
    let first = r.json();
    assert_eq!(first["sub"], "alice");
    assert_eq!(first["iss"], "jwe-session-demo");
    assert_eq!(first["roles"], serde_json::json!(["user"]));
    assert_eq!(first["exp"], T0 + 15 * 60);

    // Past exp, within the idle window: renewed, same sid and auth_time, new jti/iat/exp.
    d.clock.advance(16 * MIN);
    let old_cookie = c.jar["__Host-session"].clone();
    let r = c.get("/me").await;
    assert_eq!(r.status, 200);
    assert!(
        r.set_cookie("__Host-session").is_some(),
        "renewal writes the cookie"
    );
    let renewed = r.json();
    assert_eq!(renewed["sid"], first["sid"]);
    assert_eq!(renewed["auth_time"], first["auth_time"]);
    assert_ne!(renewed["jti"], first["jti"]);
    assert_eq!(renewed["iat"], T0 + 16 * 60);
    assert_eq!(renewed["exp"], T0 + 31 * 60);
    assert_ne!(c.jar["__Host-session"], old_cookie);

    // Logout clears the cookie and revokes the sid ...
    let current = c.jar["__Host-session"].clone();
    let r = c.post_form("/logout", &[]).await;
    assert_eq!(r.status, 303);
    assert_cleared(&r, "__Host-session");
    assert_eq!(c.get("/me").await.status, 401);

    // ... so copies of the token are refused (and cleared): the current one, which has not
    // expired, and the first one, which is past exp and would otherwise be renewed.
    for replayed in [current, old_cookie] {
        let mut replay = Client::new(d.server.url());
        replay.jar.insert("__Host-session".into(), replayed);
        let r = replay.get("/me").await;
        assert_eq!(r.status, 401);
        assert_cleared(&r, "__Host-session");
    }
}

#[tokio::test]
async fn revoked_token_is_refused_before_exp_too() {
    let d = demo().await;
    let mut c = Client::new(d.server.url());
    c.login("alice").await;
    let token = c.jar["__Host-session"].clone();
    c.post_form("/logout", &[]).await;
    let mut replay = Client::new(d.server.url());
    replay.jar.insert("__Host-session".into(), token);
    let r = replay.get("/me").await;
    assert_eq!(r.status, 401);
    assert_cleared(&r, "__Host-session");
    // The page still renders (no 500) and offers the login form.
    let mut replay2 = replay.clone();
    let r = replay2.get("/").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("id=\"login\""));
}

#[tokio::test]
async fn logging_in_again_revokes_the_session_it_replaces() {
    let d = demo().await;
    let mut c = Client::new(d.server.url());
    c.login("alice").await;
    let first = c.jar["__Host-session"].clone();
    let first_sid = c.get("/me").await.json()["sid"].clone();

    // Another login from the same browser: the request carries the first session.
    assert_eq!(c.login("bob").await.status, 303);
    let me = c.get("/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["sub"], "bob");
    assert_ne!(me.json()["sid"], first_sid);

    // A copy of the replaced token is refused now, not at its exp.
    let mut replay = Client::new(d.server.url());
    replay.jar.insert("__Host-session".into(), first);
    let r = replay.get("/me").await;
    assert_eq!(r.status, 401);
    assert_cleared(&r, "__Host-session");
}

#[tokio::test]
async fn logout_everywhere_ends_one_users_sessions_only() {
    let d = demo().await;
    let mut laptop = Client::new(d.server.url());
    let mut phone = Client::new(d.server.url());
    let mut bob = Client::new(d.server.url());
    laptop.login("alice").await;
    phone.login("alice").await;
    bob.login("bob").await;
    d.clock.advance(MIN);
    for c in [&mut laptop, &mut phone, &mut bob] {
        assert_eq!(c.get("/me").await.status, 200);
    }

    let r = laptop.post_form("/logout-everywhere", &[]).await;
    assert_eq!(r.status, 303);
    assert_cleared(&r, "__Host-session");
    assert_eq!(laptop.get("/me").await.status, 401);
    assert_eq!(
        phone.get("/me").await.status,
        401,
        "alice's other session ends too"
    );
    assert_eq!(bob.get("/me").await.status, 200, "bob is not affected");

    // Alice can log in again afterwards.
    d.clock.advance(Duration::from_secs(1));
    laptop.login("alice").await;
    assert_eq!(laptop.get("/me").await.status, 200);
}

#[tokio::test]
async fn tampered_or_garbage_cookies_never_500_and_are_cleared() {
    let d = demo().await;
    let mut c = Client::new(d.server.url());
    c.login("alice").await;
    let token = c.jar["__Host-session"].clone();
    let cases = [
        {
            let mut b = token.clone().into_bytes();
            let i = b.len() / 2;
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            String::from_utf8(b).unwrap()
        },
        "garbage".to_owned(),
        format!("{token}.x"),
        "a".repeat(5000),
        String::new(),
    ];
    for bad in cases {
        let mut evil = Client::new(d.server.url());
        evil.jar.insert("__Host-session".into(), bad.clone());
        let r = evil.get("/me").await;
        assert_eq!(r.status, 401, "{bad:.40}");
        if !bad.is_empty() {
            assert_cleared(&r, "__Host-session");
        }
        let r = evil.get("/").await;
        assert_eq!(r.status, 200);
    }
}

#[tokio::test]
async fn rotation_reseals_old_key_tokens_under_the_new_key() {
    let d = demo().await;
    let mut c = Client::new(d.server.url());
    c.login("alice").await;
    assert_eq!(kid_of(&c.jar["__Host-session"]), "k1");
    let sid = c.get("/me").await.json()["sid"].clone();

    d.ring.replace(seeded_ring(&[("k2", 2), ("k1", 1)]));
    let r = c.get("/me").await;
    assert_eq!(r.status, 200);
    assert!(
        r.set_cookie("__Host-session").is_some(),
        "re-sealed in the same response"
    );
    assert_eq!(kid_of(&c.jar["__Host-session"]), "k2");
    assert_eq!(r.json()["sid"], sid);
    // Once re-sealed, nothing more is written.
    assert!(c.get("/me").await.set_cookies.is_empty());

    // Dropping k1 logs out whoever still holds a k1 token, and only them.
    let mut stale = Client::new(d.server.url());
    d.ring.replace(seeded_ring(&[("k1", 1)]));
    stale.login("carol").await;
    d.ring.replace(seeded_ring(&[("k2", 2)]));
    assert_eq!(stale.get("/me").await.status, 401);
    assert_eq!(c.get("/me").await.status, 200);
}

#[tokio::test]
async fn renew_hook_refusing_ends_the_session_and_updates_apply() {
    let d = demo().await;
    let mut banned = Client::new(d.server.url());
    banned.login("banned").await;
    assert_eq!(banned.get("/me").await.status, 200);
    d.clock.advance(16 * MIN);
    let r = banned.get("/me").await;
    assert_eq!(r.status, 401);
    assert_cleared(&r, "__Host-session");

    // The demo's hook re-reads roles: "admin" gains its role at renewal.
    let mut admin = Client::new(d.server.url());
    admin.login("admin").await;
    assert_eq!(
        admin.get("/me").await.json()["roles"],
        serde_json::json!(["user", "admin"])
    );
}

#[tokio::test]
async fn idle_and_absolute_limits_end_sessions() {
    let d = demo().await;
    let mut idle = Client::new(d.server.url());
    idle.login("idle").await;
    d.clock.advance(15 * MIN + Duration::from_secs(24 * 3600));
    let r = idle.get("/me").await;
    assert_eq!(r.status, 401, "past exp + idle");
    assert_cleared(&r, "__Host-session");

    let mut busy = Client::new(d.server.url());
    busy.login("busy").await;
    // Active every 12 hours for a week: renewed each time until the absolute lifetime.
    for _ in 0..13 {
        d.clock.advance(Duration::from_secs(12 * 3600));
        assert_eq!(busy.get("/me").await.status, 200);
    }
    d.clock.advance(Duration::from_secs(12 * 3600));
    let r = busy.get("/me").await;
    assert_eq!(r.status, 401, "past auth_time + 7 days");
}

#[tokio::test]
async fn large_sessions_are_chunked_and_shrinking_clears_stale_chunks() {
    let d = demo().await;
    let mut c = Client::new(d.server.url());
    let notes: String = (0..10_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let r = c
        .post_form(
            "/login",
            &[("username", "big"), ("password", "demo"), ("notes", &notes)],
        )
        .await;
    assert_eq!(r.status, 303);
    let names: Vec<&str> = r.set_cookies.iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        [
            "__Host-session",
            "__Host-session.1",
            "__Host-session.2",
            "__Host-session.3"
        ]
    );
    for sc in &r.set_cookies {
        assert!(
            sc.to_string().len() <= 4000,
            "{} bytes",
            sc.to_string().len()
        );
    }
    let me = c.get("/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["notes"], notes);
    assert!(me.set_cookies.is_empty());

    // Log in again with a small session: one cookie, stale chunks cleared.
    let r = c.login("big").await;
    assert_eq!(
        r.set_cookie("__Host-session")
            .unwrap()
            .max_age()
            .unwrap()
            .whole_seconds(),
        15 * 60 + 24 * 3600
    );
    for stale in ["__Host-session.1", "__Host-session.2", "__Host-session.3"] {
        assert_cleared(&r, stale);
    }
    assert_eq!(c.jar.keys().collect::<Vec<_>>(), ["__Host-session"]);
    let me = c.get("/me").await;
    assert_eq!(me.status, 200);
    assert!(me.json().get("notes").is_none());
}

#[tokio::test]
async fn a_token_for_another_purpose_is_refused() {
    let d = demo().await;
    let now = UnixTime::from_secs(T0);
    let mut claims = Claims::new(DemoClaims {
        roles: vec!["admin".into()],
        notes: None,
    });
    claims.iss = Some("jwe-session-demo".into());
    Lifetimes::default().start(&mut claims, "mallory", now);
    let ring = d.ring.load();
    let other = TokenOptions::new().with_purpose("jwe-session/cookie/other-app");
    let forged = ring.seal(&claims, &other).unwrap();
    let mut c = Client::new(d.server.url());
    c.jar.insert("__Host-session".into(), forged.into_string());
    let r = c.get("/me").await;
    assert_eq!(r.status, 401);
    assert_cleared(&r, "__Host-session");
    // The same claims sealed for the demo's purpose open: only the purpose differed.
    // (The demo sets an issuer, which the default purpose includes.)
    let right =
        TokenOptions::new().with_purpose("jwe-session/cookie/__Host-session;iss=jwe-session-demo");
    c.jar.insert(
        "__Host-session".into(),
        ring.seal(&claims, &right).unwrap().into_string(),
    );
    assert_eq!(c.get("/me").await.status, 200);
}

#[tokio::test]
async fn concurrent_requests_with_one_expiring_token_all_succeed() {
    let d = demo().await;
    let mut c = Client::new(d.server.url());
    c.login("alice").await;
    let sid = c.get("/me").await.json()["sid"].clone();
    d.clock.advance(16 * MIN);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let mut c = c.clone();
        tasks.push(tokio::spawn(async move { c.get("/me").await }));
    }
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["sid"], sid);
        assert!(r.set_cookie("__Host-session").is_some());
    }
}

#[tokio::test]
async fn wrong_password_is_401_and_sets_nothing() {
    let d = demo().await;
    let mut c = Client::new(d.server.url());
    let r = c
        .post_form("/login", &[("username", "alice"), ("password", "nope")])
        .await;
    assert_eq!(r.status, 401);
    assert!(r.set_cookies.is_empty());
    let r = c
        .post_form("/login", &[("username", " "), ("password", "demo")])
        .await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("<h1>"));
    assert_eq!(c.get("/me").await.status, 401);
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_demo_refuses_cross_site_posts_before_the_handler() {
    let d = demo().await;
    let mut victim = Client::new(d.server.url());
    victim.login("alice").await;
    let host = d.server.addr.to_string();
    let cross: [&[(&str, &str)]; 3] = [
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        &[("origin", "http://127.0.0.2:8080")],
    ];
    for path in ["/login", "/logout", "/logout-everywhere"] {
        for headers in cross {
            // A fresh browser (no cookie: login CSRF) and the victim's (logout CSRF).
            for c in [&mut Client::new(d.server.url()), &mut victim] {
                let mut req = no_redirects()
                    .post(format!("{}{path}", d.server.url()))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("username=mallory&password=demo");
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                let r = c.send(req).await;
                assert_eq!(r.status, 403, "{path} {headers:?}");
                assert!(r.set_cookies.is_empty(), "{path} {headers:?}");
            }
        }
    }
    assert_eq!(victim.get("/me").await.json()["sub"], "alice");
    // The demo's own forms: same-origin (Sec-Fetch-Site or a matching Origin) pass.
    for headers in [
        [("sec-fetch-site", "same-origin"), ("x-unused", "")],
        [
            ("origin", &format!("http://{host}") as &str),
            ("x-unused", ""),
        ],
    ] {
        let mut c = Client::new(d.server.url());
        let mut req = no_redirects()
            .post(format!("{}/login", d.server.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("username=bob&password=demo");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        assert_eq!(c.send(req).await.status, 303, "{headers:?}");
        assert_eq!(c.get("/me").await.json()["sub"], "bob");
    }
}

/// Issue 25, item 3: cross-site WebSocket hijacking. A handshake is a `GET`, but it opens
/// an authenticated two-way channel: a page on another origin (here another port of the
/// same host, which `SameSite=Lax` counts as the same site) must not open the demo's `/ws`
/// with the victim's cookie. A real socket, as a browser would open it.
#[tokio::test]
async fn a_cross_origin_websocket_handshake_is_refused() {
    use jwe_session_tests::WsClient;
    let d = demo().await;
    let mut victim = Client::new(d.server.url());
    victim.login("alice").await;
    let base = d.server.url();
    for evil in [
        "http://127.0.0.1:8120",
        "http://evil.example",
        "null",
        "https://127.0.0.1",
    ] {
        assert_eq!(
            WsClient::connect_from(&base, &victim.jar, Some(evil))
                .await
                .err(),
            Some(403),
            "a page on {evil} opened /ws with the victim's cookie"
        );
    }
    // The demo's own page, and a client that is not a browser (no Origin), connect.
    let own = format!("http://{}", d.server.addr);
    let mut ws = WsClient::connect_from(&base, &victim.jar, Some(&own))
        .await
        .expect("same-origin handshake");
    assert!(ws
        .text(Duration::from_secs(2))
        .await
        .unwrap()
        .contains("alice"));
    assert!(WsClient::connect_from(&base, &victim.jar, None)
        .await
        .is_ok());
    assert_eq!(victim.get("/me").await.json()["sub"], "alice");
}

/// Issue 25, item 4: a ban through the renew hook (the demo's role table) reaches an open
/// WebSocket. The admin's `POST /roles` refreshes the user's claims; the socket's watch
/// completes, the demo runs the renew hook again, and the hook's refusal closes it with
/// 4401. A role change that the hook accepts leaves the socket open. Real sockets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_closes_the_users_open_websocket() {
    use jwe_session_tests::{WsClient, WsEnd};
    let d = demo().await;
    let base = d.server.url();
    let mut admin = Client::new(base.clone());
    admin.login("admin").await;
    let mut mallory = Client::new(base.clone());
    mallory.login("mallory").await;
    let mut bob = Client::new(base.clone());
    bob.login("bob").await;
    let mut mallorys = WsClient::connect(&base, &mallory.jar).await.unwrap();
    let mut bobs = WsClient::connect(&base, &bob.jar).await.unwrap();
    assert_eq!(
        mallorys.text(Duration::from_secs(2)).await.as_deref(),
        Some("mallory")
    );
    assert_eq!(
        bobs.text(Duration::from_secs(2)).await.as_deref(),
        Some("bob")
    );
    let r = admin
        .post_form("/roles", &[("username", "mallory"), ("roles", "banned")])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        mallorys.end(Duration::from_secs(3)).await,
        WsEnd::Closed(4401, "session refused".into()),
        "the banned user's socket stayed open"
    );
    let r = admin
        .post_form("/roles", &[("username", "bob"), ("roles", "user,editor")])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        bobs.end(Duration::from_millis(500)).await,
        WsEnd::StillOpen,
        "a role change the hook accepts keeps the socket"
    );
    // Bob's socket went on with the new claims: banning him now still closes it.
    let r = admin
        .post_form("/roles", &[("username", "bob"), ("roles", "banned")])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        bobs.end(Duration::from_secs(3)).await,
        WsEnd::Closed(4401, "session refused".into())
    );
    assert_eq!(mallory.get("/me").await.status, 401);
}

/// Issue 25, item 4: the demo's `/ws` ends at the session's absolute lifetime, however
/// long the socket has been open (the clock is the test's; one second is left).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_ends_at_the_absolute_lifetime() {
    use jwe_session_tests::{WsClient, WsEnd};
    let d = demo().await;
    let mut alice = Client::new(d.server.url());
    alice.login("alice").await;
    // Active every 12 hours (each request renews) until one second is left.
    let mut left = Lifetimes::default().absolute() - Duration::from_secs(1);
    while !left.is_zero() {
        let step = left.min(Duration::from_secs(12 * 3600));
        d.clock.advance(step);
        left -= step;
        assert_eq!(alice.get("/me").await.status, 200);
    }
    let mut ws = WsClient::connect(&d.server.url(), &alice.jar)
        .await
        .unwrap();
    assert_eq!(
        ws.text(Duration::from_secs(2)).await.as_deref(),
        Some("alice")
    );
    assert_eq!(
        ws.end(Duration::from_secs(4)).await,
        WsEnd::Closed(4401, "session expired".into())
    );
}

/// Issue 25, item 10: only a session holding the role `admin` changes another user's
/// roles (403 otherwise), only for users who logged in (404 otherwise), and the role
/// table holds at most its cap of users, however many names log in.
#[tokio::test]
async fn only_an_admin_changes_roles_and_the_table_stays_bounded() {
    use jwe_session_demo::demo::RoleTable;
    let clock = ManualClock::new(UnixTime::from_secs(T0));
    let mut opts = DemoOptions::new(KeyRingHandle::new(seeded_ring(&[("k1", 1)])));
    opts.clock = Arc::new(clock);
    let table = RoleTable::memory_with_cap(4);
    opts.roles = table.clone();
    let server = Server::start(app(opts).unwrap()).await;
    let mut alice = Client::new(server.url());
    alice.login("alice").await;
    let mut bob = Client::new(server.url());
    bob.login("bob").await;
    let ban = [("username", "alice"), ("roles", "banned")];
    assert_eq!(
        bob.post_form("/roles", &ban).await.status,
        403,
        "bob is no admin"
    );
    assert_eq!(
        alice.get("/me").await.json()["roles"],
        serde_json::json!(["user"])
    );
    let mut admin = Client::new(server.url());
    admin.login("admin").await;
    assert_eq!(
        admin.get("/me").await.json()["roles"],
        serde_json::json!(["user", "admin"])
    );
    let stranger = [("username", "never-logged-in"), ("roles", "user")];
    assert_eq!(admin.post_form("/roles", &stranger).await.status, 404);
    assert_eq!(admin.post_form("/roles", &ban).await.status, 303);
    assert_eq!(alice.get("/me").await.status, 401, "banned");
    // Many names log in; the table keeps at most its cap, and never drops the ban.
    for i in 0..20 {
        Client::new(server.url()).login(&format!("user{i}")).await;
    }
    assert!(
        table.users().await.unwrap() <= 4,
        "{}",
        table.users().await.unwrap()
    );
    assert_eq!(
        table.get("alice").await.unwrap(),
        ["banned"],
        "a user whose roles were set is never the one evicted"
    );
}

/// Issue 25, item 5: the demo's cookie is `__Host-session` (Secure, Path=/, no Domain),
/// which no sibling subdomain can plant or shadow.
#[tokio::test]
async fn the_demo_cookie_is_host_prefixed() {
    let d = demo().await;
    let mut c = Client::new(d.server.url());
    let r = c.login("alice").await;
    let set = r
        .set_cookie("__Host-session")
        .unwrap_or_else(|| panic!("no __Host-session cookie: {r:?}"));
    assert_eq!(set.secure(), Some(true));
    assert_eq!(set.path(), Some("/"));
    assert_eq!(set.domain(), None);
    assert!(r.set_cookie("session").is_none());
    let mut planted = c.clone();
    planted.jar.insert("session".into(), "planted".into());
    assert_eq!(planted.get("/me").await.json()["sub"], "alice");
}

#[tokio::test]
async fn notes_too_large_for_cookies_are_413_and_the_session_stays() {
    let d = demo().await;
    let mut c = Client::new(d.server.url());
    c.login("alice").await;
    let huge = "n".repeat(30_000);
    let fields = [
        ("username", "alice"),
        ("password", "demo"),
        ("notes", &huge),
    ];
    // Logged in (the session stays), and a fresh client (nothing is cleared or set).
    for mut c in [c, Client::new(d.server.url())] {
        let before = c.jar.clone();
        let r = c.post_form("/login", &fields).await;
        assert_eq!(r.status, 413);
        assert!(r.set_cookies.is_empty(), "{:?}", r.set_cookies);
        assert!(r.body.contains("too long"));
        assert_eq!(c.jar, before);
        let me = c.get("/me").await;
        if before.is_empty() {
            assert_eq!(me.status, 401);
        } else {
            assert_eq!(me.json()["sub"], "alice");
        }
    }
}

#[tokio::test]
async fn responses_that_set_the_session_are_not_cacheable() {
    let d = demo().await;
    let mut c = Client::new(d.server.url());
    let r = c.login("alice").await;
    assert_eq!(r.headers["cache-control"], "no-store");
    d.clock.advance(16 * MIN);
    let r = c.get("/me").await;
    assert!(r.set_cookie("__Host-session").is_some(), "renewed");
    assert_eq!(r.headers["cache-control"], "no-store");
    let r = c.get("/me").await;
    assert!(r.set_cookies.is_empty());
    assert!(r.headers.get("cache-control").is_none());
    let r = c.post_form("/logout", &[]).await;
    assert_eq!(r.headers["cache-control"], "no-store");
}

// ---- bearer transport ----------------------------------------------------------------

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Api {
    scope: String,
}

async fn bearer_app(clock: ManualClock, refuse: bool) -> Server {
    let layer = SessionLayer::<Api>::builder(seeded_ring(&[("b1", 7)]))
        .transport(Transport::Bearer)
        .clock(Arc::new(clock))
        .on_renew(move |_| async move {
            if refuse {
                Renew::Refuse
            } else {
                Renew::Update(Api {
                    scope: "renewed".into(),
                })
            }
        })
        .build()
        .unwrap();
    let router = Router::new()
        .route(
            "/token",
            post(|h: SessionHandle<Api>| async move {
                h.start(
                    "svc",
                    Api {
                        scope: "read".into(),
                    },
                )
                .unwrap();
                "ok"
            }),
        )
        .route(
            "/whoami",
            get(|s: Session<Api>| async move { format!("{} {}", s.sub(), s.app.scope) }),
        )
        .layer(layer);
    Server::start(router).await
}

#[tokio::test]
async fn bearer_tokens_come_back_in_the_token_header_and_renew() {
    let clock = ManualClock::new(UnixTime::from_secs(T0));
    let server = bearer_app(clock.clone(), false).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/token", server.url()))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers().get("set-cookie").is_none(),
        "bearer mode sets no cookie"
    );
    let token = r.headers()["x-session-token"].to_str().unwrap().to_owned();

    let who = |t: String| {
        let http = http.clone();
        let url = format!("{}/whoami", server.url());
        async move { http.get(url).bearer_auth(t).send().await.unwrap() }
    };
    let r = who(token.clone()).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-session-token").is_none());
    assert_eq!(r.text().await.unwrap(), "svc read");

    clock.advance(16 * MIN);
    let r = who(token.clone()).await;
    assert_eq!(r.status(), 200);
    let renewed = r.headers()["x-session-token"].to_str().unwrap().to_owned();
    assert_ne!(renewed, token);
    assert_eq!(r.text().await.unwrap(), "svc renewed");
    assert_eq!(who(renewed).await.status(), 200);

    assert_eq!(who("nonsense".into()).await.status(), 401);
    let r = http
        .get(format!("{}/whoami", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.text().await.unwrap(), "no valid session: log in first");
}

#[tokio::test]
async fn a_layer_missing_from_the_route_is_a_clear_500() {
    let server =
        Server::start(Router::new().route("/", get(|_: Session<Api>| async { "never" }))).await;
    let r = reqwest::get(server.url()).await.unwrap();
    assert_eq!(r.status(), 500);
    assert!(r.text().await.unwrap().contains("without SessionLayer"));
}

#[test]
fn generated_test_keys_are_a256gcm() {
    assert_eq!(seeded_key("x", 1).enc(), Enc::A256Gcm);
}
