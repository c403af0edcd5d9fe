//! The tonic services, the auth layer and the one place where errors become `tonic::Status`.
//!
//! - [`server`]: assembly (services, reflection, health, layers, TLS) and shutdown.
//! - [`context`]: what every service shares ([`ServerContext`]).
//! - [`auth`]: API keys and scopes as a tower layer; [`limits`]: streams per key.
//! - [`connection`]: `ConnectionService`; [`watch`]: its status stream.
//! - [`health`]: `grpc.health.v1` following the IB session; [`trace`]: a span per RPC.
//! - [`convert`]: domain types to protobuf; [`status`]: domain errors to `tonic::Status`.

pub mod auth;
pub mod connection;
pub mod context;
pub mod convert;
pub mod health;
pub mod limits;
pub mod server;
pub mod status;
pub mod trace;
pub mod watch;

pub use auth::{Identity, KeyVerifier};
pub use context::ServerContext;
pub use limits::{StreamLimiter, StreamPermit};
pub use server::{Server, ServerHandle, ServerOptions, ServerSettings};
