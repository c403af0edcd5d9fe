//! One task per instrument: owns the IB subscription, folds ticks into the last value,
//! publishes it on a `watch` channel (readers see the newest value, never a backlog),
//! marks it stale while the session or its farm is down or while its data pauses for
//! much longer than usual ([`silence`]), and requests it again in every new session.

pub mod silence;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures::{FutureExt, StreamExt};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::encoded::EncodedOnce;
use super::source::{
    DataNotice, LinkState, MarketDataSource, SourceError, SourceEvent, StampedNotice, TickStream,
};
use super::tick::{Tick, apply};
use super::types::{ContractSpec, FarmKind, MarketDataType, OptionExtras, Quote};
use crate::metrics::Metrics;
use silence::Cadence;

/// Where a feed stands.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedStatus {
    /// Requested, no data yet.
    Pending,
    /// Fresh data flowing.
    Live,
    /// The session or the farm serving the instrument is down, or its data paused for
    /// much longer than usual; the values are old.
    Stale,
    /// IB refused the instrument for good (unknown, no permission, line limit …).
    Failed(SourceError),
}

/// The published state of one instrument.
#[derive(Debug, Clone)]
pub struct FeedView {
    pub quote: Quote,
    pub extras: OptionExtras,
    pub status: FeedStatus,
    /// Live data was refused and the feed fell back to delayed data.
    pub fallback: bool,
    /// How many times the feed came back after being stale.
    pub resumes: u32,
    /// How long the last stale period lasted.
    pub last_gap: Option<Duration>,
    /// The quote's wire form, shared by every stream that sends this value.
    pub encoded: EncodedOnce,
}

impl FeedView {
    pub(crate) fn new(contract: &ContractSpec, requested: MarketDataType) -> FeedView {
        FeedView {
            quote: Quote::empty(contract.con_id, &contract.symbol, requested),
            extras: OptionExtras::default(),
            status: FeedStatus::Pending,
            fallback: false,
            resumes: 0,
            last_gap: None,
            encoded: EncodedOnce::default(),
        }
    }
}

/// A subscription request slower than this is logged.
const SLOW_SUBSCRIBE: Duration = Duration::from_secs(3);

/// How long to wait before asking again after a transient failure.
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// Ticks folded into one published value when IB sends them in a burst.
const MAX_BATCH: usize = 64;
/// Transient IB errors tolerated in a row before the feed gives up.
const MAX_TRANSIENT_FAILURES: u32 = 3;

/// Everything a feed task needs.
pub(crate) struct Feed {
    pub source: Arc<dyn MarketDataSource>,
    pub contract: Arc<ContractSpec>,
    pub tx: watch::Sender<Arc<FeedView>>,
    /// The type the active profile asks for.
    pub base_type: MarketDataType,
    /// Whether any reader accepts delayed data in place of refused live data.
    pub allow_fallback: Arc<AtomicBool>,
    pub cancel: CancellationToken,
    pub metrics: Arc<Metrics>,
}

/// What to do after the subscription ended.
enum Next {
    /// Ask again at once (e.g. with delayed data).
    Retry,
    /// Wait for a new session (or a short delay), then ask again.
    AfterLinkChange(u64),
    /// Nothing more to do until the readers leave.
    Park,
}

/// What the notices of one session say stands between IB and fresh data. A new
/// session starts with nothing in the way: the old one's notices say nothing about it.
#[derive(Debug, Default)]
struct Blocks {
    /// The session these were reported in.
    generation: u64,
    /// The farm serving the instrument is down.
    farm_down: bool,
    /// IB itself lost connectivity (1100) and has not reported it back.
    ib_down: bool,
    /// A competing live session holds the market data (10197), until IB says a farm
    /// is back or data flows again.
    competing: bool,
}

impl Blocks {
    fn clear(&self) -> bool {
        !self.farm_down && !self.ib_down && !self.competing
    }

    /// Starts over when `generation` is a newer session; false when it is an older
    /// one, whose notices no longer count.
    fn follow(&mut self, generation: u64) -> bool {
        if generation > self.generation {
            *self = Blocks {
                generation,
                ..Blocks::default()
            };
        }
        generation == self.generation
    }
}

struct State {
    view: FeedView,
    requested: MarketDataType,
    stale_since: Option<Instant>,
    blocks: Blocks,
    /// Fresh data is expected; the first tick clears the stale mark.
    awaiting_fresh: bool,
    transient_failures: u32,
    /// The instrument's usual pace, to notice its data pausing.
    cadence: Cadence,
}

