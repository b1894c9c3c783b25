//! One request through a router, and what the tests read of its answer.

use axum::body::{to_bytes, Body};
use axum::http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE};
use axum::http::{Request, StatusCode};
use axum::Router;
use tower::ServiceExt;

/// A response as the tests look at it.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: String,
    pub(crate) set_cookie: Vec<String>,
    pub(crate) cache_control: Option<String>,
}

/// Sends `method path` (with `cookie` as the `Cookie` header, if any) through `app`.
pub(crate) async fn send(app: &Router, method: &str, path: &str, cookie: Option<&str>) -> Answer {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(c) = cookie {
        req = req.header(COOKIE, c);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let header = |v: &axum::http::HeaderValue| v.to_str().unwrap().to_owned();
    let status = res.status();
    let set_cookie = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(header)
        .collect();
    let cache_control = res.headers().get(CACHE_CONTROL).map(header);
    let body = to_bytes(res.into_body(), 1 << 20).await.unwrap();
    Answer {
        status,
        body: String::from_utf8(body.to_vec()).unwrap(),
        set_cookie,
        cache_control,
    }
}
