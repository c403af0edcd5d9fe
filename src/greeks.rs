//! Black-Scholes-Merton prices, Greeks and implied volatility for European options on an
//! underlying paying a continuous dividend yield.
//!
//! Units follow Interactive Brokers' option computation ticks, so values computed here can
//! stand beside IB's own:
//!
//! - `delta`: per 1.00 move of the underlying;
//! - `gamma`: change of delta per 1.00 move of the underlying;
//! - `vega`: price change for a **one percentage point** rise in volatility (0.20 → 0.21),
//!   i.e. ∂V/∂σ ÷ 100;
//! - `theta`: price change over **one calendar day** (∂V/∂t ÷ 365), negative for a long
//!   option losing time value;
//! - volatility, rates and yields are annualised fractions (0.25 = 25 %), time is in years.
//!
//! All functions are pure and work on plain `f64`; invalid inputs (non-positive spot, strike,
//! volatility or time) give `None` rather than NaN.

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptionKind {
    /// The right to buy.
    Call,
    /// The right to sell.
    Put,
}

/// What a Black-Scholes-Merton valuation needs besides the volatility.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptionInputs {
    /// Call or put.
    pub kind: OptionKind,
    /// Underlying price.
    pub spot: f64,
    /// Strike price.
    pub strike: f64,
    /// Time to expiry in years.
    pub time: f64,
    /// Continuously compounded risk-free rate.
    pub rate: f64,
    /// Continuous dividend yield.
    pub dividend_yield: f64,
}

/// Price and sensitivities of one option at one volatility, in IB's units (see module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Greeks {
    /// Theoretical option price.
    pub price: f64,
    /// ∂V/∂S.
    pub delta: f64,
    /// ∂²V/∂S².
    pub gamma: f64,
    /// Price change per one volatility point (1 %).
    pub vega: f64,
    /// Price change per calendar day.
    pub theta: f64,
}

/// Days per year used to express theta per calendar day.
const DAYS_PER_YEAR: f64 = 365.0;

impl OptionInputs {
    fn is_valid(&self) -> bool {
        [
            self.spot,
            self.strike,
            self.time,
            self.rate,
            self.dividend_yield,
        ]
        .iter()
        .all(|v| v.is_finite())
            && self.spot > 0.0
            && self.strike > 0.0
            && self.time > 0.0
    }

    /// Present value of the dividends paid over the option's life under the continuous yield,
    /// as IB reports it in `pvDividend`.
    pub fn pv_dividend(&self) -> f64 {
        self.spot * (1.0 - (-self.dividend_yield * self.time).exp())
    }

    /// Lowest and highest prices a European option can have without arbitrage.
    pub fn price_bounds(&self) -> (f64, f64) {
        let fwd_spot = self.spot * (-self.dividend_yield * self.time).exp();
        let disc_strike = self.strike * (-self.rate * self.time).exp();
        match self.kind {
            OptionKind::Call => ((fwd_spot - disc_strike).max(0.0), fwd_spot),
            OptionKind::Put => ((disc_strike - fwd_spot).max(0.0), disc_strike),
        }
    }
}

/// Standard normal probability density.
pub fn norm_pdf(x: f64) -> f64 {
    const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
    INV_SQRT_2PI * (-0.5 * x * x).exp()
}

/// Standard normal cumulative distribution, accurate to about 1e-15 absolute.
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Complementary error function (W. J. Cody's rational Chebyshev approximations, relative
/// error below 1e-15 over the whole real line).
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let ax = x.abs();
    let r = if ax < 0.5 {
        return 1.0 - erf_small(x);
    } else if ax < 4.0 {
        erfc_mid(ax)
    } else {
        erfc_large(ax)
    };
    if x < 0.0 { 2.0 - r } else { r }
}

