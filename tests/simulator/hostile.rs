//! Hostile input costs at most the connection it came on: no value a client sends may
//! panic the simulator.

use std::time::Duration;

use ibstream::proto::tws;

use crate::common::*;
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
