//! Connection events: every state change and error of the IB session, with its time.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use time::OffsetDateTime;

use super::entity::connection_event as row;
use super::time_codec::{from_millis, to_millis, truncate};
use super::{Store, StoreError};

/// An event to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewConnectionEvent {
    /// When it happened.
    pub at: OffsetDateTime,
    /// The profile the session was using, if any.
    pub profile: Option<String>,
    /// What happened: a state name (`connected`, `reconnecting` …) or `error`, `notice`.
    pub kind: String,
    /// IB's error or notice code, when there is one.
    pub code: Option<i32>,
    /// Human-readable detail.
    pub message: String,
}

impl NewConnectionEvent {
    /// An event of `kind` happening now.
    pub fn now(kind: impl Into<String>, message: impl Into<String>) -> NewConnectionEvent {
        NewConnectionEvent {
            at: OffsetDateTime::now_utc(),
            profile: None,
            kind: kind.into(),
            code: None,
            message: message.into(),
        }
    }

    /// The same event, tagged with a profile name.
    pub fn with_profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = Some(profile.into());
        self
    }

    /// The same event, with an IB code.
    pub fn with_code(mut self, code: i32) -> Self {
        self.code = Some(code);
        self
    }
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionEvent {
    /// Increasing id; orders events recorded within the same millisecond.
    pub id: i64,
    /// When it happened (millisecond precision).
    pub at: OffsetDateTime,
    /// The profile the session was using, if any.
    pub profile: Option<String>,
    /// What happened.
    pub kind: String,
    /// IB's code, when there is one.
    pub code: Option<i32>,
    /// Human-readable detail.
    pub message: String,
}

impl Store {
    /// Appends an event to the history.
    pub async fn record_event(&self, event: &NewConnectionEvent) -> Result<(), StoreError> {
        row::ActiveModel {
            id: Default::default(),
            at: Set(to_millis(truncate(event.at))),
            profile: Set(event.profile.clone()),
            kind: Set(event.kind.clone()),
            code: Set(event.code),
            message: Set(event.message.clone()),
        }
        .insert(self.db())
        .await?;
        Ok(())
    }

    /// The `limit` most recent events, newest first.
    pub async fn recent_events(&self, limit: u64) -> Result<Vec<ConnectionEvent>, StoreError> {
        row::Entity::find()
            .order_by_desc(row::Column::At)
            .order_by_desc(row::Column::Id)
            .limit(limit)
            .all(self.db())
            .await?
            .into_iter()
            .map(|m| {
                Ok(ConnectionEvent {
                    at: from_millis("event time", m.at)?,
                    id: m.id,
                    profile: m.profile,
                    kind: m.kind,
                    code: m.code,
                    message: m.message,
                })
            })
            .collect()
    }

    /// Deletes events older than `before`, returning how many went. History otherwise
    /// grows for as long as the server runs.
    pub async fn prune_events(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let result = row::Entity::delete_many()
            .filter(row::Column::At.lt(to_millis(before)))
            .exec(self.db())
            .await?;
        Ok(result.rows_affected)
    }

    /// Keeps only the `keep` most recent events (in [`Store::recent_events`] order),
    /// returning how many were deleted.
    pub async fn retain_recent_events(&self, keep: u64) -> Result<u64, StoreError> {
        // The newest event that goes: everything at or behind it in the order goes too.
        let Some(first_dropped) = row::Entity::find()
            .order_by_desc(row::Column::At)
            .order_by_desc(row::Column::Id)
            .offset(keep)
            .one(self.db())
            .await?
        else {
            return Ok(0);
        };
        let behind = Condition::any()
            .add(row::Column::At.lt(first_dropped.at))
            .add(
                Condition::all()
                    .add(row::Column::At.eq(first_dropped.at))
                    .add(row::Column::Id.lte(first_dropped.id)),
            );
        let result = row::Entity::delete_many()
            .filter(behind)
            .exec(self.db())
            .await?;
        Ok(result.rows_affected)
    }
}
