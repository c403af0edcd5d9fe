//! Version negotiation, client ids, availability.

use std::time::Duration;

use ibapi::prelude::*;

use crate::common::*;
use crate::raw::Raw;

#[tokio::test]
async fn version_ranges_are_negotiated_and_mismatches_refused() {
    let sim = start().await;
    let mut old = Raw::open(sim.gateway_addr()).await;
    old.hello("v100..176").await;
    assert_eq!(
        old.handshake_reply().await,
        None,
        "no overlap: closed without a reply"
    );

    let mut narrow = Raw::open(sim.gateway_addr()).await;
    narrow.hello("v213..220").await;
    let reply = narrow.handshake_reply().await.unwrap();
    assert!(
        reply.starts_with("220\0"),
        "highest common version: {reply:?}"
    );

    let mut garbage = Raw::open(sim.gateway_addr()).await;
    garbage.send_bytes(b"GET / HTTP/1.1\r\n\r\n").await;
    assert_eq!(garbage.handshake_reply().await, None);
    assert_eq!(sim.control().stats().connections_refused, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_client_id_in_use_gets_326_until_the_old_socket_closes() {
    let sim = start().await;
    let first = connect(&sim, 7).await;
    let second = Client::builder()
        .address(sim.gateway_addr().to_string())
        .client_id(7)
        .connect()
        .await;
    assert!(
        matches!(second, Err(ibapi::Error::ClientIdInUse { client_id: 7 })),
        "{:?}",
        second.err()
    );
    assert_eq!(sim.control().stats().errors_sent[&326], 1);
    // Another id is fine meanwhile.
    let other = connect(&sim, 8).await;
    first.disconnect().await;
    eventually("the old session to end", || {
        sim.control().stats().connections == 1
    })
    .await;
    let again = connect(&sim, 7).await;
    assert!(again.server_time().await.is_ok());
    drop(other);
    sim.shutdown().await;
}

#[tokio::test]
async fn unavailable_gateway_refuses_for_the_window_then_accepts() {
    let sim = start().await;
    sim.control().set_availability(Duration::from_millis(800));
    let refused = Client::builder()
        .address(sim.gateway_addr().to_string())
        .client_id(1)
        .connect()
        .await;
    assert!(refused.is_err(), "connect during the restart window fails");
    assert!(sim.control().stats().connections_refused >= 1);
    tokio::time::sleep(Duration::from_millis(900)).await;
    let client = connect(&sim, 1).await;
    assert!(client.server_time().await.is_ok());
    sim.shutdown().await;
}

#[tokio::test]
async fn an_outdated_gateway_is_refused_by_the_client() {
    let sim = start_with(|c| c.server_version = 187).await;
    let result = Client::builder()
        .address(sim.gateway_addr().to_string())
        .client_id(1)
        .connect()
        .await;
    assert!(
        matches!(result, Err(ibapi::Error::ServerVersion(213, 187, _))),
        "{:?}",
        result.err()
    );
    sim.shutdown().await;
}

#[test]
fn sim_help_documents_every_setting() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ibstream"))
        .args(["sim", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--control",
        "--no-control",
        "--seed",
        "--tick-interval-ms",
        "--line-limit",
        "--max-messages-per-second",
        "--disconnect-after-violations",
        "--accounts",
        "--server-version",
        "--no-live-permission",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    assert!(help.contains("127.0.0.1:4002") && help.contains("127.0.0.1:4003"));
}
