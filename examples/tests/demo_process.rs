//! The demo binary as a process, over real HTTP: what survives a restart, what a bad
//! revocations file does, and the logout flows whose boundaries are below the second.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jwe_session_test_support::scratch;
use jwe_session_tests::{free_port, Client};
use reqwest::StatusCode;

#[path = "demo_process/authjs.rs"]
mod authjs;
#[path = "demo_process/dbsc.rs"]
mod dbsc;
#[path = "demo_process/devices.rs"]
mod devices;
#[path = "demo_process/dpop.rs"]
mod dpop;
#[path = "demo_process/postgres.rs"]
mod postgres;

/// A fixed key ring, so a restarted demo opens the cookies of the one before it.
const KEYS: &str = r#"{"keys":[{"kty":"oct","kid":"demo-test","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr0"}]}"#;

/// One demo process on a fixed port; killed (SIGKILL) on drop.
struct Demo {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Demo {
    /// Starts the demo with `env` on `port` and waits until it accepts connections.
    fn start(port: u16, env: &[(&str, &str)], log: PathBuf) -> Self {
        let child = Self::spawn(port, env, &log);
        let demo = Self { child, port, log };
        demo.wait_listening();
        demo
    }

    /// Starts the demo without waiting (an HTTPS demo is waited for by a TLS client).
    fn spawn_only(port: u16, env: &[(&str, &str)], log: PathBuf) -> Self {
        let child = Self::spawn(port, env, &log);
        Self { child, port, log }
    }

    fn spawn(port: u16, env: &[(&str, &str)], log: &Path) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_demo"));
        cmd.env_clear()
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .env("JWE_SESSION_KEYS", KEYS)
            .stdin(Stdio::null());
        // Logs (stdout) and errors (stderr) in one file.
        let out = std::fs::File::create(log).unwrap();
        cmd.stderr(out.try_clone().unwrap()).stdout(out);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().unwrap()
    }

