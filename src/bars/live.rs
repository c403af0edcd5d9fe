//! Real-time bars shared like quotes: one IB subscription per contract, data type and
//! trading hours however many streams read it, holding one market-data line (IB counts a
//! real-time bar subscription as a line, and its request against the historical pacing),
//! kept for a linger after the last stream leaves. Across a lost session the feed turns
//! stale, subscribes again in the new session, fetches the five-second bars it missed
//! from history, and resumes: its readers see no hole.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::aggregate::REALTIME_SECONDS;
use super::error::BarsError;
use super::request::BarQuery;
use super::service::Bars;
use super::source::HistorySource;
use super::spec::{BarSize, WhatToShow};
use crate::fanout::{ContractSpec, Fanout, LineHold};
use crate::ib::historical_pacer::PacingKey;
use crate::store::StoredBar;

/// Five-second bars kept for a new reader's forming bar (one hour).
const RECENT: usize = 720;

/// Events a reader may fall behind by before it skips.
const BUFFER: usize = 256;

/// How long a feed waits before asking again after IB refused it.
const RETRY: Duration = Duration::from_secs(1);

/// What a shared feed sends its readers.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// A five-second bar (live, or fetched to fill a hole).
    Bar(StoredBar),
    /// The session is down: bars stop until it is back.
    Stale,
    /// Bars flow again after being stale for `gap`.
    Resumed { gap: Duration },
}

type Key = (i64, WhatToShow, bool);

/// One shared subscription.
struct LiveFeed {
    tx: broadcast::Sender<LiveEvent>,
    recent: Arc<Mutex<VecDeque<StoredBar>>>,
    stop: CancellationToken,
    _line: LineHold,
}

impl Drop for LiveFeed {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A reader's hold on a shared feed; the feed lingers after the last one is dropped.
pub struct LiveLease {
    feed: Arc<LiveFeed>,
    linger: Duration,
}

impl LiveLease {
    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.feed.tx.subscribe()
    }

    /// The five-second bars received lately, oldest first.
    pub fn recent(&self) -> Vec<StoredBar> {
        let recent = self.feed.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().copied().collect()
    }
}

impl Drop for LiveLease {
    fn drop(&mut self) {
        let feed = self.feed.clone();
        let linger = self.linger;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(linger).await;
                drop(feed);
            });
        }
    }
}

/// The shared real-time bar feeds. Cheap to clone.
#[derive(Clone)]
pub struct LiveBars {
    feeds: Arc<Mutex<HashMap<Key, Weak<LiveFeed>>>>,
    source: Arc<dyn HistorySource>,
    bars: Bars,
    fanout: Fanout,
    linger: Duration,
}

impl LiveBars {
    pub fn new(
        source: Arc<dyn HistorySource>,
        bars: Bars,
        fanout: Fanout,
        linger: Duration,
    ) -> LiveBars {
        LiveBars {
            feeds: Arc::default(),
            source,
            bars,
            fanout,
            linger,
        }
    }

    /// A lease on the feed of `contract` (resolved), starting it if no one holds it;
    /// `LineBudget` when it needs a line and none is free.
    pub fn open(
        &self,
        contract: &ContractSpec,
        what: WhatToShow,
        regular_hours: bool,
    ) -> Result<LiveLease, BarsError> {
        let key = (contract.con_id, what, regular_hours);
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(feed) = feeds.get(&key).and_then(Weak::upgrade) {
            return Ok(LiveLease {
                feed,
                linger: self.linger,
            });
        }
        feeds.retain(|_, w| w.strong_count() > 0);
        let line = self.fanout.hold_line()?;
        let (tx, _) = broadcast::channel(BUFFER);
        let feed = Arc::new(LiveFeed {
            tx: tx.clone(),
            recent: Arc::default(),
            stop: CancellationToken::new(),
            _line: line,
        });
        let run = Run {
            this: self.clone(),
            contract: contract.clone(),
            what,
            regular_hours,
            tx,
            recent: feed.recent.clone(),
            stop: feed.stop.clone(),
            last_end: None,
        };
        tokio::spawn(run.run());
        feeds.insert(key, Arc::downgrade(&feed));
        Ok(LiveLease {
            feed,
            linger: self.linger,
        })
    }

