//! Ticks as the fan-out sees them, and how they fold into the last value of an instrument.
//!
//! IB's "no value" sentinels (−1 prices, −2 Greeks, `f64::MAX`, non-finite numbers) are
//! removed here, so nothing downstream ever sees one.

use super::types::{Greeks, GreeksSource, MarketDataType, OptionExtras, Quote};

/// A price field of a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceField {
    Bid,
    Ask,
    Last,
    High,
    Low,
    Close,
    Open,
}

/// A size field of a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeField {
    Bid,
    Ask,
    Last,
    Volume,
}

/// IB's option computation, as raw as it came (sentinels may still be in it).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OptionComputation {
    pub implied_volatility: Option<f64>,
    pub delta: Option<f64>,
    pub gamma: Option<f64>,
    pub vega: Option<f64>,
    pub theta: Option<f64>,
    pub underlying_price: Option<f64>,
    pub option_price: Option<f64>,
}

/// One update from IB for one instrument.
#[derive(Debug, Clone, PartialEq)]
pub enum Tick {
    Price(PriceField, f64),
    Size(SizeField, f64),
    /// Seconds since the epoch.
    LastTradeTime(i64),
    /// IB's model option computation (tick 13 or delayed 83).
    OptionModel(OptionComputation),
    OpenInterest(f64),
    OptionVolume(f64),
    ImpliedVolatility(f64),
    /// The type of data IB says it is sending.
    DataType(MarketDataType),
}

/// Largest magnitude accepted as a real value; IB uses `f64::MAX` and similar as "unset".
const MAX_SANE: f64 = 1e12;

/// Last second a protobuf `Timestamp` can hold (9999-12-31T23:59:59Z); a trade time past
/// it is garbage from the gateway, not a time to serve.
const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

/// The value, or `None` when it is one of IB's sentinels.
fn sane(v: f64) -> Option<f64> {
    (v.is_finite() && v.abs() < MAX_SANE).then_some(v)
}

/// Prices and sizes below zero are IB's "no market" marker (−1).
fn non_negative(v: f64) -> Option<f64> {
    sane(v).filter(|v| *v >= 0.0)
}

/// Strips sentinels from one Greek; IB uses −1 for prices and volatility, −2 for Greeks.
fn greek(v: Option<f64>, sentinel: f64) -> Option<f64> {
    v.and_then(sane).filter(|v| *v != sentinel)
}

impl OptionComputation {
    /// The computation with every sentinel removed, marked as IB's model.
    pub fn cleaned(&self) -> Greeks {
        let positive = |v: Option<f64>| v.and_then(non_negative).filter(|v| *v != -1.0);
        Greeks {
            implied_volatility: positive(self.implied_volatility).filter(|v| *v > 0.0),
            delta: greek(self.delta, -2.0).filter(|d| (-1.0..=1.0).contains(d)),
            gamma: greek(self.gamma, -2.0),
            vega: greek(self.vega, -2.0),
            theta: greek(self.theta, -2.0),
            underlying_price: positive(self.underlying_price).filter(|v| *v > 0.0),
            option_price: positive(self.option_price),
            source: GreeksSource::IbModel,
        }
    }
}

