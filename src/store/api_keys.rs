//! API keys: the store keeps the public id, label, scope and argon2id hash; the token
//! itself is shown once at creation and never stored.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, SqlErr,
};
use time::OffsetDateTime;

use super::entity::api_key as row;
use super::time_codec::{from_millis, now_millis};
use super::{Scope, Store, StoreError};
use crate::crypto::{self, GeneratedKey};

/// An API key to insert: the output of [`crypto::generate_api_key`] minus the token.
#[derive(Clone)]
pub struct NewApiKey {
    /// Public id (the prefix of the token).
    pub id: String,
    /// Optional label chosen by whoever created the key.
    pub name: Option<String>,
    /// What the key may do.
    pub scope: Scope,
    /// argon2id PHC string of the full token.
    pub hash: String,
}

impl NewApiKey {
    /// The record to store for a freshly generated key.
    pub fn from_generated(key: &GeneratedKey, name: Option<String>, scope: Scope) -> NewApiKey {
        NewApiKey {
            id: key.id.clone(),
            name,
            scope,
            hash: key.hash.clone(),
        }
    }
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A stored API key. The hash is private: the only thing a caller can do with it is
/// [`ApiKeyRecord::verify`] a presented token.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Public id (the prefix of the token).
    pub id: String,
    /// Optional label.
    pub name: Option<String>,
    /// What the key may do.
    pub scope: Scope,
    /// When the key was created.
    pub created_at: OffsetDateTime,
    /// When the key last authenticated a request, if ever.
    pub last_used_at: Option<OffsetDateTime>,
    /// When the key was revoked; a revoked key never verifies.
    pub revoked_at: Option<OffsetDateTime>,
    hash: String,
}

impl ApiKeyRecord {
    /// Whether the key is revoked.
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    /// Whether `token` is this key's token and the key is not revoked. This runs
    /// argon2id: call it from a blocking-tolerant context or via
    /// [`Store::authenticate`].
    pub fn verify(&self, token: &str) -> bool {
        !self.is_revoked()
            && crypto::parse_api_key_id(token) == Some(self.id.as_str())
            && crypto::verify_api_key(token, &self.hash)
    }
}

impl std::fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("scope", &self.scope)
            .field("created_at", &self.created_at)
            .field("last_used_at", &self.last_used_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Stores a new API key. Fails with `Conflict` if the id is taken.
    pub async fn insert_api_key(&self, key: &NewApiKey) -> Result<ApiKeyRecord, StoreError> {
        if key.name.as_ref().is_some_and(|n| n.chars().count() > 128) {
            return Err(crate::store::ValidationError::new(
                "name",
                "must be at most 128 characters",
            )
            .into());
        }
        let model = row::ActiveModel {
            id: Set(key.id.clone()),
            name: Set(key.name.clone()),
            scope: Set(key.scope.to_string()),
            hash: Set(key.hash.clone()),
            created_at: Set(now_millis()),
            last_used_at: Set(None),
            revoked_at: Set(None),
        };
        let saved = model
            .insert(self.db())
            .await
            .map_err(|err| match err.sql_err() {
                Some(SqlErr::UniqueConstraintViolation(_)) => {
                    StoreError::Conflict(format!("API key id {:?} already exists", key.id))
                }
                _ => StoreError::Database(err),
            })?;
        to_record(saved)
    }

    /// Every API key, revoked ones included, oldest first.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        row::Entity::find()
            .order_by_asc(row::Column::CreatedAt)
            .order_by_asc(row::Column::Id)
            .all(self.db())
            .await?
            .into_iter()
            .map(to_record)
            .collect()
    }

    /// The key with public id `id`.
    pub async fn api_key_by_id(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        row::Entity::find_by_id(id.to_owned())
            .one(self.db())
            .await?
            .map(to_record)
            .transpose()
    }

    /// Revokes the key `id`. Revoking a revoked key keeps its first revocation time.
    pub async fn revoke_api_key(&self, id: &str) -> Result<(), StoreError> {
        let found = row::Entity::find_by_id(id.to_owned())
            .one(self.db())
            .await?
            .ok_or_else(|| StoreError::not_found("API key", id))?;
        if found.revoked_at.is_none() {
            row::Entity::update_many()
                .col_expr(row::Column::RevokedAt, Expr::value(now_millis()))
                .filter(row::Column::Id.eq(id))
                .filter(row::Column::RevokedAt.is_null())
                .exec(self.db())
                .await?;
        }
        Ok(())
    }

    /// Whether any key that is not revoked exists (authentication is then required).
    pub async fn has_api_keys(&self) -> Result<bool, StoreError> {
        Ok(row::Entity::find()
            .filter(row::Column::RevokedAt.is_null())
            .count(self.db())
            .await?
            > 0)
    }

    /// Records that key `id` was just used.
    pub async fn touch_api_key(&self, id: &str) -> Result<(), StoreError> {
        let result = row::Entity::update_many()
            .col_expr(row::Column::LastUsedAt, Expr::value(now_millis()))
            .filter(row::Column::Id.eq(id))
            .exec(self.db())
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::not_found("API key", id));
        }
        Ok(())
    }

    /// The key that `token` belongs to, if the token is well-formed, names a stored key
    /// that is not revoked, and matches its hash. The argon2id check runs on a blocking
    /// thread so it does not stall the async runtime. Does not touch `last_used_at`.
    pub async fn authenticate(&self, token: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let Some(id) = crypto::parse_api_key_id(token) else {
            return Ok(None);
        };
        let Some(record) = self.api_key_by_id(id).await? else {
            return Ok(None);
        };
        let token = zeroize::Zeroizing::new(token.to_owned());
        tokio::task::spawn_blocking(move || record.verify(&token).then_some(record))
            .await
            .map_err(|err| StoreError::Task(err.to_string()))
    }
}

fn to_record(m: row::Model) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        scope: m
            .scope
            .parse()
            .map_err(|_| StoreError::corrupt("API key scope", format!("{:?}", m.scope)))?,
        created_at: from_millis("API key created_at", m.created_at)?,
        last_used_at: m
            .last_used_at
            .map(|t| from_millis("API key last_used_at", t))
            .transpose()?,
        revoked_at: m
            .revoked_at
            .map(|t| from_millis("API key revoked_at", t))
            .transpose()?,
        id: m.id,
        name: m.name,
        hash: m.hash,
    })
}
