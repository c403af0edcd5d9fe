//! The production [`MarketDataSource`]: the session's `ibapi` client, borrowed through
//! the [`LinkWatch`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use ibapi::market_data::realtime::TickTypes;
use ibapi::subscriptions::{Subscription, SubscriptionItem};
use tokio::sync::{Mutex, broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::ib_convert::{
    chain_from_ib, contract_to_ib, data_type_to_ib, details_from_ib, error_from_ib, sec_type_to_ib,
    symbol_match_from_ib, ticks_from_ib,
};
use super::pacer::Pacer;
use super::source::{
    DataNotice, LinkState, MarketDataSource, SourceError, SourceEvent, TickStream,
};
use super::tick::Tick;
use super::types::{
    ChainParams, ContractDetails, ContractSpec, DataType, FarmKind, SecType, SymbolMatch,
};
use crate::ib::{Link, LinkWatch, MessagePacer};
use crate::metrics::Metrics;

/// Generic ticks asked for options: option volume (100), open interest (101) and
/// implied volatility (106).
const OPTION_GENERIC_TICKS: &[&str] = &["100", "101", "106"];

struct Shared {
    links: LinkWatch,
    state: watch::Sender<LinkState>,
    farms: broadcast::Sender<DataNotice>,
    pacer: Pacer,
    metrics: Arc<Metrics>,
    /// The session's mirror of `ibapi`'s limiter, told of every message (it also counts
    /// them in the metrics).
    session_pacer: Option<MessagePacer>,
    /// The market-data type last requested in a session (IB applies it to the requests
    /// that follow, session-wide).
    data_type: Mutex<Option<(u64, DataType)>>,
}

/// `MarketDataSource` over the live `ibapi` client.
pub struct IbSource {
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Drop for IbSource {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl IbSource {
    /// Follows `links`; `message_rate` is the profile's messages-per-second budget.
    /// `session_pacer`, when given, is told of every message sent.
    pub fn new(
        links: LinkWatch,
        message_rate: u32,
        metrics: Arc<Metrics>,
        session_pacer: Option<MessagePacer>,
    ) -> Arc<IbSource> {
        let (state, _) = watch::channel(LinkState::default());
        let (farms, _) = broadcast::channel(64);
        let shared = Arc::new(Shared {
            links,
            state,
            farms,
            pacer: Pacer::new(message_rate),
            metrics,
            session_pacer,
            data_type: Mutex::new(None),
        });
        let stop = CancellationToken::new();
        tokio::spawn(follow_links(shared.clone(), stop.clone()));
        Arc::new(IbSource { shared, stop })
    }

    /// Changes the message budget (the active profile changed).
    pub fn set_message_rate(&self, per_second: u32) {
        self.shared.pacer.set_rate(per_second);
    }
}

/// Mirrors the link into a [`LinkState`] and forwards each session's farm notices.
async fn follow_links(shared: Arc<Shared>, stop: CancellationToken) {
    let mut links = shared.links.clone();
    let mut notices: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let link = links.borrow_and_update().clone();
        shared.state.send_replace(LinkState {
            generation: link.as_ref().map(|l| l.generation),
        });
        if let Some(task) = notices.take() {
            task.abort();
        }
        if let Some(link) = link
            && let Ok(stream) = link.client.notice_stream()
        {
            notices = Some(tokio::spawn(forward_data_notices(
                stream,
                shared.farms.clone(),
            )));
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            changed = links.changed() => if changed.is_err() { break },
        }
    }
    if let Some(task) = notices {
        task.abort();
    }
    shared.state.send_replace(LinkState::default());
}

async fn forward_data_notices(
    mut stream: ibapi::subscriptions::NoticeStream,
    farms: broadcast::Sender<DataNotice>,
) {
    while let Some(n) = stream.next().await {
        if let Some(notice) = data_notice(n.code, &n.message) {
            let _ = farms.send(notice);
        }
    }
}

/// Reads a notice that changes whether data flows: farm notices (2103/2105/2157 broken,
/// 2104/2106/2158 OK, farm name after the colon) and IB connectivity (1100, 1101, 1102).
pub(crate) fn data_notice(code: i32, message: &str) -> Option<DataNotice> {
    let up = match code {
        1100 => return Some(DataNotice::ConnectivityLost),
        1101 => return Some(DataNotice::ConnectivityRestored { data_lost: true }),
        1102 => return Some(DataNotice::ConnectivityRestored { data_lost: false }),
        2104 | 2106 | 2158 => true,
        2103 | 2105 | 2157 => false,
        _ => return None,
    };
    let name = message.rsplit(':').next()?;
    let farm = FarmKind::from_farm_name(name)?;
    Some(DataNotice::Farm { farm, up })
}

impl Shared {
    fn link(&self, generation: Option<u64>) -> Result<Link, SourceError> {
        let link = self.links.borrow().clone().ok_or(SourceError::LinkDown)?;
        match generation {
            Some(g) if g != link.generation => Err(SourceError::LinkDown),
            _ => Ok(link),
        }
    }

    /// The link now up for a one-off request, once the pacer lets the request go.
    async fn request_link(&self) -> Result<Link, SourceError> {
        let link = self.link(None)?;
        self.send_slot().await;
        Ok(link)
    }

    async fn send_slot(&self) {
        // The fan-out's pacer is where messages actually wait (it runs below ibapi's
        // limit), so its wait is the rate-limiter delay the metrics report.
        let held = self.pacer.acquire().await;
        let micros = u64::try_from(held.as_micros()).unwrap_or(u64::MAX);
        self.metrics.rate_limiter_delay_micros.add(micros);
        match &self.session_pacer {
            Some(p) => {
                p.note_send();
            }
            None => self.metrics.ib_messages_sent.inc(),
        }
    }

    /// Makes `data_type` the session's market-data type if it is not already.
    async fn ensure_data_type(
        &self,
        link: &Link,
        data_type: DataType,
        current: &mut Option<(u64, DataType)>,
    ) -> Result<(), SourceError> {
        if *current == Some((link.generation, data_type)) {
            return Ok(());
        }
        self.send_slot().await;
        link.client
            .switch_market_data_type(data_type_to_ib(data_type))
            .await
            .map_err(|e| error_from_ib(&e))?;
        *current = Some((link.generation, data_type));
        Ok(())
    }

    async fn open(
        self: Arc<Self>,
        generation: Option<u64>,
        contract: ContractSpec,
        data_type: DataType,
        snapshot: bool,
    ) -> Result<Subscription<TickTypes>, SourceError> {
        let link = self.link(generation)?;
        let ib = contract_to_ib(&contract);
        // Held across the request so no other request switches the type in between.
        let mut current = self.data_type.lock().await;
        self.ensure_data_type(&link, data_type, &mut current)
            .await?;
        self.send_slot().await;
        let mut builder = link.client.market_data(&ib);
        if snapshot {
            builder = builder.snapshot();
        } else if matches!(contract.sec_type, SecType::Option | SecType::FutureOption) {
            builder = builder.generic_ticks(OPTION_GENERIC_TICKS);
        }
        builder.subscribe().await.map_err(|e| error_from_ib(&e))
    }
}

/// A subscription as a stream of domain events; dropping it cancels at IB, paced.
struct PacedTicks {
    sub: Option<Subscription<TickTypes>>,
    shared: Arc<Shared>,
    pending: std::collections::VecDeque<SourceEvent>,
    scratch: Vec<Tick>,
    done: bool,
}

impl Stream for PacedTicks {
    type Item = SourceEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SourceEvent>> {
        let this = &mut *self;
        loop {
            if let Some(e) = this.pending.pop_front() {
                return Poll::Ready(Some(e));
            }
            if this.done {
                return Poll::Ready(None);
            }
            let Some(sub) = this.sub.as_mut() else {
                return Poll::Ready(None);
            };
            match sub.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(Some(SourceEvent::Ended(SourceError::LinkDown)));
                }
                Poll::Ready(Some(Ok(SubscriptionItem::Data(item)))) => {
                    ticks_from_ib(item, &mut this.scratch);
                    this.pending
                        .extend(this.scratch.drain(..).map(SourceEvent::Tick));
                }
                Poll::Ready(Some(Ok(SubscriptionItem::Notice(n)))) => {
                    return Poll::Ready(Some(SourceEvent::Advisory {
                        code: n.code,
                        message: n.message,
                    }));
                }
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(SourceEvent::Ended(error_from_ib(&e))));
                }
            }
        }
    }
}

