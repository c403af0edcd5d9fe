//! The store's error type.

use std::path::PathBuf;

use sea_orm::DbErr;

use super::profile::ValidationError;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The named row does not exist.
    #[error("{what} {name:?} not found")]
    NotFound {
        /// The kind of thing looked up, e.g. `"profile"`.
        what: &'static str,
        /// The name or id it was looked up by.
        name: String,
    },
    /// The operation would break an invariant (e.g. deleting the active profile).
    #[error("{0}")]
    Conflict(String),
    /// A value failed validation; the error names the field.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The database could not be reached.
    #[error("cannot connect to the database")]
    Connect(#[source] DbErr),
    /// The schema migrations failed.
    #[error("database migration failed")]
    Migrate(#[source] DbErr),
    /// A query failed.
    #[error("database error")]
    Database(#[source] DbErr),
    /// A stored value cannot be read back (out of range, unknown enum value).
    #[error("stored {what} is invalid: {detail}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A background task serving the query (e.g. hash verification) failed.
    #[error("store task failed: {0}")]
    Task(String),
    /// The SQLite database file could not be created.
    #[error("cannot create database file {}", path.display())]
    DatabaseFile {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The data directory could not be created.
    #[error("cannot create data directory {}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        StoreError::Database(err)
    }
}

impl StoreError {
    pub(crate) fn not_found(what: &'static str, name: impl Into<String>) -> Self {
        StoreError::NotFound {
            what,
            name: name.into(),
        }
    }

    pub(crate) fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> Self {
        StoreError::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }
}
