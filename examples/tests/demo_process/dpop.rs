//! DPoP against the demo over real HTTP: `POST /api/login` with and without a proof, the
//! bound token on the routes, and every kind of wrong proof refused.

use jwe_session::ProofKey;
use jwe_session_test_support::dpop::{claims, forgeries};
use jwe_session_test_support::scratch;
use jwe_session_tests::free_port;
use reqwest::StatusCode;
use serde_json::Value;

use super::Demo;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn start(name: &str) -> Demo {
    let dir = scratch(name);
    let revocations = dir.join("revocations");
    Demo::start(
        free_port(),
        &[("JWE_SESSION_REVOCATIONS", revocations.to_str().unwrap())],
        dir.join("demo.log"),
    )
}

async fn api_login(
    http: &reqwest::Client,
    demo: &Demo,
    password: &str,
    proof: Option<String>,
) -> (StatusCode, Value) {
    let mut req = http
        .post(format!("{}/api/login", demo.url()))
        .form(&[("username", "alice"), ("password", password)]);
    if let Some(p) = proof {
        req = req.header("dpop", p);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn api_logins_bind_to_the_proofs_key_and_bad_proofs_are_refused() {
    let demo = start("dpop-api-login");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = demo.url();
    let key = ProofKey::generate().unwrap();

    // Without a proof: a bearer token.
    let (status, body) = api_login(&http, &demo, "demo", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    let bearer = body["access_token"].as_str().unwrap().to_owned();
    let me = http
        .get(format!("{base}/me"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = serde_json::from_str(&me.text().await.unwrap()).unwrap();
    assert_eq!(me["sub"], "alice");
    assert!(me.get("cnf").is_none());

    // Wrong password: 401; a proof that does not verify: 400 and no token.
    let (status, _) = api_login(&http, &demo, "nope", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let wrong_url = key
        .sign(
            "dpop+jwt",
            &claims("POST", &format!("{base}/login"), now(), None),
        )
        .unwrap();
    for bad in [wrong_url, "garbage".to_owned()] {
        let (status, body) = api_login(&http, &demo, "demo", Some(bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_dpop_proof");
        assert!(body.get("access_token").is_none());
    }

    // With a proof for POST and this URL: bound.
    let proof = key
        .sign(
            "dpop+jwt",
            &claims("POST", &format!("{base}/api/login"), now(), None),
        )
        .unwrap();
    let (status, body) = api_login(&http, &demo, "demo", Some(proof)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let me_with = |proofs: Vec<String>, scheme: &str| {
        let mut req = http
            .get(format!("{base}/me"))
            .header("authorization", format!("{scheme} {token}"));
        for p in proofs {
            req = req.header("dpop", p);
        }
        req.send()
    };
    let right = |method: &str, path: &str| {
        key.sign(
            "dpop+jwt",
            &claims(method, &format!("{base}{path}"), now(), Some(&token)),
        )
        .unwrap()
    };
    let res = me_with(vec![right("GET", "/me")], "DPoP").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let me: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    assert_eq!(me["cnf"]["jkt"], key.thumbprint());

    // Every kind of wrong proof: 401, the DPoP challenge, `invalid_dpop_proof`.
    for (what, proofs) in forgeries(&key, "GET", &format!("{base}/me"), now(), &token) {
        let res = me_with(proofs, "DPoP").await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
        let challenge = res.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with(r#"DPoP algs="ES256""#),
            "{what}: {challenge}"
        );
        assert!(
            challenge.contains(r#"error="invalid_dpop_proof""#),
            "{what}: {challenge}"
        );
    }
    // A proof replayed.
    let once = right("GET", "/me");
    assert_eq!(
        me_with(vec![once.clone()], "DPoP").await.unwrap().status(),
        StatusCode::OK
    );
    let replayed = me_with(vec![once], "DPoP").await.unwrap();
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    // The bound token as a bearer token, with or without a proof: no downgrade.
    for proofs in [vec![], vec![right("GET", "/me")]] {
        let res = me_with(proofs, "Bearer").await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let challenge = res.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
    }

    // Logout with the proof: the token is revoked, proof or not.
    let res = http
        .post(format!("{base}/logout"))
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", right("POST", "/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = me_with(vec![right("GET", "/me")], "DPoP").await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
}

/// The walk-through script of docs/dpop.md, run as it is against the demo.
#[tokio::test]
async fn the_docs_walk_through_runs_against_the_demo() {
    if jwe_session_tests::PythonProofs::find().is_none() {
        return;
    }
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/dpop.md")).unwrap();
    let script = doc
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/dpop.md has a python block");
    let demo = start("dpop-walk-through");
    let dir = scratch("dpop-walk-through-script");
    let path = dir.join("dpop_walkthrough.py");
    std::fs::write(&path, script).unwrap();
    // The demo is another process: waiting on the script here blocks nothing it needs.
    let out = std::process::Command::new("python3")
        .arg(&path)
        .env("BASE", demo.url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"token_type: DPoP"), "{stdout}");
    assert!(lines[1].starts_with("cnf: {'jkt': '"), "{stdout}");
    assert!(
        lines[2].starts_with(r#"stolen copy: 401 DPoP algs="ES256", error="invalid_token""#),
        "{stdout}"
    );
}
