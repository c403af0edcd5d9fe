//! Conversions between the session's domain types, their stored form and the public
//! protobuf messages.

use std::time::Duration;

use time::OffsetDateTime;

use super::auth::Identity;
use crate::ib::probe::ProbeSuccess;
use crate::ib::state::FarmStatus;
use crate::ib::{
    CircuitState, ConnectFailure, ConnectFailureKind, ConnectionState, Endpoint, MessagePacer,
    SessionEvent, SessionEventKind, SessionProfile, SessionStatus,
};
use crate::metrics::Metrics;
use crate::proto::ibstream::v1 as pb;
use crate::store::{ConnectionEvent, MarketDataType, Profile};

/// A protobuf timestamp.
pub fn timestamp(t: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: t.nanosecond() as i32,
    }
}

/// A protobuf duration (saturating at `i64::MAX` seconds).
pub fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs().min(i64::MAX as u64) as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// A protobuf duration as a std one; `None` when negative or out of range.
pub fn std_duration(d: &prost_types::Duration) -> Option<Duration> {
    if d.seconds < 0 || d.nanos < 0 || d.nanos >= 1_000_000_000 {
        return None;
    }
    Some(Duration::new(d.seconds as u64, d.nanos as u32))
}

/// The public enum of a session state.
pub fn connection_state(state: ConnectionState) -> pb::ConnectionState {
    match state {
        ConnectionState::Disconnected => pb::ConnectionState::Disconnected,
        ConnectionState::Connecting => pb::ConnectionState::Connecting,
        ConnectionState::Connected => pb::ConnectionState::Connected,
        ConnectionState::Reconnecting => pb::ConnectionState::Reconnecting,
        ConnectionState::Failed => pb::ConnectionState::Failed,
    }
}

/// The public enum of a circuit state.
pub fn circuit_state(state: CircuitState) -> pb::CircuitState {
    match state {
        CircuitState::Closed => pb::CircuitState::Closed,
        CircuitState::Open => pb::CircuitState::Open,
        CircuitState::HalfOpen => pb::CircuitState::HalfOpen,
    }
}

/// The public enum of a market data type.
pub fn market_data_type(kind: MarketDataType) -> pb::MarketDataType {
    match kind {
        MarketDataType::Live => pb::MarketDataType::Live,
        MarketDataType::Frozen => pb::MarketDataType::Frozen,
        MarketDataType::Delayed => pb::MarketDataType::Delayed,
        MarketDataType::DelayedFrozen => pb::MarketDataType::DelayedFrozen,
    }
}

/// `None` for `UNSPECIFIED` and unknown values.
pub fn market_data_type_from(value: i32) -> Option<MarketDataType> {
    match pb::MarketDataType::try_from(value).ok()? {
        pb::MarketDataType::Unspecified => None,
        pb::MarketDataType::Live => Some(MarketDataType::Live),
        pb::MarketDataType::Frozen => Some(MarketDataType::Frozen),
        pb::MarketDataType::Delayed => Some(MarketDataType::Delayed),
        pb::MarketDataType::DelayedFrozen => Some(MarketDataType::DelayedFrozen),
    }
}

fn farm(name: &str, farm: &FarmStatus) -> pb::DataFarm {
    pb::DataFarm {
        name: name.to_owned(),
        ok: farm.ok,
        code: farm.code,
        update_time: Some(timestamp(farm.time)),
    }
}

/// The public status: the session's snapshot plus the live counters.
pub fn connection_status(
    status: &SessionStatus,
    metrics: &Metrics,
    pacer: &MessagePacer,
) -> pb::ConnectionStatus {
    let address = if status.host.is_empty() {
        String::new()
    } else {
        crate::ib::Endpoint {
            host: status.host.clone(),
            port: status.port,
            client_id: status.client_id,
        }
        .address()
    };
    pb::ConnectionStatus {
        state: connection_state(status.state) as i32,
        state_since: Some(timestamp(status.since)),
        session_wanted: status.wanted,
        profile: status.profile.clone(),
        address,
        client_id: status.client_id,
        server_version: status.server_version,
        managed_accounts: status.managed_accounts.clone(),
        last_error: status.last_error.as_ref().map(|e| pb::SessionError {
            code: e.code,
            message: e.message.clone(),
            time: Some(timestamp(e.time)),
        }),
        reconnect_attempt: status.reconnect_attempt,
        next_retry_time: status.next_retry.map(timestamp),
        circuit_state: circuit_state(status.circuit) as i32,
        heartbeat_rtt: status.heartbeat_rtt.map(duration),
        last_heartbeat_time: status.last_heartbeat.map(timestamp),
        messages_sent: metrics.ib_messages_sent.get(),
        rate_limiter_delay: Some(duration(pacer.current_delay())),
        rate_limiter_total_delay: Some(duration(
            Duration::try_from_secs_f64(metrics.rate_limiter_delay.get()).unwrap_or_default(),
        )),
        message_rate: status.message_rate,
        lines_in_use: metrics.lines_in_use.get().clamp(0, u32::MAX.into()) as u32,
        line_budget: metrics.line_budget.get().clamp(0, u32::MAX.into()) as u32,
        data_farms: status.farms.iter().map(|(n, f)| farm(n, f)).collect(),
        competing_session: status.competing_session,
        generation: status.generation,
        market_data_type: status
            .market_data_type
            .map_or(pb::MarketDataType::Unspecified, market_data_type)
            as i32,
        ib_connectivity_lost: status.ib_connectivity_lost,
        cluster: None,
    }
}

