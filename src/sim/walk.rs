//! The random walk of one underlying: mid price, quotes, trades and session statistics.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::catalog::Kind;
use super::ticks::{GatedTick, Tick, tick_type as tt};
use super::universe::Instrument;

/// A step moves the price by `vol / STEP_VOL_DIVISOR` standard deviations of log price, so
/// a few seconds of ticks show visible movement at any tick interval.
const STEP_VOL_DIVISOR: f64 = 1000.0;

pub(super) fn round_to(x: f64, tick: f64) -> f64 {
    ((x / tick).round() * tick * 1e8).round() / 1e8
}

pub(super) fn seed_for(seed: u64, con_id: i32) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ (con_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A standard normal draw (Box-Muller).
pub(super) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// State of one underlying.
#[derive(Debug)]
pub(super) struct UnderlyingState {
    rng: ChaCha8Rng,
    kind: Kind,
    vol: f64,
    tick: f64,
    lot: f64,
    pub(super) mid: f64,
    bid: f64,
    ask: f64,
    bid_size: f64,
    ask_size: f64,
    last: f64,
    last_size: f64,
    last_time: i64,
    volume: f64,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    call_volume: f64,
    put_volume: f64,
    call_oi: f64,
    put_oi: f64,
    /// The trade of the last step (price, size), if it traded.
    traded: Option<(f64, f64)>,
}

/// What one step left: the quote and the trade, recorded into bars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct StepSample {
    pub mid: f64,
    pub bid: f64,
    pub ask: f64,
    pub trade: Option<(f64, f64)>,
}

impl UnderlyingState {
    pub(super) fn new(inst: &Instrument, seed: u64, now: i64) -> Self {
        let mut rng = seed_for(seed, inst.con_id);
        let price = inst.entry.price;
        let close = round_to(price * (1.0 + 0.01 * normal(&mut rng)), inst.min_tick);
        let open = round_to((close + price) / 2.0, inst.min_tick);
        let lot = if inst.entry.kind == Kind::Forex {
            1_000_000.0
        } else {
            100.0
        };
        let mut s = UnderlyingState {
            kind: inst.entry.kind,
            vol: inst.entry.vol,
            tick: inst.min_tick,
            lot,
            mid: price,
            bid: 0.0,
            ask: 0.0,
            bid_size: 0.0,
            ask_size: 0.0,
            last: round_to(price, inst.min_tick),
            last_size: lot,
            last_time: now,
            volume: (rng.random_range(2_000..40_000) as f64) * 100.0,
            open,
            high: open.max(price),
            low: open.min(price),
            close,
            call_volume: rng.random_range(10_000..200_000) as f64,
            put_volume: rng.random_range(10_000..200_000) as f64,
            call_oi: rng.random_range(500_000..3_000_000) as f64,
            put_oi: rng.random_range(500_000..3_000_000) as f64,
            traded: None,
            rng,
        };
        s.quote();
        s
    }

    fn has_quotes(&self) -> bool {
        self.kind != Kind::Index
    }

    fn has_trades(&self) -> bool {
        self.kind != Kind::Forex
    }

    /// Spread in ticks by price level.
    fn spread(&self) -> f64 {
        let ticks = match self.kind {
            Kind::Forex => 1.0,
            _ if self.mid < 100.0 => 1.0,
            _ if self.mid < 500.0 => 2.0,
            _ => 5.0,
        };
        ticks * self.tick
    }

    /// Re-derives bid/ask and their sizes from the mid.
    fn quote(&mut self) {
        let spread = self.spread();
        self.bid = round_to(
            ((self.mid - spread / 2.0) / self.tick).floor() * self.tick,
            self.tick,
        );
        self.ask = round_to(self.bid + spread, self.tick);
        self.bid_size = self.lot * f64::from(self.rng.random_range(1u32..=30));
        self.ask_size = self.lot * f64::from(self.rng.random_range(1u32..=30));
    }

