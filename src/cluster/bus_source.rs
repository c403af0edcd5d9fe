//! A node's market-data source when another node leads: everything comes from the
//! leader's relay over the bus.
//!
//! The link is the leader's session as the relay reports it: each new (term, generation)
//! of the leader is a new local generation, so a new leader, or a leader's new session,
//! makes every feed here subscribe again, as a new IB session does. A leader not heard
//! from within [`BusSourceConfig::link_timeout`] counts as a session down. A subscription
//! declares the instrument to the relay and folds the leader's values as ticks; values of
//! a term older than the newest seen are a deposed leader's, and ignored.

use super::lock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{Client, RequestErrorKind};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use prost::Message as _;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::subjects::Subjects;
use super::wire::{self, WireError};
use super::{BusError, MAX_LOOKUP_DEADLINE};
use crate::bars::source::{BarStream, HistoryAsk, HistorySource};
use crate::bars::spec::WhatToShow;
use crate::fanout::tick::Tick;
use crate::fanout::{
    ChainParams, ContractDetails, ContractSpec, LinkState, MarketDataSource, MarketDataType,
    SourceError, SourceEvent, StampedNotice, SymbolMatch, TickStream,
};
use crate::proto::ibstream::cluster::v1 as pb;
use crate::store::StoredBar;

/// How a node follows the leader.
#[derive(Debug, Clone)]
pub struct BusSourceConfig {
    /// The cluster's name (its subjects are `ibstream.<cluster>.…`).
    pub cluster: String,
    /// This node's name, unique in the cluster.
    pub node: String,
    /// How often the node renews its instruments with the leader (well within the
    /// relay's `interest_ttl`).
    pub renew_every: Duration,
    /// How long without word from the leader before its session counts as down.
    pub link_timeout: Duration,
    /// How long the relay gets to answer a request for an instrument.
    pub request_timeout: Duration,
}

/// What a look-up's reply may wait beyond its deadline: the relay answers a deadline IB
/// missed only once the deadline is over.
const REPLY_GRACE: Duration = Duration::from_millis(500);

/// The leader as this node last heard of it.
#[derive(Debug)]
struct Leader {
    /// The newest term seen; older ones are ignored.
    term: u64,
    /// The leader's own session generation, while up.
    generation: Option<u64>,
    /// The generation handed to the fan-out here for it.
    local: u64,
    heard: Instant,
}

struct Inner {
    client: Client,
    subjects: Subjects,
    config: BusSourceConfig,
    link: watch::Sender<LinkState>,
    notices: broadcast::Sender<StampedNotice>,
    leader: Mutex<Leader>,
    /// Instruments subscribed here, with how many subscriptions hold each.
    interest: Mutex<HashMap<i64, usize>>,
    /// Real-time bar feeds read here, likewise.
    bar_interest: Mutex<HashMap<BarsKey, usize>>,
    cancel: CancellationToken,
}

/// A [`MarketDataSource`] over the cluster's bus.
pub struct BusSource {
    inner: Arc<Inner>,
}

impl BusSource {
    /// Starts following the leader's link and notices and renewing this node's interest.
    /// The link is down until the leader is heard from.
    pub async fn start(client: Client, config: BusSourceConfig) -> Result<BusSource, BusError> {
        let subjects = Subjects::new(&config.cluster)?;
        let bus = |e: async_nats::SubscribeError| BusError::Bus(e.to_string());
        let link_sub = client.subscribe(subjects.link()).await.map_err(bus)?;
        let notice_sub = client.subscribe(subjects.notice()).await.map_err(bus)?;
        let (link, _) = watch::channel(LinkState::default());
        let (notices, _) = broadcast::channel(64);
        let inner = Arc::new(Inner {
            client,
            subjects,
            config,
            link,
            notices,
            leader: Mutex::new(Leader {
                term: 0,
                generation: None,
                local: 0,
                heard: Instant::now(),
            }),
            interest: Mutex::default(),
            bar_interest: Mutex::default(),
            cancel: CancellationToken::new(),
        });
        let run = |f: BoxFuture<'static, ()>| {
            let cancel = inner.cancel.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = f => {}
                }
            });
        };
        run(inner.clone().follow_link(link_sub).boxed());
        run(inner.clone().follow_notices(notice_sub).boxed());
        run(inner.clone().watch_silence().boxed());
        run(inner.clone().renew().boxed());
        Ok(BusSource { inner })
    }

    /// The newest leader term heard of.
    pub fn term(&self) -> u64 {
        lock(&self.inner.leader).term
    }

    /// Stops following the leader and renewing interest (the leader releases this
    /// node's instruments once its holds expire); the link goes down.
    pub fn stop(&self) {
        self.inner.cancel.cancel();
        self.inner.link.send_replace(LinkState::default());
    }
}

