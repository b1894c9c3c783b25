//! The demo apps of jwe-session (library `jwe_session_demo`, package
//! `jwe-session-examples`): the axum demo, whose `demo` binary is the README's first
//! command, and the tonic service. Their routers live here so the end-to-end tests and the
//! CLI's tests can start them in-process with injected keys, clock and store.
#![forbid(unsafe_code)]

pub mod demo;
pub mod grpc;
pub mod tls;

/// The README and every page of `docs/`, as doc tests: each Rust snippet a reader copies
/// is compiled (and run, unless marked `no_run`) by `cargo test`.
#[cfg(doctest)]
mod docs {
    #[doc = include_str!("../../README.md")]
    struct Readme;
    #[doc = include_str!("../../docs/guide.md")]
    struct Guide;
    #[doc = include_str!("../../docs/demo.md")]
    struct Demo;
    #[doc = include_str!("../../docs/revocation.md")]
    struct Revocation;
    #[doc = include_str!("../../docs/redis.md")]
    struct Redis;
    #[doc = include_str!("../../docs/postgres.md")]
    struct Postgres;
    #[doc = include_str!("../../docs/keys.md")]
    struct Keys;
    #[doc = include_str!("../../docs/cli.md")]
    struct Cli;
    #[doc = include_str!("../../docs/performance.md")]
    struct Performance;
    #[doc = include_str!("../../docs/security.md")]
    struct Security;
    #[doc = include_str!("../../docs/dbsc.md")]
    struct Dbsc;
    #[doc = include_str!("../../docs/devices.md")]
    struct Devices;
    #[doc = include_str!("../../docs/authjs.md")]
    struct AuthJs;
}
