//! `bar_coverage`: spans of a bar series fetched from IB in full.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bar_coverage")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub series: String,
    pub start: i64,
    pub end: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
