//! The registry of feeds: one per instrument, shared by every reader, reference-counted,
//! kept for a short linger after the last reader leaves, and bounded by the line budget.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::error::FanoutError;
use super::feed::{Feed, FeedStatus, FeedView};
use super::source::MarketDataSource;
use super::types::{ContractSpec, MarketDataType};
use crate::metrics::Metrics;

/// Limits and defaults, normally from the active profile and the configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FanoutSettings {
    /// Market-data lines ibstream may hold at IB.
    pub line_budget: usize,
    /// How long an instrument stays subscribed after its last reader left.
    pub linger: Duration,
    /// The type of data asked for first.
    pub data_type: MarketDataType,
    /// Whether refused live data falls back to delayed data unless a request says otherwise.
    pub allow_delayed_fallback: bool,
}

impl Default for FanoutSettings {
    fn default() -> Self {
        FanoutSettings {
            line_budget: 100,
            linger: Duration::from_secs(5),
            data_type: MarketDataType::Live,
            allow_delayed_fallback: false,
        }
    }
}

/// One instrument in the registry, as `ListSubscriptions` shows it.
#[derive(Debug, Clone)]
pub struct SubscriptionInfo {
    pub contract: Arc<ContractSpec>,
    pub readers: usize,
    pub lingering: bool,
    pub view: Arc<FeedView>,
}

/// Lines in use and the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineUsage {
    pub in_use: usize,
    pub budget: usize,
}

struct Entry {
    /// Distinguishes a feed from a later one for the same instrument.
    id: u64,
    contract: Arc<ContractSpec>,
    rx: watch::Receiver<Arc<FeedView>>,
    readers: usize,
    /// Bumped on every acquire and release so a pending linger timer knows it is outdated.
    epoch: u64,
    cancel: CancellationToken,
    allow_fallback: Arc<AtomicBool>,
}

impl Entry {
    fn failed(&self) -> bool {
        matches!(self.rx.borrow().status, FeedStatus::Failed(_))
    }
}

struct Inner {
    source: Arc<dyn MarketDataSource>,
    metrics: Arc<Metrics>,
    settings: Mutex<FanoutSettings>,
    feeds: Mutex<HashMap<i64, Entry>>,
    /// Lines held outside the quote feeds (real-time bars); changed under `feeds`' lock.
    other_lines: AtomicUsize,
}

/// The shared fan-out cache. Cloning is cheap.
#[derive(Clone)]
pub struct Fanout {
    inner: Arc<Inner>,
}

/// A reader's hold on one instrument; dropping it releases the instrument.
pub struct FeedRef {
    inner: Arc<Inner>,
    entry_id: u64,
    contract: Arc<ContractSpec>,
    rx: watch::Receiver<Arc<FeedView>>,
}

impl FeedRef {
    pub fn contract(&self) -> &Arc<ContractSpec> {
        &self.contract
    }

    /// A receiver of the instrument's latest value (conflated by construction).
    pub fn watch(&self) -> watch::Receiver<Arc<FeedView>> {
        self.rx.clone()
    }

    /// The latest value.
    pub fn current(&self) -> Arc<FeedView> {
        self.rx.borrow().clone()
    }
}

/// A market-data line held outside the quote feeds; dropping it gives the line back.
pub struct LineHold {
    inner: Arc<Inner>,
}

impl Drop for LineHold {
    fn drop(&mut self) {
        let feeds = lock(&self.inner.feeds);
        self.inner.other_lines.fetch_sub(1, Ordering::Relaxed);
        self.inner.update_gauges(&feeds);
    }
}

impl std::fmt::Debug for LineHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineHold").finish_non_exhaustive()
    }
}

impl Drop for FeedRef {
    fn drop(&mut self) {
        Inner::release(&self.inner, self.contract.con_id, self.entry_id);
    }
}

impl std::fmt::Debug for FeedRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedRef")
            .field("con_id", &self.contract.con_id)
            .finish_non_exhaustive()
    }
}

