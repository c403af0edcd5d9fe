//! Option-chain streams: a window of options resolved to conIds, subscribed through the
//! shared fan-out (overlapping windows share lines), each option's snapshot as soon as
//! it has data, then changes; a window around the money follows the underlying.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::chain_window::{
    StrikeSelection, nearest_expirations, nearest_strike, pick_params, select_strikes,
};
use super::contracts::Contracts;
use super::error::FanoutError;
use super::feed::FeedView;
use super::greeks_calc::{GreeksParams, option_greeks, reference_price};
use super::reader::{Reader, ReaderEvent, StatusKind};
use super::registry::{Fanout, FeedRef};
use super::types::{ChainParams, ContractDetails, ContractSpec, Greeks, Right};

/// What a client asks for.
#[derive(Debug, Clone)]
pub struct ChainRequest {
    pub underlying: ContractSpec,
    /// Explicit expirations; empty takes the nearest `expiration_count`.
    pub expirations: Vec<String>,
    pub expiration_count: usize,
    pub strikes: StrikeSelection,
    pub rights: Vec<Right>,
    pub trading_class: String,
    pub allow_delayed: bool,
}

/// One event of a chain stream.
#[derive(Debug, Clone)]
pub enum ChainEvent {
    /// The options watched now; `removed` left the window since the last one.
    Window {
        options: Vec<Arc<ContractSpec>>,
        center: Option<f64>,
        removed: Vec<i64>,
    },
    Option {
        contract: Arc<ContractSpec>,
        view: Arc<FeedView>,
        greeks: Option<Greeks>,
    },
    Underlying(Arc<FeedView>),
    Status {
        contract: Arc<ContractSpec>,
        kind: StatusKind,
    },
    /// Every option has sent its first value (or failed, or the deadline passed).
    SnapshotComplete {
        options: usize,
    },
}

/// Events a slow chain client may have waiting; past this the task stops reading the
/// fan-out, which conflates for it. Small, because whatever waits here is old by the
/// time a slow client reads it, and it adds to what the client's own HTTP/2 window holds:
/// with 64, a client reading three events a second saw data twenty seconds old after each
/// recovery, and with 8 still over ten behind an 8 KiB window. Four still lets a fast
/// client take events in batches.
const CHAIN_QUEUE: usize = 4;

/// Opens option-chain streams.
pub struct Chains {
    pub fanout: Fanout,
    pub contracts: Arc<Contracts>,
    pub greeks: GreeksParams,
    /// Bounds the wait for the underlying's price and for the window's snapshot.
    pub deadline: Duration,
}

type Listing = (String, Right, Arc<Vec<Arc<ContractDetails>>>);

impl Chains {
    /// Resolves the window and takes its lines (all or nothing), then streams it. Answers
    /// within the deadline in all: each look-up and the wait for the underlying's price
    /// has its own, and while the gateway is away they would add up.
    pub async fn open(&self, req: ChainRequest) -> Result<mpsc::Receiver<ChainEvent>, FanoutError> {
        tokio::time::timeout(self.deadline, self.open_within(req))
            .await
            .map_err(|_| FanoutError::Deadline(self.deadline))?
    }

    async fn open_within(
        &self,
        req: ChainRequest,
    ) -> Result<mpsc::Receiver<ChainEvent>, FanoutError> {
        let underlying = self.contracts.resolve(&req.underlying).await?;
        let all = self.contracts.option_params(&underlying).await?;
        let params = pick_params(&all, &underlying.contract.symbol, &req.trading_class)
            .ok_or_else(|| {
                FanoutError::invalid(
                    "trading_class",
                    format!("{} lists no such trading class", underlying.contract.symbol),
                )
            })?
            .clone();
        let expirations = choose_expirations(&req, &params)?;
        let und_spec = Arc::new(underlying.contract.clone());
        let und_ref = self
            .fanout
            .acquire(std::slice::from_ref(&und_spec), req.allow_delayed)?
            .remove(0);
        let price = match req.strikes {
            StrikeSelection::AroundMoney { .. } => {
                Some(wait_for_price(&und_ref, self.deadline).await?)
            }
            StrikeSelection::Range { .. } => reference_price(&und_ref.current().quote),
        };
        let mut listings = Vec::new();
        for expiry in &expirations {
            for right in &req.rights {
                let listed = self
                    .contracts
                    .listed_options(&underlying.contract, &params, expiry, *right)
                    .await?;
                listings.push((expiry.clone(), *right, listed));
            }
        }
        let selected = select_window(&listings, req.strikes, price);
        self.check_fits(selected.size())?;
        let (window, center) = selected.build();
        if window.is_empty() {
            return Err(FanoutError::NotFound(format!(
                "no listed options of {} match the window",
                underlying.contract.symbol
            )));
        }
        let refs = self.fanout.acquire(&window, req.allow_delayed)?;
        let (tx, rx) = mpsc::channel(CHAIN_QUEUE);
        let mut reader = Reader::new(self.fanout.metrics().clone(), true);
        let und_slot = reader.add(und_ref, req.allow_delayed);
        let mut task = ChainTask {
            reader,
            tx,
            und_slot,
            options: HashMap::new(),
            listings,
            selection: req.strikes,
            center,
            fanout: self.fanout.clone(),
            allow_delayed: req.allow_delayed,
            greeks: self.greeks,
            snapshot: Some(Snapshot {
                waiting: HashSet::new(),
                dirty: HashSet::new(),
                until: Instant::now() + self.deadline,
            }),
        };
        for r in refs {
            let contract = r.contract().clone();
            let slot = task.reader.add(r, req.allow_delayed);
            task.options.insert(slot, contract);
        }
        if let Some(s) = task.snapshot.as_mut() {
            s.waiting = task.options.keys().copied().collect();
        }
        tokio::spawn(task.run(price));
        Ok(rx)
    }
}

