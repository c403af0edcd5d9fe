//! Carries out the fault plan through the simulator's control plane (and the keys
//! command for revocations), journaling each episode with when the gateway was healthy
//! again, and runs the quiet-period check in the long gaps.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::child::{self, ApiKey};
use super::clients::KeyState;
use super::journal::{Clock, FaultLog, Journal};
use super::monitor::Monitor;
use super::plan::{Action, Step, notice_text};
use crate::proto::ibsim::v1 as sim;
use crate::proto::ibsim::v1::simulator_control_client::SimulatorControlClient;

/// How long after a gateway fault the quiet-period check starts: the server's linger
/// plus time for cancellations to pass the pacer.
pub fn quiet_delay(linger: f64) -> f64 {
    linger + 1.5
}

/// A client's key slot: the sender its lanes watch and the key now in use.
#[derive(Debug)]
pub struct ClientKey {
    pub state: watch::Sender<KeyState>,
    pub key: ApiKey,
}

/// Runs the plan.
pub struct Injector {
    pub control: SimulatorControlClient<Channel>,
    pub clock: Clock,
    pub journal: Journal,
    pub exe: PathBuf,
    pub data_dir: PathBuf,
    pub keys: Vec<ClientKey>,
    pub linger: f64,
}

fn duration(d: Duration) -> Option<prost_types::Duration> {
    prost_types::Duration::try_from(d).ok()
}

impl Injector {
    /// Runs every step at its time until the plan ends or `stop` is cancelled.
    pub async fn run(&mut self, steps: &[Step], monitor: &mut Monitor, stop: &CancellationToken) {
        for step in steps {
            if !self.sleep_until(step.at, stop).await {
                return;
            }
            let start = self.clock.now();
            if let Err(err) = self.act(&step.action, stop).await {
                self.journal.violation(
                    start,
                    "sim-control",
                    format!("{}: {err}", step.action.kind()),
                );
            }
            let end = self.clock.now();
            self.journal.lock().faults.push(FaultLog {
                kind: step.action.kind(),
                start,
                end,
                gateway: step.action.disturbs_gateway(),
            });
            if step.quiet_after {
                if !self.sleep_until(end + quiet_delay(self.linger), stop).await {
                    return;
                }
                monitor.quiet_check().await;
            }
        }
    }

    /// Sleeps until `at`; false when stopped first.
    async fn sleep_until(&self, at: f64, stop: &CancellationToken) -> bool {
        let wait = Duration::from_secs_f64((at - self.clock.now()).max(0.0));
        tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            _ = stop.cancelled() => false,
        }
    }

    async fn act(&mut self, action: &Action, stop: &CancellationToken) -> anyhow::Result<()> {
        let span = action.span();
        match action {
            Action::Drop => self.drop_connections().await?,
            Action::Refuse(d) => {
                self.control
                    .set_availability(sim::SetAvailabilityRequest {
                        refuse_for: duration(*d),
                    })
                    .await?;
                self.drop_connections().await?;
                self.sleep_until(self.clock.now() + span.as_secs_f64(), stop)
                    .await;
            }
            Action::Stall(d) => {
                self.control
                    .stall(sim::StallRequest {
                        duration: duration(*d),
                    })
                    .await?;
                self.sleep_until(self.clock.now() + span.as_secs_f64(), stop)
                    .await;
            }
            Action::Notice { code, restore } => {
                self.inject(*code).await?;
                if let Some((after, restoring)) = restore {
                    self.sleep_until(self.clock.now() + after.as_secs_f64(), stop)
                        .await;
                    self.inject(*restoring).await?;
                }
            }
            Action::NoticeThenDrop { code, after } => {
                self.inject(*code).await?;
                self.sleep_until(self.clock.now() + after.as_secs_f64(), stop)
                    .await;
                self.drop_connections().await?;
            }
            Action::TickInterval(d) => {
                self.control
                    .set_tick_interval(sim::SetTickIntervalRequest {
                        interval: duration(*d),
                    })
                    .await?;
            }
            Action::LineLimit(n) => {
                self.control
                    .set_line_limit(sim::SetLineLimitRequest { line_limit: *n })
                    .await?;
            }
            Action::LivePermission { symbol, off_for } => {
                let set = |live| sim::SetLivePermissionRequest {
                    symbol: (*symbol).to_owned(),
                    live,
                };
                self.control.set_live_permission(set(false)).await?;
                self.sleep_until(self.clock.now() + off_for.as_secs_f64(), stop)
                    .await;
                self.control.set_live_permission(set(true)).await?;
            }
            Action::Revoke { client } => self.revoke(*client).await?,
        }
        Ok(())
    }

    async fn drop_connections(&mut self) -> Result<(), tonic::Status> {
        self.control
            .drop_connections(sim::DropConnectionsRequest {})
            .await
            .map(|_| ())
    }

    /// Sends a notice to every connection; counts it as the gateway does (once per
    /// connection it tried) so the error check can subtract it.
    async fn inject(&mut self, code: i32) -> Result<(), tonic::Status> {
        let connections = self
            .control
            .get_stats(sim::GetStatsRequest {})
            .await?
            .into_inner()
            .connections;
        let delivered = self
            .control
            .inject_error(sim::InjectErrorRequest {
                code,
                message: notice_text(code).to_owned(),
                request_id: None,
            })
            .await?
            .into_inner()
            .delivered;
        *self.journal.lock().injected.entry(code).or_default() +=
            u64::from(connections.max(delivered));
        Ok(())
    }

    /// Gives the client a new key, then revokes its old one and tells its lanes when.
    async fn revoke(&mut self, client: usize) -> anyhow::Result<()> {
        let Some(slot) = self.keys.get_mut(client) else {
            return Ok(());
        };
        let name = format!("drill-client-{client}");
        let fresh = child::create_key(&self.exe, &self.data_dir, &name).await?;
        // The lanes learn of the revocation before it happens: the server may end a
        // stream while the revoking command is still exiting, and that end is expected.
        let at = self.clock.now();
        let old = std::mem::replace(&mut slot.key, fresh);
        let token = slot.key.token.clone();
        slot.state.send_modify(|s| {
            s.revoked.insert(old.token.clone(), at);
            s.token = token;
        });
        child::revoke_key(&self.exe, &self.data_dir, &old.id).await?;
        Ok(())
    }
}
