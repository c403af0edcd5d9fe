//! The requests of one connected client: each frame is parsed once into a [`Command`],
//! counted, paced (the 50 msg/s limit), and dispatched here, in one place, to a handler
//! that gets only what it needs. The session owns the connection's market-data state.

use std::sync::Arc;

use tokio::time::Instant;
use tracing::warn;

use super::cmd::historical::RealtimeBars;
use super::cmd::{self, Command, DataType, Lines};
use super::frame::InboundFrame;
use super::historical_pacing::HistoricalPacing;
use super::pacing::Pacing;
use super::state::{Outbox, Shared};

/// One client's session state.
pub(crate) struct Session {
    /// What every connection of the simulator shares.
    shared: Arc<Shared>,
    /// This connection's sending side.
    outbox: Outbox,
    /// Market-data type last requested.
    data_type: DataType,
    /// Streaming subscriptions by ticker id.
    lines: Lines,
    /// Inbound message rate.
    pacing: Pacing,
    /// Historical requests, under IB's historical pacing rules.
    historical: HistoricalPacing,
    /// Real-time bar subscriptions by request id.
    realtime_bars: RealtimeBars,
}

impl Session {
    pub(crate) fn new(shared: Arc<Shared>, outbox: Outbox) -> Self {
        Session {
            shared,
            outbox,
            data_type: DataType::default(),
            lines: Lines::default(),
            pacing: Pacing::default(),
            historical: HistoricalPacing::default(),
            realtime_bars: RealtimeBars::default(),
        }
    }

    /// Handles one request that arrived at `arrived`; `false` ends the connection.
    /// The rate counts arrivals: a backlog handled at once after a stall is not a burst
    /// the client sent.
    pub(crate) async fn handle(&mut self, frame: InboundFrame, arrived: Instant) -> bool {
        let command = Command::from_frame(frame);
        self.shared.count_request(command.name());
        let now = arrived;
        self.historical.arrived(arrived);
        let rate = self.pacing.arrive(now);
        self.shared.record_rate(rate as u32);
        if rate > self.shared.max_messages_per_second as usize {
            return self.reject_for_pacing(command.req_id(), rate, now).await;
        }
        self.apply(command).await
    }

    /// Error 100 on the request's id; `false` once the client has gone over the rate for
    /// too many seconds.
    async fn reject_for_pacing(&mut self, req_id: i32, rate: usize, now: Instant) -> bool {
        let max = self.shared.max_messages_per_second;
        let msg =
            format!("Max rate of messages per second has been exceeded:max={max} rec={rate} (1)");
        let violations = self.pacing.violate(now);
        let alive = self.outbox.error(req_id, 100, &msg).await;
        if self
            .shared
            .disconnect_after_violations
            .is_some_and(|limit| violations >= limit)
        {
            warn!(
                violations,
                "disconnecting a client that keeps exceeding the message rate"
            );
            return false;
        }
        alive
    }

    /// Runs one command; `false` when the connection is gone.
    async fn apply(&mut self, command: Command) -> bool {
        let (shared, out) = (&self.shared, &self.outbox);
        let universe = &shared.universe;
        match command {
            Command::MarketData(req) => {
                cmd::market_data::request(shared, out, &mut self.lines, self.data_type, req).await
            }
            Command::CancelMarketData { req_id } => {
                self.lines.cancel(req_id);
                true
            }
            Command::MarketDataType(requested) => {
                self.data_type.set(requested);
                true
            }
            Command::ContractDetails(req) => {
                cmd::reference::contract_details(universe, out, req).await
            }
            Command::CancelContractDetails { .. } => true,
            Command::OptionParams(req) => {
                cmd::reference::sec_def_opt_params(universe, out, req).await
            }
            Command::SymbolSearch(req) => {
                cmd::reference::matching_symbols(universe, out, req).await
            }
            Command::HistoricalData(req) => {
                cmd::historical::historical_data(shared, out, &mut self.historical, req).await
            }
            Command::HeadTimestamp(req) => {
                cmd::historical::head_timestamp(shared, out, &mut self.historical, req).await
            }
            Command::RealTimeBars(req) => {
                let subs = &mut self.realtime_bars;
                cmd::historical::realtime_bars(shared, out, subs, &mut self.historical, req).await
            }
            Command::CancelRealTimeBars { req_id } => {
                self.realtime_bars.cancel(req_id);
                true
            }
            Command::CancelHistorical { .. } => true,
            Command::CurrentTime => cmd::gateway::current_time(out).await,
            Command::CurrentTimeInMillis => cmd::gateway::current_time_in_millis(out).await,
            Command::ManagedAccounts => cmd::gateway::managed_accounts(out, &shared.accounts).await,
            Command::Ids => cmd::gateway::next_valid_id(out).await,
            Command::StartApi => {
                warn!("ignoring a second StartApi");
                true
            }
            Command::Invalid(invalid) => cmd::invalid::answer(out, invalid).await,
        }
    }
}
