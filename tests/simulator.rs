//! The simulated gateway driven by the unmodified `ibapi` async client over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check here should panic

#[path = "simulator/bars.rs"]
mod bars;
#[path = "simulator/common.rs"]
mod common;
#[path = "simulator/connect.rs"]
mod connect;
#[path = "simulator/contracts.rs"]
mod contracts;
#[path = "simulator/control_plane.rs"]
mod control_plane;
#[path = "simulator/faults.rs"]
mod faults;
#[path = "simulator/hostile.rs"]
mod hostile;
#[path = "simulator/limits.rs"]
mod limits;
#[path = "simulator/market_data.rs"]
mod market_data;
#[path = "simulator/options.rs"]
mod options;
#[path = "simulator/raw.rs"]
mod raw;
#[path = "simulator/robustness.rs"]
mod robustness;
#[path = "simulator/sessions.rs"]
mod sessions;
