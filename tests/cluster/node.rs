//! The election loop: what only a leader may hold is held by one node at a time, through
//! a clean stop, a leader cut off from NATS, and terms that only grow.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use ibstream::cluster::{Leadership, Lease, LeaseConfig, Role, run_node};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::bus;

const TTL: Duration = Duration::from_secs(2);

/// Stands for the IB session: counts holders across nodes and logs who held it when.
#[derive(Default)]
struct Held {
    holders: AtomicUsize,
    /// Times two nodes held it at once.
    overlaps: AtomicUsize,
    log: Mutex<Vec<(String, u64, bool)>>,
}

struct NodeHeld {
    node: String,
    shared: Arc<Held>,
}

impl Leadership for NodeHeld {
    fn lead(&self, term: u64) -> BoxFuture<'static, ()> {
        let shared = self.shared.clone();
        let node = self.node.clone();
        Box::pin(async move {
            if shared.holders.fetch_add(1, Ordering::SeqCst) > 0 {
                shared.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            shared.log.lock().unwrap().push((node, term, true));
        })
    }

    fn step_down(&self) -> BoxFuture<'static, ()> {
        let shared = self.shared.clone();
        let node = self.node.clone();
        Box::pin(async move {
            shared.holders.fetch_sub(1, Ordering::SeqCst);
            shared.log.lock().unwrap().push((node, 0, false));
        })
    }
}

struct Node {
    name: String,
    roles: watch::Receiver<Role>,
    stop: CancellationToken,
    client: async_nats::Client,
    task: tokio::task::JoinHandle<()>,
}

async fn start(bucket: &str, name: &str, held: &Arc<Held>) -> Node {
    // Each node on its own connection, so one can be cut off alone.
    let client = async_nats::connect(bus::url()).await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    let lease = Lease::open(
        &js,
        LeaseConfig {
            bucket: bucket.into(),
            node: name.into(),
            ttl: TTL,
        },
    )
    .await
    .unwrap();
    let (tx, roles) = watch::channel(Role::Follower {
        leader: None,
        term: 0,
    });
    let stop = CancellationToken::new();
    let task = tokio::spawn(run_node(
        lease,
        Arc::new(NodeHeld {
            node: name.into(),
            shared: held.clone(),
        }),
        tx,
        stop.clone(),
    ));
    Node {
        name: name.into(),
        roles,
        stop,
        client,
        task,
    }
}

/// The index and term of the one node leading, waiting (bounded) until exactly one does.
async fn one_leader(nodes: &[Node], within: Duration) -> (usize, u64) {
    let until = tokio::time::Instant::now() + within;
    loop {
        let leaders: Vec<(usize, u64)> = nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match *n.roles.borrow() {
                Role::Leader { term, .. } if !n.stop.is_cancelled() => Some((i, term)),
                _ => None,
            })
            .collect();
        if leaders.len() == 1 {
            return leaders[0];
        }
        assert!(
            tokio::time::Instant::now() < until,
            "no single leader within {within:?}: {leaders:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_stopped_leader_hands_over_at_once_and_only_one_node_ever_holds_the_session() {
    let Some((js, bucket)) = bus::jetstream().await else {
        return;
    };
    let held = Arc::new(Held::default());
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        nodes.push(start(&bucket, name, &held).await);
    }
    let (first, term) = one_leader(&nodes, TTL * 2).await;
    let leader = nodes.remove(first);
    leader.stop.cancel();
    leader.task.await.unwrap();
    // A clean stop resigns: the next leader does not wait for the lease to age out.
    let started = tokio::time::Instant::now();
    let (next, next_term) = one_leader(&nodes, TTL * 2).await;
    assert_ne!(nodes[next].name, leader.name);
    assert!(next_term > term, "terms only grow: {term} then {next_term}");
    assert!(
        started.elapsed() < TTL,
        "handed over after {:?}",
        started.elapsed()
    );
    assert_eq!(
        held.overlaps.load(Ordering::SeqCst),
        0,
        "{:?}",
        held.log.lock().unwrap()
    );
    for n in &nodes {
        n.stop.cancel();
    }
    for n in nodes {
        n.task.await.unwrap();
    }
    assert_eq!(held.holders.load(Ordering::SeqCst), 0);
    js.delete_key_value(&bucket).await.unwrap();
}

#[tokio::test]
async fn a_leader_cut_off_from_nats_lets_go_before_a_standby_takes_over() {
    let Some((js, bucket)) = bus::jetstream().await else {
        return;
    };
    let held = Arc::new(Held::default());
    let mut nodes = Vec::new();
    for name in ["a", "b"] {
        nodes.push(start(&bucket, name, &held).await);
    }
    let (first, term) = one_leader(&nodes, TTL * 2).await;
    // The leader's process goes on, but its bus is gone.
    nodes[first].client.drain().await.unwrap();
    let cut = tokio::time::Instant::now();
    let other = 1 - first;
    let until = cut + TTL * 3;
    let next_term = loop {
        if let Role::Leader { term, .. } = *nodes[other].roles.borrow() {
            break term;
        }
        assert!(tokio::time::Instant::now() < until, "no standby took over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(next_term > term);
    assert!(
        !nodes[first].roles.borrow().is_leader(),
        "the cut-off node still believes it leads"
    );
    let log = held.log.lock().unwrap().clone();
    assert_eq!(held.overlaps.load(Ordering::SeqCst), 0, "{log:?}");
    // The cut-off node let go first, then the standby took over.
    let first_name = ["a", "b"][first];
    let gone = log
        .iter()
        .position(|(n, _, lead)| n == first_name && !lead)
        .expect("the cut-off leader stepped down");
    let taken = log
        .iter()
        .position(|(n, t, lead)| n != first_name && *lead && *t == next_term)
        .expect("the standby took over");
    assert!(gone < taken, "{log:?}");
    for n in &nodes {
        n.stop.cancel();
    }
    for n in nodes {
        n.task.await.unwrap();
    }
    js.delete_key_value(&bucket).await.unwrap();
}