impl Drop for BusSource {
    fn drop(&mut self) {
        self.inner.cancel.cancel();
    }
}

impl Inner {
    async fn follow_link(self: Arc<Self>, mut sub: async_nats::Subscriber) {
        while let Some(msg) = sub.next().await {
            match wire::decode::<pb::Link>(&msg.payload) {
                Ok(link) => self.on_link(link.term, link.generation),
                Err(e) => tracing::debug!(error = %e, "undecodable link message ignored"),
            }
        }
    }

    fn on_link(&self, term: u64, generation: Option<u64>) {
        let mut leader = lock(&self.leader);
        if term < leader.term {
            return;
        }
        leader.heard = Instant::now();
        if term == leader.term && generation == leader.generation {
            return;
        }
        leader.term = term;
        leader.generation = generation;
        let local = generation.map(|_| {
            leader.local += 1;
            leader.local
        });
        tracing::info!(term, leader_generation = ?generation, generation = ?local, "leader's session changed");
        self.link.send_replace(LinkState { generation: local });
    }

    /// Takes the link down when the leader falls silent, so feeds mark themselves stale
    /// and subscribe again once a leader is back.
    async fn watch_silence(self: Arc<Self>) {
        let timeout = self.config.link_timeout;
        let mut tick = tokio::time::interval((timeout / 4).max(Duration::from_millis(10)));
        loop {
            tick.tick().await;
            let mut leader = lock(&self.leader);
            if leader.generation.is_some() && leader.heard.elapsed() >= timeout {
                tracing::warn!(term = leader.term, silent = ?leader.heard.elapsed(), "the leader fell silent");
                leader.generation = None;
                self.link.send_replace(LinkState::default());
            }
        }
    }

    async fn follow_notices(self: Arc<Self>, mut sub: async_nats::Subscriber) {
        while let Some(msg) = sub.next().await {
            let Ok(n) = wire::decode::<pb::Notice>(&msg.payload) else {
                continue;
            };
            let Ok(notice) = wire::notice_from_pb(&n) else {
                continue;
            };
            let stamped = {
                let leader = lock(&self.leader);
                (n.term == leader.term && Some(n.generation) == leader.generation).then_some(
                    StampedNotice {
                        generation: leader.local,
                        notice,
                    },
                )
            };
            if let Some(s) = stamped {
                let _ = self.notices.send(s);
            }
        }
    }

