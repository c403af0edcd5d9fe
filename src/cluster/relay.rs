//! The leader's side of the data plane: it holds instruments in the leader's fan-out on
//! behalf of the other nodes and publishes their values, its session's state and notices,
//! and answers look-ups through the leader's source, so no other node needs IB.
//!
//! The leader's fan-out does all the work a single node does: one IB subscription per
//! instrument whoever asks, its line budget and pacer for the whole cluster. A node's hold
//! lasts while the node renews it; a node that stops renewing loses its holds after
//! [`RelayConfig::interest_ttl`], and the fan-out's own linger applies after that.

use super::lock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{Client, Message};
use futures::StreamExt;
use prost::Message as _;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::history::HistoryPort;
use super::live_relay::LiveRelay;
use super::subjects::Subjects;
use super::wire::{self, WireError};
use super::{BusError, MAX_LOOKUP_DEADLINE};
use crate::fanout::{
    Fanout, FanoutError, FeedRef, FeedStatus, FeedView, OptionExtras, SourceError,
};
use crate::proto::ibstream::cluster::v1 as pb;

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The cluster's name (its subjects are `ibstream.<cluster>.…`).
    pub cluster: String,
    /// The leader's term, stamped on everything published.
    pub term: u64,
    /// How long a node's hold lasts without a renewal.
    pub interest_ttl: Duration,
    /// How often the session state is published when it does not change.
    pub link_every: Duration,
}

/// One node's hold on one instrument.
struct Hold {
    feed: FeedRef,
    renewed: Instant,
}

/// The task publishing one instrument's values.
struct Publisher {
    rx: watch::Receiver<Arc<FeedView>>,
    task: AbortHandle,
}

#[derive(Default)]
struct Holds {
    by_node: HashMap<(String, i64), Hold>,
    publishers: HashMap<i64, Publisher>,
}

struct Shared {
    client: Client,
    fanout: Fanout,
    /// Historical data for the other nodes, when this leader serves it.
    history: Option<HistoryPort>,
    subjects: Subjects,
    config: RelayConfig,
    holds: Mutex<Holds>,
    cancel: CancellationToken,
}

/// A running relay; dropping it (or [`Relay::stop`]) stops it and releases every hold.
pub struct Relay {
    shared: Arc<Shared>,
    _live: Option<LiveRelay>,
}

impl Relay {
    /// Subscribes to the cluster's request subjects and starts publishing the session's
    /// state. Returns once the subscriptions are in place.
    pub async fn start(
        client: Client,
        fanout: Fanout,
        history: Option<HistoryPort>,
        config: RelayConfig,
    ) -> Result<Relay, BusError> {
        let subjects = Subjects::new(&config.cluster)?;
        let bus = |e: async_nats::SubscribeError| BusError::Bus(e.to_string());
        let interest = client.subscribe(subjects.interest()).await.map_err(bus)?;
        let renew = client.subscribe(subjects.renew()).await.map_err(bus)?;
        let lookup = client.subscribe(subjects.lookup()).await.map_err(bus)?;
        let live = match history.as_ref().and_then(|h| h.live.clone()) {
            Some(live) => Some(
                LiveRelay::start(
                    client.clone(),
                    subjects.clone(),
                    live,
                    config.term,
                    config.interest_ttl,
                )
                .await?,
            ),
            None => None,
        };
        let shared = Arc::new(Shared {
            client,
            fanout,
            history,
            subjects,
            config,
            holds: Mutex::default(),
            cancel: CancellationToken::new(),
        });
        let run = |s: &Arc<Shared>, f: futures::future::BoxFuture<'static, ()>| {
            let cancel = s.cancel.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = f => {}
                }
            });
        };
        run(&shared, Box::pin(shared.clone().serve_interest(interest)));
        run(&shared, Box::pin(shared.clone().serve_renewals(renew)));
        run(&shared, Box::pin(shared.clone().serve_lookups(lookup)));
        run(&shared, Box::pin(shared.clone().expire()));
        run(&shared, Box::pin(shared.clone().publish_link()));
        run(&shared, Box::pin(shared.clone().publish_notices()));
        Ok(Relay {
            shared,
            _live: live,
        })
    }

    /// The term this relay publishes in.
    pub fn term(&self) -> u64 {
        self.shared.config.term
    }

    /// Instruments held for other nodes, by conId, with how many nodes hold each.
    pub fn held(&self) -> HashMap<i64, usize> {
        let holds = lock(&self.shared.holds);
        let mut out = HashMap::new();
        for (_, con_id) in holds.by_node.keys() {
            *out.entry(*con_id).or_insert(0) += 1;
        }
        out
    }

    /// Stops answering and publishing, and releases every hold.
    pub fn stop(self) {}
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
        let mut holds = lock(&self.shared.holds);
        for p in holds.publishers.values() {
            p.task.abort();
        }
        holds.publishers.clear();
        holds.by_node.clear();
    }
}

