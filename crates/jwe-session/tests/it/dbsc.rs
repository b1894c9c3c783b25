//! Device-bound sessions (DBSC) through the layer, a software P-256 key acting as the
//! browser: registration, the challenge-then-proof refresh, the bound cookie that no
//! ordinary request renews, and every refusal (another key, a `jwk` smuggled into a refresh,
//! stale and foreign challenges, a replayed registration, a revoked session, a missing or
//! altered binding cookie, wrong `typ`/`alg`, garbage headers), none of them a 5xx.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, SET_COOKIE};
use http::{Request, Response, StatusCode};
use jwe_session::dbsc::{
    SECURE_SESSION_CHALLENGE, SECURE_SESSION_REGISTRATION, SECURE_SESSION_RESPONSE,
    SEC_SECURE_SESSION_ID,
};
use jwe_session::{
    ConfigError, DeviceBoundConfig, DpopConfig, KeyRing, Lifetimes, ManualClock, ProofKey,
    SessionHandle, SessionLayer, Transport, UnixTime,
};
use serde_json::{json, Value};
use tower::{service_fn, Layer, ServiceExt};

const T0: u64 = 1_800_000_000;
const HOST: &str = "app.example.com";
const COOKIE_NAME: &str = "__Host-session";
const BINDING: &str = "__Secure-session-dbsc";
const REGISTER: &str = "/session/dbsc/register";
const REFRESH: &str = "/session/dbsc/refresh";
/// The layer's lifetimes: access 15 minutes, idle 1 hour, absolute 1 day; bound 10 minutes.
const BOUND: u64 = 600;

fn ring() -> KeyRing {
    jwe_session_test_support::seeded_ring(&[("b1", 11)])
}

fn lifetimes() -> Lifetimes {
    Lifetimes::new(
        Duration::from_secs(900),
        Duration::from_secs(3600),
        Duration::from_secs(86_400),
    )
}

struct Fixture {
    layer: SessionLayer<()>,
    clock: ManualClock,
}

fn fixture() -> Fixture {
    fixture_with(DeviceBoundConfig::new())
}

fn fixture_with(config: DeviceBoundConfig) -> Fixture {
    let clock = ManualClock::new(UnixTime::from_secs(T0));
    let layer = SessionLayer::builder(ring())
        .clock(Arc::new(clock.clone()))
        .lifetimes(lifetimes())
        .device_bound(config)
        .build()
        .unwrap();
    Fixture { layer, clock }
}

async fn handler(req: Request<String>) -> Result<Response<String>, Infallible> {
    let handle = req
        .extensions()
        .get::<SessionHandle<()>>()
        .cloned()
        .unwrap();
    let (status, body) = match req.uri().path() {
        "/login" => {
            handle.start("alice", ()).unwrap();
            (StatusCode::OK, String::new())
        }
        "/logout" => {
            handle.end().await.unwrap();
            (StatusCode::OK, String::new())
        }
        "/cycle" => {
            handle.cycle().await.unwrap();
            (StatusCode::OK, String::new())
        }
        _ => match handle.claims() {
            Some(c) => (StatusCode::OK, serde_json::to_string(&c).unwrap()),
            None => (StatusCode::UNAUTHORIZED, String::new()),
        },
    };
    let mut res = Response::new(body);
    *res.status_mut() = status;
    Ok(res)
}

/// A cookie jar as a browser keeps one: `Path` scoping and `Max-Age` by the test's clock.
#[derive(Clone, Debug, Default)]
struct Jar(BTreeMap<String, (String, String, Option<u64>)>);

impl Jar {
    fn apply(&mut self, res: &Response<String>, now: u64) {
        for v in res.headers().get_all(SET_COOKIE) {
            let c = cookie::Cookie::parse(v.to_str().unwrap().to_owned()).unwrap();
            let max_age = c
                .max_age()
                .map(|d| u64::try_from(d.whole_seconds()).unwrap_or(0));
            if max_age == Some(0) {
                self.0.remove(c.name());
            } else {
                self.0.insert(
                    c.name().to_owned(),
                    (
                        c.value().to_owned(),
                        c.path().unwrap_or("/").to_owned(),
                        max_age.map(|m| now + m),
                    ),
                );
            }
        }
    }

