//! The flags every subcommand that opens the store shares.

use std::path::PathBuf;

use super::{Config, ConfigError, ConfigOverrides};

/// `--config`, `--data-dir`, `--database-url`: where the configuration and the
/// database are. Flatten into a subcommand's arguments with `#[command(flatten)]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// Configuration file (default: <data dir>/ibstream.toml if it exists).
    #[arg(long, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory for the SQLite database and the master key file
    /// [default: $IBSTREAM_DATA_DIR or ./data].
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL instead of the SQLite file (postgres://…) [default: $DATABASE_URL].
    #[arg(long, value_name = "URL", global = true)]
    pub database_url: Option<String>,
}

impl ConfigArgs {
    /// Loads all layers from the process environment, with these flags and `more`
    /// (other flags of the subcommand) on top.
    pub fn load(&self, more: ConfigOverrides) -> Result<Config, ConfigError> {
        self.load_with_env(more, |name| std::env::var(name).ok())
    }

    /// [`ConfigArgs::load`] with an injected environment.
    pub fn load_with_env(
        &self,
        more: ConfigOverrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut config = Config::load_from(self.config.as_deref(), self.data_dir.as_deref(), env)?;
        config.apply(ConfigOverrides {
            data_dir: self.data_dir.clone().or(more.data_dir.clone()),
            database_url: self.database_url.clone().or(more.database_url.clone()),
            ..more
        })?;
        Ok(config)
    }
}
