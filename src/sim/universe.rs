//! The instruments of the simulated market: the catalog's underlyings plus every listed
//! option, with deterministic contract ids and the look-ups requests need.

use std::collections::{HashMap, HashSet};

use time::Date;

use super::catalog::{ENTRIES, Entry, Kind};
use super::chains::{self, ChainClass};
use crate::greeks::OptionKind;

/// Security type as IB spells it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecType {
    /// "STK" (stocks and ETFs).
    Stock,
    /// "IND".
    Index,
    /// "CASH".
    Cash,
    /// "OPT".
    Option,
}

impl SecType {
    /// The wire code.
    pub fn code(self) -> &'static str {
        match self {
            SecType::Stock => "STK",
            SecType::Index => "IND",
            SecType::Cash => "CASH",
            SecType::Option => "OPT",
        }
    }

    /// Parses a wire code; `None` for types this market does not list.
    pub fn from_code(code: &str) -> Option<Self> {
        match code.to_ascii_uppercase().as_str() {
            "STK" => Some(SecType::Stock),
            "IND" => Some(SecType::Index),
            "CASH" => Some(SecType::Cash),
            "OPT" => Some(SecType::Option),
            _ => None,
        }
    }
}

/// Terms of a listed option.
#[derive(Debug, Clone)]
pub struct OptionTerms {
    /// Index of the underlying in the universe.
    pub underlying: usize,
    /// Last trading day.
    pub expiry: Date,
    /// Strike price.
    pub strike: f64,
    /// Call or put.
    pub right: OptionKind,
    /// Contract multiplier.
    pub multiplier: f64,
    /// Whether the expiry is a standard monthly.
    pub monthly: bool,
}

/// One tradable instrument.
#[derive(Debug, Clone)]
pub struct Instrument {
    /// IB contract id.
    pub con_id: i32,
    /// Ticker (the underlying's symbol for options, the base currency for FX).
    pub symbol: String,
    /// IB security type.
    pub sec_type: SecType,
    /// Trading currency.
    pub currency: String,
    /// Primary exchange.
    pub primary_exchange: String,
    /// Exchange reported when a request names none.
    pub default_exchange: &'static str,
    /// Exchanges the instrument can be requested on.
    pub valid_exchanges: &'static str,
    /// Exchange-local symbol (OCC symbol for options).
    pub local_symbol: String,
    /// IB trading class.
    pub trading_class: String,
    /// Long name.
    pub long_name: String,
    /// Minimum price increment.
    pub min_tick: f64,
    /// The catalog entry of the instrument or of its underlying.
    pub entry: &'static Entry,
    /// Present for options.
    pub option: Option<OptionTerms>,
}

impl Instrument {
    /// Whether this is an ETF.
    pub fn is_etf(&self) -> bool {
        self.option.is_none() && self.entry.kind == Kind::Etf
    }
}

const STOCK_EXCHANGES: &str = "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,NASDAQ,DRCTEDGE,BEX,BATS,EDGEA,BYX,IEX,EDGX,MEMX,PEARL,IBKRATS,LTSE,TPLUS1";
const TSE_EXCHANGES: &str = "SMART,TSE,ALPHA,OMEGA,CHIXCA,PURE";
const OPTION_EXCHANGES: &str =
    "SMART,AMEX,BATS,BOX,CBOE,CBOE2,EDGX,EMERALD,ISE,MEMX,MERCURY,MIAX,NASDAQOM,PEARL,PHLX,PSE";
const SPX_OPTION_EXCHANGES: &str = "SMART,CBOE";

/// A contract specification as a request gives it; empty/zero fields match anything.
#[derive(Debug, Clone, Default)]
pub struct ContractQuery {
    /// Contract id (0: any).
    pub con_id: i32,
    /// Symbol (underlying symbol for options).
    pub symbol: String,
    /// IB security type code.
    pub sec_type: String,
    /// Requested exchange ("" or SMART: routed).
    pub exchange: String,
    /// Currency.
    pub currency: String,
    /// Expiry "YYYYMMDD" or month prefix "YYYYMM".
    pub expiry: String,
    /// Strike (0: any).
    pub strike: f64,
    /// "C"/"P" (also "CALL"/"PUT").
    pub right: String,
    /// Multiplier (0: any).
    pub multiplier: f64,
    /// Trading class.
    pub trading_class: String,
    /// Exchange-local symbol.
    pub local_symbol: String,
}

/// One instrument matched by a query and the exchange to report it on.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// Index into the universe.
    pub index: usize,
    /// Exchange the request named, or the instrument's default.
    pub exchange: String,
}

/// Every instrument of the market and its indexes.
#[derive(Debug)]
pub struct Universe {
    instruments: Vec<Instrument>,
    by_con_id: HashMap<i32, usize>,
    /// Underlying index → its option chain classes.
    chains: HashMap<usize, Vec<ChainClass>>,
    /// Underlying index → indexes of its options.
    options_of: HashMap<usize, Vec<usize>>,
    /// Indexes of the underlyings, in catalog order.
    underlyings: Vec<usize>,
    /// The day expirations are counted from.
    today: Date,
}

