//! A server as one node of a cluster: joins the bus, takes part in the election, and
//! switches its fan-out between its own IB session (while it leads) and the leader's
//! relay (while it follows).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::api::convert::connection_status;
use crate::cluster::admin::{AdminServer, Handler};
use crate::cluster::lock;
use crate::cluster::members::{Members, Report};
use crate::cluster::{
    BusSource, BusSourceConfig, ClusterHandle, HistoryPort, Leadership, Lease, LeaseConfig, Relay,
    RelayConfig, Role, RoleSource, SessionOp, Side, Subjects, run_node,
};
use crate::config::ClusterConfig;
use crate::fanout::{Fanout, IbSource, MarketDataSource};
use crate::ib::Session;
use crate::metrics::Metrics;
use crate::proto::ibstream::cluster::v1 as pb;
use prost::Message as _;

/// How often a node renews its instruments with the leader; the leader lets a node's
/// instruments go after [`INTEREST_TTL`] without a renewal (then the linger applies).
const RENEW_EVERY: Duration = Duration::from_secs(1);
const INTEREST_TTL: Duration = Duration::from_secs(3);
/// How often the leader says its session is up when nothing changes, and how long the
/// others wait before counting a silent leader's session as down.
const LINK_EVERY: Duration = Duration::from_millis(500);
const LINK_TIMEOUT: Duration = Duration::from_secs(2);
/// How often each node says who it is.
const PRESENCE_EVERY: Duration = Duration::from_secs(1);
/// How long the bus may take to answer at start-up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A node's cluster machinery, joined but not yet electing.
pub struct Joined {
    pub client: async_nats::Client,
    pub node: String,
    pub source: RoleSource,
    /// The leader over the bus: the follower's side of `source`, and its historical data.
    pub bus: Arc<BusSource>,
}

/// The node's name: configured, or host name and process id.
pub fn node_name(config: &ClusterConfig) -> String {
    config.node.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| crate::cluster::valid_node_name(h))
            .unwrap_or_else(|| "node".to_owned());
        format!("{host}-{}", std::process::id())
    })
}

/// Connects to the bus and builds the source the node's fan-out sits on. Refuses a
/// store other than PostgreSQL: the nodes share their profiles, keys and credentials.
pub async fn join(
    config: &ClusterConfig,
    url: &str,
    store_backend: &str,
    session: &Session,
    request_timeout: Duration,
) -> anyhow::Result<Joined> {
    anyhow::ensure!(
        store_backend == "postgres",
        "a cluster keeps its store in PostgreSQL, shared by every node; this node was given \
         {store_backend}: set database_url (or --database-url) to the cluster's postgres:// URL"
    );
    let node = node_name(config);
    let client = tokio::time::timeout(
        CONNECT_TIMEOUT,
        async_nats::ConnectOptions::new()
            .name(format!("ibstream {node}"))
            .connect(url),
    )
    .await
    .map_err(|_| anyhow::anyhow!("no answer within {CONNECT_TIMEOUT:?}"))
    .and_then(|c| c.map_err(anyhow::Error::from))
    .with_context(|| format!("cannot reach the cluster's NATS server at {url}"))?;
    let bus = BusSource::start(
        client.clone(),
        BusSourceConfig {
            cluster: config.name.clone(),
            node: node.clone(),
            renew_every: RENEW_EVERY,
            link_timeout: LINK_TIMEOUT,
            request_timeout,
        },
    )
    .await?;
    let bus = Arc::new(bus);
    let local: Arc<dyn MarketDataSource> = IbSource::new(session);
    let source = RoleSource::start(local, bus.clone());
    Ok(Joined {
        client,
        node,
        source,
        bus,
    })
}

/// What the running node needs besides the parts the services share.
pub struct Electing<'a> {
    pub config: &'a ClusterConfig,
    pub joined: Joined,
    pub session: Session,
    pub fanout: Fanout,
    /// The session's historical data and pacer, served to the others while leading.
    pub history: HistoryPort,
    pub metrics: Arc<Metrics>,
    pub shutdown: CancellationToken,
}

/// Starts the election and the membership; the node follows until it wins the lease.
pub async fn elect(e: Electing<'_>) -> anyhow::Result<ClusterHandle> {
    let Electing {
        config,
        joined,
        session,
        fanout,
        history,
        metrics,
        shutdown,
    } = e;
    let Joined {
        client,
        node,
        source,
        bus: _,
    } = joined;
    metrics.follow_bus(client.statistics());
    metrics.cluster_leader.set(0);
    let js = async_nats::jetstream::new(client.clone());
    let lease = Lease::open(
        &js,
        LeaseConfig {
            bucket: format!("ibstream-{}-lease", config.name),
            node: node.clone(),
            ttl: config.lease_ttl,
        },
    )
    .await?;
    let (roles_tx, roles) = watch::channel(Role::Follower {
        leader: None,
        term: 0,
    });
    let held = Arc::new(NodeLeadership(Arc::new(LeaderParts {
        client: client.clone(),
        cluster: config.name.clone(),
        session: session.clone(),
        source,
        fanout: fanout.clone(),
        history,
        handler: session_handler(&session, &metrics),
        metrics: metrics.clone(),
        leading: Mutex::default(),
    })));
    let done = CancellationToken::new();
    tokio::spawn({
        let (stop, done) = (shutdown.clone(), done.clone());
        async move {
            run_node(lease, held, roles_tx, stop).await;
            done.cancel();
        }
    });
    let members = Arc::new(
        Members::start(
            client.clone(),
            &config.name,
            &node,
            PRESENCE_EVERY,
            presence_report(&session, &fanout, &metrics, roles.clone()),
        )
        .await?,
    );
    tokio::spawn(nudge_on_change(
        session.clone(),
        roles.clone(),
        members.clone(),
        metrics,
        shutdown,
    ));
    let subjects = Subjects::new(&config.name)?;
    Ok(ClusterHandle::new(
        client, subjects, node, roles, members, done,
    ))
}

