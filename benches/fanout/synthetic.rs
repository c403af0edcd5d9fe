//! A market-data source with no IB session behind it, for measuring the fan-out alone:
//! every instrument ticks on its own, every symbol resolves at once, and every underlying
//! lists an option chain ([`EXPIRATIONS`] × [`STRIKES`] calls and puts).
//!
//! Included by the fan-out and backends benches and the request fuzz checks, each using
//! a part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use ibstream::fanout::tick::{PriceField, SizeField, Tick};
use ibstream::fanout::{
    ChainParams, ContractDetails, ContractSpec, LinkState, MarketDataSource, MarketDataType, Right,
    SecType, SourceError, SourceEvent, StampedNotice, SymbolMatch, TickStream,
};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::MissedTickBehavior;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

/// Expirations every underlying lists, a week apart from next week on.
pub const EXPIRATIONS: usize = 5;
/// Strikes every expiration lists: 1.0 apart, centred on [`UNDERLYING_PRICE`].
pub const STRIKES: usize = 100;
/// Where every underlying trades.
pub const UNDERLYING_PRICE: f64 = 100.0;

/// A source with session 1 up whose instruments tick every `interval`.
pub struct Synthetic {
    /// Session 1, up for good: the benchmark measures the fan-out, not reconnects.
    link: watch::Sender<LinkState>,
    /// Never sent on: no farm ever goes down here.
    notices: broadcast::Sender<StampedNotice>,
    interval: Duration,
    /// Whether ticks fill every field a quote from IB has (sizes, last trade, session
    /// prices) or only bid, ask and volume.
    full_quotes: bool,
    /// Where the tick tasks run.
    market: Market,
    /// Ends every tick task, so a finished measurement leaves nothing running.
    stop: CancellationToken,
}

/// Where tick tasks run.
enum Market {
    /// On the runtime of whoever subscribes.
    Inline,
    /// On a thread of their own, so the source's CPU time can be told from the
    /// server's.
    Thread {
        handle: tokio::runtime::Handle,
        tid: u32,
    },
}

impl Synthetic {
    /// Instruments that tick their bid every `interval` (as fast as they are read when
    /// zero), with an ask and a volume from the start, on the caller's runtime.
    pub fn new(interval: Duration) -> Arc<Synthetic> {
        Synthetic::build(interval, false, Market::Inline, CancellationToken::new())
    }

    /// Instruments whose quotes carry every field IB sends for a stock (bid, ask and
    /// their sizes, last trade, volume, open, high, low, close), each stepping every
    /// `interval` (at least a millisecond) at a phase of its own: a step moves the
    /// market or prints a trade. The ticks are made on a thread of their own
    /// ([`Synthetic::thread_id`]).
    pub fn realistic(interval: Duration) -> Arc<Synthetic> {
        let stop = CancellationToken::new();
        let market = market_thread(stop.clone());
        Synthetic::build(interval.max(Duration::from_millis(1)), true, market, stop)
    }

    fn build(
        interval: Duration,
        full_quotes: bool,
        market: Market,
        stop: CancellationToken,
    ) -> Arc<Synthetic> {
        Arc::new(Synthetic {
            link: watch::Sender::new(LinkState {
                generation: Some(1),
            }),
            notices: broadcast::Sender::new(1),
            interval,
            full_quotes,
            market,
            stop,
        })
    }

    /// Stops every instrument's ticks for good.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// The thread making the ticks, when they have one of their own.
    pub fn thread_id(&self) -> Option<u32> {
        match self.market {
            Market::Inline => None,
            Market::Thread { tid, .. } => Some(tid),
        }
    }
}

impl Drop for Synthetic {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

unsafe extern "C" {
    fn gettid() -> i32;
}

/// A thread running a single-threaded runtime until `stop`.
fn market_thread(stop: CancellationToken) -> Market {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("synthetic-market".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("market runtime");
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { gettid() } as u32;
            let _ = tx.send((runtime.handle().clone(), tid));
            runtime.block_on(stop.cancelled());
        })
        .expect("market thread");
    let (handle, tid) = rx.recv().expect("the market thread starts");
    Market::Thread { handle, tid }
}

/// The conId [`Synthetic`] gives `symbol`: stable, so another server can agree with it.
pub fn con_id_of(symbol: &str) -> i64 {
    symbol
        .bytes()
        .fold(7i64, |h, b| (h * 131 + i64::from(b)) % 1_000_000_007)
        + 1
}

