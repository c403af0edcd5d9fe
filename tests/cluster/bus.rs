//! A connection to the test NATS server, or a loud skip (a failure under `CI=true`).

use rand::Rng;

const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// The test server's address.
pub fn url() -> String {
    std::env::var("IBSTREAM_TEST_NATS").unwrap_or_else(|_| DEFAULT_URL.into())
}

/// The JetStream context of the test server and a name no other test uses, or `None`
/// (after a loud warning) when the server is unreachable outside CI.
pub async fn jetstream() -> Option<(async_nats::jetstream::Context, String)> {
    let url = url();
    let connected = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .max_reconnects(Some(0))
            .connect(url.as_str()),
    )
    .await;
    let client = match connected {
        Ok(Ok(client)) => client,
        failed => {
            let why = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => "no answer within 5 s".into(),
            };
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("NATS at {url} is unreachable under CI: {why}");
            }
            eprintln!(
                "\n!!!!!!!! WARNING: NATS at {url} is unreachable ({why}); this cluster test is \
                 SKIPPED (install nats-server and run it with -js) !!!!!!!!\n"
            );
            return None;
        }
    };
    let name = format!("ibstream_test_{:012x}", rand::rng().random::<u64>() >> 16);
    Some((async_nats::jetstream::new(client), name))
}
