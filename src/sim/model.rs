//! The seeded market model. Underlyings follow a geometric random walk, one step per tick
//! interval, from a per-instrument RNG seeded with the simulator seed and the contract id:
//! the same seed gives the same series for each instrument whatever else is watched, and
//! an instrument nobody watches does not move (it costs nothing). Options are priced with
//! Black-Scholes from the underlying's current price and a per-chain volatility smile, so
//! the prices, implied volatilities and Greeks sent are consistent with [`crate::greeks`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use time::{OffsetDateTime, Time};

use super::catalog::Kind;
use super::ticks::{GatedTick, OptionComputation, Tick, TickUpdate, tick_type as tt};
use super::universe::{Instrument, Universe};
use crate::greeks::{self, OptionInputs, OptionKind};

/// Continuously compounded risk-free rate used to price every option.
pub const RISK_FREE_RATE: f64 = 0.045;

/// A step moves the price by `vol / STEP_VOL_DIVISOR` standard deviations of log price, so
/// a few seconds of ticks show visible movement at any tick interval.
const STEP_VOL_DIVISOR: f64 = 1000.0;

/// Options expire at the US close, 16:00 New York, taken as 21:00 UTC.
const EXPIRY_TIME_UTC: Time = time::macros::time!(21:00);

/// Seconds per year used for time to expiry.
const SECONDS_PER_YEAR: f64 = 365.0 * 24.0 * 3600.0;

/// Years from `now` to the close of `expiry` (at least one minute, so expiring options
/// still price).
pub fn time_to_expiry(expiry: time::Date, now: OffsetDateTime) -> f64 {
    let close = expiry.with_time(EXPIRY_TIME_UTC).assume_utc();
    ((close - now).as_seconds_f64() / SECONDS_PER_YEAR).max(60.0 / SECONDS_PER_YEAR)
}

/// Volatility the model uses for an option: the underlying's base volatility bent by a
/// skew (puts richer) and a smile in log-moneyness scaled by the square root of time.
pub fn smile_vol(base: f64, kind: Kind, strike: f64, spot: f64, time: f64) -> f64 {
    let skew = if matches!(kind, Kind::Index | Kind::Etf) {
        -0.35
    } else {
        -0.15
    };
    let m = ((strike / spot).ln() / time.sqrt()).clamp(-2.0, 2.0);
    (base * (1.0 + skew * m + 0.10 * m * m)).clamp(0.05, 3.0)
}

fn round_to(x: f64, tick: f64) -> f64 {
    ((x / tick).round() * tick * 1e8).round() / 1e8
}

