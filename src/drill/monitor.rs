//! Watches the server and the gateway while the drill runs: the session's state, the
//! gateway's peak message rate and the errors it sent, and — in quiet periods — whether
//! the gateway's live subscriptions match the instruments the server holds.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::checks;
use super::journal::{Clock, Journal};
use crate::proto::ibsim::v1 as sim;
use crate::proto::ibsim::v1::simulator_control_client::SimulatorControlClient;
use crate::proto::ibstream::v1::connection_service_client::ConnectionServiceClient;
use crate::proto::ibstream::v1::market_data_service_client::MarketDataServiceClient;
use crate::proto::ibstream::v1::{
    ConnectionState, GetStatusRequest, ListSubscriptionsRequest, ListSubscriptionsResponse,
    WatchStatusRequest,
};

/// How often the gateway's statistics are read.
const POLL: Duration = Duration::from_secs(1);
/// Comparisons of a quiet-period check (they pass when any matches).
const QUIET_SAMPLES: u32 = 3;
/// How long the quiet-period check waits for in-flight opens and closes.
const GATE_TIMEOUT: Duration = Duration::from_secs(15);

/// The drill's own view of the server and the gateway.
#[derive(Debug, Clone)]
pub struct Monitor {
    pub control: SimulatorControlClient<Channel>,
    pub market: MarketDataServiceClient<Channel>,
    pub connection: ConnectionServiceClient<Channel>,
    pub token: String,
    pub clock: Clock,
    pub journal: Journal,
    pub gate: Arc<RwLock<()>>,
    /// The message rate the server is configured for.
    pub rate_limit: u32,
}

fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

impl Monitor {
    /// The gateway's statistics.
    pub async fn stats(&mut self) -> Result<sim::Stats, tonic::Status> {
        Ok(self
            .control
            .get_stats(sim::GetStatsRequest {})
            .await?
            .into_inner())
    }

    /// The instruments the server holds, and its limits.
    pub async fn held(&mut self) -> Result<ListSubscriptionsResponse, tonic::Status> {
        Ok(self
            .market
            .list_subscriptions(authorized(ListSubscriptionsRequest {}, &self.token))
            .await?
            .into_inner())
    }

    /// Whether the server's session is up.
    pub async fn connected(&mut self) -> bool {
        let status = self
            .connection
            .get_status(authorized(GetStatusRequest {}, &self.token))
            .await;
        matches!(status, Ok(s) if s.get_ref().state == ConnectionState::Connected as i32)
    }

    /// Compares the gateway's live subscriptions with the instruments the server holds,
    /// with no stream opening or closing meanwhile. Skipped while the session is down
    /// (the freshness check judges that).
    pub async fn quiet_check(&mut self) {
        let gate = self.gate.clone();
        let Ok(_held) = tokio::time::timeout(GATE_TIMEOUT, gate.write()).await else {
            return;
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut last = None;
        for _ in 0..QUIET_SAMPLES {
            if !self.connected().await {
                return;
            }
            if let (Ok(stats), Ok(held)) = (self.stats().await, self.held().await) {
                let mismatch = checks::subscriptions(
                    stats.active_market_data_subscriptions,
                    held.subscriptions.len(),
                );
                match mismatch {
                    None => {
                        self.journal.lock().subscription_checks += 1;
                        return;
                    }
                    Some(m) => last = Some(m),
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if let Some(detail) = last {
            let at = self.clock.now();
            let mut journal = self.journal.lock();
            journal.subscription_checks += 1;
            drop(journal);
            self.journal.violation(
                at,
                "subscriptions",
                format!("after a quiet period, {detail}"),
            );
        }
    }

    /// Reads the gateway's statistics every second until `stop`: a peak rate over the
    /// limit and errors the drill did not inject are violations when first seen.
    pub async fn watch_gateway(mut self, stop: CancellationToken) {
        let mut reported_rate = false;
        let mut reported_errors = std::collections::HashMap::new();
        let mut failures = 0;
        while !stop.is_cancelled() {
            match self.stats().await {
                Ok(stats) => {
                    failures = 0;
                    self.judge_stats(&stats, &mut reported_rate, &mut reported_errors);
                }
                Err(err) => {
                    failures += 1;
                    if failures == 3 {
                        let at = self.clock.now();
                        self.journal.violation(
                            at,
                            "sim-control",
                            format!("the simulator's control plane does not answer: {err}"),
                        );
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.cancelled() => {}
            }
        }
    }

    /// Judges one reading of the gateway's statistics.
    pub fn judge_stats(
        &self,
        stats: &sim::Stats,
        reported_rate: &mut bool,
        reported_errors: &mut std::collections::HashMap<i32, u64>,
    ) {
        let at = self.clock.now();
        let injected = {
            let mut journal = self.journal.lock();
            journal.peak_rate = journal.peak_rate.max(stats.peak_messages_per_second);
            journal.injected.clone()
        };
        if let Some(detail) = checks::message_rate(stats.peak_messages_per_second, self.rate_limit)
            && !*reported_rate
        {
            *reported_rate = true;
            self.journal.violation(at, "message-rate", detail);
        }
        for (code, extra) in checks::unexplained_errors(&stats.errors_sent, &injected) {
            let before = reported_errors.insert(code, extra).unwrap_or(0);
            if extra > before {
                self.journal.violation(
                    at,
                    "gateway-errors",
                    format!(
                        "the gateway sent error {code} {} more time(s) than the drill injected",
                        extra - before
                    ),
                );
            }
        }
    }

    /// Follows the session's status until `stop`, journaling every loss: a state other
    /// than CONNECTED after CONNECTED, or a new generation.
    pub async fn watch_session(mut self, stop: CancellationToken) {
        let mut last: Option<(i32, u64)> = None;
        while !stop.is_cancelled() {
            let call = self
                .connection
                .watch_status(authorized(WatchStatusRequest {}, &self.token));
            let mut stream = match call.await {
                Ok(s) => s.into_inner(),
                Err(_) => {
                    tokio::select! {
                        _ = tokio::time::sleep(POLL) => continue,
                        _ = stop.cancelled() => return,
                    }
                }
            };
            loop {
                let next = tokio::select! {
                    next = stream.message() => next,
                    _ = stop.cancelled() => return,
                };
                let Ok(Some(status)) = next else { break };
                let connected = ConnectionState::Connected as i32;
                let lost = match last {
                    Some((state, generation)) => {
                        state == connected
                            && (status.state != connected || status.generation > generation)
                    }
                    None => false,
                };
                if lost {
                    let at = self.clock.now();
                    self.journal.lock().session_losses.push(at);
                }
                last = Some((status.state, status.generation));
            }
        }
    }
}
