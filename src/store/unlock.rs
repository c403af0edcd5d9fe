//! Start-up check of the master key against the database.

use argon2::password_hash::rand_core::{OsRng, RngCore};

use super::{KeyCheck, Store, StoreError};
use crate::crypto::{CryptoError, KdfParams, MasterKey, MasterKeySource, MasterSecret};

/// The plaintext sealed in the key check. Its content does not matter; being able to
/// open it proves the key.
const CHECK_PLAINTEXT: &[u8] = b"ibstream master key check v1";
const SALT_LEN: usize = 16;

/// Derives the master key of `store` from `secret` and proves it right.
///
/// On a database's first unlock a random salt is chosen and a check value sealed with
/// the new key is stored; later unlocks re-derive with that salt and must open the
/// check value, otherwise [`CryptoError::MasterKeyMismatch`]. argon2id runs on a
/// blocking thread.
pub async fn unlock(store: &Store, secret: &MasterSecret) -> Result<MasterKey, CryptoError> {
    if let Some(check) = store.key_check().await.map_err(key_check_failed)? {
        return verify(secret, check).await;
    }
    let mut salt = vec![0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    let params = KdfParams::default();
    let key = derive(secret, salt.clone(), params).await?;
    let check = KeyCheck {
        salt,
        memory_kib: params.memory_kib,
        iterations: params.iterations,
        parallelism: params.parallelism,
        sealed: key.seal(CHECK_PLAINTEXT)?,
    };
    if store
        .set_key_check(&check)
        .await
        .map_err(key_check_failed)?
    {
        return Ok(key);
    }
    // Another process initialised the database between our read and write: its salt
    // wins, and our secret must match its key.
    match store.key_check().await.map_err(key_check_failed)? {
        Some(theirs) => verify(secret, theirs).await,
        None => Err(CryptoError::MasterKeyMismatch),
    }
}

fn key_check_failed(err: StoreError) -> CryptoError {
    CryptoError::KeyCheck(Box::new(err))
}

/// Loads the secret from `source` and [`unlock`]s `store` with it.
pub async fn unlock_from(
    store: &Store,
    source: &MasterKeySource,
) -> Result<MasterKey, CryptoError> {
    let secret = MasterSecret::load(source)?;
    unlock(store, &secret).await
}

/// Stored argon2 costs above these are not ibstream's: refuse them rather than let a
/// damaged row make start-up take minutes or gigabytes.
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
const MAX_ITERATIONS: u32 = 64;
const MAX_PARALLELISM: u32 = 16;

async fn verify(secret: &MasterSecret, check: KeyCheck) -> Result<MasterKey, CryptoError> {
    let params = KdfParams {
        memory_kib: check.memory_kib,
        iterations: check.iterations,
        parallelism: check.parallelism,
    };
    if params.memory_kib > MAX_MEMORY_KIB
        || params.iterations > MAX_ITERATIONS
        || params.parallelism > MAX_PARALLELISM
    {
        return Err(CryptoError::Kdf(format!(
            "stored key check parameters are out of range: {params:?}"
        )));
    }
    let key = derive(secret, check.salt, params).await?;
    match key.open(&check.sealed) {
        Ok(plain) if plain.as_slice() == CHECK_PLAINTEXT => Ok(key),
        Ok(_) | Err(CryptoError::WrongKey) => Err(CryptoError::MasterKeyMismatch),
        Err(other) => Err(other),
    }
}

async fn derive(
    secret: &MasterSecret,
    salt: Vec<u8>,
    params: KdfParams,
) -> Result<MasterKey, CryptoError> {
    let secret = zeroize::Zeroizing::new(secret.expose().to_vec());
    tokio::task::spawn_blocking(move || MasterKey::derive_with(&secret, &salt, params))
        .await
        .map_err(|err| CryptoError::Kdf(err.to_string()))?
}
