//! Revocation without a lookup per request: logout (one session), logout everywhere (one
//! subject's sessions begun at or before a moment), and emergency (everyone's); and claims
//! refresh (one subject's tokens issued at or before a moment go through renewal).
//!
//! A session can be watched ([`RevocationStore::watch`]): a [`RevocationWatch`]
//! completes when a revocation that ends it reaches the store's memory, so a long-lived
//! connection (a WebSocket, a gRPC stream) closes when its session is revoked.
//!
//! # One rule for "begun before"
//!
//! A subject or global revocation made at moment `M` ends every session that began at or
//! before `M` and no session that begins after it. Both moments are microseconds
//! ([`UnixMicros`]): a session's start is its `started_us` claim (else the first microsecond
//! of its `auth_time` second, for tokens sealed before commit d92def7), and the layer stamps session starts
//! and revocations from one strictly increasing source, so a login right after "log out
//! everywhere" is never caught by it, even within the same microsecond of the clock.

mod memory;
mod model;
mod queue;
mod registry;
mod store;
mod watch;

pub use memory::MemoryStore;
pub use model::{Revocation, RevocationKey, Revoked, Scope, SessionIds};
pub use queue::{DurableJournal, Journal, Lost, Resync, RevocationQueue};
pub use registry::{
    Binding, MemoryRegistry, RegistryError, SessionRecord, SessionRegistry, MAX_LABEL_LEN,
    MAX_NETWORK_LEN,
};
pub use store::{BoxFuture, RevocationStore};
pub use watch::{RevocationWatch, WatchEnd};