// Cody's published coefficients, kept digit for digit.
#[allow(clippy::excessive_precision)]
fn erf_small(x: f64) -> f64 {
    const A: [f64; 5] = [
        3.161_123_743_870_565_6,
        1.138_641_541_510_501_6e2,
        3.774_852_376_853_020_2e2,
        3.209_377_589_138_469_5e3,
        1.857_777_061_846_031_5e-1,
    ];
    const B: [f64; 4] = [
        2.360_129_095_234_412_1e1,
        2.440_246_379_344_441_7e2,
        1.282_616_526_077_372_3e3,
        2.844_236_833_439_170_6e3,
    ];
    let z = x * x;
    let mut num = A[4] * z;
    let mut den = z;
    for i in 0..3 {
        num = (num + A[i]) * z;
        den = (den + B[i]) * z;
    }
    x * (num + A[3]) / (den + B[3])
}

// Cody's published coefficients, kept digit for digit.
#[allow(clippy::excessive_precision)]
fn erfc_mid(ax: f64) -> f64 {
    const C: [f64; 9] = [
        5.641_884_969_886_700_9e-1,
        8.883_149_794_388_375_9,
        6.611_919_063_714_163e1,
        2.986_351_381_974_001_3e2,
        8.819_522_212_417_690_9e2,
        1.712_047_612_634_070_6e3,
        2.051_078_377_826_071_5e3,
        1.230_339_354_797_997_2e3,
        2.153_115_354_744_038_5e-8,
    ];
    const D: [f64; 8] = [
        1.574_492_611_070_983_5e1,
        1.176_939_508_913_125e2,
        5.371_811_018_620_098_6e2,
        1.621_389_574_566_690_3e3,
        3.290_799_235_733_459_7e3,
        4.362_619_090_143_247e3,
        3.439_367_674_143_721_6e3,
        1.230_339_354_803_749_5e3,
    ];
    let mut num = C[8] * ax;
    let mut den = ax;
    for i in 0..7 {
        num = (num + C[i]) * ax;
        den = (den + D[i]) * ax;
    }
    scaled_exp(ax) * (num + C[7]) / (den + D[7])
}

// Cody's published coefficients, kept digit for digit.
#[allow(clippy::excessive_precision)]
fn erfc_large(ax: f64) -> f64 {
    const P: [f64; 6] = [
        3.053_266_349_612_323_4e-1,
        3.603_448_999_498_044_4e-1,
        1.257_817_261_112_292_5e-1,
        1.608_378_514_874_227_6e-2,
        6.587_491_615_298_378_5e-4,
        1.631_538_713_730_709_6e-2,
    ];
    const Q: [f64; 5] = [
        2.568_520_192_289_822_4,
        1.872_952_849_923_460_4,
        5.279_051_029_514_284_1e-1,
        6.051_834_131_244_132e-2,
        2.335_204_976_268_691_8e-3,
    ];
    const INV_SQRT_PI: f64 = 0.564_189_583_547_756_3;
    if ax >= 27.0 {
        return 0.0;
    }
    let z = 1.0 / (ax * ax);
    let mut num = P[5] * z;
    let mut den = z;
    for i in 0..4 {
        num = (num + P[i]) * z;
        den = (den + Q[i]) * z;
    }
    let r = z * (num + P[4]) / (den + Q[4]);
    scaled_exp(ax) * (INV_SQRT_PI - r) / ax
}

/// exp(-x²) computed without losing the low bits of x² (Cody's splitting trick).
fn scaled_exp(x: f64) -> f64 {
    let xs = (x * 16.0).trunc() / 16.0;
    let del = (x - xs) * (x + xs);
    (-xs * xs).exp() * (-del).exp()
}