/// Folds one tick into the quote and the option extras. Returns whether anything changed.
pub fn apply(quote: &mut Quote, extras: &mut OptionExtras, tick: &Tick) -> bool {
    fn set(slot: &mut Option<f64>, v: Option<f64>) -> bool {
        let changed = *slot != v;
        *slot = v;
        changed
    }
    match tick {
        Tick::Price(field, v) => {
            // −1 means "no market"; zero is a real bid for a worthless option.
            let v = non_negative(*v);
            let slot = match field {
                PriceField::Bid => &mut quote.bid,
                PriceField::Ask => &mut quote.ask,
                PriceField::Last => &mut quote.last,
                PriceField::High => &mut quote.high,
                PriceField::Low => &mut quote.low,
                PriceField::Close => &mut quote.close,
                PriceField::Open => &mut quote.open,
            };
            set(slot, v)
        }
        Tick::Size(field, v) => {
            let slot = match field {
                SizeField::Bid => &mut quote.bid_size,
                SizeField::Ask => &mut quote.ask_size,
                SizeField::Last => &mut quote.last_size,
                SizeField::Volume => &mut quote.volume,
            };
            set(slot, non_negative(*v))
        }
        Tick::LastTradeTime(t) => {
            let v = (*t > 0 && *t <= MAX_TIMESTAMP_SECONDS).then_some(*t);
            let changed = quote.last_trade_time != v;
            quote.last_trade_time = v;
            changed
        }
        Tick::DataType(t) => {
            let changed = quote.market_data_type != Some(*t);
            quote.market_data_type = Some(*t);
            changed
        }
        Tick::OptionModel(c) => {
            let g = Some(c.cleaned());
            let changed = extras.model != g;
            extras.model = g;
            changed
        }
        Tick::OpenInterest(v) => set(&mut extras.open_interest, non_negative(*v)),
        Tick::OptionVolume(v) => set(&mut extras.option_volume, non_negative(*v)),
        Tick::ImpliedVolatility(v) => set(
            &mut extras.implied_volatility,
            non_negative(*v).filter(|v| *v > 0.0),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> (Quote, OptionExtras) {
        (
            Quote::empty(1, "X", MarketDataType::Live),
            OptionExtras::default(),
        )
    }

    #[test]
    fn sentinel_prices_clear_the_field() {
        let (mut q, mut e) = fresh();
        assert!(apply(&mut q, &mut e, &Tick::Price(PriceField::Bid, 10.0)));
        assert_eq!(q.bid, Some(10.0));
        assert!(apply(&mut q, &mut e, &Tick::Price(PriceField::Bid, -1.0)));
        assert_eq!(q.bid, None);
        assert!(!apply(
            &mut q,
            &mut e,
            &Tick::Price(PriceField::Ask, f64::MAX)
        ));
        assert_eq!(q.ask, None);
    }

    #[test]
    fn unchanged_values_report_no_change() {
        let (mut q, mut e) = fresh();
        assert!(apply(&mut q, &mut e, &Tick::Size(SizeField::Volume, 5.0)));
        assert!(!apply(&mut q, &mut e, &Tick::Size(SizeField::Volume, 5.0)));
    }

    #[test]
    fn option_sentinels_never_survive() {
        let c = OptionComputation {
            implied_volatility: Some(-1.0),
            delta: Some(-2.0),
            gamma: Some(f64::MAX),
            vega: Some(0.12),
            theta: Some(-0.03),
            underlying_price: Some(-1.0),
            option_price: Some(1.5),
        };
        let g = c.cleaned();
        assert_eq!(g.implied_volatility, None);
        assert_eq!(g.delta, None);
        assert_eq!(g.gamma, None);
        assert_eq!(g.vega, Some(0.12));
        assert_eq!(g.theta, Some(-0.03));
        assert_eq!(g.underlying_price, None);
        assert_eq!(g.option_price, Some(1.5));
        assert!(!g.is_complete());
    }

    #[test]
    fn trade_times_beyond_a_timestamp_are_dropped() {
        // Found by fuzzing: any positive i64 reached the served Timestamp.
        let (mut q, mut e) = fresh();
        apply(&mut q, &mut e, &Tick::LastTradeTime(1_735_828_200));
        assert_eq!(q.last_trade_time, Some(1_735_828_200));
        apply(&mut q, &mut e, &Tick::LastTradeTime(253_402_300_800));
        assert_eq!(q.last_trade_time, None);
        apply(&mut q, &mut e, &Tick::LastTradeTime(i64::MAX));
        assert_eq!(q.last_trade_time, None);
    }
}
