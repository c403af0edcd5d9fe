//! TestConnection: success beside a live session, and each typed failure.

use std::net::SocketAddr;
use std::time::Duration;

use ibstream::proto::ibstream::v1 as pb;
use pb::test_connection_response::Result as Outcome;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tonic::Code;

use crate::harness::{self, Harness, state_of};

fn failure(response: &pb::TestConnectionResponse) -> (pb::TestConnectionFailure, String) {
    match &response.result {
        Some(Outcome::Failure(f)) => (
            pb::TestConnectionFailure::try_from(f.reason).unwrap(),
            f.message.clone(),
        ),
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn to(addr: SocketAddr, timeout: Duration) -> pb::TestConnectionRequest {
    pb::TestConnectionRequest {
        profile: None,
        host: Some(addr.ip().to_string()),
        port: Some(u32::from(addr.port())),
        client_id: None,
        timeout: Some(prost_types::Duration {
            seconds: timeout.as_secs() as i64,
            nanos: timeout.subsec_nanos() as i32,
        }),
    }
}

/// Accepts connections and never says a word.
async fn silent_listener() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    addr
}

/// Answers the TWS handshake with server version 100, far older than `ibapi` supports.
async fn old_gateway() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut api = [0u8; 4];
                socket.read_exact(&mut api).await?;
                assert_eq!(&api, b"API\0");
                let mut len = [0u8; 4];
                socket.read_exact(&mut len).await?;
                let mut versions = vec![0u8; u32::from_be_bytes(len) as usize];
                socket.read_exact(&mut versions).await?;
                let body = b"100\x0020240105 22:20:39 UTC\x00";
                socket.write_all(&(body.len() as u32).to_be_bytes()).await?;
                socket.write_all(body).await?;
                let mut rest = Vec::new();
                socket.read_to_end(&mut rest).await?;
                Ok::<_, std::io::Error>(())
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_test_beside_the_live_session_leaves_it_alone() {
    let h = Harness::start().await;
    let mut client = h.client().await;

    // No live session: the profile's own client id.
    let alone = client
        .test_connection(pb::TestConnectionRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alone.client_id, 11);
    assert!(!alone.client_id_derived);
    assert!(matches!(alone.result, Some(Outcome::Success(_))));

    let live = client
        .connect(pb::ConnectRequest {})
        .await
        .unwrap()
        .into_inner();
    let tested = client
        .test_connection(pb::TestConnectionRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(tested.client_id_derived);
    assert_ne!(tested.client_id, 11);
    assert_eq!(tested.address, h.sim.gateway_addr().to_string());
    let Some(Outcome::Success(ok)) = tested.result else {
        panic!("expected success: {tested:?}")
    };
    assert!(ok.server_version >= 213);
    assert_eq!(ok.managed_accounts, vec!["DU1234567".to_string()]);
    assert!(ok.server_time.is_some() && ok.round_trip_time.is_some());

    // The live session was not disturbed, and the test's socket is gone.
    let after = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&after), pb::ConnectionState::Connected);
    assert_eq!(after.generation, live.generation);
    harness::eventually("test connection closed", || async {
        h.sim.control().stats().connections == 1
    })
    .await;
    // Nothing was saved.
    let settings = client
        .get_settings(pb::GetSettingsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(settings.client_id, 11);
    h.shutdown().await;
}

#[tokio::test]
async fn each_failure_is_typed() {
    let h = Harness::start().await;
    let mut client = h.client().await;
    client.connect(pb::ConnectRequest {}).await.unwrap();

    // Nothing listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let refused = client
        .test_connection(to(closed, Duration::from_secs(5)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(failure(&refused).0, pb::TestConnectionFailure::Refused);

    // Accepts but never answers.
    let silent = silent_listener().await;
    let timeout = client
        .test_connection(to(silent, Duration::from_millis(500)))
        .await
        .unwrap()
        .into_inner();
    let (reason, message) = failure(&timeout);
    assert_eq!(reason, pb::TestConnectionFailure::Timeout);
    assert!(message.contains(&silent.to_string()), "{message}");

    // The live session's client id, asked for explicitly.
    let mut in_use = to(h.sim.gateway_addr(), Duration::from_secs(5));
    in_use.client_id = Some(11);
    let in_use = client.test_connection(in_use).await.unwrap().into_inner();
    let (reason, message) = failure(&in_use);
    assert_eq!(reason, pb::TestConnectionFailure::ClientIdInUse);
    assert!(message.contains("11"), "{message}");

    // A gateway far too old.
    let old = old_gateway().await;
    let old = client
        .test_connection(to(old, Duration::from_secs(5)))
        .await
        .unwrap()
        .into_inner();
    let (reason, message) = failure(&old);
    assert_eq!(reason, pb::TestConnectionFailure::VersionMismatch);
    assert!(message.contains("100"), "{message}");

    // The live session is still there.
    let status = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&status), pb::ConnectionState::Connected);

    // Bad parameters are named.
    let cases = [
        (
            "port",
            pb::TestConnectionRequest {
                port: Some(70_000),
                ..Default::default()
            },
        ),
        (
            "client_id",
            pb::TestConnectionRequest {
                client_id: Some(-5),
                ..Default::default()
            },
        ),
        (
            "host",
            pb::TestConnectionRequest {
                host: Some(" ".into()),
                ..Default::default()
            },
        ),
        (
            "timeout",
            pb::TestConnectionRequest {
                timeout: Some(prost_types::Duration {
                    seconds: 0,
                    nanos: 0,
                }),
                ..Default::default()
            },
        ),
        (
            "profile",
            pb::TestConnectionRequest {
                profile: Some("nope".into()),
                ..Default::default()
            },
        ),
    ];
    for (field, request) in cases {
        let err = client.test_connection(request).await.unwrap_err();
        let expected = if field == "profile" {
            Code::NotFound
        } else {
            Code::InvalidArgument
        };
        assert_eq!(err.code(), expected, "{field}: {}", err.message());
        if field != "profile" {
            assert!(err.message().contains(field), "{field}: {}", err.message());
        }
    }
    h.shutdown().await;
}
