//! The port through which the fan-out talks to IB. The production implementation borrows
//! the session's `ibapi` client ([`super::ib_source`]); tests use a fake.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::sync::{broadcast, watch};

use super::tick::Tick;
use super::types::{
    ChainParams, ContractDetails, ContractSpec, FarmKind, MarketDataType, SymbolMatch,
};

/// Whether a session is up, and which one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkState {
    /// `Some(generation)` while a session is live; a new generation has no subscriptions.
    pub generation: Option<u64>,
}

/// Why IB refused or ended a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("no session with IB")]
    LinkDown,
    #[error("IB knows no such instrument: {0}")]
    NotFound(String),
    #[error("no market-data permission: {0}")]
    NoPermission(String),
    #[error("IB's market-data line limit was reached: {0}")]
    LineLimit(String),
    #[error("IB did not answer within {0:?}")]
    Deadline(Duration),
    #[error("IB error {code}: {message}")]
    Ib { code: i32, message: String },
}

impl SourceError {
    /// Classifies an IB error code.
    pub fn from_ib(code: i32, message: String) -> SourceError {
        match code {
            200 => SourceError::NotFound(message),
            354 | 10167 | 10168 | 10186 => SourceError::NoPermission(message),
            101 => SourceError::LineLimit(message),
            _ => SourceError::Ib { code, message },
        }
    }
}

/// One item of a market-data subscription.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceEvent {
    Tick(Tick),
    /// An advisory bound to the request (e.g. 10167 "displaying delayed data"); the
    /// subscription goes on.
    Advisory {
        code: i32,
        message: String,
    },
    /// The values received so far are old (a relayed instrument its leader marked
    /// stale); the next tick after it says they are fresh again.
    Stale,
    /// The subscription ended; no more items follow.
    Ended(SourceError),
}

/// What a session notice means for the data flowing, without ending any request: the
/// fan-out's view of the session's classified notices ([`crate::ib::notices`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataNotice {
    /// A data farm went down (2103) or came back (2104).
    Farm { farm: FarmKind, up: bool },
    /// IB lost its own connectivity (1100): every instrument is stale.
    ConnectivityLost,
    /// Connectivity is back; with `data_lost` (1101) every subscription must be renewed,
    /// without (1102) they go on.
    ConnectivityRestored { data_lost: bool },
    /// A competing live session holds the market data (10197): every instrument is
    /// stale until a farm reports OK, connectivity is restored or a new session starts.
    CompetingSession,
}

/// A data notice and the session it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StampedNotice {
    /// The link generation the notice arrived in.
    pub generation: u64,
    pub notice: DataNotice,
}

/// A streaming subscription; dropping it cancels the request at IB.
pub type TickStream = BoxStream<'static, SourceEvent>;

/// What the fan-out and the contract look-ups need from IB.
pub trait MarketDataSource: Send + Sync + 'static {
    /// The current session, updated as it goes down and comes back.
    fn link_state(&self) -> watch::Receiver<LinkState>;

    /// The data notices of every session, stamped with their session.
    fn data_notices(&self) -> broadcast::Receiver<StampedNotice>;

    /// Opens a streaming subscription in session `generation` (fails with `LinkDown` if
    /// that session is gone).
    fn subscribe(
        &self,
        generation: u64,
        contract: &ContractSpec,
        data_type: MarketDataType,
    ) -> BoxFuture<'static, Result<TickStream, SourceError>>;

    /// A one-off snapshot, bounded by `deadline`.
    fn snapshot(
        &self,
        contract: &ContractSpec,
        data_type: MarketDataType,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<Tick>, SourceError>>;

    /// Every contract matching `contract`, bounded by `deadline`.
    fn contract_details(
        &self,
        contract: &ContractSpec,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<ContractDetails>, SourceError>>;

    /// Symbols matching a pattern, bounded by `deadline`.
    fn matching_symbols(
        &self,
        pattern: &str,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<SymbolMatch>, SourceError>>;

    /// Option-chain parameters of an underlying, bounded by `deadline`.
    fn option_params(
        &self,
        underlying: &ContractSpec,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<ChainParams>, SourceError>>;
}
