//! What a newcomer sees when an app fails to start: `fn main() -> Result<(), Box<dyn
//! Error>>` prints the error's `Debug`. Every error met at start-up (file store, Redis
//! store, layer configuration, keys) must read as a sentence that says what to do, never
//! as a struct.

use std::error::Error;

use jwe_session::SessionLayer;
use jwe_session_core::{KeyError, KeyRing};
use jwe_session_file::FileStore;
use jwe_session_test_support::scratch;

/// What `?` in `main` prints, less its `Error: `.
fn printed(e: impl Error + 'static) -> String {
    let boxed: Box<dyn Error> = Box::new(e);
    format!("{boxed:?}")
}

fn reads_as_a_sentence(text: &str, says: &str) {
    assert!(text.contains(says), "{text}");
    for shape in [" { ", "Some(", "Custom {", "kind: "] {
        assert!(!text.contains(shape), "a struct, not a sentence: {text}");
    }
}

#[test]
fn file_store_errors_read_as_sentences() {
    let dir = scratch("file");
    let path = dir.join("revocations.redb");
    let held = FileStore::open(&path).unwrap();
    let text = printed(FileStore::open(&path).unwrap_err());
    reads_as_a_sentence(&text, "is open in another process");
    assert!(text.contains("revocations.redb"), "{text}");
    drop(held);

    let damaged = dir.join("damaged.redb");
    std::fs::write(&damaged, vec![7u8; 8192]).unwrap();
    let text = printed(FileStore::open(&damaged).unwrap_err());
    reads_as_a_sentence(&text, "is damaged or not a revocation store");

    let missing_dir = dir.join("no-such-folder").join("revocations.redb");
    let text = printed(FileStore::open(&missing_dir).unwrap_err());
    reads_as_a_sentence(&text, "could not be created or read");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn redis_store_errors_read_as_sentences() {
    let port = jwe_session_tests::free_port();
    let e = jwe_session_redis::RedisStore::builder(format!("redis://127.0.0.1:{port}/"))
        .timeout(std::time::Duration::from_secs(2))
        .connect()
        .await
        .unwrap_err();
    let text = printed(e);
    reads_as_a_sentence(
        &text,
        &format!("could not connect to Redis at 127.0.0.1:{port}"),
    );

    let e = jwe_session_redis::RedisStore::builder("localhost:6379")
        .connect()
        .await
        .unwrap_err();
    let text = printed(e);
    reads_as_a_sentence(&text, "the Redis URL did not parse: use redis://");

    // A password in the URL is never printed.
    let e = jwe_session_redis::RedisStore::builder(format!(
        "redis://app:hunter2hunter2@127.0.0.1:{port}/"
    ))
    .timeout(std::time::Duration::from_secs(2))
    .connect()
    .await
    .unwrap_err();
    let text = printed(e);
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn layer_configuration_errors_read_as_sentences() {
    let e = SessionLayer::<()>::builder(KeyRing::generate())
        .cookie_name("my session")
        .build()
        .unwrap_err();
    let text = printed(e);
    reads_as_a_sentence(&text, "cookie name \"my session\" is not allowed");
    assert!(text.ends_with("(ConfigError::InvalidCookieName)"), "{text}");
}

#[test]
fn key_errors_name_the_next_step() {
    let text = printed(KeyError::EnvMissing {
        var: "JWE_SESSION_KEYS".into(),
    });
    reads_as_a_sentence(&text, "jwe-session keygen --set");
    let jwk = r#"{"kty":"oct","kid":"k1","k":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}"#;
    let text = printed(KeyRing::from_jwks(jwk).unwrap_err());
    reads_as_a_sentence(&text, "not a JWK Set");
    let text = printed(
        KeyRing::from_jwks(r#"{"keys":[{"kty":"oct","kid":"k1","k":"my secret password!"}]}"#)
            .unwrap_err(),
    );
    reads_as_a_sentence(&text, "looks like a password");
}
