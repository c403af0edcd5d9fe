//! `MarketDataService` against the simulated gateway, over real gRPC connections.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check here should panic

#[path = "market_data/bars.rs"]
mod bars;
#[path = "market_data/chains.rs"]
mod chains;
#[path = "market_data/errors.rs"]
mod errors;
#[path = "market_data/harness.rs"]
mod harness;
#[path = "market_data/hostile.rs"]
mod hostile;
#[path = "market_data/limits.rs"]
mod limits;
#[path = "market_data/lookups.rs"]
mod lookups;
#[path = "market_data/notices.rs"]
mod notices;
#[path = "market_data/quotes.rs"]
mod quotes;
#[path = "market_data/reconnect.rs"]
mod reconnect;
#[path = "support/server.rs"]
mod support;
