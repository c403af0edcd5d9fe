//! One client's bar stream: the last N whole bars (from the cache or IB), then the
//! forming bar as each five-second bar updates it, and each bar when it completes, built
//! from the shared real-time feed; the feed's stale and resumed events pass through.

use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use super::aggregate::{Aggregator, Built, REALTIME_SECONDS};
use super::error::BarsError;
use super::live::{LiveEvent, LiveLease};
use super::request::BarQuery;
use super::service::Bars;
use super::spec::{BarSize, WhatToShow};
use crate::fanout::{ContractSpec, FanoutError};
use crate::store::StoredBar;

/// Events a stream sends its client.
#[derive(Debug, Clone)]
pub enum BarEvent {
    Completed(StoredBar),
    Forming(StoredBar),
    Stale,
    Resumed {
        gap: Duration,
    },
    /// The stream ends with this error.
    Failed(FanoutError),
}

/// A valid stream request.
#[derive(Debug, Clone)]
pub struct StreamQuery {
    pub size: BarSize,
    pub what: WhatToShow,
    pub regular_hours: bool,
    pub history_bars: u32,
}

impl StreamQuery {
    /// Checks the fields of a stream request, naming the one that is wrong.
    pub fn new(
        bar_size: &str,
        what: WhatToShow,
        regular_hours: bool,
        history_bars: u32,
    ) -> Result<StreamQuery, BarsError> {
        let size = BarSize::parse(bar_size)
            .filter(|s| s.seconds() % REALTIME_SECONDS as u64 == 0)
            .ok_or_else(|| {
                BarsError::invalid("bar_size", "unknown bar size or not a multiple of 5 s")
            })?;
        if !matches!(
            what,
            WhatToShow::Trades | WhatToShow::Midpoint | WhatToShow::Bid | WhatToShow::Ask
        ) {
            return Err(BarsError::invalid(
                "what_to_show",
                "real-time bars are trades, midpoint, bid or ask",
            ));
        }
        let most = size.max_duration().as_secs() / size.seconds();
        if u64::from(history_bars) > most {
            return Err(BarsError::invalid(
                "history_bars",
                format!("at most {most} bars of {} in one request", size.short()),
            ));
        }
        Ok(StreamQuery {
            size,
            what,
            regular_hours,
            history_bars,
        })
    }
}

fn into_fanout(e: BarsError) -> FanoutError {
    match e {
        BarsError::Source(e) => e,
        BarsError::PacingFull { .. } | BarsError::Store(_) => FanoutError::Unavailable,
    }
}

fn floor(t: i64, step: i64) -> i64 {
    t.div_euclid(step) * step
}

/// Runs one stream into `out` until its client leaves (the send fails).
pub async fn run(
    bars: Bars,
    lease: LiveLease,
    contract: ContractSpec,
    query: StreamQuery,
    out: mpsc::Sender<BarEvent>,
) {
    let mut rx = lease.subscribe();
    let size = query.size.seconds() as i64;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let period = floor(now, size);
    let ask = |size: BarSize, start: i64, end: i64| BarQuery {
        con_id: contract.con_id,
        size,
        what: query.what,
        regular_hours: query.regular_hours,
        start,
        end,
    };
    if query.history_bars > 0 {
        let q = ask(
            query.size,
            period - size * i64::from(query.history_bars),
            period,
        );
        match bars.get(&contract, &q, true).await {
            Ok(answer) => {
                for bar in answer.bars.iter() {
                    if out.send(BarEvent::Completed(*bar)).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = out.send(BarEvent::Failed(into_fanout(e))).await;
                return;
            }
        }
    }
    let mut agg = Aggregator::new(size);
    // The five-second bars of the current period so far: kept by the feed if it ran
    // long enough, otherwise from history.
    let recent = lease.recent();
    let mut fives: Vec<StoredBar> = recent
        .iter()
        .filter(|b| b.time >= period)
        .copied()
        .collect();
    let covered = recent.first().is_some_and(|b| b.time <= period);
    let head = floor(now, REALTIME_SECONDS);
    if !covered && size > REALTIME_SECONDS && head > period {
        match bars
            .get(&contract, &ask(BarSize::Sec5, period, head), true)
            .await
        {
            Ok(answer) => {
                let upto = fives.first().map_or(i64::MAX, |b| b.time);
                let mut early: Vec<StoredBar> = answer
                    .bars
                    .iter()
                    .filter(|b| b.time < upto)
                    .copied()
                    .collect();
                early.append(&mut fives);
                fives = early;
            }
            Err(e) => {
                let _ = out.send(BarEvent::Failed(into_fanout(e))).await;
                return;
            }
        }
    }
    let mut cursor = period;
    let mut last = None;
    for bar in fives {
        cursor = bar.time + REALTIME_SECONDS;
        last = agg.push(&bar).pop();
    }
    if let Some(Built::Forming(f)) = last
        && out.send(BarEvent::Forming(f)).await.is_err()
    {
        return;
    }
    loop {
        let event = match rx.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "a bar stream fell behind its feed");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let sent = match event {
            LiveEvent::Bar(bar) if bar.time >= cursor => {
                cursor = bar.time + REALTIME_SECONDS;
                let mut ok = true;
                for built in agg.push(&bar) {
                    let e = match built {
                        Built::Completed(b) => BarEvent::Completed(b),
                        Built::Forming(b) => BarEvent::Forming(b),
                    };
                    ok = ok && out.send(e).await.is_ok();
                }
                ok
            }
            LiveEvent::Bar(_) => true,
            LiveEvent::Stale => out.send(BarEvent::Stale).await.is_ok(),
            LiveEvent::Resumed { gap } => out.send(BarEvent::Resumed { gap }).await.is_ok(),
        };
        if !sent {
            return;
        }
    }
}
