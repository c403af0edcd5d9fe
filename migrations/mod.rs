//! Schema migrations, applied by [`crate::store::Store::open`] at start-up.
//!
//! One file per migration, named `m<date>_<sequence>_<what>`; the name is recorded in
//! `seaql_migrations`, so a migration that has run is never run again. Migrations only
//! use types that SQLite and PostgreSQL both have: timestamps are unix milliseconds in
//! `BIGINT` columns, blobs are `BLOB`/`BYTEA`.

use sea_orm_migration::prelude::*;

mod m20261124_000001_create_tables;
mod m20261130_000001_create_bar_cache;

/// Every migration of the ibstream schema, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_tables::Migration),
            Box::new(m20261130_000001_create_bar_cache::Migration),
        ]
    }
}
