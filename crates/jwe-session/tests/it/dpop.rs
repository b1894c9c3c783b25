//! DPoP through the layer (RFC 9449): logins that bind, every request's proof checked, each
//! refusal answered by the layer with the right challenge and never reaching the handler,
//! no downgrade to `Bearer`, renewal that keeps the key, nonces, the token cache.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::{AUTHORIZATION, COOKIE, SET_COOKIE, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use jwe_session::core::TokenOptions;
use jwe_session::{
    Claims, DpopConfig, KeyRing, Lifetimes, ManualClock, ProofKey, SessionHandle, SessionLayer,
    StartError, Transport, UnixTime,
};
use jwe_session_test_support::dpop::{self, forgeries};
use serde_json::{Map, Value};
use tower::{service_fn, Layer, ServiceExt};

const T0: u64 = 1_800_000_000;
const ORIGIN: &str = "https://api.example.com";

struct Fixture {
    layer: SessionLayer<()>,
    clock: ManualClock,
    /// How many requests reached the handler.
    reached: Arc<AtomicUsize>,
}

fn ring() -> KeyRing {
    jwe_session_test_support::seeded_ring(&[("d1", 7)])
}

fn fixture_with(transport: Transport, config: DpopConfig) -> Fixture {
    let clock = ManualClock::new(UnixTime::from_secs(T0));
    let layer = SessionLayer::builder(ring())
        .clock(Arc::new(clock.clone()))
        .transport(transport)
        .lifetimes(Lifetimes::new(
            Duration::from_secs(300),
            Duration::from_secs(3600),
            Duration::from_secs(86_400),
        ))
        .dpop(config)
        .build()
        .unwrap();
    Fixture {
        layer,
        clock,
        reached: Arc::new(AtomicUsize::new(0)),
    }
}

fn fixture() -> Fixture {
    fixture_with(Transport::Bearer, DpopConfig::new().public_origin(ORIGIN))
}

async fn handler(req: Request<String>) -> Result<Response<String>, Infallible> {
    let handle = req
        .extensions()
        .get::<SessionHandle<()>>()
        .cloned()
        .unwrap();
    let (status, body) = match req.uri().path() {
        "/login" => match handle.issue("alice", ()) {
            Ok(t) => (
                StatusCode::OK,
                format!("{} {}", t.token_type().as_str(), t.token()),
            ),
            Err(StartError::DpopProof(e)) => (StatusCode::BAD_REQUEST, e.error_code().to_owned()),
            Err(StartError::DpopRequired) => (StatusCode::BAD_REQUEST, "required".to_owned()),
            Err(e) => panic!("{e}"),
        },
        "/cycle" => {
            handle.cycle().await.unwrap();
            (StatusCode::OK, String::new())
        }
        "/others" => {
            handle.end_others().await.unwrap();
            (StatusCode::OK, String::new())
        }
        // `()` has nothing to change: an update still re-seals the session.
        "/update" => {
            handle.update(|_| {}).unwrap();
            (StatusCode::OK, String::new())
        }
        _ => match handle.claims() {
            Some(c) => (
                StatusCode::OK,
                format!(
                    "{} {}",
                    c.sub.unwrap(),
                    c.cnf.map(|c| c.jkt).unwrap_or_default()
                ),
            ),
            None => (StatusCode::UNAUTHORIZED, "no session".to_owned()),
        },
    };
    let mut res = Response::new(body);
    *res.status_mut() = status;
    Ok(res)
}

impl Fixture {
    fn now(&self) -> u64 {
        use jwe_session::Clock as _;
        self.clock.now().as_secs()
    }

    /// The claims of a right proof for `method` `path`, naming `token`.
    fn claims(&self, method: &str, path: &str, token: Option<&str>) -> Map<String, Value> {
        dpop::claims(method, &format!("{ORIGIN}{path}"), self.now(), token)
    }

    fn proof(&self, key: &ProofKey, method: &str, path: &str, token: Option<&str>) -> String {
        key.sign("dpop+jwt", &self.claims(method, path, token))
            .unwrap()
    }

