use super::*;
use time::macros::date;

fn universe() -> Universe {
    Universe::build(date!(2026 - 11 - 24))
}

fn query(symbol: &str, sec_type: &str) -> ContractQuery {
    ContractQuery {
        symbol: symbol.into(),
        sec_type: sec_type.into(),
        ..Default::default()
    }
}

#[test]
fn contract_ids_are_deterministic() {
    let (a, b) = (universe(), universe());
    assert_eq!(a.len(), b.len());
    assert!((0..a.len()).all(|i| a.get(i).con_id == b.get(i).con_id));
    assert_eq!(a.by_con_id.len(), a.len(), "contract ids are unique");
}

#[test]
fn resolves_stocks_by_symbol_and_con_id() {
    let u = universe();
    let q = ContractQuery {
        exchange: "SMART".into(),
        currency: "USD".into(),
        ..query("AAPL", "STK")
    };
    let m = u.resolve(&q);
    assert_eq!(m.len(), 1);
    assert_eq!(u.get(m[0].index).con_id, 265598);
    let by_id = u.resolve(&ContractQuery {
        con_id: 265598,
        ..Default::default()
    });
    assert_eq!(
        by_id,
        vec![Match {
            index: m[0].index,
            exchange: "SMART".into()
        }]
    );
    assert!(u.resolve(&query("NOPE", "STK")).is_empty());
}

#[test]
fn dual_listing_is_ambiguous_without_exchange_and_currency() {
    let u = universe();
    assert_eq!(u.resolve(&query("SHOP", "STK")).len(), 2);
    let q = ContractQuery {
        exchange: "TSE".into(),
        ..query("SHOP", "STK")
    };
    let m = u.resolve(&q);
    assert_eq!(m.len(), 1);
    assert_eq!(u.get(m[0].index).currency, "CAD");
}

#[test]
fn option_queries_narrow_by_expiry_strike_and_right() {
    let u = universe();
    let all = u.resolve(&query("AAPL", "OPT"));
    assert!(all.len() > 100);
    let chain = u.chain(u.underlying_by_symbol("AAPL").unwrap());
    let weekly = chain[0].expiries.iter().find(|e| !e.monthly).unwrap();
    let q = ContractQuery {
        expiry: yyyymmdd(weekly.date),
        strike: weekly.strikes[3],
        right: "C".into(),
        ..query("AAPL", "OPT")
    };
    let one = u.resolve(&q);
    assert_eq!(one.len(), 1);
    assert!(u.get(one[0].index).local_symbol.starts_with("AAPL  "));
    // A strike only the monthlies list is not listed on the weekly.
    let monthly_only = chain[0]
        .strike_union()
        .into_iter()
        .find(|k| !weekly.strikes.contains(k))
        .unwrap();
    assert!(
        u.resolve(&ContractQuery {
            strike: monthly_only,
            ..q
        })
        .is_empty()
    );
}

#[test]
fn search_prefers_symbol_prefix_then_name() {
    let u = universe();
    let hits: Vec<_> = u
        .search("A", 16)
        .into_iter()
        .map(|i| u.get(i).symbol.clone())
        .collect();
    assert_eq!(&hits[..3], &["AAPL", "AMZN", "AMD"]);
    let by_name: Vec<_> = u
        .search("shopify", 16)
        .into_iter()
        .map(|i| u.get(i).symbol.clone())
        .collect();
    assert_eq!(by_name, vec!["SHOP", "SHOP"]);
}
