//! The seeded market model. Underlyings follow a geometric random walk, one step per tick
//! interval, from a per-instrument RNG seeded with the simulator seed and the contract id:
//! the same seed gives the same series for each instrument whatever else is watched, and
//! an instrument nobody watches does not move (it costs nothing). Options are priced with
//! Black-Scholes from the underlying's current price and a per-chain volatility smile, so
//! the prices, implied volatilities and Greeks sent are consistent with [`crate::greeks`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use time::{OffsetDateTime, Time};

use super::catalog::Kind;
use super::history::History;
pub use super::option_model::OptionQuote;
use super::option_model::OptionState;
use super::ticks::{GatedTick, TickUpdate};
use super::universe::Universe;
use super::walk::{UnderlyingState, round_to};
use crate::greeks::{self, OptionInputs};

/// Continuously compounded risk-free rate used to price every option.
pub const RISK_FREE_RATE: f64 = 0.045;

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

/// The whole market: one state per underlying, option states created when first used.
#[derive(Debug)]
pub struct Market {
    universe: Arc<Universe>,
    seed: u64,
    underlyings: HashMap<usize, Mutex<UnderlyingState>>,
    options: Mutex<HashMap<usize, OptionState>>,
    /// Every step, recorded into bars.
    history: History,
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
            history: History::new(seed, now),
        }
    }

    /// The bars of the market: recorded steps, and the seeded path before them.
    pub fn history(&self) -> &History {
        &self.history
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
        self.history
            .record(index, now.unix_timestamp(), &state.sample());
        Some(TickUpdate::new(state.mid, ticks))
    }

    /// Every current value of an instrument (the first ticks of a subscription, a snapshot).
    pub fn full_ticks(&self, index: usize, now: OffsetDateTime) -> Vec<GatedTick> {
        let inst = self.universe.get(index);
        match &inst.option {
            None => {
                let atm = self.atm_vol(index);
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
        let mut options = lock(&self.options);
        let state = options
            .entry(index)
            .or_insert_with(|| OptionState::new(self.seed, inst, &q));
        state.ticks(&q, inst, now, full)
    }

    /// Smile volatility at the money, about a month out (reported as generic tick 24).
    fn atm_vol(&self, index: usize) -> f64 {
        let entry = self.universe.get(index).entry;
        smile_vol(entry.vol, entry.kind, 1.0, 1.0, 30.0 / 365.0)
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
