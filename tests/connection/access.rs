//! API keys and scopes, revocation, streams per key, and the exposure rule.

use std::time::Duration;

use ibstream::app::{App, ServerOptions};
use ibstream::config::Config;
use ibstream::crypto::{MasterKeySource, MasterSecret, Scope};
use ibstream::proto::ibstream::v1 as pb;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::harness::{self, Harness, Setup};

#[tokio::test]
async fn keys_and_scopes_are_enforced() {
    let h = Harness::start().await;
    let (read_id, read) = h.create_key(Scope::Read).await;
    let (_, admin) = h.create_key(Scope::Admin).await;

    // With keys in the store, a call without one is refused (the "any keys?" answer is
    // cached briefly, so allow it to expire).
    let mut anonymous = h.client().await;
    harness::eventually("anonymous calls refused", || {
        let mut c = anonymous.clone();
        async move {
            matches!(c.get_status(pb::GetStatusRequest {}).await, Err(e) if e.code() == Code::Unauthenticated)
        }
    })
    .await;
    let err = anonymous
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap_err();
    assert!(err.message().contains("authorization"), "{}", err.message());

    let mut garbage = h.client_with_key("ibs_notakey").await;
    assert_eq!(
        garbage
            .get_status(pb::GetStatusRequest {})
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );

    // Read: status and history yes, anything admin no.
    let mut reader = h.client_with_key(&read).await;
    // A client learns its scope without trying an admin method.
    let access = reader
        .get_access(pb::GetAccessRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(access.scope(), pb::AccessScope::Read);
    assert!(access.keys_required);
    assert_eq!(access.key_id, read_id);
    assert!(
        !format!("{access:?}").contains(&read),
        "the key itself is never returned"
    );
    reader.get_status(pb::GetStatusRequest {}).await.unwrap();
    reader
        .list_events(pb::ListEventsRequest { page_size: 5 })
        .await
        .unwrap();
    reader
        .watch_status(pb::WatchStatusRequest {})
        .await
        .unwrap();
    for denied in [
        reader
            .get_settings(pb::GetSettingsRequest::default())
            .await
            .map(|_| ()),
        reader.connect(pb::ConnectRequest {}).await.map(|_| ()),
        reader
            .disconnect(pb::DisconnectRequest {})
            .await
            .map(|_| ()),
        reader
            .test_connection(pb::TestConnectionRequest::default())
            .await
            .map(|_| ()),
        reader
            .set_credentials(pb::SetCredentialsRequest {
                profile: None,
                username: "u".into(),
                password: "p".into(),
            })
            .await
            .map(|_| ()),
    ] {
        let err = denied.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        assert!(err.message().contains("admin"), "{}", err.message());
    }

    // Admin: everything.
    let mut admin_client = h.client_with_key(&admin).await;
    let access = admin_client
        .get_access(pb::GetAccessRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(access.scope(), pb::AccessScope::Admin);
    assert!(access.keys_required);
    assert!(
        anonymous
            .get_access(pb::GetAccessRequest {})
            .await
            .is_err_and(|e| e.code() == Code::Unauthenticated)
    );
    admin_client
        .get_settings(pb::GetSettingsRequest::default())
        .await
        .unwrap();
    admin_client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap();

    // Health and reflection need no key.
    let mut health = HealthClient::new(h.channel().await);
    health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();

    // A revoked key stops working within the cache lifetime.
    h.store.revoke_api_key(&read_id).await.unwrap();
    harness::eventually("revoked key refused", || {
        let mut c = reader.clone();
        async move {
            matches!(c.get_status(pb::GetStatusRequest {}).await, Err(e) if e.code() == Code::Unauthenticated)
        }
    })
    .await;
    let err = reader
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap_err();
    assert!(err.message().contains("revoked"), "{}", err.message());
    h.shutdown().await;
}

#[tokio::test]
async fn streams_per_key_are_limited() {
    let h = Harness::start_with(Setup {
        max_streams_per_key: 2,
        ..Setup::default()
    })
    .await;
    let (_, read) = h.create_key(Scope::Read).await;
    let (_, other) = h.create_key(Scope::Read).await;
    let mut client = h.client_with_key(&read).await;
    let first = client
        .watch_status(pb::WatchStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    let second = client
        .watch_status(pb::WatchStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    let err = client
        .watch_status(pb::WatchStatusRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("2 open streams"),
        "{}",
        err.message()
    );
    // Another key has its own budget.
    let mut other_client = h.client_with_key(&other).await;
    let _third = other_client
        .watch_status(pb::WatchStatusRequest {})
        .await
        .unwrap();
    // Closing a stream frees its slot.
    drop(first);
    harness::eventually("slot freed", || {
        let mut c = client.clone();
        async move { c.watch_status(pb::WatchStatusRequest {}).await.is_ok() }
    })
    .await;
    drop(second);
    h.shutdown().await;
}

#[tokio::test]
async fn a_non_loopback_address_without_keys_is_refused() {
    harness::capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let store = ibstream::store::Store::open_in_data_dir(dir.path())
        .await
        .unwrap();
    let mut profile = store.active_profile().await.unwrap();
    profile.connect_on_start = false;
    store.save_profile(&profile).await.unwrap();
    let secret =
        MasterSecret::load(&MasterKeySource::Secret("s3cret-for-this-test".into())).unwrap();
    let options = |insecure: bool, master_key| {
        let mut config = Config::default();
        config.server.listen = "0.0.0.0:0".parse().unwrap();
        config.server.insecure_no_auth = insecure;
        ServerOptions {
            config,
            store: store.clone(),
            master_key,
            session: harness::fast_session(),
        }
    };
    let key = ibstream::store::unlock(&store, &secret).await.unwrap();
    let err = App::start(options(false, key), None).await.unwrap_err();
    assert!(format!("{err:#}").contains("--insecure-no-auth"), "{err:#}");

    let key = ibstream::store::unlock(&store, &secret).await.unwrap();
    let server = App::start(options(true, key), None).await.unwrap();
    assert!(server.addr().ip().is_unspecified());
    tokio::time::timeout(Duration::from_secs(20), server.shutdown())
        .await
        .unwrap()
        .unwrap();
}

/// Request bytes as given, whatever the method expects.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

#[derive(Debug, Clone, Copy, Default)]
struct RawEncoder;

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        buf: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(buf, &item);
        Ok(())
    }
}

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = ();
    type Encoder = RawEncoder;
    type Decoder = tonic_prost::ProstDecoder<()>;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::default()
    }
}

