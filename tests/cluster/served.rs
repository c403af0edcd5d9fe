//! What a follower serves through the leader: option chains, look-ups and their
//! refusals, and the cluster's one line budget.

use std::time::Duration;

use ibstream::proto::ibstream::v1 as pb;
use tokio::time::Instant;

use crate::nodes::{Rig, WAIT, eventually};

fn stock(symbol: &str) -> pb::Instrument {
    pb::Instrument {
        symbol: symbol.into(),
        sec_type: pb::SecurityType::Stock as i32,
        ..Default::default()
    }
}

/// The statuses of a quote stream's first `wanted` status events.
async fn statuses(
    stream: &mut tonic::Streaming<pb::StreamQuotesResponse>,
    wanted: usize,
) -> Vec<pb::InstrumentStatus> {
    let mut out = Vec::new();
    let deadline = Instant::now() + WAIT;
    while out.len() < wanted {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, stream.message())
            .await
            .expect("statuses in time")
            .expect("stream healthy")
            .expect("stream open");
        if let Some(pb::stream_quotes_response::Event::Status(s)) = msg.event {
            out.push(s);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_serves_chains_and_look_ups_through_the_leader() {
    let Some(rig) = Rig::start(2).await else {
        return;
    };
    let leader = rig.wait_leader_connected().await;
    let follower = rig.nodes.iter().find(|n| n.name != leader).unwrap();
    let mut client = follower.market_data().await;

    let details = client
        .resolve_contract(pb::ResolveContractRequest {
            instrument: Some(stock("AAPL")),
        })
        .await
        .expect("resolved through the leader")
        .into_inner();
    assert_eq!(details.instrument.unwrap().con_id, 265598);
    let unknown = client
        .resolve_contract(pb::ResolveContractRequest {
            instrument: Some(stock("NOSUCHSYM")),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");
    let found = client
        .search_symbols(pb::SearchSymbolsRequest {
            pattern: "MSF".into(),
        })
        .await
        .expect("searched through the leader")
        .into_inner();
    assert!(
        found
            .matches
            .iter()
            .any(|m| m.instrument.as_ref().is_some_and(|i| i.symbol == "MSFT")),
        "{found:?}"
    );

    let mut chain = client
        .stream_option_chain(pb::StreamOptionChainRequest {
            underlying: Some(stock("SPY")),
            expiration_count: 1,
            strike_count: 2,
            rights: pb::Rights::Both as i32,
            ..Default::default()
        })
        .await
        .expect("chain opens on the follower")
        .into_inner();
    let mut options = 0;
    let complete = tokio::time::timeout(WAIT, async {
        while let Ok(Some(msg)) = chain.message().await {
            match msg.event {
                Some(pb::stream_option_chain_response::Event::Options(o)) => {
                    options += o.options.len();
                }
                Some(pb::stream_option_chain_response::Event::SnapshotComplete(c)) => {
                    return Some(c.options);
                }
                _ => {}
            }
        }
        None
    })
    .await
    .expect("the chain's snapshot completes");
    assert_eq!(complete, Some(4), "2 strikes × call and put");
    assert!(options >= 4, "{options} option quotes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clusters_lines_are_one_budget_whichever_node_asks() {
    let Some(rig) = Rig::start_with(2, |p| p.line_budget = 3).await else {
        return;
    };
    let leader = rig.wait_leader_connected().await;
    let follower = rig.nodes.iter().find(|n| n.name != leader).unwrap();
    let mut on_leader = rig.node(&leader).market_data().await;
    let mut on_follower = follower.market_data().await;
    let mut first = on_leader
        .stream_quotes(pb::StreamQuotesRequest {
            instruments: vec![stock("AAPL"), stock("MSFT")],
            data_policy: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let took = statuses(&mut first, 2).await;
    assert!(
        took.iter()
            .all(|s| s.kind == pb::InstrumentStatusKind::Subscribed as i32)
    );
    let mut second = on_follower
        .stream_quotes(pb::StreamQuotesRequest {
            // MSFT is held already: it costs no line. NVDA and AMZN ask for the last one
            // at once: one gets it.
            instruments: vec![stock("MSFT"), stock("NVDA"), stock("AMZN")],
            data_policy: 0,
        })
        .await
        .unwrap()
        .into_inner();
    // The follower's own budget has room: it says subscribed, then passes on the
    // leader's refusal, as it passes on IB's own (error 101) on a single server.
    let subscribed = pb::InstrumentStatusKind::Subscribed as i32;
    let mut got = statuses(&mut second, 3).await;
    while !got.iter().any(|s| s.kind != subscribed) {
        got.extend(statuses(&mut second, 1).await);
    }
    let refused: Vec<_> = got.iter().filter(|s| s.kind != subscribed).collect();
    assert_eq!(refused.len(), 1, "{got:?}");
    let refused = refused[0];
    assert!(refused.index == 1 || refused.index == 2, "{refused:?}");
    assert_eq!(
        refused.kind,
        pb::InstrumentStatusKind::LineLimit as i32,
        "{refused:?}"
    );
    assert_eq!(refused.code, tonic::Code::ResourceExhausted as i32);
    assert!(
        refused.message.contains("3 of 3 lines"),
        "{}",
        refused.message
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        rig.sim.control().stats().active_market_data_subscriptions,
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_bars_are_paced_for_the_whole_cluster() {
    let Some(rig) = Rig::start(3).await else {
        return;
    };
    let leader = rig.wait_leader_connected().await;
    let followers: Vec<_> = rig.nodes.iter().filter(|n| n.name != leader).collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let hour_ago = (now - 3600).div_euclid(60) * 60;
    // Eight windows of one contract at once, four from each follower: each follower
    // alone stays under IB's six per two seconds, the cluster does not.
    let mut asks = Vec::new();
    for (f, node) in followers.iter().enumerate() {
        for i in 0..4i64 {
            let mut client = node.market_data().await;
            let end = hour_ago - 60 * (4 * f as i64 + i);
            asks.push(tokio::spawn(async move {
                client
                    .get_historical_bars(pb::GetHistoricalBarsRequest {
                        instrument: Some(stock("MSFT")),
                        bar_size: "1m".into(),
                        duration: "1800 S".into(),
                        end: Some(prost_types::Timestamp {
                            seconds: end,
                            nanos: 0,
                        }),
                        wait_for_pacing: true,
                        ..Default::default()
                    })
                    .await
            }));
        }
    }
    for ask in asks {
        let bars = ask
            .await
            .unwrap()
            .expect("bars through the leader")
            .into_inner();
        assert_eq!(bars.bars.len(), 30, "half an hour of minute bars");
    }
    let stats = rig.sim.control().stats();
    assert_eq!(stats.historical_requests, 8);
    assert_eq!(
        stats.historical_pacing_violations, 0,
        "the gateway saw the cluster break IB's pacing rules"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followers_live_bars_come_from_the_leaders_one_feed_and_go_with_it() {
    let Some(rig) = Rig::start(2).await else {
        return;
    };
    let leader = rig.wait_leader_connected().await;
    let follower = rig.nodes.iter().find(|n| n.name != leader).unwrap();
    let open = |node: &crate::nodes::Node| {
        let node = node.grpc.clone();
        async move {
            let channel = tonic::transport::Channel::from_shared(node)
                .unwrap()
                .connect()
                .await
                .unwrap();
            pb::market_data_service_client::MarketDataServiceClient::new(channel)
                .stream_bars(pb::StreamBarsRequest {
                    instrument: Some(stock("AAPL")),
                    bar_size: "5s".into(),
                    history_bars: 2,
                    ..Default::default()
                })
                .await
                .expect("bars stream opens")
                .into_inner()
        }
    };
    let mut on_follower = open(follower).await;
    let mut on_leader = open(rig.node(&leader)).await;
    // Two bars of history, then live ones: a bar of a period later than the history's.
    let mut starts = Vec::new();
    let mut seen = Vec::new();
    let deadline = Instant::now() + WAIT;
    while starts.len() < 4 {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, on_follower.message())
            .await
            .expect("bars in time")
            .expect("stream healthy")
            .unwrap_or_else(|| panic!("stream ended after {seen:?}:\n{}", rig.logs()));
        if let Some(pb::stream_bars_response::Event::Bar(b)) = &msg.event {
            starts.push(b.time.as_ref().unwrap().seconds);
        }
        seen.push(msg.event);
    }
    assert!(
        starts.windows(2).all(|w| w[1] == w[0] + 5),
        "consecutive five-second bars: {starts:?}"
    );
    let next_on_leader = tokio::time::timeout(WAIT, on_leader.message()).await;
    assert!(
        matches!(next_on_leader, Ok(Ok(Some(_)))),
        "the leader's own stream reads too"
    );
    let stats = rig.sim.control().stats();
    assert_eq!(
        stats.requests_by_type.get("RequestRealTimeBars"),
        Some(&1),
        "one IB feed for both nodes"
    );

    // Nobody reads any more: the leader lets the feed go (holds expire, then the linger).
    drop((on_follower, on_leader));
    eventually(Duration::from_secs(15), "the feed cancelled at IB", || {
        let stats = rig.sim.control().stats();
        stats.requests_by_type.get("CancelRealTimeBars") == Some(&1)
    })
    .await;
}