impl Universe {
    /// Builds the market as listed on `today`.
    pub fn build(today: Date) -> Self {
        let mut universe = Universe {
            instruments: Vec::new(),
            by_con_id: HashMap::new(),
            chains: HashMap::new(),
            options_of: HashMap::new(),
            underlyings: Vec::new(),
            today,
        };
        for entry in ENTRIES {
            let index = universe.push(underlying(entry));
            universe.underlyings.push(index);
            if entry.optionable {
                let classes = match entry.kind {
                    Kind::Index => chains::index_chain(entry.price, today),
                    _ => chains::equity_chain(entry.symbol, entry.price, today),
                };
                universe.add_options(index, &classes);
                universe.chains.insert(index, classes);
            }
        }
        universe
    }

    fn push(&mut self, instrument: Instrument) -> usize {
        let index = self.instruments.len();
        self.by_con_id.insert(instrument.con_id, index);
        self.instruments.push(instrument);
        index
    }

    fn add_options(&mut self, underlying: usize, classes: &[ChainClass]) {
        let entry = self.instruments[underlying].entry;
        let mut used: HashSet<i32> = self.by_con_id.keys().copied().collect();
        let mut indexes = Vec::new();
        for class in classes {
            for expiry in &class.expiries {
                for &strike in &expiry.strikes {
                    for right in [OptionKind::Call, OptionKind::Put] {
                        let local = occ_symbol(&class.trading_class, expiry.date, right, strike);
                        let con_id = unique_option_id(&local, &mut used);
                        let instrument = Instrument {
                            con_id,
                            symbol: entry.symbol.to_string(),
                            sec_type: SecType::Option,
                            currency: entry.currency.to_string(),
                            primary_exchange: String::new(),
                            default_exchange: "SMART",
                            valid_exchanges: if entry.kind == Kind::Index {
                                SPX_OPTION_EXCHANGES
                            } else {
                                OPTION_EXCHANGES
                            },
                            local_symbol: local,
                            trading_class: class.trading_class.clone(),
                            long_name: entry.name.to_string(),
                            min_tick: 0.01,
                            entry,
                            option: Some(OptionTerms {
                                underlying,
                                expiry: expiry.date,
                                strike,
                                right,
                                multiplier: class.multiplier,
                                monthly: expiry.monthly,
                            }),
                        };
                        indexes.push(self.push(instrument));
                    }
                }
            }
        }
        self.options_of.insert(underlying, indexes);
    }

    /// The instrument at `index`.
    pub fn get(&self, index: usize) -> &Instrument {
        &self.instruments[index]
    }

    /// Number of instruments, options included.
    pub fn len(&self) -> usize {
        self.instruments.len()
    }

    /// Always false: the catalog is never empty.
    pub fn is_empty(&self) -> bool {
        self.instruments.is_empty()
    }

    /// The day the listing was built for.
    pub fn today(&self) -> Date {
        self.today
    }

    /// Index of the instrument with this contract id.
    pub fn by_con_id(&self, con_id: i32) -> Option<usize> {
        self.by_con_id.get(&con_id).copied()
    }