impl Chains {
    /// Refuses a window larger than the whole line budget before anything is allocated
    /// per option: it could never be served, and building it costs memory in proportion
    /// to what the client asked. (Whether it fits the lines free now is `acquire`'s
    /// exact check, which counts the lines other windows already share.)
    fn check_fits(&self, size: usize) -> Result<(), FanoutError> {
        let usage = self.fanout.line_usage();
        if size > usage.budget {
            return Err(FanoutError::LineBudget {
                in_use: usage.in_use,
                budget: usage.budget,
                free: usage.budget.saturating_sub(usage.in_use),
                requested: size,
            });
        }
        Ok(())
    }
}

fn choose_expirations(
    req: &ChainRequest,
    params: &ChainParams,
) -> Result<Vec<String>, FanoutError> {
    if req.expirations.is_empty() {
        let today = time::OffsetDateTime::now_utc().date();
        let today = format!(
            "{:04}{:02}{:02}",
            today.year(),
            u8::from(today.month()),
            today.day()
        );
        let chosen = nearest_expirations(&params.expirations, &today, req.expiration_count.max(1));
        if chosen.is_empty() {
            return Err(FanoutError::NotFound(format!(
                "IB lists no future expirations of {}",
                req.underlying.symbol
            )));
        }
        return Ok(chosen);
    }
    for (i, e) in req.expirations.iter().enumerate() {
        if !params.expirations.contains(e) {
            return Err(FanoutError::invalid(
                format!("expirations[{i}]"),
                format!(
                    "{e} is not a listed expiration of trading class {}",
                    params.trading_class
                ),
            ));
        }
    }
    Ok(req.expirations.clone())
}

/// Waits until the underlying has a price, bounded by `deadline`.
async fn wait_for_price(feed: &FeedRef, deadline: Duration) -> Result<f64, FanoutError> {
    let mut rx = feed.watch();
    let wait = async {
        loop {
            let view = rx.borrow_and_update().clone();
            if let super::feed::FeedStatus::Failed(e) = &view.status {
                return Err(FanoutError::from(e.clone()));
            }
            if let Some(p) = reference_price(&view.quote) {
                return Ok(p);
            }
            if rx.changed().await.is_err() {
                return Err(FanoutError::Unavailable);
            }
        }
    };
    tokio::time::timeout(deadline, wait)
        .await
        .map_err(|_| FanoutError::Deadline(deadline))?
}

/// What a selection picks from the listings, before any option is copied: per expiry,
/// its listings and the chosen strikes; and the strike nearest the price.
struct Selected<'a> {
    expiries: Vec<(Vec<&'a Listing>, Vec<f64>)>,
    center: Option<f64>,
}

impl Selected<'_> {
    fn chosen(&self) -> impl Iterator<Item = &ContractDetails> {
        self.expiries.iter().flat_map(|(of_expiry, strikes)| {
            of_expiry.iter().flat_map(move |(_, _, listed)| {
                listed
                    .iter()
                    .filter(move |d| d.contract.strike.is_some_and(|k| strikes.contains(&k)))
                    .map(|d| d.as_ref())
            })
        })
    }

    /// Options in the window.
    fn size(&self) -> usize {
        self.chosen().count()
    }

    /// The window's options and the strike it is centred on.
    fn build(&self) -> (Vec<Arc<ContractSpec>>, Option<f64>) {
        let window = self
            .chosen()
            .map(|d| Arc::new(d.contract.clone()))
            .collect();
        (window, self.center)
    }
}

