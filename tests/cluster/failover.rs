//! Three `ibstream serve --cluster` processes and one simulated gateway: the leader
//! killed, a follower killed, the leader cut off from NATS. One IB session at a time,
//! one IB subscription per instrument, streams that carry on.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use crate::nodes::{LINGER, Rig, Watched, eventually};

/// How long a node's instruments outlive the node: its holds at the leader expire
/// (3 s without a renewal), then the linger.
const RELEASED_WITHIN: Duration = Duration::from_secs(12);

/// The instruments the given streams watch, together.
fn union(streams: &[&Watched]) -> BTreeSet<String> {
    streams.iter().flat_map(|w| w.symbols.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_and_every_stream_carries_on() {
    let Some(mut rig) = Rig::start(3).await else {
        return;
    };
    let leader = rig.wait_leader_connected().await;
    let plan: [(&str, &[&str]); 3] = [
        ("n1", &["AAPL", "MSFT"]),
        ("n2", &["MSFT", "NVDA"]),
        ("n3", &["NVDA", "AMZN"]),
    ];
    let mut streams = Vec::new();
    for (node, symbols) in plan {
        streams.push(Watched::open(rig.node(node), symbols).await);
    }
    let all: Vec<&Watched> = streams.iter().collect();
    // One IB subscription per instrument, however many nodes and streams watch it.
    let expected = union(&all).len() as u32;
    assert_eq!(
        rig.wait_gateway_subscriptions(expected, Duration::from_secs(5))
            .await,
        expected,
        "gateway subscriptions before the kill"
    );

    let killed_at = Instant::now();
    rig.kill(&leader);
    let successor = rig.wait_leader(|l| l != leader).await;
    let led_after = killed_at.elapsed();
    assert!(
        led_after < Duration::from_secs(5),
        "{successor} led {led_after:?} after {leader} was killed"
    );

    let survivors: Vec<&Watched> = streams.iter().filter(|w| w.node != leader).collect();
    for stream in &survivors {
        for symbol in &stream.symbols {
            let deadline = killed_at + Duration::from_secs(10);
            let fresh = loop {
                if let Some(at) = stream.resumed_after(symbol, killed_at) {
                    break Some(at);
                }
                if Instant::now() > deadline {
                    break None;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            assert!(
                stream.went_stale_after(symbol, killed_at),
                "{symbol} on {} never went stale",
                stream.node
            );
            let fresh = fresh.unwrap_or_else(|| {
                panic!(
                    "{symbol} on {} not fresh within 10 s of the kill:\n{}",
                    stream.node,
                    rig.logs()
                )
            });
            assert!(fresh - killed_at < Duration::from_secs(10));
        }
    }
    assert_eq!(
        rig.gateway.most_sessions.load(Ordering::Relaxed),
        1,
        "two sessions of client id at once"
    );
    assert_eq!(
        rig.refusals_326(),
        0,
        "the gateway refused a client id in use"
    );

    // The killed node's instruments go; the survivors' stay: no leak, no orphan.
    let wanted = union(&survivors).len() as u32;
    let live = rig
        .wait_gateway_subscriptions(wanted, RELEASED_WITHIN)
        .await;
    assert_eq!(live, wanted, "gateway subscriptions after the failover");
    tokio::time::sleep(LINGER * 2).await;
    assert_eq!(
        rig.sim.control().stats().active_market_data_subscriptions,
        wanted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_followers_instruments_are_released_after_the_linger() {
    let Some(mut rig) = Rig::start(2).await else {
        return;
    };
    let leader = rig.wait_leader_connected().await;
    let follower = if leader == "n1" { "n2" } else { "n1" };
    let kept = Watched::open(rig.node(&leader), &["AAPL"]).await;
    let _gone = Watched::open(rig.node(follower), &["TSLA", "AAPL"]).await;
    assert_eq!(
        rig.wait_gateway_subscriptions(2, Duration::from_secs(5))
            .await,
        2
    );

    let killed_at = Instant::now();
    rig.kill(follower);
    assert_eq!(
        rig.wait_gateway_subscriptions(1, RELEASED_WITHIN).await,
        1,
        "TSLA still subscribed after the follower died:\n{}",
        rig.logs()
    );
    let released = killed_at.elapsed();
    // Not before its holds expired and the linger ran: a brief silence is no death.
    assert!(released >= LINGER, "released after only {released:?}");
    // The leader's own stream never noticed.
    assert!(!kept.went_stale_after("AAPL", killed_at));
    let after = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        kept.quoted_since("AAPL", Some(after)),
        "AAPL stopped on the leader"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_nats_drops_its_session_and_the_new_term_wins() {
    let Some(rig) = Rig::start(3).await else {
        return;
    };
    let leader = rig.wait_leader_connected().await;
    let others: Vec<String> = rig
        .nodes
        .iter()
        .map(|n| n.name.clone())
        .filter(|n| *n != leader)
        .collect();
    let term_before = rig
        .node(&others[0])
        .status()
        .await
        .unwrap()
        .cluster
        .unwrap()
        .term;
    let watched = Watched::open(rig.node(&others[0]), &["AAPL", "MSFT"]).await;

    let cut_at = Instant::now();
    rig.node(&leader).cut_off();
    // The survivors agree on a new leader (the cut-off node cannot answer for itself:
    // ask only them).
    let deadline = cut_at + Duration::from_secs(15);
    let (successor, term_after) = loop {
        let status = rig.node(&others[0]).status().await;
        if let Some(cluster) = status.and_then(|s| {
            (s.state == ibstream::proto::ibstream::v1::ConnectionState::Connected as i32)
                .then_some(s.cluster)
                .flatten()
        }) && !cluster.leader.is_empty()
            && cluster.leader != leader
        {
            break (cluster.leader, cluster.term);
        }
        assert!(Instant::now() < deadline, "no new leader:\n{}", rig.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        term_after > term_before,
        "term {term_after} after {term_before}"
    );
    // The deposed leader let go of its session before the lease could pass.
    assert!(
        rig.node(&leader)
            .log()
            .contains("no longer the cluster's leader"),
        "{}",
        rig.node(&leader).log()
    );
    assert_eq!(rig.gateway.most_sessions.load(Ordering::Relaxed), 1);
    assert_eq!(rig.refusals_326(), 0);
    for symbol in ["AAPL", "MSFT"] {
        let until = cut_at + Duration::from_secs(15);
        while watched.resumed_after(symbol, cut_at).is_none() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            watched.resumed_after(symbol, cut_at).is_some()
                || !watched.went_stale_after(symbol, cut_at),
            "{symbol} stale since the cut:\n{}",
            rig.logs()
        );
    }

    // Back on the bus, the old leader follows; the new term's values are the only ones.
    rig.node(&leader).reconnect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = rig
        .node(&leader)
        .status()
        .await
        .expect("old leader answers");
    let cluster = status.cluster.unwrap();
    assert_eq!(
        cluster.leader, successor,
        "the old leader follows the new term"
    );
    assert_eq!(cluster.term, term_after);
    assert_eq!(
        watched.repeats(),
        Vec::<String>::new(),
        "a value published twice"
    );
    assert_eq!(rig.gateway.most_sessions.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_commands_on_a_follower_act_on_the_leaders_session() {
    let Some(rig) = Rig::start(2).await else {
        return;
    };
    let leader = rig.wait_leader_connected().await;
    let follower = rig.nodes.iter().find(|n| n.name != leader).unwrap();
    // A follower serves while the leader's session is up, whatever its own.
    assert_eq!(follower.health().await, Some(true));
    // Each node's metrics say its role, the term and its traffic on the bus.
    let term = follower.status().await.unwrap().cluster.unwrap().term as f64;
    for node in &rig.nodes {
        let leads = f64::from(u8::from(node.name == leader));
        assert_eq!(
            node.metric("ibstream_cluster_leader"),
            Some(leads),
            "{}",
            node.name
        );
        assert_eq!(
            node.metric("ibstream_cluster_term"),
            Some(term),
            "{}",
            node.name
        );
        assert!(node.metric("ibstream_bus_messages_sent_total").unwrap() > 0.0);
        assert!(node.metric("ibstream_bus_bytes_received_total").unwrap() > 0.0);
    }
    let mut control = follower.connection().await;
    let mut watched = follower
        .connection()
        .await
        .watch_status(ibstream::proto::ibstream::v1::WatchStatusRequest {})
        .await
        .expect("watch opens")
        .into_inner();
    let first = watched.message().await.unwrap().unwrap();
    assert_eq!(first.cluster.as_ref().unwrap().leader, leader);
    let pb = ibstream::proto::ibstream::v1::DisconnectRequest {};
    let status = control
        .disconnect(pb)
        .await
        .expect("forwarded")
        .into_inner();
    assert_eq!(
        status.state,
        ibstream::proto::ibstream::v1::ConnectionState::Disconnected as i32
    );
    assert_eq!(status.cluster.expect("cluster part").leader, leader);
    eventually(
        Duration::from_secs(5),
        "the leader's session closed",
        || rig.sim.control().stats().connections == 0,
    )
    .await;
    // Every node now shows the leader's session down.
    let deadline = Instant::now() + Duration::from_secs(5);
    while follower.status().await.map(|s| s.state)
        != Some(ibstream::proto::ibstream::v1::ConnectionState::Disconnected as i32)
    {
        assert!(
            Instant::now() < deadline,
            "the follower shows a stale status"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The follower has no data to serve now: its health says so.
    let deadline = Instant::now() + Duration::from_secs(5);
    while follower.health().await != Some(false) {
        assert!(
            Instant::now() < deadline,
            "the follower still reports SERVING"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // So does the follower's status stream.
    let down = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(s)) = watched.message().await {
            if s.state == ibstream::proto::ibstream::v1::ConnectionState::Disconnected as i32 {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        down,
        Ok(true),
        "WatchStatus on the follower missed the disconnect"
    );
    let connect = ibstream::proto::ibstream::v1::ConnectRequest {};
    let status = control
        .connect(connect)
        .await
        .expect("forwarded")
        .into_inner();
    assert_eq!(
        status.state,
        ibstream::proto::ibstream::v1::ConnectionState::Connected as i32
    );
    assert_eq!(rig.sim.control().stats().connections, 1);
    assert_eq!(rig.gateway.most_sessions.load(Ordering::Relaxed), 1);
}

#[test]
fn a_cluster_node_refuses_sqlite_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ibstream"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--cluster",
            "nats://127.0.0.1:9",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("IBSTREAM_DATABASE_URL")
        .env("IBSTREAM_MASTER_KEY", "cluster-test-master-secret")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a cluster keeps its store in PostgreSQL") && err.contains("sqlite"),
        "{err}"
    );
}