    pub(super) fn step(&mut self, now: i64) -> Vec<GatedTick> {
        let sigma = self.vol / STEP_VOL_DIVISOR;
        self.mid *= (sigma * normal(&mut self.rng) - 0.5 * sigma * sigma).exp();
        let (old_bid, old_ask, old_bs, old_as) = (self.bid, self.ask, self.bid_size, self.ask_size);
        self.quote();
        let mut out = Vec::with_capacity(8);
        self.traded = None;
        if self.has_quotes() {
            if (self.bid, self.bid_size) != (old_bid, old_bs) {
                out.push(GatedTick::price(tt::BID, self.bid, Some(self.bid_size)));
            }
            if (self.ask, self.ask_size) != (old_ask, old_as) {
                out.push(GatedTick::price(tt::ASK, self.ask, Some(self.ask_size)));
            }
        }
        let traded = match self.kind {
            Kind::Forex => false,
            Kind::Index => true,
            _ => self.rng.random_bool(0.5),
        };
        if traded {
            self.last = match self.kind {
                Kind::Index => round_to(self.mid, self.tick),
                _ if self.rng.random_bool(0.5) => self.bid,
                _ => self.ask,
            };
            self.last_size = self.lot * f64::from(self.rng.random_range(1u32..=5));
            self.last_time = now;
            self.traded = Some((self.last, self.last_size));
            out.push(self.last_tick());
            if self.kind != Kind::Index {
                self.volume += self.last_size;
                out.push(GatedTick::size(tt::VOLUME, self.volume / 100.0, 0));
            }
            out.push(
                Tick::Text {
                    ty: tt::LAST_TIMESTAMP,
                    value: now.to_string(),
                }
                .into(),
            );
            if self.last > self.high {
                self.high = self.last;
                out.push(GatedTick::price(tt::HIGH, self.high, None));
            }
            if self.last < self.low {
                self.low = self.last;
                out.push(GatedTick::price(tt::LOW, self.low, None));
            }
            if self.rng.random_bool(0.1) {
                self.call_volume += f64::from(self.rng.random_range(1u32..50));
                self.put_volume += f64::from(self.rng.random_range(1u32..50));
                out.extend(self.option_volume_ticks());
            }
        }
        out
    }

    /// The quote and trade of the last step.
    pub(super) fn sample(&self) -> StepSample {
        StepSample {
            mid: self.mid,
            bid: self.bid,
            ask: self.ask,
            trade: self.traded,
        }
    }

    fn last_tick(&self) -> GatedTick {
        let size = (self.kind != Kind::Index).then_some(self.last_size);
        GatedTick::price(tt::LAST, self.last, size)
    }

    fn option_volume_ticks(&self) -> [GatedTick; 2] {
        [
            GatedTick::size(tt::OPTION_CALL_VOLUME, self.call_volume, 100),
            GatedTick::size(tt::OPTION_PUT_VOLUME, self.put_volume, 100),
        ]
    }

    pub(super) fn full(&self, atm_vol: f64) -> Vec<GatedTick> {
        let mut out: Vec<GatedTick> = Vec::with_capacity(16);
        if self.has_trades() {
            out.push(self.last_tick());
            out.push(
                Tick::Text {
                    ty: tt::LAST_TIMESTAMP,
                    value: self.last_time.to_string(),
                }
                .into(),
            );
        }
        if self.kind != Kind::Index && self.has_trades() {
            out.push(GatedTick::size(tt::VOLUME, self.volume / 100.0, 0));
        }
        for (ty, price) in [
            (tt::HIGH, self.high),
            (tt::LOW, self.low),
            (tt::CLOSE, self.close),
            (tt::OPEN, self.open),
        ] {
            out.push(GatedTick::price(ty, price, None));
        }
        out.push(GatedTick::generic(tt::HALTED, 0.0, 0));
        if self.kind != Kind::Forex {
            out.extend(self.option_volume_ticks());
            out.push(GatedTick::size(
                tt::OPTION_CALL_OPEN_INTEREST,
                self.call_oi,
                101,
            ));
            out.push(GatedTick::size(
                tt::OPTION_PUT_OPEN_INTEREST,
                self.put_oi,
                101,
            ));
            out.push(GatedTick::generic(tt::OPTION_HISTORICAL_VOL, self.vol, 104));
            out.push(GatedTick::generic(tt::OPTION_IMPLIED_VOL, atm_vol, 106));
        }
        // The quote last: a consumer waiting for a two-sided market then has the rest.
        if self.has_quotes() {
            out.push(GatedTick::price(tt::BID, self.bid, Some(self.bid_size)));
            out.push(GatedTick::price(tt::ASK, self.ask, Some(self.ask_size)));
        }
        out
    }
}
