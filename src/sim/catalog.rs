//! The listed underlyings of the simulated market: symbols, names, listings, price levels and
//! model parameters. Well-known instruments carry IB's real contract ids; the rest have fixed
//! ids of the same shape, so ids are the same on every run.

/// What kind of underlying a catalog entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Common stock.
    Stock,
    /// Exchange-traded fund (a stock to IB, with stock type "ETF").
    Etf,
    /// Cash-settled index (sec type IND).
    Index,
    /// Currency pair (sec type CASH).
    Forex,
}

/// One listing in the simulated market.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// IB contract id.
    pub con_id: i32,
    /// Ticker symbol (for FX, the base currency).
    pub symbol: &'static str,
    /// Company or fund name as IB's long name.
    pub name: &'static str,
    /// Stock, ETF, index or FX.
    pub kind: Kind,
    /// Primary listing exchange.
    pub primary: &'static str,
    /// Trading currency.
    pub currency: &'static str,
    /// Price level at the start of every run.
    pub price: f64,
    /// Annualised volatility of the random walk and base of the option smile.
    pub vol: f64,
    /// Continuous dividend yield used to price its options.
    pub dividend_yield: f64,
    /// IB industry.
    pub industry: &'static str,
    /// IB category.
    pub category: &'static str,
    /// IB subcategory.
    pub subcategory: &'static str,
    /// Whether options are listed on it in this market.
    pub optionable: bool,
}