fn select_window(
    listings: &[Listing],
    selection: StrikeSelection,
    price: Option<f64>,
) -> Selected<'_> {
    let mut expiries = Vec::new();
    let mut center = None;
    let names: Vec<&String> = {
        let mut e: Vec<&String> = listings.iter().map(|(e, _, _)| e).collect();
        e.dedup();
        e
    };
    for expiry in names {
        let of_expiry: Vec<&Listing> = listings.iter().filter(|(e, _, _)| e == expiry).collect();
        let mut strikes: Vec<f64> = of_expiry
            .iter()
            .flat_map(|(_, _, l)| l.iter().filter_map(|d| d.contract.strike))
            .collect();
        strikes.sort_by(f64::total_cmp);
        strikes.dedup();
        if center.is_none() {
            center = price.and_then(|p| nearest_strike(&strikes, p));
        }
        let chosen = select_strikes(&strikes, selection, price);
        expiries.push((of_expiry, chosen));
    }
    Selected { expiries, center }
}

/// The window's options and the strike it is centred on.
fn build_window(
    listings: &[Listing],
    selection: StrikeSelection,
    price: Option<f64>,
) -> (Vec<Arc<ContractSpec>>, Option<f64>) {
    select_window(listings, selection, price).build()
}

struct Snapshot {
    /// Option slots that have not sent a first value yet.
    waiting: HashSet<usize>,
    /// Option slots that changed after their first value; sent when the snapshot ends.
    dirty: HashSet<usize>,
    until: Instant,
}

struct ChainTask {
    reader: Reader,
    tx: mpsc::Sender<ChainEvent>,
    und_slot: usize,
    options: HashMap<usize, Arc<ContractSpec>>,
    listings: Vec<Listing>,
    selection: StrikeSelection,
    center: Option<f64>,
    fanout: Fanout,
    allow_delayed: bool,
    greeks: GreeksParams,
    snapshot: Option<Snapshot>,
}

/// The client left.
struct Gone;

async fn send(tx: &mpsc::Sender<ChainEvent>, event: ChainEvent) -> Result<(), Gone> {
    tx.send(event).await.map_err(|_| Gone)
}

impl ChainTask {
    async fn run(mut self, price: Option<f64>) {
        let _ = self.serve(price).await;
    }

    async fn serve(&mut self, price: Option<f64>) -> Result<(), Gone> {
        self.send_window(price, Vec::new()).await?;
        loop {
            let until = self.snapshot.as_ref().map(|s| s.until);
            tokio::select! {
                _ = self.tx.closed() => return Err(Gone),
                _ = tokio::time::sleep_until(until.unwrap_or_else(Instant::now)), if until.is_some() => {
                    self.finish_snapshot().await?;
                }
                event = self.reader.next() => match event {
                    Some(e) => self.on_event(e).await?,
                    None => return Ok(()),
                }
            }
        }
    }

    async fn send(&mut self, event: ChainEvent) -> Result<(), Gone> {
        send(&self.tx, event).await
    }

    async fn send_window(&mut self, price: Option<f64>, removed: Vec<i64>) -> Result<(), Gone> {
        let event = self.window_event(price, removed);
        self.send(event).await
    }