    /// Waits (bounded: 20 s) until the demo answers HTTP, failing with its log if it exits
    /// first. A bare TCP connect is not enough: the port is bound before the revocation
    /// file is opened, and a connection waits in the backlog until the demo serves.
    fn wait_listening(&self) {
        use std::io::{Read, Write};
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
                let mut head = [0u8; 12];
                let asked = conn.write_all(b"GET /me HTTP/1.0\r\n\r\n").is_ok();
                if asked && conn.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("demo did not answer: {}", self.log_text());
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: nothing gets to flush or close.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser holding `jar` (say, a stolen copy of another's cookies), on connections of
/// its own: a restarted server does not inherit kept-alive connections.
fn browser(url: &str, jar: &BTreeMap<String, String>) -> Client {
    let mut client = Client::new(url);
    client.jar = jar.clone();
    client
}

/// Runs the demo until it exits on its own (bounded: 20 s) and returns its status and log.
fn run_to_exit(env: &[(&str, &str)], log: &Path) -> (std::process::ExitStatus, String) {
    let mut child = Demo::spawn(free_port(), env, log);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, std::fs::read_to_string(log).unwrap_or_default());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "the demo kept running: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn a_logout_survives_a_kill_and_restart() {
    let dir = scratch("logout-survives-restart");
    let file = dir.join("revocations.redb");
    let env = [("JWE_SESSION_REVOCATIONS", file.to_str().unwrap())];
    let port = free_port();
    let demo = Demo::start(port, &env, dir.join("1.log"));
    let mut user = Client::new(demo.url());
    assert_eq!(user.login("alice").await.status, StatusCode::SEE_OTHER);
    let stolen = user.jar.clone();
    assert_eq!(user.get("/me").await.status, StatusCode::OK);
    assert_eq!(
        user.post_form("/logout", &[]).await.status,
        StatusCode::SEE_OTHER
    );
    demo.kill();

    let demo = Demo::start(port, &env, dir.join("2.log"));
    let mut stolen = browser(&demo.url(), &stolen);
    let reply = stolen.get("/me").await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "a logged-out cookie came back to life after a restart"
    );
    let mut again = Client::new(demo.url());
    again.login("alice").await;
    assert_eq!(again.get("/me").await.status, StatusCode::OK);
}

#[tokio::test]
async fn without_the_variable_revocations_live_under_target() {
    let dir = scratch("default-revocations-path");
    let port = free_port();
    let demo = Demo::start(port, &[], dir.join("1.log"));
    let mut user = Client::new(demo.url());
    user.login("bob").await;
    let stolen = user.jar.clone();
    user.post_form("/logout", &[]).await;
    let log = demo.log_text();
    demo.kill();
    // Beside the build directory the binary runs from (`target/` unless CARGO_TARGET_DIR
    // says otherwise).
    let target = Path::new(env!("CARGO_BIN_EXE_demo"))
        .parent()
        .and_then(Path::parent)
        .unwrap();
    let default = target
        .join("jwe-session-demo")
        .join(format!("revocations-{port}.redb"));
    assert!(default.exists(), "no {}: {log}", default.display());
    assert!(
        log.contains("revocations-"),
        "the log names the file: {log}"
    );

    let demo = Demo::start(port, &[], dir.join("2.log"));
    let mut stolen = browser(&demo.url(), &stolen);
    assert_eq!(stolen.get("/me").await.status, StatusCode::UNAUTHORIZED);
    let _ = std::fs::remove_file(default);
}

#[test]
fn a_corrupt_or_foreign_file_stops_the_demo_with_its_path() {
    let dir = scratch("corrupt-revocations");
    let cases: [(&str, &[u8]); 3] = [
        ("garbage.redb", b"this is not a database, just some text\n"),
        ("empty.redb", b""),
        ("zeros.redb", &[0u8; 8192]),
    ];
    for (name, bytes) in cases {
        let file = dir.join(name);
        std::fs::write(&file, bytes).unwrap();
        let env = [("JWE_SESSION_REVOCATIONS", file.to_str().unwrap())];
        let (status, log) = run_to_exit(&env, &dir.join(format!("{name}.log")));
        assert!(!status.success(), "{name}: {status}: {log}");
        assert!(log.contains(file.to_str().unwrap()), "{name}: {log}");
        assert!(!log.contains("panicked"), "{name}: {log}");
        assert_eq!(std::fs::read(&file).unwrap(), bytes, "{name} was changed");
    }
}

#[tokio::test]
async fn a_second_demo_on_the_same_file_is_refused() {
    let dir = scratch("second-process");
    let file = dir.join("revocations.redb");
    let env = [("JWE_SESSION_REVOCATIONS", file.to_str().unwrap())];
    let _first = Demo::start(free_port(), &env, dir.join("1.log"));
    let (status, log) = run_to_exit(&env, &dir.join("2.log"));
    assert!(!status.success(), "{log}");
    assert!(log.contains(file.to_str().unwrap()), "{log}");
    assert!(log.contains("another process"), "{log}");
}

#[tokio::test]
async fn logging_in_right_after_logout_everywhere_keeps_the_new_session() {
    let dir = scratch("logout-everywhere-then-login");
    let file = dir.join("revocations.redb");
    let env = [("JWE_SESSION_REVOCATIONS", file.to_str().unwrap())];
    let demo = Demo::start(free_port(), &env, dir.join("demo.log"));
    // Each round is well inside one second, where whole-second cut-offs go wrong.
    for round in 0..10 {
        let mut user = Client::new(demo.url());
        user.login("carol").await;
        let old = user.jar.clone();
        let reply = user.post_form("/logout-everywhere", &[]).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        assert_eq!(user.login("carol").await.status, StatusCode::SEE_OTHER);
        assert_eq!(
            user.get("/me").await.status,
            StatusCode::OK,
            "round {round}: the session begun after logout-everywhere was refused"
        );
        let mut old = browser(&demo.url(), &old);
        assert_eq!(old.get("/me").await.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn logout_others_keeps_this_session_and_ends_the_rest() {
    let dir = scratch("logout-others");
    let file = dir.join("revocations.redb");
    let env = [("JWE_SESSION_REVOCATIONS", file.to_str().unwrap())];
    let port = free_port();
    let demo = Demo::start(port, &env, dir.join("1.log"));
    let mut phone = Client::new(demo.url());
    let mut laptop = Client::new(demo.url());
    let mut other_user = Client::new(demo.url());
    phone.login("dave").await;
    laptop.login("dave").await;
    other_user.login("erin").await;
    let laptop_copy = laptop.jar.clone();
    let phone_copy = phone.jar.clone();
    let reply = laptop.post_form("/logout-others", &[]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.headers["location"], "/");
    assert_eq!(laptop.get("/me").await.status, StatusCode::OK);
    assert_eq!(phone.get("/me").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(other_user.get("/me").await.status, StatusCode::OK);
    // The token this device sent before is replaced, so a copy of it is ended too.
    let mut copy = browser(&demo.url(), &laptop_copy);
    assert_eq!(copy.get("/me").await.status, StatusCode::UNAUTHORIZED);
    // And it all holds after a restart.
    demo.kill();
    let demo = Demo::start(port, &env, dir.join("2.log"));
    let mut laptop = browser(&demo.url(), &laptop.jar);
    assert_eq!(laptop.get("/me").await.status, StatusCode::OK);
    let mut phone = browser(&demo.url(), &phone_copy);
    assert_eq!(phone.get("/me").await.status, StatusCode::UNAUTHORIZED);
}

/// Two demo processes on one real Redis (`REDIS_URL`). Redis stops; `POST /logout` on A
/// logs the user out there and queues the revocation in A's revocation file; A is then
/// killed before Redis comes back. Started again, A sends what it queued, and B refuses a
/// stolen copy of the cookie.
#[tokio::test]
async fn a_logout_queued_while_redis_is_down_survives_a_kill_and_reaches_b() {
    let Some(mut redis) = jwe_session_tests::RedisServer::start() else {
        return;
    };
    let dir = scratch("demo-redis-queue");
    let url = redis.url();
    let (port_a, port_b) = (free_port(), free_port());
    let queue_a = dir.join("a.redb").display().to_string();
    let queue_b = dir.join("b.redb").display().to_string();
    let env_a = [
        ("REDIS_URL", url.as_str()),
        ("JWE_SESSION_REVOCATIONS", queue_a.as_str()),
    ];
    let a = Demo::start(port_a, &env_a, dir.join("a.log"));
    let b = Demo::start(
        port_b,
        &[
            ("REDIS_URL", url.as_str()),
            ("JWE_SESSION_REVOCATIONS", queue_b.as_str()),
        ],
        dir.join("b.log"),
    );
    let mut user = Client::new(a.url());
    assert_eq!(user.login("alice").await.status, StatusCode::SEE_OTHER);
    let stolen = user.jar.clone();
    assert_eq!(
        browser(&b.url(), &stolen).get("/me").await.status,
        StatusCode::OK
    );

    redis.kill();
    let r = user.post_form("/logout", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        browser(&a.url(), &stolen).get("/me").await.status,
        StatusCode::UNAUTHORIZED,
        "A honours its own logout at once"
    );
    a.kill();
    redis.restart();
    let a = Demo::start(port_a, &env_a, dir.join("a2.log"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while browser(&b.url(), &stolen).get("/me").await.status != StatusCode::UNAUTHORIZED {
        assert!(
            Instant::now() < deadline,
            "B still accepts the cookie: A's queued logout was lost.\nA: {}\nB: {}",
            a.log_text(),
            b.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two keys for the fleet tests: k1, the one every instance has, and k2, the next one.
const K1: &str = r#"{"kty":"oct","kid":"k1","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr0"}"#;
const K2: &str = r#"{"kty":"oct","kid":"k2","k":"WO8MDn1DhnTXpQ3VvcnfBP2W9rQabichtYg8XYcJTaw"}"#;

/// Whether any `Set-Cookie` of `reply` names one of the cookies in `jar`.
fn touches(reply: &jwe_session_tests::Reply, jar: &BTreeMap<String, String>) -> Vec<String> {
    reply
        .set_cookies
        .iter()
        .filter(|c| jar.contains_key(c.name()))
        .map(ToString::to_string)
        .collect()
}

/// A rolling deploy: B already has k2 (active) and k1; A has only k1. A cookie B sealed
/// under k2 gets no session on A, but A leaves it alone, so B still knows the user.
#[tokio::test]
async fn an_unknown_kid_leaves_the_cookie_for_the_instance_that_has_the_key() {
    let dir = scratch("fleet-unknown-kid");
    let ring_a = format!(r#"{{"keys":[{K1}]}}"#);
    let ring_b = format!(r#"{{"keys":[{K2},{K1}],"active_kid":"k2"}}"#);
    let a = Demo::start(
        free_port(),
        &[
            ("JWE_SESSION_KEYS", &ring_a),
            (
                "JWE_SESSION_REVOCATIONS",
                dir.join("a.redb").to_str().unwrap(),
            ),
        ],
        dir.join("a.log"),
    );
    let b = Demo::start(
        free_port(),
        &[
            ("JWE_SESSION_KEYS", &ring_b),
            (
                "JWE_SESSION_REVOCATIONS",
                dir.join("b.redb").to_str().unwrap(),
            ),
        ],
        dir.join("b.log"),
    );
    let mut on_b = Client::new(b.url());
    assert_eq!(on_b.login("alice").await.status, StatusCode::SEE_OTHER);
    let jar = on_b.jar.clone();
    assert!(!jar.is_empty());

    let mut on_a = browser(&a.url(), &jar);
    let reply = on_a.get("/me").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        touches(&reply, &jar),
        Vec::<String>::new(),
        "A touched the session cookie of a key it does not have"
    );
    assert_eq!(on_a.jar, jar);
    let log = a.log_text();
    // Anyone can forge a header with an unknown kid: refused at debug, like any refusal,
    // so the info log does not grow with such traffic (issue 25, item 8).
    assert!(
        !log.contains("k2"),
        "A logs the unknown kid above debug: {log}"
    );

    let mut back_on_b = browser(&b.url(), &on_a.jar);
    let reply = back_on_b.get("/me").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body.contains("alice"), "{}", reply.body);

    // Any other refusal still clears: the same cookie with one byte changed.
    let mut forged = jar.clone();
    let (name, value) = jar.iter().next().unwrap();
    let mut bytes = value.clone().into_bytes();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    forged.insert(name.clone(), String::from_utf8(bytes).unwrap());
    let reply = browser(&b.url(), &forged).get("/me").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        !touches(&reply, &forged).is_empty(),
        "a forged cookie is cleared"
    );
}

/// The kid of the session cookie in `jar` (the demo's claims fit one cookie).
fn cookie_kid(jar: &BTreeMap<String, String>) -> String {
    let token = jar.values().next().expect("a session cookie");
    let info = jwe_session_core::inspect(token, &jwe_session_core::TokenOptions::new()).unwrap();
    info.header["kid"].as_str().unwrap().to_owned()
}

/// Replaces `path` atomically (a temporary file renamed over it), as `rotate` does.
fn write_keys(path: &Path, set: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, set).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Waits (bounded: 10 s) until `demo`'s log says the ring was replaced `n` times.
fn wait_reloads(demo: &Demo, n: usize) -> Duration {
    let start = Instant::now();
    while demo.log_text().matches("key ring replaced").count() < n {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no reload {n}: {}",
            demo.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

/// `JWE_SESSION_KEYS_FILE` is watched: a rotated file takes effect with no signal and no
/// restart, within 2 s. Cookies of the old key still open and move to the new one.
#[tokio::test]
async fn a_rotated_key_file_takes_effect_without_a_signal() {
    let dir = scratch("watched-keys");
    let keys = dir.join("keys.json");
    write_keys(&keys, &format!(r#"{{"keys":[{K1}]}}"#));
    let demo = Demo::start(
        free_port(),
        &[
            ("JWE_SESSION_KEYS_FILE", keys.to_str().unwrap()),
            (
                "JWE_SESSION_REVOCATIONS",
                dir.join("r.redb").to_str().unwrap(),
            ),
        ],
        dir.join("demo.log"),
    );
    let mut old = Client::new(demo.url());
    old.login("alice").await;
    assert_eq!(cookie_kid(&old.jar), "k1");

    write_keys(
        &keys,
        &format!(r#"{{"keys":[{K2},{K1}],"active_kid":"k2"}}"#),
    );
    let took = wait_reloads(&demo, 1);
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let mut new = Client::new(demo.url());
    new.login("bob").await;
    assert_eq!(cookie_kid(&new.jar), "k2");
    let reply = old.get("/me").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(cookie_kid(&old.jar), "k2", "re-sealed under the new key");

    // A file that does not load changes nothing; the demo goes on with k2.
    write_keys(&keys, r#"{"keys":[{"kty":"oct","#);
    let start = Instant::now();
    while !demo.log_text().contains("did not load") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{}",
            demo.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(new.get("/me").await.status, StatusCode::OK);
}

/// The fleet path on two demo processes, each watching its own copy of the key file:
/// stage k2 on both, schedule it for a moment T, and at T both switch by their own clocks.
/// Cookies cross between them before, at and after T without anyone being logged out.
#[tokio::test]
async fn a_fleet_stages_then_switches_at_a_scheduled_moment() {
    let dir = scratch("fleet-schedule");
    let (file_a, file_b) = (dir.join("a.json"), dir.join("b.json"));
    let one = format!(r#"{{"keys":[{K1}]}}"#);
    write_keys(&file_a, &one);
    write_keys(&file_b, &one);
    let start = |file: &Path, name: &str| {
        Demo::start(
            free_port(),
            &[
                ("JWE_SESSION_KEYS_FILE", file.to_str().unwrap()),
                (
                    "JWE_SESSION_REVOCATIONS",
                    dir.join(format!("{name}.redb")).to_str().unwrap(),
                ),
            ],
            dir.join(format!("{name}.log")),
        )
    };
    let (a, b) = (start(&file_a, "a"), start(&file_b, "b"));
    let mut user = Client::new(a.url());
    user.login("alice").await;
    assert_eq!(cookie_kid(&user.jar), "k1");

    // Stage: k2 opens everywhere, k1 still seals.
    let staged = format!(r#"{{"keys":[{K1},{K2}],"active_kid":"k1"}}"#);
    write_keys(&file_a, &staged);
    write_keys(&file_b, &staged);
    wait_reloads(&a, 1);
    wait_reloads(&b, 1);
    let mut other = Client::new(b.url());
    other.login("bob").await;
    assert_eq!(cookie_kid(&other.jar), "k1", "a staged key does not seal");

    // Schedule k2 for T, 3 s from now, on both.
    let t = jwe_session_core::UnixTime::now().as_secs() + 3;
    let k2_at_t = format!(r#"{},"seals_from":{t}}}"#, &K2[..K2.len() - 1]);
    let scheduled = format!(r#"{{"keys":[{K1},{k2_at_t}],"active_kid":"k1"}}"#);
    write_keys(&file_a, &scheduled);
    write_keys(&file_b, &scheduled);
    wait_reloads(&a, 2);
    wait_reloads(&b, 2);
    while jwe_session_core::UnixTime::now().as_secs() < t {
        std::thread::sleep(Duration::from_millis(50));
    }
    // From T: A re-seals alice's k1 cookie under k2, and B opens it.
    let mut on_a = browser(&a.url(), &user.jar);
    assert_eq!(on_a.get("/me").await.status, StatusCode::OK);
    assert_eq!(cookie_kid(&on_a.jar), "k2");
    let mut on_b = browser(&b.url(), &on_a.jar);
    let reply = on_b.get("/me").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body.contains("alice"));
    let mut fresh = Client::new(b.url());
    fresh.login("carol").await;
    assert_eq!(cookie_kid(&fresh.jar), "k2");
    // Bob's k1 cookie from before T still opens on A, and moves to k2.
    let mut bob_on_a = browser(&a.url(), &other.jar);
    assert_eq!(bob_on_a.get("/me").await.status, StatusCode::OK);
    assert_eq!(cookie_kid(&bob_on_a.jar), "k2");
}

/// `GET /metrics`: what the layer counted, in Prometheus text format, on a real process.
#[tokio::test]
async fn the_demo_serves_its_metrics_in_prometheus_format() {
    let dir = scratch("metrics");
    let file = dir.join("revocations.redb");
    let env = [("JWE_SESSION_REVOCATIONS", file.to_str().unwrap())];
    let demo = Demo::start(free_port(), &env, dir.join("demo.log"));
    let mut user = Client::new(demo.url());
    assert_eq!(user.login("mia").await.status, StatusCode::SEE_OTHER);
    assert_eq!(user.get("/me").await.status, StatusCode::OK);
    // A route that never reads the session never opens the cookie: not counted below.
    let health = user.get("/healthz").await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (StatusCode::OK, "ok")
    );
    let copy = user.jar.clone();
    assert_eq!(
        user.post_form("/logout", &[]).await.status,
        StatusCode::SEE_OTHER
    );
    let mut stolen = browser(&demo.url(), &copy);
    assert_eq!(stolen.get("/me").await.status, StatusCode::UNAUTHORIZED);
    let mut forger = browser(
        &demo.url(),
        &BTreeMap::from([("__Host-session".to_owned(), "not-a-token".to_owned())]),
    );
    assert_eq!(forger.get("/me").await.status, StatusCode::UNAUTHORIZED);
    // Nor a revoked or forged one: left as it came, judged where the session is read.
    for client in [&mut stolen, &mut forger] {
        let reply = client.get("/healthz").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            !reply.headers.contains_key("set-cookie"),
            "{:?}",
            reply.headers
        );
    }

    let reply = Client::new(demo.url()).get("/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{:?}",
        reply.headers
    );
    let text = &reply.body;
    let value = |line: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {line} in\n{text}"))
    };
    assert_eq!(value("jwe_session_sessions_started_total "), 1.0);
    // `/` after the login redirect is not followed by this client: /me and /logout.
    assert_eq!(value("jwe_session_sessions_opened_total "), 2.0);
    assert_eq!(
        value(r#"jwe_session_sessions_refused_total{reason="revoked"} "#),
        1.0
    );
    assert_eq!(
        value(r#"jwe_session_sessions_refused_total{reason="malformed"} "#),
        1.0
    );
    assert_eq!(
        value(r#"jwe_session_revocations_total{scope="session"} "#),
        1.0
    );
    assert_eq!(value(r#"jwe_session_key_seals{kid="demo-test"} "#), 1.0);
    assert!(text.contains("jwe_session_key_budget_used_ratio{kid=\"demo-test\"}"));
}
