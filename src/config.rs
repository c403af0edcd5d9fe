//! Layered configuration: defaults < TOML file < `IBSTREAM_*` environment < flags.
//!
//! The file is `--config <path>` when given, else `<data_dir>/ibstream.toml` if it
//! exists. Durations are humane strings (`"5s"`, `"250ms"`). The master secret is not
//! configuration: [`crate::crypto::MasterKeySource::resolve`] reads
//! `IBSTREAM_MASTER_KEY` itself, so it never sits in a `Config`.

mod args;
pub mod duration;
mod env;
mod validate;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

pub use args::ConfigArgs;
pub use env::{ENV_VARS, EnvVar};

/// The configuration file's name inside the data directory.
pub const CONFIG_FILE_NAME: &str = "ibstream.toml";
/// The data directory when neither file, environment nor flag names one.
pub const DEFAULT_DATA_DIR: &str = "./data";

/// Everything the server and the CLI read at start-up.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The gRPC server.
    pub server: ServerConfig,
    /// The Prometheus metrics endpoint.
    pub metrics: MetricsConfig,
    /// Where the SQLite database, the master key file and the default config live.
    pub data_dir: PathBuf,
    /// A database URL (`postgres://…`, `sqlite://…`) instead of the SQLite file in the
    /// data directory. Also read from `DATABASE_URL`.
    pub database_url: Option<String>,
    /// The master key file, instead of `<data_dir>/master.key`.
    pub master_key_file: Option<PathBuf>,
    /// Logging.
    pub log: LogConfig,
    /// Market-data defaults.
    pub market_data: MarketDataConfig,
    /// The web console.
    pub web: WebConfig,
    /// Running as one node of a cluster over NATS.
    pub cluster: ClusterConfig,
}

/// The gRPC server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// PEM certificate chain; TLS is on when this and `tls_key` are set.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
    /// Serve without API keys on a non-loopback address (otherwise refused).
    pub insecure_no_auth: bool,
    /// Largest request message accepted, in bytes.
    pub max_request_bytes: usize,
    /// Most instruments one request may name.
    pub max_instruments_per_request: u32,
    /// Most concurrent streams per API key.
    pub max_streams_per_key: u32,
    /// Deadline for unary calls.
    #[serde(deserialize_with = "duration::deserialize")]
    pub unary_timeout: Duration,
    /// HTTP/2 keepalive ping interval.
    #[serde(deserialize_with = "duration::deserialize")]
    pub keepalive_interval: Duration,
    /// How long a keepalive ping may go unanswered before the connection is closed.
    #[serde(deserialize_with = "duration::deserialize")]
    pub keepalive_timeout: Duration,
}

/// The Prometheus metrics endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Listen address; no endpoint when absent.
    pub listen: Option<SocketAddr>,
}

/// The web console, served on the gRPC port (gRPC-web over HTTP/1 and its assets).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Origins whose pages may call the API from a browser (`https://dash.example.com`).
    /// The console's own origin may when reached by IP address or as `localhost`; by a
    /// host name, it has to be listed too. Every other origin is refused.
    pub allowed_origins: Vec<String>,
}

/// A cluster over NATS (`ibstream serve --cluster URL`): one node leads and holds the IB
/// session, every node serves the whole API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// The NATS server (`nats://host:4222`); no cluster when absent.
    pub url: Option<String>,
    /// The cluster's name: its NATS subjects and lease bucket. Clusters sharing a NATS
    /// server need different names.
    pub name: String,
    /// This node's name, unique in the cluster [default: host name and process id].
    pub node: Option<String>,
    /// How long leadership lasts unrenewed: a dead leader is replaced within about
    /// 1.25 × this.
    #[serde(deserialize_with = "duration::deserialize")]
    pub lease_ttl: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            url: None,
            name: "ibstream".to_owned(),
            node: None,
            lease_ttl: Duration::from_secs(3),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!(
                "{s:?} is not a log format: expected \"text\" or \"json\""
            )),
        }
    }
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// `tracing` filter directives, e.g. `info,ibstream=debug`.
    pub filter: String,
}

/// Market-data defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MarketDataConfig {
    /// How long an IB subscription outlives its last stream.
    #[serde(deserialize_with = "duration::deserialize")]
    pub linger: Duration,
    /// Annual risk-free rate for computed Greeks.
    pub risk_free_rate: f64,
    /// Annual dividend yield for computed Greeks.
    pub dividend_yield: f64,
    /// Deadline for one-off requests to the gateway (contract details, snapshots).
    #[serde(deserialize_with = "duration::deserialize")]
    pub request_timeout: Duration,
    /// Multiplies the windows of IB's historical pacing rules (15 s, 2 s, 10 min); 1 is
    /// IB's rules. Only a simulator with rules shrunk alike takes less.
    pub historical_pacing_scale: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            metrics: MetricsConfig::default(),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            database_url: None,
            master_key_file: None,
            log: LogConfig::default(),
            market_data: MarketDataConfig::default(),
            web: WebConfig::default(),
            cluster: ClusterConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 50051)),
            tls_cert: None,
            tls_key: None,
            insecure_no_auth: false,
            max_request_bytes: 4 * 1024 * 1024,
            max_instruments_per_request: 500,
            max_streams_per_key: 100,
            unary_timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            filter: "info".to_owned(),
        }
    }
}

