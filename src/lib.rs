//! ibstream: one Interactive Brokers session, served to many gRPC clients.
//!
//! The modules follow the data flow, from the gateway to the clients:
//!
//! - [`sim`]: a simulated IB Gateway speaking the TWS wire protocol, the peer of the
//!   tests and the backend of `ibstream demo`.
//! - [`ib`]: the one `ibapi` session: connect, health monitor, reconnect with backoff,
//!   circuit breaker, notices turned into status.
//! - [`fanout`]: one IB subscription per instrument, shared by every stream on it:
//!   reference counts, last-value cache, conflation, resubscription, line budget.
//! - [`greeks`]: Black-Scholes prices, Greeks and implied volatility.
//! - [`api`]: the tonic services, the auth layer, the one lifetime of server streams and
//!   the one mapping of errors to `tonic::Status`, over parts built elsewhere.
//! - [`app`]: assembles the running server: store-backed session, IB source, fan-out,
//!   contract cache, market-data settings following the active profile.
//! - [`store`], [`migrations`], [`crypto`], [`config`]: settings profiles, sealed
//!   credentials, API keys, connection history and contract cache in SQLite or
//!   PostgreSQL; layered configuration. `store` uses `crypto` and neither uses `config`.
//! - [`market_data_type`]: the kind of market data asked of IB, shared by every layer.
//! - [`metrics`]: counters and gauges shared by every layer, rendered for Prometheus.
//! - [`drill`]: the chaos drill behind `ibstream drill`: a demo in a child process, faults
//!   and hostile clients, and checks of what the server promises.
//! - [`cluster`]: nodes over NATS electing the one leader that holds the IB session.
//! - [`cli`]: the `ibstream` command line; `serve` and `demo` start [`app`].
//! - [`proto`]: code generated from `proto/`, and the codec it runs on.

pub mod api;
pub mod app;
pub mod bars;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod crypto;
pub mod drill;
pub mod fanout;
pub mod greeks;
pub mod ib;
pub mod market_data_type;
pub mod metrics;
#[path = "../migrations/mod.rs"]
pub mod migrations;
pub mod proto;
pub mod sim;
pub mod store;
