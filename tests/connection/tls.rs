//! TLS with a configured certificate (made here with openssl, signed by a throw-away CA).

use std::path::Path;
use std::process::Command;

use ibstream::proto::ibstream::v1 as pb;
use ibstream::proto::ibstream::v1::connection_service_client::ConnectionServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::harness::{Harness, Setup};

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A CA and a server certificate for `localhost`/127.0.0.1 signed by it.
fn make_certificates(dir: &Path) -> bool {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ca: Vec<&str> = ["req", "-x509"]
        .into_iter()
        .chain(ec)
        .chain([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=ibstream test CA",
        ])
        .collect();
    let csr: Vec<&str> = ["req"]
        .into_iter()
        .chain(ec)
        .chain([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ])
        .collect();
    openssl(dir, &ca)
        && openssl(dir, &csr)
        && openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "1",
                "-extfile",
                "server.ext",
            ],
        )
}

#[tokio::test]
async fn serves_over_tls_when_a_certificate_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    if !make_certificates(dir.path()) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "openssl is required in CI"
        );
        eprintln!("WARNING: openssl cannot make test certificates; skipping the TLS test");
        return;
    }
    let h = Harness::start_with(Setup {
        tls: Some((dir.path().join("server.pem"), dir.path().join("server.key"))),
        ..Setup::default()
    })
    .await;
    let port = h.server().addr().port();
    let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .expect("TLS handshake");
    let status = ConnectionServiceClient::new(channel)
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.state, pb::ConnectionState::Disconnected as i32);

    // A plaintext client gets nowhere.
    let plain = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = plain {
        assert!(
            ConnectionServiceClient::new(channel)
                .get_status(pb::GetStatusRequest {})
                .await
                .is_err()
        );
    }
    h.shutdown().await;
}
