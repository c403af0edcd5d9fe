//! The production [`MarketDataSource`]: the session's `ibapi` client, borrowed through
//! the session's link. Every message waits for the session's pacer, the market-data
//! type goes through the session's switch, and data notices are the session's
//! classified notices.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use ibapi::market_data::realtime::TickTypes;
use ibapi::subscriptions::{Subscription, SubscriptionItem};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::ib_convert::{
    chain_from_ib, contract_to_ib, details_from_ib, error_from_ib, sec_type_to_ib,
    symbol_match_from_ib, ticks_from_ib,
};
use super::source::{
    DataNotice, LinkState, MarketDataSource, SourceError, SourceEvent, StampedNotice, TickStream,
};
use super::tick::Tick;
use super::types::{
    ChainParams, ContractDetails, ContractSpec, MarketDataType, SecType, SymbolMatch,
};
use crate::ib::{
    DataTypeSwitch, Link, LinkWatch, MessagePacer, NoticeEffect, Session, SessionNotice,
};

/// Generic ticks asked for options: option volume (100), open interest (101) and
/// implied volatility (106).
const OPTION_GENERIC_TICKS: &[&str] = &["100", "101", "106"];

struct Shared {
    links: LinkWatch,
    state: watch::Sender<LinkState>,
    notices: broadcast::Sender<StampedNotice>,
    pacer: MessagePacer,
    data_types: DataTypeSwitch,
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
    /// Follows `session`'s link and notices; sends through its pacer and its
    /// market-data type switch.
    pub fn new(session: &Session) -> Arc<IbSource> {
        let (state, _) = watch::channel(LinkState::default());
        let (notices, _) = broadcast::channel(64);
        let shared = Arc::new(Shared {
            links: session.link(),
            state,
            notices,
            pacer: session.pacer(),
            data_types: session.data_types(),
        });
        let stop = CancellationToken::new();
        tokio::spawn(follow_links(shared.clone(), stop.clone()));
        tokio::spawn(forward_notices(
            session.notices(),
            shared.notices.clone(),
            stop.clone(),
        ));
        Arc::new(IbSource { shared, stop })
    }
}

/// Mirrors the link into a [`LinkState`].
async fn follow_links(shared: Arc<Shared>, stop: CancellationToken) {
    let mut links = shared.links.clone();
    loop {
        let generation = links.borrow_and_update().as_ref().map(|l| l.generation);
        shared.state.send_replace(LinkState { generation });
        tokio::select! {
            _ = stop.cancelled() => break,
            changed = links.changed() => if changed.is_err() { break },
        }
    }
    shared.state.send_replace(LinkState::default());
}

/// Passes on the session's notices that change whether data flows.
async fn forward_notices(
    mut from: broadcast::Receiver<SessionNotice>,
    to: broadcast::Sender<StampedNotice>,
    stop: CancellationToken,
) {
    loop {
        let received = tokio::select! {
            _ = stop.cancelled() => return,
            received = from.recv() => received,
        };
        match received {
            Ok(n) => {
                if let Some(notice) = data_notice(&n.effect) {
                    let _ = to.send(StampedNotice {
                        generation: n.generation,
                        notice,
                    });
                }
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "market data missed session notices");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// What a classified notice means for the data flowing, if anything.
pub(crate) fn data_notice(effect: &NoticeEffect) -> Option<DataNotice> {
    match effect {
        NoticeEffect::IbConnectivityLost => Some(DataNotice::ConnectivityLost),
        NoticeEffect::IbConnectivityRestored { subscriptions_lost } => {
            Some(DataNotice::ConnectivityRestored {
                data_lost: *subscriptions_lost,
            })
        }
        NoticeEffect::FarmDown { farm } => {
            farm.kind.map(|farm| DataNotice::Farm { farm, up: false })
        }
        NoticeEffect::FarmOk { farm } => farm.kind.map(|farm| DataNotice::Farm { farm, up: true }),
        NoticeEffect::CompetingSession => Some(DataNotice::CompetingSession),
        NoticeEffect::ClientIdInUse | NoticeEffect::TransportReconnected | NoticeEffect::Other => {
            None
        }
    }
}

/// An `ibapi` subscription whose drop, which writes IB's cancel unless IB ended the
/// request, waits for the pacer first: `ibapi`'s own limiter lets cancels through at
/// once, and they count against the same budget.
pub(crate) struct Paced<S: Send + 'static> {
    sub: Option<S>,
    pacer: MessagePacer,
    /// IB ended the request (end marker, snapshot end): dropping sends nothing.
    ended: bool,
}

impl<S: Send + 'static> Paced<S> {
    pub(crate) fn new(sub: S, pacer: &MessagePacer) -> Self {
        Paced {
            sub: Some(sub),
            pacer: pacer.clone(),
            ended: false,
        }
    }

    /// The subscription; `None` only while it is being dropped.
    pub(crate) fn get_mut(&mut self) -> Option<&mut S> {
        self.sub.as_mut()
    }

    /// IB ended the request: dropping needs no slot.
    fn ended(mut self) {
        self.ended = true;
    }
}

impl<S: Send + 'static> Drop for Paced<S> {
    fn drop(&mut self) {
        let Some(sub) = self.sub.take() else { return };
        if self.ended {
            return;
        }
        let pacer = self.pacer.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                pacer.acquire().await;
                drop(sub);
            });
        }
    }
}

