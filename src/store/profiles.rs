//! Settings-profile queries. The invariant "exactly one profile is active" is kept by
//! running every change inside a transaction that first locks the profile rows
//! (PostgreSQL; SQLite serialises writers anyway), with a partial unique index on
//! `active` as the database's own last guard.

use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr, TransactionTrait,
};

use super::entity::{credentials, profile as row};
use super::profile::{DEFAULT_PROFILE_NAME, MarketDataType, Profile};
use super::time_codec::{from_millis, now_millis};
use super::{Store, StoreError};

impl Store {
    /// The active profile.
    pub async fn active_profile(&self) -> Result<Profile, StoreError> {
        row::Entity::find()
            .filter(row::Column::Active.eq(true))
            .one(self.db())
            .await?
            .ok_or_else(|| StoreError::not_found("active profile", ""))
            .and_then(to_profile)
    }

    /// Every profile, by name.
    pub async fn list_profiles(&self) -> Result<Vec<Profile>, StoreError> {
        row::Entity::find()
            .order_by_asc(row::Column::Name)
            .all(self.db())
            .await?
            .into_iter()
            .map(to_profile)
            .collect()
    }

    /// The profile called `name`.
    pub async fn profile(&self, name: &str) -> Result<Profile, StoreError> {
        find_by_name(self.db(), name).await.and_then(to_profile)
    }

    /// Inserts `profile`, or updates the one with the same name (its `created_at` is
    /// kept). Saving a profile with `active` set makes it the active one; clearing
    /// `active` on the active profile is refused, since one must stay active.
    pub async fn save_profile(&self, profile: &Profile) -> Result<Profile, StoreError> {
        profile.validate()?;
        let txn = self.db().begin().await?;
        lock_profiles(&txn).await?;
        let existing = row::Entity::find()
            .filter(row::Column::Name.eq(&profile.name))
            .one(&txn)
            .await?;
        let now = now_millis();
        let mut model = to_active_model(profile, now);
        match &existing {
            Some(current) if current.active && !profile.active => {
                return Err(StoreError::Conflict(format!(
                    "profile {:?} is the active profile; activate another profile instead of \
                     clearing its active flag",
                    profile.name
                )));
            }
            Some(current) => {
                model.id = Set(current.id);
                model.created_at = Set(current.created_at);
            }
            None => {}
        }
        if profile.active {
            deactivate_all_but(&txn, &profile.name).await?;
        }
        let saved = match existing {
            Some(_) => model.update(&txn).await,
            None => model.insert(&txn).await,
        }
        .map_err(|err| conflict_on_unique(err, &profile.name))?;
        txn.commit().await?;
        to_profile(saved)
    }

    /// Makes `name` the active profile and every other one inactive.
    pub async fn activate_profile(&self, name: &str) -> Result<Profile, StoreError> {
        let txn = self.db().begin().await?;
        lock_profiles(&txn).await?;
        let target = find_by_name(&txn, name).await?;
        if target.active {
            return to_profile(target);
        }
        deactivate_all_but(&txn, name).await?;
        let mut model: row::ActiveModel = target.into();
        model.active = Set(true);
        model.updated_at = Set(now_millis());
        let saved = model
            .update(&txn)
            .await
            .map_err(|err| conflict_on_unique(err, name))?;
        txn.commit().await?;
        to_profile(saved)
    }

