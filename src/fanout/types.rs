//! Domain types of the fan-out: contracts, quotes and Greeks, free of tonic and ibapi types.

use std::time::SystemTime;

pub use crate::ib::notices::FarmKind;
pub use crate::market_data_type::MarketDataType;

/// The kind of instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SecType {
    #[default]
    Stock,
    Option,
    Index,
    Future,
    FutureOption,
    Forex,
    Crypto,
    Cfd,
    Bond,
}

impl SecType {
    /// The data farm family that serves this kind of instrument, used to mark only the
    /// affected instruments stale when IB reports a farm down.
    pub fn farm(self) -> FarmKind {
        match self {
            SecType::Option | SecType::FutureOption => FarmKind::Options,
            SecType::Forex => FarmKind::Forex,
            SecType::Future => FarmKind::Futures,
            _ => FarmKind::Equities,
        }
    }
}

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Right {
    Call,
    Put,
}

/// What a client accepts when live data is not permitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataPolicy {
    /// Follow the active profile's `allow_delayed_fallback`.
    #[default]
    ProfileDefault,
    LiveOnly,
    LiveOrDelayed,
}

/// A contract as the user describes it or as IB resolved it. `con_id` wins when set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContractSpec {
    pub con_id: i64,
    pub symbol: String,
    pub sec_type: SecType,
    pub exchange: String,
    pub primary_exchange: String,
    pub currency: String,
    /// `YYYYMMDD` (or `YYYYMM` for futures).
    pub expiry: String,
    pub strike: Option<f64>,
    pub right: Option<Right>,
    pub multiplier: String,
    pub trading_class: String,
    pub local_symbol: String,
}

impl ContractSpec {
    /// A stable key describing the request, used to cache look-ups of contracts that
    /// carry no conId yet.
    pub fn lookup_key(&self) -> String {
        if self.con_id > 0 {
            return format!("conid:{}", self.con_id);
        }
        let right = match self.right {
            Some(Right::Call) => "C",
            Some(Right::Put) => "P",
            None => "",
        };
        let strike = self.strike.map(|s| format!("{s}")).unwrap_or_default();
        format!(
            "{:?}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
            self.sec_type,
            self.symbol.to_ascii_uppercase(),
            self.exchange.to_ascii_uppercase(),
            self.primary_exchange.to_ascii_uppercase(),
            self.currency.to_ascii_uppercase(),
            self.expiry,
            strike,
            right,
            self.multiplier,
            self.trading_class.to_ascii_uppercase()
        )
    }
}

/// Everything IB knows about a contract.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContractDetails {
    pub contract: ContractSpec,
    pub long_name: String,
    pub market_name: String,
    pub min_tick: f64,
    pub valid_exchanges: Vec<String>,
    pub order_types: Vec<String>,
    pub time_zone: String,
    pub trading_hours: Vec<String>,
    pub liquid_hours: Vec<String>,
    pub under_con_id: i64,
    pub under_symbol: String,
    pub industry: String,
    pub category: String,
    pub subcategory: String,
}

/// One match of a symbol search.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SymbolMatch {
    pub contract: ContractSpec,
    pub derivative_sec_types: Vec<String>,
    pub description: String,
}

/// Option-chain parameters of one exchange/trading class, as `reqSecDefOptParams` gives them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChainParams {
    pub exchange: String,
    pub underlying_con_id: i64,
    pub trading_class: String,
    pub multiplier: String,
    pub expirations: Vec<String>,
    pub strikes: Vec<f64>,
}

/// The last value of one instrument, as served to clients.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    pub con_id: i64,
    pub symbol: String,
    pub bid: Option<f64>,
    pub ask: Option<f64>,
    pub last: Option<f64>,
    pub bid_size: Option<f64>,
    pub ask_size: Option<f64>,
    pub last_size: Option<f64>,
    pub volume: Option<f64>,
    pub open: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub close: Option<f64>,
    /// IB's last-trade time, seconds since the epoch.
    pub last_trade_time: Option<i64>,
    /// The type IB actually sent, once it said.
    pub market_data_type: Option<MarketDataType>,
    /// The type ibstream asked for.
    pub requested_type: MarketDataType,
    /// Per instrument, increases with every change; a gap shows what a reader skipped.
    pub sequence: u64,
    pub received_at: SystemTime,
    /// True while the session (or the farm serving it) is down.
    pub stale: bool,
}

impl Quote {
    /// An empty quote: no values yet, sequence 0.
    pub fn empty(con_id: i64, symbol: &str, requested_type: MarketDataType) -> Quote {
        Quote {
            con_id,
            symbol: symbol.to_owned(),
            bid: None,
            ask: None,
            last: None,
            bid_size: None,
            ask_size: None,
            last_size: None,
            volume: None,
            open: None,
            high: None,
            low: None,
            close: None,
            last_trade_time: None,
            market_data_type: None,
            requested_type,
            sequence: 0,
            received_at: SystemTime::UNIX_EPOCH,
            stale: false,
        }
    }

    /// The mid price when both sides are present and sane.
    pub fn mid(&self) -> Option<f64> {
        match (self.bid, self.ask) {
            (Some(b), Some(a)) if b > 0.0 && a >= b => Some((a + b) / 2.0),
            _ => None,
        }
    }

    /// Whether IB has sent any value at all.
    pub fn has_data(&self) -> bool {
        [
            self.bid, self.ask, self.last, self.close, self.open, self.high, self.low,
        ]
        .iter()
        .any(Option::is_some)
    }
}

/// Where a set of Greeks came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GreeksSource {
    /// IB's option model (tick 13 / 83).
    IbModel,
    /// Black-Scholes here, from the mid price and the underlying price.
    Computed,
}

/// Option sensitivities in IB's units (vega per vol point, theta per calendar day).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Greeks {
    pub implied_volatility: Option<f64>,
    pub delta: Option<f64>,
    pub gamma: Option<f64>,
    pub vega: Option<f64>,
    pub theta: Option<f64>,
    pub underlying_price: Option<f64>,
    pub option_price: Option<f64>,
    pub source: GreeksSource,
}

impl Greeks {
    /// True when IB's model gave the sensitivities a client needs.
    pub fn is_complete(&self) -> bool {
        self.implied_volatility.is_some() && self.delta.is_some() && self.gamma.is_some()
    }
}

/// Option-only values that travel beside the quote.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OptionExtras {
    /// IB's model computation (sentinels already removed), if any.
    pub model: Option<Greeks>,
    pub open_interest: Option<f64>,
    pub option_volume: Option<f64>,
    /// IB's implied volatility tick (generic 106), if sent.
    pub implied_volatility: Option<f64>,
}