    async fn send(&self, req: http::request::Builder) -> Response<String> {
        let reached = Arc::clone(&self.reached);
        let svc = self.layer.layer(service_fn(move |req| {
            reached.fetch_add(1, Ordering::SeqCst);
            handler(req)
        }));
        svc.oneshot(req.body(String::new()).unwrap()).await.unwrap()
    }

    /// Logs in with a proof by `key`: the bound token.
    async fn login(&self, key: &ProofKey) -> String {
        let res = self
            .send(Request::post("/login").header("dpop", self.proof(key, "POST", "/login", None)))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let body = res.into_body();
        let (kind, token) = body.split_once(' ').unwrap();
        assert_eq!(kind, "DPoP");
        token.to_owned()
    }

    /// `GET /me` with `Authorization: DPoP` and a right proof by `key`.
    async fn me(&self, key: &ProofKey, token: &str) -> Response<String> {
        self.send(
            Request::get("/me")
                .header(AUTHORIZATION, format!("DPoP {token}"))
                .header("dpop", self.proof(key, "GET", "/me", Some(token))),
        )
        .await
    }

    fn claims_of(&self, token: &str) -> Claims<()> {
        let opts = TokenOptions::new().with_purpose(self.layer.purpose());
        self.layer
            .key_ring()
            .load()
            .open::<Claims<()>>(token, &opts)
            .unwrap()
            .into_payload()
    }
}