/// The expirations every underlying lists (`YYYYMMDD`).
pub fn expirations() -> Vec<String> {
    let today = time::OffsetDateTime::now_utc().date();
    (1..=EXPIRATIONS as i64)
        .map(|week| {
            let d = today + time::Duration::days(7 * week);
            format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
        })
        .collect()
}

/// The strikes every expiration lists.
pub fn strikes() -> Vec<f64> {
    let lowest = UNDERLYING_PRICE - (STRIKES / 2) as f64;
    (0..STRIKES).map(|i| lowest + i as f64).collect()
}

/// Where an instrument's quotes start: the underlying's price, or an option's value
/// (intrinsic plus some time value) so that computed Greeks find an implied volatility.
fn start_price(contract: &ContractSpec) -> f64 {
    match (contract.strike, contract.right) {
        (Some(k), Some(Right::Call)) => (UNDERLYING_PRICE - k).max(0.0) + 2.0,
        (Some(k), Some(Right::Put)) => (k - UNDERLYING_PRICE).max(0.0) + 2.0,
        _ => UNDERLYING_PRICE,
    }
}

/// How one instrument ticks.
struct Ticker {
    interval: Duration,
    /// Where in the interval this instrument steps, so instruments do not all step in
    /// the same millisecond.
    phase: Duration,
    full_quotes: bool,
    price: f64,
    stop: CancellationToken,
}

impl Ticker {
    /// Endless ticks, until the reader leaves or the source stops.
    fn stream(self, market: &Market) -> TickStream {
        let (tx, rx) = mpsc::channel(64);
        let stop = self.stop.clone();
        let task = async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = self.run(tx) => {}
            }
        };
        match market {
            Market::Inline => drop(tokio::spawn(task)),
            Market::Thread { handle, .. } => drop(handle.spawn(task)),
        }
        ReceiverStream::new(rx).boxed()
    }

    async fn run(self, tx: mpsc::Sender<SourceEvent>) {
        // One buffer for every step: the source allocates nothing per tick, so the
        // bench's allocation count is the fan-out's.
        let mut ticks = Vec::new();
        let mut price = self.price;
        self.opening(price, &mut ticks);
        if send(&tx, &mut ticks).await.is_err() {
            return;
        }
        let mut every = (!self.interval.is_zero()).then(|| {
            let first = tokio::time::Instant::now() + self.phase;
            let mut every = tokio::time::interval_at(first, self.interval);
            // Ticks keep their average rate however late a step runs.
            every.set_missed_tick_behavior(MissedTickBehavior::Burst);
            every
        });
        for step in 0u64.. {
            price += 0.01;
            self.step(step, price, &mut ticks);
            if send(&tx, &mut ticks).await.is_err() {
                return;
            }
            // The feed publishes each step on its own (it folds ticks that are ready
            // together), also when a sub-millisecond interval catches up in a burst.
            tokio::task::yield_now().await;
            if let Some(every) = every.as_mut() {
                every.tick().await;
            }
        }
    }

    /// What IB sends first: the whole quote.
    fn opening(&self, price: f64, out: &mut Vec<Tick>) {
        if !self.full_quotes {
            out.extend([
                Tick::Price(PriceField::Ask, 200.0),
                Tick::Size(SizeField::Volume, 1.0),
            ]);
            return;
        }
        out.extend([
            Tick::DataType(MarketDataType::Live),
            Tick::Price(PriceField::Bid, price - 0.01),
            Tick::Price(PriceField::Ask, price + 0.01),
            Tick::Size(SizeField::Bid, 300.0),
            Tick::Size(SizeField::Ask, 500.0),
            Tick::Price(PriceField::Last, price),
            Tick::Size(SizeField::Last, 100.0),
            Tick::Size(SizeField::Volume, 1_234_500.0),
            Tick::LastTradeTime(unix_now()),
            Tick::Price(PriceField::Open, price - 1.25),
            Tick::Price(PriceField::High, price + 2.5),
            Tick::Price(PriceField::Low, price - 2.5),
            Tick::Price(PriceField::Close, price - 0.75),
        ]);
    }

    /// One step: the lean quote moves its bid; the full one alternates a new market
    /// (bid and ask) and a trade (last, size, volume, time), as IB sends them.
    fn step(&self, step: u64, price: f64, out: &mut Vec<Tick>) {
        if !self.full_quotes {
            out.push(Tick::Price(PriceField::Bid, price));
        } else if step.is_multiple_of(2) {
            out.extend([
                Tick::Price(PriceField::Bid, price - 0.01),
                Tick::Price(PriceField::Ask, price + 0.01),
            ]);
        } else {
            out.extend([
                Tick::Price(PriceField::Last, price),
                Tick::Size(SizeField::Last, 100.0),
                Tick::Size(SizeField::Volume, 1_234_500.0 + step as f64 * 100.0),
                Tick::LastTradeTime(unix_now()),
            ]);
        }
    }
}

