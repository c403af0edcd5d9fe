//! The data plane against a real NATS server at 127.0.0.1:4222 (or `IBSTREAM_TEST_NATS`):
//! a leader's fan-out over a scripted source, its relay, and followers whose fan-outs run
//! over [`BusSource`]s. Each test has a cluster name of its own, so they run in parallel.

use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use tokio::sync::watch;

use super::wire;
use super::{BusSource, BusSourceConfig, Relay, RelayConfig, Subjects};
use crate::fanout::fake::FakeSource;
use crate::fanout::tick::{PriceField, Tick};
use crate::fanout::{
    ChainParams, ContractDetails, ContractSpec, DataNotice, Fanout, FanoutSettings, FarmKind,
    FeedRef, FeedStatus, FeedView, MarketDataSource, MarketDataType, SecType, SourceError,
};
use crate::metrics::Metrics;
use crate::proto::ibstream::cluster::v1 as pb;

/// Every wait in these tests ends by then.
const PATIENCE: Duration = Duration::from_secs(10);

/// A client of the test server, or `None` after a loud warning (a failure under CI).
async fn nats() -> Option<async_nats::Client> {
    let url =
        std::env::var("IBSTREAM_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let connect = async_nats::ConnectOptions::new()
        .max_reconnects(Some(0))
        .connect(url.as_str());
    match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(client)) => Some(client),
        other => {
            let why = format!("{other:?}");
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "NATS at {url} is unreachable under CI: {why}"
            );
            eprintln!(
                "\n!!!!!!!! WARNING: NATS at {url} is unreachable; this cluster test is SKIPPED \
                 (install nats-server and run it) !!!!!!!!\n"
            );
            None
        }
    }
}

fn stock(con_id: i64) -> Arc<ContractSpec> {
    Arc::new(ContractSpec {
        con_id,
        symbol: format!("S{con_id}"),
        sec_type: SecType::Stock,
        exchange: "SMART".into(),
        currency: "USD".into(),
        ..ContractSpec::default()
    })
}

fn bid(v: f64) -> Tick {
    Tick::Price(PriceField::Bid, v)
}

/// A leader: its scripted source, fan-out and relay.
struct Leader {
    nats: async_nats::Client,
    cluster: String,
    source: Arc<FakeSource>,
    fanout: Fanout,
    relay: Relay,
}

const TERM: u64 = 5;

async fn leader(settings: FanoutSettings) -> Option<Leader> {
    let nats = nats().await?;
    let cluster = format!("t{:016x}", rand::random::<u64>());
    let source = FakeSource::new();
    let dyn_source: Arc<dyn MarketDataSource> = source.clone();
    let fanout = Fanout::new(dyn_source, settings, Arc::new(Metrics::default()));
    let relay = start_relay(&nats, &cluster, &fanout, TERM).await;
    Some(Leader {
        nats,
        cluster,
        source,
        fanout,
        relay,
    })
}

async fn start_relay(
    nats: &async_nats::Client,
    cluster: &str,
    fanout: &Fanout,
    term: u64,
) -> Relay {
    let config = RelayConfig {
        cluster: cluster.into(),
        term,
        interest_ttl: Duration::from_millis(600),
        link_every: Duration::from_millis(100),
    };
    Relay::start(nats.clone(), fanout.clone(), None, config)
        .await
        .unwrap()
}

fn lingering(ms: u64) -> FanoutSettings {
    FanoutSettings {
        linger: Duration::from_millis(ms),
        ..FanoutSettings::default()
    }
}

/// A follower of `leader`: its bus source (on a connection of its own) and fan-out.
async fn follower(
    leader: &Leader,
    node: &str,
    settings: FanoutSettings,
) -> (Arc<BusSource>, Fanout) {
    let client = nats().await.unwrap();
    let config = BusSourceConfig {
        cluster: leader.cluster.clone(),
        node: node.into(),
        renew_every: Duration::from_millis(100),
        link_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
    };
    let source = Arc::new(BusSource::start(client, config).await.unwrap());
    let dyn_source: Arc<dyn MarketDataSource> = source.clone();
    let fanout = Fanout::new(dyn_source, settings, Arc::new(Metrics::default()));
    (source, fanout)
}

