//! The drill's clients: each its own gRPC connection and API key, opening and closing
//! quote and chain streams on random instruments, reading promptly, slowly or not at
//! all, vanishing without closing, and noting what arrived in the journal.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::{RwLock, watch};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status, Streaming};

use super::checks::REVOCATION_BOUND;
use super::journal::{Clock, Journal, Reading, StreamLog};
use super::requests;
use crate::proto::ibstream::v1::market_data_service_client::MarketDataServiceClient;
use crate::proto::ibstream::v1::{
    InstrumentStatus, InstrumentStatusKind, Quote, StreamOptionChainResponse, StreamQuotesResponse,
    stream_option_chain_response, stream_quotes_response,
};

/// Streams each client holds at once.
const LANES: u64 = 2;
/// How long opening a stream may take: the server answers within its request timeout
/// (10 s in the demo) even while the gateway is away, and this allows for scheduling.
const OPEN_TIMEOUT: Duration = Duration::from_secs(12);
/// The pause of a slow reader after every message.
const SLOW_READ: Duration = Duration::from_millis(300);
/// Each stream's HTTP/2 receive window. What a client's transport has taken in but the
/// client has not read, the server can no longer conflate: with hyper's default (2 MiB)
/// a reader taking 300 ms a message falls further behind for minutes. A slow consumer of
/// market data keeps its window small, as this one does (the README says how).
const STREAM_WINDOW: u32 = 4 * 1024;
/// Messages a slow reader may have waiting ahead of a new value: a window's worth (quote
/// and chain messages are 150 to 300 bytes) and ibstream's own per-stream queue.
const SLOW_BACKLOG_MESSAGES: u32 = STREAM_WINDOW / 256 + 5;
/// How much later than a prompt reader a slow one may see a new value: the time it takes
/// to read what waits ahead of it. The server cannot take back what it already sent.
pub const SLOW_READER_DELAY: f64 = SLOW_READ.as_secs_f64() * SLOW_BACKLOG_MESSAGES as f64;
/// Share of requests with a hostile field.
const HOSTILE_SHARE: f64 = 0.2;
/// The key a chain stream's underlying is journaled under (option con ids are others).
const UNDERLYING_KEY: u64 = 0;

/// A client's current key, and the keys revoked from it with when.
#[derive(Debug, Clone, Default)]
pub struct KeyState {
    pub token: String,
    pub revoked: HashMap<String, f64>,
}

/// What every client shares.
#[derive(Debug, Clone)]
pub struct Shared {
    pub grpc: SocketAddr,
    pub clock: Clock,
    pub journal: Journal,
    /// Held for writing while the drill compares subscriptions: no stream opens or
    /// closes meanwhile.
    pub gate: Arc<RwLock<()>>,
    pub stop: CancellationToken,
    pub stream_ids: Arc<AtomicU64>,
}

/// Runs one client until `shared.stop`; its lanes use seeds derived from `seed`.
pub async fn run(shared: Shared, keys: watch::Receiver<KeyState>, seed: u64) {
    let channel = match channel(shared.grpc) {
        Ok(c) => c,
        Err(err) => {
            let at = shared.clock.now();
            shared
                .journal
                .violation(at, "client", format!("cannot create a channel: {err}"));
            return;
        }
    };
    let lanes = (0..LANES).map(|lane| {
        let lane = Lane {
            shared: shared.clone(),
            keys: keys.clone(),
            channel: channel.clone(),
            rng: ChaCha8Rng::seed_from_u64(seed.wrapping_mul(31).wrapping_add(lane)),
        };
        tokio::spawn(lane.run())
    });
    for handle in lanes.collect::<Vec<_>>() {
        let _ = handle.await;
    }
}

fn channel(addr: SocketAddr) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(5))
        .initial_stream_window_size(STREAM_WINDOW)
        .connect_lazy())
}

/// A request with the bearer token.
fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// A stream being read, of either kind.
enum Open {
    Quotes(Streaming<StreamQuotesResponse>),
    Chain(Streaming<StreamOptionChainResponse>),
}

struct Lane {
    shared: Shared,
    keys: watch::Receiver<KeyState>,
    channel: Channel,
    rng: ChaCha8Rng,
}

