//! A cheap check of whether a gateway is accepting clients again: a plain TCP connect,
//! no API handshake, so it costs the gateway nothing and counts against no budget.
//!
//! The session uses it while it waits between attempts after the gateway went away
//! (see [`crate::ib::supervisor`]): the wait ends as soon as the port accepts, instead
//! of running out a backoff delay or a circuit cool-down while the gateway is back.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// How often the port is tried while waiting. One TCP connect a second is nothing to
/// a gateway and bounds how long a returning gateway goes unnoticed.
pub const PORT_PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// How long an accepted socket must stay open to count. A gateway ready for clients
/// waits for the client's handshake; one still starting up (or refusing, as in its
/// restart window) closes the socket at once.
const HOLD: Duration = Duration::from_millis(200);

/// Bound on the TCP connect itself (an unreachable host may never answer).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether something at `address` (`host:port`) accepts a TCP connection and keeps it
/// open for a moment, i.e. would take an API handshake now.
pub async fn accepting(address: &str) -> bool {
    let connect = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address));
    let Ok(Ok(mut stream)) = connect.await else {
        return false;
    };
    let mut byte = [0u8; 1];
    match tokio::time::timeout(HOLD, stream.read(&mut byte)).await {
        // Held open, waiting for our handshake.
        Err(_) => true,
        // It spoke first: it is there.
        Ok(Ok(n)) => n > 0,
        // Closed or reset at once.
        Ok(Err(_)) => false,
    }
}

/// Resolves once `address` is [`accepting`], trying every [`PORT_PROBE_INTERVAL`].
pub async fn until_accepting(address: &str) {
    let mut ticker = tokio::time::interval(PORT_PROBE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if accepting(address).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn a_port_that_holds_the_socket_accepts() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
            drop(socket);
        });
        assert!(accepting(&address).await);
        server.abort();
    }

    #[tokio::test]
    async fn a_port_that_closes_at_once_or_refuses_does_not() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                drop(socket);
            }
        });
        assert!(!accepting(&address).await);
        server.abort();
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = closed.local_addr().unwrap().to_string();
        drop(closed);
        assert!(!accepting(&address).await);
    }
}