fn seed_for(seed: u64, con_id: i32) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ (con_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// State of one underlying.
#[derive(Debug)]
struct UnderlyingState {
    rng: ChaCha8Rng,
    kind: Kind,
    vol: f64,
    tick: f64,
    lot: f64,
    mid: f64,
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
}

impl UnderlyingState {
    fn new(inst: &Instrument, seed: u64, now: i64) -> Self {
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

    fn step(&mut self, now: i64) -> Vec<GatedTick> {
        let sigma = self.vol / STEP_VOL_DIVISOR;
        self.mid *= (sigma * normal(&mut self.rng) - 0.5 * sigma * sigma).exp();
        let (old_bid, old_ask, old_bs, old_as) = (self.bid, self.ask, self.bid_size, self.ask_size);
        self.quote();
        let mut out = Vec::with_capacity(8);
        if self.has_quotes() {
            if (self.bid, self.bid_size) != (old_bid, old_bs) {
                out.push(
                    Tick::Price {
                        ty: tt::BID,
                        price: self.bid,
                        size: Some(self.bid_size),
                    }
                    .into(),
                );
            }
            if (self.ask, self.ask_size) != (old_ask, old_as) {
                out.push(
                    Tick::Price {
                        ty: tt::ASK,
                        price: self.ask,
                        size: Some(self.ask_size),
                    }
                    .into(),
                );
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
            out.push(self.last_tick());
            if self.kind != Kind::Index {
                self.volume += self.last_size;
                out.push(
                    Tick::Size {
                        ty: tt::VOLUME,
                        size: self.volume / 100.0,
                    }
                    .into(),
                );
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
                out.push(
                    Tick::Price {
                        ty: tt::HIGH,
                        price: self.high,
                        size: None,
                    }
                    .into(),
                );
            }
            if self.last < self.low {
                self.low = self.last;
                out.push(
                    Tick::Price {
                        ty: tt::LOW,
                        price: self.low,
                        size: None,
                    }
                    .into(),
                );
            }
            if self.rng.random_bool(0.1) {
                self.call_volume += f64::from(self.rng.random_range(1u32..50));
                self.put_volume += f64::from(self.rng.random_range(1u32..50));
                out.extend(self.option_volume_ticks());
            }
        }
        out
    }

    fn last_tick(&self) -> GatedTick {
        let size = (self.kind != Kind::Index).then_some(self.last_size);
        Tick::Price {
            ty: tt::LAST,
            price: self.last,
            size,
        }
        .into()
    }

    fn option_volume_ticks(&self) -> [GatedTick; 2] {
        [
            GatedTick {
                tick: Tick::Size {
                    ty: tt::OPTION_CALL_VOLUME,
                    size: self.call_volume,
                },
                gate: 100,
            },
            GatedTick {
                tick: Tick::Size {
                    ty: tt::OPTION_PUT_VOLUME,
                    size: self.put_volume,
                },
                gate: 100,
            },
        ]
    }

    fn full(&self, atm_vol: f64) -> Vec<GatedTick> {
        let mut out: Vec<GatedTick> = Vec::with_capacity(16);
        if self.has_quotes() {
            out.push(
                Tick::Price {
                    ty: tt::BID,
                    price: self.bid,
                    size: Some(self.bid_size),
                }
                .into(),
            );
            out.push(
                Tick::Price {
                    ty: tt::ASK,
                    price: self.ask,
                    size: Some(self.ask_size),
                }
                .into(),
            );
        }
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
            out.push(
                Tick::Size {
                    ty: tt::VOLUME,
                    size: self.volume / 100.0,
                }
                .into(),
            );
        }
        for (ty, price) in [
            (tt::HIGH, self.high),
            (tt::LOW, self.low),
            (tt::CLOSE, self.close),
            (tt::OPEN, self.open),
        ] {
            out.push(
                Tick::Price {
                    ty,
                    price,
                    size: None,
                }
                .into(),
            );
        }
        out.push(
            Tick::Generic {
                ty: tt::HALTED,
                value: 0.0,
            }
            .into(),
        );
        if self.kind != Kind::Forex {
            out.extend(self.option_volume_ticks());
            out.push(GatedTick {
                tick: Tick::Size {
                    ty: tt::OPTION_CALL_OPEN_INTEREST,
                    size: self.call_oi,
                },
                gate: 101,
            });
            out.push(GatedTick {
                tick: Tick::Size {
                    ty: tt::OPTION_PUT_OPEN_INTEREST,
                    size: self.put_oi,
                },
                gate: 101,
            });
            out.push(GatedTick {
                tick: Tick::Generic {
                    ty: tt::OPTION_HISTORICAL_VOL,
                    value: self.vol,
                },
                gate: 104,
            });
            out.push(GatedTick {
                tick: Tick::Generic {
                    ty: tt::OPTION_IMPLIED_VOL,
                    value: atm_vol,
                },
                gate: 106,
            });
        }
        out
    }
}

/// Prices and computations of one option at one underlying price.
#[derive(Debug, Clone, Copy)]
pub struct OptionQuote {
    /// Valuation inputs (spot, strike, time, rate, yield).
    pub inputs: OptionInputs,
    /// Volatility from the smile.
    pub model_vol: f64,
    /// Price and Greeks at the smile volatility.
    pub model: greeks::Greeks,
    /// Bid and ask around the model price.
    pub bid: f64,
    pub ask: f64,
}

impl OptionQuote {
    /// Computation tick values for an option price: the IV that reproduces it and the
    /// Greeks at that IV (sentinels when the price is outside the no-arbitrage bounds).
    pub fn computation_at(&self, price: f64) -> OptionComputation {
        let iv = greeks::implied_volatility(&self.inputs, price);
        let g = iv.and_then(|v| greeks::greeks(&self.inputs, v));
        OptionComputation {
            implied_vol: iv,
            delta: g.map(|g| g.delta),
            opt_price: Some(price),
            pv_dividend: self.inputs.pv_dividend(),
            gamma: g.map(|g| g.gamma),
            vega: g.map(|g| g.vega),
            theta: g.map(|g| g.theta),
            und_price: self.inputs.spot,
        }
    }

    /// Computation tick values of the model itself.
    pub fn model_computation(&self) -> OptionComputation {
        OptionComputation {
            implied_vol: Some(self.model_vol),
            delta: Some(self.model.delta),
            opt_price: Some(self.model.price),
            pv_dividend: self.inputs.pv_dividend(),
            gamma: Some(self.model.gamma),
            vega: Some(self.model.vega),
            theta: Some(self.model.theta),
            und_price: self.inputs.spot,
        }
    }
}

/// Values an option model needs that do not change with the underlying.
#[derive(Debug)]
struct OptionState {
    rng: ChaCha8Rng,
    bid: f64,
    ask: f64,
    bid_size: f64,
    ask_size: f64,
    last: Option<(f64, f64, i64)>,
    volume: f64,
    open_interest: f64,
    close: f64,
}

/// The whole market: one state per underlying, option states created when first used.
#[derive(Debug)]
pub struct Market {
    universe: Arc<Universe>,
    seed: u64,
    underlyings: HashMap<usize, Mutex<UnderlyingState>>,
    options: Mutex<HashMap<usize, OptionState>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a model lock leaves plain numbers behind; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Market {
    /// The market at its starting prices.
    pub fn new(universe: Arc<Universe>, seed: u64) -> Self {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let underlyings = universe
            .underlyings()
            .map(|i| {
                (
                    i,
                    Mutex::new(UnderlyingState::new(universe.get(i), seed, now)),
                )
            })
            .collect();
        Market {
            universe,
            seed,
            underlyings,
            options: Mutex::new(HashMap::new()),
        }
    }

    /// The instruments this market trades.
    pub fn universe(&self) -> &Arc<Universe> {
        &self.universe
    }

    /// Current model (mid) price of an underlying; `None` for options.
    pub fn spot(&self, index: usize) -> Option<f64> {
        self.underlyings.get(&index).map(|s| lock(s).mid)
    }

    /// Moves an underlying one step and returns what changed.
    pub fn step_underlying(&self, index: usize, now: OffsetDateTime) -> Option<TickUpdate> {
        let mut state = lock(self.underlyings.get(&index)?);
        let ticks = state.step(now.unix_timestamp());
        Some(TickUpdate::new(state.mid, ticks))
    }

    /// Every current value of an instrument (the first ticks of a subscription, a snapshot).
    pub fn full_ticks(&self, index: usize, now: OffsetDateTime) -> Vec<GatedTick> {
        let inst = self.universe.get(index);
        match &inst.option {
            None => {
                let atm = self.atm_vol(index, now);
                self.underlyings
                    .get(&index)
                    .map(|s| lock(s).full(atm))
                    .unwrap_or_default()
            }
            Some(terms) => {
                let Some(spot) = self.spot(terms.underlying) else {
                    return Vec::new();
                };
                self.option_ticks(index, spot, now, true)
            }
        }
    }

    /// Smile volatility at the money, about a month out (reported as generic tick 24).
    fn atm_vol(&self, index: usize, now: OffsetDateTime) -> f64 {
        let entry = self.universe.get(index).entry;
        let _ = now;
        smile_vol(entry.vol, entry.kind, 1.0, 1.0, 30.0 / 365.0)
    }

    /// The quote of an option at underlying price `spot`.
    pub fn option_quote(
        &self,
        index: usize,
        spot: f64,
        now: OffsetDateTime,
    ) -> Option<OptionQuote> {
        let inst = self.universe.get(index);
        let terms = inst.option.as_ref()?;
        let entry = inst.entry;
        let inputs = OptionInputs {
            kind: terms.right,
            spot,
            strike: terms.strike,
            time: time_to_expiry(terms.expiry, now),
            rate: RISK_FREE_RATE,
            dividend_yield: entry.dividend_yield,
        };
        let model_vol = smile_vol(entry.vol, entry.kind, terms.strike, spot, inputs.time);
        let model = greeks::greeks(&inputs, model_vol)?;
        let half = (model.price * 0.02).clamp(0.01, 2.0);
        let tick = if entry.kind == Kind::Index {
            0.05
        } else {
            0.01
        };
        let bid = round_to(((model.price - half) / tick).floor().max(0.0) * tick, tick);
        let ask = round_to(((model.price + half) / tick).ceil().max(1.0) * tick, tick);
        Some(OptionQuote {
            inputs,
            model_vol,
            model,
            bid,
            ask,
        })
    }

    /// Ticks of an option after the underlying moved to `spot`: everything when `full`,
    /// otherwise what changed plus fresh computations.
    pub fn option_ticks(
        &self,
        index: usize,
        spot: f64,
        now: OffsetDateTime,
        full: bool,
    ) -> Vec<GatedTick> {
        let Some(q) = self.option_quote(index, spot, now) else {
            return Vec::new();
        };
        let inst = self.universe.get(index);
        let call = inst
            .option
            .as_ref()
            .is_some_and(|t| t.right == OptionKind::Call);
        let mut options = lock(&self.options);
        let state = options.entry(index).or_insert_with(|| {
            let mut rng = seed_for(self.seed, inst.con_id);
            let open_interest = f64::from(rng.random_range(10u32..5_000));
            let close = round_to(q.model.price * (1.0 + 0.03 * normal(&mut rng)), 0.01).max(0.01);
            OptionState {
                rng,
                bid: -1.0,
                ask: -1.0,
                bid_size: 0.0,
                ask_size: 0.0,
                last: None,
                volume: 0.0,
                open_interest,
                close,
            }
        });
        let mut out: Vec<GatedTick> = Vec::with_capacity(12);
        let (old_bid, old_ask) = (state.bid, state.ask);
        state.bid = q.bid;
        state.ask = q.ask;
        if full || old_bid != q.bid {
            state.bid_size = f64::from(state.rng.random_range(1u32..=50));
            out.push(
                Tick::Price {
                    ty: tt::BID,
                    price: q.bid,
                    size: Some(state.bid_size),
                }
                .into(),
            );
        }
        if full || old_ask != q.ask {
            state.ask_size = f64::from(state.rng.random_range(1u32..=50));
            out.push(
                Tick::Price {
                    ty: tt::ASK,
                    price: q.ask,
                    size: Some(state.ask_size),
                }
                .into(),
            );
        }
        let traded = !full && state.rng.random_bool(0.15);
        if traded {
            let price = if state.rng.random_bool(0.5) {
                q.bid.max(0.01)
            } else {
                q.ask
            };
            let size = f64::from(state.rng.random_range(1u32..=20));
            state.last = Some((price, size, now.unix_timestamp()));
            state.volume += size;
        }
        out.push(
            Tick::Option {
                ty: tt::BID_OPTION,
                value: q.computation_at(q.bid),
            }
            .into(),
        );
        out.push(
            Tick::Option {
                ty: tt::ASK_OPTION,
                value: q.computation_at(q.ask),
            }
            .into(),
        );
        out.push(
            Tick::Option {
                ty: tt::MODEL_OPTION,
                value: q.model_computation(),
            }
            .into(),
        );
        if let Some((price, size, at)) = state.last.filter(|_| full || traded) {
            out.push(
                Tick::Price {
                    ty: tt::LAST,
                    price,
                    size: Some(size),
                }
                .into(),
            );
            out.push(
                Tick::Option {
                    ty: tt::LAST_OPTION,
                    value: q.computation_at(price),
                }
                .into(),
            );
            out.push(
                Tick::Text {
                    ty: tt::LAST_TIMESTAMP,
                    value: at.to_string(),
                }
                .into(),
            );
        }
        let (oi_ty, vol_ty) = if call {
            (tt::OPTION_CALL_OPEN_INTEREST, tt::OPTION_CALL_VOLUME)
        } else {
            (tt::OPTION_PUT_OPEN_INTEREST, tt::OPTION_PUT_VOLUME)
        };
        if full || traded {
            out.push(
                Tick::Size {
                    ty: tt::VOLUME,
                    size: state.volume,
                }
                .into(),
            );
            out.push(GatedTick {
                tick: Tick::Size {
                    ty: vol_ty,
                    size: state.volume,
                },
                gate: 100,
            });
        }
        if full {
            out.push(
                Tick::Price {
                    ty: tt::CLOSE,
                    price: state.close,
                    size: None,
                }
                .into(),
            );
            out.push(
                Tick::Generic {
                    ty: tt::HALTED,
                    value: 0.0,
                }
                .into(),
            );
            out.push(GatedTick {
                tick: Tick::Size {
                    ty: oi_ty,
                    size: state.open_interest,
                },
                gate: 101,
            });
            out.push(GatedTick {
                tick: Tick::Generic {
                    ty: tt::OPTION_HISTORICAL_VOL,
                    value: inst.entry.vol,
                },
                gate: 104,
            });
            out.push(GatedTick {
                tick: Tick::Generic {
                    ty: tt::OPTION_IMPLIED_VOL,
                    value: q.model_vol,
                },
                gate: 106,
            });
        }
        out
    }
}
