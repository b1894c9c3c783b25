//! End-to-end tests across the jwe-session crates: one binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod authjs;
mod browser;
mod file;
mod grpc;
mod http;
mod interop;
mod postgres;
mod redis;
mod startup;
mod store_suite;
mod structure;
