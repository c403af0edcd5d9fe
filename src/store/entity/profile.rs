//! `settings_profiles`: one row per named set of connection settings.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "settings_profiles")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub name: String,
    pub host: String,
    pub port: i32,
    pub client_id: i32,
    pub account: Option<String>,
    pub active: bool,
    pub connect_on_start: bool,
    pub connection_timeout_ms: i64,
    pub retry_attempts: i32,
    pub market_data_type: i32,
    pub allow_delayed_fallback: bool,
    pub message_rate: i32,
    pub line_budget: i32,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
