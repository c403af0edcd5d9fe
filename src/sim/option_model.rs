//! One option's quote and ticks: Black-Scholes values at the smile volatility, a bid/ask
//! around them, the implied volatilities of those prices, and simulated trades.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use time::OffsetDateTime;

use super::ticks::{GatedTick, OptionComputation, Tick, tick_type as tt};
use super::universe::Instrument;
use super::walk::{normal, round_to, seed_for};
use crate::greeks::{self, OptionInputs, OptionKind};

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
pub(super) struct OptionState {
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

impl OptionState {
    /// The option's own state, seeded from the simulator seed and its contract id.
    pub(super) fn new(seed: u64, inst: &Instrument, quote: &OptionQuote) -> Self {
        let mut rng = seed_for(seed, inst.con_id);
        let open_interest = f64::from(rng.random_range(10u32..5_000));
        let close = round_to(quote.model.price * (1.0 + 0.03 * normal(&mut rng)), 0.01).max(0.01);
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
    }

    /// Ticks for a new quote: everything when `full`, otherwise changed prices, fresh
    /// computations and maybe a trade.
    pub(super) fn ticks(
        &mut self,
        q: &OptionQuote,
        inst: &Instrument,
        now: OffsetDateTime,
        full: bool,
    ) -> Vec<GatedTick> {
        let call = inst
            .option
            .as_ref()
            .is_some_and(|t| t.right == OptionKind::Call);
        // The quote goes last in an opening burst, so a consumer that waits for a two-sided
        // market has every other opening value by then.
        let mut quote: Vec<GatedTick> = Vec::with_capacity(2);
        let (old_bid, old_ask) = (self.bid, self.ask);
        self.bid = q.bid;
        self.ask = q.ask;
        if full || old_bid != q.bid {
            self.bid_size = f64::from(self.rng.random_range(1u32..=50));
            quote.push(GatedTick::price(tt::BID, q.bid, Some(self.bid_size)));
        }
        if full || old_ask != q.ask {
            self.ask_size = f64::from(self.rng.random_range(1u32..=50));
            quote.push(GatedTick::price(tt::ASK, q.ask, Some(self.ask_size)));
        }
        let mut out: Vec<GatedTick> = Vec::with_capacity(16);
        if !full {
            out.append(&mut quote);
        }
        let traded = !full && self.rng.random_bool(0.15);
        if traded {
            let price = if self.rng.random_bool(0.5) {
                q.bid.max(0.01)
            } else {
                q.ask
            };
            let size = f64::from(self.rng.random_range(1u32..=20));
            self.last = Some((price, size, now.unix_timestamp()));
            self.volume += size;
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
        if let Some((price, size, at)) = self.last.filter(|_| full || traded) {
            out.push(GatedTick::price(tt::LAST, price, Some(size)));
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
            out.push(GatedTick::size(tt::VOLUME, self.volume, 0));
            out.push(GatedTick::size(vol_ty, self.volume, 100));
        }
        if full {
            out.push(GatedTick::price(tt::CLOSE, self.close, None));
            out.push(GatedTick::generic(tt::HALTED, 0.0, 0));
            out.push(GatedTick::size(oi_ty, self.open_interest, 101));
            out.push(GatedTick::generic(
                tt::OPTION_HISTORICAL_VOL,
                inst.entry.vol,
                104,
            ));
            out.push(GatedTick::generic(tt::OPTION_IMPLIED_VOL, q.model_vol, 106));
        }
        out.append(&mut quote);
        out
    }
}
