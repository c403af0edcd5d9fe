//! Shared helpers: start a simulator on an ephemeral port, connect clients, wait for ticks.

#![allow(dead_code)]

use std::time::Duration;

use ibapi::market_data::realtime::TickTypes;
use ibapi::prelude::*;
use ibapi::subscriptions::Subscription;
use ibstream::sim::{SimConfig, SimHandle, Simulator};

/// Upper bound for anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(10);

/// A simulator with default settings and a fast tick interval.
pub async fn start() -> SimHandle {
    start_with(|_| {}).await
}

/// A simulator with adjusted settings.
pub async fn start_with(adjust: impl FnOnce(&mut SimConfig)) -> SimHandle {
    let mut config = SimConfig {
        tick_interval: Duration::from_millis(20),
        ..SimConfig::default()
    };
    adjust(&mut config);
    Simulator::start(config).await.expect("simulator starts")
}

/// An `ibapi` client connected to the simulator.
pub async fn connect(sim: &SimHandle, client_id: i32) -> Client {
    tokio::time::timeout(
        WAIT,
        Client::connect(&sim.gateway_addr().to_string(), client_id),
    )
    .await
    .expect("connect within the deadline")
    .expect("connect succeeds")
}

/// The next data item of a subscription (notices skipped), within [`WAIT`].
pub async fn next_data<T, S>(sub: &mut S) -> T
where
    S: futures::Stream<Item = Result<SubscriptionItem<T>, ibapi::Error>> + Unpin,
{
    tokio::time::timeout(WAIT, async {
        loop {
            match sub.next().await {
                Some(Ok(SubscriptionItem::Data(t))) => return t,
                Some(Ok(SubscriptionItem::Notice(_))) => continue,
                Some(Err(e)) => panic!("subscription failed: {e:?}"),
                None => panic!("subscription ended"),
            }
        }
    })
    .await
    .expect("data within the deadline")
}

/// Ticks until `stop` says enough (bounded by [`WAIT`]).
pub async fn ticks_until(
    sub: &mut Subscription<TickTypes>,
    mut stop: impl FnMut(&[TickTypes]) -> bool,
) -> Vec<TickTypes> {
    let mut seen = Vec::new();
    while !stop(&seen) {
        seen.push(next_data(sub).await);
    }
    seen
}

/// Polls `cond` every 20 ms until true, failing after [`WAIT`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
