//! The requests of one connected client: pacing (the 50 msg/s limit), dispatch by message
//! id, and the session's market-data type and subscriptions.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use time::OffsetDateTime;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::connection::send_welcome;
use super::frame::{InboundFrame, PROTOBUF_OFFSET, inbound, outbound};
use super::market_data::{self, Subscription};
use super::reference;
use super::state::{Outbox, Shared};
use crate::proto::tws;

/// The pacing window.
const WINDOW: Duration = Duration::from_secs(1);

/// Inbound message counting over a sliding one-second window.
#[derive(Debug, Default)]
struct Pacing {
    arrivals: VecDeque<Instant>,
    violations: u32,
    last_violation: Option<Instant>,
}

impl Pacing {
    /// Records an arrival; returns the count within the last second.
    fn arrive(&mut self, now: Instant) -> usize {
        while self
            .arrivals
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            self.arrivals.pop_front();
        }
        self.arrivals.push_back(now);
        self.arrivals.len()
    }

    /// Records a message over the limit. A violation is one second spent over the limit,
    /// however many messages it rejects; returns the violations so far.
    fn violate(&mut self, now: Instant) -> u32 {
        if self
            .last_violation
            .is_none_or(|t| now.duration_since(t) >= WINDOW)
        {
            self.violations += 1;
            self.last_violation = Some(now);
        }
        self.violations
    }
}

/// One client's session state.
pub(crate) struct Session {
    pub(crate) shared: Arc<Shared>,
    pub(crate) outbox: Outbox,
    /// Market-data type last requested (1 live, 2 frozen, 3 delayed, 4 delayed frozen).
    pub(crate) market_data_type: i32,
    /// Streaming subscriptions by ticker id.
    pub(crate) subscriptions: HashMap<i32, Subscription>,
    pacing: Pacing,
}

/// Name of a request for the statistics (ibapi's `OutgoingMessages` names).
fn request_name(logical_id: i32) -> &'static str {
    match logical_id {
        inbound::REQ_MKT_DATA => "RequestMarketData",
        inbound::CANCEL_MKT_DATA => "CancelMarketData",
        inbound::REQ_IDS => "RequestIds",
        inbound::REQ_CONTRACT_DATA => "RequestContractData",
        inbound::REQ_MANAGED_ACCTS => "RequestManagedAccounts",
        inbound::REQ_CURRENT_TIME => "RequestCurrentTime",
        inbound::REQ_MARKET_DATA_TYPE => "RequestMarketDataType",
        inbound::START_API => "StartApi",
        inbound::REQ_SEC_DEF_OPT_PARAMS => "RequestSecurityDefinitionOptionalParameters",
        inbound::REQ_MATCHING_SYMBOLS => "RequestMatchingSymbols",
        inbound::REQ_CURRENT_TIME_IN_MILLIS => "RequestCurrentTimeInMillis",
        inbound::CANCEL_CONTRACT_DATA => "CancelContractData",
        _ => "Unknown",
    }
}

/// Whether tag 1 of a request is a request id (to report errors on it).
fn has_request_id(logical_id: i32) -> bool {
    matches!(
        logical_id,
        inbound::REQ_MKT_DATA
            | inbound::CANCEL_MKT_DATA
            | inbound::REQ_CONTRACT_DATA
            | inbound::CANCEL_CONTRACT_DATA
            | inbound::REQ_SEC_DEF_OPT_PARAMS
            | inbound::REQ_MATCHING_SYMBOLS
    )
}

fn now_utc() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

impl Session {
    pub(crate) fn new(shared: Arc<Shared>, outbox: Outbox) -> Self {
        Session {
            shared,
            outbox,
            market_data_type: 1,
            subscriptions: HashMap::new(),
            pacing: Pacing::default(),
        }
    }

    /// Sends what a gateway sends after StartApi; `false` if the client is gone.
    pub(crate) async fn start(&mut self) -> bool {
        send_welcome(&self.shared, &self.outbox).await
    }

    /// Handles one request; `false` ends the connection.
    pub(crate) async fn handle(&mut self, frame: InboundFrame) -> bool {
        // The id is the peer's: saturating keeps i32::MIN and its neighbours an unknown id
        // instead of an overflow.
        let logical_id = frame.wire_id.saturating_sub(PROTOBUF_OFFSET);
        let name = request_name(logical_id);
        self.shared.count_request(name);
        let now = Instant::now();
        let rate = self.pacing.arrive(now);
        self.shared.record_rate(rate as u32);
        if rate > self.shared.max_messages_per_second as usize {
            return self
                .reject_for_pacing(logical_id, &frame.payload, rate, now)
                .await;
        }
        if frame.wire_id <= PROTOBUF_OFFSET || name == "Unknown" {
            warn!(wire_id = frame.wire_id, "ignoring unsupported message id");
            return true;
        }
        match self.dispatch(logical_id, frame.payload).await {
            Ok(alive) => alive,
            Err(e) => {
                warn!(request = name, error = %e, "malformed request");
                self.outbox
                    .error(
                        -1,
                        320,
                        &format!("Error reading request. Malformed {name}: {e}"),
                    )
                    .await
            }
        }
    }

