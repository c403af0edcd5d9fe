//! The leader's real-time bars for the other nodes: one shared feed per contract, data
//! type and trading hours in the leader's [`LiveBars`] (one IB subscription, one of the
//! cluster's lines), held for each node that asks while it renews, its five-second bars
//! published on the feed's subject.

use super::lock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{Client, Message};
use futures::{FutureExt, StreamExt};
use prost::Message as _;
use tokio::sync::broadcast;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::subjects::Subjects;
use super::wire::{self, WireError};
use crate::bars::live::{LiveEvent, LiveLease};
use crate::bars::spec::WhatToShow;
use crate::bars::{BarsError, LiveBars};
use crate::fanout::SourceError;
use crate::proto::ibstream::cluster::v1 as pb;

/// A feed: conId, what to show, regular hours only.
pub type FeedKey = (i64, WhatToShow, bool);

/// The feeds one node holds, and when it last said so.
type NodeHolds = HashMap<(String, FeedKey), Instant>;

struct Published {
    _lease: LiveLease,
    task: AbortHandle,
}

impl Drop for Published {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Default)]
struct State {
    holds: NodeHolds,
    published: HashMap<FeedKey, Published>,
}

struct Shared {
    client: Client,
    subjects: Subjects,
    live: LiveBars,
    term: u64,
    ttl: Duration,
    state: Mutex<State>,
}

/// A running live-bars relay; dropping it stops every feed it holds.
pub struct LiveRelay {
    shared: Arc<Shared>,
    cancel: CancellationToken,
}

impl LiveRelay {
    /// Answers requests for feeds and follows the nodes' renewals (on `renewals`, the
    /// relay's subscription to the cluster's renewal subject).
    pub async fn start(
        client: Client,
        subjects: Subjects,
        live: LiveBars,
        term: u64,
        ttl: Duration,
    ) -> Result<LiveRelay, super::BusError> {
        let bus = |e: async_nats::SubscribeError| super::BusError::Bus(e.to_string());
        let asks = client
            .subscribe(subjects.bars_interest())
            .await
            .map_err(bus)?;
        let renewals = client.subscribe(subjects.renew()).await.map_err(bus)?;
        let shared = Arc::new(Shared {
            client,
            subjects,
            live,
            term,
            ttl,
            state: Mutex::default(),
        });
        let cancel = CancellationToken::new();
        for task in [
            shared.clone().serve_asks(asks).boxed(),
            shared.clone().serve_renewals(renewals).boxed(),
            shared.clone().expire().boxed(),
        ] {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = task => {}
                }
            });
        }
        Ok(LiveRelay { shared, cancel })
    }
}

impl Drop for LiveRelay {
    fn drop(&mut self) {
        self.cancel.cancel();
        let mut state = lock(&self.shared.state);
        state.holds.clear();
        state.published.clear();
    }
}

impl Shared {
    async fn serve_asks(self: Arc<Self>, mut sub: async_nats::Subscriber) {
        while let Some(msg) = sub.next().await {
            let error = self.declare(&msg).err().map(|e| wire::error_to_pb(&e));
            let reply = pb::BarsInterestReply {
                term: self.term,
                error,
            };
            if let Some(to) = msg.reply.clone() {
                let _ = self.client.publish(to, reply.encode_to_vec().into()).await;
            }
        }
    }

    /// Holds the feed for the asking node, opening it if no node held it.
    fn declare(self: &Arc<Self>, msg: &Message) -> Result<(), SourceError> {
        let bad = |e: WireError| SourceError::Ib {
            code: 0,
            message: format!("undecodable bars request: {e}"),
        };
        let ask = wire::decode::<pb::BarsInterest>(&msg.payload).map_err(bad)?;
        let contract = ask
            .contract
            .as_ref()
            .ok_or(bad(WireError::Missing("contract")))?;
        let contract = wire::contract_from_pb(contract).map_err(bad)?;
        let what = wire::what_from_pb(&ask.what_to_show).map_err(bad)?;
        if contract.con_id <= 0 || ask.node.is_empty() {
            return Err(bad(WireError::Missing("contract.con_id or node")));
        }
        let key = (contract.con_id, what, ask.regular_hours);
        let mut state = lock(&self.state);
        if let std::collections::hash_map::Entry::Vacant(slot) = state.published.entry(key) {
            let lease = self
                .live
                .open(&contract, what, ask.regular_hours)
                .map_err(bars_error)?;
            let task = tokio::spawn(self.clone().publish(key, lease.subscribe()));
            slot.insert(Published {
                _lease: lease,
                task: task.abort_handle(),
            });
        }
        state.holds.insert((ask.node, key), Instant::now());
        Ok(())
    }

    async fn publish(self: Arc<Self>, key: FeedKey, mut events: broadcast::Receiver<LiveEvent>) {
        let subject = self.subjects.live_bars(key.0, key.1.ib_text(), key.2);
        loop {
            let bar = match events.recv().await {
                Ok(LiveEvent::Bar(bar)) => bar,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let msg = pb::LiveBar {
                term: self.term,
                bar: Some(wire::bar_to_pb(&bar)),
            };
            let _ = self
                .client
                .publish(subject.clone(), msg.encode_to_vec().into())
                .await;
        }
    }

    async fn serve_renewals(self: Arc<Self>, mut sub: async_nats::Subscriber) {
        while let Some(msg) = sub.next().await {
            let Ok(renewal) = wire::decode::<pb::Renewal>(&msg.payload) else {
                continue;
            };
            let named: Vec<FeedKey> = renewal
                .bars
                .iter()
                .filter_map(|k| {
                    Some((
                        k.con_id,
                        wire::what_from_pb(&k.what_to_show).ok()?,
                        k.regular_hours,
                    ))
                })
                .collect();
            let now = Instant::now();
            let mut state = lock(&self.state);
            // The node's whole set: what it no longer names, it no longer needs.
            state.holds.retain(|(node, key), renewed| {
                if *node != renewal.node {
                    return true;
                }
                let kept = named.contains(key);
                if kept {
                    *renewed = now;
                }
                kept
            });
            stop_unheld(&mut state);
        }
    }

    /// Releases the feeds of nodes that stopped renewing.
    async fn expire(self: Arc<Self>) {
        let mut tick = tokio::time::interval((self.ttl / 4).max(Duration::from_millis(10)));
        loop {
            tick.tick().await;
            let mut state = lock(&self.state);
            let ttl = self.ttl;
            state.holds.retain(|_, renewed| renewed.elapsed() < ttl);
            stop_unheld(&mut state);
        }
    }
}

/// Stops the feeds no node holds any more (the leader's `LiveBars` lingers them).
fn stop_unheld(state: &mut State) {
    let State { holds, published } = state;
    published.retain(|key, _| holds.keys().any(|(_, k)| k == key));
}

fn bars_error(e: BarsError) -> SourceError {
    match e {
        BarsError::Source(e) => super::relay::source_error(e),
        other => SourceError::Ib {
            code: 0,
            message: other.to_string(),
        },
    }
}