    fn header(&self, path: &str, now: u64) -> Option<String> {
        let pairs: Vec<String> = self
            .0
            .iter()
            .filter(|(_, (_, p, until))| {
                path.starts_with(p.as_str()) && until.is_none_or(|u| now < u)
            })
            .map(|(n, (v, _, _))| format!("{n}={v}"))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|(v, _, _)| v.as_str())
    }
}

/// What a response's registration header asks for.
fn registration(res: &Response<String>) -> (String, String) {
    let v = res
        .headers()
        .get(SECURE_SESSION_REGISTRATION)
        .expect("a registration header")
        .to_str()
        .unwrap();
    let param = |name: &str| {
        let start = v.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        v[start..start + v[start..].find('"').unwrap()].to_owned()
    };
    assert!(v.starts_with("(ES256);"), "{v}");
    (param("path"), param("challenge"))
}

/// The challenge and session id of a refresh's `403`.
fn refresh_challenge(res: &Response<String>) -> (String, String) {
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let v = res
        .headers()
        .get(SECURE_SESSION_CHALLENGE)
        .expect("a challenge")
        .to_str()
        .unwrap();
    let (challenge, id) = v.split_once(";id=").unwrap();
    (
        challenge.trim_matches('"').to_owned(),
        id.trim_matches('"').to_owned(),
    )
}

fn registration_proof(key: &ProofKey, challenge: &str) -> String {
    key.sign("dbsc+jwt", json!({ "jti": challenge }).as_object().unwrap())
        .unwrap()
}

fn refresh_proof(key: &ProofKey, challenge: &str) -> String {
    key.sign_without_jwk("dbsc+jwt", json!({ "jti": challenge }).as_object().unwrap())
        .unwrap()
}

/// A browser: its jar and its device key.
struct Browser {
    jar: Jar,
    key: ProofKey,
    /// The DBSC session id, once registered.
    id: String,
}

impl Fixture {
    fn now(&self) -> u64 {
        use jwe_session::Clock as _;
        self.clock.now().as_secs()
    }

    async fn send(&self, req: http::request::Builder) -> Response<String> {
        let svc = self.layer.layer(service_fn(handler));
        let req = req.header("host", HOST).body(String::new()).unwrap();
        let res = svc.oneshot(req).await.unwrap();
        assert!(!res.status().is_server_error(), "{res:?}");
        res
    }

    /// A request from `jar`, its answer applied to `jar`.
    async fn browse(&self, jar: &mut Jar, req: http::request::Builder) -> Response<String> {
        let path = req.uri_ref().unwrap().path().to_owned();
        let req = match jar.header(&path, self.now()) {
            Some(c) => req.header(COOKIE, c),
            None => req,
        };
        let res = self.send(req).await;
        jar.apply(&res, self.now());
        res
    }

    async fn me(&self, jar: &mut Jar) -> Option<Value> {
        let res = self.browse(jar, Request::get("/me")).await;
        (res.status() == StatusCode::OK).then(|| serde_json::from_str(res.body()).unwrap())
    }

    /// Registers `key` for the session of `jar`, answering `challenge`.
    async fn register(&self, jar: &mut Jar, key: &ProofKey, challenge: &str) -> Response<String> {
        let proof = registration_proof(key, challenge);
        self.browse(
            jar,
            Request::post(REGISTER).header(SECURE_SESSION_RESPONSE, proof),
        )
        .await
    }

    /// Logs in and registers a device key: a bound session.
    async fn bound(&self) -> Browser {
        let mut jar = Jar::default();
        let res = self.browse(&mut jar, Request::post("/login")).await;
        let (path, challenge) = registration(&res);
        assert_eq!(path, REGISTER);
        let key = ProofKey::generate().unwrap();
        let res = self.register(&mut jar, &key, &challenge).await;
        assert_eq!(res.status(), StatusCode::OK, "{res:?}");
        let body: Value = serde_json::from_str(res.body()).unwrap();
        let id = body["session_identifier"].as_str().unwrap().to_owned();
        Browser { jar, key, id }
    }

    /// The two steps of a refresh: asked, challenged, proved.
    async fn refresh(&self, b: &mut Browser) -> Response<String> {
        let res = self
            .browse(
                &mut b.jar,
                Request::post(REFRESH).header(SEC_SECURE_SESSION_ID, &b.id),
            )
            .await;
        let (challenge, id) = refresh_challenge(&res);
        assert_eq!(id, b.id);
        let proof = refresh_proof(&b.key, &challenge);
        self.browse(
            &mut b.jar,
            Request::post(REFRESH)
                .header(SEC_SECURE_SESSION_ID, &b.id)
                .header(SECURE_SESSION_RESPONSE, proof),
        )
        .await
    }

    fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }
}

fn set_cookie<'a>(res: &'a Response<String>, name: &str) -> Option<&'a str> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with(&format!("{name}=")))
}

#[tokio::test]
async fn registration_binds_the_session_under_a_new_sid_and_answers_the_instructions() {
    let f = fixture();
    let mut jar = Jar::default();
    let res = f.browse(&mut jar, Request::post("/login")).await;
    let (_, challenge) = registration(&res);
    let unbound = jar.clone();
    let before = f.me(&mut jar.clone()).await.unwrap();
    let key = ProofKey::generate().unwrap();
    let res = f.register(&mut jar, &key, &challenge).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
    let body: Value = serde_json::from_str(res.body()).unwrap();
    let id = body["session_identifier"].as_str().unwrap();
    assert_eq!(
        body,
        json!({
            "session_identifier": id,
            "refresh_url": REFRESH,
            "scope": { "origin": format!("https://{HOST}"), "include_site": false },
            "credentials": [{
                "type": "cookie",
                "name": COOKIE_NAME,
                "attributes": "HttpOnly; SameSite=Lax; Secure; Path=/",
            }],
        })
    );
    // The bound cookie lives the bound lifetime; the binding cookie goes to the refresh
    // endpoint only, for as long as the session may renew.
    let session = set_cookie(&res, COOKIE_NAME).unwrap();
    assert!(session.contains(&format!("Max-Age={BOUND}")), "{session}");
    let binding = set_cookie(&res, BINDING).unwrap();
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        &format!("Path={REFRESH}"),
        "Max-Age=4200",
    ] {
        assert!(binding.contains(attr), "{binding} lacks {attr}");
    }
    // Requests the browser sent with the unbound cookie before it had the bound one are
    // still answered (the page a login redirects to), and clear nothing.
    let res = f
        .send(Request::get("/me").header(COOKIE, unbound.header("/me", f.now()).unwrap()))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get(SET_COOKIE).is_none());
    // The bound cookie's first use revokes the unbound sid (re-sealing without the
    // reminder): the unbound cookie of the login, and any copy of it, is worth nothing.
    let first = f.browse(&mut jar, Request::get("/me")).await;
    assert!(set_cookie(&first, COOKIE_NAME).is_some(), "re-sealed once");
    assert!(f.me(&mut unbound.clone()).await.is_none());
    let again = f.browse(&mut jar, Request::get("/me")).await;
    assert!(again.headers().get(SET_COOKIE).is_none(), "and only once");
    let me = f.me(&mut jar).await.unwrap();
    assert!(me["cnf"]["dbsc"].get("prev").is_none());
    assert_eq!(me["sid"], id);
    assert_ne!(me["sid"], before["sid"], "the bound session has a new sid");
    assert_eq!(me["auth_time"], before["auth_time"]);
    assert_eq!(me["cnf"]["jkt"], key.thumbprint());
    assert_eq!(me["cnf"]["dbsc"]["id"], id);
    assert_eq!(me["exp"], T0 + BOUND);
    // A browser without DBSC never registers: its session stays as it is.
    let mut plain = Jar::default();
    f.browse(&mut plain, Request::post("/login")).await;
    let plain_me = f.me(&mut plain).await.unwrap();
    assert!(plain_me.get("cnf").is_none());
}