/// The next item of a paced market-data subscription.
async fn next_item(
    paced: &mut Paced<Subscription<TickTypes>>,
) -> Option<Result<SubscriptionItem<TickTypes>, ibapi::Error>> {
    paced.get_mut()?.next().await
}

impl Shared {
    fn link(&self, generation: Option<u64>) -> Result<Link, SourceError> {
        let link = self.links.borrow().clone().ok_or(SourceError::LinkDown)?;
        match generation {
            Some(g) if g != link.generation => Err(SourceError::LinkDown),
            _ => Ok(link),
        }
    }

    /// The link now up for a look-up, once the pacer lets it go (behind subscriptions).
    async fn request_link(&self) -> Result<Link, SourceError> {
        let link = self.link(None)?;
        self.pacer.acquire_lookup().await;
        Ok(link)
    }

    async fn open(
        self: Arc<Self>,
        generation: Option<u64>,
        contract: ContractSpec,
        data_type: MarketDataType,
        snapshot: bool,
    ) -> Result<Paced<Subscription<TickTypes>>, SourceError> {
        let link = self.link(generation)?;
        let ib = contract_to_ib(&contract);
        // Held across the request so no other request switches the type in between.
        let mut switch = self.data_types.hold().await;
        switch
            .ensure(&link, data_type)
            .await
            .map_err(|e| error_from_ib(&e))?;
        self.pacer.acquire().await;
        let mut builder = link.client.market_data(&ib);
        if snapshot {
            builder = builder.snapshot();
        } else if matches!(contract.sec_type, SecType::Option | SecType::FutureOption) {
            builder = builder.generic_ticks(OPTION_GENERIC_TICKS);
        }
        let sub = builder.subscribe().await.map_err(|e| error_from_ib(&e))?;
        Ok(Paced::new(sub, &self.pacer))
    }
}

/// A subscription as a stream of domain events; dropping it cancels at IB, paced.
struct PacedTicks {
    sub: Paced<Subscription<TickTypes>>,
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
            let Some(sub) = this.sub.get_mut() else {
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

    fn data_notices(&self) -> broadcast::Receiver<StampedNotice> {
        self.shared.notices.subscribe()
    }

    fn subscribe(
        &self,
        generation: u64,
        contract: &ContractSpec,
        data_type: MarketDataType,
    ) -> BoxFuture<'static, Result<TickStream, SourceError>> {
        let shared = self.shared.clone();
        let contract = contract.clone();
        async move {
            let sub = shared
                .clone()
                .open(Some(generation), contract, data_type, false)
                .await?;
            let stream: TickStream = PacedTicks {
                sub,
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
        data_type: MarketDataType,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<Tick>, SourceError>> {
        let shared = self.shared.clone();
        let contract = contract.clone();
        async move {
            let collect = async {
                let mut sub = shared.open(None, contract, data_type, true).await?;
                let mut ticks = Vec::new();
                while let Some(item) = next_item(&mut sub).await {
                    match item {
                        Ok(SubscriptionItem::Data(TickTypes::SnapshotEnd)) => {
                            sub.ended();
                            break;
                        }
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
            let sub = link
                .client
                .contract_details_stream(&ib)
                .subscribe()
                .await
                .map_err(|e| error_from_ib(&e))?;
            // A look-up that fails (unknown contract, deadline) is cancelled at IB.
            let mut paced = Paced::new(sub, &shared.pacer);
            let Some(sub) = paced.get_mut() else {
                return Err(SourceError::LinkDown);
            };
            let found = within(sub.collect_to_end_within(deadline).await, deadline)?;
            paced.ended();
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
    use crate::ib::FarmKind;
    use crate::ib::notices::classify;

    fn read(code: i32, message: &str) -> Option<DataNotice> {
        data_notice(&classify(code, message))
    }

    #[test]
    fn notices_name_the_farm_family_or_the_connectivity() {
        assert_eq!(
            read(2103, "Market data farm connection is broken:usopt"),
            Some(DataNotice::Farm {
                farm: FarmKind::Options,
                up: false
            })
        );
        assert_eq!(
            read(2104, "Market data farm connection is OK:usfarm"),
            Some(DataNotice::Farm {
                farm: FarmKind::Equities,
                up: true
            })
        );
        assert_eq!(read(2106, "HMDS data farm connection is OK:ushmds"), None);
        assert_eq!(read(10167, "delayed"), None);
        assert_eq!(read(1100, "lost"), Some(DataNotice::ConnectivityLost));
        assert_eq!(
            read(1101, "restored - data lost"),
            Some(DataNotice::ConnectivityRestored { data_lost: true })
        );
        assert_eq!(read(10197, "competing"), Some(DataNotice::CompetingSession));
        assert_eq!(read(-8, "reconnected"), None);
    }
}
