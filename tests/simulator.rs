//! The simulated gateway driven by the unmodified `ibapi` async client over real sockets.

#[path = "simulator/common.rs"]
mod common;
#[path = "simulator/connect.rs"]
mod connect;
#[path = "simulator/contracts.rs"]
mod contracts;
#[path = "simulator/market_data.rs"]
mod market_data;
#[path = "simulator/options.rs"]
mod options;