/// Sends and empties `ticks`; an error when the reader has left.
async fn send(tx: &mpsc::Sender<SourceEvent>, ticks: &mut Vec<Tick>) -> Result<(), ()> {
    for t in ticks.drain(..) {
        tx.send(SourceEvent::Tick(t)).await.map_err(|_| ())?;
    }
    Ok(())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Every option the chain of `underlying` lists for `query`'s expiry and right (all of
/// them when those are unset), or the one `query` names by strike.
fn listed_options(query: &ContractSpec) -> Vec<ContractDetails> {
    let expiries = if query.expiry.is_empty() {
        expirations()
    } else {
        vec![query.expiry.clone()]
    };
    let rights = match query.right {
        Some(r) => vec![r],
        None => vec![Right::Call, Right::Put],
    };
    let mut out = Vec::new();
    for expiry in &expiries {
        for right in &rights {
            for strike in strikes() {
                if query.strike.is_some_and(|k| (k - strike).abs() > 1e-9) {
                    continue;
                }
                let local = format!(
                    "{} {expiry} {}{strike}",
                    query.symbol,
                    if *right == Right::Call { 'C' } else { 'P' }
                );
                out.push(ContractDetails {
                    contract: ContractSpec {
                        con_id: con_id_of(&local),
                        symbol: query.symbol.clone(),
                        sec_type: SecType::Option,
                        exchange: "SMART".into(),
                        currency: "USD".into(),
                        expiry: expiry.clone(),
                        strike: Some(strike),
                        right: Some(*right),
                        multiplier: "100".into(),
                        trading_class: query.symbol.clone(),
                        local_symbol: local,
                        ..ContractSpec::default()
                    },
                    ..ContractDetails::default()
                });
            }
        }
    }
    out
}

impl MarketDataSource for Synthetic {
    fn link_state(&self) -> watch::Receiver<LinkState> {
        self.link.subscribe()
    }

    fn data_notices(&self) -> broadcast::Receiver<StampedNotice> {
        self.notices.subscribe()
    }

    fn subscribe(
        &self,
        _generation: u64,
        contract: &ContractSpec,
        _data_type: MarketDataType,
    ) -> BoxFuture<'static, Result<TickStream, SourceError>> {
        // A phase from the conId: spread evenly, the same on every run.
        let spread = (contract.con_id.unsigned_abs().wrapping_mul(2_654_435_761) % 1024) as u32;
        let ticker = Ticker {
            interval: self.interval,
            phase: self.interval * spread / 1024,
            full_quotes: self.full_quotes,
            price: start_price(contract),
            stop: self.stop.clone(),
        };
        futures::future::ready(Ok(ticker.stream(&self.market))).boxed()
    }

    fn snapshot(
        &self,
        _contract: &ContractSpec,
        _data_type: MarketDataType,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<Tick>, SourceError>> {
        futures::future::ready(Err(SourceError::Deadline(deadline))).boxed()
    }

    fn contract_details(
        &self,
        contract: &ContractSpec,
        _deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<ContractDetails>, SourceError>> {
        if contract.sec_type == SecType::Option {
            return futures::future::ready(Ok(listed_options(contract))).boxed();
        }
        let mut c = contract.clone();
        c.con_id = con_id_of(&c.symbol);
        futures::future::ready(Ok(vec![ContractDetails {
            contract: c,
            ..ContractDetails::default()
        }]))
        .boxed()
    }

    fn matching_symbols(
        &self,
        _pattern: &str,
        _deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<SymbolMatch>, SourceError>> {
        futures::future::ready(Ok(Vec::new())).boxed()
    }

    fn option_params(
        &self,
        underlying: &ContractSpec,
        _deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<ChainParams>, SourceError>> {
        futures::future::ready(Ok(vec![ChainParams {
            exchange: "SMART".into(),
            underlying_con_id: underlying.con_id,
            trading_class: underlying.symbol.clone(),
            multiplier: "100".into(),
            expirations: expirations(),
            strikes: strikes(),
        }]))
        .boxed()
    }
}
