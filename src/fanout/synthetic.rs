//! Synthetic market-data sources for benchmarks and tests: no IB session behind them.
//!
//! [`SyntheticLink`] is the session side every such source needs (one link generation
//! and a farm-notice channel, both driven by hand); [`Synthetic`] is a source built on
//! it whose every instrument ticks on its own, for measuring the fan-out without IB.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use super::source::{
    DataNotice, LinkState, MarketDataSource, SourceError, SourceEvent, StampedNotice, TickStream,
};
use super::tick::{PriceField, SizeField, Tick};
use super::types::{ChainParams, ContractDetails, ContractSpec, MarketDataType, SymbolMatch};

/// The link state and farm notices of a synthetic source, starting with session 1 up.
pub struct SyntheticLink {
    link: watch::Sender<LinkState>,
    farms: broadcast::Sender<StampedNotice>,
}

impl SyntheticLink {
    /// Session 1 up; `notice_capacity` farm notices may wait for a slow fan-out.
    pub fn new(notice_capacity: usize) -> SyntheticLink {
        let (link, _) = watch::channel(LinkState {
            generation: Some(1),
        });
        let (farms, _) = broadcast::channel(notice_capacity);
        SyntheticLink { link, farms }
    }

    /// What [`MarketDataSource::link_state`] hands out.
    pub fn link_state(&self) -> watch::Receiver<LinkState> {
        self.link.subscribe()
    }

    /// What [`MarketDataSource::data_notices`] hands out.
    pub fn data_notices(&self) -> broadcast::Receiver<StampedNotice> {
        self.farms.subscribe()
    }

    /// The session now up, if any.
    pub fn generation(&self) -> Option<u64> {
        self.link.borrow().generation
    }

    /// Brings a session up (`Some`) or takes the link down (`None`).
    pub fn set(&self, generation: Option<u64>) {
        self.link.send_replace(LinkState { generation });
    }

    /// Sends a farm or connectivity notice of the session now up to whoever listens.
    pub fn notify(&self, notice: DataNotice) {
        let generation = self.generation().unwrap_or(0);
        let _ = self.farms.send(StampedNotice { generation, notice });
    }
}

/// A source whose every instrument ticks every `interval` (or as fast as it is read
/// when the interval is zero), and whose every symbol resolves.
pub struct Synthetic {
    link: SyntheticLink,
    interval: Duration,
}

impl Synthetic {
    /// A source with session 1 up whose instruments tick every `interval`.
    pub fn new(interval: Duration) -> Arc<Synthetic> {
        Arc::new(Synthetic {
            link: SyntheticLink::new(4),
            interval,
        })
    }
}

/// The conId [`Synthetic`] gives `symbol`: stable, so another server can agree with it.
pub fn con_id_of(symbol: &str) -> i64 {
    symbol
        .bytes()
        .fold(7i64, |h, b| (h * 131 + i64::from(b)) % 1_000_000_007)
        + 1
}

/// Endless ticks of one instrument: a bid that moves by a cent each step.
fn ticks(interval: Duration) -> TickStream {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut price = 100.0;
        let _ = tx
            .send(SourceEvent::Tick(Tick::Price(PriceField::Ask, 200.0)))
            .await;
        let _ = tx
            .send(SourceEvent::Tick(Tick::Size(SizeField::Volume, 1.0)))
            .await;
        loop {
            price += 0.01;
            if tx
                .send(SourceEvent::Tick(Tick::Price(PriceField::Bid, price)))
                .await
                .is_err()
            {
                return;
            }
            if interval.is_zero() {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(interval).await;
            }
        }
    });
    ReceiverStream::new(rx).boxed()
}

impl MarketDataSource for Synthetic {
    fn link_state(&self) -> watch::Receiver<LinkState> {
        self.link.link_state()
    }

    fn data_notices(&self) -> broadcast::Receiver<StampedNotice> {
        self.link.data_notices()
    }

    fn subscribe(
        &self,
        _generation: u64,
        _contract: &ContractSpec,
        _data_type: MarketDataType,
    ) -> BoxFuture<'static, Result<TickStream, SourceError>> {
        futures::future::ready(Ok(ticks(self.interval))).boxed()
    }

    fn snapshot(
        &self,
        _contract: &ContractSpec,
        _data_type: MarketDataType,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<Tick>, SourceError>> {
        futures::future::ready(Err(SourceError::Deadline(deadline))).boxed()
    }

    fn contract_details(
        &self,
        contract: &ContractSpec,
        _deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<ContractDetails>, SourceError>> {
        let mut c = contract.clone();
        c.con_id = con_id_of(&c.symbol);
        futures::future::ready(Ok(vec![ContractDetails {
            contract: c,
            ..ContractDetails::default()
        }]))
        .boxed()
    }

    fn matching_symbols(
        &self,
        _pattern: &str,
        _deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<SymbolMatch>, SourceError>> {
        futures::future::ready(Ok(Vec::new())).boxed()
    }

    fn option_params(
        &self,
        _underlying: &ContractSpec,
        _deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<ChainParams>, SourceError>> {
        futures::future::ready(Ok(Vec::new())).boxed()
    }
}
