//! ConnectionService, the IB session, access control and the server's lifecycle, against
//! the simulated gateway over real sockets with real tonic clients.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check here should panic

#[path = "connection/harness.rs"]
mod harness;
#[path = "support/server.rs"]
mod support;

#[path = "connection/access.rs"]
mod access;
#[path = "connection/cli.rs"]
mod cli;
#[path = "connection/grpcurl.rs"]
mod grpcurl;
#[path = "connection/lifecycle.rs"]
mod lifecycle;
#[path = "connection/notices.rs"]
mod notices;
#[path = "connection/secrets.rs"]
mod secrets;
#[path = "connection/session.rs"]
mod session;
#[path = "connection/settings.rs"]
mod settings;
#[path = "connection/streams.rs"]
mod streams;
#[path = "connection/test_connection.rs"]
mod test_connection;
#[path = "connection/tls.rs"]
mod tls;
