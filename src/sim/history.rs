//! Bars of the simulated market, historical and real-time, from one record so they agree.
//!
//! While an underlying is watched its walk steps, and every step is recorded here into
//! five-second slots (trades, midpoint, bid, ask): real-time bars are those slots, and
//! historical bars over the same time are made of the same slots, so live and
//! historical bars agree where they meet. Before the market started there is no record;
//! there the bars follow a seeded path: a sum of smooth noise at scales from 30 seconds
//! to a year, with the walk's volatility, that ends exactly at the walk's starting
//! price, so the same seed gives the same history and history runs into the live walk
//! without a jump. Between records (nobody watched, the walk stood still) bars are flat
//! at the last price, without volume.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::catalog::Kind;
use super::universe::Instrument;
use super::walk::{StepSample, round_to};
use crate::bars::spec::WhatToShow;

/// Seconds of a real-time bar and of a recorded slot.
pub const SLOT: i64 = 5;

/// How long records are kept (then history there is flat).
const RETENTION: i64 = 3 * 86_400;

/// How far back data exists before the market's start day (the head timestamp).
const HEAD_DAYS: i64 = 2 * 365;

const YEAR: f64 = 365.0 * 86_400.0;

/// Noise scales of the path before the start: 30 s × 4^k.
const OCTAVES: u32 = 11;

/// Open, high, low and close of something priced.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ohlc {
    open: f64,
    high: f64,
    low: f64,
    close: f64,
}

impl Ohlc {
    fn at(p: f64) -> Ohlc {
        Ohlc {
            open: p,
            high: p,
            low: p,
            close: p,
        }
    }

    fn add(&mut self, p: f64) {
        self.high = self.high.max(p);
        self.low = self.low.min(p);
        self.close = p;
    }

    /// `later` follows `self` in time.
    fn then(self, later: Ohlc) -> Ohlc {
        Ohlc {
            open: self.open,
            high: self.high.max(later.high),
            low: self.low.min(later.low),
            close: later.close,
        }
    }
}

/// Five seconds of one underlying's steps.
#[derive(Debug, Clone, Copy)]
struct Slot {
    trades: Option<Ohlc>,
    volume: f64,
    count: u32,
    notional: f64,
    mid: Ohlc,
    bid: Ohlc,
    ask: Ohlc,
}

impl Slot {
    fn new(s: &StepSample) -> Slot {
        let mut slot = Slot {
            trades: None,
            volume: 0.0,
            count: 0,
            notional: 0.0,
            mid: Ohlc::at(s.mid),
            bid: Ohlc::at(s.bid),
            ask: Ohlc::at(s.ask),
        };
        slot.trade(s);
        slot
    }

    fn add(&mut self, s: &StepSample) {
        self.mid.add(s.mid);
        self.bid.add(s.bid);
        self.ask.add(s.ask);
        self.trade(s);
    }

    fn trade(&mut self, s: &StepSample) {
        if let Some((price, size)) = s.trade {
            match &mut self.trades {
                Some(t) => t.add(price),
                None => self.trades = Some(Ohlc::at(price)),
            }
            self.volume += size;
            self.count += 1;
            self.notional += price * size;
        }
    }
}

/// One bar as the gateway sends it: volume, WAP and count −1 where the data type has
/// none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimBar {
    /// Start of the bar, unix seconds.
    pub time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub wap: f64,
    pub count: i32,
}

/// A bar being put together from its parts, oldest first.
#[derive(Default)]
struct Parts {
    ohlc: Option<Ohlc>,
    volume: f64,
    notional: f64,
    count: u32,
}

impl Parts {
    fn push(&mut self, ohlc: Ohlc, volume: f64, notional: f64, count: u32) {
        self.ohlc = Some(match self.ohlc {
            Some(before) => before.then(ohlc),
            None => ohlc,
        });
        self.volume += volume;
        self.notional += notional;
        self.count += count;
    }
}

/// The recorded slots and the seeded path of every underlying.
#[derive(Debug)]
pub struct History {
    seed: u64,
    /// When the market (every walk) started, unix seconds.
    started: i64,
    tapes: Mutex<HashMap<usize, BTreeMap<i64, Slot>>>,
}

