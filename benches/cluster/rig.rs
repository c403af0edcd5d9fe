//! The servers under measure: an in-process simulated gateway, a PostgreSQL database of
//! their own, and `ibstream serve` processes against them, either one plain node or the
//! nodes of a cluster over the test NATS server. Dropping a rig kills its processes and
//! drops its database.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ibstream::proto::ibstream::v1 as pb;
use ibstream::proto::ibstream::v1::connection_service_client::ConnectionServiceClient;
use ibstream::sim::{SimConfig, SimHandle, Simulator};
use ibstream::store::Store;
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::backend::TestDb;
use crate::bus;

/// The client id every node's session uses.
const CLIENT_ID: i32 = 17;
/// The lease's time to live: what a failover waits out at most before a new leader.
pub const LEASE_TTL: &str = "2s";
/// Lines the simulator and the profile allow: the instruments plus room for those a
/// killed node's holds keep lingering while the next run subscribes.
const LINES: u32 = 200;
/// The longest the rig waits for a node to start or a leader to be agreed on.
const WAIT: Duration = Duration::from_secs(60);

/// One `ibstream serve` process.
pub struct Node {
    pub name: String,
    pub url: String,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Node {
    async fn status(&self) -> Option<pb::ConnectionStatus> {
        let channel = Channel::from_shared(self.url.clone())
            .ok()?
            .connect_timeout(Duration::from_secs(1))
            .connect()
            .await
            .ok()?;
        let mut client = ConnectionServiceClient::new(channel);
        let status = tokio::time::timeout(
            Duration::from_secs(2),
            client.get_status(pb::GetStatusRequest {}),
        )
        .await
        .ok()?
        .ok()?;
        Some(status.into_inner())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no goodbye to NATS, the gateway or the lease, as a crash would leave it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The lines of the node's log that report a warning or an error.
    pub fn complaints(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            // Every node warns of it at start: the bench creates no API keys.
            .filter(|l| !l.contains("NO API KEYS EXIST"))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A simulator, a database and the nodes serving from them.
pub struct Rig {
    /// The gateway; it stops when dropped.
    _sim: SimHandle,
    pub nodes: Vec<Node>,
    /// `Some(cluster name)` for a cluster, `None` for one plain node.
    cluster: Option<String>,
    db: TestDb,
    dir: tempfile::TempDir,
    /// Warnings and errors of the nodes killed so far, kept for the report.
    pub dead_complaints: Vec<String>,
}

impl Rig {
    /// A cluster of `count` nodes (`n1` starts first and leads), or with `count == 0`
    /// one plain node without `--cluster`; `None` after a loud warning when NATS or
    /// PostgreSQL is unreachable outside CI.
    pub async fn start(count: usize, tick: Duration) -> Option<Rig> {
        let (_, cluster) = bus::jetstream().await?;
        let db = TestDb::postgres().await?;
        let sim = Simulator::start(SimConfig {
            gateway_listen: "127.0.0.1:0".parse().unwrap(),
            control_listen: None,
            tick_interval: tick,
            line_limit: LINES,
            ..SimConfig::default()
        })
        .await
        .expect("simulator starts");
        let store = Store::open(&db.url).await.expect("store opens");
        let mut profile = store.active_profile().await.unwrap();
        profile.host = "127.0.0.1".into();
        profile.port = sim.gateway_addr().port();
        profile.client_id = CLIENT_ID;
        profile.line_budget = LINES;
        store.save_profile(&profile).await.unwrap();
        store.close().await.unwrap();
        let mut rig = Rig {
            _sim: sim,
            nodes: Vec::new(),
            cluster: (count > 0).then_some(cluster),
            db,
            dir: tempfile::tempdir().unwrap(),
            dead_complaints: Vec::new(),
        };
        for i in 1..=count.max(1) {
            let node = rig.start_node(&format!("n{i}")).await;
            rig.nodes.push(node);
            if i == 1 {
                rig.wait_leader(|_| true).await;
            }
        }
        Some(rig)
    }

    /// Starts one more node and waits until it serves gRPC.
    pub async fn start_node(&self, name: &str) -> Node {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ibstream"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--node", name])
            .args(["--database-url", &self.db.url])
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(["--backoff-base", "100ms", "--backoff-cap", "500ms"])
            .args(["--health-interval", "500ms"])
            .env("IBSTREAM_MASTER_KEY", "cluster-bench-master-secret")
            .env("IBSTREAM_LOG", "info,async_nats=warn")
            .env("NO_COLOR", "1");
        if let Some(cluster) = &self.cluster {
            command
                .args(["--cluster", &bus::url()])
                .env("IBSTREAM_CLUSTER_NAME", cluster)
                .env("IBSTREAM_LEASE_TTL", LEASE_TTL);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ibstream serve");
        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if line.contains("gRPC server listening")
                    && let Some(addr) = line.split("addr=").nth(1)
                {
                    let addr = addr.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = addr_tx.send(addr);
                }
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let addr = tokio::task::spawn_blocking(move || addr_rx.recv_timeout(WAIT))
            .await
            .unwrap()
            .unwrap_or_else(|_| panic!("node {name} did not start:\n{}", log.lock().unwrap()));
        Node {
            name: name.to_owned(),
            url: format!("http://{addr}"),
            child,
            log,
        }
    }

    /// Waits until every node is connected and names the same leader (a plain node
    /// names none), which `accept`s; its name.
    pub async fn wait_leader(&self, accept: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(leader) = self.agreed_leader().await
                && accept(&leader)
            {
                return leader;
            }
            assert!(Instant::now() < deadline, "no leader agreed on");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn agreed_leader(&self) -> Option<String> {
        if self.cluster.is_none() {
            // One plain node: it leads itself once its session is up.
            let node = self.nodes.first()?;
            let connected = node.status().await?.state == pb::ConnectionState::Connected as i32;
            return connected.then(|| node.name.clone());
        }
        crate::agree::agreed_among(self.nodes.iter().map(Node::status)).await
    }

    pub fn node(&self, name: &str) -> &Node {
        self.nodes.iter().find(|n| n.name == name).unwrap()
    }

    /// SIGKILLs `name` and forgets it (its complaints are kept).
    pub fn kill(&mut self, name: &str) {
        let i = self.nodes.iter().position(|n| n.name == name).unwrap();
        let mut node = self.nodes.remove(i);
        node.kill();
        self.dead_complaints.extend(
            node.complaints()
                .into_iter()
                .map(|l| format!("{}: {l}", node.name)),
        );
    }

    /// The warnings and errors every node logged, the killed ones included.
    pub fn complaints(&self) -> Vec<String> {
        let mut all = self.dead_complaints.clone();
        for node in &self.nodes {
            all.extend(
                node.complaints()
                    .into_iter()
                    .map(|l| format!("{}: {l}", node.name)),
            );
        }
        all
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        // The database is dropped after the nodes (field order), so none holds it open.
        let _ = &self.db;
    }
}
