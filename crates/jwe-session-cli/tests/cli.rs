//! The CLI tested as snapshots of real invocations (tests/cmd/*.toml), plus behaviour that
//! a snapshot cannot show: round trips with fresh keys, rotation, and interop.
#![allow(clippy::unwrap_used, missing_docs)]

use jwe_session_test_support::{kid_of, scratch};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

#[test]
fn snapshots() {
    trycmd::TestCases::new().case("tests/cmd/*.toml");
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_jwe-session")
}

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The CLI may exit before reading stdin (a bad key file is found first): a broken
    // pipe here is expected then, not a failure.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn ok(args: &[&str], stdin: &str) -> String {
    let out = run(args, stdin);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
    String::from_utf8(out.stdout).unwrap()
}

/// Like [`ok`], but stderr may carry a warning, which is returned.
fn ok_warned(args: &[&str], stdin: &str) -> (String, String) {
    let out = run(args, stdin);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn keygen_encrypt_decrypt_for_each_key_size() {
    let dir = scratch("sizes");
    for (enc, bytes) in [("A128GCM", 16), ("A192GCM", 24), ("A256GCM", 32)] {
        let keys = dir.join(format!("{enc}.json"));
        let set = ok(&["keygen", "--enc", enc, "--set"], "");
        std::fs::write(&keys, &set).unwrap();
        let v: serde_json::Value = serde_json::from_str(&set).unwrap();
        let jwk = &v["keys"][0];
        assert_eq!(jwk["alg"], enc);
        use base64::Engine as _;
        let k = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwk["k"].as_str().unwrap())
            .unwrap();
        assert_eq!(k.len(), bytes);
        // Default kids sort by date: YYYY-MM-DD-xxxx.
        let kid = jwk["kid"].as_str().unwrap();
        assert_eq!(kid.len(), 15, "{kid}");
        let claims = r#"{"sub":"alice","roles":["a","b"],"exp":4102444800}"#;
        let token = ok(&["encrypt", "--keys", s(&keys)], claims);
        assert_eq!(token.matches('.').count(), 4);
        assert_eq!(
            ok(&["decrypt", "--keys", s(&keys), "--validate"], &token).trim(),
            claims
        );
        let info: serde_json::Value = serde_json::from_str(&ok(&["inspect"], &token)).unwrap();
        assert_eq!(info["header"]["enc"], enc);
    }
    // Two fresh keys are different.
    assert_ne!(
        ok(&["keygen", "--kid", "x"], ""),
        ok(&["keygen", "--kid", "x"], "")
    );
}