#[tokio::test]
async fn a_bound_cookie_is_refused_after_its_exp_and_only_a_refresh_with_the_key_renews_it() {
    let f = fixture();
    let mut b = f.bound().await;
    // Everything a thief can copy: the session cookie and the binding cookie.
    let mut stolen = b.jar.clone();
    stolen.0.values_mut().for_each(|c| c.2 = None);
    f.advance(BOUND - 1);
    assert!(
        f.me(&mut stolen.clone()).await.is_some(),
        "within the bound lifetime"
    );
    f.advance(2);
    // Past `exp`: no ordinary renewal, and the cookie is cleared.
    let res = f
        .send(Request::get("/me").header(COOKIE, stolen.header("/me", 0).unwrap()))
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&res, COOKIE_NAME).unwrap().contains("Max-Age=0"));
    assert!(res.headers().get(SET_COOKIE).is_some());
    // The thief drives the refresh endpoint with the binding cookie and a key of its own.
    let thief = ProofKey::generate().unwrap();
    let mut t = Browser {
        jar: stolen,
        key: thief,
        id: b.id.clone(),
    };
    let res = f.refresh(&mut t).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(
        set_cookie(&res, COOKIE_NAME).is_none(),
        "the thief gets nothing"
    );
    // The browser, with its key, gets the next bound cookie.
    let started = std::time::Instant::now();
    let res = f.refresh(&mut b).await;
    let took = started.elapsed();
    assert_eq!(res.status(), StatusCode::OK);
    println!("refresh round trip in the layer (two requests): {took:?}");
    let body: Value = serde_json::from_str(res.body()).unwrap();
    assert_eq!(body["session_identifier"], b.id);
    assert!(set_cookie(&res, BINDING).is_some(), "the binding goes on");
    let me = f.me(&mut b.jar).await.unwrap();
    assert_eq!(me["exp"], f.now() + BOUND);
    assert_eq!(me["cnf"]["jkt"], b.key.thumbprint());
}

#[tokio::test]
async fn a_refresh_before_exp_works_and_a_challenge_is_accepted_while_recent() {
    let f = fixture();
    let mut b = f.bound().await;
    let res = f
        .browse(
            &mut b.jar,
            Request::post(REFRESH).header(SEC_SECURE_SESSION_ID, &b.id),
        )
        .await;
    let (challenge, _) = refresh_challenge(&res);
    // A browser may cache a challenge: it is accepted again while recent.
    for _ in 0..2 {
        f.advance(60);
        let res = f
            .browse(
                &mut b.jar,
                Request::post(REFRESH)
                    .header(SEC_SECURE_SESSION_ID, format!("\"{}\"", b.id))
                    .header(
                        SECURE_SESSION_RESPONSE,
                        format!("\"{}\"", refresh_proof(&b.key, &challenge)),
                    ),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    // Past the challenge lifetime (5 minutes) it is stale: a fresh challenge comes back.
    f.advance(300);
    let res = f
        .browse(
            &mut b.jar,
            Request::post(REFRESH)
                .header(SEC_SECURE_SESSION_ID, &b.id)
                .header(SECURE_SESSION_RESPONSE, refresh_proof(&b.key, &challenge)),
        )
        .await;
    let (fresh, _) = refresh_challenge(&res);
    assert_ne!(fresh, challenge);
}

/// Every way a refresh proof or its request can be wrong: a `403` with a fresh challenge
/// (or without one where the binding names another session), never a cookie, never 5xx.
#[tokio::test]
async fn every_refresh_refusal() {
    let f = fixture();
    let b = f.bound().await;
    let other = f.bound().await;
    let res = f
        .send(
            Request::post(REFRESH)
                .header(COOKIE, b.jar.header(REFRESH, f.now()).unwrap())
                .header(SEC_SECURE_SESSION_ID, &b.id),
        )
        .await;
    let (challenge, _) = refresh_challenge(&res);
    let (other_challenge, _) = {
        let res = f
            .send(
                Request::post(REFRESH)
                    .header(COOKIE, other.jar.header(REFRESH, f.now()).unwrap())
                    .header(SEC_SECURE_SESSION_ID, &other.id),
            )
            .await;
        refresh_challenge(&res)
    };
    let thief = ProofKey::generate().unwrap();
    let claims = |jti: &str| json!({ "jti": jti }).as_object().unwrap().clone();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("another key", vec![refresh_proof(&thief, &challenge)]),
        (
            "a jwk smuggled in",
            vec![b.key.sign("dbsc+jwt", &claims(&challenge)).unwrap()],
        ),
        (
            "the thief's jwk smuggled in",
            vec![thief.sign("dbsc+jwt", &claims(&challenge)).unwrap()],
        ),
        (
            "a challenge of another session",
            vec![refresh_proof(&b.key, &other_challenge)],
        ),
        (
            "a challenge that is not ours",
            vec![refresh_proof(&b.key, "made-up")],
        ),
        (
            "typ dpop+jwt",
            vec![b
                .key
                .sign_without_jwk("dpop+jwt", &claims(&challenge))
                .unwrap()],
        ),
        ("alg none", vec![unsigned(&challenge)]),
        ("garbage", vec!["garbage".to_owned()]),
        (
            "two proofs",
            vec![
                refresh_proof(&b.key, &challenge),
                refresh_proof(&b.key, &challenge),
            ],
        ),
        ("empty", vec![String::new()]),
    ];
    for (what, proofs) in cases {
        let mut req = Request::post(REFRESH)
            .header(COOKIE, b.jar.header(REFRESH, f.now()).unwrap())
            .header(SEC_SECURE_SESSION_ID, &b.id);
        for p in proofs {
            req = req.header(SECURE_SESSION_RESPONSE, p);
        }
        let res = f.send(req).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{what}");
        assert!(
            res.headers().get(SECURE_SESSION_CHALLENGE).is_some(),
            "{what}"
        );
        assert!(res.headers().get(SET_COOKIE).is_none(), "{what}");
    }
    // A registration challenge is not a refresh challenge.
    let mut jar = Jar::default();
    let res = f.browse(&mut jar, Request::post("/login")).await;
    let (_, reg_challenge) = registration(&res);
    let res = f
        .send(
            Request::post(REFRESH)
                .header(COOKIE, b.jar.header(REFRESH, f.now()).unwrap())
                .header(
                    SECURE_SESSION_RESPONSE,
                    refresh_proof(&b.key, &reg_challenge),
                ),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.headers().get(SET_COOKIE).is_none());
    // Another session's id beside this binding cookie.
    let res = f
        .send(
            Request::post(REFRESH)
                .header(COOKIE, b.jar.header(REFRESH, f.now()).unwrap())
                .header(SEC_SECURE_SESSION_ID, &other.id)
                .header(SECURE_SESSION_RESPONSE, refresh_proof(&b.key, &challenge)),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.headers().get(SET_COOKIE).is_none());
    // Not a POST.
    let res = f.send(Request::get(REFRESH)).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
}

fn unsigned(challenge: &str) -> String {
    use base64::Engine as _;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        b64(&json!({"typ": "dbsc+jwt", "alg": "none"})),
        b64(&json!({"jti": challenge}))
    )
}

