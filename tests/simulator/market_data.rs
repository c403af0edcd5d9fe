//! Streaming and snapshot market data for stocks.

use ibapi::contracts::tick_types::TickType;
use ibapi::market_data::realtime::TickTypes;
use ibapi::prelude::*;

use crate::common::*;

#[tokio::test]
async fn streams_stock_quotes_near_the_model_price() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    let aapl = Contract::stock("AAPL").build();
    let mut sub = client.market_data(&aapl).subscribe().await.unwrap();
    let ticks = ticks_until(&mut sub, |seen| {
        seen.iter()
            .filter(|t| matches!(t, TickTypes::PriceSize(p) if p.price_tick_type == TickType::Bid))
            .count()
            >= 3
    })
    .await;
    assert!(
        matches!(ticks[0], TickTypes::RequestParameters(_)),
        "TickReqParams first: {:?}",
        ticks[0]
    );
    let spot = sim.control().spot("AAPL").unwrap();
    let bids: Vec<f64> = ticks
        .iter()
        .filter_map(|t| match t {
            TickTypes::PriceSize(p) if p.price_tick_type == TickType::Bid => Some(p.price),
            _ => None,
        })
        .collect();
    assert!(
        bids.iter().all(|b| (b / spot - 1.0).abs() < 0.02),
        "bids {bids:?} near spot {spot}"
    );
    assert!(
        bids.windows(2).any(|w| w[0] != w[1]),
        "prices move: {bids:?}"
    );
    assert_eq!(sim.control().stats().active_market_data_subscriptions, 1);
    sim.shutdown().await;
}
