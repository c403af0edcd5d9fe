//! Every server stream (`WatchStatus`, `StreamQuotes`) lives the same life: a per-key
//! permit, a place in the `ibstream_streams_open` gauge, and an end with
//! `UNAUTHENTICATED` when its key is revoked or `UNAVAILABLE` at shutdown.

use std::time::Duration;

use ibstream::crypto::Scope;
use ibstream::proto::ibstream::v1 as pb;
use ibstream::proto::ibstream::v1::market_data_service_client::MarketDataServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

use crate::harness::{self, Bearer, Harness, Setup, wait_state};

/// How long a revoked key's streams may go on.
const REVOCATION_BOUND: Duration = Duration::from_secs(10);

type QuotesClient = MarketDataServiceClient<InterceptedService<Channel, Bearer>>;

async fn quotes_client(h: &Harness, token: &str) -> QuotesClient {
    MarketDataServiceClient::with_interceptor(h.channel().await, Bearer(token.to_owned()))
}

fn aapl_quotes() -> pb::StreamQuotesRequest {
    pb::StreamQuotesRequest {
        instruments: vec![pb::Instrument {
            symbol: "AAPL".into(),
            sec_type: pb::SecurityType::Stock as i32,
            ..Default::default()
        }],
        data_policy: 0,
    }
}

async fn open_quotes(
    client: &mut QuotesClient,
) -> Result<Streaming<pb::StreamQuotesResponse>, Status> {
    Ok(client.stream_quotes(aapl_quotes()).await?.into_inner())
}

/// Reads `stream` until it ends with a status, within `within`.
async fn ending<T>(stream: &mut Streaming<T>, within: Duration) -> Status {
    tokio::time::timeout(within, async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without a status"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the stream ends in time")
}

#[tokio::test]
async fn revoking_a_key_ends_its_open_streams_unauthenticated() {
    let h = Harness::start_with(Setup::connecting()).await;
    let (read_id, read) = h.create_key(Scope::Read).await;
    let (_, other) = h.create_key(Scope::Read).await;
    let mut statuses = h
        .client_with_key(&read)
        .await
        .watch_status(pb::WatchStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    wait_state(&mut statuses, pb::ConnectionState::Connected).await;
    let mut quotes = open_quotes(&mut quotes_client(&h, &read).await)
        .await
        .unwrap();
    assert!(quotes.message().await.unwrap().is_some(), "quotes flow");
    let mut bystander = open_quotes(&mut quotes_client(&h, &other).await)
        .await
        .unwrap();

    h.store.revoke_api_key(&read_id).await.unwrap();
    for ended in [
        ending(&mut statuses, REVOCATION_BOUND).await,
        ending(&mut quotes, REVOCATION_BOUND).await,
    ] {
        assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
        assert!(ended.message().contains("revoked"), "{}", ended.message());
    }
    // Another key's stream goes on.
    for _ in 0..3 {
        assert!(bystander.message().await.unwrap().is_some());
    }
    harness::eventually("the revoked streams leave the gauge", || async {
        h.server().metrics().streams_open.get() == 1
    })
    .await;
    h.shutdown().await;
}

#[tokio::test]
async fn status_streams_take_a_permit_and_count_as_open_streams() {
    let h = Harness::start_with(Setup {
        max_streams_per_key: 2,
        ..Setup::connecting()
    })
    .await;
    let (_, read) = h.create_key(Scope::Read).await;
    let mut connection = h.client_with_key(&read).await;
    let mut market_data = quotes_client(&h, &read).await;
    let mut statuses = connection
        .watch_status(pb::WatchStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    wait_state(&mut statuses, pb::ConnectionState::Connected).await;
    assert_eq!(h.server().metrics().streams_open.get(), 1);
    let quotes = open_quotes(&mut market_data).await.unwrap();
    assert_eq!(h.server().metrics().streams_open.get(), 2);

    // The key's two permits are taken, one by each service: a third stream of either
    // kind is refused alike.
    let refused_status = connection
        .watch_status(pb::WatchStatusRequest {})
        .await
        .unwrap_err();
    let refused_quotes = open_quotes(&mut market_data).await.unwrap_err();
    for refused in [refused_status, refused_quotes] {
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
        assert!(refused.message().contains("2 open streams"), "{refused:?}");
    }
    assert_eq!(h.server().metrics().streams_open.get(), 2);

    // Closing the status stream frees its permit and its place in the gauge.
    drop(statuses);
    harness::eventually("the status stream leaves the gauge", || async {
        h.server().metrics().streams_open.get() == 1
    })
    .await;
    let _again = connection
        .watch_status(pb::WatchStatusRequest {})
        .await
        .unwrap();
    drop(quotes);
    h.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_status_and_quote_streams_unavailable() {
    let mut h = Harness::start_with(Setup::connecting()).await;
    let mut client = h.client().await;
    let mut statuses = harness::watch_status(&mut client).await;
    wait_state(&mut statuses, pb::ConnectionState::Connected).await;
    let mut quotes = MarketDataServiceClient::new(h.channel().await)
        .stream_quotes(aapl_quotes())
        .await
        .unwrap()
        .into_inner();
    assert!(quotes.message().await.unwrap().is_some(), "quotes flow");

    let server = h.server.take().unwrap();
    let metrics = server.metrics();
    assert_eq!(metrics.streams_open.get(), 2);
    server.shutdown().await.expect("clean shutdown");
    for ended in [
        ending(&mut statuses, harness::WAIT).await,
        ending(&mut quotes, harness::WAIT).await,
    ] {
        assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    }
    harness::eventually("the ended streams leave the gauge", || async {
        metrics.streams_open.get() == 0
    })
    .await;
    h.shutdown().await;
}
