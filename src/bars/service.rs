//! The bar service: a request inside a span already fetched is answered from the store;
//! anything else goes to IB once (identical requests in flight share one IB request),
//! when the historical pacer gives it a turn, and is kept in the store for next time.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::error::BarsError;
use super::pacing::{bars_key, head_key};
use super::request::BarQuery;
use super::source::{HistoryAsk, HistorySource};
use super::spec::WhatToShow;
use crate::fanout::lookups::Lookups;
use crate::fanout::{ContractSpec, FanoutError};
use crate::ib::historical_pacer::{HistoricalPacer, PacingFull};
use crate::store::{Store, StoredBar};

/// Where a request's bars came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarOrigin {
    Cache,
    Ib,
}

/// Bars of a request and where they came from.
#[derive(Debug, Clone)]
pub struct BarAnswer {
    pub bars: Arc<Vec<StoredBar>>,
    pub origin: BarOrigin,
}

/// Key of one IB request in flight: the query and whether its caller waits for pacing
/// (a caller that does not wait must not be held by one that does).
type FlightKey = (BarQuery, bool);
type HeadKey = (i64, WhatToShow, bool);

/// Historical bars and head timestamps for every client. Cheap to clone.
#[derive(Clone)]
pub struct Bars {
    source: Arc<dyn HistorySource>,
    store: Option<Store>,
    pacer: HistoricalPacer,
    flights: Arc<Lookups<FlightKey, Arc<Vec<StoredBar>>, BarsError>>,
    heads: Arc<Lookups<HeadKey, i64, BarsError>>,
    deadline: Duration,
}

fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// A pacing refusal as the caller sees it (the wait from now).
fn full(f: PacingFull) -> BarsError {
    BarsError::PacingFull {
        retry_after: f
            .retry_at
            .saturating_duration_since(tokio::time::Instant::now()),
    }
}

impl Bars {
    /// A service asking `source`, caching in `store` (none: memory of in-flight only),
    /// paced by `pacer`, each IB request bounded by `deadline`.
    pub fn new(
        source: Arc<dyn HistorySource>,
        store: Option<Store>,
        pacer: HistoricalPacer,
        deadline: Duration,
    ) -> Bars {
        Bars {
            source,
            store,
            pacer,
            flights: Arc::default(),
            heads: Arc::default(),
            deadline,
        }
    }

    /// The pacer every historical request of the session goes through.
    pub fn pacer(&self) -> &HistoricalPacer {
        &self.pacer
    }

    /// The bars of `query` on `contract` (resolved: con_id set); with `wait`, a full
    /// pacing window is waited out instead of refused.
    pub async fn get(
        &self,
        contract: &ContractSpec,
        query: &BarQuery,
        wait: bool,
    ) -> Result<BarAnswer, BarsError> {
        let series = query.series();
        // The whole bars the window holds lie between these, on the bars' grid.
        let step = query.size.seconds() as i64;
        let (first, last_end) = (
            query.start.div_euclid(step) * step + if query.start % step == 0 { 0 } else { step },
            query.end.div_euclid(step) * step,
        );
        if let Some(store) = &self.store
            && first < last_end
            && store.bars_cover(&series, first, last_end).await?
        {
            let bars = store.bars(&series, query.start, query.end).await?;
            let now = now_secs();
            let bars = bars
                .into_iter()
                .filter(|b| query.keeps(b.time, now))
                .collect();
            return Ok(BarAnswer {
                bars: Arc::new(bars),
                origin: BarOrigin::Cache,
            });
        }
        let key = (query.clone(), wait);
        let this = self.clone();
        let (contract, q) = (contract.clone(), query.clone());
        let answer = self
            .flights
            .get_or_fetch(
                &key,
                move || async move { this.fetch(contract, q, wait).await },
            )
            .await;
        // Kept in the store, not in memory: the next request reads the store.
        self.flights.forget(&key);
        let bars = answer?;
        Ok(BarAnswer {
            bars,
            origin: BarOrigin::Ib,
        })
    }