impl History {
    pub fn new(seed: u64, started: i64) -> History {
        History {
            seed,
            started,
            tapes: Mutex::new(HashMap::new()),
        }
    }

    /// The earliest time with data (unix seconds): the same for every instrument.
    pub fn head(&self) -> i64 {
        self.started.div_euclid(86_400) * 86_400 - HEAD_DAYS * 86_400
    }

    /// Records the step of underlying `index` at `now` (unix seconds).
    pub(super) fn record(&self, index: usize, now: i64, sample: &StepSample) {
        let mut tapes = self.tapes.lock().unwrap_or_else(|e| e.into_inner());
        let tape = tapes.entry(index).or_default();
        let slot = now.div_euclid(SLOT) * SLOT;
        match tape.get_mut(&slot) {
            Some(s) => s.add(sample),
            None => {
                tape.insert(slot, Slot::new(sample));
                // Drop a day's worth at a time, not a slot per step.
                if tape
                    .first_key_value()
                    .is_some_and(|(t, _)| *t < now - RETENTION - 86_400)
                {
                    *tape = tape.split_off(&(now - RETENTION));
                }
            }
        }
    }

    /// Bars of `size` seconds starting in `[start, end)` and not after `now`, from the
    /// head timestamp on.
    #[allow(clippy::too_many_arguments)]
    pub fn bars(
        &self,
        inst: &Instrument,
        index: usize,
        what: WhatToShow,
        size: i64,
        start: i64,
        end: i64,
        now: i64,
    ) -> Vec<SimBar> {
        let size = size.max(1);
        let first = start.max(self.head()).div_euclid(size) * size;
        let tapes = self.tapes.lock().unwrap_or_else(|e| e.into_inner());
        let empty = BTreeMap::new();
        let tape = tapes.get(&index).unwrap_or(&empty);
        let mut out = Vec::new();
        let mut b = first;
        while b < end && b <= now {
            out.push(self.bar(inst, tape, what, b, b + size));
            b += size;
        }
        out
    }

    fn bar(
        &self,
        inst: &Instrument,
        tape: &BTreeMap<i64, Slot>,
        what: WhatToShow,
        from: i64,
        to: i64,
    ) -> SimBar {
        let tick = inst.min_tick;
        if matches!(
            what,
            WhatToShow::HistoricalVolatility | WhatToShow::ImpliedVolatility
        ) {
            return self.volatility_bar(inst, what, from);
        }
        let mut parts = Parts::default();
        if from < self.started {
            let (o, v, n, c) = self.seeded(inst, what, from, to.min(self.started));
            parts.push(o, v, n, c);
        }
        // A bar wholly before the start has no record (and an empty range, not a reversed one).
        let recorded = from.max(self.started).min(to)..to;
        for slot in tape.range(recorded).map(|(_, s)| s) {
            let ohlc = match what {
                WhatToShow::Trades | WhatToShow::AdjustedLast => slot.trades,
                WhatToShow::Midpoint => Some(slot.mid),
                WhatToShow::Bid => Some(slot.bid),
                WhatToShow::Ask => Some(slot.ask),
                WhatToShow::BidAsk => Some(Ohlc {
                    open: slot.bid.open,
                    high: slot.ask.high,
                    low: slot.bid.low,
                    close: slot.ask.close,
                }),
                WhatToShow::HistoricalVolatility | WhatToShow::ImpliedVolatility => None,
            };
            if let Some(ohlc) = ohlc {
                parts.push(ohlc, slot.volume, slot.notional, slot.count);
            }
        }
        let ohlc = parts
            .ohlc
            .unwrap_or_else(|| Ohlc::at(self.price_before(inst, tape, what, from)));
        let round = |p: f64| round_to(p, tick);
        let (volume, wap, count) = if what.has_volume() {
            let wap = if parts.volume > 0.0 {
                parts.notional / parts.volume
            } else {
                ohlc.close
            };
            (
                parts.volume,
                round_to(wap, tick / 100.0),
                parts.count as i32,
            )
        } else {
            (-1.0, -1.0, -1)
        };
        SimBar {
            time: from,
            open: round(ohlc.open),
            high: round(ohlc.high),
            low: round(ohlc.low),
            close: round(ohlc.close),
            volume,
            wap,
            count,
        }
    }

