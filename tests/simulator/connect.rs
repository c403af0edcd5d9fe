//! Handshake, accounts, server time, farm notices.

use std::collections::HashSet;

use ibapi::prelude::*;

use crate::common::*;

#[tokio::test]
async fn connect_reports_accounts_next_id_and_server_time() {
    let sim = start_with(|c| c.accounts = vec!["DU1234567".into(), "DU7654321".into()]).await;
    let (client, mut notices) = Client::builder()
        .address(sim.gateway_addr().to_string())
        .client_id(100)
        .connect_with_notice_stream()
        .await
        .unwrap();
    assert_eq!(client.server_version(), 226);
    assert_eq!(
        client.handshake_managed_accounts(),
        ["DU1234567", "DU7654321"]
    );
    assert!(client.next_order_id() >= 1);
    assert!(client.connection_time().is_some(), "connection time parses");

    let mut codes = HashSet::new();
    tokio::time::timeout(WAIT, async {
        while codes.len() < 3 {
            let n = notices.next().await.expect("notice stream open");
            codes.insert(n.code);
        }
    })
    .await
    .expect("farm notices arrive");
    assert_eq!(codes, HashSet::from([2104, 2106, 2158]));

    let accounts = client.managed_accounts().await.unwrap();
    assert_eq!(accounts, ["DU1234567", "DU7654321"]);
    let now = time::OffsetDateTime::now_utc();
    let server = client.server_time().await.unwrap();
    assert!((server - now).abs() < time::Duration::seconds(5));
    let millis = client.server_time_millis().await.unwrap();
    assert!((millis - now).abs() < time::Duration::seconds(5));
    assert_eq!(sim.control().stats().connections, 1);
    sim.shutdown().await;
}

/// `ibapi`'s test data holds one frame captured from a real TWS for a message the
/// simulator sends: ManagedAccounts, in the text encoding of server versions before 213
/// (fields `message id | version | accounts |`). The client no longer has a text decoder,
/// so the comparison is by value: the simulator's protobuf frame, decoded by the client,
/// must yield what the captured frame carries.
#[tokio::test]
async fn managed_accounts_match_the_frame_captured_from_tws() {
    const CAPTURED: &str = "15|1|DU1234567,DU7654321|";
    let fields: Vec<&str> = CAPTURED.split('|').collect();
    assert_eq!(fields[0], "15", "ManagedAccounts message id");
    let captured: Vec<&str> = fields[2].split(',').collect();

    let sim = start_with(|c| c.accounts = captured.iter().map(|a| a.to_string()).collect()).await;
    let client = connect(&sim, 101).await;
    assert_eq!(client.handshake_managed_accounts(), captured.as_slice());
    assert_eq!(client.managed_accounts().await.unwrap(), captured);
    sim.shutdown().await;
}