/// What the caller may do: without keys every caller is an anonymous admin, and says so.
pub fn access(identity: &Identity) -> pb::Access {
    let scope = if identity.admin {
        pb::AccessScope::Admin
    } else {
        pb::AccessScope::Read
    };
    if identity.is_anonymous() {
        return pb::Access {
            scope: scope as i32,
            ..pb::Access::default()
        };
    }
    pb::Access {
        scope: scope as i32,
        keys_required: true,
        key_id: identity.key_id.clone(),
        key_name: identity.name.clone(),
    }
}

/// The session's parameters from a stored profile.
pub fn session_profile(profile: &Profile) -> SessionProfile {
    SessionProfile {
        name: profile.name.clone(),
        endpoint: Endpoint {
            host: profile.host.clone(),
            port: profile.port,
            client_id: profile.client_id,
        },
        connection_timeout: profile.connection_timeout,
        retry_attempts: profile.retry_attempts,
        message_rate: profile.message_rate,
        market_data_type: profile.market_data_type,
    }
}

/// Event kinds as stored: a state change is stored under the state's name.
pub fn event_kind(event: &SessionEvent) -> String {
    match event.kind {
        SessionEventKind::StateChanged => event.state.as_str().to_owned(),
        SessionEventKind::Error => "error".to_owned(),
        SessionEventKind::Notice => "notice".to_owned(),
    }
}

/// The state a stored kind names, if it is a state change.
pub fn state_of_kind(kind: &str) -> Option<ConnectionState> {
    [
        ConnectionState::Disconnected,
        ConnectionState::Connecting,
        ConnectionState::Connected,
        ConnectionState::Reconnecting,
        ConnectionState::Failed,
    ]
    .into_iter()
    .find(|s| s.as_str() == kind)
}

impl From<ConnectionEvent> for pb::ConnectionEvent {
    fn from(e: ConnectionEvent) -> pb::ConnectionEvent {
        let state = state_of_kind(&e.kind);
        let kind = match (state, e.kind.as_str()) {
            (Some(_), _) => pb::ConnectionEventKind::StateChanged,
            (None, "error") => pb::ConnectionEventKind::Error,
            (None, "notice") => pb::ConnectionEventKind::Notice,
            (None, _) => pb::ConnectionEventKind::Unspecified,
        };
        pb::ConnectionEvent {
            time: Some(timestamp(e.at)),
            kind: kind as i32,
            state: state.map_or(pb::ConnectionState::Unspecified, connection_state) as i32,
            profile: e.profile.unwrap_or_default(),
            code: e.code,
            message: e.message,
        }
    }
}

fn failure_reason(kind: ConnectFailureKind) -> pb::TestConnectionFailure {
    match kind {
        ConnectFailureKind::Refused => pb::TestConnectionFailure::Refused,
        ConnectFailureKind::Timeout => pb::TestConnectionFailure::Timeout,
        ConnectFailureKind::ClientIdInUse => pb::TestConnectionFailure::ClientIdInUse,
        ConnectFailureKind::VersionMismatch => pb::TestConnectionFailure::VersionMismatch,
        ConnectFailureKind::Other => pb::TestConnectionFailure::Other,
    }
}

/// The result of a connection test, success or failure alike an answer.
pub fn test_result(
    outcome: Result<ProbeSuccess, ConnectFailure>,
) -> pb::test_connection_response::Result {
    use pb::test_connection_response::Result as R;
    match outcome {
        Ok(ok) => R::Success(pb::TestConnectionSuccess {
            server_version: ok.server_version,
            server_time: Some(timestamp(ok.server_time)),
            managed_accounts: ok.managed_accounts,
            round_trip_time: Some(duration(ok.round_trip)),
        }),
        Err(failure) => R::Failure(pb::TestConnectionError {
            reason: failure_reason(failure.kind) as i32,
            message: failure.message,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_and_reject_negatives() {
        let d = Duration::from_millis(1500);
        assert_eq!(std_duration(&duration(d)), Some(d));
        assert_eq!(
            std_duration(&prost_types::Duration {
                seconds: -1,
                nanos: 0
            }),
            None
        );
    }

    #[test]
    fn market_data_types_map_both_ways() {
        for kind in [
            MarketDataType::Live,
            MarketDataType::Frozen,
            MarketDataType::Delayed,
            MarketDataType::DelayedFrozen,
        ] {
            assert_eq!(
                market_data_type_from(market_data_type(kind) as i32),
                Some(kind)
            );
        }
        assert_eq!(market_data_type_from(0), None);
        assert_eq!(market_data_type_from(99), None);
    }
}
