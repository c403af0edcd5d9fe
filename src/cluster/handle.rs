//! What the services need of the cluster: whether this node leads, the leader's session
//! status, the members, and forwarding session commands to the leader.

use std::sync::Arc;

use async_nats::Client;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;
use tokio_util::sync::CancellationToken;

use super::admin::{self, ForwardError, SessionOp};
use super::lease::Role;
use super::members::Members;
use super::subjects::Subjects;
use crate::proto::ibstream::v1 as api;

/// This node's view of its cluster. Cheap to clone.
#[derive(Clone)]
pub struct ClusterHandle {
    client: Client,
    subjects: Subjects,
    node: String,
    roles: watch::Receiver<Role>,
    members: Arc<Members>,
    /// Cancelled once the election loop has ended (a leader has resigned).
    done: CancellationToken,
}

impl std::fmt::Debug for ClusterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterHandle")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl ClusterHandle {
    pub fn new(
        client: Client,
        subjects: Subjects,
        node: String,
        roles: watch::Receiver<Role>,
        members: Arc<Members>,
        done: CancellationToken,
    ) -> ClusterHandle {
        ClusterHandle {
            client,
            subjects,
            node,
            roles,
            members,
            done,
        }
    }

    /// Waits (at most `limit`) for the election loop to end after shutdown began, so a
    /// leader hands its lease back before the process exits.
    pub async fn stopped(&self, limit: std::time::Duration) {
        let _ = tokio::time::timeout(limit, self.done.cancelled()).await;
    }

    /// Whether this node holds the lease now.
    pub fn leads(&self) -> bool {
        self.roles.borrow().is_leader()
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Carries out `op` at the leader.
    pub async fn forward(&self, op: SessionOp) -> Result<api::ConnectionStatus, ForwardError> {
        admin::forward(&self.client, &self.subjects, &self.node, op).await
    }

    /// The leader's session status as it last said, unless this node leads or no node
    /// has led lately.
    pub fn leader_status(&self) -> Option<api::ConnectionStatus> {
        if self.leads() {
            return None;
        }
        self.members.leader().and_then(|l| l.status)
    }

    /// `status` with the cluster's part filled in.
    pub fn with_view(&self, mut status: api::ConnectionStatus) -> api::ConnectionStatus {
        let mut view = self.members.status();
        // This node's own role is known here first: the members hear it a moment later.
        if let Role::Leader { term, .. } = *self.roles.borrow() {
            view.leader = self.node.clone();
            view.term = term;
            for n in &mut view.nodes {
                n.leader = n.name == self.node;
            }
        }
        status.cluster = Some(view);
        status
    }

    /// Ticks whenever this node's role, the leader or the leader's status changes.
    pub fn changes(&self) -> BoxStream<'static, ()> {
        let roles = WatchStream::from_changes(self.roles.clone()).map(|_| ());
        let members = WatchStream::from_changes(self.members.changes()).map(|_| ());
        futures::stream::select(roles, members).boxed()
    }
}