impl Lane {
    async fn run(mut self) {
        while !self.shared.stop.is_cancelled() {
            self.one_stream().await;
            let pause = Duration::from_millis(self.rng.random_range(0..1000));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.shared.stop.cancelled() => {}
            }
        }
    }

    async fn one_stream(&mut self) {
        let reading = match self.rng.random_range(0..100) {
            0..70 => Reading::Prompt,
            70..85 => Reading::Slow,
            _ => Reading::Neglected,
        };
        // A vanishing client drops its own connection without closing the stream.
        let vanish = self.rng.random_bool(0.1);
        let channel = if vanish {
            match channel(self.shared.grpc) {
                Ok(c) => c,
                Err(_) => return,
            }
        } else {
            self.channel.clone()
        };
        let token = self.keys.borrow().token.clone();
        let gate = self.shared.gate.clone();
        let guard = gate.read().await;
        let id = self.shared.stream_ids.fetch_add(1, Ordering::Relaxed);
        let clock = self.shared.clock;
        let mut client = MarketDataServiceClient::new(channel.clone());
        let (opened, mut log) = if self.rng.random_bool(0.7) {
            let plan = requests::quotes(&mut self.rng, HOSTILE_SHARE);
            let names: Vec<&str> = plan.instruments.iter().map(|r| r.name.as_str()).collect();
            let mut log = StreamLog::new(id, format!("quotes {}", names.join(",")), reading, 0.0);
            let call = client.stream_quotes(authorized(plan.request.clone(), &token));
            let opened = tokio::time::timeout(OPEN_TIMEOUT, call).await;
            log.opened = clock.now();
            for (index, r) in plan.instruments.iter().enumerate() {
                if r.expect_data {
                    log.expect(index as u64, &r.name, log.opened);
                }
            }
            (opened.map(|r| r.map(|s| Open::Quotes(s.into_inner()))), log)
        } else {
            let plan = requests::chain(&mut self.rng, HOSTILE_SHARE);
            let mut log = StreamLog::new(id, plan.label.clone(), reading, 0.0);
            let call = client.stream_option_chain(authorized(plan.request, &token));
            let opened = tokio::time::timeout(OPEN_TIMEOUT, call).await;
            log.opened = clock.now();
            if plan.expect_data {
                log.expect(UNDERLYING_KEY, "underlying", log.opened);
            }
            (opened.map(|r| r.map(|s| Open::Chain(s.into_inner()))), log)
        };
        drop(guard);
        let mut stream = match opened {
            Ok(Ok(stream)) => stream,
            Ok(Err(status)) => {
                self.refused(&log, &token, &status);
                return;
            }
            Err(_) => {
                self.shared.journal.violation(
                    log.opened,
                    "open",
                    format!(
                        "stream {} ({}): no response within {OPEN_TIMEOUT:?}",
                        log.id, log.label
                    ),
                );
                return;
            }
        };
        let lifetime = self.rng.random_range(5.0..25.0);
        let updates = self.read(&mut stream, &mut log, &token, lifetime).await;
        let guard = gate.read().await;
        log.closed = Some(clock.now());
        drop(stream);
        if vanish {
            drop(client);
            drop(channel);
        }
        drop(guard);
        let mut journal = self.shared.journal.lock();
        journal.updates += updates;
        journal.streams.push(log);
    }

    /// Notes a refused open; an internal error is a violation, UNAUTHENTICATED is
    /// expected only for a revoked key.
    fn refused(&self, log: &StreamLog, token: &str, status: &Status) {
        let revoked = self.keys.borrow().revoked.contains_key(token);
        let unexpected = matches!(status.code(), Code::Internal | Code::Unknown)
            || (status.code() == Code::Unauthenticated && !revoked);
        if unexpected {
            self.shared.journal.violation(
                log.opened,
                "open",
                format!(
                    "stream {} ({}) refused with {:?}: {}",
                    log.id,
                    log.label,
                    status.code(),
                    status.message()
                ),
            );
        }
        *self
            .shared
            .journal
            .lock()
            .refused
            .entry(format!("{:?}", status.code()))
            .or_default() += 1;
    }

    /// Reads until the lifetime ends, the stream ends, or the drill stops; a revoked
    /// key's stream is read until it ends or [`REVOCATION_BOUND`] passes.
    async fn read(
        &self,
        stream: &mut Open,
        log: &mut StreamLog,
        token: &str,
        lifetime: f64,
    ) -> u64 {
        let clock = self.shared.clock;
        let end_at = log.opened + lifetime;
        let mut updates = 0;
        loop {
            let revoked_at = self.revoked_at(token);
            let limit = revoked_at.map_or(end_at, |r| r + REVOCATION_BOUND);
            let now = clock.now();
            if self.shared.stop.is_cancelled() || now >= limit {
                if let Some(r) = revoked_at.filter(|_| now >= limit) {
                    self.shared.journal.violation(
                        r,
                        "revocation",
                        format!(
                            "stream {} ({}) still open {REVOCATION_BOUND:.0}s after its key was revoked",
                            log.id, log.label
                        ),
                    );
                }
                return updates;
            }
            let wait = Duration::from_secs_f64((limit - now).min(0.5));
            if log.reading == Reading::Neglected && revoked_at.is_none() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.shared.stop.cancelled() => {}
                }
                continue;
            }
            let next = tokio::select! {
                next = tokio::time::timeout(wait, next_message(stream, log, clock)) => next,
                _ = self.shared.stop.cancelled() => continue,
            };
            match next {
                Err(_) => {}
                Ok(Ok(true)) => {
                    updates += 1;
                    if log.reading == Reading::Slow && revoked_at.is_none() {
                        tokio::time::sleep(SLOW_READ).await;
                    }
                }
                // The key may have been revoked while this read waited: judge the end
                // by the key's state now, not as it was before the wait.
                Ok(Ok(false)) => {
                    self.ended(log, self.revoked_at(token), None);
                    return updates;
                }
                Ok(Err(status)) => {
                    self.ended(log, self.revoked_at(token), Some(status));
                    return updates;
                }
            }
        }
    }

    /// When `token` was revoked, if it was.
    fn revoked_at(&self, token: &str) -> Option<f64> {
        self.keys.borrow().revoked.get(token).copied()
    }

    /// Judges how a stream ended: after a revocation only UNAUTHENTICATED within the
    /// bound is right; an internal error is always wrong.
    fn ended(&self, log: &StreamLog, revoked_at: Option<f64>, status: Option<Status>) {
        let now = self.shared.clock.now();
        let code = status.as_ref().map_or(Code::Ok, Status::code);
        let message = status.as_ref().map_or("", Status::message);
        let journal = &self.shared.journal;
        match revoked_at {
            Some(r) if code == Code::Unauthenticated => {
                journal.lock().revocation_latencies.push(now - r);
            }
            Some(r) => journal.violation(
                r,
                "revocation",
                format!(
                    "stream {} ({}) ended with {code:?} {message:?} after its key was revoked, not UNAUTHENTICATED",
                    log.id, log.label
                ),
            ),
            None if matches!(code, Code::Internal | Code::Unknown | Code::Unauthenticated) => {
                journal.violation(
                    now,
                    "stream-end",
                    format!(
                        "stream {} ({}) ended with {code:?}: {message}",
                        log.id, log.label
                    ),
                )
            }
            None => {
                *journal
                    .lock()
                    .refused
                    .entry(format!("ended {code:?}"))
                    .or_default() += 1;
            }
        }
    }
}

