//! The tonic services, the auth layer and the one place where errors become `tonic::Status`.
//!
//! - [`server`]: assembly (services, reflection, health, layers, TLS) and shutdown.
//! - [`context`]: what every service shares ([`ServerContext`]).
//! - [`auth`]: API keys and scopes as a tower layer; [`limits`]: streams per key.
//! - [`connection`]: `ConnectionService`; [`settings`]: profiles and field masks;
//!   [`watch`]: the status stream.
//! - [`health`]: `grpc.health.v1` following the IB session; [`trace`]: a span per RPC;
//!   [`deadline`]: the unary-call deadline; [`middleware`]: the tower plumbing they share.
//! - [`convert`]: domain types to protobuf; [`status`]: domain errors to `tonic::Status`.
//! - [`market_data`]: `MarketDataService`, its streams, conversions and contract cache.
//! - [`store_backend`]: the store behind the session and the auth layer.

pub mod auth;
pub mod connection;
pub mod context;
pub mod convert;
pub mod deadline;
pub mod health;
pub mod limits;
pub mod market_data;
pub mod market_data_convert;
pub mod market_data_store;
pub mod market_data_stream;
pub mod middleware;
pub mod server;
pub mod settings;
pub mod status;
pub mod store_backend;
pub mod trace;
pub mod watch;

pub use auth::{Identity, KeyVerifier};
pub use context::ServerContext;
pub use limits::{StreamLimiter, StreamPermit};
pub use server::{Server, ServerHandle, ServerOptions};
