//! When the nodes of a cluster agree on a leader: shared by the cluster tests and the
//! cluster benchmark.

use ibstream::proto::ibstream::v1 as pb;

/// The leader every node names, each with the leader's session connected; `None` while
/// a node does not answer (`None` in `statuses`), is not connected, names no leader, or
/// names another.
pub fn agreed(statuses: impl IntoIterator<Item = Option<pb::ConnectionStatus>>) -> Option<String> {
    let mut named: Option<String> = None;
    for status in statuses {
        let status = status?;
        if status.state != pb::ConnectionState::Connected as i32 {
            return None;
        }
        let leader = status.cluster?.leader;
        if leader.is_empty() || named.as_ref().is_some_and(|n| *n != leader) {
            return None;
        }
        named = Some(leader);
    }
    named
}

/// [`agreed`] over the answers to `asks`, one node at a time.
pub async fn agreed_among<F>(asks: impl IntoIterator<Item = F>) -> Option<String>
where
    F: std::future::Future<Output = Option<pb::ConnectionStatus>>,
{
    let mut statuses = Vec::new();
    for ask in asks {
        statuses.push(ask.await);
    }
    agreed(statuses)
}
