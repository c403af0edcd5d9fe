//! `grpc.health.v1`: every ibstream service is SERVING exactly while the IB session is
//! (in a cluster, while the node's market data flows: its own session when it leads,
//! the leader's otherwise).

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::fanout::LinkState;
use crate::ib::SessionStatus;

/// Reports `status` for the server as a whole ("") and each of `services`.
async fn set_all(reporter: &HealthReporter, services: &[&str], status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for name in services {
        reporter.set_service_status(*name, status).await;
    }
}

/// Whether a session's status means the server serves.
pub fn session_serves(status: &SessionStatus) -> bool {
    status.is_serving()
}

/// Whether a market-data link means the server serves.
pub fn link_serves(link: &LinkState) -> bool {
    link.generation.is_some()
}

/// Follows `status` for `services` until shutdown (SERVING while `serves` says so),
/// then reports NOT_SERVING.
pub fn spawn_health_follower<T: Send + Sync + 'static>(
    reporter: HealthReporter,
    services: &'static [&'static str],
    mut status: watch::Receiver<T>,
    serves: fn(&T) -> bool,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = None;
        loop {
            let serving = if serves(&status.borrow_and_update()) {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            if last != Some(serving) {
                set_all(&reporter, services, serving).await;
                last = Some(serving);
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                changed = status.changed() => if changed.is_err() { break },
            }
        }
        set_all(&reporter, services, ServingStatus::NotServing).await;
    })
}
