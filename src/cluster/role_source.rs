//! A node's market-data source as its role changes: the IB session while it leads, the
//! leader over the bus while it follows.
//!
//! The fan-out sits on this source for the node's whole life. Each (role, inner
//! generation) the active side reports is a new generation here, so a change of role
//! looks to the fan-out like a new IB session: every feed subscribes again through the
//! side now active, and a subscription asked for under the old side is refused as
//! `LinkDown` instead of reaching the wrong one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::lock;
use crate::bars::source::{BarStream, HistoryAsk, HistorySource};
use crate::bars::spec::WhatToShow;
use crate::fanout::tick::Tick;
use crate::fanout::{
    ChainParams, ContractDetails, ContractSpec, LinkState, MarketDataSource, MarketDataType,
    SourceError, StampedNotice, SymbolMatch, TickStream,
};
use crate::store::StoredBar;

/// Which side serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// This node leads: its own IB session.
    Local,
    /// Another node leads: over the bus.
    Bus,
}

/// The generation handed out for the active side's current session.
#[derive(Debug, Clone, Copy)]
struct Mapping {
    side: Side,
    inner: u64,
    outer: u64,
}

struct Inner {
    local: Arc<dyn MarketDataSource>,
    bus: Arc<dyn MarketDataSource>,
    side: watch::Sender<Side>,
    current: Mutex<Option<Mapping>>,
    /// The last generation handed out; never reused.
    issued: Mutex<u64>,
    link: watch::Sender<LinkState>,
    notices: broadcast::Sender<StampedNotice>,
    cancel: CancellationToken,
}

/// The source a cluster node's fan-out uses.
#[derive(Clone)]
pub struct RoleSource {
    inner: Arc<Inner>,
}

