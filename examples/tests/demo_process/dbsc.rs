//! Device-bound sessions (DBSC) against the demo over real HTTPS (a certificate made per
//! run, `DEMO_TLS_CERT` + `DEMO_TLS_KEY`, `DEMO_DBSC=1`), a software P-256 key acting as
//! the browser: registration after the login form, the challenge-then-proof refresh, and
//! logout that a refresh does not undo. The bound cookie's expiry in real time is the
//! Chromium test's (`tests/tests/e2e/browser.rs`); the layer's tests judge it on a clock.

use std::time::{Duration, Instant};

use jwe_session::ProofKey;
use jwe_session_test_support::scratch;
use jwe_session_tests::{free_port, Client, TestCert};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{run_to_exit, Demo};

/// Starts the demo over HTTPS with device binding, and a client that trusts its CA.
async fn start(name: &str, bound: &str) -> (Demo, Client) {
    let dir = scratch(name);
    let cert = TestCert::localhost();
    let (crt, key, _) = cert.write(&dir);
    let revocations = dir.join("revocations");
    let port = free_port();
    let env = [
        ("JWE_SESSION_REVOCATIONS", revocations.to_str().unwrap()),
        ("DEMO_TLS_CERT", crt.as_str()),
        ("DEMO_TLS_KEY", key.as_str()),
        ("DEMO_DBSC", "1"),
        ("DEMO_DBSC_BOUND_SECONDS", bound),
    ];
    let demo = Demo::spawn_only(port, &env, dir.join("demo.log"));
    let mut client = Client::https(format!("https://localhost:{port}"), &cert.ca_pem);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = client
            .request(Method::GET, "/me")
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if res.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not answer HTTPS: {}",
            demo.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.jar.clear();
    (demo, client)
}

fn header<'a>(r: &'a jwe_session_tests::Reply, name: &str) -> &'a str {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name}: {r:?}"))
        .to_str()
        .unwrap()
}

fn param(v: &str, name: &str) -> String {
    let start = v.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    v[start..start + v[start..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn the_demo_over_https_binds_a_browser_session_to_its_key() {
    let (demo, mut c) = start("dbsc-demo", "120").await;
    assert!(demo.log_text().contains("https://"), "{}", demo.log_text());
    let login = c.login("alice").await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    let registration = header(&login, "secure-session-registration");
    assert_eq!(param(registration, "path"), "/session/dbsc/register");
    let key = ProofKey::generate().unwrap();
    let proof = key
        .sign(
            "dbsc+jwt",
            json!({"jti": param(registration, "challenge")})
                .as_object()
                .unwrap(),
        )
        .unwrap();
    let unbound = c.jar.clone();
    let req = c
        .request(Method::POST, "/session/dbsc/register")
        .header("secure-session-response", proof);
    let reg = c.send(req).await;
    assert_eq!(reg.status, StatusCode::OK, "{reg:?}");
    let instructions = reg.json();
    let id = instructions["session_identifier"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(instructions["refresh_url"], "/session/dbsc/refresh");
    assert_eq!(instructions["credentials"][0]["name"], "__Host-session");
    let session = reg.set_cookie("__Host-session").unwrap();
    assert_eq!(session.max_age().map(|d| d.whole_seconds()), Some(120));
    assert!(reg.set_cookie("__Secure-session-dbsc").is_some());
    // `GET /me`: the claims, with the bound session's sid and its short `exp`.
    let me = c.get("/me").await.json();
    assert_eq!(me["sid"], id.as_str());
    assert_eq!(
        me["exp"].as_u64().unwrap() - me["iat"].as_u64().unwrap(),
        120
    );
    assert_eq!(me["cnf"]["jkt"], key.thumbprint());
    // The unbound cookie of the login is revoked: a copy of it is worth nothing.
    let mut copy = c.clone();
    copy.jar = unbound;
    assert_eq!(copy.get("/me").await.status, StatusCode::UNAUTHORIZED);
    // A refresh: challenged, then proved with the key.
    let req = c
        .request(Method::POST, "/session/dbsc/refresh")
        .header("sec-secure-session-id", &id);
    let first = c.send(req).await;
    assert_eq!(first.status, StatusCode::FORBIDDEN);
    let challenge = header(&first, "secure-session-challenge").to_owned();
    let (challenge, named) = challenge.split_once(";id=").unwrap();
    assert_eq!(named.trim_matches('"'), id);
    let proof = key
        .sign_without_jwk(
            "dbsc+jwt",
            json!({"jti": challenge.trim_matches('"')})
                .as_object()
                .unwrap(),
        )
        .unwrap();
    let started = Instant::now();
    let req = c
        .request(Method::POST, "/session/dbsc/refresh")
        .header("sec-secure-session-id", &id)
        .header("secure-session-response", &proof);
    let refreshed = c.send(req).await;
    println!(
        "DBSC refresh (the proved request) over HTTPS: {:?}",
        started.elapsed()
    );
    assert_eq!(refreshed.status, StatusCode::OK, "{refreshed:?}");
    assert_eq!(refreshed.json()["session_identifier"], id.as_str());
    assert_eq!(c.get("/me").await.status, StatusCode::OK);
    // Logout: the session does not come back through a refresh.
    assert_eq!(
        c.post_form("/logout", &[]).await.status,
        StatusCode::SEE_OTHER
    );
    let req = c
        .request(Method::POST, "/session/dbsc/refresh")
        .header("sec-secure-session-id", &id)
        .header("secure-session-response", &proof);
    let ended = c.send(req).await;
    let body: Value = ended.json();
    assert_eq!(body, json!({"session_identifier": id, "continue": false}));
    assert_eq!(c.get("/me").await.status, StatusCode::UNAUTHORIZED);
}

#[test]
fn bad_tls_and_dbsc_settings_stop_the_demo_with_a_clear_error() {
    let dir = scratch("dbsc-demo-errors");
    let log = dir.join("demo.log");
    let revocations = dir.join("revocations");
    let revocations = revocations.to_str().unwrap();
    let cert = TestCert::localhost();
    let (crt, key, _) = cert.write(&dir);
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[("DEMO_TLS_CERT", crt.as_str())],
            "DEMO_TLS_CERT and DEMO_TLS_KEY go together",
        ),
        (
            &[
                ("DEMO_TLS_CERT", key.as_str()),
                ("DEMO_TLS_KEY", key.as_str()),
            ],
            "no PEM certificate chain",
        ),
        (
            &[
                ("DEMO_TLS_CERT", crt.as_str()),
                ("DEMO_TLS_KEY", "/nonexistent/key.pem"),
            ],
            "cannot read /nonexistent/key.pem",
        ),
        (
            &[("DEMO_DBSC", "1"), ("DEMO_DBSC_BOUND_SECONDS", "soon")],
            "DEMO_DBSC_BOUND_SECONDS",
        ),
    ];
    for (env, expected) in cases {
        let mut env = env.to_vec();
        env.push(("JWE_SESSION_REVOCATIONS", revocations));
        let (status, out) = run_to_exit(&env, &log);
        assert!(!status.success(), "{env:?}: {out}");
        assert!(
            out.contains(expected),
            "{env:?}: expected {expected:?} in {out}"
        );
    }
    // A bound lifetime longer than the access lifetime is a configuration error.
    let (status, out) = run_to_exit(
        &[
            ("DEMO_DBSC", "1"),
            ("DEMO_DBSC_BOUND_SECONDS", "3600"),
            ("JWE_SESSION_REVOCATIONS", revocations),
        ],
        &log,
    );
    assert!(!status.success());
    assert!(out.contains("bound lifetime"), "{out}");
}