/// A binding cookie that is missing or altered ends the browser's session: it cannot
/// refresh without one.
#[tokio::test]
async fn a_missing_or_altered_binding_cookie_gets_nothing() {
    let f = fixture();
    let b = f.bound().await;
    let binding = b.jar.get(BINDING).unwrap().to_owned();
    let mut altered = binding.clone().into_bytes();
    for i in [0, binding.len() / 2, binding.len() - 1] {
        let orig = altered[i];
        altered[i] = if orig == b'A' { b'B' } else { b'A' };
        let cookie = format!("{BINDING}={}", String::from_utf8(altered.clone()).unwrap());
        let res = f
            .send(
                Request::post(REFRESH)
                    .header(COOKIE, cookie)
                    .header(SEC_SECURE_SESSION_ID, &b.id),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = serde_json::from_str(res.body()).unwrap();
        assert_eq!(body, json!({"session_identifier": b.id, "continue": false}));
        assert!(set_cookie(&res, BINDING).unwrap().contains("Max-Age=0"));
        altered[i] = orig;
    }
    let res = f
        .send(Request::post(REFRESH).header(SEC_SECURE_SESSION_ID, &b.id))
        .await;
    let body: Value = serde_json::from_str(res.body()).unwrap();
    assert_eq!(body["continue"], false);
    assert!(res.headers().get(SET_COOKIE).is_none(), "nothing to clear");
    // The session cookie sealed for the session is not a binding cookie either.
    let cookie = format!("{BINDING}={}", b.jar.get(COOKIE_NAME).unwrap());
    let res = f
        .send(
            Request::post(REFRESH)
                .header(COOKIE, cookie)
                .header(SEC_SECURE_SESSION_ID, &b.id),
        )
        .await;
    let body: Value = serde_json::from_str(res.body()).unwrap();
    assert_eq!(body["continue"], false);
}

#[tokio::test]
async fn a_revoked_session_does_not_come_back_through_a_refresh() {
    let f = fixture();
    let mut b = f.bound().await;
    let stolen = b.jar.clone();
    let res = f.browse(&mut b.jar, Request::post("/logout")).await;
    assert_eq!(res.status(), StatusCode::OK);
    // At once on every request, as for any session.
    assert!(f.me(&mut stolen.clone()).await.is_none());
    // And at the refresh: the browser is told to stop, its cookies are cleared.
    let mut b2 = Browser {
        jar: stolen,
        key: b.key,
        id: b.id.clone(),
    };
    let res = f.refresh(&mut b2).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = serde_json::from_str(res.body()).unwrap();
    assert_eq!(body, json!({"session_identifier": b.id, "continue": false}));
    assert!(set_cookie(&res, BINDING).unwrap().contains("Max-Age=0"));
    assert!(b2.jar.get(BINDING).is_none());
    // A session refreshed within each idle window lives to its absolute end, no longer:
    // past it a refresh ends the session too.
    let mut c = f.bound().await;
    let end = f.now() + 86_400;
    while f.now() + 3000 < end {
        f.advance(3000);
        assert_eq!(f.refresh(&mut c).await.status(), StatusCode::OK);
        assert!(f.me(&mut c.jar).await.is_some());
    }
    f.advance(3000);
    let res = f
        .browse(
            &mut c.jar,
            Request::post(REFRESH).header(SEC_SECURE_SESSION_ID, &c.id),
        )
        .await;
    let body: Value = serde_json::from_str(res.body()).unwrap();
    assert_eq!(body["continue"], false);
}

#[tokio::test]
async fn every_registration_refusal() {
    let f = fixture();
    let mut jar = Jar::default();
    let res = f.browse(&mut jar, Request::post("/login")).await;
    let (_, challenge) = registration(&res);
    let key = ProofKey::generate().unwrap();
    let claims = |v: Value| v.as_object().unwrap().clone();
    let cookie = jar.header(REGISTER, f.now()).unwrap();
    let fr = &f;
    let refused = |what: &'static str, proof: Option<String>, cookie: Option<String>| {
        let mut req = Request::post(REGISTER);
        if let Some(p) = proof {
            req = req.header(SECURE_SESSION_RESPONSE, p);
        }
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        async move {
            let res = fr.send(req).await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{what}");
            assert!(res.headers().get(SET_COOKIE).is_none(), "{what}");
        }
    };
    refused("no proof", None, Some(cookie.clone())).await;
    refused(
        "no session",
        Some(registration_proof(&key, &challenge)),
        None,
    )
    .await;
    refused(
        "no jwk",
        Some(refresh_proof(&key, &challenge)),
        Some(cookie.clone()),
    )
    .await;
    refused(
        "wrong typ",
        Some(
            key.sign("dpop+jwt", &claims(json!({"jti": challenge})))
                .unwrap(),
        ),
        Some(cookie.clone()),
    )
    .await;
    refused("garbage", Some("a.b.c".to_owned()), Some(cookie.clone())).await;
    refused(
        "an authorization the request did not carry",
        Some(
            key.sign(
                "dbsc+jwt",
                &claims(json!({"jti": challenge, "authorization": "x"})),
            )
            .unwrap(),
        ),
        Some(cookie.clone()),
    )
    .await;
    // A challenge for another session.
    let mut other = Jar::default();
    let res = f.browse(&mut other, Request::post("/login")).await;
    let (_, other_challenge) = registration(&res);
    refused(
        "another session's challenge",
        Some(registration_proof(&key, &other_challenge)),
        Some(cookie.clone()),
    )
    .await;
    // A stale challenge: refused, with a fresh registration offered.
    f.advance(301);
    let res = f
        .send(
            Request::post(REGISTER)
                .header(COOKIE, jar.header(REGISTER, f.now()).unwrap())
                .header(
                    SECURE_SESSION_RESPONSE,
                    registration_proof(&key, &challenge),
                ),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (_, fresh) = registration(&res);
    // The fresh one registers; once the bound cookie has been used, the same registration
    // replayed is refused (its unbound session is revoked; with the bound cookie, the
    // session is bound already).
    let register = |cookie: String, challenge: String| {
        f.send(Request::post(REGISTER).header(COOKIE, cookie).header(
            SECURE_SESSION_RESPONSE,
            registration_proof(&key, &challenge),
        ))
    };
    let unbound = jar.header(REGISTER, f.now()).unwrap();
    let res = register(unbound.clone(), fresh.clone()).await;
    assert_eq!(res.status(), StatusCode::OK);
    jar.apply(&res, f.now());
    assert!(f.me(&mut jar).await.is_some());
    assert_eq!(
        register(unbound, fresh.clone()).await.status(),
        StatusCode::FORBIDDEN
    );
    let bound = jar.header(REGISTER, f.now()).unwrap();
    assert_eq!(register(bound, fresh).await.status(), StatusCode::FORBIDDEN);
}

/// A handler's update, cycle or claims change of a bound session keeps it bound, moves
/// the binding cookie along (a refresh brings back the new sid, not the revoked one), and
/// never extends `exp`: only the refresh endpoint does.
#[tokio::test]
async fn cycle_keeps_the_binding_and_never_extends_exp() {
    let f = fixture();
    let mut b = f.bound().await;
    let before = f.me(&mut b.jar).await.unwrap();
    f.advance(100);
    let res = f.browse(&mut b.jar, Request::post("/cycle")).await;
    assert!(set_cookie(&res, BINDING).is_some());
    let after = f.me(&mut b.jar).await.unwrap();
    assert_ne!(after["sid"], before["sid"]);
    assert_eq!(after["exp"], before["exp"], "exp is not extended");
    assert_eq!(after["cnf"], before["cnf"]);
    f.advance(BOUND);
    assert!(f.me(&mut b.jar.clone()).await.is_none());
    let res = f.refresh(&mut b).await;
    assert_eq!(res.status(), StatusCode::OK);
    let renewed = f.me(&mut b.jar).await.unwrap();
    assert_eq!(renewed["sid"], after["sid"]);
}

#[tokio::test]
async fn a_dpop_bound_token_is_no_device_bound_cookie_and_the_reverse() {
    let clock = ManualClock::new(UnixTime::from_secs(T0));
    let layer = SessionLayer::<()>::builder(ring())
        .clock(Arc::new(clock.clone()))
        .lifetimes(lifetimes())
        .transport(Transport::Both)
        .dpop(DpopConfig::new().public_origin(format!("https://{HOST}")))
        .device_bound(DeviceBoundConfig::new())
        .build()
        .unwrap();
    let f = Fixture { layer, clock };
    let b = f.bound().await;
    let token = b.jar.get(COOKIE_NAME).unwrap().to_owned();
    // The device-bound token as DPoP, with a proof by the device key itself.
    let proof = b
        .key
        .sign(
            "dpop+jwt",
            &jwe_session_test_support::dpop::claims(
                "GET",
                &format!("https://{HOST}/me"),
                f.now(),
                Some(&token),
            ),
        )
        .unwrap();
    let res = f
        .send(
            Request::get("/me")
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", proof),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = f
        .send(Request::get("/me").header("authorization", format!("Bearer {token}")))
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_configuration_is_checked() {
    let build = |b: jwe_session::SessionLayerBuilder<()>| b.build().err();
    let base = || SessionLayer::<()>::builder(ring()).lifetimes(lifetimes());
    assert!(matches!(
        build(
            base()
                .transport(Transport::Bearer)
                .device_bound(DeviceBoundConfig::new())
        ),
        Some(ConfigError::DeviceBoundWithoutCookie)
    ));
    assert!(matches!(
        build(
            base()
                .dangerous()
                .allow_insecure_cookie()
                .done()
                .device_bound(DeviceBoundConfig::new())
        ),
        Some(ConfigError::DeviceBoundInsecure)
    ));
    for path in ["relative", "/a?b", "/a b", "/a;b"] {
        assert!(
            matches!(
                build(base().device_bound(DeviceBoundConfig::new().refresh_path(path))),
                Some(ConfigError::InvalidDeviceBoundPath { .. })
            ),
            "{path}"
        );
    }
    assert!(matches!(
        build(base().device_bound(DeviceBoundConfig::new().refresh_path(REGISTER))),
        Some(ConfigError::InvalidDeviceBoundPath { .. })
    ));
    for bound in [0, 901] {
        assert!(matches!(
            build(
                base().device_bound(
                    DeviceBoundConfig::new().bound_lifetime(Duration::from_secs(bound))
                )
            ),
            Some(ConfigError::DeviceBoundLifetime { .. })
        ));
    }
}

/// The endpoints answer JSON in the body types jwe-session can write; `Full<Bytes>` too.
#[tokio::test]
async fn the_endpoints_answer_in_a_hyper_body() {
    let f = fixture();
    let svc = f.layer.layer(service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(Response::new(
            http_body_util::Full::new(bytes::Bytes::new()),
        ))
    }));
    let res = svc
        .oneshot(
            Request::post(REFRESH)
                .header(SEC_SECURE_SESSION_ID, "x")
                .body(String::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
}
