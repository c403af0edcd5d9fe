//! Subscriptions shared by every stream: reference counts, last-value cache, conflation,
//! resubscription after reconnect, line budget.
//!
//! - [`source`]: the port to IB ([`MarketDataSource`]); [`ib_source`] implements it over
//!   the session's `ibapi` client.
//! - [`feed`]: one task per instrument owning its IB subscription and last value.
//! - [`registry`]: the [`Fanout`] itself: one feed per instrument, reference counts,
//!   linger, line budget.
//! - [`reader`]: what one client stream reads: the conflated merge of its instruments.
//! - [`snapshot`]: one quote now, from the cache or a one-off request.
//! - [`contracts`]: contract look-ups through a memory and store cache.
//! - [`chain`], [`chain_window`]: option-chain windows over the feeds; [`greeks_calc`]:
//!   IB's Greeks or Black-Scholes ones.
//! - [`ib_convert`]: ibapi's types to the domain and back; [`error`]: [`FanoutError`].
//! - [`tick`], [`types`]: the domain, free of tonic and ibapi types.
//! - `fake` (tests only): a scripted source and a hand-driven link.

pub mod chain;
pub mod chain_window;
pub mod contracts;
pub mod encoded;
pub mod error;
pub mod feed;
pub mod greeks_calc;
pub mod ib_convert;
pub mod ib_source;
pub mod lookups;
pub mod reader;
pub mod registry;
pub mod snapshot;
pub mod source;
pub mod tick;
pub mod types;

#[cfg(test)]
mod chain_tests;
#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

pub use chain::{ChainEvent, ChainRequest, Chains};
pub use chain_window::StrikeSelection;
pub use error::FanoutError;
pub use feed::{FeedStatus, FeedView};
pub use greeks_calc::GreeksParams;
pub use ib_source::IbSource;
pub use reader::{Reader, ReaderEvent, StatusKind};
pub use registry::{Fanout, FanoutSettings, FeedRef, LineHold, LineUsage, SubscriptionInfo};
pub use source::{
    DataNotice, LinkState, MarketDataSource, SourceError, SourceEvent, StampedNotice, TickStream,
};
pub use types::*;