    async fn renew(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.renew_every);
        loop {
            tick.tick().await;
            let con_ids: Vec<i64> = lock(&self.interest).keys().copied().collect();
            let bars = lock(&self.bar_interest)
                .keys()
                .map(|(con_id, what, regular_hours)| pb::BarsKey {
                    con_id: *con_id,
                    what_to_show: what.ib_text().to_owned(),
                    regular_hours: *regular_hours,
                })
                .collect();
            let renewal = pb::Renewal {
                node: self.config.node.clone(),
                con_ids,
                bars,
            };
            let _ = self
                .client
                .publish(self.subjects.renew(), renewal.encode_to_vec().into())
                .await;
        }
    }

    /// Sends a request to the relay and waits `wait` for its reply.
    async fn ask(
        &self,
        subject: String,
        payload: Vec<u8>,
        wait: Duration,
    ) -> Result<Bytes, AskError> {
        let request = async_nats::Request::new()
            .payload(payload.into())
            .timeout(Some(wait));
        match self.client.send_request(subject, request).await {
            Ok(msg) => Ok(msg.payload),
            Err(e) if e.kind() == RequestErrorKind::TimedOut => Err(AskError::TimedOut),
            Err(_) => Err(AskError::NoLeader),
        }
    }

    async fn subscribe(
        self: Arc<Self>,
        generation: u64,
        contract: ContractSpec,
        data_type: MarketDataType,
    ) -> Result<TickStream, SourceError> {
        let term = {
            let leader = lock(&self.leader);
            if leader.generation.is_none() || leader.local != generation {
                return Err(SourceError::LinkDown);
            }
            leader.term
        };
        let con_id = contract.con_id;
        // Subscribed before asking, so no value published after the reply is missed.
        let values = self
            .client
            .subscribe(self.subjects.quote(con_id))
            .await
            .map_err(|_| SourceError::LinkDown)?;
        let held = Interest::take(&self, con_id, |i| &i.interest);
        let request = pb::InterestRequest {
            node: self.config.node.clone(),
            contract: Some(wire::contract_to_pb(&contract)),
            data_type: wire::data_type_to_pb(data_type).into(),
        };
        let reply = self
            .ask(
                self.subjects.interest(),
                request.encode_to_vec(),
                self.config.request_timeout,
            )
            .await
            .map_err(|_| SourceError::LinkDown)?;
        let reply: pb::InterestReply =
            wire::decode(&reply).map_err(|e| bad_reply("interest", &e))?;
        if reply.term < term {
            // A deposed leader answered: the current one will, once the link says so.
            return Err(SourceError::LinkDown);
        }
        let first = match reply.result {
            Some(pb::interest_reply::Result::Value(v)) => v,
            Some(pb::interest_reply::Result::Error(e)) => {
                return Err(wire::error_from_pb(&e).map_err(|e| bad_reply("interest", &e))?);
            }
            None => return Err(bad_reply("interest", &WireError::Missing("result"))),
        };
        let mut order = Order {
            term: reply.term,
            sequence: 0,
        };
        let initial = order.accept(&self, &first);
        let inner = self.clone();
        let rest = values.filter_map(move |msg| {
            let events = match wire::decode::<pb::FeedValue>(&msg.payload) {
                Ok(v) if v.con_id == con_id => order.accept(&inner, &v),
                Ok(_) => Vec::new(),
                Err(e) => {
                    tracing::debug!(con_id, error = %e, "undecodable value ignored");
                    Vec::new()
                }
            };
            futures::future::ready((!events.is_empty()).then(|| futures::stream::iter(events)))
        });
        let stream = futures::stream::iter(initial)
            .chain(rest.flatten())
            // The interest lasts as long as the stream.
            .map(move |e| {
                let _ = &held;
                e
            });
        Ok(stream.boxed())
    }

    /// A real-time bar feed held at the leader for as long as the stream lives; bars of
    /// an older term than the leader's answer are a deposed leader's, and ignored.
    async fn live_bars(
        self: Arc<Self>,
        contract: ContractSpec,
        what: WhatToShow,
        regular_hours: bool,
    ) -> Result<BarStream, SourceError> {
        let term = {
            let leader = lock(&self.leader);
            if leader.generation.is_none() {
                return Err(SourceError::LinkDown);
            }
            leader.term
        };
        let subject = self
            .subjects
            .live_bars(contract.con_id, what.ib_text(), regular_hours);
        // Subscribed before asking, so no bar published after the reply is missed.
        let bars = self
            .client
            .subscribe(subject)
            .await
            .map_err(|_| SourceError::LinkDown)?;
        let key = (contract.con_id, what, regular_hours);
        let held = Interest::take(&self, key, |i| &i.bar_interest);
        let request = pb::BarsInterest {
            node: self.config.node.clone(),
            contract: Some(wire::contract_to_pb(&contract)),
            what_to_show: what.ib_text().to_owned(),
            regular_hours,
        };
        let reply = self
            .ask(
                self.subjects.bars_interest(),
                request.encode_to_vec(),
                self.config.request_timeout,
            )
            .await
            .map_err(|_| SourceError::LinkDown)?;
        let reply: pb::BarsInterestReply =
            wire::decode(&reply).map_err(|e| bad_reply("bars interest", &e))?;
        if reply.term < term {
            return Err(SourceError::LinkDown);
        }
        if let Some(e) = reply.error {
            return Err(wire::error_from_pb(&e).map_err(|e| bad_reply("bars interest", &e))?);
        }
        let newest = reply.term;
        let stream = bars.filter_map(move |msg| {
            // The interest lasts as long as the stream.
            let _ = &held;
            let bar = wire::decode::<pb::LiveBar>(&msg.payload)
                .ok()
                .filter(|b| b.term >= newest)
                .and_then(|b| b.bar)
                .map(|b| Ok(wire::bar_from_pb(&b)));
            futures::future::ready(bar)
        });
        Ok(stream.boxed())
    }

    async fn lookup(
        &self,
        query: pb::lookup_request::Query,
        deadline: Duration,
    ) -> Result<pb::lookup_reply::Result, SourceError> {
        let deadline = deadline.min(MAX_LOOKUP_DEADLINE);
        let request = pb::LookupRequest {
            deadline_ms: u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
            query: Some(query),
        };
        let reply = self
            .ask(
                self.subjects.lookup(),
                request.encode_to_vec(),
                deadline + REPLY_GRACE,
            )
            .await
            .map_err(|e| match e {
                AskError::TimedOut => SourceError::Deadline(deadline),
                AskError::NoLeader => SourceError::LinkDown,
            })?;
        let reply: pb::LookupReply = wire::decode(&reply).map_err(|e| bad_reply("look-up", &e))?;
        match reply.result {
            Some(pb::lookup_reply::Result::Error(e)) => {
                Err(wire::error_from_pb(&e).map_err(|e| bad_reply("look-up", &e))?)
            }
            Some(other) => Ok(other),
            None => Err(bad_reply("look-up", &WireError::Missing("result"))),
        }
    }
}