/// What this node says of itself: its role, its load, and while it leads, its session.
fn presence_report(
    session: &Session,
    fanout: &Fanout,
    metrics: &Arc<Metrics>,
    roles: watch::Receiver<Role>,
) -> Report {
    let (session, fanout, metrics) = (session.clone(), fanout.clone(), metrics.clone());
    Arc::new(move || {
        let role = roles.borrow().clone();
        let status = if role.is_leader() {
            connection_status(&session.status(), &metrics, &session.pacer()).encode_to_vec()
        } else {
            Vec::new()
        };
        pb::Presence {
            node: String::new(),
            term: role.term(),
            leader: role.is_leader(),
            streams: u32::try_from(metrics.streams_open.get()).unwrap_or(0),
            instruments: u32::try_from(fanout.list().iter().filter(|s| !s.lingering).count())
                .unwrap_or(u32::MAX),
            status,
        }
    })
}

/// Speaks at once when the session or the role changes, so other nodes see the
/// leader's session as it moves; keeps the role metrics current.
async fn nudge_on_change(
    session: Session,
    mut roles: watch::Receiver<Role>,
    members: Arc<Members>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut status = session.watch_status();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = status.changed() => if changed.is_err() { return },
            changed = roles.changed() => {
                if changed.is_err() { return }
                let role = roles.borrow_and_update().clone();
                metrics.cluster_leader.set(i64::from(role.is_leader()));
                metrics.cluster_term.set(i64::try_from(role.term()).unwrap_or(i64::MAX));
            }
        }
        members.nudge();
    }
}

/// How the leader carries out a command another node forwarded.
fn session_handler(session: &Session, metrics: &Arc<Metrics>) -> Handler {
    let (session, metrics) = (session.clone(), metrics.clone());
    Arc::new(move |op| {
        let (session, metrics) = (session.clone(), metrics.clone());
        Box::pin(async move {
            let done = match op {
                SessionOp::Connect => session.connect().await,
                SessionOp::Disconnect => session.disconnect().await,
                SessionOp::Reconnect => session.reconnect().await,
            };
            match done {
                Ok(status) => Ok(connection_status(&status, &metrics, &session.pacer())),
                Err(e) => {
                    let status = tonic::Status::from(e);
                    Err((status.code() as i32, status.message().to_owned()))
                }
            }
        })
    })
}

/// What a leading node holds besides the session.
struct Leading {
    _relay: Relay,
    _admin: AdminServer,
}

/// Leading a cluster: the session, the relay serving the other nodes, and the answers to
/// their session commands.
struct NodeLeadership(Arc<LeaderParts>);

struct LeaderParts {
    client: async_nats::Client,
    cluster: String,
    session: Session,
    source: RoleSource,
    fanout: Fanout,
    history: HistoryPort,
    handler: Handler,
    metrics: Arc<Metrics>,
    leading: Mutex<Option<Leading>>,
}

impl Leadership for NodeLeadership {
    fn lead(&self, term: u64) -> BoxFuture<'static, ()> {
        let this = self.0.clone();
        Box::pin(async move {
            this.source.switch(Side::Local);
            let relay = Relay::start(
                this.client.clone(),
                this.fanout.clone(),
                Some(this.history.clone()),
                RelayConfig {
                    cluster: this.cluster.clone(),
                    term,
                    interest_ttl: INTEREST_TTL,
                    link_every: LINK_EVERY,
                },
            )
            .await;
            let admin =
                AdminServer::start(this.client.clone(), &this.cluster, this.handler.clone()).await;
            match (relay, admin) {
                (Ok(relay), Ok(admin)) => {
                    *lock(&this.leading) = Some(Leading {
                        _relay: relay,
                        _admin: admin,
                    });
                }
                (Err(e), _) | (_, Err(e)) => {
                    // The other nodes cannot be served; the session still is, for this
                    // node's own streams, and the lease keeps others from a second one.
                    tracing::error!(error = %e, "the leader cannot serve the other nodes");
                }
            }
            this.metrics.cluster_leader.set(1);
            Leadership::lead(&this.session, term).await;
        })
    }

    fn step_down(&self) -> BoxFuture<'static, ()> {
        let this = self.0.clone();
        Box::pin(async move {
            // The session first: another node may be about to connect with its client id.
            Leadership::step_down(&this.session).await;
            lock(&this.leading).take();
            this.source.switch(Side::Bus);
            this.metrics.cluster_leader.set(0);
        })
    }
}
