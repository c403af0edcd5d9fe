//! Bars, historical and real-time, fetched from IB once for every client: cached in the
//! store and paced by IB's historical rules.
//!
//! - [`spec`]: bar sizes, data types and durations in IB's words, and IB's limits.
//! - [`request`]: a validated request ([`BarQuery`]); [`error`]: [`BarsError`].
//! - [`source`]: the port to IB ([`HistorySource`]) and its `ibapi` implementation.
//! - [`service`]: [`Bars`]: the cache, single flight and pacing in front of IB.
//! - [`live`]: real-time bar feeds shared by every stream ([`LiveBars`]);
//!   [`aggregate`]: larger bars from five-second ones; [`stream`]: one client's stream.

pub mod aggregate;
pub mod error;
pub mod live;
pub mod pacing;
pub mod request;
pub mod service;
pub mod source;
pub mod spec;
pub mod stream;

pub use error::BarsError;
pub use live::LiveBars;
pub use request::{BarAsk, BarQuery};
pub use service::{BarAnswer, BarOrigin, Bars};
pub use source::{HistorySource, IbHistory};
