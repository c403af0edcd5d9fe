//! Option chain listings: weekly and monthly expirations over about three months and strikes
//! around the underlying's price at realistic increments. Monthlies list a wider strike range
//! than weeklies, as on real chains, so not every expiration lists every strike.

use time::{Date, Duration, Weekday};

/// How far ahead expirations are listed.
const HORIZON_DAYS: i64 = 95;

/// One expiration of one trading class and the strikes it lists.
#[derive(Debug, Clone)]
pub struct Expiry {
    /// Last trading day.
    pub date: Date,
    /// Standard third-Friday monthly (wider strike range) or a weekly.
    pub monthly: bool,
    /// Listed strikes, ascending.
    pub strikes: Vec<f64>,
}

/// One trading class of an underlying's options (SPX has SPX monthlies and SPXW weeklies).
#[derive(Debug, Clone)]
pub struct ChainClass {
    /// IB trading class.
    pub trading_class: String,
    /// Exchanges `reqSecDefOptParams` reports for the class.
    pub exchanges: &'static [&'static str],
    /// Contract multiplier.
    pub multiplier: f64,
    /// Listed expirations, ascending.
    pub expiries: Vec<Expiry>,
}

impl ChainClass {
    /// Every strike listed by some expiration of the class, ascending.
    pub fn strike_union(&self) -> Vec<f64> {
        let mut all: Vec<f64> = self
            .expiries
            .iter()
            .flat_map(|e| e.strikes.iter().copied())
            .collect();
        all.sort_by(f64::total_cmp);
        all.dedup();
        all
    }
}

/// Exchanges listing equity options.
const EQUITY_OPTION_EXCHANGES: &[&str] = &["SMART", "CBOE", "AMEX", "ISE", "PHLX"];
/// Exchanges listing SPX options.
const INDEX_OPTION_EXCHANGES: &[&str] = &["SMART", "CBOE"];

/// Whether `date` is the third Friday of its month (standard monthly expiration).
pub fn is_third_friday(date: Date) -> bool {
    date.weekday() == Weekday::Friday && (15..=21).contains(&date.day())
}

/// Fridays after `today` within the listing horizon.
fn fridays(today: Date) -> Vec<Date> {
    (1..=HORIZON_DAYS)
        .filter_map(|d| today.checked_add(Duration::days(d)))
        .filter(|d| d.weekday() == Weekday::Friday)
        .collect()
}

/// Strike increment IB-style by price level.
fn equity_increment(price: f64) -> f64 {
    match price {
        p if p < 25.0 => 0.5,
        p if p < 100.0 => 1.0,
        p if p < 250.0 => 2.5,
        _ => 5.0,
    }
}

/// Strikes from `center·(1−width)` to `center·(1+width)` on a grid of `step`.
fn strike_grid(center: f64, width: f64, step: f64) -> Vec<f64> {
    let lo = ((center * (1.0 - width)) / step).ceil() as i64;
    let hi = ((center * (1.0 + width)) / step).floor() as i64;
    (lo.max(1)..=hi).map(|i| i as f64 * step).collect()
}

/// Equity (stock and ETF) chain: one trading class named after the symbol.
pub fn equity_chain(symbol: &str, price: f64, today: Date) -> Vec<ChainClass> {
    let step = equity_increment(price);
    let expiries = fridays(today)
        .into_iter()
        .map(|date| {
            let monthly = is_third_friday(date);
            let width = if monthly { 0.35 } else { 0.15 };
            Expiry {
                date,
                monthly,
                strikes: strike_grid(price, width, step),
            }
        })
        .collect();
    vec![ChainClass {
        trading_class: symbol.to_string(),
        exchanges: EQUITY_OPTION_EXCHANGES,
        multiplier: 100.0,
        expiries,
    }]
}

/// SPX chain: AM-settled monthlies (class SPX: 5-point strikes near the money, 25-point
/// further out) and PM-settled weeklies (class SPXW: 5-point strikes, narrower range).
pub fn index_chain(price: f64, today: Date) -> Vec<ChainClass> {
    let fridays = fridays(today);
    let monthly_strikes = {
        let mut s = strike_grid(price, 0.30, 25.0);
        s.extend(strike_grid(price, 0.08, 5.0));
        s.sort_by(f64::total_cmp);
        s.dedup();
        s
    };
    let monthlies = fridays
        .iter()
        .filter(|d| is_third_friday(**d))
        .map(|&date| Expiry {
            date,
            monthly: true,
            strikes: monthly_strikes.clone(),
        })
        .collect();
    let weeklies = fridays
        .iter()
        .map(|&date| Expiry {
            date,
            monthly: false,
            strikes: strike_grid(price, 0.05, 5.0),
        })
        .collect();
    vec![
        ChainClass {
            trading_class: "SPX".into(),
            exchanges: INDEX_OPTION_EXCHANGES,
            multiplier: 100.0,
            expiries: monthlies,
        },
        ChainClass {
            trading_class: "SPXW".into(),
            exchanges: INDEX_OPTION_EXCHANGES,
            multiplier: 100.0,
            expiries: weeklies,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn expirations_cover_about_three_months_with_monthlies() {
        let chain = equity_chain("AAPL", 230.0, date!(2026 - 11 - 24));
        let exp = &chain[0].expiries;
        assert_eq!(exp.first().unwrap().date, date!(2026 - 11 - 27));
        assert!(exp.last().unwrap().date >= date!(2027 - 02 - 19));
        let monthlies: Vec<_> = exp.iter().filter(|e| e.monthly).map(|e| e.date).collect();
        assert_eq!(
            monthlies,
            vec![
                date!(2026 - 12 - 18),
                date!(2027 - 01 - 15),
                date!(2027 - 02 - 19)
            ]
        );
    }

    #[test]
    fn monthlies_list_more_strikes_than_weeklies() {
        let chain = equity_chain("AAPL", 230.0, date!(2026 - 11 - 24));
        let weekly = chain[0].expiries.iter().find(|e| !e.monthly).unwrap();
        let monthly = chain[0].expiries.iter().find(|e| e.monthly).unwrap();
        assert!(monthly.strikes.len() > weekly.strikes.len());
        assert!(weekly.strikes.iter().all(|k| monthly.strikes.contains(k)));
        assert!(
            weekly
                .strikes
                .windows(2)
                .all(|w| (w[1] - w[0] - 2.5).abs() < 1e-9)
        );
        assert_eq!(chain[0].strike_union().len(), monthly.strikes.len());
    }

    #[test]
    fn spx_has_monthly_and_weekly_classes() {
        let chain = index_chain(5900.0, date!(2026 - 11 - 24));
        assert_eq!(chain[0].trading_class, "SPX");
        assert!(chain[0].expiries.iter().all(|e| is_third_friday(e.date)));
        assert_eq!(chain[1].trading_class, "SPXW");
        assert!(chain[1].expiries.len() > chain[0].expiries.len());
        let far = &chain[0].expiries[0].strikes;
        assert!(far.contains(&4200.0) && !far.contains(&4205.0) && far.contains(&5905.0));
    }
}
