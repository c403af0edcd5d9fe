//! The environment layer: one `IBSTREAM_*` variable per setting (plus `DATABASE_URL`).

use std::path::PathBuf;
use std::str::FromStr;

use super::{Config, ConfigError, duration};

/// The data directory variable; also used to find the default configuration file.
pub(super) const DATA_DIR_VAR: &str = "IBSTREAM_DATA_DIR";

type Setter = fn(&mut Config, &str) -> Result<(), String>;

/// One environment variable of the environment layer.
pub struct EnvVar {
    /// The variable's name.
    pub name: &'static str,
    /// The configuration field it sets (dotted path, as in the TOML file).
    pub field: &'static str,
    set: Setter,
}

const fn var(name: &'static str, field: &'static str, set: Setter) -> EnvVar {
    EnvVar { name, field, set }
}

/// Every variable the environment layer reads. When two set the same field, the later
/// one wins (`IBSTREAM_DATABASE_URL` over `DATABASE_URL`).
pub const ENV_VARS: &[EnvVar] = &[
    var("IBSTREAM_LISTEN", "server.listen", |c, v| {
        parse_into(&mut c.server.listen, v)
    }),
    var("IBSTREAM_TLS_CERT", "server.tls_cert", |c, v| {
        some_path(&mut c.server.tls_cert, v)
    }),
    var("IBSTREAM_TLS_KEY", "server.tls_key", |c, v| {
        some_path(&mut c.server.tls_key, v)
    }),
    var(
        "IBSTREAM_INSECURE_NO_AUTH",
        "server.insecure_no_auth",
        |c, v| parse_bool(v).map(|b| c.server.insecure_no_auth = b),
    ),
    var(
        "IBSTREAM_MAX_REQUEST_BYTES",
        "server.max_request_bytes",
        |c, v| parse_into(&mut c.server.max_request_bytes, v),
    ),
    var(
        "IBSTREAM_MAX_INSTRUMENTS_PER_REQUEST",
        "server.max_instruments_per_request",
        |c, v| parse_into(&mut c.server.max_instruments_per_request, v),
    ),
    var(
        "IBSTREAM_MAX_STREAMS_PER_KEY",
        "server.max_streams_per_key",
        |c, v| parse_into(&mut c.server.max_streams_per_key, v),
    ),
    var("IBSTREAM_UNARY_TIMEOUT", "server.unary_timeout", |c, v| {
        duration::parse(v).map(|d| c.server.unary_timeout = d)
    }),
    var(
        "IBSTREAM_KEEPALIVE_INTERVAL",
        "server.keepalive_interval",
        |c, v| duration::parse(v).map(|d| c.server.keepalive_interval = d),
    ),
    var(
        "IBSTREAM_KEEPALIVE_TIMEOUT",
        "server.keepalive_timeout",
        |c, v| duration::parse(v).map(|d| c.server.keepalive_timeout = d),
    ),
    var("IBSTREAM_METRICS_LISTEN", "metrics.listen", |c, v| {
        parse_into(&mut c.metrics.listen, v)
    }),
    var(DATA_DIR_VAR, "data_dir", |c, v| {
        c.data_dir = PathBuf::from(v);
        Ok(())
    }),
    var("DATABASE_URL", "database_url", |c, v| {
        c.database_url = Some(v.to_owned());
        Ok(())
    }),
    var("IBSTREAM_DATABASE_URL", "database_url", |c, v| {
        c.database_url = Some(v.to_owned());
        Ok(())
    }),
    var("IBSTREAM_MASTER_KEY_FILE", "master_key_file", |c, v| {
        some_path(&mut c.master_key_file, v)
    }),
    var("IBSTREAM_LOG_FORMAT", "log.format", |c, v| {
        parse_into(&mut c.log.format, v)
    }),
    var("IBSTREAM_LOG", "log.filter", |c, v| {
        c.log.filter = v.to_owned();
        Ok(())
    }),
    var("IBSTREAM_LINGER", "market_data.linger", |c, v| {
        duration::parse(v).map(|d| c.market_data.linger = d)
    }),
    var(
        "IBSTREAM_RISK_FREE_RATE",
        "market_data.risk_free_rate",
        |c, v| parse_into(&mut c.market_data.risk_free_rate, v),
    ),
    var(
        "IBSTREAM_DIVIDEND_YIELD",
        "market_data.dividend_yield",
        |c, v| parse_into(&mut c.market_data.dividend_yield, v),
    ),
    var(
        "IBSTREAM_REQUEST_TIMEOUT",
        "market_data.request_timeout",
        |c, v| duration::parse(v).map(|d| c.market_data.request_timeout = d),
    ),
    var("IBSTREAM_CLUSTER", "cluster.url", |c, v| {
        c.cluster.url = Some(v.to_owned());
        Ok(())
    }),
    var("IBSTREAM_CLUSTER_NAME", "cluster.name", |c, v| {
        c.cluster.name = v.to_owned();
        Ok(())
    }),
    var("IBSTREAM_NODE", "cluster.node", |c, v| {
        c.cluster.node = Some(v.to_owned());
        Ok(())
    }),
    var("IBSTREAM_LEASE_TTL", "cluster.lease_ttl", |c, v| {
        duration::parse(v).map(|d| c.cluster.lease_ttl = d)
    }),
];

/// Applies every set, non-empty variable to `config`.
pub(super) fn apply(
    config: &mut Config,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for var in ENV_VARS {
        let Some(value) = (env)(var.name).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        (var.set)(config, value.trim()).map_err(|reason| ConfigError::Env {
            var: var.name,
            reason,
        })?;
    }
    Ok(())
}

/// Parses into a plain or `Option` slot alike.
fn parse_into<T: ParseSlot>(slot: &mut T, value: &str) -> Result<(), String> {
    *slot = T::parse_slot(value)?;
    Ok(())
}

trait ParseSlot: Sized {
    fn parse_slot(value: &str) -> Result<Self, String>;
}

macro_rules! parse_slot_via_from_str {
    ($($t:ty),*) => {$(
        impl ParseSlot for $t {
            fn parse_slot(value: &str) -> Result<Self, String> {
                <$t as FromStr>::from_str(value).map_err(|err| format!("{value:?}: {err}"))
            }
        }
    )*};
}
parse_slot_via_from_str!(std::net::SocketAddr, usize, u32, f64, super::LogFormat);

impl<T: ParseSlot> ParseSlot for Option<T> {
    fn parse_slot(value: &str) -> Result<Self, String> {
        T::parse_slot(value).map(Some)
    }
}

fn some_path(slot: &mut Option<PathBuf>, value: &str) -> Result<(), String> {
    *slot = Some(PathBuf::from(value));
    Ok(())
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "{value:?} is not a boolean (true/false, 1/0, yes/no)"
        )),
    }
}
