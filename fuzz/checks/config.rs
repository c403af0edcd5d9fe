//! The configuration loader. The bytes up to the first NUL are a TOML file; the rest are
//! `NAME=value` lines of an environment. Parsing, the environment layer and validation
//! must answer Ok or an error, never panic, and a parsed duration must read back from
//! its formatted form.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use ibstream::config::{Config, ENV_VARS, duration};

/// A data directory that does not exist, so no configuration file is read from disk.
const NO_DATA_DIR: &str = "/nonexistent/ibstream-fuzz";

/// Loads the configuration `bytes` describe.
pub fn check(bytes: &[u8]) {
    let (toml, env) = match bytes.iter().position(|b| *b == 0) {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &[][..]),
    };
    if let Ok(text) = std::str::from_utf8(toml)
        && let Ok(config) = Config::from_toml(text)
    {
        let _ = config.validate();
        // Debug output redacts the database password; it must cope with any URL.
        let _ = format!("{config:?}");
    }
    let env = environment(env);
    let _ = Config::load_from(None, Some(Path::new(NO_DATA_DIR)), |name| {
        env.get(name).cloned()
    });
    for value in env.values() {
        durations(value);
    }
}

/// `NAME=value` lines; a name that is a number picks the variable of that index.
fn environment(bytes: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| {
            let name = match name.parse::<usize>() {
                Ok(i) => ENV_VARS[i % ENV_VARS.len()].name.to_owned(),
                Err(_) => name.to_owned(),
            };
            (name, value.to_owned())
        })
        .collect()
}

/// Largest duration whose milliseconds an `f64` holds exactly, so the formatted form
/// reads back to the same value.
const EXACT_MILLIS: u128 = 1 << 53;

fn durations(text: &str) {
    let Ok(d) = duration::parse(text) else {
        return;
    };
    if d.as_millis() < EXACT_MILLIS {
        let formatted = duration::format(d);
        let back = duration::parse(&formatted)
            .unwrap_or_else(|e| panic!("{formatted:?} (from {text:?}) does not parse: {e}"));
        assert_eq!(
            back,
            Duration::from_millis(d.as_millis() as u64),
            "{text:?} formats as {formatted:?}"
        );
    }
}
