//! A cluster of real `ibstream serve --cluster` processes against one simulated gateway,
//! a PostgreSQL database of their own and the test NATS server: nodes can be killed
//! (SIGKILL) or cut off from NATS (each node reaches NATS through a loopback proxy the
//! test can cut), and the gateway is watched for two sessions of one client id.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ibstream::proto::ibstream::v1 as pb;
use ibstream::proto::ibstream::v1::connection_service_client::ConnectionServiceClient;
use ibstream::proto::ibstream::v1::market_data_service_client::MarketDataServiceClient;
use ibstream::sim::{SimConfig, SimHandle, Simulator};
use ibstream::store::Store;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::backend::TestDb;
use crate::bus;

/// The client id every node's session uses.
pub const CLIENT_ID: i32 = 17;
/// The lease's time to live in these tests.
pub const LEASE_TTL: &str = "2s";
/// How long an instrument no stream watches stays subscribed.
pub const LINGER: Duration = Duration::from_secs(1);
/// The longest a test waits for anything.
pub const WAIT: Duration = Duration::from_secs(30);

/// One node: its process, its gRPC address and its NATS proxy.
pub struct Node {
    pub name: String,
    pub grpc: String,
    /// http://host:port/metrics
    pub metrics: String,
    child: Child,
    proxy: Proxy,
    log: Arc<Mutex<String>>,
}

impl Node {
    async fn channel(&self) -> Option<Channel> {
        Channel::from_shared(self.grpc.clone())
            .ok()?
            .connect_timeout(Duration::from_secs(2))
            .connect()
            .await
            .ok()
    }

    pub async fn market_data(&self) -> MarketDataServiceClient<Channel> {
        MarketDataServiceClient::new(self.channel().await.expect("node reachable"))
    }

    pub async fn connection(&self) -> ConnectionServiceClient<Channel> {
        ConnectionServiceClient::new(self.channel().await.expect("node reachable"))
    }

    /// The node's status, as GetStatus answers.
    pub async fn status(&self) -> Option<pb::ConnectionStatus> {
        let mut client = ConnectionServiceClient::new(self.channel().await?);
        let status = tokio::time::timeout(
            Duration::from_secs(2),
            client.get_status(pb::GetStatusRequest {}),
        )
        .await
        .ok()?
        .ok()?;
        Some(status.into_inner())
    }

    /// Whether the node reports SERVING (`None` when it does not answer).
    pub async fn health(&self) -> Option<bool> {
        let mut client = tonic_health::pb::health_client::HealthClient::new(self.channel().await?);
        let answer = client
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .ok()?
            .into_inner();
        Some(
            answer.status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
        )
    }

    /// SIGKILL: no goodbye to NATS, the gateway or the lease.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Closes the node's NATS connection and refuses new ones; the process goes on.
    pub fn cut_off(&self) {
        self.proxy.cut.send_replace(true);
    }

    /// Lets the node reach NATS again.
    pub fn reconnect(&self) {
        self.proxy.cut.send_replace(false);
    }

    /// One sample's value from the node's metrics endpoint.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let text = crate::http::http_get(&self.metrics);
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback TCP proxy in front of NATS that can be cut.
struct Proxy {
    url: String,
    cut: Arc<watch::Sender<bool>>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("nats://{}", listener.local_addr().unwrap());
        let (cut, _) = watch::channel(false);
        let cut = Arc::new(cut);
        let state = cut.clone();
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                if *state.borrow() {
                    continue; // refused: dropped at once
                }
                let mut cut = state.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut a, mut b) = (inbound, outbound);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
                        _ = cut.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        Proxy { url, cut }
    }
}

/// Watches the gateway: most sessions seen at once, and client-id-in-use refusals.
#[derive(Default)]
pub struct GatewayWatch {
    pub most_sessions: AtomicU32,
    stop: AtomicBool,
}