    /// The last price before `at`: the last record's close, else the walk's start.
    fn price_before(
        &self,
        inst: &Instrument,
        tape: &BTreeMap<i64, Slot>,
        what: WhatToShow,
        at: i64,
    ) -> f64 {
        let recorded = tape.range(..at).rev().find_map(|(_, s)| match what {
            WhatToShow::Trades | WhatToShow::AdjustedLast => s.trades.map(|t| t.close),
            WhatToShow::Bid | WhatToShow::BidAsk => Some(s.bid.close),
            WhatToShow::Ask => Some(s.ask.close),
            _ => Some(s.mid.close),
        });
        recorded.unwrap_or_else(|| self.seeded(inst, what, at - 1, at).0.close)
    }

    /// The seeded path over `[from, to)` (to ≤ start): prices, volume, notional, count.
    fn seeded(
        &self,
        inst: &Instrument,
        what: WhatToShow,
        from: i64,
        to: i64,
    ) -> (Ohlc, f64, f64, u32) {
        let span = (to - from).max(1);
        let samples = (span / SLOT).clamp(1, 24);
        let half_spread = inst.min_tick;
        let shift = match what {
            WhatToShow::Bid => -half_spread,
            WhatToShow::Ask => half_spread,
            _ => 0.0,
        };
        let mut ohlc = Ohlc::at(self.price(inst, from) + shift);
        for i in 1..=samples {
            ohlc.add(self.price(inst, from + span * i / samples) + shift);
        }
        if what == WhatToShow::BidAsk {
            ohlc.high += half_spread;
            ohlc.low -= half_spread;
        }
        let lot = if inst.entry.kind == Kind::Forex {
            1_000_000.0
        } else {
            100.0
        };
        let slots = (span as f64 / SLOT as f64).max(1.0);
        let per_slot = 1.0 + (self.hash(inst.con_id, 99, from) % 8) as f64;
        let volume = (slots * per_slot).round() * lot;
        let wap = (ohlc.open + ohlc.high + ohlc.low + ohlc.close) / 4.0;
        let count = (slots * per_slot / 2.0).ceil() as u32;
        (ohlc, volume, wap * volume, count)
    }

    /// A volatility bar: the instrument's volatility, bent by slow noise.
    fn volatility_bar(&self, inst: &Instrument, what: WhatToShow, from: i64) -> SimBar {
        let base = inst.entry.vol
            * if what == WhatToShow::ImpliedVolatility {
                1.1
            } else {
                1.0
            };
        let v = |t: i64| round_to(base * (1.0 + 0.1 * self.noise(inst.con_id, 8, t)), 1e-6);
        let (open, close) = (v(from), v(from + 1));
        SimBar {
            time: from,
            open,
            high: open.max(close),
            low: open.min(close),
            close,
            volume: -1.0,
            wap: -1.0,
            count: -1,
        }
    }

    /// The seeded price at `t` (unix seconds): the walk's starting price at the start.
    fn price(&self, inst: &Instrument, t: i64) -> f64 {
        let log = self.log_path(inst, t) - self.log_path(inst, self.started);
        inst.entry.price * log.exp()
    }

    fn log_path(&self, inst: &Instrument, t: i64) -> f64 {
        (0..OCTAVES)
            .map(|k| {
                let scale = 30.0 * 4f64.powi(k as i32);
                inst.entry.vol
                    * (scale / YEAR).sqrt()
                    * self.noise_at(inst.con_id, k, t as f64 / scale)
            })
            .sum()
    }

    /// Smooth noise in [-1, 1] of octave `k` at `t` seconds (slow noise for octave 8).
    fn noise(&self, con_id: i32, k: u32, t: i64) -> f64 {
        self.noise_at(con_id, k, t as f64 / (30.0 * 4f64.powi(k as i32)))
    }

