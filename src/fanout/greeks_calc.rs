//! Greeks for an option quote: IB's model values when IB sent a complete set, otherwise
//! Black-Scholes here (implied volatility from the mid price, then the Greeks at it).

use std::time::SystemTime;

use super::feed::FeedView;
use super::types::{ContractSpec, Greeks, GreeksSource, Quote, Right};
use crate::greeks::{OptionInputs, OptionKind, greeks, implied_volatility};

/// Market parameters of the computed Greeks (from the configuration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GreeksParams {
    /// Continuously compounded risk-free rate, e.g. 0.04.
    pub risk_free_rate: f64,
    /// Continuous dividend yield of the underlying, e.g. 0.013.
    pub dividend_yield: f64,
}

/// Seconds in the (365-day) year used for time to expiry.
const SECONDS_PER_YEAR: f64 = 365.0 * 24.0 * 3600.0;
/// US equity options stop trading at 16:00 New York time, 21:00 UTC in winter; an hour
/// of error is negligible beside a day of time value.
const EXPIRY_SECONDS_UTC: i64 = 21 * 3600;

/// Years from `now` to the close of the expiry day (`YYYYMMDD`); `None` once expired.
pub fn years_to_expiry(expiry: &str, now: SystemTime) -> Option<f64> {
    // Parsed, not sliced: an expiry comes from the gateway or a client and may hold
    // anything, including characters wider than a byte.
    let date = time::Date::parse(
        expiry,
        time::macros::format_description!("[year repr:full][month][day]"),
    )
    .ok()?;
    let close = date.midnight().assume_utc().unix_timestamp() + EXPIRY_SECONDS_UTC;
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    let years = (close as f64 - now) / SECONDS_PER_YEAR;
    (years > 0.0).then_some(years)
}

/// The price an underlying is taken at: last trade, else mid, else prior close.
pub fn reference_price(q: &Quote) -> Option<f64> {
    q.last.filter(|p| *p > 0.0).or_else(|| q.mid()).or(q.close)
}

/// The Greeks to serve for an option, if any can be had.
pub fn option_greeks(
    contract: &ContractSpec,
    view: &FeedView,
    underlying_price: Option<f64>,
    params: &GreeksParams,
    now: SystemTime,
) -> Option<Greeks> {
    let model = view.extras.model;
    if let Some(m) = model
        && m.is_complete()
    {
        return Some(m);
    }
    // Any input missing leaves IB's partial model, if there is one.
    let computed = || -> Option<Greeks> {
        let kind = match contract.right? {
            Right::Call => OptionKind::Call,
            Right::Put => OptionKind::Put,
        };
        let spot = view
            .extras
            .model
            .and_then(|m| m.underlying_price)
            .or(underlying_price)?;
        let price = view.quote.mid().or(view.quote.last.filter(|p| *p > 0.0))?;
        let inputs = OptionInputs {
            kind,
            spot,
            strike: contract.strike?,
            time: years_to_expiry(&contract.expiry, now)?,
            rate: params.risk_free_rate,
            dividend_yield: params.dividend_yield,
        };
        let vol = implied_volatility(&inputs, price)?;
        let g = greeks(&inputs, vol)?;
        Some(Greeks {
            implied_volatility: Some(vol),
            delta: Some(g.delta),
            gamma: Some(g.gamma),
            vega: Some(g.vega),
            theta: Some(g.theta),
            underlying_price: Some(spot),
            option_price: Some(price),
            source: GreeksSource::Computed,
        })
    };
    computed().or(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn odd_expiries_have_no_time_left_and_never_panic() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for odd in [
            "202é120",
            "2026é101",
            "",
            "2026",
            "20261301",
            "2026-1-1",
            "+2026123",
        ] {
            assert_eq!(years_to_expiry(odd, now), None, "{odd:?}");
        }
        let years = years_to_expiry("20241220", now).unwrap();
        assert!((years - 1.10).abs() < 0.01, "{years}");
    }
}
