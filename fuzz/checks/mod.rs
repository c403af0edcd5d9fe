//! The checks behind the fuzz targets, shared by `cargo fuzz` (fuzz/fuzz_targets) and the
//! corpus replay of the normal test suite (tests/fuzz_corpus.rs). Each `check` takes the
//! raw input bytes, drives ibstream's real code with them and panics on a broken
//! guarantee; returning is a pass.
//!
//! - [`sim_frames`]: the bytes a client sends to the simulated gateway.
//! - [`requests`]: public market-data and settings requests, validated and converted to
//!   the contract sent to IB.
//! - [`gateway_data`]: ticks, details, chains and symbol matches from `ibapi`, folded into
//!   quotes and Greeks and converted to proto.
//! - [`config`]: the TOML layer, the environment layer and the duration syntax.
//! - [`input`]: typed values read from the raw bytes.

pub mod config;
pub mod gateway_data;
pub mod input;
pub mod requests;
pub mod sim_frames;

/// A target's check: returns on a pass, panics on a broken guarantee.
pub type Check = fn(&[u8]);

/// The targets by name, which is also their folder in `fuzz/corpus` and
/// `fuzz/regressions`.
pub const TARGETS: [(&str, Check); 4] = [
    ("sim_frames", sim_frames::check),
    ("requests", requests::check),
    ("gateway_data", gateway_data::check),
    ("config", config::check),
];