/// The fan-out's refusal as the source error a follower's feed understands; the cluster's
/// line budget is a line limit like IB's.
pub(super) fn source_error(e: FanoutError) -> SourceError {
    match e {
        FanoutError::LineBudget { .. } => SourceError::LineLimit(e.to_string()),
        FanoutError::IbLineLimit(m) => SourceError::LineLimit(m),
        FanoutError::NotFound(m) => SourceError::NotFound(m),
        FanoutError::NoPermission(m) => SourceError::NoPermission(m),
        FanoutError::Deadline(d) => SourceError::Deadline(d),
        FanoutError::Unavailable => SourceError::LinkDown,
        FanoutError::Ib { code, message } => SourceError::Ib { code, message },
        other => refused(other.to_string()),
    }
}

/// A request the relay cannot act on (no IB code applies).
fn refused(message: String) -> SourceError {
    SourceError::Ib { code: 0, message }
}

fn no_history() -> SourceError {
    refused("this leader serves no historical data".into())
}

fn undecodable(what: &str, e: &WireError) -> SourceError {
    refused(format!("undecodable {what}: {e}"))
}

impl Shared {
    async fn reply(&self, msg: &Message, payload: Vec<u8>) {
        if let Some(reply) = msg.reply.clone() {
            // A requester that left takes no answer; nothing to do about it.
            let _ = self.client.publish(reply, payload.into()).await;
        }
    }

    async fn serve_interest(self: Arc<Self>, mut sub: async_nats::Subscriber) {
        while let Some(msg) = sub.next().await {
            let result = match wire::decode::<pb::InterestRequest>(&msg.payload) {
                Ok(req) => self.declare(&req),
                Err(e) => Err(undecodable("interest request", &e)),
            };
            let result = match result {
                Ok(view) => {
                    pb::interest_reply::Result::Value(wire::value_to_pb(self.config.term, &view))
                }
                Err(e) => pb::interest_reply::Result::Error(wire::error_to_pb(&e)),
            };
            let reply = pb::InterestReply {
                term: self.config.term,
                result: Some(result),
            };
            self.reply(&msg, reply.encode_to_vec()).await;
        }
    }

    /// Holds the instrument for the node (again, if its feed failed) and returns its
    /// current value.
    fn declare(self: &Arc<Self>, req: &pb::InterestRequest) -> Result<Arc<FeedView>, SourceError> {
        let contract = req
            .contract
            .as_ref()
            .ok_or_else(|| undecodable("interest request", &WireError::Missing("contract")))?;
        let contract =
            wire::contract_from_pb(contract).map_err(|e| undecodable("interest request", &e))?;
        if contract.con_id <= 0 {
            return Err(refused("contract.con_id must be a resolved conId".into()));
        }
        if req.node.is_empty() {
            return Err(refused("node must name the asking node".into()));
        }
        let allow_delayed = wire::data_type_from_pb(req.data_type)
            .map_err(|e| undecodable("interest request", &e))?
            .is_some_and(|t| t.is_delayed());
        let key = (req.node.clone(), contract.con_id);
        let mut holds = lock(&self.holds);
        let now = Instant::now();
        if let Some(hold) = holds.by_node.get_mut(&key)
            && !matches!(hold.feed.current().status, FeedStatus::Failed(_))
        {
            hold.renewed = now;
            let (rx, view) = (hold.feed.watch(), hold.feed.current());
            self.ensure_publisher(&mut holds, key.1, rx);
            return Ok(view);
        }
        let feed = self
            .fanout
            .acquire(&[Arc::new(contract)], allow_delayed)
            .map_err(source_error)?
            .pop()
            .ok_or_else(|| refused("the fan-out returned no feed".into()))?;
        let view = feed.current();
        let rx = feed.watch();
        // Replacing a failed hold releases it after the new one is taken.
        holds
            .by_node
            .insert(key.clone(), Hold { feed, renewed: now });
        self.ensure_publisher(&mut holds, key.1, rx);
        Ok(view)
    }