/// Why a request to the relay went unanswered.
enum AskError {
    TimedOut,
    NoLeader,
}

fn bad_reply(what: &str, e: &WireError) -> SourceError {
    SourceError::Ib {
        code: 0,
        message: format!("the leader's {what} reply was not understood: {e}"),
    }
}

fn unexpected(what: &str) -> SourceError {
    SourceError::Ib {
        code: 0,
        message: format!("the leader answered a {what} look-up with something else"),
    }
}

/// Which values of one subscription are new: none of an older term than the newest
/// seen, none older than the last one folded.
struct Order {
    term: u64,
    sequence: u64,
}

impl Order {
    fn accept(&mut self, inner: &Inner, v: &pb::FeedValue) -> Vec<SourceEvent> {
        let newest = lock(&inner.leader).term.max(self.term);
        if v.term < newest {
            tracing::debug!(
                con_id = v.con_id,
                term = v.term,
                newest,
                "value of a deposed leader ignored"
            );
            return Vec::new();
        }
        if v.term == self.term && v.sequence < self.sequence {
            return Vec::new();
        }
        match wire::value_events(v) {
            Ok(events) => {
                // Only a value understood moves the order on: a garbled one must not
                // make the values after it look old.
                self.term = v.term;
                self.sequence = v.sequence;
                events
            }
            Err(e) => {
                tracing::debug!(con_id = v.con_id, error = %e, "value not understood, ignored");
                Vec::new()
            }
        }
    }
}

/// One subscription's share of this node's interest in an instrument.
/// A real-time bar feed: conId, what to show, regular hours only.
type BarsKey = (i64, WhatToShow, bool);

/// One stream's share of what this node declares to the leader; the leader keeps a key
/// while some share of it lives here.
struct Interest<K: std::hash::Hash + Eq + Clone> {
    inner: Arc<Inner>,
    key: K,
    set: fn(&Inner) -> &Mutex<HashMap<K, usize>>,
}

impl<K: std::hash::Hash + Eq + Clone> Interest<K> {
    fn take(inner: &Arc<Inner>, key: K, set: fn(&Inner) -> &Mutex<HashMap<K, usize>>) -> Self {
        *lock(set(inner)).entry(key.clone()).or_insert(0) += 1;
        Interest {
            inner: inner.clone(),
            key,
            set,
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone> Drop for Interest<K> {
    fn drop(&mut self) {
        let mut interest = lock((self.set)(&self.inner));
        if let Some(n) = interest.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                interest.remove(&self.key);
            }
        }
    }
}

impl MarketDataSource for BusSource {
    fn link_state(&self) -> watch::Receiver<LinkState> {
        self.inner.link.subscribe()
    }

    fn data_notices(&self) -> broadcast::Receiver<StampedNotice> {
        self.inner.notices.subscribe()
    }

