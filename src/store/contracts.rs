//! The contract cache: resolved contracts survive restarts, so the gateway is not asked
//! again. Payloads are opaque bytes encoded by the market-data layer.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::entity::contract as row;
use super::time_codec::now_millis;
use super::{Store, StoreError};

impl Store {
    /// Stores (or replaces) the contract cached under `key`.
    pub async fn put_contract(
        &self,
        key: &str,
        con_id: i64,
        payload: &[u8],
    ) -> Result<(), StoreError> {
        let model = row::ActiveModel {
            key: Set(key.to_owned()),
            con_id: Set(con_id),
            payload: Set(payload.to_vec()),
            updated_at: Set(now_millis()),
        };
        row::Entity::insert(model)
            .on_conflict(
                OnConflict::column(row::Column::Key)
                    .update_columns([
                        row::Column::ConId,
                        row::Column::Payload,
                        row::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(self.db())
            .await?;
        Ok(())
    }

    /// The payload cached under `key`.
    pub async fn contract_by_key(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(row::Entity::find_by_id(key.to_owned())
            .one(self.db())
            .await?
            .map(|m| m.payload))
    }

    /// The most recently stored payload for `con_id` (several keys may name the same
    /// contract).
    pub async fn contract_by_con_id(&self, con_id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(row::Entity::find()
            .filter(row::Column::ConId.eq(con_id))
            .order_by_desc(row::Column::UpdatedAt)
            .one(self.db())
            .await?
            .map(|m| m.payload))
    }
}
