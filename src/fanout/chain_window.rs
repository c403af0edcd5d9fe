//! Which options a chain window holds: the expirations, and the strikes around the money
//! or within a range, from what IB actually lists for each expiry.

use super::types::ChainParams;

/// How strikes are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StrikeSelection {
    /// The `count` listed strikes nearest the underlying price.
    AroundMoney { count: usize },
    /// Every listed strike within `[min, max]`.
    Range { min: f64, max: f64 },
}

/// The chain parameters to use: the requested trading class, else the one named like the
/// underlying, else the first; SMART preferred among exchanges.
pub fn pick_params<'a>(
    params: &'a [ChainParams],
    symbol: &str,
    trading_class: &str,
) -> Option<&'a ChainParams> {
    let wanted = if trading_class.is_empty() {
        symbol
    } else {
        trading_class
    };
    let matching: Vec<&ChainParams> = params
        .iter()
        .filter(|p| p.trading_class.eq_ignore_ascii_case(wanted))
        .collect();
    let pool: Vec<&ChainParams> = if matching.is_empty() {
        if !trading_class.is_empty() {
            return None;
        }
        params.iter().collect()
    } else {
        matching
    };
    pool.iter()
        .find(|p| p.exchange.eq_ignore_ascii_case("SMART"))
        .or_else(|| pool.first())
        .copied()
}

/// The nearest `count` expirations on or after `today` (`YYYYMMDD`).
pub fn nearest_expirations(expirations: &[String], today: &str, count: usize) -> Vec<String> {
    let mut future: Vec<String> = expirations
        .iter()
        .filter(|e| e.as_str() >= today)
        .cloned()
        .collect();
    future.sort();
    future.dedup();
    future.truncate(count);
    future
}

/// The listed strike nearest `price`.
pub fn nearest_strike(listed: &[f64], price: f64) -> Option<f64> {
    listed
        .iter()
        .copied()
        .min_by(|a, b| (a - price).abs().total_cmp(&(b - price).abs()))
}

/// The strikes of a window, sorted, from the strikes listed for one expiry (sorted).
pub fn select_strikes(listed: &[f64], selection: StrikeSelection, price: Option<f64>) -> Vec<f64> {
    match selection {
        StrikeSelection::Range { min, max } => listed
            .iter()
            .copied()
            .filter(|k| *k >= min && *k <= max)
            .collect(),
        StrikeSelection::AroundMoney { count } => {
            let Some(price) = price else {
                return Vec::new();
            };
            let count = count.min(listed.len());
            if count == 0 {
                return Vec::new();
            }
            // The contiguous run of `count` strikes whose centre is nearest the price.
            let atm = listed
                .iter()
                .enumerate()
                .min_by(|(_, a), (_, b)| (*a - price).abs().total_cmp(&(*b - price).abs()))
                .map(|(i, _)| i)
                .unwrap_or(0);
            let below = (count - 1) / 2;
            let start = atm.saturating_sub(below).min(listed.len() - count);
            listed[start..start + count].to_vec()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(exchange: &str, class: &str) -> ChainParams {
        ChainParams {
            exchange: exchange.into(),
            trading_class: class.into(),
            ..ChainParams::default()
        }
    }

    #[test]
    fn params_prefer_the_named_class_on_smart() {
        let all = [
            params("CBOE", "SPXW"),
            params("CBOE", "SPX"),
            params("SMART", "SPX"),
            params("SMART", "SPXW"),
        ];
        assert_eq!(pick_params(&all, "SPX", "").unwrap(), &all[2]);
        assert_eq!(pick_params(&all, "SPX", "spxw").unwrap(), &all[3]);
        assert!(pick_params(&all, "SPX", "NOPE").is_none());
    }

    #[test]
    fn expirations_skip_the_past() {
        let e: Vec<String> = ["20250117", "20250110", "20250103", "20250124"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            nearest_expirations(&e, "20250108", 2),
            vec!["20250110", "20250117"]
        );
    }

    #[test]
    fn strikes_centre_on_the_money_and_clamp_at_the_edges() {
        let listed: Vec<f64> = (90..=110).map(f64::from).collect();
        let around = |count, price| {
            select_strikes(&listed, StrikeSelection::AroundMoney { count }, Some(price))
        };
        assert_eq!(around(4, 100.2), vec![99.0, 100.0, 101.0, 102.0]);
        assert_eq!(around(3, 100.2), vec![99.0, 100.0, 101.0]);
        assert_eq!(around(3, 50.0), vec![90.0, 91.0, 92.0]);
        assert_eq!(around(3, 500.0), vec![108.0, 109.0, 110.0]);
        assert_eq!(around(100, 100.0).len(), 21);
        assert_eq!(
            select_strikes(
                &listed,
                StrikeSelection::Range {
                    min: 95.5,
                    max: 98.0
                },
                None
            ),
            vec![96.0, 97.0, 98.0]
        );
        assert_eq!(nearest_strike(&listed, 97.4), Some(97.0));
    }
}