impl Drop for PacedTicks {
    fn drop(&mut self) {
        let Some(sub) = self.sub.take() else { return };
        let shared = self.shared.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            // The cancel goes out when dropping the subscription; wait for a slot first.
            rt.spawn(async move {
                shared.send_slot().await;
                drop(sub);
            });
        }
    }
}

/// A collected answer, with `ibapi`'s timeout told apart as the caller's deadline.
fn within<T>(
    collected: Result<Vec<T>, ibapi::Error>,
    deadline: Duration,
) -> Result<Vec<T>, SourceError> {
    match collected {
        Ok(found) => Ok(found),
        Err(ibapi::Error::Timeout) => Err(SourceError::Deadline(deadline)),
        Err(e) => Err(error_from_ib(&e)),
    }
}

impl MarketDataSource for IbSource {
    fn link_state(&self) -> watch::Receiver<LinkState> {
        self.shared.state.subscribe()
    }

    fn data_notices(&self) -> broadcast::Receiver<DataNotice> {
        self.shared.farms.subscribe()
    }

    fn subscribe(
        &self,
        generation: u64,
        contract: &ContractSpec,
        data_type: DataType,
    ) -> BoxFuture<'static, Result<TickStream, SourceError>> {
        let shared = self.shared.clone();
        let contract = contract.clone();
        async move {
            let sub = shared
                .clone()
                .open(Some(generation), contract, data_type, false)
                .await?;
            let stream: TickStream = PacedTicks {
                sub: Some(sub),
                shared,
                pending: Default::default(),
                scratch: Vec::new(),
                done: false,
            }
            .boxed();
            Ok(stream)
        }
        .boxed()
    }

    fn snapshot(
        &self,
        contract: &ContractSpec,
        data_type: DataType,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<Tick>, SourceError>> {
        let shared = self.shared.clone();
        let contract = contract.clone();
        async move {
            let collect = async {
                let mut sub = shared.open(None, contract, data_type, true).await?;
                let mut ticks = Vec::new();
                while let Some(item) = sub.next().await {
                    match item {
                        Ok(SubscriptionItem::Data(TickTypes::SnapshotEnd)) => break,
                        Ok(SubscriptionItem::Data(t)) => ticks_from_ib(t, &mut ticks),
                        Ok(SubscriptionItem::Notice(_)) => {}
                        Err(e) => return Err(error_from_ib(&e)),
                    }
                }
                Ok(ticks)
            };
            tokio::time::timeout(deadline, collect)
                .await
                .map_err(|_| SourceError::Deadline(deadline))?
        }
        .boxed()
    }

    fn contract_details(
        &self,
        contract: &ContractSpec,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<ContractDetails>, SourceError>> {
        let shared = self.shared.clone();
        let ib = contract_to_ib(contract);
        async move {
            let link = shared.request_link().await?;
            let mut sub = link
                .client
                .contract_details_stream(&ib)
                .subscribe()
                .await
                .map_err(|e| error_from_ib(&e))?;
            let found = within(sub.collect_to_end_within(deadline).await, deadline)?;
            Ok(found.iter().map(details_from_ib).collect())
        }
        .boxed()
    }

    fn matching_symbols(
        &self,
        pattern: &str,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<SymbolMatch>, SourceError>> {
        let shared = self.shared.clone();
        let pattern = pattern.to_owned();
        async move {
            let link = shared.request_link().await?;
            let found = tokio::time::timeout(deadline, link.client.matching_symbols(&pattern))
                .await
                .map_err(|_| SourceError::Deadline(deadline))?
                .map_err(|e| error_from_ib(&e))?;
            Ok(found.iter().map(symbol_match_from_ib).collect())
        }
        .boxed()
    }

    fn option_params(
        &self,
        underlying: &ContractSpec,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<ChainParams>, SourceError>> {
        let shared = self.shared.clone();
        let underlying = underlying.clone();
        async move {
            let link = shared.request_link().await?;
            let con_id = i32::try_from(underlying.con_id).unwrap_or(0);
            let mut sub = link
                .client
                .option_chain(
                    &underlying.symbol,
                    sec_type_to_ib(underlying.sec_type),
                    con_id,
                )
                .subscribe()
                .await
                .map_err(|e| error_from_ib(&e))?;
            let found = within(sub.collect_to_end_within(deadline).await, deadline)?;
            Ok(found.iter().map(chain_from_ib).collect())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_name_the_farm_family_or_the_connectivity() {
        assert_eq!(
            data_notice(2103, "Market data farm connection is broken:usopt"),
            Some(DataNotice::Farm {
                farm: FarmKind::Options,
                up: false
            })
        );
        assert_eq!(
            data_notice(2104, "Market data farm connection is OK:usfarm"),
            Some(DataNotice::Farm {
                farm: FarmKind::Equities,
                up: true
            })
        );
        assert_eq!(
            data_notice(2106, "HMDS data farm connection is OK:ushmds"),
            None
        );
        assert_eq!(data_notice(10167, "delayed"), None);
        assert_eq!(
            data_notice(1100, "lost"),
            Some(DataNotice::ConnectivityLost)
        );
        assert_eq!(
            data_notice(1101, "restored - data lost"),
            Some(DataNotice::ConnectivityRestored { data_lost: true })
        );
    }
}
