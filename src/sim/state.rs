//! State shared by every connection of one simulator: settings the control plane can change,
//! the registry of connections and client ids, and statistics.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::SimConfig;
use super::feed::FeedHub;
use super::frame::{self, outbound};
use super::model::Market;
use super::ticks::{Generics, TickUpdate};
use super::universe::Universe;
use crate::proto::tws;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a connection's writer sends.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A complete frame.
    Frame(Bytes),
    /// An instrument update for one subscription.
    Ticks {
        req_id: i32,
        update: Arc<TickUpdate>,
        delayed: bool,
        generics: Generics,
    },
}

/// The sending side of a connection.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<Outgoing>,
    shared: Arc<Shared>,
}

impl Outbox {
    pub(crate) fn new(tx: mpsc::Sender<Outgoing>, shared: Arc<Shared>) -> Self {
        Self { tx, shared }
    }

    /// Queues a frame; `false` when the connection is gone.
    pub(crate) async fn frame(&self, frame: Bytes) -> bool {
        self.tx.send(Outgoing::Frame(frame)).await.is_ok()
    }

    /// Queues a protobuf message.
    pub(crate) async fn send<M: prost::Message>(&self, logical_id: i32, msg: &M) -> bool {
        self.frame(frame::encode(logical_id, msg)).await
    }

    /// Queues an instrument update.
    pub(crate) async fn ticks(&self, item: Outgoing) -> bool {
        self.tx.send(item).await.is_ok()
    }

    /// Queues an error message (id −1 for a notice) and counts it.
    pub(crate) async fn error(&self, id: i32, code: i32, message: &str) -> bool {
        self.frame(self.shared.error_frame(id, code, message)).await
    }

    /// Queues without waiting (control-plane fan-out must not block on a slow client).
    pub(crate) fn try_frame(&self, frame: Bytes) -> bool {
        self.tx.try_send(Outgoing::Frame(frame)).is_ok()
    }
}

/// A registered connection, as the control plane sees it.
#[derive(Debug)]
pub(crate) struct ConnectionEntry {
    pub outbox: Outbox,
    pub drop: CancellationToken,
}

/// Cumulative and current counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub connections: AtomicU32,
    pub market_data_requests: AtomicU64,
    pub active_subscriptions: AtomicI64,
    pub peak_messages_per_second: AtomicU32,
    pub connections_accepted: AtomicU64,
    pub connections_refused: AtomicU64,
    pub requests_by_type: Mutex<HashMap<&'static str, u64>>,
    pub errors_sent: Mutex<HashMap<i32, u64>>,
    /// Historical requests served (bars and head timestamps).
    pub historical_requests: AtomicU64,
    /// Historical requests refused for breaking IB's pacing rules (error 162).
    pub historical_pacing_violations: AtomicU64,
}

/// Everything one simulator's connections share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub accounts: String,
    pub server_version: i32,
    pub max_messages_per_second: u32,
    pub disconnect_after_violations: Option<u32>,
    pub historical_rules: crate::ib::historical_pacer::HistoricalRules,
    pub line_limit: AtomicU32,
    pub universe: Arc<Universe>,
    pub market: Arc<Market>,
    pub feeds: FeedHub,
    pub tick_interval: watch::Sender<Duration>,
    pub no_live: Mutex<HashSet<String>>,
    /// Farms the welcome after a handshake reports broken.
    pub broken_farms: Mutex<HashSet<String>>,
    pub refuse_until: Mutex<Option<Instant>>,
    pub stall_until: Mutex<Option<Instant>>,
    pub client_ids: Mutex<HashSet<i32>>,
    pub connections: Mutex<HashMap<u64, ConnectionEntry>>,
    pub next_connection: AtomicU64,
    pub counters: Counters,
    pub shutdown: CancellationToken,
}

impl Shared {
    pub(crate) fn new(
        config: &SimConfig,
        universe: Arc<Universe>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let market = Arc::new(Market::new(universe.clone(), config.seed));
        let (tick_interval, interval_rx) = watch::channel(config.tick_interval);
        Arc::new(Shared {
            accounts: config.accounts.join(","),
            server_version: config.server_version,
            max_messages_per_second: config.max_messages_per_second,
            disconnect_after_violations: config.disconnect_after_violations,
            historical_rules: config.historical_rules,
            line_limit: AtomicU32::new(config.line_limit),
            universe,
            feeds: FeedHub::new(market.clone(), interval_rx),
            market,
            tick_interval,
            no_live: Mutex::new(
                config
                    .no_live_permission
                    .iter()
                    .map(|s| s.to_ascii_uppercase())
                    .collect(),
            ),
            broken_farms: Mutex::new(HashSet::new()),
            refuse_until: Mutex::new(None),
            stall_until: Mutex::new(None),
            client_ids: Mutex::new(HashSet::new()),
            connections: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(1),
            counters: Counters::default(),
            shutdown,
        })
    }

    /// An error frame, counted in the statistics.
    pub(crate) fn error_frame(&self, id: i32, code: i32, message: &str) -> Bytes {
        *lock(&self.counters.errors_sent).entry(code).or_default() += 1;
        let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        frame::encode(
            outbound::ERROR,
            &tws::ErrorMessage {
                id: Some(id),
                error_time: Some(now_ms),
                error_code: Some(code),
                error_msg: Some(message.to_string()),
                advanced_order_reject_json: None,
            },
        )
    }

    pub(crate) fn count_request(&self, name: &'static str) {
        *lock(&self.counters.requests_by_type)
            .entry(name)
            .or_default() += 1;
    }

    pub(crate) fn record_rate(&self, per_second: u32) {
        self.counters
            .peak_messages_per_second
            .fetch_max(per_second, Ordering::Relaxed);
    }

    /// Whether new connections are refused right now.
    pub(crate) fn refusing(&self) -> bool {
        lock(&self.refuse_until).is_some_and(|until| Instant::now() < until)
    }

    /// When a stall in progress ends.
    pub(crate) fn stalled_until(&self) -> Option<Instant> {
        lock(&self.stall_until).filter(|until| Instant::now() < *until)
    }

    /// Whether `symbol` has a live market-data subscription.
    pub(crate) fn has_live_permission(&self, symbol: &str) -> bool {
        !lock(&self.no_live).contains(&symbol.to_ascii_uppercase())
    }
}
