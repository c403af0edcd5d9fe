//! Bars, historical and real-time, fetched from IB once for every client: cached in the
//! store and paced by IB's historical rules.
//!
//! - [`spec`]: bar sizes, data types and durations in IB's words, and IB's limits.
//! - [`request`]: a validated request ([`BarQuery`]); [`error`]: [`BarsError`].
//! - [`source`]: the port to IB ([`HistorySource`]) and its `ibapi` implementation.
//! - [`service`]: [`Bars`]: the cache, single flight and pacing in front of IB.

pub mod error;
pub mod request;
pub mod service;
pub mod source;
pub mod spec;

pub use error::BarsError;
pub use request::{BarAsk, BarQuery};
pub use service::{BarAnswer, BarOrigin, Bars};
pub use source::{HistorySource, IbHistory};