    /// Publishes the instrument's values unless its current feed already is.
    fn ensure_publisher(
        self: &Arc<Self>,
        holds: &mut Holds,
        con_id: i64,
        rx: watch::Receiver<Arc<FeedView>>,
    ) {
        if let Some(p) = holds.publishers.get(&con_id) {
            if p.rx.same_channel(&rx) && !p.task.is_finished() {
                return;
            }
            p.task.abort();
        }
        let shared = self.clone();
        let mut values = rx.clone();
        let subject = self.subjects.quote(con_id);
        let task = tokio::spawn(async move {
            loop {
                let view = values.borrow_and_update().clone();
                let value = wire::value_to_pb(shared.config.term, &view);
                if shared
                    .client
                    .publish(subject.clone(), value.encode_to_vec().into())
                    .await
                    .is_err()
                    || values.changed().await.is_err()
                {
                    return;
                }
            }
        });
        holds.publishers.insert(
            con_id,
            Publisher {
                rx,
                task: task.abort_handle(),
            },
        );
    }

    async fn serve_renewals(self: Arc<Self>, mut sub: async_nats::Subscriber) {
        while let Some(msg) = sub.next().await {
            let Ok(renewal) = wire::decode::<pb::Renewal>(&msg.payload) else {
                tracing::debug!(subject = %msg.subject, "undecodable renewal ignored");
                continue;
            };
            let now = Instant::now();
            let mut holds = lock(&self.holds);
            // The node's whole set: what it no longer names, it no longer needs.
            holds.by_node.retain(|(node, con_id), hold| {
                if *node != renewal.node {
                    return true;
                }
                let kept = renewal.con_ids.contains(con_id);
                if kept {
                    hold.renewed = now;
                }
                kept
            });
            Self::stop_unheld(&mut holds);
        }
    }

    /// Releases the holds of nodes that stopped renewing.
    async fn expire(self: Arc<Self>) {
        let ttl = self.config.interest_ttl;
        let mut tick = tokio::time::interval((ttl / 4).max(Duration::from_millis(10)));
        loop {
            tick.tick().await;
            let now = Instant::now();
            let mut holds = lock(&self.holds);
            holds.by_node.retain(|(node, con_id), hold| {
                let live = now.duration_since(hold.renewed) < ttl;
                if !live {
                    tracing::info!(node = %node, con_id, "interest expired: the node stopped renewing");
                }
                live
            });
            Self::stop_unheld(&mut holds);
        }
    }

    /// Stops publishing instruments no node holds any more.
    fn stop_unheld(holds: &mut Holds) {
        let Holds {
            by_node,
            publishers,
        } = holds;
        publishers.retain(|con_id, p| {
            let held = by_node.keys().any(|(_, c)| c == con_id);
            if !held {
                p.task.abort();
            }
            held
        });
    }

    async fn publish_link(self: Arc<Self>) {
        let mut link = self.fanout.source().link_state();
        let mut beat = tokio::time::interval(self.config.link_every);
        loop {
            let state = *link.borrow_and_update();
            let msg = pb::Link {
                term: self.config.term,
                generation: state.generation,
            };
            let _ = self
                .client
                .publish(self.subjects.link(), msg.encode_to_vec().into())
                .await;
            tokio::select! {
                changed = link.changed() => if changed.is_err() { return },
                _ = beat.tick() => {}
            }
        }
    }

    async fn publish_notices(self: Arc<Self>) {
        let mut notices = self.fanout.source().data_notices();
        loop {
            match notices.recv().await {
                Ok(n) => {
                    let msg = wire::notice_to_pb(self.config.term, n.generation, n.notice);
                    let _ = self
                        .client
                        .publish(self.subjects.notice(), msg.encode_to_vec().into())
                        .await;
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "data notices missed by the relay");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    async fn serve_lookups(self: Arc<Self>, mut sub: async_nats::Subscriber) {
        while let Some(msg) = sub.next().await {
            // Look-ups wait on IB: each gets its own task.
            let shared = self.clone();
            let cancel = self.cancel.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = shared.answer_lookup(msg) => {}
                }
            });
        }
    }

