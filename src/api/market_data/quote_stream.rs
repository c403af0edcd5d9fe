//! The stream of `StreamQuotes`.
//!
//! Each instrument is resolved on its own and takes its line as soon as it is known, so
//! its first quote waits for no other instrument's look-up (fifty symbols with one
//! unknown to the cache start together, not after the slowest). Failures become status
//! events of their instrument. Quotes go out as frames whose `Quote` is encoded once
//! per value and shared by every stream that sends it; values that are ready together
//! are yielded together, so tonic writes them in one batch.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, Stream, StreamExt};
use tonic::Status;

use super::convert::{quote_to_pb, spec_to_pb};
use super::streams::status_pb;
use crate::fanout::contracts::Contracts;
use crate::fanout::{
    ContractDetails, ContractSpec, Fanout, FanoutError, Reader, ReaderEvent, StatusKind,
};
use crate::metrics::Metrics;
use crate::proto::frames::{QuotesFrame, encode_quote};
use crate::proto::ibstream::v1 as pb;

type Resolution = (usize, Result<Arc<ContractDetails>, FanoutError>);

pub(crate) struct QuoteStream {
    fanout: Fanout,
    allow_delayed: bool,
    /// The instruments as requested, by request index (for failures before resolution).
    requested: Vec<pb::Instrument>,
    resolving: FuturesUnordered<BoxFuture<'static, Resolution>>,
    reader: Reader,
    /// Request index and resolved instrument of each reader slot.
    slots: Vec<(u32, pb::Instrument)>,
    ready: VecDeque<QuotesFrame>,
    metrics: Arc<Metrics>,
}

impl QuoteStream {
    pub(crate) fn new(
        fanout: &Fanout,
        contracts: &Arc<Contracts>,
        metrics: &Arc<Metrics>,
        requested: Vec<pb::Instrument>,
        specs: Vec<ContractSpec>,
        allow_delayed: bool,
    ) -> QuoteStream {
        let resolving = specs
            .into_iter()
            .enumerate()
            .map(|(index, spec)| {
                let contracts = contracts.clone();
                let resolve: BoxFuture<'static, Resolution> =
                    Box::pin(async move { (index, contracts.resolve(&spec).await) });
                resolve
            })
            .collect();
        QuoteStream {
            fanout: fanout.clone(),
            allow_delayed,
            requested,
            resolving,
            // Open while instruments are still being resolved; ended by `poll_next`.
            reader: Reader::new(metrics.clone(), true),
            slots: Vec::new(),
            ready: VecDeque::new(),
            metrics: metrics.clone(),
        }
    }

    fn on_resolved(&mut self, index: usize, result: Result<Arc<ContractDetails>, FanoutError>) {
        let held = result.and_then(|details| {
            let contract = Arc::new(details.contract.clone());
            // Short of lines, this instrument reports LINE_LIMIT and the others go on.
            let feed = self
                .fanout
                .acquire_fitting(std::slice::from_ref(&contract), self.allow_delayed)
                .pop()
                .unwrap_or(Err(FanoutError::Unavailable))?;
            Ok((contract, feed))
        });
        match held {
            Ok((contract, feed)) => {
                self.reader.add(feed, self.allow_delayed);
                self.slots.push((wire_index(index), spec_to_pb(&contract)));
            }
            Err(e) => {
                let instrument = self.requested.get(index).cloned().unwrap_or_default();
                self.ready
                    .push_back(status_frame(index, instrument, &StatusKind::Failed(e)));
            }
        }
    }

    fn frame(&self, event: ReaderEvent) -> QuotesFrame {
        match event {
            ReaderEvent::Update { slot, view, .. } => QuotesFrame::Quote {
                quote: view
                    .encoded
                    .get_or_init(|| encode_quote(&quote_to_pb(&view.quote))),
                index: self.slots.get(slot).map_or(0, |(i, _)| *i),
            },
            ReaderEvent::Status { slot, kind } => {
                let (index, instrument) = self.slots.get(slot).cloned().unwrap_or_default();
                status_frame(index as usize, instrument, &kind)
            }
        }
    }
}

impl Stream for QuoteStream {
    type Item = Result<QuotesFrame, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(frame) = this.ready.pop_front() {
                this.metrics.updates_out.inc();
                return Poll::Ready(Some(Ok(frame)));
            }
            while let Poll::Ready(Some((index, result))) = this.resolving.poll_next_unpin(cx) {
                this.on_resolved(index, result);
            }
            if !this.ready.is_empty() {
                continue;
            }
            return match this.reader.poll_next_unpin(cx) {
                Poll::Ready(Some(event)) => {
                    this.metrics.updates_out.inc();
                    Poll::Ready(Some(Ok(this.frame(event))))
                }
                // Every instrument resolved and none left: the stream has nothing more.
                Poll::Pending if this.resolving.is_empty() && this.reader.active() == 0 => {
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) => Poll::Ready(None),
            };
        }
    }
}

fn wire_index(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

fn status_frame(index: usize, instrument: pb::Instrument, kind: &StatusKind) -> QuotesFrame {
    QuotesFrame::Message(pb::StreamQuotesResponse {
        index: wire_index(index),
        event: Some(pb::stream_quotes_response::Event::Status(status_pb(
            index, instrument, kind,
        ))),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::fanout::fake::FakeSource;
    use crate::fanout::tick::{PriceField, Tick};
    use crate::fanout::{FanoutSettings, MarketDataSource};

    fn spec(symbol: &str) -> ContractSpec {
        ContractSpec {
            symbol: symbol.into(),
            exchange: "SMART".into(),
            currency: "USD".into(),
            ..ContractSpec::default()
        }
    }

    #[tokio::test]
    async fn an_instrument_quotes_while_another_is_still_being_looked_up() {
        let source = FakeSource::new();
        source.set_link(Some(1));
        let aapl = ContractSpec {
            con_id: 265598,
            ..spec("AAPL")
        };
        source.details.lock().unwrap().insert(
            "AAPL".into(),
            ContractDetails {
                contract: aapl,
                ..ContractDetails::default()
            },
        );
        source.unanswered.lock().unwrap().insert("SLOW".into());
        let dyn_source: Arc<dyn MarketDataSource> = source.clone();
        let metrics = Arc::new(Metrics::default());
        let fanout = Fanout::new(
            dyn_source.clone(),
            FanoutSettings::default(),
            metrics.clone(),
        );
        let contracts = Arc::new(Contracts::new(dyn_source, None, Duration::from_secs(600)));
        let requested = ["SLOW", "AAPL"]
            .map(|s| pb::Instrument {
                symbol: s.into(),
                ..pb::Instrument::default()
            })
            .to_vec();
        let specs = vec![spec("SLOW"), spec("AAPL")];
        let mut stream = QuoteStream::new(&fanout, &contracts, &metrics, requested, specs, false);

        let quoted = async {
            loop {
                tokio::select! {
                    frame = stream.next() => {
                        if let Some(Ok(QuotesFrame::Quote { index, .. })) = frame {
                            return index;
                        }
                    }
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {
                        source.tick(265598, Tick::Price(PriceField::Bid, 189.5));
                    }
                }
            }
        };
        let index = tokio::time::timeout(Duration::from_secs(5), quoted)
            .await
            .expect("AAPL quotes while SLOW is looked up");
        assert_eq!(index, 1);
        assert_eq!(
            contracts.lookups_in_flight(),
            1,
            "SLOW is still being looked up"
        );
    }
}