#[tokio::test]
async fn a_call_without_a_message_is_an_invalid_argument() {
    let h = Harness::start().await;
    let mut grpc = tonic::client::Grpc::new(h.channel().await);
    for method in [
        "/ibstream.v1.ConnectionService/GetStatus",
        "/ibstream.v1.MarketDataService/GetQuotes",
    ] {
        grpc.ready().await.unwrap();
        // A unary method called with a body that ends before any message.
        let err = grpc
            .client_streaming(
                tonic::Request::new(futures::stream::empty::<Vec<u8>>()),
                http::uri::PathAndQuery::from_static(method),
                RawCodec,
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{method}: {err:?}");
        assert!(err.message().contains("no message"), "{err:?}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn undecodable_requests_are_invalid_arguments() {
    let h = Harness::start().await;
    let mut grpc = tonic::client::Grpc::new(h.channel().await);
    // Field 1, length-delimited, with a length varint that never ends.
    let garbage = vec![0x0a, 0xff, 0xff, 0xff];
    for method in [
        "/ibstream.v1.ConnectionService/GetSettings",
        "/ibstream.v1.MarketDataService/GetQuotes",
    ] {
        grpc.ready().await.unwrap();
        let err = grpc
            .unary(
                tonic::Request::new(garbage.clone()),
                http::uri::PathAndQuery::from_static(method),
                RawCodec,
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{method}: {err:?}");
        assert!(err.message().contains("not a valid message"), "{err:?}");
    }
    h.shutdown().await;
}
