//! The demo in a real browser: headless Debian Chromium through chromedriver.
//!
//! Each test starts a demo server on a free loopback port with injected keys and clock,
//! and a browser with a fresh profile. They run one at a time (two cores) and skip loudly
//! without `chromedriver`, unless `JWE_SESSION_REQUIRE_BROWSER=1`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use fantoccini::Locator;
use jwe_session_core::{KeyRing, KeyRingHandle, ManualClock, UnixTime};
use jwe_session_demo::demo::{app, DemoOptions};
use jwe_session_test_support::{kid_of, seeded_ring};
use jwe_session_tests::{Browser, Client, Server, TestCert};
use serde_json::{json, Value};
use tokio::sync::Mutex;

/// One browser at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

struct Demo {
    server: Server,
    clock: ManualClock,
    ring: KeyRingHandle,
}

impl Demo {
    async fn start() -> Self {
        let clock = ManualClock::new(UnixTime::now());
        let ring = KeyRingHandle::new(seeded_ring(&[("k1", 1)]));
        let server = Self::serve("127.0.0.1:0", &ring, &clock).await;
        Self {
            server,
            clock,
            ring,
        }
    }

    async fn serve(bind: &str, ring: &KeyRingHandle, clock: &ManualClock) -> Server {
        let mut opts = DemoOptions::new(ring.clone());
        opts.clock = Arc::new(clock.clone());
        Server::start_on(bind, app(opts).unwrap()).await
    }

    /// The app's origin as the browser sees it.
    fn url(&self) -> String {
        format!("http://localhost:{}", self.server.addr.port())
    }

