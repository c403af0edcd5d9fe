//! What the drill's clients ask for: random sets of the simulator's instruments, with
//! unknown symbols and hostile fields among them.

use rand::Rng;
use rand::seq::IndexedRandom;

use crate::proto::ibstream::v1::{
    Instrument, SecurityType, StreamOptionChainRequest, StreamQuotesRequest,
};

/// Listed, unambiguous stocks and ETFs of the simulated market.
const SYMBOLS: [&str; 24] = [
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AMD", "NFLX", "INTC", "JPM", "BAC",
    "XOM", "KO", "PFE", "DIS", "WMT", "SPY", "QQQ", "IWM", "DIA", "GLD", "TLT", "XLF",
];
/// Optionable underlyings for chain streams.
const UNDERLYINGS: [&str; 6] = ["SPY", "QQQ", "AAPL", "MSFT", "IWM", "TSLA"];
/// Symbols the simulated market does not list.
const UNKNOWN: [&str; 3] = ["ZZZQ", "NOSUCH", "QWERTY"];
/// Length of the over-long strings of hostile requests.
const HOSTILE_LEN: usize = 4096;

/// One instrument of a quotes request and whether data is expected for it.
#[derive(Debug, Clone)]
pub struct Requested {
    pub name: String,
    pub expect_data: bool,
}

/// A quotes request and what each of its instruments is.
#[derive(Debug, Clone)]
pub struct QuotesPlan {
    pub request: StreamQuotesRequest,
    pub instruments: Vec<Requested>,
}

fn stock(symbol: &str) -> Instrument {
    Instrument {
        symbol: symbol.to_owned(),
        sec_type: SecurityType::Stock as i32,
        ..Instrument::default()
    }
}

/// An instrument with one field no gateway accepts.
fn hostile(rng: &mut impl Rng) -> (Instrument, String) {
    let long = "X".repeat(HOSTILE_LEN);
    let base = stock(SYMBOLS.choose(rng).copied().unwrap_or("AAPL"));
    match rng.random_range(0..4) {
        0 => (
            Instrument {
                exchange: long,
                ..base
            },
            "long exchange".into(),
        ),
        1 => (
            Instrument {
                trading_class: long,
                ..base
            },
            "long trading_class".into(),
        ),
        2 => (
            Instrument {
                primary_exchange: long,
                ..base
            },
            "long primary_exchange".into(),
        ),
        _ => (stock(&long), "long symbol".into()),
    }
}

/// 1–6 listed stocks, sometimes an unknown symbol, sometimes a hostile instrument.
pub fn quotes(rng: &mut impl Rng, hostile_share: f64) -> QuotesPlan {
    let count = rng.random_range(1..=6);
    let mut instruments = Vec::new();
    let mut request = StreamQuotesRequest::default();
    for symbol in SYMBOLS.choose_multiple(rng, count) {
        request.instruments.push(stock(symbol));
        instruments.push(Requested {
            name: (*symbol).to_owned(),
            expect_data: true,
        });
    }
    if rng.random_bool(0.15) {
        let symbol = UNKNOWN.choose(rng).copied().unwrap_or("ZZZQ");
        request.instruments.push(stock(symbol));
        instruments.push(Requested {
            name: format!("unknown {symbol}"),
            expect_data: false,
        });
    }
    if rng.random_bool(hostile_share) {
        let (instrument, name) = hostile(rng);
        request.instruments.push(instrument);
        instruments.push(Requested {
            name,
            expect_data: false,
        });
    }
    QuotesPlan {
        request,
        instruments,
    }
}

/// A chain request, its label, and whether data is expected (not for hostile requests
/// or unknown underlyings).
#[derive(Debug, Clone)]
pub struct ChainPlan {
    pub request: StreamOptionChainRequest,
    pub label: String,
    pub expect_data: bool,
}

/// A chain window of an optionable underlying, sometimes with absurd fields.
pub fn chain(rng: &mut impl Rng, hostile_share: f64) -> ChainPlan {
    let symbol = UNDERLYINGS.choose(rng).copied().unwrap_or("SPY");
    let mut request = StreamOptionChainRequest {
        underlying: Some(stock(symbol)),
        expiration_count: 1,
        strike_count: rng.random_range(2..=6),
        rights: rng.random_range(0..=3),
        ..StreamOptionChainRequest::default()
    };
    let mut label = format!("chain {symbol}");
    let mut expect_data = false;
    if rng.random_bool(hostile_share) {
        match rng.random_range(0..4) {
            0 => {
                request.expirations = vec!["20300118".to_owned(); 1000];
                label.push_str(" +1000 duplicate expirations");
            }
            1 => {
                request.strike_count = u32::MAX;
                label.push_str(" +absurd strike count");
            }
            2 => {
                request.expiration_count = 100_000;
                label.push_str(" +absurd expiration count");
            }
            _ => {
                request.trading_class = "X".repeat(HOSTILE_LEN);
                label.push_str(" +long trading_class");
            }
        }
    } else if rng.random_bool(0.1) {
        let unknown = UNKNOWN.choose(rng).copied().unwrap_or("ZZZQ");
        request.underlying = Some(stock(unknown));
        label = format!("chain unknown {unknown}");
    } else {
        expect_data = true;
    }
    ChainPlan {
        request,
        label,
        expect_data,
    }
}