impl RoleSource {
    /// Starts on the bus side (a node follows until it wins the lease).
    pub fn start(local: Arc<dyn MarketDataSource>, bus: Arc<dyn MarketDataSource>) -> RoleSource {
        let (side, _) = watch::channel(Side::Bus);
        let (link, _) = watch::channel(LinkState::default());
        let (notices, _) = broadcast::channel(64);
        let inner = Arc::new(Inner {
            local,
            bus,
            side,
            current: Mutex::new(None),
            issued: Mutex::new(0),
            link,
            notices,
            cancel: CancellationToken::new(),
        });
        let cancel = inner.cancel.clone();
        tokio::spawn({
            let inner = inner.clone();
            async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = inner.follow() => {}
                }
            }
        });
        RoleSource { inner }
    }

    /// Serves from `side` from now on.
    pub fn switch(&self, side: Side) {
        self.inner.side.send_if_modified(|current| {
            let changed = *current != side;
            *current = side;
            changed
        });
    }

    /// The side serving now.
    pub fn side(&self) -> Side {
        *self.inner.side.borrow()
    }

    fn active(&self) -> &Arc<dyn MarketDataSource> {
        self.inner.source(self.side())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Inner {
    fn source(&self, side: Side) -> &Arc<dyn MarketDataSource> {
        match side {
            Side::Local => &self.local,
            Side::Bus => &self.bus,
        }
    }

    /// Follows the active side's link and notices, re-numbering its generations.
    async fn follow(self: Arc<Self>) {
        let mut sides = self.side.subscribe();
        loop {
            let side = *sides.borrow_and_update();
            let source = self.source(side).clone();
            let mut link = source.link_state();
            let mut notices = source.data_notices();
            loop {
                let state = *link.borrow_and_update();
                self.publish(side, state);
                tokio::select! {
                    changed = sides.changed() => {
                        if changed.is_err() { return; }
                        break;
                    }
                    changed = link.changed() => if changed.is_err() { return },
                    notice = notices.recv() => match notice {
                        Ok(n) => self.forward(side, n),
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                }
            }
        }
    }

    /// Shows the active side's session as a generation of this source.
    fn publish(&self, side: Side, state: LinkState) {
        let mut current = lock(&self.current);
        let outer = match (state.generation, *current) {
            (None, _) => {
                *current = None;
                None
            }
            (Some(inner), Some(m)) if m.side == side && m.inner == inner => Some(m.outer),
            (Some(inner), _) => {
                let mut issued = lock(&self.issued);
                *issued += 1;
                *current = Some(Mapping {
                    side,
                    inner,
                    outer: *issued,
                });
                Some(*issued)
            }
        };
        drop(current);
        self.link.send_if_modified(|now| {
            let changed = now.generation != outer;
            now.generation = outer;
            changed
        });
    }

    /// Passes on a notice of the active side's current session.
    fn forward(&self, side: Side, notice: StampedNotice) {
        let mapped = lock(&self.current)
            .and_then(|m| (m.side == side && m.inner == notice.generation).then_some(m.outer));
        if let Some(generation) = mapped {
            let _ = self.notices.send(StampedNotice {
                generation,
                notice: notice.notice,
            });
        }
    }

    /// The active side and its own generation for `outer`, if `outer` is still current.
    fn resolve(&self, outer: u64) -> Option<(Side, u64)> {
        lock(&self.current).and_then(|m| (m.outer == outer).then_some((m.side, m.inner)))
    }
}

impl MarketDataSource for RoleSource {
    fn link_state(&self) -> watch::Receiver<LinkState> {
        self.inner.link.subscribe()
    }

    fn data_notices(&self) -> broadcast::Receiver<StampedNotice> {
        self.inner.notices.subscribe()
    }

    fn subscribe(
        &self,
        generation: u64,
        contract: &ContractSpec,
        data_type: MarketDataType,
    ) -> BoxFuture<'static, Result<TickStream, SourceError>> {
        match self.inner.resolve(generation) {
            Some((side, inner)) => self
                .inner
                .source(side)
                .subscribe(inner, contract, data_type),
            None => async { Err(SourceError::LinkDown) }.boxed(),
        }
    }

    fn snapshot(
        &self,
        contract: &ContractSpec,
        data_type: MarketDataType,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<Tick>, SourceError>> {
        self.active().snapshot(contract, data_type, deadline)
    }

    fn contract_details(
        &self,
        contract: &ContractSpec,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<ContractDetails>, SourceError>> {
        self.active().contract_details(contract, deadline)
    }

    fn matching_symbols(
        &self,
        pattern: &str,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<SymbolMatch>, SourceError>> {
        self.active().matching_symbols(pattern, deadline)
    }

    fn option_params(
        &self,
        underlying: &ContractSpec,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<ChainParams>, SourceError>> {
        self.active().option_params(underlying, deadline)
    }
}

/// A node's historical data as its role changes: its own session while it leads, the
/// leader's (paced there for the cluster) while it follows.
pub struct RoleHistory {
    pub role: RoleSource,
    pub local: Arc<dyn HistorySource>,
    pub bus: Arc<dyn HistorySource>,
}

impl RoleHistory {
    fn active(&self) -> &Arc<dyn HistorySource> {
        match self.role.side() {
            Side::Local => &self.local,
            Side::Bus => &self.bus,
        }
    }
}

impl HistorySource for RoleHistory {
    fn realtime_bars(
        &self,
        contract: &ContractSpec,
        what: WhatToShow,
        regular_hours: bool,
    ) -> BoxFuture<'static, Result<BarStream, SourceError>> {
        self.active().realtime_bars(contract, what, regular_hours)
    }

    fn bars(
        &self,
        ask: HistoryAsk,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<StoredBar>, SourceError>> {
        self.active().bars(ask, deadline)
    }

    fn head_timestamp(
        &self,
        contract: &ContractSpec,
        what: WhatToShow,
        regular_hours: bool,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<i64, SourceError>> {
        self.active()
            .head_timestamp(contract, what, regular_hours, deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::fake::FakeSource;
    use crate::fanout::{DataNotice, FarmKind, SecType};

    fn stock() -> ContractSpec {
        ContractSpec {
            con_id: 1,
            symbol: "AAPL".into(),
            sec_type: SecType::Stock,
            ..ContractSpec::default()
        }
    }

    async fn generation_becomes(
        link: &mut watch::Receiver<LinkState>,
        want: impl Fn(Option<u64>) -> bool,
    ) -> Option<u64> {
        let seen = tokio::time::timeout(
            Duration::from_secs(2),
            link.wait_for(|l| want(l.generation)),
        )
        .await
        .expect("link changed in time")
        .expect("source alive");
        seen.generation
    }

    #[tokio::test]
    async fn a_change_of_role_is_a_new_generation_and_refuses_the_old_sides_requests() {
        let (local, bus) = (FakeSource::new(), FakeSource::new());
        let source = RoleSource::start(local.clone(), bus.clone());
        let mut link = source.link_state();
        bus.set_link(Some(5));
        let following = generation_becomes(&mut link, |g| g.is_some())
            .await
            .unwrap();
        assert!(
            source
                .subscribe(following, &stock(), MarketDataType::Live)
                .await
                .is_ok()
        );
        assert_eq!((bus.counts().0, local.counts().0), (1, 0));

        local.set_link(Some(5)); // the same number on the other side must not pass for it
        source.switch(Side::Local);
        let leading = generation_becomes(&mut link, |g| g.is_some_and(|g| g != following))
            .await
            .unwrap();
        assert!(leading > following, "generations only grow");
        let stale = source
            .subscribe(following, &stock(), MarketDataType::Live)
            .await;
        assert!(
            matches!(stale, Err(SourceError::LinkDown)),
            "an old side's request went through"
        );
        assert!(
            source
                .subscribe(leading, &stock(), MarketDataType::Live)
                .await
                .is_ok()
        );
        assert_eq!((bus.counts().0, local.counts().0), (1, 1));

        local.set_link(None);
        assert_eq!(generation_becomes(&mut link, |g| g.is_none()).await, None);
    }

    #[tokio::test]
    async fn only_the_active_sides_notices_pass_under_its_generation() {
        let (local, bus) = (FakeSource::new(), FakeSource::new());
        let source = RoleSource::start(local.clone(), bus.clone());
        let mut link = source.link_state();
        let mut notices = source.data_notices();
        local.set_link(Some(1));
        bus.set_link(Some(1));
        let following = generation_becomes(&mut link, |g| g.is_some())
            .await
            .unwrap();
        let farm = DataNotice::Farm {
            farm: FarmKind::Equities,
            up: false,
        };
        local.farm(farm); // the inactive side: not passed on
        bus.farm(farm);
        let got = tokio::time::timeout(Duration::from_secs(2), notices.recv())
            .await
            .expect("notice in time")
            .unwrap();
        assert_eq!(got.generation, following);
        assert!(
            notices.try_recv().is_err(),
            "the inactive side's notice passed"
        );
    }
}
