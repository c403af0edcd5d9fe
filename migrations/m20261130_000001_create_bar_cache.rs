//! The bar cache: bars fetched from IB, by series (contract, data type, bar size, trading
//! hours) and start time, and the spans of each series fetched in full.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum BarCache {
    Table,
    Series,
    Time,
    Open,
    High,
    Low,
    Close,
    Volume,
    Wap,
    Count,
}

#[derive(DeriveIden)]
enum BarCoverage {
    Table,
    Id,
    Series,
    Start,
    End,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BarCache::Table)
                    .col(string(BarCache::Series))
                    .col(big_integer(BarCache::Time))
                    .col(double(BarCache::Open))
                    .col(double(BarCache::High))
                    .col(double(BarCache::Low))
                    .col(double(BarCache::Close))
                    .col(double(BarCache::Volume))
                    .col(double(BarCache::Wap))
                    .col(big_integer(BarCache::Count))
                    .primary_key(Index::create().col(BarCache::Series).col(BarCache::Time))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BarCoverage::Table)
                    .col(pk_auto(BarCoverage::Id))
                    .col(string(BarCoverage::Series))
                    .col(big_integer(BarCoverage::Start))
                    .col(big_integer(BarCoverage::End))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_bar_coverage_series")
                    .table(BarCoverage::Table)
                    .col(BarCoverage::Series)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [BarCache::Table.into_iden(), BarCoverage::Table.into_iden()] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
