//! A hostile client: oversized strings, repeated expirations, a pile of unread streams,
//! more instruments than lines. None of it may cost the other clients their data or the
//! shared session.

use std::time::Duration;

use ibstream::ib::ConnectionState;
use ibstream::proto::ibstream::v1 as pb;
use ibstream::proto::ibstream::v1::stream_option_chain_response::Event;
use tonic::Code;

use crate::harness::*;

/// Far more than any IB field holds.
fn huge() -> String {
    "X".repeat(70_000)
}

fn assert_invalid(result: Result<impl std::fmt::Debug, tonic::Status>, field: &str) {
    let err = result.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().starts_with(&format!("{field}: ")),
        "{field}: {}",
        &err.message()[..err.message().len().min(200)]
    );
}

/// The newest sequence number of the quote stream's first instrument.
async fn next_sequence(s: &mut QuoteStream) -> u64 {
    let seen = read_until(s, |m| quote_of(m).is_some()).await;
    seen.iter()
        .filter_map(quote_of)
        .map(|q| q.sequence)
        .max()
        .unwrap()
}

#[tokio::test]
async fn oversized_instrument_strings_are_refused_and_the_shared_session_stays() {
    let h = start().await;
    let mut watcher = h.client().await;
    let mut quotes = quoting(&mut watcher, &["AAPL"]).await;
    let accepted = h.sim.control().stats().connections_accepted;

    let mut hostile = h.client().await;
    let with = |set: fn(&mut pb::Instrument, String)| {
        let mut i = stock("AAPL");
        set(&mut i, huge());
        i
    };
    let quotes_of = |i: pb::Instrument| pb::GetQuotesRequest {
        instruments: vec![i],
        data_policy: 0,
    };
    assert_invalid(
        hostile
            .get_quotes(quotes_of(with(|i, v| i.exchange = v)))
            .await,
        "instruments[0].exchange",
    );
    assert_invalid(
        hostile
            .get_quotes(quotes_of(with(|i, v| i.primary_exchange = v)))
            .await,
        "instruments[0].primary_exchange",
    );
    let mut by_con_id = with(|i, v| i.symbol = v);
    by_con_id.con_id = 265598;
    assert_invalid(
        hostile.get_quotes(quotes_of(by_con_id)).await,
        "instruments[0].symbol",
    );
    assert_invalid(
        hostile
            .resolve_contract(pb::ResolveContractRequest {
                instrument: Some(with(|i, v| i.trading_class = v)),
            })
            .await,
        "instrument.trading_class",
    );
    assert_invalid(
        hostile
            .stream_option_chain(pb::StreamOptionChainRequest {
                underlying: Some(with(|i, v| i.primary_exchange = v)),
                ..Default::default()
            })
            .await,
        "underlying.primary_exchange",
    );
    assert_invalid(
        hostile
            .stream_option_chain(pb::StreamOptionChainRequest {
                underlying: Some(stock("SPY")),
                trading_class: huge(),
                ..Default::default()
            })
            .await,
        "trading_class",
    );
    assert_invalid(
        hostile
            .search_symbols(pb::SearchSymbolsRequest { pattern: huge() })
            .await,
        "pattern",
    );
    assert_invalid(
        hostile
            .search_symbols(pb::SearchSymbolsRequest {
                pattern: "AA\0PL".into(),
            })
            .await,
        "pattern",
    );

    // The other client's quotes keep coming over the same session.
    let before = next_sequence(&mut quotes).await;
    let after = next_sequence(&mut quotes).await;
    assert!(after > before, "fresh quotes: {before} then {after}");
    let stats = h.sim.control().stats();
    assert_eq!(
        (stats.connections, stats.connections_accepted),
        (1, accepted),
        "the session was never dropped: {stats:?}"
    );
    assert_eq!(h.session_status().state, ConnectionState::Connected);
}