    /// Indexes of the underlyings (everything but options).
    pub fn underlyings(&self) -> impl Iterator<Item = usize> + '_ {
        self.underlyings.iter().copied()
    }

    /// Option chain classes of an underlying (empty when it has no options).
    pub fn chain(&self, underlying: usize) -> &[ChainClass] {
        self.chains
            .get(&underlying)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// First underlying with this symbol (case-insensitive), for spot look-ups.
    pub fn underlying_by_symbol(&self, symbol: &str) -> Option<usize> {
        self.underlyings()
            .find(|&i| self.instruments[i].symbol.eq_ignore_ascii_case(symbol))
    }

    /// Every instrument the query describes. Empty fields match anything, so an option
    /// query without strike or expiry, or a stock query without exchange and currency,
    /// can match several.
    pub fn resolve(&self, q: &ContractQuery) -> Vec<Match> {
        let candidates: Vec<usize> = if q.con_id > 0 {
            self.by_con_id(q.con_id).into_iter().collect()
        } else if !q.symbol.is_empty() || !q.local_symbol.is_empty() {
            let wants_option = SecType::from_code(&q.sec_type) == Some(SecType::Option);
            let bases: Vec<usize> = self
                .underlyings()
                .filter(|&i| {
                    q.symbol.is_empty()
                        || self.instruments[i].symbol.eq_ignore_ascii_case(&q.symbol)
                })
                .collect();
            if wants_option {
                bases
                    .iter()
                    .flat_map(|b| self.options_of.get(b).into_iter().flatten().copied())
                    .collect()
            } else {
                bases
            }
        } else {
            Vec::new()
        };
        candidates
            .into_iter()
            .filter(|&i| self.matches(&self.instruments[i], q))
            .filter_map(|i| {
                let inst = &self.instruments[i];
                let exchange = if q.exchange.is_empty() {
                    inst.default_exchange.to_string()
                } else if on_exchange(inst, &q.exchange) {
                    q.exchange.to_ascii_uppercase()
                } else {
                    return None;
                };
                Some(Match { index: i, exchange })
            })
            .collect()
    }

    fn matches(&self, inst: &Instrument, q: &ContractQuery) -> bool {
        let text = |want: &str, have: &str| want.is_empty() || want.eq_ignore_ascii_case(have);
        if !text(&q.sec_type, inst.sec_type.code())
            || !text(&q.currency, &inst.currency)
            || !text(&q.trading_class, &inst.trading_class)
            || !(q.local_symbol.is_empty() || q.local_symbol.trim() == inst.local_symbol.trim())
        {
            return false;
        }
        if q.con_id > 0 && !q.symbol.is_empty() && !q.symbol.eq_ignore_ascii_case(&inst.symbol) {
            return false;
        }
        let Some(terms) = &inst.option else {
            return q.expiry.is_empty() && q.strike == 0.0 && q.right.is_empty();
        };
        let expiry = yyyymmdd(terms.expiry);
        let right_ok = match q.right.to_ascii_uppercase().as_str() {
            "" => true,
            "C" | "CALL" => terms.right == OptionKind::Call,
            "P" | "PUT" => terms.right == OptionKind::Put,
            _ => false,
        };
        expiry.starts_with(&q.expiry)
            && (q.strike == 0.0 || (q.strike - terms.strike).abs() < 1e-6)
            && right_ok
            && (q.multiplier == 0.0 || (q.multiplier - terms.multiplier).abs() < 1e-9)
    }

    /// Underlyings whose symbol starts with `pattern`, then those whose symbol or name
    /// contains it, at most `limit`.
    pub fn search(&self, pattern: &str, limit: usize) -> Vec<usize> {
        let p = pattern.trim().to_ascii_uppercase();
        if p.is_empty() {
            return Vec::new();
        }
        let underlyings: Vec<usize> = self.underlyings().collect();
        let prefix = underlyings
            .iter()
            .copied()
            .filter(|&i| self.instruments[i].symbol.starts_with(&p));
        let contains = underlyings.iter().copied().filter(|&i| {
            let inst = &self.instruments[i];
            !inst.symbol.starts_with(&p)
                && (inst.symbol.contains(&p) || inst.long_name.to_ascii_uppercase().contains(&p))
        });
        prefix.chain(contains).take(limit).collect()
    }
}

fn underlying(entry: &'static Entry) -> Instrument {
    let (sec_type, default_exchange, valid, min_tick) = match entry.kind {
        Kind::Stock | Kind::Etf if entry.primary == "TSE" => {
            (SecType::Stock, "SMART", TSE_EXCHANGES, 0.01)
        }
        Kind::Stock | Kind::Etf => (SecType::Stock, "SMART", STOCK_EXCHANGES, 0.01),
        Kind::Index => (SecType::Index, "CBOE", "CBOE", 0.01),
        Kind::Forex => (SecType::Cash, "IDEALPRO", "IDEALPRO", 0.00005),
    };
    // IB gives an underlying the same local symbol and trading class: the ticker, or
    // `BASE.QUOTE` for a currency pair.
    let local = match entry.kind {
        Kind::Forex => format!("{}.{}", entry.symbol, entry.currency),
        _ => entry.symbol.to_string(),
    };
    Instrument {
        con_id: entry.con_id,
        symbol: entry.symbol.to_string(),
        sec_type,
        currency: entry.currency.to_string(),
        primary_exchange: entry.primary.to_string(),
        default_exchange,
        valid_exchanges: valid,
        local_symbol: local.clone(),
        trading_class: local,
        long_name: entry.name.to_string(),
        min_tick,
        entry,
        option: None,
    }
}

fn on_exchange(inst: &Instrument, exchange: &str) -> bool {
    inst.valid_exchanges
        .split(',')
        .any(|e| e.eq_ignore_ascii_case(exchange))
        || inst.primary_exchange.eq_ignore_ascii_case(exchange)
}

/// "YYYYMMDD".
pub fn yyyymmdd(date: Date) -> String {
    format!(
        "{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// OCC option symbol: root padded to six, YYMMDD, C/P, strike × 1000 on eight digits.
fn occ_symbol(root: &str, expiry: Date, right: OptionKind, strike: f64) -> String {
    let cp = if right == OptionKind::Call { 'C' } else { 'P' };
    format!(
        "{root:<6}{:02}{:02}{:02}{cp}{:08}",
        expiry.year() % 100,
        u8::from(expiry.month()),
        expiry.day(),
        (strike * 1000.0).round() as i64
    )
}

/// A contract id derived from the OCC symbol (FNV-1a), so the same option has the same id
/// on every run of the same day; probes past the rare collision.
fn unique_option_id(occ: &str, used: &mut HashSet<i32>) -> i32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in occ.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let mut id = 400_000_000 + (hash % 1_500_000_000) as i32;
    while !used.insert(id) {
        id = if id >= 1_899_999_999 {
            400_000_000
        } else {
            id + 1
        };
    }
    id
}

#[cfg(test)]
#[path = "universe_tests.rs"]
mod tests;
