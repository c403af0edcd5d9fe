//! Persistence with sea-orm over SQLite (default, a file in the data directory) or
//! PostgreSQL (`DATABASE_URL`): settings profiles, sealed credentials, API keys,
//! connection events, the contract cache and the master-key check value.
//!
//! [`Store`] is the only way in: its methods take and return the plain domain types of
//! this module, never sea-orm models, so callers do not depend on the schema.
//! [`unlock`] derives the master key for a store and proves it is the key the database
//! was sealed with, so a wrong master secret fails at start-up, not at first use.
//!
//! Modules: `api_keys`, `contracts` (the contract cache), `entity`, `error`, `events`,
//! `profile` (the domain type and its validation), `profiles`, `secrets`, `sqlite_file`
//! (database files created owner-only), `time_codec`, [`unlock`].

mod api_keys;
mod bars;
mod contracts;
mod entity;
mod error;
mod events;
mod profile;
mod profiles;
mod secrets;
mod sqlite_file;
mod time_codec;
mod unlock;

use std::path::{Path, PathBuf};

use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;

pub use api_keys::{ApiKeyRecord, NewApiKey};
pub use bars::StoredBar;
pub use error::StoreError;
pub use events::{ConnectionEvent, NewConnectionEvent};
pub use profile::{MarketDataType, Profile, ValidationError};
pub use secrets::KeyCheck;
pub use unlock::{unlock, unlock_from};

pub use crate::crypto::{Scope, SealedCredentials};
use crate::migrations::Migrator;

/// The file name of the SQLite database inside the data directory.
pub const SQLITE_FILE_NAME: &str = "ibstream.sqlite";

/// Handle to the database. Cloning is cheap: clones share one connection pool.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection URL may carry a password, so only the backend is shown.
        f.debug_struct("Store")
            .field("backend", &self.db.get_database_backend())
            .finish()
    }
}

impl Store {
    /// Connects to `url` (`sqlite://<path>?mode=rwc`, `sqlite::memory:`,
    /// `postgres://…`), applies pending migrations and seeds the default profile when
    /// the database has none.
    /// A SQLite file it creates is owner-only (mode 0600), as are its `-wal` and `-shm`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let mut options = ConnectOptions::new(url.to_owned());
        // Statements would otherwise be logged with their parameters, sealed blobs and
        // key hashes included.
        options.sqlx_logging(false);
        // An unreachable database fails start-up after 10 s of retries (long enough for
        // a database starting beside the server) rather than sqlx's 30 s default.
        options
            .connect_timeout(std::time::Duration::from_secs(10))
            .acquire_timeout(std::time::Duration::from_secs(10));
        // The server and `ibstream keys` may use one SQLite file at once: WAL lets
        // readers go on beside a writer, and a writer waits for the lock rather than
        // failing at once.
        options.map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(std::time::Duration::from_secs(10))
        });
        sqlite_file::create_private(url)?;
        let db = Database::connect(options.clone())
            .await
            .map_err(StoreError::Connect)?;
        let store = Store { db };
        if store.db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            Store::prepare_postgres(options).await?;
        } else {
            store.prepare_sqlite().await?;
        }
        Ok(store)
    }

    /// [`Store::prepare`] on SQLite, where two processes (`serve` and `keys`, say) may
    /// open a new file at once: each migration is one transaction, so the one that lost
    /// the race rolled back whole and finds the schema done when it asks again.
    async fn prepare_sqlite(&self) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            match self.prepare().await {
                Err(StoreError::Migrate(_)) if attempt < 5 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                }
                done => return done,
            }
        }
    }

    /// Brings the schema up to date and seeds the default profile.
    async fn prepare(&self) -> Result<(), StoreError> {
        Migrator::up(&self.db, None)
            .await
            .map_err(StoreError::Migrate)?;
        self.seed_default_profile().await
    }

    /// [`Store::prepare`] on PostgreSQL, one process at a time: the nodes of a cluster
    /// start together on one database, and concurrent `CREATE TABLE`s of a first start
    /// collide in PostgreSQL's catalog. An advisory lock is held by a connection, so the
    /// work runs on a pool of exactly one, which ends (lock released) with it.
    async fn prepare_postgres(mut options: ConnectOptions) -> Result<(), StoreError> {
        /// The lock's key: "ibstream" in ASCII.
        const MIGRATION_LOCK: i64 = 0x6962_7374_7265_616d;
        options.max_connections(1).min_connections(1);
        let one = Store {
            db: Database::connect(options)
                .await
                .map_err(StoreError::Connect)?,
        };
        let lock = |function: &str| format!("SELECT {function}({MIGRATION_LOCK})");
        use sea_orm::ConnectionTrait as _;
        one.db.execute_unprepared(&lock("pg_advisory_lock")).await?;
        let prepared = one.prepare().await;
        let _ = one.db.execute_unprepared(&lock("pg_advisory_unlock")).await;
        let _ = one.close().await;
        prepared
    }

    /// Opens (creating if needed) the SQLite database [`SQLITE_FILE_NAME`] in `dir`,
    /// creating the directory too (owner-only on Unix: it also holds the key file).
    pub async fn open_in_data_dir(dir: &Path) -> Result<Store, StoreError> {
        Store::open_configured(None, dir).await
    }

    /// Opens the database a configuration names (see [`configured_url`]), creating the
    /// data directory when the database is the SQLite file in it.
    pub async fn open_configured(
        database_url: Option<&str>,
        data_dir: &Path,
    ) -> Result<Store, StoreError> {
        if database_url.is_none() {
            crate::crypto::create_private_dir(data_dir).map_err(|source| StoreError::DataDir {
                path: data_dir.to_owned(),
                source,
            })?;
        }
        Store::open(&configured_url(database_url, data_dir)).await
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(self) -> Result<(), StoreError> {
        self.db.close().await.map_err(StoreError::Database)
    }

    /// `"sqlite"` or `"postgres"`, for logs and status.
    pub fn backend(&self) -> &'static str {
        match self.db.get_database_backend() {
            sea_orm::DatabaseBackend::Sqlite => "sqlite",
            sea_orm::DatabaseBackend::Postgres => "postgres",
            _ => "other",
        }
    }

    /// Checks that the database still answers (for health reporting).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(StoreError::Database)
    }

    pub(crate) fn db(&self) -> &DatabaseConnection {
        &self.db
    }
}

