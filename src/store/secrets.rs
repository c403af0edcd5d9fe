//! Sealed credentials and the master-key check value. The store only ever sees sealed
//! bytes; sealing and opening are [`crate::crypto`]'s business.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait};

use super::entity::{credentials, key_check};
use super::profiles::find_by_name;
use super::time_codec::now_millis;
use super::{SealedCredentials, Store, StoreError};

/// The row id of the single `key_check` row.
const KEY_CHECK_ID: i32 = 1;

/// What is needed to re-derive the master key of this database and prove it right: the
/// argon2id salt and parameters, and a known value sealed with the derived key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCheck {
    /// Random salt for argon2id, created with the database's first master key.
    pub salt: Vec<u8>,
    /// argon2id memory cost in KiB.
    pub memory_kib: u32,
    /// argon2id iterations.
    pub iterations: u32,
    /// argon2id lanes.
    pub parallelism: u32,
    /// A fixed plaintext sealed with the derived key.
    pub sealed: Vec<u8>,
}

impl Store {
    /// Stores the sealed credentials of profile `profile`, replacing any previous ones.
    pub async fn set_credentials(
        &self,
        profile: &str,
        sealed: &SealedCredentials,
    ) -> Result<(), StoreError> {
        let owner = find_by_name(self.db(), profile).await?;
        let model = credentials::ActiveModel {
            profile_id: Set(owner.id),
            username: Set(sealed.username.clone()),
            password: Set(sealed.password.clone()),
            updated_at: Set(now_millis()),
        };
        credentials::Entity::insert(model)
            .on_conflict(
                OnConflict::column(credentials::Column::ProfileId)
                    .update_columns([
                        credentials::Column::Username,
                        credentials::Column::Password,
                        credentials::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(self.db())
            .await?;
        Ok(())
    }

    /// The sealed credentials of profile `profile`, if any were set.
    pub async fn credentials(
        &self,
        profile: &str,
    ) -> Result<Option<SealedCredentials>, StoreError> {
        let owner = find_by_name(self.db(), profile).await?;
        Ok(credentials::Entity::find_by_id(owner.id)
            .one(self.db())
            .await?
            .map(|row| SealedCredentials {
                username: row.username,
                password: row.password,
            }))
    }

    /// Removes the credentials of profile `profile` (nothing happens if none were set).
    pub async fn clear_credentials(&self, profile: &str) -> Result<(), StoreError> {
        let owner = find_by_name(self.db(), profile).await?;
        credentials::Entity::delete_by_id(owner.id)
            .exec(self.db())
            .await?;
        Ok(())
    }

    /// The master-key check of this database, if a master key was ever set.
    pub async fn key_check(&self) -> Result<Option<KeyCheck>, StoreError> {
        key_check::Entity::find_by_id(KEY_CHECK_ID)
            .one(self.db())
            .await?
            .map(|row| {
                let unsigned = |what: &'static str, v: i32| {
                    u32::try_from(v)
                        .map_err(|_| StoreError::corrupt(what, format!("{v} is negative")))
                };
                Ok(KeyCheck {
                    memory_kib: unsigned("key check memory cost", row.kdf_memory_kib)?,
                    iterations: unsigned("key check iterations", row.kdf_iterations)?,
                    parallelism: unsigned("key check parallelism", row.kdf_parallelism)?,
                    salt: row.salt,
                    sealed: row.check_value,
                })
            })
            .transpose()
    }

    /// Records the master-key check unless one exists. Returns `false` when another
    /// one was already there (a concurrent first start): the caller must then verify
    /// against [`Store::key_check`] instead of assuming its own.
    pub async fn set_key_check(&self, check: &KeyCheck) -> Result<bool, StoreError> {
        let as_i32 = |what: &'static str, v: u32| {
            i32::try_from(v).map_err(|_| StoreError::corrupt(what, format!("{v} is too large")))
        };
        let model = key_check::ActiveModel {
            id: Set(KEY_CHECK_ID),
            salt: Set(check.salt.clone()),
            kdf_memory_kib: Set(as_i32("key check memory cost", check.memory_kib)?),
            kdf_iterations: Set(as_i32("key check iterations", check.iterations)?),
            kdf_parallelism: Set(as_i32("key check parallelism", check.parallelism)?),
            check_value: Set(check.sealed.clone()),
            created_at: Set(now_millis()),
        };
        let inserted = key_check::Entity::insert(model)
            .on_conflict_do_nothing()
            .exec_without_returning(self.db())
            .await?;
        Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0))
    }
}
