//! The baseline side of the fan-out benchmark: a minimal tonic server streaming quotes
//! straight from producers (ibstream's side runs on `synthetic.rs` beside this file).

use std::pin::Pin;
use std::time::{Duration, SystemTime};

use crate::synthetic::con_id_of;
use futures::{Stream, StreamExt};
use ibstream::proto::frames::QuotesFrame;
use ibstream::proto::ibstream::v1 as pb;
use ibstream::proto::ibstream::v1::market_data_service_server::MarketDataService;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

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
    // Frames of whole messages: encoded per send, as a plain prost service does.
    type StreamQuotesStream = Boxed<QuotesFrame>;
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
                    let m = QuotesFrame::Message(pb::StreamQuotesResponse {
                        index: index as u32,
                        event: Some(pb::stream_quotes_response::Event::Quote(quote(
                            con_id,
                            &inst.symbol,
                            seq,
                            bid,
                        ))),
                    });
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
    async fn get_historical_bars(
        &self,
        _r: Request<pb::GetHistoricalBarsRequest>,
    ) -> Result<Response<pb::GetHistoricalBarsResponse>, Status> {
        Err(Status::unimplemented("baseline"))
    }
    type StreamBarsStream = Boxed<pb::StreamBarsResponse>;
    async fn stream_bars(
        &self,
        _r: Request<pb::StreamBarsRequest>,
    ) -> Result<Response<Self::StreamBarsStream>, Status> {
        Err(Status::unimplemented("baseline"))
    }
    async fn get_head_timestamp(
        &self,
        _r: Request<pb::GetHeadTimestampRequest>,
    ) -> Result<Response<pb::GetHeadTimestampResponse>, Status> {
        Err(Status::unimplemented("baseline"))
    }
}
