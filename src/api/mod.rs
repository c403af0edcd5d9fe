//! The tonic services, the auth layer and the one place where errors become
//! `tonic::Status`. The services receive parts already built by [`crate::app`].
//!
//! - [`server`]: serving (reflection, health, layers, TLS) and shutdown.
//! - [`context`]: what `ConnectionService` shares ([`ServerContext`]).
//! - [`auth`]: API keys and scopes as a tower layer; [`limits`]: streams per key.
//! - [`lifetime`]: the one lifetime of every server stream (permit, gauge, shutdown,
//!   revocation); [`revocation`]: one check per key and period for all its streams.
//! - [`connection`]: `ConnectionService`; [`requests`]: its requests, checked;
//!   [`settings`]: profiles and field masks; [`watch`]: the status stream's data.
//! - [`market_data`]: `MarketDataService`, its streams and conversions.
//! - [`health`]: `grpc.health.v1` following the IB session; [`trace`]: a span per RPC;
//!   [`deadline`]: the unary-call deadline; [`middleware`]: the tower plumbing they share.
//! - [`web`]: the web console on the same port (gRPC-web, assets, allowed origins).
//! - [`convert`]: session domain types to protobuf; [`status`]: domain errors to
//!   `tonic::Status`, and the one validation error.

pub mod auth;
pub mod connection;
pub mod context;
pub mod convert;
pub mod deadline;
pub mod health;
pub mod lifetime;
pub mod limits;
pub mod market_data;
pub mod middleware;
pub mod missing_message;
pub mod requests;
pub mod revocation;
pub mod server;
pub mod settings;
pub mod status;
pub mod trace;
pub mod watch;
pub mod web;

pub use auth::{Identity, KeyVerifier};
pub use context::ServerContext;
pub use lifetime::{StreamGate, StreamGuard};
pub use limits::{Quota, StreamLimiter, StreamPermit};
pub use server::{Server, ServerHandle, ServerParts};
