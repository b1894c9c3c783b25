//! The crate's tests through its public API, in one binary (one link instead of six; each
//! module says what it covers).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod authjs;
mod dbsc;
mod devices;
mod dpop;
mod http;
mod layer;
mod lazy;

mod live;
mod missing_layer;
mod newcomer;
mod readme;
mod token_cache;