/// The sqlx URL of a SQLite file, created if missing. Characters that sqlx would read
/// as URL syntax are percent-encoded.
pub fn sqlite_url(path: &Path) -> String {
    let mut encoded = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => encoded.push_str("%25"),
            '?' => encoded.push_str("%3F"),
            '#' => encoded.push_str("%23"),
            other => encoded.push(other),
        }
    }
    format!("sqlite://{encoded}?mode=rwc")
}

/// The default location of the SQLite database for a data directory.
pub fn sqlite_path(dir: &Path) -> PathBuf {
    dir.join(SQLITE_FILE_NAME)
}

/// The database a configuration names: `database_url` when set, otherwise the SQLite
/// file in `data_dir`. The one place this rule is written.
pub fn configured_url(database_url: Option<&str>, data_dir: &Path) -> String {
    match database_url {
        Some(url) => url.to_owned(),
        None => sqlite_url(&sqlite_path(data_dir)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_memory_database_opens_seeded() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let active = store.active_profile().await.unwrap();
        assert_eq!(active.name, profile::DEFAULT_PROFILE_NAME);
        assert!(format!("{store:?}").contains("Sqlite"));
        assert_eq!(store.backend(), "sqlite");
        store.ping().await.unwrap();
    }

    #[tokio::test]
    async fn data_dir_with_url_characters_opens_and_reopens() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("my data #1 ?x");
        Store::open_in_data_dir(&dir)
            .await
            .unwrap()
            .close()
            .await
            .unwrap();
        assert!(dir.join(SQLITE_FILE_NAME).is_file());
        let store = Store::open_in_data_dir(&dir).await.unwrap();
        assert_eq!(store.list_profiles().await.unwrap().len(), 1);
    }

    #[test]
    fn a_configured_url_wins_over_the_data_dir() {
        assert_eq!(
            configured_url(None, Path::new("./data")),
            "sqlite://./data/ibstream.sqlite?mode=rwc"
        );
        assert_eq!(
            configured_url(Some("postgres://db/x"), Path::new("./data")),
            "postgres://db/x"
        );
    }

    #[test]
    fn sqlite_urls_escape_url_syntax() {
        assert_eq!(
            sqlite_url(Path::new("/tmp/a b/x?y#z%.sqlite")),
            "sqlite:///tmp/a b/x%3Fy%23z%25.sqlite?mode=rwc"
        );
    }
}
