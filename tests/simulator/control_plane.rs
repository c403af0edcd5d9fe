//! The gRPC control plane, through a tonic client and reflection.

use std::time::Duration;

use ibapi::prelude::*;
use ibstream::proto::ibsim::v1 as pb;
use ibstream::proto::ibsim::v1::simulator_control_client::SimulatorControlClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::common::*;

/// A simulator with a gRPC control plane, and a client of it.
pub async fn started() -> (
    ibstream::sim::SimHandle,
    SimulatorControlClient<tonic::transport::Channel>,
) {
    let sim = start_with(|c| c.control_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let client = SimulatorControlClient::new(control_channel(sim.control_addr().unwrap()).await);
    (sim, client)
}

/// A channel to the simulator's gRPC control plane at `addr`.
async fn control_channel(addr: std::net::SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// The first answer of a server stream.
async fn first_message<T>(
    response: Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>,
) -> T {
    let mut responses = response.unwrap().into_inner();
    responses.message().await.unwrap().unwrap()
}

/// A protobuf duration of whole seconds, as the control RPCs take it.
fn whole_seconds(seconds: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds, nanos: 0 })
}

#[tokio::test]
async fn get_stats_reports_activity_and_reset_clears_counters() {
    let (sim, mut control) = started().await;
    let client = connect(&sim, 1).await;
    let _sub = streaming_stock(&client, "AAPL").await;
    let _ = client
        .contract_details(&Contract::stock("NOSUCH").build())
        .await;

    let stats = control
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.connections, 1);
    assert_eq!(stats.market_data_requests, 1);
    assert_eq!(stats.active_market_data_subscriptions, 1);
    assert!(stats.peak_messages_per_second >= 2);
    assert_eq!(stats.requests_by_type["RequestMarketData"], 1);
    assert_eq!(stats.requests_by_type["RequestContractData"], 1);
    assert_eq!(stats.errors_sent[&200], 1);
    assert_eq!(stats.errors_sent[&2104], 1);

    control.reset_stats(pb::ResetStatsRequest {}).await.unwrap();
    let stats = control
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.market_data_requests, 0);
    assert!(stats.requests_by_type.is_empty() && stats.errors_sent.is_empty());
    assert_eq!(stats.peak_messages_per_second, 0);
    assert_eq!(
        (stats.connections, stats.active_market_data_subscriptions),
        (1, 1),
        "current values stay"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn fault_rpcs_act_and_validate_their_arguments() {
    let (sim, mut control) = started().await;
    let client = connect(&sim, 1).await;
    let mut sub = streaming_stock(&client, "MSFT").await;

    let missing = control
        .stall(pb::StallRequest { duration: None })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::InvalidArgument);
    assert!(missing.message().contains("duration"));
    let zero = control
        .set_tick_interval(pb::SetTickIntervalRequest {
            interval: whole_seconds(0),
        })
        .await
        .unwrap_err();
    assert_eq!(zero.code(), tonic::Code::InvalidArgument);

    let injected = control
        .inject_error(pb::InjectErrorRequest {
            code: 2103,
            message: "Market data farm connection is broken:usfarm".into(),
            request_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(injected.delivered, 1);
    control
        .set_line_limit(pb::SetLineLimitRequest { line_limit: 1 })
        .await
        .unwrap();
    let mut second = subscribe_stock(&client, "AAPL").await;
    assert_eq!(notice_code(&first_error(&mut second).await), 101);
    control
        .set_live_permission(pb::SetLivePermissionRequest {
            symbol: "MSFT".into(),
            live: false,
        })
        .await
        .unwrap();
    control
        .set_line_limit(pb::SetLineLimitRequest { line_limit: 10 })
        .await
        .unwrap();
    let mut denied = subscribe_stock(&client, "MSFT").await;
    assert_eq!(notice_code(&first_error(&mut denied).await), 354);

    let dropped = control
        .drop_connections(pb::DropConnectionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dropped.dropped, 1);
    assert!(matches!(
        first_error(&mut sub).await,
        ibapi::Error::ConnectionReset
    ));
    control
        .set_availability(pb::SetAvailabilityRequest {
            refuse_for: whole_seconds(30),
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !client.is_connected(),
        "reconnects are refused during the window"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn reflection_lists_the_control_service() {
    let (sim, _) = started().await;
    let mut reflection =
        ServerReflectionClient::new(control_channel(sim.control_addr().unwrap()).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let response = first_message(
        reflection
            .server_reflection_info(futures::stream::iter([request]))
            .await,
    )
    .await;
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer {response:?}");
    };
    let listed: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(listed, ["ibsim.v1.SimulatorControl"]);
    assert_eq!(
        list_v1alpha(sim.control_addr().unwrap()).await,
        ["ibsim.v1.SimulatorControl"],
        "grpcurl before 1.9 speaks only v1alpha reflection"
    );
    // Everything a reflection client needs to call it, imports included.
    let set = <prost_types::FileDescriptorSet as prost::Message>::decode(
        ibstream::proto::FILE_DESCRIPTOR_SET,
    )
    .unwrap();
    let names: Vec<_> = set.file.iter().filter_map(|f| f.name.as_deref()).collect();
    assert!(names.contains(&"ibsim/v1/control.proto"), "{names:?}");
    assert!(
        names.contains(&"google/protobuf/duration.proto"),
        "{names:?}"
    );
    sim.shutdown().await;
}

async fn list_v1alpha(addr: std::net::SocketAddr) -> Vec<String> {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let channel = control_channel(addr).await;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let response = first_message(
        ServerReflectionClient::new(channel)
            .server_reflection_info(futures::stream::iter([request]))
            .await,
    )
    .await;
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer {response:?}");
    };
    list.service.into_iter().map(|s| s.name).collect()
}
