//! Hostile input, on either socket, costs at most the connection it came on: no value a
//! client or an operator sends may panic the simulator.

use std::time::Duration;

use ibstream::proto::ibsim::v1 as pb;
use ibstream::proto::tws;
use ibstream::sim::MAX_DURATION;

use crate::common::*;
use crate::control_plane::started;
use crate::raw::{self, Raw};

/// A frame of only a message id, whatever its value.
fn bare_frame(wire_id: i32) -> Vec<u8> {
    let mut frame = 4u32.to_be_bytes().to_vec();
    frame.extend_from_slice(&wire_id.to_be_bytes());
    frame
}

#[tokio::test]
async fn message_ids_at_the_ends_of_i32_are_unknown_requests() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    let mut hostile = Raw::connect(sim.gateway_addr(), 2).await;
    for wire_id in [i32::MIN, i32::MIN + 199, i32::MAX] {
        hostile.send_bytes(&bare_frame(wire_id)).await;
    }
    hostile
        .send(raw::REQ_CURRENT_TIME, &tws::EmptyRequest {})
        .await;
    let frames = hostile.frames_for(Duration::from_millis(300)).await;
    assert!(
        frames.iter().any(|f| f.id == raw::CURRENT_TIME),
        "the connection keeps serving after ids it does not know"
    );
    let stats = sim.control().stats();
    assert_eq!(stats.requests_by_type["Unknown"], 3);
    assert_eq!(stats.connections, 2);
    assert!(client.server_time().await.is_ok());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_tick_interval_too_long_for_the_clock_leaves_the_feed_running() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    let mut sub = streaming_stock(&client, "KO").await;
    sim.control().set_tick_interval(Duration::MAX);
    drain_for(&mut sub, Duration::from_millis(200)).await;
    sim.control().set_tick_interval(Duration::from_millis(10));
    ticks_until(&mut sub, |seen| bids(seen).len() >= 3).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn refusals_and_stalls_too_long_for_the_clock_can_be_lifted() {
    let sim = start().await;
    sim.control().set_availability(Duration::MAX);
    let mut refused = Raw::open(sim.gateway_addr()).await;
    refused.hello("v213..226").await;
    assert!(refused.handshake_reply().await.is_none(), "refused");
    sim.control().set_availability(Duration::ZERO);
    let client = connect(&sim, 1).await;
    // Let the welcome burst out, so the writer has nothing to hold during the stall.
    tokio::time::sleep(Duration::from_millis(200)).await;
    sim.control().stall(Duration::MAX);
    sim.control().stall(Duration::ZERO);
    assert!(client.server_time().await.is_ok());
    sim.shutdown().await;
}

/// Protobuf's largest duration: far past what a clock can add.
fn longest() -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: i64::MAX,
        nanos: 999_999_999,
    })
}

#[tokio::test]
async fn control_durations_too_long_for_the_clock_are_invalid_arguments() {
    let (sim, mut control) = started().await;
    let client = connect(&sim, 1).await;
    let mut sub = streaming_stock(&client, "KO").await;

    let availability = control
        .set_availability(pb::SetAvailabilityRequest {
            refuse_for: longest(),
        })
        .await
        .unwrap_err();
    let stall = control
        .stall(pb::StallRequest {
            duration: longest(),
        })
        .await
        .unwrap_err();
    let interval = control
        .set_tick_interval(pb::SetTickIntervalRequest {
            interval: longest(),
        })
        .await
        .unwrap_err();
    for (status, field) in [
        (availability, "refuse_for"),
        (stall, "duration"),
        (interval, "interval"),
    ] {
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(field), "{status:?}");
    }

    // The maximum itself is taken, one second more is not.
    let seconds = |s: u64| {
        Some(prost_types::Duration {
            seconds: s as i64,
            nanos: 0,
        })
    };
    let max = MAX_DURATION.as_secs();
    let over = control
        .stall(pb::StallRequest {
            duration: seconds(max + 1),
        })
        .await
        .unwrap_err();
    assert_eq!(over.code(), tonic::Code::InvalidArgument);
    control
        .set_availability(pb::SetAvailabilityRequest {
            refuse_for: seconds(max),
        })
        .await
        .unwrap();
    control
        .set_availability(pb::SetAvailabilityRequest {
            refuse_for: seconds(0),
        })
        .await
        .unwrap();

    // Nothing refused is in effect: ticks flow and new clients connect.
    drain_for(&mut sub, Duration::from_millis(100)).await;
    ticks_until(&mut sub, |seen| bids(seen).len() >= 2).await;
    let other = connect(&sim, 2).await;
    assert!(other.server_time().await.is_ok());
    sim.shutdown().await;
}