fn challenge(res: &Response<String>) -> String {
    res.headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// A refusal by the layer: `401`, the DPoP challenge with this error, no handler.
#[track_caller]
fn assert_refused(f: &Fixture, res: &Response<String>, error: &str, reached_before: usize) {
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let c = challenge(res);
    assert!(c.starts_with(r#"DPoP algs="ES256""#), "{c}");
    assert!(c.contains(&format!(r#"error="{error}""#)), "{c}");
    assert_eq!(
        f.reached.load(Ordering::SeqCst),
        reached_before,
        "the handler saw the request"
    );
}

#[tokio::test]
async fn a_login_with_a_proof_binds_and_the_key_is_then_required() {
    let f = fixture();
    let key = ProofKey::generate().unwrap();
    let token = f.login(&key).await;
    assert_eq!(f.claims_of(&token).cnf.unwrap().jkt, key.thumbprint());
    let res = f.me(&key, &token).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.body(), &format!("alice {}", key.thumbprint()));

    // Without a proof the login is an ordinary bearer one.
    let res = f.send(Request::post("/login")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.into_body();
    let (kind, bearer) = body.split_once(' ').unwrap();
    assert_eq!(kind, "Bearer");
    assert_eq!(f.claims_of(bearer).cnf, None);
    let res = f
        .send(Request::get("/me").header(AUTHORIZATION, format!("Bearer {bearer}")))
        .await;
    assert_eq!(res.body(), "alice ");
}

#[tokio::test]
async fn a_login_with_a_bad_proof_is_refused_never_unbound() {
    let f = fixture();
    let key = ProofKey::generate().unwrap();
    let bad = [
        f.proof(&key, "GET", "/login", None),
        f.proof(&key, "POST", "/other", None),
        "garbage".to_owned(),
    ];
    for proof in bad {
        let res = f.send(Request::post("/login").header("dpop", proof)).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(res.body(), "invalid_dpop_proof");
        assert!(res.headers().get("x-session-token").is_none());
    }
    // A proof used for one login cannot log in again.
    let proof = f.proof(&key, "POST", "/login", None);
    let first = f.send(Request::post("/login").header("dpop", &proof)).await;
    assert_eq!(first.status(), StatusCode::OK);
    let again = f.send(Request::post("/login").header("dpop", &proof)).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn binding_can_be_required() {
    let f = fixture_with(
        Transport::Bearer,
        DpopConfig::new().public_origin(ORIGIN).require_binding(),
    );
    let res = f.send(Request::post("/login")).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.body(), "required");
    let key = ProofKey::generate().unwrap();
    f.login(&key).await;
}

/// Each way a DPoP request can be wrong, alone, against a right token: refused by the
/// layer, the handler never reached.
#[tokio::test]
async fn every_bad_proof_is_refused_by_the_layer() {
    let f = fixture();
    let key = ProofKey::generate().unwrap();
    let token = f.login(&key).await;
    let auth = format!("DPoP {token}");
    let htu = format!("{ORIGIN}/me");
    for (what, proofs) in forgeries(&key, "GET", &htu, f.now(), &token) {
        let before = f.reached.load(Ordering::SeqCst);
        let mut req = Request::get("/me").header(AUTHORIZATION, &auth);
        for p in &proofs {
            req = req.header("dpop", p);
        }
        let res = f.send(req).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_refused(&f, &res, "invalid_dpop_proof", before);
    }
    // The window's own edges: 60 s back and 5 s ahead are inside it, one more is not.
    for (iat, ok) in [
        (f.now() - 60, true),
        (f.now() + 5, true),
        (f.now() - 61, false),
        (f.now() + 6, false),
    ] {
        let c = dpop::claims("GET", &htu, iat, Some(&token));
        let req = Request::get("/me")
            .header(AUTHORIZATION, &auth)
            .header("dpop", key.sign("dpop+jwt", &c).unwrap());
        let res = f.send(req).await;
        assert_eq!(res.status() == StatusCode::OK, ok, "iat {iat}");
    }
    // The right proof still works, once.
    let proof = f.proof(&key, "GET", "/me", Some(&token));
    let req = || {
        Request::get("/me")
            .header(AUTHORIZATION, &auth)
            .header("dpop", &proof)
    };
    assert_eq!(f.send(req()).await.status(), StatusCode::OK);
    let before = f.reached.load(Ordering::SeqCst);
    let replay = f.send(req()).await;
    assert_refused(&f, &replay, "invalid_dpop_proof", before);
    assert!(challenge(&replay).contains("replayed"));
}

#[tokio::test]
async fn a_bound_token_is_never_a_bearer_token() {
    let f = fixture();
    let key = ProofKey::generate().unwrap();
    let token = f.login(&key).await;
    for with_proof in [false, true] {
        let before = f.reached.load(Ordering::SeqCst);
        let mut req = Request::get("/me").header(AUTHORIZATION, format!("Bearer {token}"));
        if with_proof {
            req = req.header("dpop", f.proof(&key, "GET", "/me", Some(&token)));
        }
        let res = f.send(req).await;
        assert_refused(&f, &res, "invalid_token", before);
    }
    // And an unbound token is not a DPoP one.
    let res = f.send(Request::post("/login")).await;
    let body = res.into_body();
    let bearer = body.split_once(' ').unwrap().1.to_owned();
    let before = f.reached.load(Ordering::SeqCst);
    let res = f.me(&key, &bearer).await;
    assert_refused(&f, &res, "invalid_token", before);
}

#[tokio::test]
async fn a_bound_token_in_a_cookie_is_refused_and_cleared() {
    let f = fixture_with(Transport::Both, DpopConfig::new().public_origin(ORIGIN));
    let key = ProofKey::generate().unwrap();
    let token = f.login(&key).await;
    // A login that binds writes no cookie.
    let res = f
        .send(Request::post("/login").header("dpop", f.proof(&key, "POST", "/login", None)))
        .await;
    assert!(res.headers().get(SET_COOKIE).is_none());
    let res = f
        .send(Request::get("/me").header(COOKIE, format!("__Host-session={token}")))
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.body(), "no session");
    assert!(res.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
}

#[tokio::test]
async fn renewal_needs_the_proof_and_keeps_the_key() {
    let f = fixture();
    let key = ProofKey::generate().unwrap();
    let token = f.login(&key).await;
    let before = f.claims_of(&token);
    f.clock.set(UnixTime::from_secs(T0 + 301));
    let res = f.me(&key, &token).await;
    assert_eq!(res.status(), StatusCode::OK);
    let renewed = res.headers()["x-session-token"]
        .to_str()
        .unwrap()
        .to_owned();
    let after = f.claims_of(&renewed);
    assert!(after.exp > before.exp);
    assert_eq!(after.cnf, before.cnf);
    assert_eq!(after.sid, before.sid);
    assert_eq!(f.me(&key, &renewed).await.status(), StatusCode::OK);
    // A thief with the old token and another key gets nothing, renewal or not.
    let thief = ProofKey::generate().unwrap();
    let before = f.reached.load(Ordering::SeqCst);
    assert_refused(
        &f,
        &f.me(&thief, &token).await,
        "invalid_dpop_proof",
        before,
    );
}

#[tokio::test]
async fn update_cycle_and_end_others_keep_the_binding() {
    let f = fixture();
    let key = ProofKey::generate().unwrap();
    let mut token = f.login(&key).await;
    for path in ["/update", "/cycle", "/others"] {
        let res = f
            .send(
                Request::post(path)
                    .header(AUTHORIZATION, format!("DPoP {token}"))
                    .header("dpop", f.proof(&key, "POST", path, Some(&token))),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let next = res.headers()["x-session-token"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            f.claims_of(&next).cnf.unwrap().jkt,
            key.thumbprint(),
            "{path}"
        );
        assert_eq!(f.me(&key, &next).await.status(), StatusCode::OK);
        token = next;
    }
}

#[tokio::test]
async fn a_cached_opening_never_skips_the_proof() {
    let f = fixture();
    let key = ProofKey::generate().unwrap();
    let token = f.login(&key).await;
    assert_eq!(f.me(&key, &token).await.status(), StatusCode::OK);
    assert_eq!(f.me(&key, &token).await.status(), StatusCode::OK);
    let thief = ProofKey::generate().unwrap();
    let before = f.reached.load(Ordering::SeqCst);
    assert_refused(
        &f,
        &f.me(&thief, &token).await,
        "invalid_dpop_proof",
        before,
    );
    let before = f.reached.load(Ordering::SeqCst);
    let res = f
        .send(Request::get("/me").header(AUTHORIZATION, format!("DPoP {token}")))
        .await;
    assert_refused(&f, &res, "invalid_dpop_proof", before);
}

#[tokio::test]
async fn server_nonces_are_demanded_issued_and_expire() {
    let f = fixture_with(
        Transport::Bearer,
        DpopConfig::new()
            .public_origin(ORIGIN)
            .nonces(Duration::from_secs(120)),
    );
    let key = ProofKey::generate().unwrap();
    // A login without a nonce: refused, with one to use.
    let res = f
        .send(Request::post("/login").header("dpop", f.proof(&key, "POST", "/login", None)))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.body(), "use_dpop_nonce");
    let nonce = res.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let with_nonce = |f: &Fixture, method: &str, path: &str, token: Option<&str>, nonce: &str| {
        let mut c = f.claims(method, path, token);
        c.insert("nonce".into(), nonce.into());
        key.sign("dpop+jwt", &c).unwrap()
    };
    let res = f
        .send(
            Request::post("/login").header("dpop", with_nonce(&f, "POST", "/login", None, &nonce)),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let token = res.into_body().split_once(' ').unwrap().1.to_owned();
    let me = |f: &Fixture, nonce: &str| {
        Request::get("/me")
            .header(AUTHORIZATION, format!("DPoP {token}"))
            .header("dpop", with_nonce(f, "GET", "/me", Some(&token), nonce))
    };
    assert_eq!(f.send(me(&f, &nonce)).await.status(), StatusCode::OK);
    // Past half its life it still works, and a fresh one comes with the answer.
    f.clock.set(UnixTime::from_secs(T0 + 61));
    let res = f.send(me(&f, &nonce)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let fresh = res.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    // Past its life: `use_dpop_nonce`, with a new one.
    f.clock.set(UnixTime::from_secs(T0 + 121));
    let before = f.reached.load(Ordering::SeqCst);
    let res = f.send(me(&f, &nonce)).await;
    assert_refused(&f, &res, "use_dpop_nonce", before);
    assert!(res.headers().contains_key("dpop-nonce"));
    assert_eq!(f.send(me(&f, &fresh)).await.status(), StatusCode::OK);
    // A nonce that is not ours (or garbage) is no nonce.
    let before = f.reached.load(Ordering::SeqCst);
    assert_refused(
        &f,
        &f.send(me(&f, "made-up")).await,
        "use_dpop_nonce",
        before,
    );
}

#[tokio::test]
async fn without_a_public_origin_the_request_names_its_own() {
    let f = fixture_with(Transport::Bearer, DpopConfig::new());
    let key = ProofKey::generate().unwrap();
    let mut c = f.claims("POST", "/login", None);
    c.insert("htu".into(), "https://API.example.com:443/login".into());
    let res = f
        .send(
            Request::post("/login")
                .header("host", "api.example.com")
                .header("dpop", key.sign("dpop+jwt", &c).unwrap()),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // Over plain HTTP the scheme is `http`.
    let f = fixture_with(Transport::Bearer, DpopConfig::new().plain_http());
    let mut c = f.claims("POST", "/login", None);
    c.insert("htu".into(), "http://127.0.0.1:8080/login".into());
    let res = f
        .send(
            Request::post("/login")
                .header("host", "127.0.0.1:8080")
                .header("dpop", key.sign("dpop+jwt", &c).unwrap()),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    c.insert("jti".into(), "other".into());
    let res = f
        .send(
            Request::post("/login")
                .header("host", "127.0.0.1:9090")
                .header("dpop", key.sign("dpop+jwt", &c).unwrap()),
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn dpop_needs_the_bearer_transport_and_a_valid_origin() {
    let build = |t, c| {
        SessionLayer::<()>::builder(ring())
            .transport(t)
            .dpop(c)
            .build()
    };
    assert!(matches!(
        build(Transport::Cookie, DpopConfig::new()),
        Err(jwe_session::ConfigError::DpopWithoutBearer)
    ));
    assert!(matches!(
        build(
            Transport::Bearer,
            DpopConfig::new().public_origin("https://a.example/x")
        ),
        Err(jwe_session::ConfigError::InvalidDpopOrigin { .. })
    ));
    assert!(build(Transport::Both, DpopConfig::new()).is_ok());
}

/// The client side: `BearerLayer` with a DPoP key logs in bound, proves every request,
/// takes the server's nonces and sends an empty-bodied request once more when the server
/// asks for a new nonce.
#[tokio::test]
async fn the_client_layer_proves_every_request_and_follows_nonces() {
    use jwe_session::client::{BearerLayer, DpopSigner, TokenCell};
    let f = fixture_with(
        Transport::Bearer,
        DpopConfig::new()
            .public_origin(ORIGIN)
            .nonces(Duration::from_secs(120)),
    );
    let key = ProofKey::generate().unwrap();
    let thumbprint = key.thumbprint().to_owned();
    let signer = DpopSigner::new(key)
        .origin(ORIGIN)
        .clock(Arc::new(f.clock.clone()));
    let cell = TokenCell::new();
    let reached = Arc::clone(&f.reached);
    let client = tower::ServiceBuilder::new()
        .layer(BearerLayer::new(cell.clone()).dpop(signer.clone()))
        .layer(f.layer.clone())
        .service(service_fn(move |req| {
            reached.fetch_add(1, Ordering::SeqCst);
            handler(req)
        }));
    let send = |method: &str, path: &str| {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(String::new())
            .unwrap();
        client.clone().oneshot(req)
    };
    // The login's first proof has no nonce: 400 with one, sent again with it.
    let res = send("POST", "/login").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{}", res.body());
    assert_eq!(f.reached.load(Ordering::SeqCst), 2, "one retry");
    let token = cell.get().unwrap();
    assert_eq!(f.claims_of(&token).cnf.unwrap().jkt, thumbprint);
    let res = send("GET", "/me").await.unwrap();
    assert_eq!(res.body(), &format!("alice {thumbprint}"));
    assert_eq!(f.reached.load(Ordering::SeqCst), 3);
    // The nonce runs out: the layer answers 401 `use_dpop_nonce`, the client retries.
    f.clock.set(UnixTime::from_secs(T0 + 200));
    let res = send("GET", "/me").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        f.reached.load(Ordering::SeqCst),
        4,
        "the refusal never reached it"
    );
    // A request with a body is not sent twice: its 401 comes back, the nonce is kept.
    f.clock.set(UnixTime::from_secs(T0 + 400));
    let req = Request::post("/me").body("payload".to_owned()).unwrap();
    let res = client.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&res).contains("use_dpop_nonce"));
    let req = Request::post("/me").body("payload".to_owned()).unwrap();
    let res = client.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(signer.nonce().is_some());
}