/// The cluster under test.
pub struct Rig {
    pub sim: SimHandle,
    pub nodes: Vec<Node>,
    pub gateway: Arc<GatewayWatch>,
    cluster: String,
    nats: String,
    db: TestDb,
    dir: tempfile::TempDir,
}

impl Rig {
    /// The simulator, the database and `count` nodes (the first started leads), or
    /// `None` after a loud warning when NATS or PostgreSQL is missing outside CI.
    pub async fn start(count: usize) -> Option<Rig> {
        Rig::start_with(count, |_| {}).await
    }

    /// [`Rig::start`] with the active profile adjusted by `profile` first.
    pub async fn start_with(
        count: usize,
        adjust: impl FnOnce(&mut ibstream::store::Profile),
    ) -> Option<Rig> {
        let (_, cluster) = bus::jetstream().await?;
        let db = TestDb::postgres().await?;
        let sim = Simulator::start(SimConfig {
            gateway_listen: "127.0.0.1:0".parse().unwrap(),
            control_listen: None,
            tick_interval: Duration::from_millis(100),
            ..SimConfig::default()
        })
        .await
        .expect("simulator starts");
        let store = Store::open(&db.url).await.expect("store opens");
        let mut profile = store.active_profile().await.unwrap();
        profile.host = "127.0.0.1".into();
        profile.port = sim.gateway_addr().port();
        profile.client_id = CLIENT_ID;
        adjust(&mut profile);
        store.save_profile(&profile).await.unwrap();
        store.close().await.unwrap();
        let gateway = Arc::new(GatewayWatch::default());
        tokio::spawn(watch_gateway(sim.control().clone(), gateway.clone()));
        let mut rig = Rig {
            sim,
            nodes: Vec::new(),
            gateway,
            cluster,
            nats: bus::url().trim_start_matches("nats://").to_owned(),
            db,
            dir: tempfile::tempdir().unwrap(),
        };
        for i in 1..=count {
            let node = rig.start_node(&format!("n{i}")).await;
            rig.nodes.push(node);
            if i == 1 {
                rig.wait_leader_connected().await;
            }
        }
        Some(rig)
    }

    /// Starts one more node and waits until it serves.
    pub async fn start_node(&self, name: &str) -> Node {
        let proxy = Proxy::start(self.nats.clone()).await;
        let mut child = Command::new(env!("CARGO_BIN_EXE_ibstream"))
            .args(["serve", "--listen", "127.0.0.1:0", "--node", name])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .args(["--cluster", &proxy.url, "--database-url", &self.db.url])
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(["--backoff-base", "100ms", "--backoff-cap", "500ms"])
            .args(["--health-interval", "500ms"])
            .env("IBSTREAM_MASTER_KEY", "cluster-test-master-secret")
            .env("IBSTREAM_CLUSTER_NAME", &self.cluster)
            .env("IBSTREAM_LEASE_TTL", LEASE_TTL)
            .env("IBSTREAM_LINGER", format!("{}ms", LINGER.as_millis()))
            .env("IBSTREAM_LOG", "info,async_nats=warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ibstream serve");
        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let metrics_tx = addr_tx.clone();
        let pipe = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let addr = || {
                    let addr = line.split("addr=").nth(1)?;
                    Some(addr.split_whitespace().next().unwrap_or("").to_owned())
                };
                if line.contains("gRPC server listening")
                    && let Some(addr) = addr()
                {
                    let _ = addr_tx.send(("grpc", addr));
                } else if line.contains("metrics at /metrics")
                    && let Some(addr) = addr()
                {
                    let _ = metrics_tx.send(("metrics", addr));
                }
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let failed_log = log.clone();
        let addrs: HashMap<&str, String> = tokio::task::spawn_blocking(move || {
            (0..2)
                .map(|_| addr_rx.recv_timeout(WAIT))
                .collect::<Result<_, _>>()
        })
        .await
        .unwrap()
        .unwrap_or_else(|_| panic!("node did not start:\n{}", failed_log.lock().unwrap()));
        Node {
            name: name.to_owned(),
            grpc: format!("http://{}", addrs["grpc"]),
            metrics: format!("http://{}/metrics", addrs["metrics"]),
            child,
            proxy,
            log,
        }
    }

