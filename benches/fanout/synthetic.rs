//! A market-data source with no IB session behind it, for measuring the fan-out alone:
//! every instrument ticks on its own and every symbol resolves at once.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use ibstream::fanout::tick::{PriceField, SizeField, Tick};
use ibstream::fanout::{
    ChainParams, ContractDetails, ContractSpec, LinkState, MarketDataSource, MarketDataType,
    SourceError, SourceEvent, StampedNotice, SymbolMatch, TickStream,
};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

/// A source whose every instrument ticks every `interval` (or as fast as it is read
/// when the interval is zero), and whose every symbol resolves.
pub struct Synthetic {
    /// Session 1, up for good: the benchmark measures the fan-out, not reconnects.
    link: watch::Sender<LinkState>,
    /// Never sent on: no farm ever goes down here.
    notices: broadcast::Sender<StampedNotice>,
    interval: Duration,
}

impl Synthetic {
    /// A source with session 1 up whose instruments tick every `interval`.
    pub fn new(interval: Duration) -> Arc<Synthetic> {
        Arc::new(Synthetic {
            link: watch::Sender::new(LinkState {
                generation: Some(1),
            }),
            notices: broadcast::Sender::new(1),
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
        self.link.subscribe()
    }

    fn data_notices(&self) -> broadcast::Receiver<StampedNotice> {
        self.notices.subscribe()
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
