//! Connection tests: a separate, short-lived TWS session that saves nothing and leaves
//! the live one alone.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::connector::{self, ClientOptions, ConnectFailure, ConnectFailureKind, Endpoint};

/// What the gateway answered.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSuccess {
    pub server_version: i32,
    pub server_time: OffsetDateTime,
    pub managed_accounts: Vec<String>,
    /// Round trip of a current-time request.
    pub round_trip: Duration,
}

/// Client ids span 0..=999 999 999 at IB.
const CLIENT_ID_SPAN: i64 = 1_000_000_000;

/// A client id for testing the live session's gateway without taking its id: half the
/// id space away from the profile's, so it neither collides with it nor with the ids
/// people usually number their other clients with.
pub fn derived_client_id(client_id: i32) -> i32 {
    let derived = (i64::from(client_id) + CLIENT_ID_SPAN / 2).rem_euclid(CLIENT_ID_SPAN);
    // In range by construction: rem_euclid keeps it within 0..CLIENT_ID_SPAN.
    i32::try_from(derived).unwrap_or(0)
}

/// Connects, asks for the time, disconnects; everything within `timeout`.
pub async fn probe(endpoint: &Endpoint, timeout: Duration) -> Result<ProbeSuccess, ConnectFailure> {
    let deadline = Instant::now() + timeout;
    let options = ClientOptions {
        message_rate: 50,
        timeout,
        library_reconnect_attempts: 0,
    };
    let (client, _notices) = connector::open(endpoint, options).await?;
    let started = Instant::now();
    let answer = tokio::time::timeout_at(deadline, client.server_time()).await;
    let round_trip = started.elapsed();
    let result = match answer {
        Ok(Ok(server_time)) => Ok(ProbeSuccess {
            server_version: client.server_version(),
            server_time,
            managed_accounts: client.handshake_managed_accounts().to_vec(),
            round_trip,
        }),
        Ok(Err(err)) => Err(ConnectFailure {
            kind: ConnectFailureKind::Other,
            message: format!(
                "{} completed the handshake but the current-time request failed: {err}",
                endpoint.address()
            ),
        }),
        Err(_) => Err(ConnectFailure {
            kind: ConnectFailureKind::Timeout,
            message: format!(
                "{} completed the handshake but did not answer a current-time request within {timeout:?}",
                endpoint.address()
            ),
        }),
    };
    client.disconnect().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_differ_and_stay_in_range() {
        assert_eq!(derived_client_id(0), 500_000_000);
        assert_eq!(derived_client_id(7), 500_000_007);
        assert_eq!(derived_client_id(600_000_000), 100_000_000);
        assert_eq!(derived_client_id(999_999_999), 499_999_999);
        for id in [0, 1, 42, 499_999_999, 500_000_000, 999_999_999] {
            let d = derived_client_id(id);
            assert_ne!(d, id);
            assert!((0..1_000_000_000).contains(&d));
        }
    }
}
