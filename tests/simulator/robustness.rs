//! Broken peers affect only their own connection.

use std::time::Duration;

use ibstream::proto::tws;

use crate::common::*;
use crate::raw::{self, Raw};

#[tokio::test]
async fn garbage_and_broken_frames_cost_only_their_connection() {
    let sim = start().await;
    let client = connect(&sim, 1).await;
    let mut sub = subscribe_stock(&client, "AAPL").await;
    ticks_until(&mut sub, |seen| bids(seen).len() >= 2).await;

    // Not the TWS API at all.
    let mut garbage = Raw::open(sim.gateway_addr()).await;
    garbage
        .send_bytes(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5])
        .await;
    assert!(garbage.until_closed().await.is_empty());

    // An oversized length prefix after a good handshake.
    let mut oversized = Raw::connect(sim.gateway_addr(), 11).await;
    oversized
        .send_bytes(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0xf9])
        .await;
    oversized.until_closed().await;

    // An unknown message id is skipped; a malformed payload gets error 320; the
    // connection keeps serving.
    let mut odd = Raw::connect(sim.gateway_addr(), 12).await;
    odd.send_bytes(&[0, 0, 0, 6, 0, 0, 0x03, 0xe7, 0x08, 0x01])
        .await;
    odd.send_bytes(&[0, 0, 0, 7, 0, 0, 0, 0xc9, 0x0a, 0xff, 0xff])
        .await;
    odd.send(raw::REQ_CURRENT_TIME, &tws::EmptyRequest {}).await;
    let frames = odd.frames_for(Duration::from_millis(300)).await;
    assert!(
        frames
            .iter()
            .any(|f| f.id == raw::ERROR && raw::error(f).error_code == Some(320))
    );
    assert!(frames.iter().any(|f| f.id == raw::CURRENT_TIME));

    // Half a frame, then gone.
    let mut half = Raw::connect(sim.gateway_addr(), 13).await;
    half.send_bytes(&[0, 0, 0, 40, 0, 0, 0, 0xc9, 0x08]).await;
    drop(half);

    // A text-era (pre-protobuf) frame is ignored, not fatal.
    let mut text = Raw::connect(sim.gateway_addr(), 14).await;
    text.send_bytes(&[0, 0, 0, 8, 0, 0, 0, 49, b'1', 0, b'1', 0])
        .await;
    text.send(raw::REQ_CURRENT_TIME, &tws::EmptyRequest {})
        .await;
    assert!(
        text.frames_for(Duration::from_millis(300))
            .await
            .iter()
            .any(|f| f.id == raw::CURRENT_TIME)
    );

    eventually("broken connections to be cleaned up", || {
        sim.control().stats().connections == 3
    })
    .await;
    // The ibapi client never noticed.
    let more = ticks_until(&mut sub, |seen| bids(seen).len() >= 3).await;
    assert_eq!(bids(&more).len(), 3);
    assert!(client.is_connected());
    sim.shutdown().await;
}
