//! A scripted market-data source for unit tests of the fan-out.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::source::{
    DataNotice, LinkState, MarketDataSource, SourceError, SourceEvent, StampedNotice, TickStream,
};
use super::tick::Tick;
use super::types::{ChainParams, ContractDetails, ContractSpec, MarketDataType, SymbolMatch};

/// One subscription the fan-out opened.
pub struct FakeSub {
    pub con_id: i64,
    pub generation: u64,
    pub data_type: MarketDataType,
    tx: mpsc::UnboundedSender<SourceEvent>,
}

impl FakeSub {
    pub fn open(&self) -> bool {
        !self.tx.is_closed()
    }
}

pub struct FakeSource {
    link: SyntheticLink,
    pub subs: Mutex<Vec<FakeSub>>,
    /// conIds refused live data (354).
    pub no_live: Mutex<HashSet<i64>>,
    /// Contract details by symbol.
    pub details: Mutex<HashMap<String, ContractDetails>>,
    /// Option contracts listed per expiry (answers to look-ups without a strike).
    pub listings: Mutex<HashMap<String, Vec<ContractDetails>>>,
    /// Option-chain parameters of every underlying.
    pub chain: Mutex<Vec<ChainParams>>,
    pub detail_requests: Mutex<u32>,
    /// Symbols whose look-ups IB never answers (a slow look-up, as long as a test needs).
    pub unanswered: Mutex<HashSet<String>>,
}

impl FakeSource {
    pub fn new() -> Arc<FakeSource> {
        Arc::new(FakeSource {
            link: SyntheticLink::new(16),
            subs: Mutex::new(Vec::new()),
            no_live: Mutex::new(HashSet::new()),
            details: Mutex::new(HashMap::new()),
            listings: Mutex::new(HashMap::new()),
            chain: Mutex::new(Vec::new()),
            detail_requests: Mutex::new(0),
            unanswered: Mutex::new(HashSet::new()),
        })
    }

    pub fn set_link(&self, generation: Option<u64>) {
        self.link.set(generation);
    }

    pub fn farm(&self, notice: DataNotice) {
        self.link.notify(notice);
    }

    /// Subscriptions opened so far, and those still open.
    pub fn counts(&self) -> (usize, usize) {
        let subs = self.subs.lock().unwrap();
        (subs.len(), subs.iter().filter(|s| s.open()).count())
    }

    /// Sends a tick to the newest open subscription of `con_id`; false if none is open.
    pub fn tick(&self, con_id: i64, tick: Tick) -> bool {
        self.event(con_id, SourceEvent::Tick(tick))
    }

    /// Sends an event to the newest open subscription of `con_id`; false if none is open.
    pub fn event(&self, con_id: i64, event: SourceEvent) -> bool {
        let subs = self.subs.lock().unwrap();
        subs.iter()
            .rev()
            .find(|s| s.con_id == con_id && s.open())
            .is_some_and(|s| s.tx.send(event).is_ok())
    }

    /// Ends every open subscription as a dropped connection does.
    pub fn end_all(&self, error: SourceError) {
        for s in self.subs.lock().unwrap().iter() {
            let _ = s.tx.send(SourceEvent::Ended(error.clone()));
        }
    }

    pub fn last_sub_type(&self, con_id: i64) -> Option<(u64, MarketDataType)> {
        let subs = self.subs.lock().unwrap();
        subs.iter()
            .rev()
            .find(|s| s.con_id == con_id)
            .map(|s| (s.generation, s.data_type))
    }
}

impl MarketDataSource for FakeSource {
    fn link_state(&self) -> watch::Receiver<LinkState> {
        self.link.link_state()
    }

    fn data_notices(&self) -> broadcast::Receiver<StampedNotice> {
        self.link.data_notices()
    }

    fn subscribe(
        &self,
        generation: u64,
        contract: &ContractSpec,
        data_type: MarketDataType,
    ) -> BoxFuture<'static, Result<TickStream, SourceError>> {
        let (tx, rx) = mpsc::unbounded_channel();
        if self.link.generation() != Some(generation) {
            return futures::future::ready(Err(SourceError::LinkDown)).boxed();
        }
        if data_type == MarketDataType::Live
            && self.no_live.lock().unwrap().contains(&contract.con_id)
        {
            let _ = tx.send(SourceEvent::Ended(SourceError::NoPermission(
                "Requested market data is not subscribed".into(),
            )));
        }
        self.subs.lock().unwrap().push(FakeSub {
            con_id: contract.con_id,
            generation,
            data_type,
            tx,
        });
        let stream: TickStream = UnboundedReceiverStream::new(rx).boxed();
        futures::future::ready(Ok(stream)).boxed()
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
        *self.detail_requests.lock().unwrap() += 1;
        if self.unanswered.lock().unwrap().contains(&contract.symbol) {
            return futures::future::pending().boxed();
        }
        if contract.sec_type == super::types::SecType::Option && contract.strike.is_none() {
            let listed = self.listings.lock().unwrap().get(&contract.expiry).cloned();
            let listed = listed
                .unwrap_or_default()
                .into_iter()
                .filter(|d| d.contract.right == contract.right)
                .collect();
            return futures::future::ready(Ok(listed)).boxed();
        }
        let found = self.details.lock().unwrap().get(&contract.symbol).cloned();
        futures::future::ready(match found {
            Some(d) => Ok(vec![d]),
            None => Err(SourceError::NotFound(
                "No security definition has been found for the request".into(),
            )),
        })
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
        futures::future::ready(Ok(self.chain.lock().unwrap().clone())).boxed()
    }
}

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
