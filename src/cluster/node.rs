//! A node's part in the election: steps the lease, and switches what only a leader may
//! hold (the IB session) on when this node leads and off the moment it may no longer be
//! sure it does — before the lease could pass to another node, whether the bus answers
//! or not.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::lease::{Lease, Role};

/// What a leader holds and a follower must not.
pub trait Leadership: Send + Sync + 'static {
    /// This node now leads in `term`. Must not wait for the gateway: renewals go on
    /// meanwhile.
    fn lead(&self, term: u64) -> BoxFuture<'static, ()>;
    /// This node no longer leads: let go of everything at once.
    fn step_down(&self) -> BoxFuture<'static, ()>;
}

/// How long stepping down may take before the loop goes on without it.
const STEP_DOWN_LIMIT: Duration = Duration::from_secs(2);

/// The election loop of one node, until `stop`; `roles` shows its view as it changes.
/// On `stop` a leader steps down and resigns, so a standby takes over at once.
pub async fn run(
    mut lease: Lease,
    held: Arc<dyn Leadership>,
    roles: watch::Sender<Role>,
    stop: CancellationToken,
) {
    let every = lease.config().renew_every();
    let mut leading: Option<u64> = None;
    loop {
        // A bus that stops answering must not keep this node leading past its lease.
        let must_answer_by = lease.valid_until();
        let stepped = tokio::select! {
            _ = stop.cancelled() => break,
            stepped = lease.step() => Some(stepped),
            _ = sleep_until_some(must_answer_by) => None,
        };
        let seen = match stepped {
            Some(Ok(role)) => Some(role),
            Some(Err(e)) => {
                tracing::warn!(error = %e, node = lease.node(), "cluster lease not reachable");
                None
            }
            None => {
                tracing::warn!(node = lease.node(), "cluster lease not renewed in time");
                None
            }
        };
        let now = lease.holds();
        if leading != now {
            if leading.is_some() {
                tracing::info!(node = lease.node(), term = ?leading, "no longer the cluster's leader");
                let _ = tokio::time::timeout(STEP_DOWN_LIMIT, held.step_down()).await;
            }
            if let Some(term) = now {
                tracing::info!(node = lease.node(), term, "leading the cluster");
                held.lead(term).await;
            }
            leading = now;
        }
        let role = match (now, seen) {
            (Some(term), _) => Role::Leader {
                term,
                valid_until: lease.valid_until().unwrap_or_else(Instant::now),
            },
            (None, Some(role @ Role::Follower { .. })) => role,
            (None, _) => Role::Follower {
                leader: None,
                term: roles.borrow().term(),
            },
        };
        roles.send_if_modified(|current| {
            let changed = !same_role(current, &role);
            *current = role;
            changed
        });
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
    if leading.is_some() {
        let _ = tokio::time::timeout(STEP_DOWN_LIMIT, held.step_down()).await;
        lease.resign().await;
    }
    // Read first: the borrow must end before the value is replaced.
    let term = roles.borrow().term();
    roles.send_replace(Role::Follower { leader: None, term });
}

/// Roles equal but for a leader's renewed validity.
fn same_role(a: &Role, b: &Role) -> bool {
    match (a, b) {
        (Role::Leader { term: x, .. }, Role::Leader { term: y, .. }) => x == y,
        _ => a == b,
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The IB session is what the leader holds.
impl Leadership for crate::ib::Session {
    fn lead(&self, _term: u64) -> BoxFuture<'static, ()> {
        let session = self.clone();
        Box::pin(async move {
            // The supervisor retries in the background; the election does not wait.
            tokio::spawn(async move {
                if let Err(e) = session.connect().await {
                    tracing::warn!(error = %e, "the leader's first connect failed; retrying");
                }
            });
        })
    }

    fn step_down(&self) -> BoxFuture<'static, ()> {
        let session = self.clone();
        Box::pin(async move {
            let _ = session.disconnect().await;
        })
    }
}