    fn subscribe(
        &self,
        generation: u64,
        contract: &ContractSpec,
        data_type: MarketDataType,
    ) -> BoxFuture<'static, Result<TickStream, SourceError>> {
        self.inner
            .clone()
            .subscribe(generation, contract.clone(), data_type)
            .boxed()
    }

    fn snapshot(
        &self,
        contract: &ContractSpec,
        data_type: MarketDataType,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<Tick>, SourceError>> {
        let inner = self.inner.clone();
        let query = pb::lookup_request::Query::Snapshot(pb::SnapshotQuery {
            contract: Some(wire::contract_to_pb(contract)),
            data_type: wire::data_type_to_pb(data_type).into(),
        });
        async move {
            match inner.lookup(query, deadline).await? {
                pb::lookup_reply::Result::Snapshot(v) => {
                    wire::value_ticks(&v).map_err(|e| bad_reply("snapshot", &e))
                }
                _ => Err(unexpected("snapshot")),
            }
        }
        .boxed()
    }

    fn contract_details(
        &self,
        contract: &ContractSpec,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<ContractDetails>, SourceError>> {
        let inner = self.inner.clone();
        let query = pb::lookup_request::Query::ContractDetails(wire::contract_to_pb(contract));
        async move {
            match inner.lookup(query, deadline).await? {
                pb::lookup_reply::Result::Details(d) => d
                    .items
                    .iter()
                    .map(wire::details_from_pb)
                    .collect::<Result<_, _>>()
                    .map_err(|e| bad_reply("contract details", &e)),
                _ => Err(unexpected("contract details")),
            }
        }
        .boxed()
    }

    fn matching_symbols(
        &self,
        pattern: &str,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<SymbolMatch>, SourceError>> {
        let inner = self.inner.clone();
        let query = pb::lookup_request::Query::MatchingSymbols(pattern.to_owned());
        async move {
            match inner.lookup(query, deadline).await? {
                pb::lookup_reply::Result::Symbols(s) => s
                    .items
                    .iter()
                    .map(wire::symbol_from_pb)
                    .collect::<Result<_, _>>()
                    .map_err(|e| bad_reply("symbol search", &e)),
                _ => Err(unexpected("symbol search")),
            }
        }
        .boxed()
    }

    fn option_params(
        &self,
        underlying: &ContractSpec,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<ChainParams>, SourceError>> {
        let inner = self.inner.clone();
        let query = pb::lookup_request::Query::OptionParams(wire::contract_to_pb(underlying));
        async move {
            match inner.lookup(query, deadline).await? {
                pb::lookup_reply::Result::Chains(c) => {
                    Ok(c.items.iter().map(wire::chain_from_pb).collect())
                }
                _ => Err(unexpected("option chain")),
            }
        }
        .boxed()
    }
}

/// Historical data comes from the leader, paced there for the whole cluster.
impl HistorySource for BusSource {
    fn realtime_bars(
        &self,
        contract: &ContractSpec,
        what: WhatToShow,
        regular_hours: bool,
    ) -> BoxFuture<'static, Result<BarStream, SourceError>> {
        self.inner
            .clone()
            .live_bars(contract.clone(), what, regular_hours)
            .boxed()
    }

    fn bars(
        &self,
        ask: HistoryAsk,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<StoredBar>, SourceError>> {
        let inner = self.inner.clone();
        let query = pb::lookup_request::Query::History(wire::history_to_pb(&ask));
        async move {
            match inner.lookup(query, deadline).await? {
                pb::lookup_reply::Result::Bars(b) => {
                    Ok(b.items.iter().map(wire::bar_from_pb).collect())
                }
                _ => Err(unexpected("historical bars")),
            }
        }
        .boxed()
    }

    fn head_timestamp(
        &self,
        contract: &ContractSpec,
        what: WhatToShow,
        regular_hours: bool,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<i64, SourceError>> {
        let inner = self.inner.clone();
        let query =
            pb::lookup_request::Query::Head(wire::head_to_pb(contract, what, regular_hours));
        async move {
            match inner.lookup(query, deadline).await? {
                pb::lookup_reply::Result::Head(head) => Ok(head),
                _ => Err(unexpected("head timestamp")),
            }
        }
        .boxed()
    }
}
