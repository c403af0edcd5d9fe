//! Unknown instruments, missing permissions, invalid fields.

use ibstream::proto::ibstream::v1 as pb;
use tonic::Code;

use crate::harness::*;

#[tokio::test]
async fn an_unknown_symbol_is_not_found_and_fails_only_itself() {
    let h = start().await;
    let mut client = h.client().await;
    let err = client
        .resolve_contract(pb::ResolveContractRequest {
            instrument: Some(stock("NOSUCHSYM")),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    let mut s = stream(
        &mut client,
        vec![stock("AAPL"), stock("NOSUCHSYM")],
        pb::DataPolicy::Unspecified,
    )
    .await;
    let mut not_found = None;
    let mut quoted = false;
    read_until(&mut s, |m| {
        if let Some(st) = status_of(m)
            && st.kind == pb::InstrumentStatusKind::NotFound as i32
        {
            not_found = Some(st.clone());
        }
        quoted |= quote_of(m).is_some_and(|q| q.symbol == "AAPL");
        not_found.is_some() && quoted
    })
    .await;
    let st = not_found.unwrap();
    assert_eq!((st.index, st.code), (1, Code::NotFound as i32));

    let err = client
        .get_quotes(pb::GetQuotesRequest {
            instruments: vec![stock("AAPL"), stock("NOSUCHSYM")],
            data_policy: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.message().contains("instruments[1]"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn no_permission_fails_with_a_hint_or_falls_back_to_delayed() {
    let h = start_with(|c| c.no_live_permission = vec!["MSFT".into()], settings()).await;
    let mut client = h.client().await;
    let mut live_only = stream(
        &mut client,
        vec![stock("MSFT"), stock("AAPL")],
        pb::DataPolicy::LiveOnly,
    )
    .await;
    let mut refused = None;
    read_until(&mut live_only, |m| {
        if let Some(st) = status_of(m)
            && st.kind == pb::InstrumentStatusKind::NoPermission as i32
        {
            refused = Some(st.clone());
        }
        refused.is_some()
    })
    .await;
    let st = refused.unwrap();
    assert_eq!((st.index, st.code), (0, Code::FailedPrecondition as i32));
    assert!(st.message.contains("delayed"), "{}", st.message);

    let err = client
        .get_quotes(pb::GetQuotesRequest {
            instruments: vec![stock("MSFT")],
            data_policy: pb::DataPolicy::LiveOnly as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("delayed"));

    let mut lenient = stream(
        &mut client,
        vec![stock("MSFT")],
        pb::DataPolicy::LiveOrDelayed,
    )
    .await;
    let mut fallback = false;
    read_until(&mut lenient, |m| {
        fallback |= status_of(m)
            .is_some_and(|s| s.kind == pb::InstrumentStatusKind::DelayedFallback as i32);
        quote_of(m).is_some_and(|q| {
            q.market_data_type == pb::MarketDataType::Delayed as i32
                && q.requested_market_data_type == pb::MarketDataType::Delayed as i32
                && (q.bid.is_some() || q.last.is_some())
        })
    })
    .await;
    assert!(fallback, "the fallback is announced");

    let quotes = client
        .get_quotes(pb::GetQuotesRequest {
            instruments: vec![stock("MSFT")],
            data_policy: pb::DataPolicy::LiveOrDelayed as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(quotes.quotes.len(), 1);
}

#[tokio::test]
async fn invalid_fields_are_named() {
    let h = start().await;
    let mut client = h.client().await;
    let bad = vec![
        stock("AAPL"),
        stock("MSFT"),
        option("SPY", "20261218", -1.0, pb::OptionRight::Call),
    ];
    let err = client
        .stream_quotes(pb::StreamQuotesRequest {
            instruments: bad,
            data_policy: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("instruments[2].strike"),
        "{}",
        err.message()
    );

    let err = client
        .get_quotes(pb::GetQuotesRequest {
            instruments: vec![option("SPY", "2026-12-18", 500.0, pb::OptionRight::Put)],
            data_policy: 0,
        })
        .await
        .unwrap_err();
    assert!(
        err.message().starts_with("instruments[0].expiry"),
        "{}",
        err.message()
    );

    let err = client
        .search_symbols(pb::SearchSymbolsRequest {
            pattern: " ".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("pattern"));
}

#[tokio::test]
async fn contracts_are_looked_up_once_and_symbols_found() {
    let h = start().await;
    let mut client = h.client().await;
    for _ in 0..3 {
        let d = client
            .resolve_contract(pb::ResolveContractRequest {
                instrument: Some(stock("aapl")),
            })
            .await
            .unwrap()
            .into_inner();
        let i = d.instrument.unwrap();
        assert!(i.con_id > 0);
        assert_eq!(i.symbol, "AAPL");
        assert!(!d.long_name.is_empty() && d.min_tick > 0.0);
    }
    let stats = h.sim.control().stats();
    assert_eq!(stats.requests_by_type.get("RequestContractData"), Some(&1));
    let found = client
        .search_symbols(pb::SearchSymbolsRequest {
            pattern: "AAP".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        found
            .matches
            .iter()
            .any(|m| m.instrument.as_ref().is_some_and(|i| i.symbol == "AAPL"))
    );
}

#[tokio::test]
async fn look_ups_ib_never_answers_end_with_deadline_exceeded() {
    let mut s = settings();
    s.request_timeout = std::time::Duration::from_millis(700);
    let h = start_with(|_| {}, s).await;
    let mut client = h.client().await;
    h.sim.control().stall(std::time::Duration::from_secs(2));
    let err = client
        .resolve_contract(pb::ResolveContractRequest {
            instrument: Some(stock("MSFT")),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    let err = client
        .search_symbols(pb::SearchSymbolsRequest {
            pattern: "MS".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
}

#[tokio::test]
async fn resolved_contracts_survive_a_restart() {
    let mut h = start().await;
    let mut client = h.client().await;
    let before = client
        .resolve_contract(pb::ResolveContractRequest {
            instrument: Some(stock("NVDA")),
        })
        .await
        .unwrap()
        .into_inner();
    h.restart().await;
    let mut client = h.client().await;
    let after = client
        .resolve_contract(pb::ResolveContractRequest {
            instrument: Some(stock("NVDA")),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(before, after);
    // Quotes by conId alone resolve from the store too.
    let by_id = pb::Instrument {
        con_id: after.instrument.as_ref().unwrap().con_id,
        ..Default::default()
    };
    let mut s = stream(&mut client, vec![by_id], pb::DataPolicy::Unspecified).await;
    read_until(&mut s, |m| quote_of(m).is_some_and(|q| q.symbol == "NVDA")).await;
    let stats = h.sim.control().stats();
    assert_eq!(
        stats.requests_by_type.get("RequestContractData"),
        Some(&1),
        "the second server asked IB nothing: {stats:?}"
    );
}

#[tokio::test]
async fn status_shows_the_market_data_type_last_sent_to_the_gateway() {
    use ibstream::proto::ibstream::v1::connection_service_client::ConnectionServiceClient;
    let h = start_with(|c| c.no_live_permission = vec!["MSFT".into()], settings()).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", h.addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("gRPC connects");
    let connection = ConnectionServiceClient::new(channel);
    let sent_type = |mut c: ConnectionServiceClient<tonic::transport::Channel>| async move {
        c.get_status(pb::GetStatusRequest {})
            .await
            .expect("status")
            .into_inner()
            .market_data_type
    };
    // The profile's type, asked for when the session started.
    assert_eq!(
        sent_type(connection.clone()).await,
        pb::MarketDataType::Live as i32
    );

    // Live data refused: the fan-out falls back to delayed data, and the status shows
    // what was sent, not the profile's type.
    let mut client = h.client().await;
    let mut delayed = stream(
        &mut client,
        vec![stock("MSFT")],
        pb::DataPolicy::LiveOrDelayed,
    )
    .await;
    read_until(&mut delayed, |m| {
        quote_of(m).is_some_and(|q| q.market_data_type == pb::MarketDataType::Delayed as i32)
    })
    .await;
    assert_eq!(
        sent_type(connection.clone()).await,
        pb::MarketDataType::Delayed as i32
    );

    // A live subscription switches the session back.
    let _live = quoting(&mut client, &["AAPL"]).await;
    assert_eq!(
        sent_type(connection.clone()).await,
        pb::MarketDataType::Live as i32
    );
}

#[tokio::test]
async fn repeated_unknown_symbols_cost_one_ib_look_up_each() {
    let h = start().await;
    let mut client = h.client().await;
    let unknown: Vec<_> = (0..20).map(|i| stock(&format!("NOSUCH{i}"))).collect();
    for _ in 0..3 {
        for instrument in &unknown {
            let err = client
                .resolve_contract(pb::ResolveContractRequest {
                    instrument: Some(instrument.clone()),
                })
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::NotFound, "{err:?}");
        }
    }
    // Each refused look-up is cancelled at IB once (after its pacer slot).
    let count = |stats: &ibstream::sim::SimStats, name: &str| {
        stats.requests_by_type.get(name).copied().unwrap_or(0)
    };
    wait_for_stats(&h.sim, "every refused look-up cancelled", |st| {
        count(st, "CancelContractData") == 20
    })
    .await;
    let stats = h.sim.control().stats();
    assert_eq!(count(&stats, "RequestContractData"), 20, "{stats:?}");
}
