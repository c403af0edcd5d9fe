#![no_main]
//! Fuzz target: see `checks::gateway_data`.

// Each target uses one of the shared checks.
#[allow(dead_code)]
#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::gateway_data::check(data));
