//! Who is in the cluster: every node says what it is about once a second (and at once
//! when asked to), and keeps what the others said. The leader's word carries its IB
//! session's status, so every node shows the same session.

use super::lock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_nats::Client;
use futures::StreamExt;
use prost::Message as _;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::BusError;
use super::subjects::Subjects;
use super::wire;
use crate::proto::ibstream::cluster::v1 as pb;
use crate::proto::ibstream::v1 as api;

/// A node not heard from for this many periods has left.
const MISSED_PERIODS: u32 = 3;

/// What a node says of itself, asked for each time it speaks.
pub type Report = Arc<dyn Fn() -> pb::Presence + Send + Sync>;

/// One node as last heard.
#[derive(Debug, Clone)]
struct Seen {
    presence: pb::Presence,
    at: SystemTime,
    heard: Instant,
}

/// The leader as the members see it.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderView {
    pub node: String,
    pub term: u64,
    /// Its session's status, as it last said.
    pub status: Option<api::ConnectionStatus>,
}

struct Inner {
    client: Client,
    subjects: Subjects,
    cluster: String,
    node: String,
    every: Duration,
    report: Report,
    table: Mutex<HashMap<String, Seen>>,
    /// The leader as `changes` last announced it.
    announced: Mutex<Option<LeaderView>>,
    /// Bumped whenever the leader or its status changes.
    changes: watch::Sender<u64>,
    nudge: Notify,
    cancel: CancellationToken,
}

/// This node's membership; dropping it stops speaking and listening.
pub struct Members {
    inner: Arc<Inner>,
}

impl Members {
    /// Starts listening to the others and speaking for this node every `every`.
    pub async fn start(
        client: Client,
        cluster: &str,
        node: &str,
        every: Duration,
        report: Report,
    ) -> Result<Members, BusError> {
        let subjects = Subjects::new(cluster)?;
        let sub = client
            .subscribe(subjects.presence())
            .await
            .map_err(|e| BusError::Bus(e.to_string()))?;
        let (changes, _) = watch::channel(0);
        let inner = Arc::new(Inner {
            client,
            subjects,
            cluster: cluster.to_owned(),
            node: node.to_owned(),
            every,
            report,
            table: Mutex::default(),
            announced: Mutex::default(),
            changes,
            nudge: Notify::new(),
            cancel: CancellationToken::new(),
        });
        for task in [
            futures::FutureExt::boxed(inner.clone().listen(sub)),
            futures::FutureExt::boxed(inner.clone().speak()),
        ] {
            let cancel = inner.cancel.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = task => {}
                }
            });
        }
        Ok(Members { inner })
    }

    /// Speak now (the leader's session changed).
    pub fn nudge(&self) {
        self.inner.nudge.notify_one();
    }

    /// The leader heard from lately with the highest term, if any.
    pub fn leader(&self) -> Option<LeaderView> {
        self.inner.leader()
    }

    /// Changes whenever the leader or its status does.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// The cluster as this node sees it.
    pub fn status(&self) -> api::ClusterStatus {
        let leader = self.leader();
        let table = lock(&self.inner.table);
        let mut nodes: Vec<api::ClusterNode> = table
            .values()
            .map(|s| api::ClusterNode {
                name: s.presence.node.clone(),
                leader: leader.as_ref().is_some_and(|l| l.node == s.presence.node),
                streams: s.presence.streams,
                instruments: s.presence.instruments,
                last_seen: Some(prost_types::Timestamp::from(s.at)),
            })
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        api::ClusterStatus {
            name: self.inner.cluster.clone(),
            node: self.inner.node.clone(),
            leader: leader.as_ref().map(|l| l.node.clone()).unwrap_or_default(),
            term: leader.map(|l| l.term).unwrap_or_default(),
            nodes,
        }
    }
}

impl Drop for Members {
    fn drop(&mut self) {
        self.inner.cancel.cancel();
    }
}

impl Inner {
    fn gone_after(&self) -> Duration {
        self.every * MISSED_PERIODS
    }

    fn leader(&self) -> Option<LeaderView> {
        let table = lock(&self.table);
        let gone = self.gone_after();
        table
            .values()
            .filter(|s| s.presence.leader && s.heard.elapsed() < gone)
            .max_by_key(|s| s.presence.term)
            .map(|s| LeaderView {
                node: s.presence.node.clone(),
                term: s.presence.term,
                status: (!s.presence.status.is_empty())
                    .then(|| api::ConnectionStatus::decode(s.presence.status.as_slice()).ok())
                    .flatten(),
            })
    }

    async fn listen(self: Arc<Self>, mut sub: async_nats::Subscriber) {
        while let Some(msg) = sub.next().await {
            let Ok(presence) = wire::decode::<pb::Presence>(&msg.payload) else {
                tracing::debug!("undecodable presence ignored");
                continue;
            };
            if presence.node.is_empty() {
                continue;
            }
            lock(&self.table).insert(
                presence.node.clone(),
                Seen {
                    presence,
                    at: SystemTime::now(),
                    heard: Instant::now(),
                },
            );
            self.note_change();
        }
    }

    /// Bumps `changes` when the leader seen now differs from the one last announced
    /// (a leader gone silent included).
    fn note_change(&self) {
        let now = self.leader();
        let mut announced = lock(&self.announced);
        if *announced != now {
            *announced = now;
            drop(announced);
            self.changes.send_modify(|n| *n += 1);
        }
    }

    async fn speak(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.nudge.notified() => {}
            }
            let mut presence = (self.report)();
            presence.node = self.node.clone();
            let payload = presence.encode_to_vec();
            if let Err(e) = self
                .client
                .publish(self.subjects.presence(), payload.into())
                .await
            {
                tracing::debug!(error = %e, "presence not published");
            }
            let gone = self.gone_after();
            lock(&self.table).retain(|_, s| s.heard.elapsed() < gone);
            self.note_change();
        }
    }
}
