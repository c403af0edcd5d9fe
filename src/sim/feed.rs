//! One producer per watched instrument. A producer steps the model, encodes each update once
//! and broadcasts it; every subscription on the instrument, on any connection, receives the
//! same `Arc`. The producer lives as long as somebody holds a [`Feed`] lease, so an
//! instrument nobody watches costs nothing. Option producers follow their underlying's feed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tracing::debug;

use super::model::Market;
use super::ticks::TickUpdate;

/// Updates a slow subscriber may fall behind before it skips ahead (it then resumes with the
/// newest; the next update of a changed field carries its current value).
const FEED_BUFFER: usize = 256;

/// A running producer; dropping the last lease stops it.
#[derive(Debug)]
pub struct Feed {
    tx: broadcast::Sender<Arc<TickUpdate>>,
    task: JoinHandle<()>,
    /// Options keep their underlying's producer alive.
    _underlying: Option<Arc<Feed>>,
}

impl Feed {
    /// A receiver of the updates from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<TickUpdate>> {
        self.tx.subscribe()
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts producers on demand and shares them.
#[derive(Debug)]
pub struct FeedHub {
    market: Arc<Market>,
    interval: watch::Receiver<Duration>,
    feeds: Mutex<HashMap<usize, Weak<Feed>>>,
}

impl FeedHub {
    /// A hub stepping underlyings every `interval` (changeable while running).
    pub fn new(market: Arc<Market>, interval: watch::Receiver<Duration>) -> Self {
        Self {
            market,
            interval,
            feeds: Mutex::new(HashMap::new()),
        }
    }

    /// Number of instruments with a running producer.
    pub fn active(&self) -> usize {
        self.lock()
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Weak<Feed>>> {
        self.feeds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A lease on the producer of instrument `index`, starting it if needed.
    pub fn lease(&self, index: usize) -> Arc<Feed> {
        let underlying = self
            .market
            .universe()
            .get(index)
            .option
            .as_ref()
            .map(|t| t.underlying);
        // Lease the underlying first: taking it inside the map lock would re-enter the lock.
        let underlying_feed = underlying.map(|u| self.lease(u));
        let mut feeds = self.lock();
        if let Some(feed) = feeds.get(&index).and_then(Weak::upgrade) {
            return feed;
        }
        feeds.retain(|_, w| w.strong_count() > 0);
        let (tx, _) = broadcast::channel(FEED_BUFFER);
        let task = match &underlying_feed {
            None => tokio::spawn(run_underlying(
                self.market.clone(),
                index,
                self.interval.clone(),
                tx.clone(),
            )),
            Some(parent) => tokio::spawn(run_option(
                self.market.clone(),
                index,
                parent.subscribe(),
                tx.clone(),
            )),
        };
        debug!(index, "instrument feed started");
        let feed = Arc::new(Feed {
            tx,
            task,
            _underlying: underlying_feed,
        });
        feeds.insert(index, Arc::downgrade(&feed));
        feed
    }
}

async fn run_underlying(
    market: Arc<Market>,
    index: usize,
    mut interval: watch::Receiver<Duration>,
    tx: broadcast::Sender<Arc<TickUpdate>>,
) {
    let mut period = *interval.borrow_and_update();
    let mut next = tokio::time::Instant::now() + period;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            changed = interval.changed() => {
                if changed.is_err() {
                    return;
                }
                period = *interval.borrow_and_update();
                next = tokio::time::Instant::now() + period;
                continue;
            }
        }
        // Catch up without bursting after a stall: the next step is one period from now.
        next = (next + period).max(tokio::time::Instant::now());
        let Some(update) = market.step_underlying(index, OffsetDateTime::now_utc()) else {
            return;
        };
        // No receivers is fine: an option producer may be between updates.
        let _ = tx.send(Arc::new(update));
    }
}

async fn run_option(
    market: Arc<Market>,
    index: usize,
    mut underlying: broadcast::Receiver<Arc<TickUpdate>>,
    tx: broadcast::Sender<Arc<TickUpdate>>,
) {
    loop {
        let spot = match underlying.recv().await {
            Ok(update) => update.spot,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let ticks = market.option_ticks(index, spot, OffsetDateTime::now_utc(), false);
        let _ = tx.send(Arc::new(TickUpdate::new(spot, ticks)));
    }
}