    /// Stops the server and starts a new process-equivalent on the same port with `ring`.
    async fn restart_with(self, ring: KeyRing) -> Self {
        let port = self.server.addr.port();
        self.server.stop().await;
        let handle = KeyRingHandle::new(ring);
        let server = Self::serve(&format!("127.0.0.1:{port}"), &handle, &self.clock).await;
        Self {
            server,
            clock: self.clock,
            ring: handle,
        }
    }
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn login(b: &Browser, base: &str, user: &str, notes: Option<&str>) {
    submit_login(b, base, user, notes).await;
    b.client
        .wait()
        .for_element(Locator::Id("user"))
        .await
        .unwrap();
}

/// Fills in and submits the login form (without waiting for the page it leads to).
async fn submit_login(b: &Browser, base: &str, user: &str, notes: Option<&str>) {
    let c = &b.client;
    c.goto(&format!("{base}/")).await.unwrap();
    c.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys(user)
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys("demo")
        .await
        .unwrap();
    if let Some(n) = notes {
        // Typing 10 KB key by key is slow; set the field's value as a paste would.
        c.execute(
            "document.getElementById('notes').value = arguments[0];",
            vec![json!(n)],
        )
        .await
        .unwrap();
    }
    c.find(Locator::Id("submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// One browser at a time, a fresh demo, and `user` logged in through the form.
async fn logged_in(
    user: &str,
    notes: Option<&str>,
) -> Option<(tokio::sync::MutexGuard<'static, ()>, Browser, Demo)> {
    let one = ONE_AT_A_TIME.lock().await;
    let b = Browser::start().await?;
    let demo = Demo::start().await;
    login(&b, &demo.url(), user, notes).await;
    Some((one, b, demo))
}

/// Presses the page's logout button and waits for the login form.
async fn logout(b: &Browser) {
    b.client
        .find(Locator::Id("logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .wait()
        .for_element(Locator::Id("login"))
        .await
        .unwrap();
}

async fn page_text(b: &Browser, id: &str) -> String {
    b.client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The session cookies the browser holds, by name (WebDriver sees HttpOnly cookies).
async fn session_cookies(b: &Browser) -> Vec<(String, String, Option<bool>)> {
    let mut v: Vec<_> = b
        .client
        .get_all_cookies()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.name().starts_with("__Host-session"))
        .map(|c| (c.name().to_owned(), c.value().to_owned(), c.http_only()))
        .collect();
    v.sort();
    v
}

/// `GET /me` from the page itself: the browser attaches its cookies.
async fn fetch_me(b: &Browser) -> (u64, Value) {
    let script = "const done = arguments[arguments.length - 1];
        fetch('/me', {credentials: 'same-origin'})
          .then(async r => done([r.status, r.status === 200 ? await r.json() : null]))
          .catch(e => done([0, String(e)]));";
    let out = b.client.execute_async(script, vec![]).await.unwrap();
    (out[0].as_u64().unwrap(), out[1].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_login_shows_claims_and_the_cookie_is_http_only() {
    let Some((_one, b, _demo)) = logged_in("alice", None).await else {
        return;
    };

    assert_eq!(page_text(&b, "user").await, "alice");
    let claims: Value = serde_json::from_str(&page_text(&b, "claims").await).unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["roles"], json!(["user"]));

    // The browser stored the Secure, HttpOnly cookie from localhost ...
    let cookies = session_cookies(&b).await;
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert_eq!(cookies[0].2, Some(true), "HttpOnly");
    // ... scripts cannot see it ...
    let visible = b
        .client
        .execute("return document.cookie;", vec![])
        .await
        .unwrap();
    assert!(
        !visible.as_str().unwrap().contains("__Host-session"),
        "document.cookie = {visible}"
    );
    // ... and it still sends it.
    let (status, me) = fetch_me(&b).await;
    assert_eq!(status, 200);
    assert_eq!(me["sid"], claims["sid"]);

    std::fs::write(
        screenshots().join("logged-in.png"),
        b.client.screenshot().await.unwrap(),
    )
    .unwrap();
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_logout_button_ends_the_session_and_the_old_cookie_is_refused() {
    let Some((_one, b, demo)) = logged_in("alice", None).await else {
        return;
    };
    let old = session_cookies(&b).await[0].1.clone();

    logout(&b).await;
    assert!(
        session_cookies(&b).await.is_empty(),
        "the browser dropped the cookie"
    );
    assert_eq!(fetch_me(&b).await.0, 401);
    std::fs::write(
        screenshots().join("logged-out.png"),
        b.client.screenshot().await.unwrap(),
    )
    .unwrap();

    // The cookie as it was before logout, replayed from outside the browser: refused.
    let mut replay = Client::new(format!("http://127.0.0.1:{}", demo.server.addr.port()));
    replay.jar.insert("__Host-session".into(), old);
    assert_eq!(replay.get("/me").await.status, 401);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_key_rotation_keeps_the_user_and_reseals_under_the_new_kid() {
    let Some((_one, b, demo)) = logged_in("alice", None).await else {
        return;
    };
    let before = session_cookies(&b).await[0].1.clone();
    assert_eq!(kid_of(&before), "k1");
    let sid = fetch_me(&b).await.1["sid"].clone();

    // Restart with k2 active and k1 kept for opening.
    let demo = demo
        .restart_with(seeded_ring(&[("k2", 2), ("k1", 1)]))
        .await;
    b.client.refresh().await.unwrap();
    assert_eq!(page_text(&b, "user").await, "alice", "still logged in");
    let after = session_cookies(&b).await[0].1.clone();
    assert_eq!(kid_of(&after), "k2", "the browser now holds a k2 cookie");
    assert_eq!(fetch_me(&b).await.1["sid"], sid);
    assert!(demo.ring.load().is_active("k2"));
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_renews_the_cookie_after_the_access_lifetime() {
    let Some((_one, b, demo)) = logged_in("alice", None).await else {
        return;
    };
    let first = session_cookies(&b).await[0].1.clone();
    let me = fetch_me(&b).await.1;

    // Nothing changes before exp: the same cookie.
    b.client.refresh().await.unwrap();
    assert_eq!(session_cookies(&b).await[0].1, first);

    demo.clock.advance(Duration::from_secs(16 * 60));
    b.client.refresh().await.unwrap();
    assert_eq!(page_text(&b, "user").await, "alice");
    let renewed = session_cookies(&b).await;
    assert_eq!(renewed.len(), 1);
    assert_ne!(
        renewed[0].1, first,
        "the renewed cookie replaced the old one"
    );
    let now = fetch_me(&b).await.1;
    assert_eq!(now["sid"], me["sid"]);
    assert_ne!(now["jti"], me["jti"]);
    assert!(now["exp"].as_u64() > me["exp"].as_u64());
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_stores_and_returns_every_chunk_of_a_large_session() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(b) = Browser::start().await else {
        return;
    };
    let demo = Demo::start().await;
    let notes: String = (0..10_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    login(&b, &demo.url(), "bigsession", Some(&notes)).await;
    let names: Vec<String> = session_cookies(&b).await.into_iter().map(|c| c.0).collect();
    assert_eq!(
        names,
        [
            "__Host-session",
            "__Host-session.1",
            "__Host-session.2",
            "__Host-session.3"
        ]
    );
    let (status, me) = fetch_me(&b).await;
    assert_eq!(status, 200);
    assert_eq!(me["notes"], notes, "every chunk came back whole");
    let claims: Value = serde_json::from_str(&page_text(&b, "claims").await).unwrap();
    assert_eq!(claims["notes"], notes);

    // Logging in again with a small session leaves one cookie.
    logout(&b).await;
    login(&b, &demo.url(), "bigsession", None).await;
    let names: Vec<String> = session_cookies(&b).await.into_iter().map(|c| c.0).collect();
    assert_eq!(names, ["__Host-session"]);
    b.close().await;
}

/// Serves, on another site (127.0.0.2 vs localhost), a page whose form posts `fields` to
/// `target` on load, opens it in the browser, and waits until the post has landed.
async fn cross_site_post(b: &Browser, target: String, fields: &'static [(&str, &str)]) -> Server {
    let inputs: String = fields
        .iter()
        .map(|(k, v)| format!(r#"<input type="hidden" name="{k}" value="{v}">"#))
        .collect();
    let evil = Router::new().route(
        "/",
        get(move || {
            let (target, inputs) = (target.clone(), inputs.clone());
            async move {
                Html(format!(
                    r#"<!doctype html><form id="f" method="post" action="{target}">{inputs}</form>
                    <script>document.getElementById('f').submit();</script>"#
                ))
            }
        }),
    );
    let evil = Server::start_on("127.0.0.2:0", evil).await;
    let evil_url = format!("http://127.0.0.2:{}/", evil.addr.port());
    b.client.goto(&evil_url).await.unwrap();
    // Bounded wait for the navigation to the target (a polled condition, not a timer).
    for _ in 0..100 {
        if !b
            .client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .starts_with(&evil_url)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    evil
}

/// The status of the page the browser shows, as the Performance API saw it.
async fn page_status(b: &Browser) -> u64 {
    let out = b
        .client
        .execute(
            "const e = performance.getEntriesByType('navigation')[0]; return e ? e.responseStatus : 0;",
            vec![],
        )
        .await
        .unwrap();
    out.as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_cross_site_form_cannot_log_the_user_out() {
    let Some((_one, b, demo)) = logged_in("alice", None).await else {
        return;
    };
    let before = session_cookies(&b).await;

    // Another site's form posts to /logout on load: refused before the handler.
    let _evil = cross_site_post(&b, format!("{}/logout", demo.url()), &[]).await;
    assert_eq!(
        b.client.current_url().await.unwrap().as_str(),
        format!("{}/logout", demo.url())
    );
    assert_eq!(page_status(&b).await, 403);

    // Still logged in, same cookie. (Read back on the app's own page: a document reached
    // by a cross-site post does not see SameSite=Lax cookies.)
    b.client.goto(&format!("{}/", demo.url())).await.unwrap();
    assert_eq!(session_cookies(&b).await, before);
    assert_eq!(page_text(&b, "user").await, "alice");
    assert_eq!(fetch_me(&b).await.0, 200);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_cross_site_form_cannot_sign_the_victim_in_as_the_attacker() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(b) = Browser::start().await else {
        return;
    };
    let demo = Demo::start().await;
    // Login CSRF: the attacker's credentials, posted from the attacker's page.
    let fields: &'static [(&str, &str)] = &[("username", "mallory"), ("password", "demo")];
    let _evil = cross_site_post(&b, format!("{}/login", demo.url()), fields).await;
    assert_eq!(
        b.client.current_url().await.unwrap().as_str(),
        format!("{}/login", demo.url())
    );
    assert_eq!(page_status(&b).await, 403);
    b.client.goto(&format!("{}/", demo.url())).await.unwrap();
    b.client
        .wait()
        .for_element(Locator::Id("login"))
        .await
        .unwrap();
    assert!(
        session_cookies(&b).await.is_empty(),
        "no session was planted"
    );

    // Signed in as herself, the same attack neither replaces nor ends her session.
    login(&b, &demo.url(), "alice", None).await;
    let before = session_cookies(&b).await;
    let _evil = cross_site_post(&b, format!("{}/login", demo.url()), fields).await;
    assert_eq!(page_status(&b).await, 403);
    b.client.goto(&format!("{}/", demo.url())).await.unwrap();
    assert_eq!(session_cookies(&b).await, before);
    assert_eq!(page_text(&b, "user").await, "alice");

    // The demo's own form keeps working.
    logout(&b).await;
    login(&b, &demo.url(), "bob", None).await;
    assert_eq!(page_text(&b, "user").await, "bob");
    b.close().await;
}

/// The Chromium flags that turn DBSC on without an origin trial, with software keys.
fn dbsc_flags(cert: &TestCert) -> Vec<String> {
    vec![
        format!("--ignore-certificate-errors-spki-list={}", cert.spki_sha256),
        "--enable-features=DeviceBoundSessions:RequireOriginTrialTokens/false/RefreshQuota/false,EnableBoundSessionCredentialsSoftwareKeysForManualTesting".to_owned(),
    ]
}

/// What the server saw, in order: a transcript of the browser's part of the protocol.
#[derive(Clone, Default)]
struct Transcript(
    Arc<std::sync::Mutex<Vec<String>>>,
    Arc<std::sync::OnceLock<std::time::Instant>>,
);

impl Transcript {
    fn record(&self, line: String) {
        let start = *self.1.get_or_init(std::time::Instant::now);
        let line = format!("{:>8.3} s  {line}", start.elapsed().as_secs_f64());
        self.0.lock().unwrap().push(line);
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// How many lines hold every one of `parts`.
    fn count(&self, parts: &[&str]) -> usize {
        self.lines()
            .iter()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .count()
    }
}

/// The browser's cookies as `Network.getAllCookies` lists them: name, value.
async fn all_cookies(b: &Browser) -> BTreeMap<String, String> {
    let out = b.cdp("Network.getAllCookies", json!({})).await;
    jwe_session_tests::cookie_pairs(&out["cookies"]).collect()
}

/// ` [session …abcdef]`: the end of the session cookie a request carries or a response
/// sets (` [session cleared]` for an empty one), for the transcript.
fn cookie_tag(headers: &axum::http::HeaderMap, name: &str, prefix: &str) -> String {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split("; "))
        .find_map(|c| c.strip_prefix(prefix))
        .map_or(String::new(), |v| {
            let v = v.split(';').next().unwrap_or(v);
            if v.is_empty() {
                " [session cleared]".to_owned()
            } else {
                format!(" [session …{}]", &v[v.len().saturating_sub(6)..])
            }
        })
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// DBSC in Debian's Chromium over real HTTPS (a certificate made for this run): the demo's
/// login form registers a device-bound session; every cookie the browser holds, copied as
/// cookie-stealing malware would (`Network.getAllCookies`), is worth nothing once the bound
/// lifetime has passed, while the browser itself goes on (it refreshed with its key); the
/// copy driving the refresh endpoint with a key of its own gets nothing; after logout the
/// session does not come back through a refresh. The bound lifetime passes in real time
/// here: the browser's cookie jar keeps real time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_dbsc_a_copied_cookie_is_worthless_and_the_browser_refreshes_with_its_key() {
    const BOUND: u64 = 4;
    let _one = ONE_AT_A_TIME.lock().await;
    let cert = TestCert::localhost();
    let Some(b) = Browser::start_with(&dbsc_flags(&cert)).await else {
        return;
    };
    let ring = KeyRingHandle::new(seeded_ring(&[("k1", 1)]));
    let mut opts = DemoOptions::new(ring);
    opts.https = true;
    opts.dbsc = Some(Duration::from_secs(BOUND));
    let transcript = Transcript::default();
    let seen = transcript.clone();
    let router = app(opts).unwrap().layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let seen = seen.clone();
            async move {
                let line = format!(
                    "{} {}{}{}{}",
                    req.method(),
                    req.uri().path(),
                    cookie_tag(req.headers(), "cookie", "__Host-session="),
                    if req.headers().contains_key("secure-session-response") {
                        " [proof]"
                    } else {
                        ""
                    },
                    if req.headers().contains_key("sec-secure-session-id") {
                        " [Sec-Secure-Session-Id]"
                    } else {
                        ""
                    },
                );
                let res = next.run(req).await;
                let registration = res.headers().contains_key("secure-session-registration");
                let challenge = res.headers().contains_key("secure-session-challenge");
                seen.record(format!(
                    "{line} -> {}{}{}{}{}",
                    res.status().as_u16(),
                    cookie_tag(res.headers(), "set-cookie", "__Host-session="),
                    cookie_tag(res.headers(), "set-cookie", "__Secure-session-dbsc=")
                        .replace("session", "binding"),
                    if registration {
                        " [Secure-Session-Registration]"
                    } else {
                        ""
                    },
                    if challenge {
                        " [Secure-Session-Challenge]"
                    } else {
                        ""
                    },
                ));
                res
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config =
        jwe_session_demo::tls::server_config(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes())
            .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(jwe_session_demo::tls::serve(
        listener,
        router,
        config,
        async {
            let _ = stopped.await;
        },
    ));
    let base = format!("https://localhost:{port}");

    submit_login(&b, &base, "alice", None).await;
    let c = &b.client;
    let shown = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("user"))
        .await;
    if shown.is_err() {
        let html = c.source().await.unwrap_or_default();
        panic!("login: {:#?}\n{html}", transcript.lines());
    }
    // Registration: the browser posts a proof by its new key; the binding cookie arrives.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !all_cookies(&b).await.contains_key("__Secure-session-dbsc") {
        if std::time::Instant::now() > deadline {
            let msg = format!(
                "this Chromium did not register a DBSC session (no DeviceBoundSessions?): {:#?}",
                transcript.lines()
            );
            if std::env::var("JWE_SESSION_REQUIRE_DBSC").is_ok_and(|v| v == "1") {
                panic!("{msg}");
            }
            eprintln!("SKIPPING the DBSC browser test: {msg}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        transcript.count(&["POST /session/dbsc/register", "[proof] -> 200"]),
        1,
        "{:#?}",
        transcript.lines()
    );
    let (status, me) = fetch_me(&b).await;
    assert_eq!(status, 200);
    assert_eq!(me["sub"], "alice");
    let id = me["cnf"]["dbsc"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        me["sid"],
        id.as_str(),
        "the bound session's sid is its DBSC id"
    );

    // Malware copies every cookie the browser holds.
    let stolen = all_cookies(&b).await;
    assert!(stolen.contains_key("__Host-session"), "{stolen:?}");
    let mut thief = Client::https(base.clone(), &cert.ca_pem);
    thief.jar = stolen.clone();
    let copy = thief.get("/me").await;
    assert_eq!(copy.status, 200, "within the bound lifetime the copy works");

    // The bound lifetime passes (real time: the browser keeps it).
    let exp = me["exp"].as_u64().unwrap();
    while unix_now() <= exp + 1 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut thief = Client::https(base.clone(), &cert.ca_pem);
    thief.jar = stolen.clone();
    let copy = thief.get("/me").await;
    assert_eq!(
        copy.status, 401,
        "the copy is refused past the bound lifetime"
    );
    assert!(
        copy.set_cookie("__Host-session")
            .is_none_or(|c| c.value().is_empty()),
        "and not renewed"
    );
    // The thief drives the refresh endpoint with the binding cookie and its own key.
    let thief_key = jwe_session::ProofKey::generate().unwrap();
    let mut t = Client::https(base.clone(), &cert.ca_pem);
    t.jar = stolen.clone();
    let req = t
        .request(reqwest::Method::POST, "/session/dbsc/refresh")
        .header("sec-secure-session-id", &id);
    let asked = t.send(req).await;
    assert_eq!(asked.status, 403);
    let challenge = asked.headers["secure-session-challenge"]
        .to_str()
        .unwrap()
        .to_owned();
    let challenge = challenge
        .split_once(";id=")
        .unwrap()
        .0
        .trim_matches('"')
        .to_owned();
    let proof = thief_key
        .sign_without_jwk("dbsc+jwt", json!({"jti": challenge}).as_object().unwrap())
        .unwrap();
    let req = t
        .request(reqwest::Method::POST, "/session/dbsc/refresh")
        .header("sec-secure-session-id", &id)
        .header("secure-session-response", proof);
    let tried = t.send(req).await;
    assert_eq!(tried.status, 403, "another key gets nothing");
    assert!(tried.set_cookie("__Host-session").is_none());

    // The browser's own next request has its session: it refreshed with its key.
    let started = std::time::Instant::now();
    let (status, me2) = fetch_me(&b).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{:#?}", transcript.lines());
    assert_eq!(me2["sid"], id.as_str());
    assert!(me2["exp"].as_u64().unwrap() > exp, "a new bound cookie");
    assert!(
        transcript.count(&["POST /session/dbsc/refresh", "[proof]", "-> 200"]) >= 1,
        "{:#?}",
        transcript.lines()
    );
    transcript.record(format!(
        "(a GET /me from the page, held for the refresh, took {took:?})"
    ));

    // Logout: the session does not come back through a refresh. (A refresh the browser
    // had under way as the logout landed may still answer with a cookie: its sid is
    // revoked, so that cookie is refused on its first request.) The browser's next
    // refreshes are told `"continue": false`, and it drops the session and its binding.
    b.client.goto(&format!("{base}/")).await.unwrap();
    logout(&b).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _) = fetch_me(&b).await;
        assert_eq!(status, 401, "{:#?}", transcript.lines());
        if !all_cookies(&b).await.contains_key("__Secure-session-dbsc") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the browser kept its binding after logout: {:#?}",
            transcript.lines()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    b.client.goto(&format!("{base}/")).await.unwrap();
    b.client
        .wait()
        .for_element(Locator::Id("login"))
        .await
        .unwrap();
    let (status, _) = fetch_me(&b).await;
    assert_eq!(status, 401);
    let text = transcript.lines().join("\n");
    println!("DBSC transcript (what the server saw from Chromium):\n{text}");
    std::fs::write(screenshots().join("dbsc-transcript.txt"), &text).unwrap();
    let _ = stop.send(());
    let _ = server.await;
    b.close().await;
}

/// "Your devices" in two browsers (issue 29): alice logs in on both; the first browser's
/// home page lists both devices, and its "Sign out" button ends the other one, whose next
/// page is the login form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_devices_one_browser_signs_the_other_out() {
    let Some((_one, laptop, demo)) = logged_in("alice", None).await else {
        return;
    };
    let Some(phone) = Browser::start().await else {
        return;
    };
    login(&phone, &demo.url(), "alice", None).await;
    laptop
        .client
        .goto(&format!("{}/", demo.url()))
        .await
        .unwrap();
    let devices = laptop
        .client
        .find_all(Locator::Css("li.device"))
        .await
        .unwrap();
    assert_eq!(devices.len(), 2);
    let listed = page_text(&laptop, "devices").await;
    assert!(listed.contains("this device"), "{listed}");
    assert!(listed.contains("Chrome on Linux"), "{listed}");
    std::fs::write(
        screenshots().join("devices.png"),
        laptop.client.screenshot().await.unwrap(),
    )
    .unwrap();
    assert_eq!(fetch_me(&phone).await.0, 200);

    laptop
        .client
        .find(Locator::Css("button.end-device"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    laptop
        .client
        .wait()
        .for_element(Locator::Id("user"))
        .await
        .unwrap();
    let devices = laptop
        .client
        .find_all(Locator::Css("li.device"))
        .await
        .unwrap();
    assert_eq!(devices.len(), 1, "the other device is gone from the list");
    assert_eq!(fetch_me(&laptop).await.0, 200);

    phone
        .client
        .goto(&format!("{}/", demo.url()))
        .await
        .unwrap();
    phone
        .client
        .wait()
        .for_element(Locator::Id("login"))
        .await
        .unwrap();
    assert_eq!(fetch_me(&phone).await.0, 401);
    phone.close().await;
    laptop.close().await;
}