#[test]
fn rotate_keeps_old_tokens_opening_and_seals_with_the_new_key() {
    let dir = scratch("rotate");
    let keys = dir.join("keys.json");
    std::fs::write(&keys, ok(&["keygen", "--kid", "k1", "--set"], "")).unwrap();
    let old = ok(&["encrypt", "--keys", s(&keys)], r#"{"sub":"a"}"#);

    let (summary, warning) = ok_warned(&["rotate", "--keys", s(&keys), "--kid", "k2"], "");
    assert_eq!(
        summary.trim(),
        r#"{"active_kid":"k2","dropped":[],"kept":["k1"]}"#
    );
    assert!(
        warning.starts_with("warning: ") && warning.contains("--stage"),
        "plain rotate tells a fleet to stage first: {warning}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert_eq!(
        ok(&["decrypt", "--keys", s(&keys)], &old).trim(),
        r#"{"sub":"a"}"#,
        "k1 tokens still open"
    );
    let new = ok(&["encrypt", "--keys", s(&keys)], r#"{"sub":"b"}"#);
    let info: serde_json::Value = serde_json::from_str(&ok(&["inspect"], &new)).unwrap();
    assert_eq!(info["header"]["kid"], "k2");

    // Keep at most N old keys: after two more rotations with --keep 1, k1 is gone.
    ok_warned(
        &["rotate", "--keys", s(&keys), "--kid", "k3", "--keep", "1"],
        "",
    );
    let (summary, _) = ok_warned(
        &["rotate", "--keys", s(&keys), "--kid", "k4", "--keep", "1"],
        "",
    );
    assert_eq!(
        summary.trim(),
        r#"{"active_kid":"k4","dropped":["k2"],"kept":["k3"]}"#
    );
    let out = run(&["decrypt", "--keys", s(&keys)], &old);
    assert_eq!(out.status.code(), Some(4));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        r#"error: no key in the ring has kid "k1": the key ring does not have the key that sealed it"#
    );
    // Reusing a kid is refused and changes nothing.
    let before = std::fs::read(&keys).unwrap();
    assert_eq!(
        run(&["rotate", "--keys", s(&keys), "--kid", "k4"], "")
            .status
            .code(),
        Some(3)
    );
    assert_eq!(std::fs::read(&keys).unwrap(), before);
    // No temporary files are left behind.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap()
}

fn now() -> u64 {
    jwe_session_core::UnixTime::now().as_secs()
}

/// The fleet path: stage (opens, does not seal), activate, retire once nothing the old key
/// sealed can renew; each step a JSON summary, each refusal changing nothing.
#[test]
fn staged_rotation_stage_activate_retire() {
    let dir = scratch("staged");
    let keys = dir.join("keys.json");
    std::fs::write(&keys, ok(&["keygen", "--kid", "k1", "--set"], "")).unwrap();
    let k1_token = ok(&["encrypt", "--keys", s(&keys)], r#"{"sub":"a"}"#);

    let staged = json(&ok(
        &["rotate", "--keys", s(&keys), "--stage", "--kid", "k2"],
        "",
    ));
    assert_eq!(staged["staged"], "k2");
    assert_eq!(staged["active_kid"], "k1");
    assert_eq!(staged["keys"][0]["kid"], "k1");
    assert_eq!(staged["keys"][0]["state"], "active");
    assert_eq!(staged["keys"][1]["kid"], "k2");
    assert_eq!(staged["keys"][1]["state"], "opens");
    // Staged: k1 still seals; a k2 token (from an instance that activated early) opens.
    assert_eq!(kid_of(&ok(&["encrypt", "--keys", s(&keys)], "{}")), "k1");
    let k2_token = ok(
        &["encrypt", "--keys", s(&keys), "--kid", "k2"],
        r#"{"sub":"b"}"#,
    );
    assert_eq!(
        ok(&["decrypt", "--keys", s(&keys)], &k2_token).trim(),
        r#"{"sub":"b"}"#
    );

    let before = now();
    let activated = json(&ok(&["rotate", "--keys", s(&keys), "--activate", "k2"], ""));
    assert_eq!(activated["active_kid"], "k2");
    assert_eq!(activated["previous"], "k1");
    let k1 = &activated["keys"][1];
    assert_eq!(k1["kid"], "k1");
    assert_eq!(k1["state"], "retiring");
    let stopped = k1["sealed_until"].as_u64().unwrap();
    assert!((before..=now()).contains(&stopped));
    // Defaults: 15 min access + 24 h idle (under 7 d absolute).
    assert_eq!(
        k1["renewable_until"].as_u64().unwrap(),
        stopped + 900 + 86_400
    );
    assert_eq!(kid_of(&ok(&["encrypt", "--keys", s(&keys)], "{}")), "k2");
    assert_eq!(
        ok(&["decrypt", "--keys", s(&keys)], &k1_token).trim(),
        r#"{"sub":"a"}"#
    );

    // Too early to retire k1: refused, file unchanged.
    let file = std::fs::read(&keys).unwrap();
    let out = run(&["rotate", "--keys", s(&keys), "--retire", "k1"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--force") && err.contains("renewed until"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read(&keys).unwrap(), file);
    // The active key can never be retired, even with --force.
    let out = run(
        &["rotate", "--keys", s(&keys), "--retire", "k2", "--force"],
        "",
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(std::fs::read(&keys).unwrap(), file);
    // With the service's own (here: zero) lifetimes, nothing k1 sealed can renew now.
    let retired = json(&ok(
        &[
            "rotate",
            "--keys",
            s(&keys),
            "--retire",
            "k1",
            "--access",
            "0s",
            "--idle",
            "0",
            "--absolute",
            "7d",
        ],
        "",
    ));
    assert_eq!(retired["retired"], "k1");
    assert_eq!(retired["forced"], false);
    assert_eq!(retired["keys"].as_array().unwrap().len(), 1);
    assert_eq!(
        run(&["decrypt", "--keys", s(&keys)], &k1_token)
            .status
            .code(),
        Some(4)
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no temporary files"
    );
}

#[test]
fn activation_at_a_moment_and_retire_with_force() {
    let dir = scratch("scheduled");
    let keys = dir.join("keys.json");
    std::fs::write(&keys, ok(&["keygen", "--kid", "k1", "--set"], "")).unwrap();
    let staged = json(&ok(
        &[
            "rotate",
            "--keys",
            s(&keys),
            "--stage",
            "--kid",
            "k2",
            "--enc",
            "A128GCM",
        ],
        "",
    ));
    assert_eq!(staged["enc"], "A128GCM");
    let scheduled = json(&ok(
        &[
            "rotate",
            "--keys",
            s(&keys),
            "--activate",
            "k2",
            "--at",
            "2099-01-01T00:00:00Z",
        ],
        "",
    ));
    assert_eq!(scheduled["scheduled"], "k2");
    assert_eq!(scheduled["at"], 4_070_908_800u64);
    assert_eq!(scheduled["active_kid"], "k1");
    assert_eq!(scheduled["keys"][1]["state"], "scheduled");
    let text = std::fs::read_to_string(&keys).unwrap();
    assert!(text.contains(r#""seals_from":4070908800"#), "{text}");
    // Loaded as a ring, it switches at that moment.
    let ring = jwe_session_core::KeyRing::from_file(&keys).unwrap();
    assert_eq!(ring.active().kid(), "k1");
    assert_eq!(
        ring.active_at(jwe_session_core::UnixTime::from_secs(4_070_908_800))
            .kid(),
        "k2"
    );
    assert_eq!(kid_of(&ok(&["encrypt", "--keys", s(&keys)], "{}")), "k1");
    // A scheduled key has sealed nothing yet: retiring it (cancelling) needs no --force.
    let cancelled = json(&ok(&["rotate", "--keys", s(&keys), "--retire", "k2"], ""));
    assert_eq!(cancelled["retired"], "k2");

    // A moment already past activates at once; a staged key has no record of sealing, so
    // retiring it needs --force.
    ok(
        &["rotate", "--keys", s(&keys), "--stage", "--kid", "k3"],
        "",
    );
    let now_active = json(&ok(
        &[
            "rotate",
            "--keys",
            s(&keys),
            "--activate",
            "k3",
            "--at",
            "1000",
        ],
        "",
    ));
    assert_eq!(now_active["active_kid"], "k3");
    ok(
        &["rotate", "--keys", s(&keys), "--stage", "--kid", "k4"],
        "",
    );
    let out = run(&["rotate", "--keys", s(&keys), "--retire", "k4"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no record"));
    let forced = json(&ok(
        &["rotate", "--keys", s(&keys), "--retire", "k4", "--force"],
        "",
    ));
    assert_eq!(forced["forced"], true);

    // Bad input changes nothing.
    let file = std::fs::read(&keys).unwrap();
    for (args, code) in [
        (vec!["--activate", "nope"], 3),
        (vec!["--retire", "nope"], 3),
        (vec!["--activate", "k1", "--at", "soon"], 2),
        (vec!["--stage", "--kid", "k1"], 3),
        (vec!["--stage", "--activate", "k1"], 2),
        (vec!["--at", "now"], 2),
        (vec!["--force"], 2),
        (vec!["--retire", "k1", "--idle", "a day"], 2),
    ] {
        let mut all = vec!["rotate", "--keys", s(&keys)];
        all.extend(args.iter().copied());
        let out = run(&all, "");
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty());
        assert_eq!(std::fs::read(&keys).unwrap(), file, "{args:?}");
    }
}

/// A key set whose scheduled moment has passed is settled by the next write: the key
/// that took over is named active, and the one before records when it stopped.
#[test]
fn a_passed_schedule_is_recorded_by_the_next_write() {
    let dir = scratch("settle");
    let keys = dir.join("keys.json");
    std::fs::write(&keys, ok(&["keygen", "--kid", "k1", "--set"], "")).unwrap();
    ok(
        &["rotate", "--keys", s(&keys), "--stage", "--kid", "k2"],
        "",
    );
    let text = std::fs::read_to_string(&keys).unwrap();
    // As if `--activate k2 --at 1000` had been run before that moment.
    let edited = text.replacen(r#""kid":"k2","#, r#""kid":"k2","seals_from":1000,"#, 1);
    assert_ne!(edited, text);
    std::fs::write(&keys, edited).unwrap();
    let out = json(&ok(
        &["rotate", "--keys", s(&keys), "--stage", "--kid", "k3"],
        "",
    ));
    assert_eq!(out["active_kid"], "k2");
    let k1 = out["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == "k1")
        .unwrap();
    assert_eq!(k1["sealed_until"], 1000);
    assert_eq!(k1["state"], "retirable");
    let text = std::fs::read_to_string(&keys).unwrap();
    assert!(
        text.contains(r#""active_kid":"k2""#) && !text.contains("seals_from"),
        "{text}"
    );
}

#[test]
fn rotate_on_a_malformed_file_leaves_it_byte_for_byte() {
    let dir = scratch("malformed");
    for (name, content) in [
        ("truncated.json", r#"{"keys":[{"kty":"oct","#),
        (
            "short.json",
            r#"{"keys":[{"kty":"oct","kid":"a","k":"AAECAwQFBgc"}]}"#,
        ),
        ("empty.json", ""),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        let out = run(&["rotate", "--keys", s(&path)], "");
        assert_eq!(out.status.code(), Some(3), "{name}");
        assert!(out.stdout.is_empty());
        assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            content,
            "{name} changed"
        );
    }
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        3,
        "no temporary files left"
    );
}

#[test]
fn errors_never_print_key_material() {
    let keys = std::fs::read_to_string("tests/cmd/keys.json").unwrap();
    let v: serde_json::Value = serde_json::from_str(&keys).unwrap();
    let k = v["keys"][0]["k"].as_str().unwrap().to_owned();
    let dir = scratch("leak");
    // The key in the wrong place: `k` as an array, and as the whole file.
    for (name, content) in [
        (
            "a.json",
            format!(r#"{{"keys":[{{"kty":"oct","kid":"x","k":["{k}"]}}]}}"#),
        ),
        ("b.json", k.clone()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        let out = run(&["decrypt", "--keys", s(&path)], "a.b.c.d.e");
        assert_eq!(out.status.code(), Some(3));
        assert!(!String::from_utf8_lossy(&out.stderr).contains(&k), "{name}");
    }
}

/// A token from `encrypt` opens in panva/jose, when the interop bridge is installed.
#[test]
fn encrypt_output_opens_in_jose() {
    let Some(jose) = jwe_session_tests::Jose::find() else {
        return;
    };
    let keys = std::fs::read_to_string("tests/cmd/keys.json").unwrap();
    let jwk = serde_json::from_str::<serde_json::Value>(&keys).unwrap()["keys"][0].clone();
    let token = ok(
        &["encrypt", "--keys", "tests/cmd/keys.json"],
        r#"{"sub":"alice"}"#,
    );
    let req = serde_json::json!({"op": "decrypt", "jwk": jwk, "token": token.trim()});
    let v = jose.call(&req);
    assert_eq!(v["plaintext"], r#"{"sub":"alice"}"#);
}

/// Connects a service's store to the Redis at `url` (loading its mirror) and runs `f` on it.
fn service_store(url: &str, f: impl FnOnce(&jwe_session_redis::RedisStore)) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(jwe_session_redis::RedisStore::builder(url).connect());
    f(&store.unwrap());
}

/// `revoke` against a real redis-server: what it records, a service's store sees.
#[test]
fn revoke_through_redis() {
    use jwe_session_core::{RevocationStore, Revoked, SessionIds, UnixTime};
    let Some(server) = jwe_session_tests::RedisServer::start() else {
        return;
    };
    let url = server.url();
    served(&url);
    let out = ok(&["revoke", "--redis", &url, "--sid", "s-123"], "");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["revoked"], "session");
    assert_eq!(v["sid"], "s-123");
    let out = ok(
        &[
            "revoke",
            "--redis",
            &url,
            "--sub",
            "alice",
            "--before",
            "2030-01-01T00:00:00Z",
        ],
        "",
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["before"], 1_893_456_000);
    // The absolute lifetime and the core's grace, as the layer keeps it.
    let grace = jwe_session_core::REVOCATION_GRACE.as_secs();
    assert_eq!(v["until"], 1_893_456_000 + 7 * 86_400 + grace);

    service_store(&url, |store| {
        let now = UnixTime::now();
        let ids = |sid, sub| SessionIds {
            sid: Some(sid),
            sub: Some(sub),
            started: Some(now.into()),
            issued: None,
        };
        assert_eq!(
            store.check(ids("s-123", "bob"), now),
            Some(Revoked::Session)
        );
        assert!(matches!(
            store.check(ids("s-9", "alice"), now),
            Some(Revoked::Subject { .. })
        ));
        assert_eq!(store.check(ids("s-9", "bob"), now), None);
    });
    // Another app's prefix is a separate store, refused until forced.
    ok(
        &[
            "revoke", "--redis", &url, "--all", "--prefix", "other:", "--force",
        ],
        "",
    );
}

/// A service connects once under its prefix (leaving its epoch marker), as a running app.
fn served(url: &str) {
    service_store(url, |_| {});
}

/// The README's trap: the app sets `.prefix("myapp:")`, the operator forgets `--prefix`.
/// The revocation would go where no service reads: refused, nothing written, and the
/// message names the prefix looked at and the way out.
#[test]
fn revoke_refuses_a_prefix_no_service_reads() {
    let Some(server) = jwe_session_tests::RedisServer::start() else {
        return;
    };
    let url = server.url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt
        .block_on(
            jwe_session_redis::RedisStore::builder(url.clone())
                .prefix("myapp:")
                .connect(),
        )
        .unwrap();
    let out = run(&["revoke", "--redis", &url, "--sid", "stolen"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains(r#""jwe-session:""#), "{err}");
    assert!(err.contains("--prefix") && err.contains("--force"), "{err}");
    assert!(err.contains("nothing was revoked"), "{err}");
    // Nothing at all was written under the wrong prefix (not even the window).
    let keys = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &server.port().to_string(),
            "--raw",
            "KEYS",
            "{jwe-session:}*",
        ])
        .output()
        .unwrap();
    assert!(keys.status.success());
    let keys = String::from_utf8(keys.stdout).unwrap();
    assert!(keys.trim().is_empty(), "{keys:?}");
    // With the app's prefix it lands, and the app's store refuses the session.
    let out = ok(
        &[
            "revoke", "--redis", &url, "--prefix", "myapp:", "--sid", "stolen",
        ],
        "",
    );
    assert_eq!(json(&out)["revoked"], "session");
    let now = jwe_session_core::UnixTime::now();
    let ids = jwe_session_core::SessionIds {
        sid: Some("stolen"),
        sub: Some("u"),
        started: Some(now.into()),
        issued: None,
    };
    rt.block_on(async {
        let mut updates = store.updates();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while jwe_session_core::RevocationStore::check(&store, ids, now).is_none() {
                let _ = updates.changed().await;
            }
        })
        .await;
    });
    assert!(jwe_session_core::RevocationStore::check(&store, ids, now).is_some());
}

/// `revoke --refresh --sub U`: a claims refresh that a service's store sees on its hot
/// path (renew early), refusing nothing; kept one access lifetime plus leeway.
#[test]
fn revoke_refresh_asks_services_to_renew_a_subjects_tokens() {
    use jwe_session_core::{RevocationStore, SessionIds, UnixMicros, UnixTime};
    let Some(server) = jwe_session_tests::RedisServer::start() else {
        return;
    };
    let url = server.url();
    served(&url);
    let before = UnixMicros::from(UnixTime::now());
    let out = ok(
        &["revoke", "--redis", &url, "--refresh", "--sub", "alice"],
        "",
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["revoked"], "refresh");
    assert_eq!(v["sub"], "alice");
    let at = v["before_us"].as_u64().unwrap();
    assert!(
        at >= before.as_micros(),
        "the cut-off is now, to the microsecond"
    );
    // One second for the cut-off's own, the access lifetime, the grace.
    assert_eq!(v["until"].as_u64().unwrap(), at / 1_000_000 + 1 + 900 + 60);
    let out = ok(
        &[
            "revoke",
            "--redis",
            &url,
            "--refresh",
            "--sub",
            "bob",
            "--access-lifetime",
            "60",
        ],
        "",
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["until"].as_u64().unwrap(),
        v["before"].as_u64().unwrap() + 1 + 60 + 60
    );
    service_store(&url, |store| {
        let now = UnixTime::now();
        let token = |sub, issued| SessionIds {
            sid: Some("s-1"),
            sub: Some(sub),
            started: Some(UnixMicros::from_micros(1)),
            issued: Some(UnixMicros::from_micros(issued)),
        };
        assert!(store.refresh_due(token("alice", at), now).is_some());
        assert!(store.refresh_due(token("alice", at + 1), now).is_none());
        assert!(store.refresh_due(token("carol", 1), now).is_none());
        assert_eq!(
            store.check(token("alice", at), now),
            None,
            "not a revocation"
        );
    });
    // --refresh needs --sub, and goes with no other scope.
    for args in [
        &["revoke", "--redis", &url, "--refresh"][..],
        &["revoke", "--redis", &url, "--refresh", "--all"],
        &["revoke", "--redis", &url, "--refresh", "--sid", "s"],
        &[
            "revoke",
            "--redis",
            &url,
            "--sub",
            "a",
            "--access-lifetime",
            "5",
        ],
    ] {
        let out = run(args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// `revoke --sids-from`: the incident-response path. A file of sids and stdin (`-`), blank
/// lines and CRLF endings tolerated; every instance refuses them all.
#[test]
fn revoke_many_sids_from_a_file_and_stdin() {
    use jwe_session_core::{RevocationStore, Revoked, SessionIds, UnixTime};
    let Some(server) = jwe_session_tests::RedisServer::start() else {
        return;
    };
    let url = server.url();
    served(&url);
    let dir = scratch("sids");
    let file = dir.join("sids.txt");
    let sids: Vec<String> = (0..3000).map(|i| format!("leaked-{i}")).collect();
    std::fs::write(&file, sids.join("\n") + "\n\n").unwrap();
    let out = ok(
        &[
            "revoke",
            "--redis",
            &url,
            "--sids-from",
            file.to_str().unwrap(),
        ],
        "",
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["revoked"], "sessions");
    assert_eq!(v["count"], 3000);
    let out = ok(
        &["revoke", "--redis", &url, "--sids-from", "-"],
        "stdin-1\r\n\r\n  stdin-2  \nleaked-7\n",
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["count"], 3);
    let _ = std::fs::remove_dir_all(&dir);

    service_store(&url, |store| {
        let now = UnixTime::now();
        for sid in ["leaked-0", "leaked-2999", "stdin-1", "stdin-2"] {
            let ids = SessionIds {
                sid: Some(sid),
                sub: Some("u"),
                started: Some(now.into()),
                issued: None,
            };
            assert_eq!(store.check(ids, now), Some(Revoked::Session), "{sid}");
        }
    });
}

/// `revoke --sub U` (before = now) and the session layer draw the line at the same moment:
/// a session begun a moment before the command, in the same second, is ended; one begun
/// after it is not.
#[test]
fn revoke_now_and_the_layer_agree_on_the_boundary() {
    use jwe_session_core::KeyRing;
    use jwe_session_demo::demo::{app, DemoOptions};
    use jwe_session_tests::{Client, Server};
    let Some(server) = jwe_session_tests::RedisServer::start() else {
        return;
    };
    let url = server.url();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = jwe_session_redis::RedisStore::builder(url.clone())
            .connect()
            .await
            .unwrap();
        let mut opts = DemoOptions::new(KeyRing::generate());
        opts.store = Some(std::sync::Arc::new(store.clone()));
        let demo = Server::start(app(opts).unwrap()).await;
        for round in 0..3 {
            let mut before = Client::new(demo.url());
            before.login("carol").await;
            assert_eq!(before.get("/me").await.status.as_u16(), 200);
            let out = tokio::task::spawn_blocking({
                let url = url.clone();
                move || ok(&["revoke", "--redis", &url, "--sub", "carol"], "")
            })
            .await
            .unwrap();
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            let at = v["before_us"].as_u64().unwrap();
            assert_eq!(v["before"].as_u64().unwrap(), at / 1_000_000);
            // This instance's mirror has it once the event arrives (bounded wait).
            let mut updates = store.updates();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                while before.get("/me").await.status.as_u16() != 401 {
                    let _ = updates.changed().await;
                }
            })
            .await;
            assert_eq!(
                before.get("/me").await.status.as_u16(),
                401,
                "round {round}: a session begun just before `revoke --sub` survived it"
            );
            let mut after = Client::new(demo.url());
            after.login("carol").await;
            assert_eq!(
                after.get("/me").await.status.as_u16(),
                200,
                "round {round}: a session begun after `revoke --sub` was refused"
            );
            let claims = after.get("/me").await.json();
            assert!(claims["started_us"].as_u64().unwrap() > at);
        }
    });
}

/// `revoke --file`: the incident tool of a single-instance app. With the demo running on
/// its file store (holding the file's lock), the revocation goes through the spool and the
/// stolen cookie is refused at once; with the demo stopped, the command writes the file
/// itself and the restarted demo refuses the cookie.
#[test]
fn revoke_in_the_file_of_a_running_and_a_stopped_demo() {
    use jwe_session_core::KeyRing;
    use jwe_session_demo::demo::{app, DemoOptions};
    use jwe_session_tests::{Client, Server};
    let dir = scratch("revoke-file");
    let file = dir.join("revocations.redb");
    let path = s(&file).to_owned();
    // The same key each run, so the restarted demo opens the cookies of the first.
    let keys =
        r#"{"keys":[{"kty":"oct","kid":"k1","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr0"}]}"#;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let start = || {
        let ring = KeyRing::from_jwks(keys).unwrap();
        let store = jwe_session_file::FileStore::open(&file).unwrap();
        let mut opts = DemoOptions::new(ring);
        opts.store = Some(std::sync::Arc::new(store));
        rt.block_on(async { Server::start(app(opts).unwrap()).await })
    };
    let revoke = |args: &[&str]| {
        let mut all = vec!["revoke", "--file", path.as_str()];
        all.extend_from_slice(args);
        // The demo serves on the runtime's workers meanwhile.
        json(&ok(&all, ""))
    };

    // Running: the demo holds the file.
    let demo = start();
    let (mut alice, mut bob) = (Client::new(demo.url()), Client::new(demo.url()));
    let sid = rt.block_on(async {
        alice.login("alice").await;
        bob.login("bob").await;
        alice.get("/me").await.json()["sid"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    let v = revoke(&["--sid", &sid]);
    assert_eq!(v["revoked"], "session");
    assert_eq!(v["sid"], sid.as_str());
    rt.block_on(async {
        assert_eq!(
            alice.get("/me").await.status.as_u16(),
            401,
            "refused at once"
        );
        assert_eq!(bob.get("/me").await.status.as_u16(), 200);
    });
    let (alice_jar, stolen) = (alice.jar.clone(), bob.jar.clone());
    drop((alice, bob));
    rt.block_on(demo.stop());
    // Stopped means the file is free again (the last handle closes it).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while jwe_session_file::FileStore::open(&file).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the stopped demo holds the file"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    // Stopped: the command writes the file itself.
    let v = revoke(&["--sub", "bob"]);
    assert_eq!(v["revoked"], "subject");
    let demo = start();
    rt.block_on(async {
        let mut thief = Client::new(demo.url());
        thief.jar = stolen;
        assert_eq!(
            thief.get("/me").await.status.as_u16(),
            401,
            "after a restart"
        );
        let mut alice_again = Client::new(demo.url());
        alice_again.jar = alice_jar;
        assert_eq!(alice_again.get("/me").await.status.as_u16(), 401);
        let mut carol = Client::new(demo.url());
        carol.login("carol").await;
        assert_eq!(carol.get("/me").await.status.as_u16(), 200);
    });
    rt.block_on(demo.stop());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A path no service uses: refused, no file made, unless `--force`.
#[test]
fn revoke_refuses_a_revocation_file_that_does_not_exist() {
    let dir = scratch("revoke-no-file");
    let file = dir.join("typo.redb");
    let out = run(&["revoke", "--file", s(&file), "--sid", "s1"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("typo.redb") && err.contains("nothing was revoked"),
        "{err}"
    );
    assert!(!file.exists());
    let v = json(&ok(
        &["revoke", "--file", s(&file), "--sid", "s1", "--force"],
        "",
    ));
    assert_eq!(v["revoked"], "session");
    assert!(file.exists());
    // Redis-only flags need --redis; one target only.
    for args in [
        &["revoke", "--file", s(&file), "--sid", "s", "--prefix", "p:"][..],
        &[
            "revoke",
            "--file",
            s(&file),
            "--redis",
            "redis://x/",
            "--sid",
            "s",
        ],
        &["revoke", "--sid", "s"],
    ] {
        let out = run(args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `sessions --file`: a user's live sessions as JSON lines, from the file of a running
/// demo (asked through its spool) and of a stopped one (read directly); `revoke --sid`
/// ends one, which then leaves the list and is refused by the demo.
#[test]
fn sessions_in_the_file_of_a_running_and_a_stopped_demo() {
    use jwe_session_core::KeyRing;
    use jwe_session_demo::demo::{app, DemoOptions};
    use jwe_session_tests::{Client, Server};
    let dir = scratch("sessions-file");
    let file = dir.join("revocations.redb");
    let path = s(&file).to_owned();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let lines = |out: &str| -> Vec<serde_json::Value> {
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let sessions = |sub: &str| lines(&ok(&["sessions", "--file", &path, "--sub", sub], ""));
    let demo = {
        let store = jwe_session_file::FileStore::open(&file).unwrap();
        let mut opts = DemoOptions::new(KeyRing::generate());
        opts.store = Some(std::sync::Arc::new(store));
        rt.block_on(async { Server::start(app(opts).unwrap()).await })
    };
    let (mut laptop, mut phone) = (Client::new(demo.url()), Client::new(demo.url()));
    let laptop_sid = rt.block_on(async {
        laptop.login("alice").await;
        phone.login("alice").await;
        laptop.get("/me").await.json()["sid"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    let list = sessions("alice");
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["sid"], laptop_sid.as_str(), "oldest first");
    for l in &list {
        assert_eq!(l["sub"], "alice");
        assert_eq!(l["bound"], "none");
        assert!(l["until"].as_u64().unwrap() > l["started"].as_u64().unwrap());
    }
    assert!(sessions("nobody").is_empty());
    assert_eq!(
        json(&ok(&["revoke", "--file", &path, "--sid", &laptop_sid], ""))["revoked"],
        "session"
    );
    assert_eq!(sessions("alice").len(), 1);
    rt.block_on(async {
        assert_eq!(laptop.get("/me").await.status.as_u16(), 401);
        assert_eq!(phone.get("/me").await.status.as_u16(), 200);
    });
    rt.block_on(demo.stop());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while jwe_session_file::FileStore::open(&file).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the stopped demo holds the file"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Stopped: read from the file itself.
    assert_eq!(sessions("alice").len(), 1);
    // A path no service uses: refused, nothing created.
    let typo = dir.join("typo.redb");
    let out = run(&["sessions", "--file", s(&typo), "--sub", "alice"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(!typo.exists());
    assert_eq!(
        run(&["sessions", "--file", &path], "").status.code(),
        Some(2)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `sessions --redis`: what the stores of a service recorded, with a revoked session left
/// out; a prefix no service uses is refused.
#[test]
fn sessions_through_redis() {
    use jwe_session_core::{
        Clock, Lifetimes, Revocation, RevocationStore, SessionRecord, SystemClock, UnixTime,
    };
    let Some(server) = jwe_session_tests::RedisServer::start() else {
        return;
    };
    let url = server.url();
    // One runtime for the service's store and what it records (its connection lives there).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = jwe_session_redis::RedisStore::builder(url.as_str())
            .connect()
            .await
            .unwrap();
        let now = UnixTime::now();
        let until = UnixTime::from_secs(now.as_secs() + 3_600);
        let reg = store.registry().unwrap();
        for sid in ["s1", "s2"] {
            let r = SessionRecord::new(sid, "alice", SystemClock.now_micros(), until)
                .with_label("Phone");
            reg.record(r, now).await.unwrap();
        }
        store
            .revoke(
                Revocation::session("s2", Some(now), now, &Lifetimes::default()),
                now,
            )
            .await
            .unwrap();
    });
    let out = ok(&["sessions", "--redis", &url, "--sub", "alice"], "");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!(lines[0]["sid"], "s1");
    assert_eq!(lines[0]["label"], "Phone");
    let out = run(
        &[
            "sessions", "--redis", &url, "--sub", "alice", "--prefix", "other:",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("other:"), "{err}");
}

/// `revoke --postgres` and `sessions --postgres` against a real PostgreSQL: what the CLI
/// records, a service's store on another connection sees (announced, no restart); a
/// schema no service made is refused with nothing created, until `--force` creates it;
/// the listing leaves out the revoked session.
#[test]
fn revoke_and_sessions_through_postgres() {
    use jwe_session_core::{
        Clock, RevocationStore, Revoked, SessionIds, SessionRecord, SystemClock, UnixTime,
    };
    let Some(server) = jwe_session_tests::PgServer::start() else {
        return;
    };
    let url = server.database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    // No service yet: refused, and nothing created.
    let out = run(&["revoke", "--postgres", &url, "--sid", "s-0"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("\"jwe_session\"") && err.contains("--schema") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        server.psql(&db, "SELECT to_regnamespace('jwe_session') IS NULL"),
        "t"
    );
    let out = run(&["sessions", "--postgres", &url, "--sub", "alice"], "");
    assert_eq!(out.status.code(), Some(1));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(async {
        let pool = jwe_session_postgres::PgPool::connect(&url).await.unwrap();
        jwe_session_postgres::PgStore::builder(pool)
            .connect()
            .await
            .unwrap()
    });
    let now = UnixTime::now();
    let until = UnixTime::from_secs(now.as_secs() + 3_600);
    rt.block_on(async {
        let reg = store.registry().unwrap();
        for sid in ["s1", "s2"] {
            let r = SessionRecord::new(sid, "alice", SystemClock.now_micros(), until)
                .with_label("Phone");
            reg.record(r, now).await.unwrap();
        }
    });
    let out = ok(&["revoke", "--postgres", &url, "--sid", "s2"], "");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["revoked"], "session");
    let out = ok(&["revoke", "--postgres", &url, "--sub", "bob"], "");
    assert_eq!(json(&out)["revoked"], "subject");
    let ids = |sid, sub| SessionIds {
        sid: Some(sid),
        sub: Some(sub),
        started: Some(jwe_session_core::UnixMicros::from_micros(1_000_000)),
        issued: None,
    };
    // The running store hears of both (NOTIFY), within a bounded wait.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while store.check(ids("s2", "alice"), UnixTime::now()).is_none()
        || store.check(ids("s9", "bob"), UnixTime::now()).is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the store never saw them"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        store.check(ids("s2", "alice"), UnixTime::now()),
        Some(Revoked::Session)
    );
    let out = ok(&["sessions", "--postgres", &url, "--sub", "alice"], "");
    let lines: Vec<serde_json::Value> = out.lines().map(json).collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!(lines[0]["sid"], "s1");
    assert_eq!(lines[0]["label"], "Phone");

    // Another schema: refused, named; --force creates it and writes.
    let out = run(
        &[
            "revoke",
            "--postgres",
            &url,
            "--schema",
            "other_app",
            "--all",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("other_app"));
    ok(
        &[
            "revoke",
            "--postgres",
            &url,
            "--schema",
            "other_app",
            "--all",
            "--force",
        ],
        "",
    );
    assert_eq!(
        server.psql(
            &db,
            "SELECT count(*) FROM other_app.revocations WHERE scope = 2"
        ),
        "1"
    );
    // A schema name that is not an identifier is refused before anything is sent.
    let out = run(
        &[
            "revoke",
            "--postgres",
            &url,
            "--schema",
            "x; drop",
            "--all",
            "--force",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("identifier"));

    // Many sids from stdin, in batches; repeating them changes nothing.
    let sids: String = (0..5_000).map(|i| format!("bulk-{i}\n")).collect();
    let out = ok(&["revoke", "--postgres", &url, "--sids-from", "-"], &sids);
    assert_eq!(json(&out)["count"], 5_000);
    ok(&["revoke", "--postgres", &url, "--sids-from", "-"], &sids);
    assert_eq!(
        server.psql(
            &db,
            "SELECT count(*) FROM jwe_session.revocations WHERE id LIKE 'bulk-%'"
        ),
        "5000"
    );
    drop(store);
}