/// Follower "a" watching `con_id`, once the leader's bid `first` reached it. The source,
/// fan-out and feed come back to be kept alive (and used).
async fn watching(
    leader: &Leader,
    con_id: i64,
    first: f64,
) -> (
    Arc<BusSource>,
    Fanout,
    FeedRef,
    watch::Receiver<Arc<FeedView>>,
) {
    let (bus, fanout) = follower(leader, "a", FanoutSettings::default()).await;
    let feed = fanout.acquire(&[stock(con_id)], false).unwrap().remove(0);
    let mut rx = feed.watch();
    tick_through(leader, con_id, first, &mut rx).await;
    (bus, fanout, feed, rx)
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let waited = async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(PATIENCE, waited)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

async fn view_until(
    rx: &mut watch::Receiver<Arc<FeedView>>,
    what: &str,
    pred: impl FnMut(&Arc<FeedView>) -> bool,
) -> Arc<FeedView> {
    let seen = tokio::time::timeout(PATIENCE, rx.wait_for(pred))
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
    seen.unwrap().clone()
}

/// Sends `tick` once the leader subscribed `con_id` and waits until `rx` shows the bid.
async fn tick_through(
    leader: &Leader,
    con_id: i64,
    v: f64,
    rx: &mut watch::Receiver<Arc<FeedView>>,
) {
    until("the leader's subscription", || {
        leader.source.tick(con_id, bid(v))
    })
    .await;
    view_until(rx, "the relayed bid", |view| view.quote.bid == Some(v)).await;
}

#[tokio::test]
async fn a_follower_stream_gets_the_leaders_ticks() {
    let Some(leader) = leader(FanoutSettings::default()).await else {
        return;
    };
    let (_bus, _fanout, _feed, mut rx) = watching(&leader, 1, 10.5).await;
    assert_eq!(rx.borrow().status, FeedStatus::Live);
    // A field the leader clears is cleared here too.
    assert!(leader.source.tick(1, bid(-1.0)));
    view_until(&mut rx, "the cleared bid", |v| v.quote.bid.is_none()).await;
}

#[tokio::test]
async fn a_refusal_at_the_leader_ends_the_follower_stream_with_its_error() {
    let Some(leader) = leader(FanoutSettings::default()).await else {
        return;
    };
    leader.source.no_live.lock().unwrap().insert(3);
    let (_bus, fanout) = follower(&leader, "a", FanoutSettings::default()).await;
    let feed = fanout.acquire(&[stock(3)], false).unwrap().remove(0);
    let view = view_until(&mut feed.watch(), "the refusal", |v| {
        matches!(v.status, FeedStatus::Failed(_))
    })
    .await;
    assert!(
        matches!(
            view.status,
            FeedStatus::Failed(SourceError::NoPermission(_))
        ),
        "{:?}",
        view.status
    );
}

#[tokio::test]
async fn many_streams_on_two_followers_make_one_subscription_at_the_leader() {
    let Some(leader) = leader(lingering(100)).await else {
        return;
    };
    let (_a, fa) = follower(&leader, "a", lingering(0)).await;
    let (_b, fb) = follower(&leader, "b", lingering(0)).await;
    let mut held_a: Vec<_> = (0..3)
        .map(|_| fa.acquire(&[stock(1)], false).unwrap().remove(0))
        .collect();
    let mut held_b: Vec<_> = (0..3)
        .map(|_| fb.acquire(&[stock(1)], false).unwrap().remove(0))
        .collect();
    until("both followers' interest", || {
        leader.relay.held().get(&1) == Some(&2)
    })
    .await;
    until("the leader's subscription", || {
        leader.source.tick(1, bid(7.0))
    })
    .await;
    for f in held_a.iter().chain(&held_b) {
        view_until(&mut f.watch(), "the relayed bid", |v| {
            v.quote.bid == Some(7.0)
        })
        .await;
    }
    assert_eq!(leader.source.counts(), (1, 1));

    // A follower whose streams all ended says so in its next renewal.
    held_a.clear();
    until("a's release", || leader.relay.held().get(&1) == Some(&1)).await;
    assert_eq!(leader.source.counts(), (1, 1));
    held_b.clear();
    until("the leader's cancel", || leader.source.counts() == (1, 0)).await;
    assert!(leader.relay.held().is_empty());
}

#[tokio::test]
async fn a_follower_that_stops_renewing_has_its_instruments_released() {
    let Some(leader) = leader(lingering(100)).await else {
        return;
    };
    let (bus, fanout) = follower(&leader, "a", FanoutSettings::default()).await;
    let feed = fanout.acquire(&[stock(1)], false).unwrap().remove(0);
    tick_through(&leader, 1, 1.0, &mut feed.watch()).await;
    bus.stop();
    // The follower still holds its stream: only the missing renewals release it.
    until("the expiry and the leader's cancel", || {
        leader.source.counts() == (1, 0)
    })
    .await;
    assert!(leader.relay.held().is_empty());
    drop(feed);
}

#[tokio::test]
async fn the_line_budget_is_the_leaders() {
    let settings = FanoutSettings {
        line_budget: 1,
        ..FanoutSettings::default()
    };
    let Some(leader) = leader(settings).await else {
        return;
    };
    let (_a, fa) = follower(&leader, "a", FanoutSettings::default()).await;
    let (_b, fb) = follower(&leader, "b", FanoutSettings::default()).await;
    let first = fa.acquire(&[stock(1)], false).unwrap().remove(0);
    tick_through(&leader, 1, 1.0, &mut first.watch()).await;
    // b's own budget has room; the cluster's has not.
    let second = fb.acquire(&[stock(2)], false).unwrap().remove(0);
    let view = view_until(&mut second.watch(), "the refusal", |v| {
        matches!(v.status, FeedStatus::Failed(_))
    })
    .await;
    match &view.status {
        FeedStatus::Failed(SourceError::LineLimit(m)) => {
            assert!(m.contains("1 of 1 lines"), "{m}")
        }
        other => panic!("expected the line limit, got {other:?}"),
    }
    assert_eq!(leader.source.counts(), (1, 1));
    assert_eq!(leader.relay.held().get(&2), None);
}

#[tokio::test]
async fn values_of_an_older_term_are_ignored() {
    let Some(leader) = leader(FanoutSettings::default()).await else {
        return;
    };
    let (_bus, _fanout, _feed, mut rx) = watching(&leader, 1, 1.0).await;
    // A deposed leader's late messages: a failure that would end the stream for good,
    // and a value far ahead in sequence.
    let subject = Subjects::new(&leader.cluster).unwrap().quote(1);
    let failed = pb::FeedValue {
        term: TERM - 1,
        con_id: 1,
        sequence: 1_000,
        status: pb::feed_value::Status::Failed.into(),
        error: Some(wire::error_to_pb(&SourceError::NotFound("gone".into()))),
        ..Default::default()
    };
    let mut late = wire::value_to_pb(TERM - 1, &rx.borrow());
    late.bid = Some(999.0);
    late.sequence = 2_000;
    for forged in [failed, late] {
        leader
            .nats
            .publish(subject.clone(), forged.encode_to_vec().into())
            .await
            .unwrap();
    }
    // The relay publishes on the same connection: what it sends next arrives after them.
    leader.nats.flush().await.unwrap();
    assert!(leader.source.tick(1, bid(2.0)));
    let view = view_until(&mut rx, "the leader's next value", |v| {
        v.quote.bid == Some(2.0)
    })
    .await;
    assert_eq!(view.status, FeedStatus::Live);
}

#[tokio::test]
async fn hostile_bytes_on_the_bus_crash_nothing() {
    let Some(leader) = leader(FanoutSettings::default()).await else {
        return;
    };
    let (_bus, _fanout, _feed, mut rx) = watching(&leader, 1, 1.0).await;
    let s = Subjects::new(&leader.cluster).unwrap();
    let garbage: [&[u8]; 4] = [
        b"\xff\xff\xff\xff\xff",
        b"\x0a\xff\x01",
        b"not a message",
        b"",
    ];
    for subject in [s.quote(1), s.link(), s.notice(), s.renew()] {
        for g in garbage {
            leader
                .nats
                .publish(subject.clone(), g.to_vec().into())
                .await
                .unwrap();
        }
    }
    // Decodable, but naming a status and kinds no node knows.
    let odd = pb::FeedValue {
        term: TERM,
        con_id: 1,
        sequence: u64::MAX,
        status: 77,
        ..Default::default()
    };
    leader
        .nats
        .publish(s.quote(1), odd.encode_to_vec().into())
        .await
        .unwrap();
    for subject in [s.interest(), s.lookup()] {
        let reply = leader
            .nats
            .request(subject.clone(), b"\xff\xff\xff".to_vec().into())
            .await
            .unwrap();
        let error = if subject == s.interest() {
            match wire::decode::<pb::InterestReply>(&reply.payload)
                .unwrap()
                .result
            {
                Some(pb::interest_reply::Result::Error(e)) => e,
                other => panic!("{other:?}"),
            }
        } else {
            match wire::decode::<pb::LookupReply>(&reply.payload)
                .unwrap()
                .result
            {
                Some(pb::lookup_reply::Result::Error(e)) => e,
                other => panic!("{other:?}"),
            }
        };
        let error = wire::error_from_pb(&error).unwrap();
        assert!(error.to_string().contains("undecodable"), "{error}");
    }
    leader.nats.flush().await.unwrap();
    // Everything still works, and the odd value was not taken for the newest.
    assert!(leader.source.tick(1, bid(3.0)));
    let view = view_until(&mut rx, "the next value", |v| v.quote.bid == Some(3.0)).await;
    assert_eq!(view.status, FeedStatus::Live);
    assert_eq!(leader.relay.held().get(&1), Some(&1));
}

#[tokio::test]
async fn look_ups_go_through_the_relay() {
    let Some(leader) = leader(FanoutSettings::default()).await else {
        return;
    };
    let details = ContractDetails {
        contract: ContractSpec {
            con_id: 265598,
            ..(*stock(265598)).clone()
        },
        long_name: "APPLE INC".into(),
        min_tick: 0.01,
        valid_exchanges: vec!["SMART".into(), "NASDAQ".into()],
        ..ContractDetails::default()
    };
    leader
        .source
        .details
        .lock()
        .unwrap()
        .insert("AAPL".into(), details.clone());
    let chain = ChainParams {
        exchange: "SMART".into(),
        underlying_con_id: 265598,
        trading_class: "AAPL".into(),
        multiplier: "100".into(),
        expirations: vec!["20991217".into()],
        strikes: vec![100.0, 105.0],
    };
    leader.source.chain.lock().unwrap().push(chain.clone());
    let (bus, fanout) = follower(&leader, "a", FanoutSettings::default()).await;
    let deadline = Duration::from_secs(2);
    let query = ContractSpec {
        symbol: "AAPL".into(),
        ..ContractSpec::default()
    };
    assert_eq!(
        bus.contract_details(&query, deadline).await,
        Ok(vec![details])
    );
    let unknown = ContractSpec {
        symbol: "NOPE".into(),
        ..ContractSpec::default()
    };
    assert!(matches!(
        bus.contract_details(&unknown, deadline).await,
        Err(SourceError::NotFound(_))
    ));
    assert_eq!(
        bus.option_params(&stock(265598), deadline).await,
        Ok(vec![chain])
    );
    assert_eq!(bus.matching_symbols("AA", deadline).await, Ok(Vec::new()));
    // A snapshot of an instrument the leader holds is its cached value; of another, IB's
    // answer (the scripted source never gives one).
    let feed = fanout.acquire(&[stock(1)], false).unwrap().remove(0);
    tick_through(&leader, 1, 4.5, &mut feed.watch()).await;
    let quote = fanout.snapshot(&stock(1), false, deadline).await.unwrap();
    assert_eq!(quote.bid, Some(4.5));
    let ticks = bus
        .snapshot(&stock(1), MarketDataType::Live, deadline)
        .await
        .unwrap();
    assert!(ticks.contains(&bid(4.5)), "{ticks:?}");
    assert_eq!(
        bus.snapshot(&stock(2), MarketDataType::Live, deadline)
            .await,
        Err(SourceError::Deadline(deadline))
    );
}

#[tokio::test]
async fn a_new_term_makes_the_followers_subscribe_again() {
    let Some(leader) = leader(FanoutSettings::default()).await else {
        return;
    };
    let (bus, fanout) = follower(&leader, "a", FanoutSettings::default()).await;
    let feed = fanout.acquire(&[stock(1)], false).unwrap().remove(0);
    let mut rx = feed.watch();
    tick_through(&leader, 1, 1.0, &mut rx).await;
    let first = *bus.link_state().borrow();
    let Leader {
        nats,
        source,
        fanout: leader_fanout,
        relay,
        cluster,
    } = leader;
    drop(relay);
    let next = start_relay(&nats, &cluster, &leader_fanout, TERM + 2).await;
    until("the new term", || bus.term() == TERM + 2).await;
    assert_ne!(*bus.link_state().borrow(), first);
    until("the interest at the new leader", || {
        next.held().get(&1) == Some(&1)
    })
    .await;
    let again = Leader {
        nats,
        cluster,
        source,
        fanout: leader_fanout,
        relay: next,
    };
    tick_through(&again, 1, 2.0, &mut rx).await;
}

#[tokio::test]
async fn the_followers_see_what_the_leader_sees_of_its_session() {
    let Some(leader) = leader(FanoutSettings::default()).await else {
        return;
    };
    let (_bus, _fanout, _feed, mut rx) = watching(&leader, 1, 1.0).await;
    let stale = |v: &Arc<FeedView>| v.status == FeedStatus::Stale && v.quote.stale;
    let live = |v: &Arc<FeedView>| v.status == FeedStatus::Live && !v.quote.stale;

    // The farm serving the instrument goes down at the leader, then comes back.
    let farm = |up| DataNotice::Farm {
        farm: FarmKind::Equities,
        up,
    };
    leader.source.farm(farm(false));
    let view = view_until(&mut rx, "stale at the farm's loss", stale).await;
    assert_eq!(view.quote.bid, Some(1.0));
    leader.source.farm(farm(true));
    view_until(&mut rx, "fresh at the farm's return", live).await;

    // The leader's session drops and a new one starts: the follower subscribes again.
    leader.source.set_link(None);
    view_until(&mut rx, "stale without a session", stale).await;
    leader.source.set_link(Some(2));
    until("the new session's subscription", || {
        leader.source.last_sub_type(1).is_some_and(|(g, _)| g == 2)
            && leader.source.tick(1, bid(2.0))
    })
    .await;
    view_until(&mut rx, "fresh in the new session", |v| {
        live(v) && v.quote.bid == Some(2.0)
    })
    .await;

    // The leader falls silent.
    let Leader { relay, .. } = leader;
    drop(relay);
    view_until(&mut rx, "stale without a leader", stale).await;
}

#[tokio::test]
async fn the_leaders_notices_arrive_stamped_with_the_followers_generation() {
    let Some(leader) = leader(FanoutSettings::default()).await else {
        return;
    };
    let (bus, _fanout) = follower(&leader, "a", FanoutSettings::default()).await;
    let mut link = bus.link_state();
    let generation = *tokio::time::timeout(PATIENCE, link.wait_for(|l| l.generation.is_some()))
        .await
        .unwrap()
        .unwrap();
    let mut notices = bus.data_notices();
    let lost = DataNotice::ConnectivityRestored { data_lost: true };
    // Sent until one arrives: the follower subscribed before, but the relay's notice
    // task may not have started listening to the source yet.
    let received = tokio::time::timeout(PATIENCE, async {
        loop {
            leader.source.farm(lost);
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(100), notices.recv()).await
            {
                return n;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(received.notice, lost);
    assert_eq!(Some(received.generation), generation.generation);
}
