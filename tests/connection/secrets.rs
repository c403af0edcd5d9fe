//! Credentials are write-only and sealed; a wrong master key stops start-up; neither the
//! IB password nor an API key ever reaches the logs.

use std::time::Duration;

use clap::Parser;
use ibstream::crypto::Scope;
use ibstream::proto::ibstream::v1 as pb;
use prost::Message;
use tonic::Code;

use crate::harness::{self, Harness};

const PASSWORD: &str = "pw-Zq81!unmistakable-secret";
const USERNAME: &str = "ib-user-7731";

/// Every byte of every file in the data directory (the SQLite file and its WAL).
fn data_dir_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).expect("data dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            all.extend(std::fs::read(&path).expect("readable"));
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn credentials_are_write_only_and_sealed() {
    let h = Harness::start().await;
    let mut client = h.client().await;
    let set = client
        .set_credentials(pb::SetCredentialsRequest {
            profile: None,
            username: USERNAME.into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        set,
        pb::CredentialsState {
            profile: "default".into(),
            credentials_set: true
        }
    );

    let settings = client
        .get_settings(pb::GetSettingsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(settings.credentials_set);
    let profiles = client
        .list_profiles(pb::ListProfilesRequest {})
        .await
        .unwrap()
        .into_inner();
    for response in [
        settings.encode_to_vec(),
        profiles.encode_to_vec(),
        set.encode_to_vec(),
    ] {
        assert!(!contains(&response, PASSWORD) && !contains(&response, USERNAME));
    }
    // Sealed at rest: neither value is anywhere in the database files.
    let raw = data_dir_bytes(h.dir.path());
    assert!(!raw.is_empty());
    assert!(!contains(&raw, PASSWORD), "password stored in clear");
    assert!(!contains(&raw, USERNAME), "username stored in clear");

    for (username, password, field) in [("", "x", "username"), ("u", "", "password")] {
        let err = client
            .set_credentials(pb::SetCredentialsRequest {
                profile: None,
                username: username.into(),
                password: password.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains(field));
    }
    let unknown = client
        .set_credentials(pb::SetCredentialsRequest {
            profile: Some("nope".into()),
            username: "u".into(),
            password: "p".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let cleared = client
        .clear_credentials(pb::ClearCredentialsRequest { profile: None })
        .await
        .unwrap()
        .into_inner();
    assert!(!cleared.credentials_set);
    let settings = client
        .get_settings(pb::GetSettingsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(!settings.credentials_set);
    h.shutdown().await;
}

#[tokio::test]
async fn a_wrong_master_key_fails_start_up_clearly() {
    harness::capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let right = dir.path().join("right.key");
    let wrong = dir.path().join("wrong.key");
    // Neither key file exists: each start creates its own, with a random secret.
    // The first start seals the database's key check with the right key; it has nothing
    // to connect to and is only asked to show that it starts, so the listen address is
    // taken and it fails after unlocking.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let serve = |key: &std::path::Path| {
        ibstream::cli::Cli::parse_from([
            "ibstream",
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--master-key-file",
            key.to_str().unwrap(),
            "--listen",
            &taken.local_addr().unwrap().to_string(),
        ])
    };
    let first = tokio::time::timeout(Duration::from_secs(60), ibstream::cli::run(serve(&right)))
        .await
        .expect("start-up ends")
        .unwrap_err();
    assert!(format!("{first:#}").contains("cannot listen"), "{first:#}");

    let second = tokio::time::timeout(Duration::from_secs(60), ibstream::cli::run(serve(&wrong)))
        .await
        .expect("start-up ends")
        .unwrap_err();
    let message = format!("{second:#}");
    assert!(message.contains("master key does not match"), "{message}");
    let wrong_secret = std::fs::read_to_string(&wrong).unwrap();
    assert!(!message.contains(wrong_secret.trim()));
}

#[tokio::test]
async fn logs_never_contain_the_ib_password_or_an_api_key() {
    let h = Harness::start().await;
    let (_, admin) = h.create_key(Scope::Admin).await;
    let (_, read) = h.create_key(Scope::Read).await;
    let mut client = h.client_with_key(&admin).await;
    client
        .set_credentials(pb::SetCredentialsRequest {
            profile: None,
            username: USERNAME.into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap();
    client.connect(pb::ConnectRequest {}).await.unwrap();
    client
        .get_settings(pb::GetSettingsRequest::default())
        .await
        .unwrap();
    let mut reader = h.client_with_key(&read).await;
    reader.get_status(pb::GetStatusRequest {}).await.unwrap();
    let denied = reader.connect(pb::ConnectRequest {}).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let mut forged = h.client_with_key(&format!("{admin}x")).await;
    assert_eq!(
        forged
            .get_status(pb::GetStatusRequest {})
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    client.disconnect(pb::DisconnectRequest {}).await.unwrap();
    h.shutdown().await;

    let logs = harness::captured_logs();
    assert!(logs.contains("rpc"), "nothing was captured");
    assert!(logs.contains("IB session state changed"));
    for secret in [PASSWORD, admin.as_str(), read.as_str()] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
    // The key's secret part alone (`ibs_<id>_<secret>`; the secret may itself contain
    // '_'), in case it were logged without its prefix.
    let secret_part = admin.splitn(3, '_').nth(2).unwrap();
    assert!(secret_part.len() >= 40, "{}", secret_part.len());
    assert!(!logs.contains(secret_part));
}
