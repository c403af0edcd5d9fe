//! Opening a TWS session with `ibapi`, and what a failure to open one means.

use std::time::Duration;

use ibapi::subscriptions::NoticeStream;
use ibapi::{Client, RateLimiter};

/// Where and as whom to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub client_id: i32,
}

impl Endpoint {
    /// `host:port`, with an IPv6 literal in brackets.
    pub fn address(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// How the `ibapi` client is built.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// Messages per second the client's rate limiter lets through.
    pub message_rate: u32,
    /// Bound on the whole connect, handshake included.
    pub timeout: Duration,
    /// Reconnect attempts `ibapi` makes on its own after a drop, before giving up.
    pub library_reconnect_attempts: u32,
}

/// Why a session could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailureKind {
    /// Nothing accepts connections at the address.
    Refused,
    /// Accepted, but the handshake did not finish in time.
    Timeout,
    /// Another connection holds the client id (IB 326).
    ClientIdInUse,
    /// The gateway speaks an API version older than `ibapi` supports.
    VersionMismatch,
    /// Anything else.
    Other,
}

/// A failed connect: its kind and a message a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectFailure {
    pub kind: ConnectFailureKind,
    pub message: String,
}

impl ConnectFailure {
    /// The IB error code behind the failure, when there is one.
    pub fn ib_code(&self) -> Option<i32> {
        (self.kind == ConnectFailureKind::ClientIdInUse).then_some(326)
    }
}

/// Connects and completes the TWS handshake within `options.timeout`. The notice stream
/// is bound before the handshake, so it carries the farm notices sent during it, and it
/// survives `ibapi`'s own reconnects.
pub async fn open(
    endpoint: &Endpoint,
    options: ClientOptions,
) -> Result<(Client, NoticeStream), ConnectFailure> {
    let address = endpoint.address();
    let builder = Client::builder()
        .address(address.clone())
        .client_id(endpoint.client_id)
        .rate_limiter(RateLimiter::per_second(options.message_rate.max(1)))
        .max_reconnect_attempts(options.library_reconnect_attempts);
    match tokio::time::timeout(options.timeout, builder.connect_with_notice_stream()).await {
        Ok(Ok(connected)) => Ok(connected),
        Ok(Err(err)) => Err(classify(&address, endpoint.client_id, &err)),
        Err(_) => Err(ConnectFailure {
            kind: ConnectFailureKind::Timeout,
            message: format!(
                "{address} did not complete the TWS handshake within {:?}",
                options.timeout
            ),
        }),
    }
}

/// Turns an `ibapi` connect error into a typed failure.
pub fn classify(address: &str, client_id: i32, err: &ibapi::Error) -> ConnectFailure {
    use std::io::ErrorKind;
    let (kind, message) = match err {
        ibapi::Error::Io(io) if io.kind() == ErrorKind::ConnectionRefused => (
            ConnectFailureKind::Refused,
            format!(
                "{address} refused the connection; is TWS or IB Gateway running with the API enabled on that port?"
            ),
        ),
        ibapi::Error::Io(io) if io.kind() == ErrorKind::TimedOut => (
            ConnectFailureKind::Timeout,
            format!("connecting to {address} timed out"),
        ),
        ibapi::Error::ClientIdInUse { .. } => (
            ConnectFailureKind::ClientIdInUse,
            format!(
                "client id {client_id} is already in use at {address}; choose another client id or close the other connection"
            ),
        ),
        ibapi::Error::ServerVersion(required, actual, _) => (
            ConnectFailureKind::VersionMismatch,
            format!(
                "{address} speaks TWS API version {actual}; version {required} or later is required, upgrade TWS or IB Gateway"
            ),
        ),
        ibapi::Error::ConnectionRejected(_) => (
            ConnectFailureKind::Other,
            format!(
                "{address} closed the connection during the handshake; check the gateway's trusted IP addresses"
            ),
        ),
        other => (
            ConnectFailureKind::Other,
            format!("connecting to {address} failed: {other}"),
        ),
    };
    ConnectFailure { kind, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_bracket_ipv6_literals() {
        let mut e = Endpoint {
            host: "127.0.0.1".into(),
            port: 4002,
            client_id: 1,
        };
        assert_eq!(e.address(), "127.0.0.1:4002");
        e.host = "::1".into();
        assert_eq!(e.address(), "[::1]:4002");
    }

    #[test]
    fn errors_map_to_kinds() {
        let refused = ibapi::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(
            classify("a:1", 1, &refused).kind,
            ConnectFailureKind::Refused
        );
        let in_use = ibapi::Error::ClientIdInUse { client_id: 7 };
        let f = classify("a:1", 7, &in_use);
        assert_eq!(f.kind, ConnectFailureKind::ClientIdInUse);
        assert_eq!(f.ib_code(), Some(326));
        let old = ibapi::Error::ServerVersion(200, 100, "x".into());
        assert_eq!(
            classify("a:1", 1, &old).kind,
            ConnectFailureKind::VersionMismatch
        );
        assert_eq!(
            classify("a:1", 1, &ibapi::Error::ConnectionReset).kind,
            ConnectFailureKind::Other
        );
    }
}