    /// Feeds running now (lingering ones included).
    pub fn active(&self) -> usize {
        let feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        feeds.values().filter(|w| w.strong_count() > 0).count()
    }
}

/// The task of one feed.
struct Run {
    this: LiveBars,
    contract: ContractSpec,
    what: WhatToShow,
    regular_hours: bool,
    tx: broadcast::Sender<LiveEvent>,
    recent: Arc<Mutex<VecDeque<StoredBar>>>,
    stop: CancellationToken,
    /// End of the last bar sent (unix seconds).
    last_end: Option<i64>,
}

impl Run {
    async fn run(mut self) {
        let mut links = self.this.fanout.source().link_state();
        let mut stale_since: Option<Instant> = None;
        loop {
            let generation = loop {
                if let Some(g) = links.borrow_and_update().generation {
                    break g;
                }
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    changed = links.changed() => if changed.is_err() { return },
                }
            };
            let key = PacingKey {
                request: format!(
                    "realtime:{}:{}:{}:{generation}",
                    self.contract.con_id,
                    self.what.ib_text(),
                    self.regular_hours
                ),
                group: format!(
                    "{}:{}:{}",
                    self.contract.con_id,
                    self.contract.exchange,
                    self.what.ib_text()
                ),
            };
            let opened = tokio::select! {
                _ = self.stop.cancelled() => return,
                opened = async {
                    let _ = self.this.bars.pacer().admit(&key, true).await;
                    self.this.source.realtime_bars(&self.contract, self.what, self.regular_hours).await
                } => opened,
            };
            let mut stream = match opened {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, con_id = self.contract.con_id, "real-time bars refused");
                    tokio::select! {
                        _ = self.stop.cancelled() => return,
                        _ = tokio::time::sleep(RETRY) => continue,
                    }
                }
            };
            loop {
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    item = stream.next() => match item {
                        Some(Ok(bar)) => {
                            self.fill_hole(bar.time).await;
                            if let Some(since) = stale_since.take() {
                                let _ = self.tx.send(LiveEvent::Resumed { gap: since.elapsed() });
                            }
                            self.send(bar);
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, con_id = self.contract.con_id, "real-time bars ended");
                            break;
                        }
                        None => break,
                    },
                    changed = links.changed() => {
                        if changed.is_err() { return }
                        if links.borrow().generation != Some(generation) { break }
                    }
                }
            }
            if stale_since.is_none() {
                stale_since = Some(Instant::now());
                let _ = self.tx.send(LiveEvent::Stale);
            }
            // The same session still up: IB ended the request; do not ask at once.
            if links.borrow().generation == Some(generation) {
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    _ = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    }

    /// Sends the five-second bars between the last one sent and `next` from history.
    async fn fill_hole(&mut self, next: i64) {
        let Some(from) = self.last_end.filter(|end| *end < next) else {
            return;
        };
        let size = BarSize::Sec5;
        let from = from.max(next - size.max_duration().as_secs() as i64);
        let query = BarQuery {
            con_id: self.contract.con_id,
            size,
            what: self.what,
            regular_hours: self.regular_hours,
            start: from,
            end: next,
        };
        match self.this.bars.get(&self.contract, &query, true).await {
            Ok(answer) => {
                for bar in answer.bars.iter() {
                    self.send(*bar);
                }
            }
            Err(e) => tracing::warn!(error = %e, "bars missed while stale not fetched"),
        }
    }

    fn send(&mut self, bar: StoredBar) {
        if self.last_end.is_some_and(|end| bar.time < end) {
            return;
        }
        self.last_end = Some(bar.time + REALTIME_SECONDS);
        {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back(bar);
        }
        let _ = self.tx.send(LiveEvent::Bar(bar));
    }
}