    async fn fetch(
        &self,
        contract: ContractSpec,
        query: BarQuery,
        wait: bool,
    ) -> Result<Arc<Vec<StoredBar>>, BarsError> {
        let ask = HistoryAsk {
            contract,
            size: query.size,
            what: query.what,
            regular_hours: query.regular_hours,
            start: query.start,
            end: query.end,
        };
        self.pacer
            .admit(&bars_key(&ask), wait)
            .await
            .map_err(full)?;
        let fetched = self
            .source
            .bars(ask, self.deadline)
            .await
            .map_err(FanoutError::from)?;
        let now = now_secs();
        let bars: Vec<StoredBar> = fetched
            .into_iter()
            .filter(|b| query.keeps(b.time, now))
            .collect();
        if let Some(store) = &self.store {
            // Only whole bars are kept: the span ends where the forming bar begins.
            let step = query.size.seconds() as i64;
            let covered = query.end.min(now.div_euclid(step) * step);
            if covered > query.start
                && let Err(e) = store
                    .put_bars(&query.series(), query.start, covered, &bars)
                    .await
            {
                tracing::warn!(error = ?e, "bars not cached");
            }
        }
        Ok(Arc::new(bars))
    }

    /// The earliest time IB has data of `what` for `contract`, unix seconds (kept once
    /// known).
    pub async fn head_timestamp(
        &self,
        contract: &ContractSpec,
        what: WhatToShow,
        regular_hours: bool,
        wait: bool,
    ) -> Result<i64, BarsError> {
        let key = (contract.con_id, what, regular_hours);
        let this = self.clone();
        let contract = contract.clone();
        self.heads
            .get_or_fetch(&key, move || async move {
                let pacing = head_key(&contract, what, regular_hours);
                this.pacer.admit(&pacing, wait).await.map_err(full)?;
                let head = this
                    .source
                    .head_timestamp(&contract, what, regular_hours, this.deadline)
                    .await
                    .map_err(FanoutError::from)?;
                Ok(head)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::FutureExt;
    use futures::future::BoxFuture;

    use super::*;
    use crate::bars::source::{BarStream, HistoryAsk};
    use crate::bars::spec::BarSize;
    use crate::fanout::SourceError;
    use crate::ib::MessagePacer;
    use crate::ib::historical_pacer::HistoricalRules;
    use crate::metrics::Metrics;

    /// IB as a counter: a flat bar for every step of the window.
    #[derive(Default)]
    struct Counted(AtomicUsize);

    impl HistorySource for Counted {
        fn realtime_bars(
            &self,
            _: &ContractSpec,
            _: WhatToShow,
            _: bool,
        ) -> BoxFuture<'static, Result<BarStream, SourceError>> {
            async { Err(SourceError::LinkDown) }.boxed()
        }

        fn bars(
            &self,
            ask: HistoryAsk,
            _: Duration,
        ) -> BoxFuture<'static, Result<Vec<StoredBar>, SourceError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let step = ask.size.seconds() as i64;
            let bars = (ask.start.div_euclid(step)..=ask.end.div_euclid(step))
                .map(|i| StoredBar {
                    time: i * step,
                    open: 1.0,
                    high: 1.0,
                    low: 1.0,
                    close: 1.0,
                    volume: 1.0,
                    wap: 1.0,
                    count: 1,
                })
                .collect();
            async move { Ok(bars) }.boxed()
        }

        fn head_timestamp(
            &self,
            _: &ContractSpec,
            _: WhatToShow,
            _: bool,
            _: Duration,
        ) -> BoxFuture<'static, Result<i64, SourceError>> {
            async { Ok(0) }.boxed()
        }
    }

    #[tokio::test]
    async fn a_window_ending_now_is_cached_up_to_its_last_whole_bar() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&crate::store::sqlite_url(&dir.path().join("b.db")))
            .await
            .unwrap();
        let source = Arc::new(Counted::default());
        let pacer = HistoricalPacer::new(
            HistoricalRules::scaled(1e-6),
            MessagePacer::new(1_000, Arc::new(Metrics::default())),
        );
        let bars = Bars::new(source.clone(), Some(store), pacer, Duration::from_secs(5));
        let contract = ContractSpec {
            con_id: 1,
            ..Default::default()
        };
        let ask = || {
            let now = now_secs();
            BarQuery {
                con_id: 1,
                size: BarSize::Day1,
                what: WhatToShow::Trades,
                regular_hours: false,
                start: now - 10 * 86_400,
                end: now,
            }
        };
        let first = bars.get(&contract, &ask(), false).await.unwrap();
        assert_eq!(first.origin, BarOrigin::Ib);
        // Whole days only: the forming day is not among them.
        assert!(first.bars.iter().all(|b| b.time + 86_400 <= now_secs()));
        assert!((9..=10).contains(&first.bars.len()), "{}", first.bars.len());
        let again = bars.get(&contract, &ask(), false).await.unwrap();
        assert_eq!(
            again.origin,
            BarOrigin::Cache,
            "a later now, the same whole days"
        );
        assert_eq!(again.bars, first.bars);
        assert_eq!(source.0.load(Ordering::SeqCst), 1);
    }
}
