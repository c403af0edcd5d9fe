//! The bar cache: bars fetched from IB survive restarts, with the spans fetched in full,
//! so a request inside a span is answered here without asking IB again.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};

use super::entity::{bar as row, bar_coverage as span};
use super::{Store, StoreError};

/// Rows per insert: nine values each stays far under SQLite's bound on parameters.
const CHUNK: usize = 100;

/// One cached bar; `time` is its start in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoredBar {
    pub time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub wap: f64,
    pub count: i64,
}

impl Store {
    /// Keeps `bars` of `series` and records `[start, end)` as fetched in full.
    pub async fn put_bars(
        &self,
        series: &str,
        start: i64,
        end: i64,
        bars: &[StoredBar],
    ) -> Result<(), StoreError> {
        let txn = self.db().begin().await?;
        for chunk in bars.chunks(CHUNK) {
            let models = chunk.iter().map(|b| row::ActiveModel {
                series: Set(series.to_owned()),
                time: Set(b.time),
                open: Set(b.open),
                high: Set(b.high),
                low: Set(b.low),
                close: Set(b.close),
                volume: Set(b.volume),
                wap: Set(b.wap),
                count: Set(b.count),
            });
            row::Entity::insert_many(models)
                .on_conflict(
                    OnConflict::columns([row::Column::Series, row::Column::Time])
                        .update_columns([
                            row::Column::Open,
                            row::Column::High,
                            row::Column::Low,
                            row::Column::Close,
                            row::Column::Volume,
                            row::Column::Wap,
                            row::Column::Count,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        span::Entity::insert(span::ActiveModel {
            id: NotSet,
            series: Set(series.to_owned()),
            start: Set(start),
            end: Set(end),
        })
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Whether `[start, end)` of `series` lies inside one span fetched in full.
    pub async fn bars_cover(&self, series: &str, start: i64, end: i64) -> Result<bool, StoreError> {
        Ok(span::Entity::find()
            .filter(span::Column::Series.eq(series))
            .filter(span::Column::Start.lte(start))
            .filter(span::Column::End.gte(end))
            .one(self.db())
            .await?
            .is_some())
    }

    /// The cached bars of `series` starting in `[start, end)`, oldest first.
    pub async fn bars(
        &self,
        series: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<StoredBar>, StoreError> {
        let rows = row::Entity::find()
            .filter(row::Column::Series.eq(series))
            .filter(row::Column::Time.gte(start))
            .filter(row::Column::Time.lt(end))
            .order_by_asc(row::Column::Time)
            .all(self.db())
            .await?;
        Ok(rows
            .into_iter()
            .map(|m| StoredBar {
                time: m.time,
                open: m.open,
                high: m.high,
                low: m.low,
                close: m.close,
                volume: m.volume,
                wap: m.wap,
                count: m.count,
            })
            .collect())
    }
}