/// Price and Greeks at volatility `vol`; `None` for invalid inputs, a non-positive vol, or
/// inputs so extreme that the model has no finite answer.
pub fn greeks(inputs: &OptionInputs, vol: f64) -> Option<Greeks> {
    if !(inputs.is_valid() && vol.is_finite() && vol > 0.0) {
        return None;
    }
    let OptionInputs {
        kind,
        spot: s,
        strike: k,
        time: t,
        rate: r,
        dividend_yield: q,
    } = *inputs;
    let sqrt_t = t.sqrt();
    let d1 = ((s / k).ln() + (r - q + 0.5 * vol * vol) * t) / (vol * sqrt_t);
    let d2 = d1 - vol * sqrt_t;
    let disc_q = (-q * t).exp();
    let disc_r = (-r * t).exp();
    let pdf_d1 = norm_pdf(d1);
    let gamma = disc_q * pdf_d1 / (s * vol * sqrt_t);
    let vega = s * disc_q * pdf_d1 * sqrt_t / 100.0;
    let decay = -s * disc_q * pdf_d1 * vol / (2.0 * sqrt_t);
    let (price, delta, theta_year) = match kind {
        OptionKind::Call => {
            let (nd1, nd2) = (norm_cdf(d1), norm_cdf(d2));
            (
                s * disc_q * nd1 - k * disc_r * nd2,
                disc_q * nd1,
                decay - r * k * disc_r * nd2 + q * s * disc_q * nd1,
            )
        }
        OptionKind::Put => {
            let (nmd1, nmd2) = (norm_cdf(-d1), norm_cdf(-d2));
            (
                k * disc_r * nmd2 - s * disc_q * nmd1,
                -disc_q * nmd1,
                decay + r * k * disc_r * nmd2 - q * s * disc_q * nmd1,
            )
        }
    };
    let g = Greeks {
        price,
        delta,
        gamma,
        vega,
        theta: theta_year / DAYS_PER_YEAR,
    };
    // Extreme but finite inputs (a spot near the smallest float, a vanishing vol) can
    // underflow to 0/0; such a result is no answer rather than a NaN to serve.
    [g.price, g.delta, g.gamma, g.vega, g.theta]
        .iter()
        .all(|v| v.is_finite())
        .then_some(g)
}

/// Theoretical price at volatility `vol`.
pub fn price(inputs: &OptionInputs, vol: f64) -> Option<f64> {
    greeks(inputs, vol).map(|g| g.price)
}

/// Volatility search interval: 0.01 % to 1000 % a year.
const VOL_MIN: f64 = 1e-4;
const VOL_MAX: f64 = 10.0;

/// The volatility at which the model price equals `target`, or `None` when `target` lies
/// outside the no-arbitrage bounds (or on them, where no finite volatility fits).
///
/// Newton's method on vega, falling back to bisection whenever a step leaves the bracket
/// or vega vanishes, so deep in- or out-of-the-money options still converge.
pub fn implied_volatility(inputs: &OptionInputs, target: f64) -> Option<f64> {
    if !inputs.is_valid() || !target.is_finite() {
        return None;
    }
    let (lower, upper) = inputs.price_bounds();
    if target <= lower || target >= upper {
        return None;
    }
    let value = |vol: f64| price(inputs, vol).map(|p| p - target);
    let (mut lo, mut hi) = (VOL_MIN, VOL_MAX);
    if value(lo)? > 0.0 || value(hi)? < 0.0 {
        return None;
    }
    let tolerance = 1e-12 * target.max(1e-8);
    let mut vol = 0.3;
    for _ in 0..200 {
        let g = greeks(inputs, vol)?;
        let diff = g.price - target;
        if diff.abs() <= tolerance {
            return Some(vol);
        }
        if diff > 0.0 {
            hi = vol;
        } else {
            lo = vol;
        }
        let vega_per_unit = g.vega * 100.0;
        let newton = vol - diff / vega_per_unit;
        vol = if vega_per_unit > 1e-12 && newton > lo && newton < hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
        if hi - lo < 1e-15 {
            return Some(vol);
        }
    }
    Some(vol)
}

#[cfg(test)]
#[path = "greeks_tests.rs"]
mod tests;
