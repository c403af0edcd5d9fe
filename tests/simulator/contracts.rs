//! Contract details, option chain parameters and symbol search.

use ibapi::contracts::{ContractDetails, OptionChain, OptionRight};
use ibapi::prelude::*;

use crate::common::*;

fn stock(symbol: &str, exchange: &str, currency: &str) -> Contract {
    Contract {
        symbol: symbol.into(),
        security_type: SecurityType::Stock,
        exchange: exchange.into(),
        currency: currency.into(),
        ..Default::default()
    }
}

async fn details(
    client: &Client,
    contract: &Contract,
) -> Result<Vec<ContractDetails>, ibapi::Error> {
    tokio::time::timeout(WAIT, client.contract_details(contract))
        .await
        .expect("answer within the deadline")
}

fn error_code(result: Result<Vec<ContractDetails>, ibapi::Error>) -> i32 {
    match result {
        Err(ibapi::Error::Notice(n)) => n.code,
        other => panic!("expected an IB error, got {other:?}"),
    }
}

async fn chains(
    client: &Client,
    symbol: &str,
    sec_type: SecurityType,
    con_id: i32,
) -> Vec<OptionChain> {
    let mut sub = client
        .option_chain(symbol, sec_type, con_id)
        .subscribe()
        .await
        .unwrap();
    sub.collect_to_end_within(WAIT).await.unwrap()
}

#[tokio::test]
async fn stock_details_are_complete() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    let found = details(&client, &Contract::stock("AAPL").build())
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let d = &found[0];
    assert_eq!(d.contract.contract_id, 265598);
    assert_eq!(d.contract.exchange.as_str(), "SMART");
    assert_eq!(d.contract.primary_exchange.as_str(), "NASDAQ");
    assert_eq!(d.contract.local_symbol, "AAPL");
    assert_eq!(d.contract.trading_class, "AAPL");
    assert_eq!(d.long_name, "APPLE INC");
    assert_eq!(d.min_tick, 0.01);
    assert!(d.order_types.iter().any(|o| o == "LMT"));
    assert!(d.valid_exchanges.iter().any(|e| e == "NASDAQ"));
    assert_eq!(d.market_rule_ids.len(), d.valid_exchanges.len());
    assert_eq!(d.time_zone_id, "US/Eastern");
    assert_eq!(d.trading_hours.len(), 7);
    assert_eq!(d.stock_type, "COMMON");
    assert_eq!(d.industry, "Technology");

    // The same contract by id alone.
    let by_id = Contract {
        contract_id: 265598,
        ..Default::default()
    };
    let again = details(&client, &by_id).await.unwrap();
    assert_eq!(again[0].contract.symbol.as_str(), "AAPL");
    sim.shutdown().await;
}

#[tokio::test]
async fn ambiguous_specs_return_several_and_unknown_ones_error_200() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    // Listed on NYSE (USD) and TSE (CAD): no exchange and no currency match both.
    let both = details(&client, &stock("SHOP", "", "")).await.unwrap();
    let mut currencies: Vec<_> = both
        .iter()
        .map(|d| d.contract.currency.to_string())
        .collect();
    currencies.sort();
    assert_eq!(currencies, ["CAD", "USD"]);
    assert_eq!(
        details(&client, &stock("SHOP", "SMART", "USD"))
            .await
            .unwrap()
            .len(),
        1
    );

    assert_eq!(
        error_code(details(&client, &stock("NOSUCH", "SMART", "USD")).await),
        200
    );
    let spx = details(&client, &Contract::index("SPX")).await.unwrap();
    assert_eq!(spx[0].contract.exchange.as_str(), "CBOE");
    let eur = details(&client, &Contract::forex("EUR", "USD").build())
        .await
        .unwrap();
    assert_eq!(eur[0].contract.local_symbol, "EUR.USD");
    assert_eq!(eur[0].contract.security_type, SecurityType::ForexPair);
    sim.shutdown().await;
}

#[tokio::test]
async fn option_chain_parameters_and_listed_strikes() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    let aapl = chains(&client, "AAPL", SecurityType::Stock, 265598).await;
    assert!(aapl.len() >= 2, "one per exchange: {}", aapl.len());
    assert!(aapl.iter().all(|c| c.trading_class == "AAPL"
        && c.multiplier == "100"
        && c.underlying_contract_id == 265598));
    let chain = aapl.iter().find(|c| c.exchange == "SMART").unwrap();
    assert!(
        chain.expirations.len() >= 10,
        "weeklies and monthlies over about three months"
    );
    assert!(chain.strikes.windows(2).all(|w| w[1] > w[0]));

    let spx = chains(&client, "SPX", SecurityType::Index, 416904).await;
    let classes: std::collections::BTreeSet<_> =
        spx.iter().map(|c| c.trading_class.clone()).collect();
    assert_eq!(classes.into_iter().collect::<Vec<_>>(), ["SPX", "SPXW"]);
    let monthly = spx.iter().find(|c| c.trading_class == "SPX").unwrap();
    let weekly = spx.iter().find(|c| c.trading_class == "SPXW").unwrap();
    assert!(weekly.expirations.len() > monthly.expirations.len());

    // Each expiry lists its own strikes: the union is not what a weekly lists.
    let expiry = &chain.expirations[0];
    let spec = Contract::option("AAPL", expiry, 0.0, OptionRight::Call);
    let listed = details(
        &client,
        &Contract {
            strike: 0.0,
            ..spec.clone()
        },
    )
    .await
    .unwrap();
    let listed_strikes: Vec<f64> = listed.iter().map(|d| d.contract.strike).collect();
    assert!(listed_strikes.len() > 5 && listed_strikes.len() < chain.strikes.len());
    let missing = chain
        .strikes
        .iter()
        .copied()
        .find(|k| !listed_strikes.contains(k))
        .unwrap();
    let code = error_code(
        details(
            &client,
            &Contract::option("AAPL", expiry, missing, OptionRight::Call),
        )
        .await,
    );
    assert_eq!(code, 200);
    let one = details(
        &client,
        &Contract::option("AAPL", expiry, listed_strikes[2], OptionRight::Put),
    )
    .await
    .unwrap();
    assert_eq!(one.len(), 1);
    let d = &one[0];
    assert_eq!(d.contract.right, Some(OptionRight::Put));
    assert_eq!(d.contract.multiplier, "100");
    assert_eq!(d.under_contract_id, 265598);
    assert_eq!(d.contract.last_trade_date_or_contract_month, *expiry);
    assert!(d.contract.local_symbol.starts_with("AAPL  "));
    sim.shutdown().await;
}

#[tokio::test]
async fn matching_symbols_by_prefix_and_name() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    let found = client.matching_symbols("AA").await.unwrap();
    assert_eq!(found[0].contract.symbol.as_str(), "AAPL");
    assert!(
        found[0]
            .derivative_security_types
            .iter()
            .any(|t| t == "OPT")
    );
    let by_name = client.matching_symbols("shopify").await.unwrap();
    assert_eq!(by_name.len(), 2);
    assert!(client.matching_symbols("ZZZZZZ").await.unwrap().is_empty());
    sim.shutdown().await;
}
