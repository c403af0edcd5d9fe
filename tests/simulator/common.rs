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

/// The first error a subscription yields (data and notices skipped), within [`WAIT`].
pub async fn first_error<T, S>(sub: &mut S) -> ibapi::Error
where
    S: futures::Stream<Item = Result<SubscriptionItem<T>, ibapi::Error>> + Unpin,
{
    tokio::time::timeout(WAIT, async {
        loop {
            match sub.next().await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return e,
                None => panic!("subscription ended without an error"),
            }
        }
    })
    .await
    .expect("error within the deadline")
}

/// The IB code of an `Error::Notice`.
pub fn notice_code(e: &ibapi::Error) -> i32 {
    match e {
        ibapi::Error::Notice(n) => n.code,
        other => panic!("expected an IB notice, got {other:?}"),
    }
}

/// (price, size) of every bid in `ticks`, live or delayed.
pub fn bids(ticks: &[TickTypes]) -> Vec<(f64, f64)> {
    use ibapi::contracts::tick_types::TickType;
    ticks
        .iter()
        .filter_map(|t| match t {
            TickTypes::PriceSize(p)
                if matches!(p.price_tick_type, TickType::Bid | TickType::DelayedBid) =>
            {
                Some((p.price, p.size))
            }
            _ => None,
        })
        .collect()
}

/// Streams `contract` until `n` bids arrived; returns every tick seen.
pub async fn collect_bids(client: &Client, contract: &Contract, n: usize) -> Vec<TickTypes> {
    let mut sub = client.market_data(contract).subscribe().await.unwrap();
    ticks_until(&mut sub, |seen| bids(seen).len() >= n).await
}

/// A live market-data subscription to stock `symbol`.
pub async fn subscribe_stock(client: &Client, symbol: &str) -> Subscription<TickTypes> {
    client
        .market_data(&Contract::stock(symbol).build())
        .subscribe()
        .await
        .unwrap()
}

/// A live subscription to stock `symbol` that has delivered its first tick, so the
/// simulator's producer for it is known to be running.
pub async fn streaming_stock(client: &Client, symbol: &str) -> Subscription<TickTypes> {
    let mut sub = subscribe_stock(client, symbol).await;
    next_data(&mut sub).await;
    sub
}

/// Reads and drops ticks for `window`: what was already on the wire before a test
/// changed the simulator's pace must not be mistaken for ticks sent after it.
pub async fn drain_for(sub: &mut Subscription<TickTypes>, window: Duration) {
    let _ = tokio::time::timeout(window, async {
        loop {
            next_data(sub).await;
        }
    })
    .await;
}

/// Switches `client` to market-data type `ty` (live, frozen, delayed …).
pub async fn switch_type(client: &Client, ty: MarketDataType) {
    client.switch_market_data_type(ty).await.unwrap();
}
