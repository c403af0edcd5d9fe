//! The simulated gateway driven by the unmodified `ibapi` async client over real sockets.

#[path = "simulator/common.rs"]
mod common;
#[path = "simulator/connect.rs"]
mod connect;
#[path = "simulator/market_data.rs"]
mod market_data;
