//! Example apps for jwe-session. The `demo` binary is the README's first command; its
//! router lives here so the end-to-end tests can start it with injected keys and clock.
#![forbid(unsafe_code)]

pub mod demo;
pub mod grpc;
