//! The leader's lease: one holder at a time, terms that only grow, a standby that takes
//! over within the lease's time to live, and a deposed holder that cannot write.

use std::time::Duration;

use ibstream::cluster::{Lease, LeaseConfig, Role};

use crate::bus;

const TTL: Duration = Duration::from_secs(2);

fn config(bucket: &str, node: &str) -> LeaseConfig {
    LeaseConfig {
        bucket: bucket.into(),
        node: node.into(),
        ttl: TTL,
    }
}

/// Steps every node once; returns their roles.
async fn round(nodes: &mut [Lease]) -> Vec<Role> {
    let mut roles = Vec::new();
    for n in nodes.iter_mut() {
        roles.push(n.step().await.expect("lease step"));
    }
    roles
}

#[tokio::test]
async fn one_of_three_nodes_leads_and_the_others_know_whom_and_in_which_term() {
    let Some((js, bucket)) = bus::jetstream().await else {
        return;
    };
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        nodes.push(Lease::open(&js, config(&bucket, name)).await.unwrap());
    }
    for _ in 0..5 {
        let roles = round(&mut nodes).await;
        let leaders: Vec<usize> = (0..3).filter(|&i| roles[i].is_leader()).collect();
        assert_eq!(leaders.len(), 1, "exactly one leader: {roles:?}");
        let term = roles[leaders[0]].term();
        assert!(term > 0);
        for (i, r) in roles.iter().enumerate() {
            if i != leaders[0] {
                assert_eq!(
                    r,
                    &Role::Follower {
                        leader: Some(nodes[leaders[0]].node().to_owned()),
                        term
                    }
                );
            }
        }
        tokio::time::sleep(TTL / 4).await;
    }
    js.delete_key_value(&bucket).await.unwrap();
}

#[tokio::test]
async fn a_silent_leader_is_replaced_within_the_lease_and_its_late_write_is_refused() {
    let Some((js, bucket)) = bus::jetstream().await else {
        return;
    };
    let mut a = Lease::open(&js, config(&bucket, "a")).await.unwrap();
    let mut b = Lease::open(&js, config(&bucket, "b")).await.unwrap();
    let first = a.step().await.unwrap();
    assert!(first.is_leader());
    assert!(!b.step().await.unwrap().is_leader());

    // `a` stops renewing (a paused process). It must stop counting itself leader before
    // the lease can age out, and `b` must take over within the time to live.
    let silent_from = tokio::time::Instant::now();
    let mut b_term = None;
    while silent_from.elapsed() < TTL * 3 {
        if let Role::Leader { term, .. } = b.step().await.unwrap() {
            // Whenever b leads, a no longer believes it does.
            assert_eq!(a.holds(), None, "two leaders at once");
            b_term = Some(term);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b_term = b_term.expect("the standby took the lease");
    assert!(
        silent_from.elapsed() <= TTL + Duration::from_secs(1),
        "took over after {:?}",
        silent_from.elapsed()
    );
    assert!(b_term > first.term(), "terms only grow");

    // `a` wakes up: its renewal is refused and it learns who leads now.
    assert_eq!(
        a.step().await.unwrap(),
        Role::Follower {
            leader: Some("b".into()),
            term: b_term
        }
    );
    assert!(b.step().await.unwrap().is_leader());
    js.delete_key_value(&bucket).await.unwrap();
}

#[tokio::test]
async fn a_leader_that_resigns_is_replaced_at_once() {
    let Some((js, bucket)) = bus::jetstream().await else {
        return;
    };
    let mut a = Lease::open(&js, config(&bucket, "a")).await.unwrap();
    let mut b = Lease::open(&js, config(&bucket, "b")).await.unwrap();
    let first = a.step().await.unwrap();
    assert!(first.is_leader());
    a.resign().await;
    assert_eq!(a.holds(), None);
    let next = b.step().await.unwrap();
    assert!(next.is_leader(), "{next:?}");
    assert!(next.term() > first.term());
    js.delete_key_value(&bucket).await.unwrap();
}
