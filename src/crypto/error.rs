//! The crypto error type. No variant ever carries secret material.

use std::path::PathBuf;

/// Why a crypto operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Authentication of sealed data failed: another key sealed it, or it was altered.
    #[error(
        "cannot open sealed data: it was sealed with a different master key or has been altered"
    )]
    WrongKey,
    /// The master secret does not derive the key recorded in the database.
    #[error(
        "master key does not match the one this database was sealed with \
         (check IBSTREAM_MASTER_KEY or the master key file)"
    )]
    MasterKeyMismatch,
    /// Sealed data is too short or otherwise not in the sealed format.
    #[error("sealed data is malformed: {0}")]
    Malformed(&'static str),
    /// Sealed data was written by a format version this build does not know.
    #[error("sealed data has unsupported format version {0}")]
    UnsupportedVersion(u8),
    /// The master secret is empty.
    #[error("master secret is empty")]
    EmptySecret,
    /// Key derivation failed (bad parameters or salt).
    #[error("key derivation failed: {0}")]
    Kdf(String),
    /// Encryption failed.
    #[error("encryption failed")]
    Seal,
    /// The master key file could not be read or created.
    #[error("cannot read or create master key file {}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The master key file is readable or writable by others.
    #[error(
        "master key file {} has permissions {mode:03o}; it must be private to its owner \
         (chmod 600)",
        path.display()
    )]
    KeyFilePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The master key file exists but holds too little key material.
    #[error("master key file {} is too short to be a key", path.display())]
    KeyFileTooShort {
        /// The file.
        path: PathBuf,
    },
    /// Sealed credentials did not decode as UTF-8 text.
    #[error("sealed {0} is not valid text")]
    NotText(&'static str),
    /// The database failed while the key check was read or written.
    #[error("cannot read or write the master-key check: {0}")]
    KeyCheck(#[source] Box<dyn std::error::Error + Send + Sync>),
}
