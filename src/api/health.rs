//! `grpc.health.v1`: every ibstream service is SERVING exactly while the IB session is.

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::ib::SessionStatus;

/// Reports `status` for the server as a whole ("") and each of `services`.
async fn set_all(reporter: &HealthReporter, services: &[&str], status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for name in services {
        reporter.set_service_status(*name, status).await;
    }
}

/// Follows the session's status for `services` until shutdown, then reports
/// NOT_SERVING.
pub fn spawn_health_follower(
    reporter: HealthReporter,
    services: &'static [&'static str],
    mut status: watch::Receiver<SessionStatus>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = None;
        loop {
            let serving = if status.borrow_and_update().is_serving() {
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
