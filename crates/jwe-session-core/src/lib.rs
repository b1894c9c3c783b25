//! Confidential session tokens: claims sealed into compact JWE (RFC 7516, `alg: "dir"`,
//! AES-GCM), opened strictly, validated against an injected clock, and checked against a
//! revocation store that answers from memory.
//!
//! This crate has no HTTP in it; `jwe-session` builds the tower layer on top.
//!
//! # Quick start
//!
//! ```
//! use std::time::Duration;
//! use jwe_session_core::{Claims, KeyRing, Lifetimes, TokenOptions, UnixTime, Validation};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct App { roles: Vec<String> }
//!
//! // In production: KeyRing::from_env() reads a JWK Set from JWE_SESSION_KEYS.
//! let ring = KeyRing::generate();
//! let opts = TokenOptions::new().with_purpose("my-app");
//! let now = UnixTime::from_secs(1_800_000_000);
//!
//! let mut claims = Claims::new(App { roles: vec!["admin".into()] });
//! Lifetimes::default().start(&mut claims, "alice", now);
//! let token = ring.seal(&claims, &opts)?;
//!
//! let opened = ring.open::<Claims<App>>(token.as_str(), &opts)?;
//! Validation::new().validate_at(opened.payload(), now)?;
//! assert_eq!(opened.payload().sub.as_deref(), Some("alice"));
//! assert!(!opened.needs_reseal());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What is here
//!
//! - [`Key`], [`KeyRing`], [`KeyRingHandle`]: `oct` JWKs, JWK Sets from a string, file,
//!   environment variable or serde config, rotation by config, a swappable ring.
//! - [`KeyRing::seal`] / [`KeyRing::open`] (claims) and [`KeyRing::seal_bytes`] /
//!   [`KeyRing::open_bytes`] (any payload), with [`TokenOptions`] for the size limit and
//!   purpose binding.
//! - [`Claims`], [`Validation`], [`Lifetimes`]: registered claims plus `sid`/`auth_time`/`started_us`
//!   plus yours; `exp`/`nbf`/leeway/`iss`/`aud`/required/absolute lifetime; the three
//!   session clocks.
//! - [`RevocationStore`], [`MemoryStore`]: logout, logout everywhere, emergency.
//! - [`KeyRing::from_authjs_secrets`], [`KeyRing::from_nextauth_secret`], [`AuthJsClaims`],
//!   [`join_authjs_chunks`]: Auth.js / NextAuth session cookies (`A256CBC-HS512` or
//!   `A256GCM` under an HKDF-derived key), opened as strictly as this crate's own.
//! - [`Clock`], [`ManualClock`]: every time-dependent call has an `_at(now)` form.
//!
//! # Security model
//!
//! **What a token protects.** The claims are encrypted and authenticated with AES-GCM under
//! a key only the servers hold. Without the key nobody can read them, change a single bit
//! of the token (header included: it is the AAD), or mint one. A token is bound to its
//! purpose (`typ` in the authenticated header), so a token from one app or cookie does not
//! open as another even under the same keys. The key, never the token, chooses the
//! algorithm: `alg` must be `dir` and `enc` must match the key's length.
//!
//! **What it does not protect.**
//! - *No forward secrecy.* Anyone who later obtains a key can read every token it ever
//!   sealed that they recorded. Rotate keys, and drop old ones once their tokens are dead.
//! - *A token is a bearer credential.* Whoever holds it is the user until it expires or is
//!   revoked; keep it in `HttpOnly`, `Secure` cookies and out of logs ([`SessionToken`]'s
//!   `Debug` prints only its length).
//! - *Revocation latency.* A token is trusted without lookup until `exp` (15 minutes by
//!   default) against the local revocation view; with a shared store, an instance that
//!   missed an update learns of it at the latest when the token is renewed.
//! - *Length is visible.* Encryption hides content, not size.
//! - *Replays within the lifetime* are not detected: `jti` is fresh per token, but no
//!   server remembers which were used.
//!
//! **IV budget.** Each token gets a random 96-bit IV. The chance of two tokens under one
//! key sharing an IV must stay below 2^-32, which limits a key to 2^32 tokens
//! (NIST SP 800-38D §8.3, RFC 7518 §8.4). Each [`Key`] counts its seals
//! ([`Key::seal_count`]), logs a warning from 2^30 on, and refuses to seal past 2^32
//! ([`SealError::KeyExhausted`]). The layer re-seals only when something changed, so the
//! count is about logins plus renewals. At 1,000 seals per second, 2^30 is reached in
//! 12 days: **rotate monthly** for ordinary services, and weekly above ~500 seals per
//! second. Rotation resets the budget, because the new key starts at zero. Counts are per
//! process; a fleet of N instances seals N times as fast, so plan the cadence for the fleet.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod authjs;
mod b64;
mod cbc_hs;
mod claims;
mod error;
mod header;
mod json;
mod jwe;
mod key;
#[cfg(feature = "watch")]
mod key_file;
mod lifetimes;
mod names;
mod proof;
mod revocation;
mod ring;
mod time;
mod validation;

pub use authjs::{
    is_authjs_cookie, join_authjs_chunks, split_authjs_token, AuthJsClaims, AuthJsVersion,
    ChunkError, AUTHJS_CLOCK_TOLERANCE, AUTHJS_MAX_CHUNKS,
};
pub use claims::{random_id, Audience, Claims, Confirmation, DeviceKey};
pub use error::{
    debug_report, BoxError, CheckError, ClaimsTypeError, InvalidRevocation, KeyError, OpenError,
    Recorded, RevokeError, SealError, Segment, ValidationError, WatchUnsupported,
};
pub use jwe::{
    inspect, parse_claims, Opened, SessionToken, TokenInfo, TokenOptions, DEFAULT_MAX_TOKEN_LEN,
};
pub use key::{Key, SEAL_LIMIT, SEAL_WARN_AT};
#[cfg(feature = "watch")]
pub use key_file::{KeyFileWatchMode, KeyFileWatchOptions, KeyFileWatcher, DEFAULT_KEY_FILE_POLL};
pub use lifetimes::{Lifetimes, SessionLifetimes, Stage, REVOCATION_GRACE};
pub use names::{Claim, Enc};
pub use proof::{
    access_token_hash, check_dbsc_refresh, check_dbsc_registration, check_dpop, jwk_thumbprint,
    normalize_htu, verify_proof, verify_proof_by, DbscError, DbscProof, DpopError, DpopProof,
    DpopRequest, Proof, ProofAlg, ProofError, ProofKey, ProofKeyError, ProofOptions, ProofPart,
    PublicJwk, DBSC_TYP, DEFAULT_MAX_PROOF_LEN, DPOP_TYP, MAX_CHALLENGE_LEN, MAX_JTI_LEN,
};
pub use revocation::{
    Binding, BoxFuture, DurableJournal, Journal, Lost, MemoryRegistry, MemoryStore, RegistryError,
    Resync, Revocation, RevocationKey, RevocationQueue, RevocationStore, RevocationWatch, Revoked,
    Scope, SessionIds, SessionRecord, SessionRegistry, WatchEnd, MAX_LABEL_LEN, MAX_NETWORK_LEN,
};
pub use ring::{KeyRing, KeyRingHandle, DEFAULT_KEYS_ENV};
pub use time::{Clock, ManualClock, SystemClock, UnixMicros, UnixTime};
pub use validation::Validation;