const fn entry(
    con_id: i32,
    symbol: &'static str,
    name: &'static str,
    kind: Kind,
    primary: &'static str,
    (price, vol, dividend_yield): (f64, f64, f64),
    sector: (&'static str, &'static str, &'static str),
) -> Entry {
    Entry {
        con_id,
        symbol,
        name,
        kind,
        primary,
        currency: "USD",
        price,
        vol,
        dividend_yield,
        industry: sector.0,
        category: sector.1,
        subcategory: sector.2,
        optionable: true,
    }
}

const TECH_HW: (&str, &str, &str) = ("Technology", "Computers", "Computers");
const SOFTWARE: (&str, &str, &str) = ("Technology", "Software", "Applications Software");
const CHIPS: (&str, &str, &str) = ("Technology", "Semiconductors", "Electronic Compo-Semicon");
const INTERNET: (&str, &str, &str) = ("Communications", "Internet", "E-Commerce/Products");
const MEDIA: (&str, &str, &str) = ("Communications", "Media", "Multimedia");
const BANKS: (&str, &str, &str) = ("Financial", "Banks", "Diversified Banking Inst");
const OIL: (&str, &str, &str) = ("Energy", "Oil&Gas", "Oil Comp-Integrated");
const STAPLES: (&str, &str, &str) = (
    "Consumer, Non-cyclical",
    "Beverages",
    "Beverages-Non-alcoholic",
);
const PHARMA: (&str, &str, &str) = ("Consumer, Non-cyclical", "Pharmaceuticals", "Medical-Drugs");
const RETAIL: (&str, &str, &str) = ("Consumer, Cyclical", "Retail", "Retail-Discount");
const AUTOS: (&str, &str, &str) = (
    "Consumer, Cyclical",
    "Auto Manufacturers",
    "Auto-Cars/Light Trucks",
);
const FUND: (&str, &str, &str) = ("Funds", "Equity Fund", "Growth-Large Cap");
const BOND_FUND: (&str, &str, &str) = ("Funds", "Debt Fund", "Government/Agency");
const COMMODITY_FUND: (&str, &str, &str) = ("Funds", "Commodity Fund", "Precious Metals");
const NONE: (&str, &str, &str) = ("", "", "");

use Kind::{Etf, Forex, Index, Stock};

/// Every underlying of the simulated market.
#[rustfmt::skip]
pub const ENTRIES: &[Entry] = &[
    entry(265598, "AAPL", "APPLE INC", Stock, "NASDAQ", (230.0, 0.25, 0.0045), TECH_HW),
    entry(272093, "MSFT", "MICROSOFT CORP", Stock, "NASDAQ", (420.0, 0.22, 0.008), SOFTWARE),
    entry(4815747, "NVDA", "NVIDIA CORP", Stock, "NASDAQ", (140.0, 0.50, 0.0003), CHIPS),
    entry(3691937, "AMZN", "AMAZON.COM INC", Stock, "NASDAQ", (200.0, 0.32, 0.0), INTERNET),
    entry(208813719, "GOOGL", "ALPHABET INC-CL A", Stock, "NASDAQ", (170.0, 0.30, 0.005), INTERNET),
    entry(107113386, "META", "META PLATFORMS INC-CLASS A", Stock, "NASDAQ", (570.0, 0.38, 0.0035), INTERNET),
    entry(76792991, "TSLA", "TESLA INC", Stock, "NASDAQ", (250.0, 0.60, 0.0), AUTOS),
    entry(4391, "AMD", "ADVANCED MICRO DEVICES", Stock, "NASDAQ", (140.0, 0.50, 0.0), CHIPS),
    entry(15124833, "NFLX", "NETFLIX INC", Stock, "NASDAQ", (700.0, 0.40, 0.0), MEDIA),
    entry(270639, "INTC", "INTEL CORP", Stock, "NASDAQ", (22.0, 0.45, 0.02), CHIPS),
    entry(1520593, "JPM", "JPMORGAN CHASE & CO", Stock, "NYSE", (220.0, 0.22, 0.022), BANKS),
    entry(10098, "BAC", "BANK OF AMERICA CORP", Stock, "NYSE", (43.0, 0.27, 0.024), BANKS),
    entry(13977, "XOM", "EXXON MOBIL CORP", Stock, "NYSE", (115.0, 0.24, 0.034), OIL),
    entry(8894, "KO", "COCA-COLA CO/THE", Stock, "NYSE", (63.0, 0.15, 0.031), STAPLES),
    entry(11091, "PFE", "PFIZER INC", Stock, "NYSE", (26.0, 0.25, 0.065), PHARMA),
    entry(6459, "DIS", "WALT DISNEY CO/THE", Stock, "NYSE", (100.0, 0.28, 0.009), MEDIA),
    entry(13824, "WMT", "WALMART INC", Stock, "NYSE", (85.0, 0.18, 0.01), RETAIL),
    entry(195014116, "SHOP", "SHOPIFY INC - CLASS A", Stock, "NYSE", (80.0, 0.55, 0.0), SOFTWARE),
    Entry {
        currency: "CAD",
        optionable: false,
        ..entry(195014133, "SHOP", "SHOPIFY INC - CLASS A", Stock, "TSE", (112.0, 0.55, 0.0), SOFTWARE)
    },
    entry(756733, "SPY", "SPDR S&P 500 ETF TRUST", Etf, "ARCA", (590.0, 0.15, 0.012), FUND),
    entry(320227571, "QQQ", "INVESCO QQQ TRUST SERIES 1", Etf, "NASDAQ", (505.0, 0.19, 0.006), FUND),
    entry(9579970, "IWM", "ISHARES RUSSELL 2000 ETF", Etf, "ARCA", (225.0, 0.22, 0.012), FUND),
    entry(73128548, "DIA", "SPDR DJIA TRUST", Etf, "ARCA", (430.0, 0.14, 0.016), FUND),
    entry(51529211, "GLD", "SPDR GOLD SHARES", Etf, "ARCA", (245.0, 0.14, 0.0), COMMODITY_FUND),
    entry(15547841, "TLT", "ISHARES 20+ YEAR TREASURY BD", Etf, "NASDAQ", (92.0, 0.13, 0.04), BOND_FUND),
    entry(4215235, "XLF", "FINANCIAL SELECT SECTOR SPDR", Etf, "ARCA", (48.0, 0.18, 0.015), FUND),
    entry(416904, "SPX", "S&P 500 Stock Index", Index, "CBOE", (5900.0, 0.14, 0.013), NONE),
    Entry {
        optionable: false,
        ..entry(12087792, "EUR", "European Monetary Union Euro", Forex, "IDEALPRO", (1.05, 0.07, 0.0), NONE)
    },
];
