//! The two sides of the fan-out benchmark: a synthetic market-data source for ibstream
//! and the baseline, a minimal tonic server streaming quotes straight from producers.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use ibstream::fanout::tick::{PriceField, SizeField, Tick};
use ibstream::fanout::{
    ChainParams, ContractDetails, ContractSpec, DataNotice, DataType, LinkState, MarketDataSource,
    SourceError, SourceEvent, SymbolMatch, TickStream,
};
use ibstream::proto::ibstream::v1 as pb;
use ibstream::proto::ibstream::v1::market_data_service_server::MarketDataService;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

// ---------------------------------------------------------------------------------------
// A synthetic source: every instrument ticks every `interval` (or as fast as read).

pub struct Synthetic {
    link: watch::Sender<LinkState>,
    farms: broadcast::Sender<DataNotice>,
    interval: Duration,
}

impl Synthetic {
    pub fn new(interval: Duration) -> Arc<Synthetic> {
        let (link, _) = watch::channel(LinkState {
            generation: Some(1),
        });
        let (farms, _) = broadcast::channel(4);
        Arc::new(Synthetic {
            link,
            farms,
            interval,
        })
    }
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

pub fn con_id_of(symbol: &str) -> i64 {
    symbol
        .bytes()
        .fold(7i64, |h, b| (h * 131 + i64::from(b)) % 1_000_000_007)
        + 1
}

impl MarketDataSource for Synthetic {
    fn link_state(&self) -> watch::Receiver<LinkState> {
        self.link.subscribe()
    }
    fn data_notices(&self) -> broadcast::Receiver<DataNotice> {
        self.farms.subscribe()
    }
    fn subscribe(
        &self,
        _generation: u64,
        _contract: &ContractSpec,
        _data_type: DataType,
    ) -> BoxFuture<'static, Result<TickStream, SourceError>> {
        futures::future::ready(Ok(ticks(self.interval))).boxed()
    }
    fn snapshot(
        &self,
        _c: &ContractSpec,
        _t: DataType,
        d: Duration,
    ) -> BoxFuture<'static, Result<Vec<Tick>, SourceError>> {
        futures::future::ready(Err(SourceError::Deadline(d))).boxed()
    }
    fn contract_details(
        &self,
        contract: &ContractSpec,
        _d: Duration,
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
        _p: &str,
        _d: Duration,
    ) -> BoxFuture<'static, Result<Vec<SymbolMatch>, SourceError>> {
        futures::future::ready(Ok(Vec::new())).boxed()
    }
    fn option_params(
        &self,
        _u: &ContractSpec,
        _d: Duration,
    ) -> BoxFuture<'static, Result<Vec<ChainParams>, SourceError>> {
        futures::future::ready(Ok(Vec::new())).boxed()
    }
}

// ---------------------------------------------------------------------------------------
// The baseline: a minimal tonic server streaming quotes straight from producers.

#[derive(Clone)]
pub struct Baseline {
    pub interval: Duration,
}

type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn quote(con_id: i64, symbol: &str, seq: u64, bid: f64) -> pb::Quote {
    pb::Quote {
        con_id,
        symbol: symbol.to_owned(),
        bid: Some(bid),
        ask: Some(200.0),
        volume: Some(1.0),
        sequence: seq,
        received_at: Some(SystemTime::now().into()),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl MarketDataService for Baseline {
    type StreamQuotesStream = Boxed<pb::StreamQuotesResponse>;
    type StreamOptionChainStream = Boxed<pb::StreamOptionChainResponse>;

    async fn stream_quotes(
        &self,
        request: Request<pb::StreamQuotesRequest>,
    ) -> Result<Response<Self::StreamQuotesStream>, Status> {
        let (tx, rx) = mpsc::channel(128);
        for (index, inst) in request.into_inner().instruments.into_iter().enumerate() {
            let tx = tx.clone();
            let interval = self.interval;
            tokio::spawn(async move {
                let con_id = con_id_of(&inst.symbol);
                let mut bid = 100.0;
                for seq in 1.. {
                    bid += 0.01;
                    let m = pb::StreamQuotesResponse {
                        index: index as u32,
                        event: Some(pb::stream_quotes_response::Event::Quote(quote(
                            con_id,
                            &inst.symbol,
                            seq,
                            bid,
                        ))),
                    };
                    if interval.is_zero() {
                        if tx.send(Ok(m)).await.is_err() {
                            return;
                        }
                    } else {
                        // A real feed cannot wait for a slow reader: drop when full.
                        if tx.is_closed() {
                            return;
                        }
                        let _ = tx.try_send(Ok(m));
                        tokio::time::sleep(interval).await;
                    }
                }
            });
        }
        Ok(Response::new(ReceiverStream::new(rx).boxed()))
    }
    async fn get_quotes(
        &self,
        _r: Request<pb::GetQuotesRequest>,
    ) -> Result<Response<pb::GetQuotesResponse>, Status> {
        Err(Status::unimplemented("baseline"))
    }
    async fn resolve_contract(
        &self,
        _r: Request<pb::ResolveContractRequest>,
    ) -> Result<Response<pb::ContractDetails>, Status> {
        Err(Status::unimplemented("baseline"))
    }
    async fn search_symbols(
        &self,
        _r: Request<pb::SearchSymbolsRequest>,
    ) -> Result<Response<pb::SearchSymbolsResponse>, Status> {
        Err(Status::unimplemented("baseline"))
    }
    async fn list_subscriptions(
        &self,
        _r: Request<pb::ListSubscriptionsRequest>,
    ) -> Result<Response<pb::ListSubscriptionsResponse>, Status> {
        Err(Status::unimplemented("baseline"))
    }
    async fn get_option_chain(
        &self,
        _r: Request<pb::GetOptionChainRequest>,
    ) -> Result<Response<pb::OptionChain>, Status> {
        Err(Status::unimplemented("baseline"))
    }
    async fn stream_option_chain(
        &self,
        _r: Request<pb::StreamOptionChainRequest>,
    ) -> Result<Response<Self::StreamOptionChainStream>, Status> {
        Err(Status::unimplemented("baseline"))
    }
}