    async fn reject_for_pacing(
        &mut self,
        logical_id: i32,
        payload: &Bytes,
        rate: usize,
        now: Instant,
    ) -> bool {
        let id = if has_request_id(logical_id) {
            tws::RequestIdEnvelope::decode(payload.clone())
                .ok()
                .and_then(|e| e.req_id)
                .unwrap_or(-1)
        } else {
            -1
        };
        let max = self.shared.max_messages_per_second;
        let msg =
            format!("Max rate of messages per second has been exceeded:max={max} rec={rate} (1)");
        let violations = self.pacing.violate(now);
        let alive = self.outbox.error(id, 100, &msg).await;
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

    async fn dispatch(
        &mut self,
        logical_id: i32,
        payload: Bytes,
    ) -> Result<bool, prost::DecodeError> {
        let out = &self.outbox;
        Ok(match logical_id {
            inbound::REQ_MKT_DATA => {
                let req = tws::MarketDataRequest::decode(payload)?;
                market_data::request(self, req).await
            }
            inbound::CANCEL_MKT_DATA => {
                let req = tws::CancelMarketData::decode(payload)?;
                let id = req.req_id.unwrap_or(-1);
                if self.subscriptions.remove(&id).is_none() {
                    debug!(req_id = id, "cancel for an unknown or finished ticker id");
                }
                true
            }
            inbound::REQ_MARKET_DATA_TYPE => {
                let req = tws::MarketDataTypeRequest::decode(payload)?;
                match req.market_data_type {
                    Some(t @ 1..=4) => self.market_data_type = t,
                    other => warn!(?other, "ignoring invalid market data type"),
                }
                true
            }
            inbound::REQ_CURRENT_TIME => {
                let now = now_utc().unix_timestamp();
                out.send(
                    outbound::CURRENT_TIME,
                    &tws::CurrentTime {
                        current_time: Some(now),
                    },
                )
                .await
            }
            inbound::REQ_CURRENT_TIME_IN_MILLIS => {
                let ms = (now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
                let msg = tws::CurrentTimeInMillis {
                    current_time_in_millis: Some(ms),
                };
                out.send(outbound::CURRENT_TIME_IN_MILLIS, &msg).await
            }
            inbound::REQ_MANAGED_ACCTS => {
                let msg = tws::ManagedAccounts {
                    accounts_list: Some(self.shared.accounts.clone()),
                };
                out.send(outbound::MANAGED_ACCTS, &msg).await
            }
            inbound::REQ_IDS => {
                tws::IdsRequest::decode(payload)?;
                out.send(
                    outbound::NEXT_VALID_ID,
                    &tws::NextValidId { order_id: Some(1) },
                )
                .await
            }
            inbound::REQ_CONTRACT_DATA => {
                let req = tws::ContractDataRequest::decode(payload)?;
                reference::contract_details(&self.shared, out, req).await
            }
            inbound::CANCEL_CONTRACT_DATA => {
                // Contract details are answered at once, so there is never anything to stop.
                tws::CancelContractData::decode(payload)?;
                true
            }
            inbound::REQ_SEC_DEF_OPT_PARAMS => {
                let req = tws::SecDefOptParamsRequest::decode(payload)?;
                reference::sec_def_opt_params(&self.shared, out, req).await
            }
            inbound::REQ_MATCHING_SYMBOLS => {
                let req = tws::MatchingSymbolsRequest::decode(payload)?;
                reference::matching_symbols(&self.shared, out, req).await
            }
            inbound::START_API => {
                warn!("ignoring a second StartApi");
                true
            }
            _ => true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimConfig;
    use crate::sim::universe::Universe;
    use time::macros::date;
    use tokio_util::sync::CancellationToken;

    #[tokio::test]
    async fn ids_far_below_the_protobuf_offset_are_ignored() {
        // Found by fuzzing: a wire id of i32::MIN overflowed when the offset was taken off.
        let universe = Arc::new(Universe::build(date!(2026 - 11 - 24)));
        let shared = Shared::new(&SimConfig::default(), universe, CancellationToken::new());
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let mut session = Session::new(shared.clone(), Outbox::new(tx, shared));
        for wire_id in [i32::MIN, i32::MIN + 199, -1] {
            let frame = InboundFrame {
                wire_id,
                payload: Bytes::new(),
            };
            assert!(session.handle(frame).await, "wire id {wire_id}");
        }
        assert!(rx.try_recv().is_err(), "an unknown id gets no answer");
    }

    #[test]
    fn pacing_counts_a_sliding_second() {
        let mut p = Pacing::default();
        let t0 = Instant::now();
        for i in 0..50 {
            assert_eq!(p.arrive(t0 + Duration::from_millis(i)), i as usize + 1);
        }
        assert_eq!(p.arrive(t0 + Duration::from_millis(999)), 51);
        assert_eq!(p.arrive(t0 + Duration::from_millis(1_020)), 31);
    }

    #[test]
    fn violations_count_seconds_not_messages() {
        let mut p = Pacing::default();
        let t0 = Instant::now();
        assert_eq!(p.violate(t0), 1);
        assert_eq!(p.violate(t0 + Duration::from_millis(500)), 1);
        assert_eq!(p.violate(t0 + Duration::from_millis(1_000)), 2);
    }
}