    fn window_event(&self, price: Option<f64>, removed: Vec<i64>) -> ChainEvent {
        let mut options: Vec<Arc<ContractSpec>> = self.options.values().cloned().collect();
        options.sort_by(|a, b| {
            (
                a.expiry.as_str(),
                a.right.map(|r| r == Right::Put),
                a.strike.unwrap_or(0.0),
            )
                .partial_cmp(&(
                    b.expiry.as_str(),
                    b.right.map(|r| r == Right::Put),
                    b.strike.unwrap_or(0.0),
                ))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let center = match self.selection {
            StrikeSelection::AroundMoney { .. } => price,
            StrikeSelection::Range { .. } => None,
        };
        ChainEvent::Window {
            options,
            center,
            removed,
        }
    }

    fn underlying_price(&self) -> Option<f64> {
        self.reader
            .feed(self.und_slot)
            .and_then(|f| reference_price(&f.current().quote))
    }

    fn option_event(&self, contract: &Arc<ContractSpec>, view: Arc<FeedView>) -> ChainEvent {
        let greeks = option_greeks(
            contract,
            &view,
            self.underlying_price(),
            &self.greeks,
            SystemTime::now(),
        );
        ChainEvent::Option {
            contract: contract.clone(),
            view,
            greeks,
        }
    }

    async fn on_event(&mut self, event: ReaderEvent) -> Result<(), Gone> {
        match event {
            ReaderEvent::Update { slot, view, .. } if slot == self.und_slot => {
                let price = reference_price(&view.quote);
                self.send(ChainEvent::Underlying(view)).await?;
                if let Some(p) = price {
                    self.recentre(p).await?;
                }
            }
            ReaderEvent::Update { slot, view, .. } => {
                let Some(contract) = self.options.get(&slot).cloned() else {
                    return Ok(());
                };
                if let Some(s) = self.snapshot.as_mut() {
                    // The snapshot shows each option once it has a two-sided market.
                    let ready = view.quote.bid.is_some() && view.quote.ask.is_some();
                    if !ready || !s.waiting.remove(&slot) {
                        s.dirty.insert(slot);
                        return Ok(());
                    }
                    s.dirty.remove(&slot);
                    let done = s.waiting.is_empty();
                    let event = self.option_event(&contract, view);
                    self.send(event).await?;
                    if done {
                        self.finish_snapshot().await?;
                    }
                } else {
                    let event = self.option_event(&contract, view);
                    self.send(event).await?;
                }
            }
            ReaderEvent::Status {
                kind: StatusKind::Subscribed,
                ..
            } => {}
            ReaderEvent::Status { slot, kind } => {
                let contract = if slot == self.und_slot {
                    self.reader.feed(slot).map(|f| f.contract().clone())
                } else {
                    self.options.get(&slot).cloned()
                };
                if matches!(kind, StatusKind::Failed(_))
                    && let Some(s) = self.snapshot.as_mut()
                    && s.waiting.remove(&slot)
                    && s.waiting.is_empty()
                {
                    if let Some(contract) = contract {
                        self.send(ChainEvent::Status { contract, kind }).await?;
                    }
                    return self.finish_snapshot().await;
                }
                if let Some(contract) = contract {
                    self.send(ChainEvent::Status { contract, kind }).await?;
                }
            }
        }
        Ok(())
    }

    async fn finish_snapshot(&mut self) -> Result<(), Gone> {
        let Some(s) = self.snapshot.take() else {
            return Ok(());
        };
        let options = self.options.len() - s.waiting.len();
        self.send(ChainEvent::SnapshotComplete { options }).await?;
        // Options that changed while others were still loading: their newest values are
        // the first changes.
        for slot in s.dirty {
            let event = match (self.options.get(&slot), self.reader.feed(slot)) {
                (Some(contract), Some(feed)) => self.option_event(contract, feed.current()),
                _ => continue,
            };
            self.send(event).await?;
        }
        Ok(())
    }

    /// Moves a window around the money when the strike nearest the underlying changed:
    /// the new strikes are taken before the old ones are released.
    async fn recentre(&mut self, price: f64) -> Result<(), Gone> {
        if !matches!(self.selection, StrikeSelection::AroundMoney { .. }) || self.snapshot.is_some()
        {
            return Ok(());
        }
        let (window, center) = build_window(&self.listings, self.selection, Some(price));
        if center == self.center || window.is_empty() {
            return Ok(());
        }
        let held: HashMap<i64, usize> = self
            .options
            .iter()
            .map(|(slot, c)| (c.con_id, *slot))
            .collect();
        let wanted: HashSet<i64> = window.iter().map(|c| c.con_id).collect();
        let added: Vec<Arc<ContractSpec>> = window
            .into_iter()
            .filter(|c| !held.contains_key(&c.con_id))
            .collect();
        let refs = match self.fanout.acquire(&added, self.allow_delayed) {
            Ok(refs) => refs,
            Err(e) => {
                tracing::info!(error = %e, "option window not re-centred");
                // Try again at the next strike rather than on every tick.
                self.center = center;
                return Ok(());
            }
        };
        for r in refs {
            let contract = r.contract().clone();
            let slot = self.reader.add(r, self.allow_delayed);
            self.options.insert(slot, contract);
        }
        let mut removed = Vec::new();
        for (con_id, slot) in held {
            if !wanted.contains(&con_id) {
                self.reader.remove(slot);
                self.options.remove(&slot);
                removed.push(con_id);
            }
        }
        self.center = center;
        self.send_window(Some(price), removed).await
    }
}