impl Feed {
    /// Runs until cancelled.
    pub async fn run(self) {
        let cancel = self.cancel.clone();
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = self.run_inner() => {}
        }
    }

    async fn run_inner(&self) {
        let mut link = self.source.link_state();
        let mut farms = self.source.data_notices();
        let mut st = State {
            view: FeedView::new(&self.contract, self.base_type),
            requested: self.base_type,
            stale_since: None,
            blocks: Blocks::default(),
            awaiting_fresh: false,
            transient_failures: 0,
            cadence: Cadence::default(),
        };
        let mut last_generation = None;
        loop {
            let generation = loop {
                let current = link.borrow_and_update().generation;
                if let Some(g) = current {
                    break g;
                }
                self.mark_stale(&mut st);
                if link.changed().await.is_err() {
                    return;
                }
            };
            if last_generation != Some(generation) {
                // A fresh session may grant what the last one refused.
                st.requested = self.base_type;
                st.view.fallback = false;
                st.blocks.follow(generation);
                last_generation = Some(generation);
            }
            let asked = Instant::now();
            let subscribed = self
                .source
                .subscribe(generation, &self.contract, st.requested)
                .await;
            if asked.elapsed() > SLOW_SUBSCRIBE {
                // Queued in the pacer behind a burst, or held by a link that died: the
                // log tells which when a stream stays stale.
                tracing::info!(con_id = self.contract.con_id, symbol = %self.contract.symbol, generation, waited = ?asked.elapsed(), ok = subscribed.is_ok(), "market-data request took long");
            }
            tracing::debug!(con_id = self.contract.con_id, symbol = %self.contract.symbol, generation, ok = subscribed.is_ok(), requested = ?st.requested, "subscribed");
            let next = match subscribed {
                Ok(stream) => {
                    st.awaiting_fresh = true;
                    st.cadence.pause();
                    self.pump(stream, generation, &mut link, &mut farms, &mut st)
                        .await
                }
                Err(e) => self.on_failure(e, generation, &mut st),
            };
            match next {
                Next::Retry => {}
                Next::AfterLinkChange(g) => {
                    let changed = async {
                        loop {
                            if link.borrow_and_update().generation != Some(g) {
                                return;
                            }
                            if link.changed().await.is_err() {
                                futures::future::pending::<()>().await;
                            }
                        }
                    };
                    let _ = tokio::time::timeout(RETRY_DELAY * 2, changed).await;
                }
                Next::Park => futures::future::pending::<()>().await,
            }
        }
    }

    /// Reads the subscription until it ends or the session changes.
    async fn pump(
        &self,
        mut stream: TickStream,
        generation: u64,
        link: &mut watch::Receiver<LinkState>,
        farms: &mut broadcast::Receiver<StampedNotice>,
        st: &mut State,
    ) -> Next {
        let my_farm: FarmKind = self.contract.sec_type.farm();
        loop {
            // Only fresh data can fall silent; stale data waits for its own cause to end.
            let silent_at = st
                .cadence
                .deadline()
                .filter(|_| st.view.status == FeedStatus::Live);
            // In this order: what the session says about the data (a new session, a
            // farm down) applies before the ticks read after it, and a tick that is
            // there ends a pause before it counts as silence.
            tokio::select! {
                biased;
                changed = link.changed() => {
                    if changed.is_err() {
                        return Next::Park;
                    }
                    let current = link.borrow_and_update().generation;
                    if current != Some(generation) {
                        // The old session's subscription is gone either way.
                        self.mark_stale(st);
                        return Next::Retry;
                    }
                }
                notice = farms.recv() => {
                    if let Ok(n) = notice
                        && self.on_notice(n, my_farm, st)
                    {
                        // IB dropped its subscriptions (1101): ask again.
                        return Next::Retry;
                    }
                }
                event = stream.next() => {
                    let event = match event {
                        Some(e) => e,
                        None => {
                            self.mark_stale(st);
                            return Next::AfterLinkChange(generation);
                        }
                    };
                    match self.on_events(event, &mut stream, st) {
                        Ok(()) => {}
                        Err(e) => return self.on_failure(e, generation, st),
                    }
                }
                _ = sleep_until_some(silent_at) => {
                    tracing::debug!(con_id = self.contract.con_id, symbol = %self.contract.symbol, pause = ?st.cadence.threshold(), "market data paused");
                    // The pause is the instrument's own: keep timing it, so the next
                    // update teaches its length (capped) and a quiet instrument learns
                    // its pace instead of flapping.
                    let cadence = std::mem::take(&mut st.cadence);
                    self.mark_stale(st);
                    st.cadence = cadence;
                    st.awaiting_fresh = true;
                }
            }
        }
    }

    /// Folds the event and whatever else is ready right now into one published value.
    fn on_events(
        &self,
        first: SourceEvent,
        stream: &mut TickStream,
        st: &mut State,
    ) -> Result<(), SourceError> {
        let mut changed = false;
        let mut ticks = 0u64;
        let mut event = Some(first);
        let mut seen = 0;
        // The last of a batch's ticks and stale marks decides whether its values are fresh.
        let mut stale = false;
        while let Some(e) = event.take() {
            match e {
                SourceEvent::Tick(t) => {
                    ticks += 1;
                    stale = false;
                    changed |= self.fold(&t, st);
                }
                SourceEvent::Stale => stale = true,
                SourceEvent::Advisory { .. } => {}
                SourceEvent::Ended(err) => {
                    self.metrics.updates_in.inc_by(ticks);
                    if changed {
                        self.publish(st, true);
                    }
                    return Err(err);
                }
            }
            seen += 1;
            if seen < MAX_BATCH {
                event = stream.next().now_or_never().flatten();
            }
        }
        self.metrics.updates_in.inc_by(ticks);
        if stale {
            if changed {
                self.publish(st, true);
            }
            self.mark_stale(st);
            st.awaiting_fresh = true;
            return Ok(());
        }
        if ticks > 0 {
            st.transient_failures = 0;
            st.cadence.record(tokio::time::Instant::now());
            // IB sends nothing to a session that lost to a competing one (10197):
            // ticks again mean the competition is over, and values that flow are not
            // old.
            let competition_over = std::mem::take(&mut st.blocks.competing);
            if st.awaiting_fresh || competition_over {
                st.awaiting_fresh = false;
                if st.blocks.clear() {
                    self.mark_fresh_unpublished(st);
                    changed = true;
                }
            }
        }
        if changed {
            self.publish(st, true);
        }
        Ok(())
    }

    /// Applies a data notice; returns whether the subscription must be renewed.
    fn on_notice(&self, stamped: StampedNotice, my_farm: FarmKind, st: &mut State) -> bool {
        if !st.blocks.follow(stamped.generation) {
            return false;
        }
        let was_clear = st.blocks.clear();
        let blocks = &mut st.blocks;
        let renew = match stamped.notice {
            DataNotice::Farm { farm, up } => {
                if up {
                    // Any farm serving this login again ends a competing session.
                    blocks.competing = false;
                }
                if farm == my_farm {
                    blocks.farm_down = !up;
                }
                false
            }
            DataNotice::ConnectivityLost => {
                blocks.ib_down = true;
                false
            }
            DataNotice::ConnectivityRestored { data_lost } => {
                blocks.ib_down = false;
                blocks.competing = false;
                data_lost
            }
            DataNotice::CompetingSession => {
                blocks.competing = true;
                false
            }
        };
        tracing::debug!(con_id = self.contract.con_id, symbol = %self.contract.symbol, generation = stamped.generation, blocks = ?st.blocks, renew, "data notice");
        if renew || !st.blocks.clear() {
            // With 1101 the values are old until the renewed subscription sends.
            self.mark_stale(st);
        } else if !was_clear {
            // The last block lifted; IB resumes the subscription by itself.
            self.mark_fresh(st);
        }
        renew
    }

    fn fold(&self, tick: &Tick, st: &mut State) -> bool {
        apply(&mut st.view.quote, &mut st.view.extras, tick)
    }

    fn on_failure(&self, e: SourceError, generation: u64, st: &mut State) -> Next {
        match e {
            SourceError::LinkDown => {
                self.mark_stale(st);
                Next::AfterLinkChange(generation)
            }
            SourceError::NoPermission(_)
                if !st.requested.is_delayed() && self.allow_fallback.load(Ordering::Relaxed) =>
            {
                st.requested = st.requested.delayed();
                st.view.fallback = true;
                st.view.quote.requested_type = st.requested;
                self.publish(st, false);
                Next::Retry
            }
            SourceError::Ib { .. } | SourceError::Deadline(_)
                if st.transient_failures < MAX_TRANSIENT_FAILURES =>
            {
                st.transient_failures += 1;
                Next::AfterLinkChange(generation)
            }
            other => {
                tracing::info!(con_id = self.contract.con_id, symbol = %self.contract.symbol, error = %other, "market data refused");
                st.view.status = FeedStatus::Failed(other);
                self.publish(st, false);
                Next::Park
            }
        }
    }

    fn mark_stale(&self, st: &mut State) {
        if matches!(st.view.status, FeedStatus::Stale | FeedStatus::Failed(_)) {
            return;
        }
        if st.stale_since.is_none() {
            st.stale_since = Some(Instant::now());
        }
        st.view.status = FeedStatus::Stale;
        st.view.quote.stale = true;
        st.cadence.pause();
        self.publish(st, true);
    }

    fn mark_fresh(&self, st: &mut State) {
        if self.mark_fresh_unpublished(st) {
            self.publish(st, true);
        }
    }

    /// Clears the stale mark; returns whether anything changed.
    fn mark_fresh_unpublished(&self, st: &mut State) -> bool {
        tracing::debug!(con_id = self.contract.con_id, symbol = %self.contract.symbol, status = ?st.view.status, "fresh");
        match st.view.status {
            FeedStatus::Stale => {
                st.view.status = FeedStatus::Live;
                st.view.quote.stale = false;
                st.view.resumes += 1;
                st.view.last_gap = st.stale_since.take().map(|t| t.elapsed());
                true
            }
            FeedStatus::Pending => {
                st.view.status = FeedStatus::Live;
                true
            }
            _ => false,
        }
    }

    /// Publishes the current value; `new_value` advances the sequence.
    fn publish(&self, st: &mut State, new_value: bool) {
        if new_value {
            st.view.quote.sequence += 1;
            st.view.quote.received_at = SystemTime::now();
        }
        self.tx.send_replace(Arc::new(st.view.clone()));
    }
}

/// Sleeps until `at`; never resolves for `None`.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
