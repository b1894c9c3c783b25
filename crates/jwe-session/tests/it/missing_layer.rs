//! A `Session<T>` extractor on a router without the layer answers 500 with a clear body;
//! the log must say so too, once, at ERROR ("once" is per process: this is the only test of
//! the binary that runs an extractor without the layer).
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use jwe_session::{KeyRing, Session, SessionLayer};
use tower::ServiceExt;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn me(session: Session<()>) -> String {
    session.sub().to_owned()
}

#[tokio::test(flavor = "current_thread")]
async fn an_extractor_without_the_layer_is_logged_once_at_error() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let bare = Router::new().route("/me", get(me));
    for _ in 0..3 {
        let res = bare
            .clone()
            .oneshot(Request::get("/me").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert_eq!(log.matches("ERROR").count(), 1, "{log}");
    assert!(log.contains("without a SessionLayer"), "{log}");
}

/// `.dangerous()` options build without `.done()`.
#[test]
fn dangerous_options_build_directly() {
    let layer = SessionLayer::<()>::builder(KeyRing::generate())
        .dangerous()
        .local_development(true)
        .build()
        .unwrap();
    assert_eq!(layer.cookie_name(), "session");
}