/// Reads one message into `log`: `Ok(true)` for a message, `Ok(false)` at the end.
async fn next_message(
    stream: &mut Open,
    log: &mut StreamLog,
    clock: Clock,
) -> Result<bool, Status> {
    match stream {
        Open::Quotes(s) => {
            let Some(msg) = s.message().await? else {
                return Ok(false);
            };
            let now = clock.now();
            match msg.event {
                Some(stream_quotes_response::Event::Quote(q)) => {
                    note_quote(log, u64::from(msg.index), &q, now, clock)
                }
                Some(stream_quotes_response::Event::Status(st)) if failed(&st) => {
                    log.forget(u64::from(st.index), now);
                }
                _ => {}
            }
            Ok(true)
        }
        Open::Chain(s) => {
            let Some(msg) = s.message().await? else {
                return Ok(false);
            };
            note_chain(log, msg, clock);
            Ok(true)
        }
    }
}

fn note_chain(log: &mut StreamLog, msg: StreamOptionChainResponse, clock: Clock) {
    use stream_option_chain_response::Event;
    let now = clock.now();
    let expecting = log.members.contains_key(&UNDERLYING_KEY);
    match msg.event {
        Some(Event::Window(w)) if expecting => {
            let keys: Vec<u64> = w.options.iter().map(|o| o.con_id as u64).collect();
            let gone: Vec<u64> = log
                .members
                .keys()
                .copied()
                .filter(|k| *k != UNDERLYING_KEY && !keys.contains(k))
                .collect();
            for key in gone {
                log.forget(key, now);
            }
            for option in &w.options {
                let name = if option.local_symbol.is_empty() {
                    option.con_id.to_string()
                } else {
                    option.local_symbol.clone()
                };
                log.expect(option.con_id as u64, &name, now);
            }
        }
        Some(Event::Options(batch)) => {
            for o in batch.options {
                let key = o.option.as_ref().map_or(0, |i| i.con_id as u64);
                if let Some(q) = o.quote.filter(|_| key != UNDERLYING_KEY) {
                    note_quote(log, key, &q, now, clock);
                }
            }
        }
        Some(Event::Underlying(q)) => note_quote(log, UNDERLYING_KEY, &q, now, clock),
        Some(Event::Status(st)) if failed(&st) => {
            let con_id = st.instrument.as_ref().map_or(0, |i| i.con_id as u64);
            let key = if log.members.contains_key(&con_id) {
                con_id
            } else {
                UNDERLYING_KEY
            };
            log.forget(key, now);
        }
        _ => {}
    }
}

fn note_quote(log: &mut StreamLog, key: u64, q: &Quote, now: f64, clock: Clock) {
    if q.stale {
        log.stale(key, now);
    } else {
        let server = q
            .received_at
            .as_ref()
            .map_or(now, |t| clock.from_timestamp(t));
        log.fresh(key, now, server);
    }
}

/// Statuses after which no data is expected for the instrument.
fn failed(status: &InstrumentStatus) -> bool {
    matches!(
        InstrumentStatusKind::try_from(status.kind),
        Ok(InstrumentStatusKind::NotFound
            | InstrumentStatusKind::NoPermission
            | InstrumentStatusKind::LineLimit
            | InstrumentStatusKind::Failed)
    )
}