    /// Deletes the profile `name` and its credentials. The active profile cannot be
    /// deleted: activate another one first.
    pub async fn delete_profile(&self, name: &str) -> Result<(), StoreError> {
        let txn = self.db().begin().await?;
        lock_profiles(&txn).await?;
        let target = find_by_name(&txn, name).await?;
        if target.active {
            return Err(StoreError::Conflict(format!(
                "profile {name:?} is active and cannot be deleted; activate another profile first"
            )));
        }
        credentials::Entity::delete_by_id(target.id)
            .exec(&txn)
            .await?;
        row::Entity::delete_by_id(target.id).exec(&txn).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Seeds [`Profile::default`] into an empty database, and makes sure one profile is
    /// active (the default one, else the oldest).
    pub(super) async fn seed_default_profile(&self) -> Result<(), StoreError> {
        let txn = self.db().begin().await?;
        if row::Entity::find().count(&txn).await? == 0 {
            // Another process opening the same database at once may win the race; its
            // row is as good as ours.
            row::Entity::insert(to_active_model(&Profile::default(), now_millis()))
                .on_conflict_do_nothing_on([row::Column::Name])
                .exec_without_returning(&txn)
                .await?;
        }
        let has_active = row::Entity::find()
            .filter(row::Column::Active.eq(true))
            .count(&txn)
            .await?
            > 0;
        if !has_active {
            let fallback = match row::Entity::find()
                .filter(row::Column::Name.eq(DEFAULT_PROFILE_NAME))
                .one(&txn)
                .await?
            {
                Some(found) => Some(found),
                None => {
                    row::Entity::find()
                        .order_by_asc(row::Column::Id)
                        .one(&txn)
                        .await?
                }
            };
            if let Some(found) = fallback {
                let mut model: row::ActiveModel = found.into();
                model.active = Set(true);
                model.update(&txn).await?;
            }
        }
        txn.commit().await?;
        Ok(())
    }
}

/// The row of profile `name`, or `NotFound`.
pub(super) async fn find_by_name(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<row::Model, StoreError> {
    row::Entity::find()
        .filter(row::Column::Name.eq(name))
        .one(db)
        .await?
        .ok_or_else(|| StoreError::not_found("profile", name))
}

/// Serialises concurrent profile changes: without it two activations racing under
/// READ COMMITTED would each see the other's target as inactive, and one would fail on
/// the unique index instead of simply going second.
async fn lock_profiles(db: &impl ConnectionTrait) -> Result<(), StoreError> {
    row::Entity::find()
        .select_only()
        .column(row::Column::Id)
        // One global order, so two lockers cannot each hold a row the other wants.
        .order_by_asc(row::Column::Id)
        .lock_exclusive()
        .into_tuple::<i32>()
        .all(db)
        .await?;
    Ok(())
}

async fn deactivate_all_but(db: &impl ConnectionTrait, name: &str) -> Result<(), StoreError> {
    row::Entity::update_many()
        .col_expr(row::Column::Active, Expr::value(false))
        .filter(row::Column::Active.eq(true))
        .filter(row::Column::Name.ne(name))
        .exec(db)
        .await?;
    Ok(())
}

/// A unique violation here means a concurrent writer got there first: either the name
/// was taken or another profile was activated at the same moment.
fn conflict_on_unique(err: DbErr, name: &str) -> StoreError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            StoreError::Conflict(format!("profile {name:?} was changed concurrently; retry"))
        }
        _ => StoreError::Database(err),
    }
}

fn to_active_model(profile: &Profile, now: i64) -> row::ActiveModel {
    row::ActiveModel {
        id: Default::default(),
        name: Set(profile.name.clone()),
        host: Set(profile.host.clone()),
        port: Set(i32::from(profile.port)),
        client_id: Set(profile.client_id),
        account: Set(profile.account.clone()),
        active: Set(profile.active),
        connect_on_start: Set(profile.connect_on_start),
        connection_timeout_ms: Set(
            i64::try_from(profile.connection_timeout.as_millis()).unwrap_or(i64::MAX)
        ),
        // Validation bounds these far below i32::MAX.
        retry_attempts: Set(saturating_i32(profile.retry_attempts)),
        market_data_type: Set(profile.market_data_type.ib_code()),
        allow_delayed_fallback: Set(profile.allow_delayed_fallback),
        message_rate: Set(saturating_i32(profile.message_rate)),
        line_budget: Set(saturating_i32(profile.line_budget)),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

fn saturating_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

fn to_profile(m: row::Model) -> Result<Profile, StoreError> {
    let unsigned = |what: &'static str, v: i32| {
        u32::try_from(v).map_err(|_| StoreError::corrupt(what, format!("{v} is negative")))
    };
    Ok(Profile {
        port: u16::try_from(m.port)
            .map_err(|_| StoreError::corrupt("port", format!("{} is not a port", m.port)))?,
        connection_timeout: Duration::from_millis(u64::try_from(m.connection_timeout_ms).map_err(
            |_| {
                StoreError::corrupt(
                    "connection_timeout",
                    format!("{} ms", m.connection_timeout_ms),
                )
            },
        )?),
        retry_attempts: unsigned("retry_attempts", m.retry_attempts)?,
        market_data_type: MarketDataType::from_ib_code(m.market_data_type).ok_or_else(|| {
            StoreError::corrupt(
                "market_data_type",
                format!("unknown code {}", m.market_data_type),
            )
        })?,
        message_rate: unsigned("message_rate", m.message_rate)?,
        line_budget: unsigned("line_budget", m.line_budget)?,
        created_at: from_millis("created_at", m.created_at)?,
        updated_at: from_millis("updated_at", m.updated_at)?,
        name: m.name,
        host: m.host,
        client_id: m.client_id,
        account: m.account,
        active: m.active,
        connect_on_start: m.connect_on_start,
        allow_delayed_fallback: m.allow_delayed_fallback,
    })
}