    async fn answer_lookup(&self, msg: Message) {
        use pb::lookup_reply::Result as R;
        use pb::lookup_request::Query;
        let result = match wire::decode::<pb::LookupRequest>(&msg.payload) {
            Err(e) => Err(undecodable("look-up", &e)),
            Ok(req) => {
                let deadline = Duration::from_millis(req.deadline_ms).min(MAX_LOOKUP_DEADLINE);
                match req.query {
                    None => Err(undecodable("look-up", &WireError::Missing("query"))),
                    Some(Query::ContractDetails(c)) => self.details(&c, deadline).await,
                    Some(Query::MatchingSymbols(p)) => self
                        .fanout
                        .source()
                        .matching_symbols(&p, deadline)
                        .await
                        .map(|m| {
                            R::Symbols(pb::SymbolList {
                                items: m.iter().map(wire::symbol_to_pb).collect(),
                            })
                        }),
                    Some(Query::OptionParams(c)) => self.chains(&c, deadline).await,
                    Some(Query::Snapshot(q)) => self.snapshot(&q, deadline).await,
                    Some(Query::History(q)) => match &self.history {
                        Some(h) => h.bars(&q, deadline).await,
                        None => Err(no_history()),
                    },
                    Some(Query::Head(q)) => match &self.history {
                        Some(h) => h.head(&q, deadline).await,
                        None => Err(no_history()),
                    },
                }
            }
        };
        let reply = pb::LookupReply {
            result: Some(result.unwrap_or_else(|e| R::Error(wire::error_to_pb(&e)))),
        };
        self.reply(&msg, reply.encode_to_vec()).await;
    }

    async fn details(
        &self,
        c: &pb::Contract,
        deadline: Duration,
    ) -> Result<pb::lookup_reply::Result, SourceError> {
        let spec = wire::contract_from_pb(c).map_err(|e| undecodable("look-up", &e))?;
        let found = self
            .fanout
            .source()
            .contract_details(&spec, deadline)
            .await?;
        Ok(pb::lookup_reply::Result::Details(pb::DetailsList {
            items: found.iter().map(wire::details_to_pb).collect(),
        }))
    }

    async fn chains(
        &self,
        c: &pb::Contract,
        deadline: Duration,
    ) -> Result<pb::lookup_reply::Result, SourceError> {
        let spec = wire::contract_from_pb(c).map_err(|e| undecodable("look-up", &e))?;
        let found = self.fanout.source().option_params(&spec, deadline).await?;
        Ok(pb::lookup_reply::Result::Chains(pb::ChainList {
            items: found.iter().map(wire::chain_to_pb).collect(),
        }))
    }

    /// The instrument's value: the leader's cached one when it has data, else a one-off
    /// snapshot from IB.
    async fn snapshot(
        &self,
        q: &pb::SnapshotQuery,
        deadline: Duration,
    ) -> Result<pb::lookup_reply::Result, SourceError> {
        let bad = |e: WireError| undecodable("look-up", &e);
        let spec = wire::contract_from_pb(
            q.contract
                .as_ref()
                .ok_or(bad(WireError::Missing("snapshot.contract")))?,
        )
        .map_err(bad)?;
        let term = self.config.term;
        if let Some(view) = self.fanout.cached(spec.con_id)
            && view.quote.has_data()
        {
            return Ok(pb::lookup_reply::Result::Snapshot(wire::quote_to_pb(
                term,
                &view.quote,
                &view.extras,
            )));
        }
        let data_type = wire::data_type_from_pb(q.data_type)
            .map_err(bad)?
            .unwrap_or(self.fanout.settings().data_type);
        let ticks = self
            .fanout
            .source()
            .snapshot(&spec, data_type, deadline)
            .await?;
        let mut quote = crate::fanout::Quote::empty(spec.con_id, &spec.symbol, data_type);
        let mut extras = OptionExtras::default();
        for t in &ticks {
            crate::fanout::tick::apply(&mut quote, &mut extras, t);
        }
        Ok(pb::lookup_reply::Result::Snapshot(wire::quote_to_pb(
            term, &quote, &extras,
        )))
    }
}