    /// Waits until some node reports a leader whose session is connected; its name.
    pub async fn wait_leader_connected(&self) -> String {
        self.wait_leader(|_| true).await
    }

    /// Waits until the live nodes agree on a connected leader that `accept`s; its name.
    pub async fn wait_leader(&self, accept: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(leader) = self.agreed_leader().await
                && accept(&leader)
            {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "no leader agreed on:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The leader every reachable node names, with its session connected.
    pub async fn agreed_leader(&self) -> Option<String> {
        crate::agree::agreed_among(self.nodes.iter().map(Node::status)).await
    }

    pub fn node(&self, name: &str) -> &Node {
        self.nodes.iter().find(|n| n.name == name).unwrap()
    }

    /// Kills `name` and forgets it.
    pub fn kill(&mut self, name: &str) {
        let i = self.nodes.iter().position(|n| n.name == name).unwrap();
        let mut node = self.nodes.remove(i);
        node.kill();
    }

    /// Every node's log, for a failure's message.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("----- {} -----\n{}", n.name, tail(&n.log(), 60)))
            .collect()
    }

    /// Waits until the gateway's live subscriptions number `count`.
    pub async fn wait_gateway_subscriptions(&self, count: u32, within: Duration) -> u32 {
        let deadline = Instant::now() + within;
        loop {
            let live = self.sim.control().stats().active_market_data_subscriptions;
            if live == count || Instant::now() >= deadline {
                return live;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Client-id-in-use refusals the gateway sent.
    pub fn refusals_326(&self) -> u64 {
        self.sim
            .control()
            .stats()
            .errors_sent
            .get(&326)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.gateway.stop.store(true, Ordering::Relaxed);
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = &self.db;
    }
}

/// Waits until `done` holds, checking every 20 ms; fails naming `what` after `within`.
pub async fn eventually(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

async fn watch_gateway(control: ibstream::sim::SimControl, watch: Arc<GatewayWatch>) {
    while !watch.stop.load(Ordering::Relaxed) {
        let sessions = control.stats().connections;
        watch.most_sessions.fetch_max(sessions, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What one stream saw, with when.
#[derive(Debug, Clone)]
pub enum Seen {
    Quote {
        symbol: String,
        sequence: u64,
        received: Option<prost_types::Timestamp>,
        stale: bool,
    },
    Stale(String),
    Resumed(String),
}

/// A stream's events as they arrive, read in the background.
pub struct Watched {
    pub node: String,
    pub symbols: Vec<String>,
    pub events: Arc<Mutex<Vec<(Instant, Seen)>>>,
}

impl Watched {
    /// Opens a stream of `symbols` on `node` and waits for a quote of each.
    pub async fn open(node: &Node, symbols: &[&str]) -> Watched {
        let mut client = node.market_data().await;
        let instruments = symbols
            .iter()
            .map(|s| pb::Instrument {
                symbol: (*s).into(),
                sec_type: pb::SecurityType::Stock as i32,
                ..Default::default()
            })
            .collect();
        let mut stream = client
            .stream_quotes(pb::StreamQuotesRequest {
                instruments,
                data_policy: 0,
            })
            .await
            .expect("stream opens")
            .into_inner();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let names: Vec<String> = symbols.iter().map(|s| s.to_string()).collect();
        let by_index = names.clone();
        tokio::spawn(async move {
            let _client = client;
            while let Ok(Some(msg)) = stream.message().await {
                let symbol = by_index
                    .get(msg.index as usize)
                    .cloned()
                    .unwrap_or_default();
                let seen = match msg.event {
                    Some(pb::stream_quotes_response::Event::Quote(q)) => Seen::Quote {
                        symbol,
                        sequence: q.sequence,
                        received: q.received_at,
                        stale: q.stale,
                    },
                    Some(pb::stream_quotes_response::Event::Status(s))
                        if s.kind == pb::InstrumentStatusKind::Stale as i32 =>
                    {
                        Seen::Stale(symbol)
                    }
                    Some(pb::stream_quotes_response::Event::Status(s))
                        if s.kind == pb::InstrumentStatusKind::Resumed as i32 =>
                    {
                        Seen::Resumed(symbol)
                    }
                    _ => continue,
                };
                sink.lock().unwrap().push((Instant::now(), seen));
            }
        });
        let watched = Watched {
            node: node.name.clone(),
            symbols: names,
            events,
        };
        let deadline = Instant::now() + WAIT;
        while !watched
            .symbols
            .iter()
            .all(|s| watched.quoted_since(s, None))
        {
            assert!(
                Instant::now() < deadline,
                "no quotes on {} for {symbols:?}",
                node.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        watched
    }

    /// Whether `symbol` had a fresh quote (after `since`, when given).
    pub fn quoted_since(&self, symbol: &str, since: Option<Instant>) -> bool {
        self.first_fresh_after(symbol, since).is_some()
    }

    /// When `symbol` first had a quote (after `since`, when given) with no stale mark
    /// standing before it.
    pub fn first_fresh_after(&self, symbol: &str, since: Option<Instant>) -> Option<Instant> {
        let events = self.events.lock().unwrap();
        let mut stale = false;
        for (at, seen) in events
            .iter()
            .filter(|(at, _)| since.is_none_or(|t| *at >= t))
        {
            match seen {
                Seen::Stale(s) if s == symbol => stale = true,
                Seen::Resumed(s) if s == symbol => stale = false,
                Seen::Quote {
                    symbol: s,
                    stale: false,
                    ..
                } if s == symbol && !stale => return Some(*at),
                _ => {}
            }
        }
        None
    }

    /// When `symbol` was fresh again after going stale after `since`: its first fresh
    /// quote after its first stale mark after `since`.
    pub fn resumed_after(&self, symbol: &str, since: Instant) -> Option<Instant> {
        let stale_at = {
            let events = self.events.lock().unwrap();
            events
                .iter()
                .find(|(at, seen)| *at >= since && matches!(seen, Seen::Stale(s) if s == symbol))
                .map(|(at, _)| *at)?
        };
        self.first_fresh_after(symbol, Some(stale_at))
    }

    /// Whether `symbol` was marked stale after `since`.
    pub fn went_stale_after(&self, symbol: &str, since: Instant) -> bool {
        self.events
            .lock()
            .unwrap()
            .iter()
            .any(|(at, seen)| *at >= since && matches!(seen, Seen::Stale(s) if s == symbol))
    }

    /// Quotes of one instrument that came out of order or twice: a sequence number not
    /// above the one before, or a value received before one already delivered.
    pub fn repeats(&self) -> Vec<String> {
        let events = self.events.lock().unwrap();
        let mut last: HashMap<&str, (u64, Option<&prost_types::Timestamp>)> = HashMap::new();
        let mut out = Vec::new();
        for (_, seen) in events.iter() {
            if let Seen::Quote {
                symbol,
                sequence,
                received,
                ..
            } = seen
            {
                if let Some((seq, at)) = last.get(symbol.as_str()) {
                    let older = match (at, received) {
                        (Some(a), Some(b)) => (b.seconds, b.nanos) < (a.seconds, a.nanos),
                        _ => false,
                    };
                    if sequence <= seq || older {
                        out.push(format!("{symbol}: #{sequence} after #{seq}"));
                    }
                }
                last.insert(symbol, (*sequence, received.as_ref()));
            }
        }
        out
    }
}