fn chain_of(expirations: Vec<String>) -> pb::StreamOptionChainRequest {
    pb::StreamOptionChainRequest {
        underlying: Some(stock("SPY")),
        expirations,
        strike_count: 4,
        rights: pb::Rights::Both as i32,
        ..Default::default()
    }
}

#[tokio::test]
async fn repeated_expirations_cost_one_window_and_too_many_are_refused() {
    let h = start().await;
    let mut client = h.client().await;
    let first = option_chain(&mut client, "SPY").await.expirations[0].clone();

    // 50,000 copies of one date, about 500 KB of request.
    let mut s = client
        .stream_option_chain(chain_of(vec![first.clone(); 50_000]))
        .await
        .unwrap()
        .into_inner();
    let window = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Event::Window(w)) = s.message().await.unwrap().unwrap().event {
                return w;
            }
        }
    })
    .await
    .expect("a window within the deadline");
    assert_eq!(window.options.len(), 8, "4 strikes × calls and puts");
    assert!(window.options.iter().all(|o| o.expiry == first));
    let held = client
        .list_subscriptions(pb::ListSubscriptionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(held.subscriptions.len(), 9, "8 options and the underlying");
    wait_for_stats(&h.sim, "9 subscriptions at IB", |st| {
        st.active_market_data_subscriptions == 9
    })
    .await;

    // More distinct dates than a window holds: refused before IB is asked.
    let asked = h.market_data_requests();
    let distinct: Vec<String> = (1..=25).map(|d| format!("202901{d:02}")).collect();
    let err = client
        .stream_option_chain(chain_of(distinct))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().starts_with("expirations: more than 24"),
        "{}",
        err.message()
    );
    assert_eq!(h.market_data_requests(), asked);
    drop(s);
}

#[tokio::test]
async fn without_keys_each_connection_has_its_own_stream_quota() {
    let h = start().await;
    let mut a = h.client().await;
    // The test server allows 64 streams per key, and as many per connection.
    let (open, err) = streams_past(&mut a, 64).await;
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("connection"), "{}", err.message());
    // Another connection is not locked out by A's unread streams.
    let mut b = h.client().await;
    let _served = quoting(&mut b, &["MSFT"]).await;
    drop(open);
}

#[tokio::test]
async fn short_of_lines_a_quote_stream_serves_what_fits_and_reports_the_rest() {
    let mut s = settings();
    s.fanout.line_budget = 4;
    let h = start_with(|_| {}, s).await;
    let mut client = h.client().await;
    let _held = all_quoting(&mut client, &["AAPL", "MSFT"]).await;
    // AAPL is held already (no new line); SPY and QQQ take the two free lines.
    let mut partial = stream(
        &mut client,
        vec![stock("SPY"), stock("AAPL"), stock("QQQ"), stock("IWM")],
        pb::DataPolicy::Unspecified,
    )
    .await;
    let mut limited = Vec::new();
    let mut quoted = std::collections::HashSet::new();
    read_until(&mut partial, |m| {
        if let Some(st) = status_of(m)
            && st.kind == pb::InstrumentStatusKind::LineLimit as i32
        {
            limited.push(st.clone());
        }
        if quote_of(m).is_some() {
            quoted.insert(m.index);
        }
        quoted.len() == 3 && limited.len() == 1
    })
    .await;
    assert_eq!(quoted, [0, 1, 2].into(), "SPY, AAPL and QQQ are served");
    let st = &limited[0];
    assert_eq!(st.index, 3);
    assert_eq!(st.instrument.as_ref().unwrap().symbol, "IWM");
    assert_eq!(st.code, Code::ResourceExhausted as i32);
    // Each instrument takes its line as soon as it is resolved: IWM came last.
    assert!(
        st.message.contains("4 of 4 lines in use, 0 free"),
        "{}",
        st.message
    );
    assert_eq!(line_usage(&mut client).await, (4, 4));
    tokio::time::sleep(Duration::from_millis(50)).await;
}
