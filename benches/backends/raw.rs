//! The ceiling: a bare tonic server-streaming service, written by hand (no fan-out, no
//! ibstream code in the path), that answers `StreamQuotes` with pre-built messages of the
//! size ibstream sends, each stamped with its send time in `received_at`.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use futures::Stream;
use ibstream::proto::ibstream::v1 as pb;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::{Interval, MissedTickBehavior};
use tonic::codegen::{Body, BoxFuture, Service, StdError, http};
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;

use crate::synthetic::con_id_of;

const PATH: &str = "/ibstream.v1.MarketDataService/StreamQuotes";

/// How fast each stream sends.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// As fast as the connection takes them.
    FlatOut,
    /// This many messages per second per stream, sent each millisecond.
    PerSecond(f64),
    /// One message per instrument, then nothing.
    Idle,
}

/// A running raw server; dropping it stops it (its streams never end on their own).
pub struct RawServer {
    pub url: String,
    task: JoinHandle<()>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves raw quote streams at `pace` on an ephemeral loopback port.
pub async fn start(pace: Pace) -> RawServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    // As ibstream's server: small writes must not wait for delayed ACKs.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(RawQuotes { pace })
            .serve_with_incoming(incoming)
            .await;
    });
    RawServer { url, task }
}

#[derive(Clone)]
struct RawQuotes {
    pace: Pace,
}

impl NamedService for RawQuotes {
    const NAME: &'static str = "ibstream.v1.MarketDataService";
}

impl<B> Service<http::Request<B>> for RawQuotes
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let pace = self.pace;
        Box::pin(async move {
            if req.uri().path() != PATH {
                return Ok(tonic::Status::unimplemented("raw server").into_http());
            }
            let codec = tonic_prost::ProstCodec::<pb::StreamQuotesResponse, _>::default();
            let mut grpc = tonic::server::Grpc::new(codec);
            Ok(grpc.server_streaming(Handler { pace }, req).await)
        })
    }
}

struct Handler {
    pace: Pace,
}

impl Service<tonic::Request<pb::StreamQuotesRequest>> for Handler {
    type Response = tonic::Response<RawStream>;
    type Error = tonic::Status;
    type Future = std::future::Ready<Result<Self::Response, tonic::Status>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), tonic::Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::Request<pb::StreamQuotesRequest>) -> Self::Future {
        let instruments = request.into_inner().instruments;
        let messages = instruments
            .iter()
            .enumerate()
            .map(|(i, inst)| message(i, &inst.symbol))
            .collect();
        let (timer, per_tick) = match self.pace {
            Pace::PerSecond(rate) => {
                let mut timer = tokio::time::interval(Duration::from_millis(1));
                timer.set_missed_tick_behavior(MissedTickBehavior::Burst);
                (Some(timer), rate / 1000.0)
            }
            Pace::FlatOut | Pace::Idle => (None, 0.0),
        };
        let budget = match self.pace {
            Pace::Idle => instruments.len() as f64,
            _ => 0.0,
        };
        std::future::ready(Ok(tonic::Response::new(RawStream {
            messages,
            next: 0,
            flat_out: matches!(self.pace, Pace::FlatOut),
            timer,
            per_tick,
            budget,
        })))
    }
}

/// A quote as the synthetic source's full quotes come out of ibstream: every price and
/// size, the last trade's time, the data types, a sequence and the receive time.
fn message(index: usize, symbol: &str) -> pb::StreamQuotesResponse {
    let price = 100.0;
    let now = SystemTime::now();
    let seconds = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    pb::StreamQuotesResponse {
        index: index as u32,
        event: Some(pb::stream_quotes_response::Event::Quote(pb::Quote {
            con_id: con_id_of(symbol),
            symbol: symbol.to_owned(),
            bid: Some(price - 0.01),
            ask: Some(price + 0.01),
            last: Some(price),
            bid_size: Some(300.0),
            ask_size: Some(500.0),
            last_size: Some(100.0),
            volume: Some(1_234_500.0),
            open: Some(price - 1.25),
            high: Some(price + 2.5),
            low: Some(price - 2.5),
            close: Some(price - 0.75),
            last_trade_time: Some(prost_types::Timestamp { seconds, nanos: 0 }),
            market_data_type: pb::MarketDataType::Live as i32,
            requested_market_data_type: pb::MarketDataType::Live as i32,
            sequence: 1,
            received_at: Some(now.into()),
            stale: false,
        })),
    }
}

/// The messages of one stream, round robin, each stamped when it is sent.
struct RawStream {
    messages: Vec<pb::StreamQuotesResponse>,
    next: usize,
    flat_out: bool,
    timer: Option<Interval>,
    per_tick: f64,
    /// Messages that may go now.
    budget: f64,
}

impl RawStream {
    fn take(&mut self) -> pb::StreamQuotesResponse {
        let i = self.next % self.messages.len();
        self.next += 1;
        let mut m = self.messages[i].clone();
        if let Some(pb::stream_quotes_response::Event::Quote(q)) = &mut m.event {
            q.sequence = (self.next / self.messages.len()) as u64 + 1;
            q.received_at = Some(SystemTime::now().into());
        }
        m
    }
}

impl Stream for RawStream {
    type Item = Result<pb::StreamQuotesResponse, tonic::Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.messages.is_empty() {
            return Poll::Ready(None);
        }
        loop {
            if self.flat_out {
                return Poll::Ready(Some(Ok(self.take())));
            }
            if self.budget >= 1.0 {
                self.budget -= 1.0;
                return Poll::Ready(Some(Ok(self.take())));
            }
            let per_tick = self.per_tick;
            match self.timer.as_mut() {
                Some(timer) => match timer.poll_tick(cx) {
                    Poll::Ready(_) => self.budget += per_tick,
                    Poll::Pending => return Poll::Pending,
                },
                // Idle: its one message per instrument is sent.
                None => return Poll::Pending,
            }
        }
    }
}