    fn noise_at(&self, con_id: i32, k: u32, x: f64) -> f64 {
        let i = x.floor();
        let f = x - i;
        let at = |n: f64| (self.hash(con_id, k, n as i64) as f64 / u64::MAX as f64) * 2.0 - 1.0;
        let smooth = f * f * (3.0 - 2.0 * f);
        at(i) + (at(i + 1.0) - at(i)) * smooth
    }

    /// SplitMix64 of the seed, the contract, an octave and a lattice point.
    fn hash(&self, con_id: i32, k: u32, n: i64) -> u64 {
        let mut z = self.seed
            ^ (con_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ u64::from(k).wrapping_mul(0xD1B5_4A32_D192_ED03)
            ^ (n as u64).wrapping_mul(0x94D0_49BB_1331_11EB);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::universe::Universe;

    fn aapl(universe: &Universe) -> usize {
        universe
            .underlyings()
            .find(|i| universe.get(*i).con_id == 265_598)
            .unwrap()
    }

    fn step(mid: f64, trade: Option<(f64, f64)>) -> StepSample {
        StepSample {
            mid,
            bid: mid - 0.01,
            ask: mid + 0.01,
            trade,
        }
    }

    #[test]
    fn recorded_steps_make_the_bars_and_the_seeded_path_meets_them() {
        let universe = Universe::build(time::macros::date!(2026 - 11 - 30));
        let i = aapl(&universe);
        let inst = universe.get(i);
        let start = 1_800_000_000;
        let h = History::new(7, start);
        // Recorded steps after the start, then bars before, across and after it.
        h.record(i, start + 1, &step(230.0, Some((230.01, 100.0))));
        h.record(i, start + 2, &step(230.5, Some((230.49, 200.0))));
        h.record(i, start + 7, &step(229.0, None));
        let bars = h.bars(
            inst,
            i,
            WhatToShow::Trades,
            5,
            start - 60,
            start + 10,
            start + 10,
        );
        assert_eq!(bars.len(), 14);
        let first_live = &bars[12];
        assert_eq!(first_live.time, start);
        assert_eq!(
            (first_live.open, first_live.high, first_live.close),
            (230.01, 230.49, 230.49)
        );
        assert_eq!((first_live.volume, first_live.count), (300.0, 2));
        // No trade in the last slot: flat at the last trade, no volume.
        assert_eq!(
            (bars[13].open, bars[13].close, bars[13].volume),
            (230.49, 230.49, 0.0)
        );
        // The seeded path ends at the walk's starting price.
        assert_eq!(bars[11].close, round_to(inst.entry.price, inst.min_tick));
        // A bar across the start joins the seeded path and the record.
        let late = History::new(7, start + 30);
        late.record(i, start + 31, &step(231.0, Some((231.01, 100.0))));
        let across = late.bars(
            inst,
            i,
            WhatToShow::Trades,
            60,
            start,
            start + 60,
            start + 60,
        );
        assert_eq!(across.len(), 1);
        assert_eq!(across[0].close, 231.01);
        assert!(
            across[0].high >= 231.01 && across[0].volume > 100.0,
            "{across:?}"
        );
        for b in &bars {
            assert!(
                b.low <= b.open.min(b.close) && b.high >= b.open.max(b.close),
                "{b:?}"
            );
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_history_and_another_seed_another() {
        let universe = Universe::build(time::macros::date!(2026 - 11 - 30));
        let i = aapl(&universe);
        let inst = universe.get(i);
        let start = 1_800_000_000;
        let day = |seed| {
            History::new(seed, start).bars(
                inst,
                i,
                WhatToShow::Midpoint,
                3_600,
                start - 86_400,
                start,
                start,
            )
        };
        assert_eq!(day(7), day(7));
        assert_ne!(day(7), day(8));
        let bars = day(7);
        assert_eq!(bars.len(), 24);
        assert!(
            bars.iter()
                .all(|b| b.volume < 0.0 && (b.close / 230.0 - 1.0).abs() < 0.2)
        );
    }
}