static NEXT_ENTRY_ID: AtomicU64 = AtomicU64::new(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Fanout {
    pub fn new(
        source: Arc<dyn MarketDataSource>,
        settings: FanoutSettings,
        metrics: Arc<Metrics>,
    ) -> Fanout {
        metrics.line_budget.set(settings.line_budget as i64);
        Fanout {
            inner: Arc::new(Inner {
                source,
                metrics,
                settings: Mutex::new(settings),
                feeds: Mutex::new(HashMap::new()),
                other_lines: AtomicUsize::new(0),
            }),
        }
    }

    pub fn source(&self) -> &Arc<dyn MarketDataSource> {
        &self.inner.source
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    pub fn settings(&self) -> FanoutSettings {
        *lock(&self.inner.settings)
    }

    /// Applies new limits (e.g. after the active profile changed). Instruments already
    /// held stay held even if they now exceed the budget.
    pub fn update_settings(&self, settings: FanoutSettings) {
        *lock(&self.inner.settings) = settings;
        self.inner
            .metrics
            .line_budget
            .set(settings.line_budget as i64);
    }

    /// Lines held now (lingering instruments included) and the budget.
    pub fn line_usage(&self) -> LineUsage {
        let feeds = lock(&self.inner.feeds);
        LineUsage {
            in_use: Inner::lines_in_use(&feeds) + self.inner.other(),
            budget: self.settings().line_budget,
        }
    }

    /// Whether a `delayed` reader is allowed for a request with the given policy.
    pub fn allows_delayed(&self, policy: super::types::DataPolicy) -> bool {
        match policy {
            super::types::DataPolicy::LiveOnly => false,
            super::types::DataPolicy::LiveOrDelayed => true,
            super::types::DataPolicy::ProfileDefault => self.settings().allow_delayed_fallback,
        }
    }

    /// Takes one market-data line for a subscription outside the quote feeds (IB counts a
    /// real-time bar subscription as a line), evicting a lingering instrument if that
    /// makes room; `LineBudget` when none is free. The line is given back on drop.
    pub fn hold_line(&self) -> Result<LineHold, FanoutError> {
        let budget = self.settings().line_budget;
        let mut feeds = lock(&self.inner.feeds);
        if Inner::lines_in_use(&feeds) + self.inner.other() >= budget {
            Inner::evict_lingering(&mut feeds, 1);
        }
        let in_use = Inner::lines_in_use(&feeds) + self.inner.other();
        if in_use >= budget {
            return Err(FanoutError::LineBudget {
                in_use,
                budget,
                free: 0,
                requested: 1,
            });
        }
        self.inner.other_lines.fetch_add(1, Ordering::Relaxed);
        self.inner.update_gauges(&feeds);
        Ok(LineHold {
            inner: self.inner.clone(),
        })
    }

    /// Takes a hold on every contract (resolved, with a conId), subscribing at IB those no
    /// one holds yet. All or nothing: if the new instruments need more lines than are free
    /// (after evicting lingering ones), nothing is taken and `LineBudget` says why.
    pub fn acquire(
        &self,
        contracts: &[Arc<ContractSpec>],
        allow_delayed: bool,
    ) -> Result<Vec<FeedRef>, FanoutError> {
        let settings = self.settings();
        let mut feeds = lock(&self.inner.feeds);
        let other = self.inner.other();
        let lines = Inner::reserve(&mut feeds, contracts, settings.line_budget, other);
        if !lines.refused.is_empty() {
            return Err(lines.shortage());
        }
        let refs = contracts
            .iter()
            .map(|c| self.hold(&mut feeds, c, &settings, allow_delayed))
            .collect();
        self.inner.update_gauges(&feeds);
        Ok(refs)
    }

    /// Like [`Fanout::acquire`], but serves what fits: contracts already held and new ones
    /// in the given order while lines are free; each of the rest gets a `LineBudget`
    /// error saying the lines in use and the budget when the request came.
    pub fn acquire_fitting(
        &self,
        contracts: &[Arc<ContractSpec>],
        allow_delayed: bool,
    ) -> Vec<Result<FeedRef, FanoutError>> {
        let settings = self.settings();
        let mut feeds = lock(&self.inner.feeds);
        let other = self.inner.other();
        let lines = Inner::reserve(&mut feeds, contracts, settings.line_budget, other);
        let refs = contracts
            .iter()
            .map(|c| match lines.refused.contains(&c.con_id) {
                true => Err(lines.shortage()),
                false => Ok(self.hold(&mut feeds, c, &settings, allow_delayed)),
            })
            .collect();
        self.inner.update_gauges(&feeds);
        refs
    }

    /// One more reader of `contract`, its feed started if no one holds it (a failed feed
    /// is replaced). The caller has reserved its line.
    fn hold(
        &self,
        feeds: &mut HashMap<i64, Entry>,
        contract: &Arc<ContractSpec>,
        settings: &FanoutSettings,
        allow_delayed: bool,
    ) -> FeedRef {
        let id = contract.con_id;
        if feeds.get(&id).is_some_and(Entry::failed) {
            // A failed feed holds no line; readers still attached see its failure.
            if let Some(old) = feeds.remove(&id) {
                old.cancel.cancel();
            }
        }
        let entry = feeds
            .entry(id)
            .or_insert_with(|| self.spawn_feed(contract, settings));
        entry.readers += 1;
        entry.epoch += 1;
        if allow_delayed {
            entry.allow_fallback.store(true, Ordering::Relaxed);
        }
        FeedRef {
            inner: self.inner.clone(),
            entry_id: entry.id,
            contract: entry.contract.clone(),
            rx: entry.rx.clone(),
        }
    }

    fn spawn_feed(&self, contract: &Arc<ContractSpec>, settings: &FanoutSettings) -> Entry {
        let (tx, rx) = watch::channel(Arc::new(FeedView::new(contract, settings.data_type)));
        let cancel = CancellationToken::new();
        let allow_fallback = Arc::new(AtomicBool::new(settings.allow_delayed_fallback));
        let feed = Feed {
            source: self.inner.source.clone(),
            contract: contract.clone(),
            tx,
            base_type: settings.data_type,
            allow_fallback: allow_fallback.clone(),
            cancel: cancel.clone(),
            metrics: self.inner.metrics.clone(),
        };
        tokio::spawn(feed.run());
        Entry {
            id: NEXT_ENTRY_ID.fetch_add(1, Ordering::Relaxed),
            contract: contract.clone(),
            rx,
            readers: 0,
            epoch: 0,
            cancel,
            allow_fallback,
        }
    }

    /// The latest value of an instrument, if some reader (or the linger) keeps it.
    pub fn cached(&self, con_id: i64) -> Option<Arc<FeedView>> {
        lock(&self.inner.feeds)
            .get(&con_id)
            .map(|e| e.rx.borrow().clone())
    }

    /// Every instrument held, with its reader count.
    pub fn list(&self) -> Vec<SubscriptionInfo> {
        let feeds = lock(&self.inner.feeds);
        let mut out: Vec<_> = feeds
            .values()
            .map(|e| SubscriptionInfo {
                contract: e.contract.clone(),
                readers: e.readers,
                lingering: e.readers == 0,
                view: e.rx.borrow().clone(),
            })
            .collect();
        out.sort_by(|a, b| a.contract.symbol.cmp(&b.contract.symbol));
        out
    }
}

/// How the lines a request needs were shared out.
struct Reservation {
    /// Lines in use, lingering ones evicted, before the request took any.
    in_use: usize,
    budget: usize,
    /// New instruments the request asked for.
    requested: usize,
    /// conIds of the new instruments that did not fit.
    refused: HashSet<i64>,
}

impl Reservation {
    fn shortage(&self) -> FanoutError {
        FanoutError::LineBudget {
            in_use: self.in_use,
            budget: self.budget,
            free: self.budget.saturating_sub(self.in_use),
            requested: self.requested,
        }
    }
}

impl Inner {
    /// Evicts lingering instruments to make room for the new ones among `contracts`
    /// (those no one holds, or whose feed failed), then counts which fit the budget, in
    /// order.
    fn reserve(
        feeds: &mut HashMap<i64, Entry>,
        contracts: &[Arc<ContractSpec>],
        budget: usize,
        other: usize,
    ) -> Reservation {
        let mut new_ids: Vec<i64> = Vec::new();
        let mut seen = HashSet::new();
        for c in contracts {
            if feeds.get(&c.con_id).is_none_or(Entry::failed) && seen.insert(c.con_id) {
                new_ids.push(c.con_id);
            }
        }
        let needed = new_ids.len();
        let in_use = Inner::lines_in_use(feeds) + other;
        if in_use + needed > budget {
            Inner::evict_lingering(feeds, in_use + needed - budget);
        }
        let in_use = Inner::lines_in_use(feeds) + other;
        let free = budget.saturating_sub(in_use);
        Reservation {
            in_use,
            budget,
            requested: needed,
            refused: new_ids.into_iter().skip(free).collect(),
        }
    }

    fn other(&self) -> usize {
        self.other_lines.load(Ordering::Relaxed)
    }

    fn lines_in_use(feeds: &HashMap<i64, Entry>) -> usize {
        feeds.values().filter(|e| !e.failed()).count()
    }

    fn evict_lingering(feeds: &mut HashMap<i64, Entry>, mut count: usize) {
        let idle: Vec<i64> = feeds
            .iter()
            .filter(|(_, e)| e.readers == 0)
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            if count == 0 {
                break;
            }
            if let Some(e) = feeds.remove(&id) {
                e.cancel.cancel();
                count -= 1;
            }
        }
    }

    fn update_gauges(&self, feeds: &HashMap<i64, Entry>) {
        self.metrics
            .lines_in_use
            .set((Self::lines_in_use(feeds) + self.other()) as i64);
        self.metrics.instruments_cached.set(feeds.len() as i64);
    }

    fn release(this: &Arc<Inner>, con_id: i64, entry_id: u64) {
        let linger = lock(&this.settings).linger;
        let mut feeds = lock(&this.feeds);
        let Some(entry) = feeds.get_mut(&con_id).filter(|e| e.id == entry_id) else {
            return;
        };
        entry.readers = entry.readers.saturating_sub(1);
        entry.epoch += 1;
        if entry.readers > 0 {
            return;
        }
        let runtime = tokio::runtime::Handle::try_current();
        if entry.failed() || linger.is_zero() || runtime.is_err() {
            if let Some(e) = feeds.remove(&con_id) {
                e.cancel.cancel();
            }
            this.update_gauges(&feeds);
            return;
        }
        let epoch = entry.epoch;
        let weak = Arc::downgrade(this);
        if let Ok(handle) = runtime {
            handle.spawn(async move {
                tokio::time::sleep(linger).await;
                let Some(inner) = weak.upgrade() else { return };
                let mut feeds = lock(&inner.feeds);
                if feeds
                    .get(&con_id)
                    .is_some_and(|e| e.epoch == epoch && e.readers == 0)
                    && let Some(e) = feeds.remove(&con_id)
                {
                    e.cancel.cancel();
                }
                inner.update_gauges(&feeds);
            });
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for e in lock(&self.feeds).values() {
            e.cancel.cancel();
        }
    }
}
