//! What the test suites of the workspace share, so no suite keeps its own copy: a fresh
//! scratch folder, deterministic keys and key rings, and the `kid` of a token (through the
//! public [`inspect`], as a tool would read it).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use jwe_session_core::{inspect, Key, KeyRing, TokenOptions};

/// A fresh, empty folder for one test, under the system's temporary folder and this
/// process's id (so parallel runs and earlier runs never share it). What a previous run of
/// the same test left there is removed first.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("jwe-session-tests-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// An A256GCM key whose bytes follow from `seed` alone: the same seed, the same key, in
/// every process (so a test can run two servers that share a ring, or a browser and a
/// server).
pub fn seeded_key(kid: &str, seed: u8) -> Key {
    let bytes: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(53).wrapping_add(seed) | 0x80)
        .collect();
    Key::from_bytes(kid, &bytes).expect("a 32-byte key")
}

/// A ring of [`seeded_key`]s, the first active.
pub fn seeded_ring(kids: &[(&str, u8)]) -> KeyRing {
    KeyRing::new(kids.iter().map(|(k, s)| seeded_key(k, *s)).collect(), None).expect("a valid ring")
}

/// The `kid` in a token's protected header, read without a key.
pub fn kid_of(token: &str) -> String {
    // Trimmed: tokens often come from a command's output, newline included.
    let info = inspect(token.trim(), &TokenOptions::new()).expect("a well-formed token");
    info.header["kid"].as_str().expect("a kid").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_rings_are_the_same_in_every_call_and_differ_by_seed() {
        let a = seeded_ring(&[("k1", 1)]);
        let b = seeded_ring(&[("k1", 1)]);
        let other = seeded_ring(&[("k1", 2)]);
        let opts = TokenOptions::new();
        let token = a.seal(&jwe_session_core::Claims::new(()), &opts).unwrap();
        assert!(b.open_bytes(token.as_str(), &opts).is_ok());
        assert!(other.open_bytes(token.as_str(), &opts).is_err());
        assert_eq!(kid_of(token.as_str()), "k1");
    }

    #[test]
    fn scratch_folders_start_empty() {
        let dir = scratch("support-self-test");
        std::fs::write(dir.join("f"), b"x").unwrap();
        let again = scratch("support-self-test");
        assert_eq!(again, dir);
        assert_eq!(std::fs::read_dir(&again).unwrap().count(), 0);
    }
}
