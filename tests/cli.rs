//! The `ibstream` binary as a user meets it: `ibstream demo` on ephemeral ports, the
//! README's grpcurl commands against it, the terminal client piped, and `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check here should panic

#[path = "support/http.rs"]
mod http;
#[path = "cli/support.rs"]
mod support;

#[path = "cli/client.rs"]
mod client;
#[path = "cli/demo.rs"]
mod demo;
#[path = "cli/grpcurl.rs"]
mod grpcurl;
