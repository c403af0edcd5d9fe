//! Secrets at rest and API keys. Free of the store: the store keeps what this module
//! seals and hashes ([`crate::store::unlock`] proves the master key against it).
//!
//! - [`MasterKey`]: a 256-bit key derived with argon2id from the master secret
//!   (`IBSTREAM_MASTER_KEY`, or a 0600 key file created on first run) and a random salt
//!   kept in the database; it seals data with AES-256-GCM.
//! - [`SealedCredentials`]: the IB username and password, sealed.
//! - API keys ([`generate_api_key`], [`verify_api_key`], [`Scope`]): tokens shown once,
//!   stored as argon2id hashes.

mod api_key;
mod credentials;
mod error;
mod master_key;
mod source;

pub use api_key::{
    API_KEY_PREFIX, GeneratedKey, Scope, UnknownScope, generate_api_key, parse_api_key_id,
    verify_api_key,
};
pub use credentials::{Credentials, SealedCredentials};
pub use error::CryptoError;
pub use master_key::{KdfParams, MasterKey};
pub use source::{
    MASTER_KEY_ENV, MASTER_KEY_FILE_NAME, MasterKeySource, MasterSecret, create_private_dir,
};