impl Default for MarketDataConfig {
    fn default() -> Self {
        MarketDataConfig {
            linger: Duration::from_secs(5),
            risk_free_rate: 0.045,
            dividend_yield: 0.0,
            request_timeout: Duration::from_secs(10),
            historical_pacing_scale: 1.0,
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("invalid configuration file {}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and what (toml's message names the line and key).
        source: Box<toml::de::Error>,
    },
    /// An environment variable has an unusable value.
    #[error("invalid environment variable {var}: {reason}")]
    Env {
        /// The variable.
        var: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A value is out of bounds.
    #[error("invalid configuration {field}: {reason}")]
    Invalid {
        /// The dotted field path, e.g. `server.max_request_bytes`.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Values from command-line flags; `None` leaves the lower layers' value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigOverrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--database-url`.
    pub database_url: Option<String>,
    /// `--master-key-file`.
    pub master_key_file: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--tls-cert`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`.
    pub tls_key: Option<PathBuf>,
    /// `--insecure-no-auth`.
    pub insecure_no_auth: Option<bool>,
    /// `--metrics-listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
    /// `--log-filter`.
    pub log_filter: Option<String>,
    /// `--allow-origin` (repeated): replaces `web.allowed_origins`.
    pub allowed_origins: Option<Vec<String>>,
    /// `--cluster`.
    pub cluster_url: Option<String>,
    /// `--node`.
    pub cluster_node: Option<String>,
}

impl Config {
    /// Defaults, then the TOML `file` (or `<data_dir>/ibstream.toml` if present, the data
    /// directory coming from `IBSTREAM_DATA_DIR` or the default), then the environment
    /// as seen through `env`. The result is validated.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Config::load_from(file, None, env)
    }

    /// Like [`Config::load`], with the data directory given by a flag taking part in
    /// finding the default file.
    pub fn load_from(
        file: Option<&Path>,
        data_dir_flag: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => Config::from_file(path)?,
            None => {
                let dir = data_dir_flag
                    .map(Path::to_path_buf)
                    .or_else(|| {
                        env(env::DATA_DIR_VAR)
                            .filter(|v| !v.is_empty())
                            .map(PathBuf::from)
                    })
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
                let default_file = dir.join(CONFIG_FILE_NAME);
                if default_file.is_file() {
                    Config::from_file(&default_file)?
                } else {
                    Config::default()
                }
            }
        };
        env::apply(&mut config, &env)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a TOML file onto the defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Parses TOML text onto the defaults (absent keys keep their default).
    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// Applies flag values on top, then validates again.
    pub fn apply(&mut self, flags: ConfigOverrides) -> Result<(), ConfigError> {
        let ConfigOverrides {
            data_dir,
            database_url,
            master_key_file,
            listen,
            tls_cert,
            tls_key,
            insecure_no_auth,
            metrics_listen,
            log_format,
            log_filter,
            allowed_origins,
            cluster_url,
            cluster_node,
        } = flags;
        set(&mut self.data_dir, data_dir);
        set_some(&mut self.database_url, database_url);
        set_some(&mut self.master_key_file, master_key_file);
        set(&mut self.server.listen, listen);
        set_some(&mut self.server.tls_cert, tls_cert);
        set_some(&mut self.server.tls_key, tls_key);
        set(&mut self.server.insecure_no_auth, insecure_no_auth);
        set_some(&mut self.metrics.listen, metrics_listen);
        set(&mut self.log.format, log_format);
        set(&mut self.log.filter, log_filter);
        set(&mut self.web.allowed_origins, allowed_origins);
        set_some(&mut self.cluster.url, cluster_url);
        set_some(&mut self.cluster.node, cluster_node);
        self.validate()
    }

    /// The master key file: `master_key_file`, or `master.key` in the data directory.
    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(crate::crypto::MASTER_KEY_FILE_NAME))
    }

    /// Whether TLS is configured.
    pub fn tls_enabled(&self) -> bool {
        self.server.tls_cert.is_some() && self.server.tls_key.is_some()
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

fn set_some<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("server", &self.server)
            .field("metrics", &self.metrics)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url_password),
            )
            .field("master_key_file", &self.master_key_file)
            .field("log", &self.log)
            .field("market_data", &self.market_data)
            .field("web", &self.web)
            .field("cluster", &self.cluster)
            .finish()
    }
}

/// `url` with any password in its authority replaced, for logs and Debug output.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests;
