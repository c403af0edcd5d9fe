//! Settings profiles through the API: field masks, validation naming the field,
//! profile listing and activation.

use ibstream::proto::ibstream::v1 as pb;
use prost_types::{Duration as PbDuration, FieldMask};
use tonic::Code;

use crate::harness::Harness;

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

fn update(settings: pb::Settings, paths: &[&str]) -> pb::UpdateSettingsRequest {
    pb::UpdateSettingsRequest {
        settings: Some(settings),
        update_mask: mask(paths),
        allow_missing: false,
    }
}

#[tokio::test]
async fn settings_round_trip_with_field_masks() {
    let h = Harness::start().await;
    let mut client = h.client().await;
    let before = client
        .get_settings(pb::GetSettingsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(before.name, "default");
    assert!(before.active);
    assert!(!before.credentials_set);

    // Only the masked fields change, even though the message carries other values.
    let changed = client
        .update_settings(update(
            pb::Settings {
                port: 4999,
                client_id: 77,
                host: "ignored.example".into(),
                market_data_type: pb::MarketDataType::Delayed as i32,
                connection_timeout: Some(PbDuration {
                    seconds: 7,
                    nanos: 0,
                }),
                account: Some("DU999".into()),
                ..Default::default()
            },
            &[
                "port",
                "client_id",
                "market_data_type",
                "connection_timeout",
                "account",
            ],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changed.port, 4999);
    assert_eq!(changed.client_id, 77);
    assert_eq!(changed.host, before.host);
    assert_eq!(changed.market_data_type, pb::MarketDataType::Delayed as i32);
    assert_eq!(
        changed.connection_timeout,
        Some(PbDuration {
            seconds: 7,
            nanos: 0
        })
    );
    assert_eq!(changed.account.as_deref(), Some("DU999"));
    assert_eq!(changed.message_rate, before.message_rate);

    let read_back = client
        .get_settings(pb::GetSettingsRequest {
            profile: Some("default".into()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read_back.port, 4999);
    assert_eq!(read_back.account.as_deref(), Some("DU999"));

    // Absent `account` in the mask clears it.
    let cleared = client
        .update_settings(update(pb::Settings::default(), &["account"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cleared.account, None);
    h.shutdown().await;
}

#[tokio::test]
async fn each_bad_field_is_named() {
    let h = Harness::start().await;
    let mut client = h.client().await;
    let cases: Vec<(&str, pb::Settings)> = vec![
        (
            "port",
            pb::Settings {
                port: 0,
                ..Default::default()
            },
        ),
        (
            "port",
            pb::Settings {
                port: 70_000,
                ..Default::default()
            },
        ),
        (
            "client_id",
            pb::Settings {
                client_id: -1,
                ..Default::default()
            },
        ),
        (
            "client_id",
            pb::Settings {
                client_id: 1_000_000_000,
                ..Default::default()
            },
        ),
        (
            "host",
            pb::Settings {
                host: String::new(),
                ..Default::default()
            },
        ),
        (
            "host",
            pb::Settings {
                host: "not a host".into(),
                ..Default::default()
            },
        ),
        (
            "connection_timeout",
            pb::Settings {
                connection_timeout: Some(PbDuration {
                    seconds: 0,
                    nanos: 0,
                }),
                ..Default::default()
            },
        ),
        (
            "connection_timeout",
            pb::Settings {
                connection_timeout: Some(PbDuration {
                    seconds: -5,
                    nanos: 0,
                }),
                ..Default::default()
            },
        ),
        (
            "retry_attempts",
            pb::Settings {
                retry_attempts: 101,
                ..Default::default()
            },
        ),
        (
            "message_rate",
            pb::Settings {
                message_rate: 0,
                ..Default::default()
            },
        ),
        (
            "message_rate",
            pb::Settings {
                message_rate: 51,
                ..Default::default()
            },
        ),
        (
            "line_budget",
            pb::Settings {
                line_budget: 0,
                ..Default::default()
            },
        ),
        (
            "market_data_type",
            pb::Settings {
                market_data_type: 0,
                ..Default::default()
            },
        ),
        (
            "account",
            pb::Settings {
                account: Some("DU 1".into()),
                ..Default::default()
            },
        ),
    ];
    for (field, settings) in cases {
        let err = client
            .update_settings(update(settings, &[field]))
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "{field}: {}",
            err.message()
        );
        assert!(
            err.message().contains(field),
            "{field} not named in {:?}",
            err.message()
        );
    }
    for (paths, named) in [
        (&[][..], "update_mask"),
        (&["active"][..], "update_mask"),
        (&["password"][..], "update_mask"),
    ] {
        let err = client
            .update_settings(update(pb::Settings::default(), paths))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains(named), "{:?}", err.message());
    }
    // Nothing was saved by the refused updates.
    let after = client
        .get_settings(pb::GetSettingsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.port, u32::from(h.sim.gateway_addr().port()));
    h.shutdown().await;
}

#[tokio::test]
async fn profiles_are_listed_created_and_activated() {
    let h = Harness::start().await;
    let mut client = h.client().await;
    let missing = client
        .get_settings(pb::GetSettingsRequest {
            profile: Some("paper".into()),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().contains("paper"));

    let not_created = client
        .update_settings(update(
            pb::Settings {
                name: "paper".into(),
                port: 4002,
                ..Default::default()
            },
            &["port"],
        ))
        .await
        .unwrap_err();
    assert_eq!(not_created.code(), Code::NotFound);

    let created = client
        .update_settings(pb::UpdateSettingsRequest {
            settings: Some(pb::Settings {
                name: "paper".into(),
                port: 4004,
                client_id: 5,
                ..Default::default()
            }),
            update_mask: mask(&["port", "client_id"]),
            allow_missing: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (created.name.as_str(), created.port, created.active),
        ("paper", 4004, false)
    );

    let listed = client
        .list_profiles(pb::ListProfilesRequest {})
        .await
        .unwrap()
        .into_inner()
        .profiles;
    let names: Vec<_> = listed.iter().map(|p| (p.name.as_str(), p.active)).collect();
    assert_eq!(names, vec![("default", true), ("paper", false)]);

    let active = client
        .activate_profile(pb::ActivateProfileRequest {
            profile: "paper".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(active.active);
    let current = client
        .get_settings(pb::GetSettingsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(current.name, "paper");

    let unknown = client
        .activate_profile(pb::ActivateProfileRequest {
            profile: "live".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let empty = client
        .activate_profile(pb::ActivateProfileRequest::default())
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    h.shutdown().await;
}

#[tokio::test]
async fn an_unknown_profile_of_ten_thousand_characters_is_not_found_in_a_short_message() {
    let h = Harness::start().await;
    let mut client = h.client().await;
    let name = "p".repeat(10_000);
    let get = client
        .get_settings(pb::GetSettingsRequest {
            profile: Some(name.clone()),
        })
        .await
        .unwrap_err();
    let activate = client
        .activate_profile(pb::ActivateProfileRequest {
            profile: name.clone(),
        })
        .await
        .unwrap_err();
    let update = client
        .update_settings(update(
            pb::Settings {
                name,
                port: 4002,
                ..Default::default()
            },
            &["port"],
        ))
        .await
        .unwrap_err();
    for status in [get, activate, update] {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        assert!(status.message().len() < 200, "{}", status.message());
        assert!(status.message().contains("ppp"), "{}", status.message());
    }
    h.shutdown().await;
}
