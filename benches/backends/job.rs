//! What the bench asks of a client process and what the process answers: the job goes in
//! the environment variable [`CLIENT_ENV`] (TOML), commands go one a line on its stdin,
//! and it answers `ready` once set up, then one TOML [`Report`] closed by [`END`] per
//! command that asks for one.

use ibstream::proto::ibstream::v1 as pb;
use serde::{Deserialize, Serialize};

/// Set (to the job) in a client process; unset in the bench itself.
pub const CLIENT_ENV: &str = "IBSTREAM_BENCH_CLIENT";
/// Closes a report.
pub const END: &str = "end";
/// The process is set up and waits for commands.
pub const READY: &str = "ready";

/// One client process's work.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// The server, `http://host:port`.
    pub url: String,
    pub work: Work,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    /// `subscribers` streams, each on its own connection, of all `instruments`; ready
    /// once every stream has had a quote of each, or after `ready_within` seconds
    /// (saying how many were). `start` and `stop` bound a window (`stop` reports it);
    /// `pause N` and `resume N` stop and restart reading stream N; `ended` waits for
    /// every stream to end and reports how.
    Streams {
        subscribers: usize,
        instruments: Vec<Inst>,
        ready_within: f64,
    },
    /// `subscribers` connections opened first (then ready); on `go` each opens its
    /// stream at the same moment, and the report tells when the last of them had a
    /// quote of every instrument.
    ColdStart {
        subscribers: usize,
        instruments: Vec<Inst>,
    },
    /// One stream holds the option-chain window (ready once its snapshot is complete);
    /// on `go` the same window is opened `repeat` times, one after the other, each
    /// timed until its snapshot is complete.
    Chain { window: ChainWindow, repeat: usize },
}

/// A fixed window of an option chain: the listed options of these expirations within
/// the strike range, calls and puts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChainWindow {
    pub underlying: String,
    pub expirations: Vec<String>,
    pub min_strike: f64,
    pub max_strike: f64,
}

impl ChainWindow {
    pub fn to_pb(&self) -> pb::StreamOptionChainRequest {
        pb::StreamOptionChainRequest {
            underlying: Some(Inst::stock(&self.underlying).to_pb()),
            expirations: self.expirations.clone(),
            strike_range: Some(pb::StrikeRange {
                min: self.min_strike,
                max: self.max_strike,
            }),
            rights: pb::Rights::Both as i32,
            ..Default::default()
        }
    }
}

/// An instrument as the client names it: a stock by symbol, or any contract by conId.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inst {
    pub symbol: String,
    pub con_id: i64,
    pub option: bool,
}

impl Inst {
    pub fn stock(symbol: &str) -> Inst {
        Inst {
            symbol: symbol.to_owned(),
            con_id: 0,
            option: false,
        }
    }

    pub fn option(con_id: i64) -> Inst {
        Inst {
            symbol: String::new(),
            con_id,
            option: true,
        }
    }

    pub fn to_pb(&self) -> pb::Instrument {
        let sec_type = if self.option {
            pb::SecurityType::Option
        } else {
            pb::SecurityType::Stock
        };
        pb::Instrument {
            symbol: self.symbol.clone(),
            con_id: self.con_id,
            sec_type: sec_type as i32,
            ..Default::default()
        }
    }
}

/// What a client process saw; each command fills what concerns it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// Quotes received in the window.
    pub quotes: u64,
    /// Length of the window (or of the whole timed operation), seconds.
    pub seconds: f64,
    /// Server receive (or send) → client receive, microseconds, sorted percentiles.
    pub latency: Percentiles,
    /// Mean encoded length of the quote messages received.
    pub message_bytes: f64,
    /// Streams that were ready (had a quote of every instrument).
    pub ready: usize,
    /// Streams that ended, and how many of those ended with `UNAVAILABLE`.
    pub ended: usize,
    pub unavailable: usize,
    /// Streams that ended with any other error, or failed to open.
    pub failed: usize,
    /// Per operation (cold start per stream, chain snapshot per request), milliseconds.
    pub times_ms: Percentiles,
    /// Options in the chain snapshot (the last one).
    pub options: usize,
}

/// Percentiles of a set of samples.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Percentiles {
    pub samples: usize,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    pub fn of(mut samples: Vec<f64>) -> Percentiles {
        samples.sort_by(f64::total_cmp);
        let at = |p: f64| {
            if samples.is_empty() {
                return 0.0;
            }
            samples[((samples.len() - 1) as f64 * p).round() as usize]
        };
        Percentiles {
            samples: samples.len(),
            p50: at(0.5),
            p99: at(0.99),
            p999: at(0.999),
            max: samples.last().copied().unwrap_or(0.0),
        }
    }
}
