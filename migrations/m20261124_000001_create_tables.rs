//! The initial schema: settings profiles, sealed credentials, API keys, connection
//! events, contract cache and the master-key check value.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SettingsProfiles {
    Table,
    Id,
    Name,
    Host,
    Port,
    ClientId,
    Account,
    Active,
    ConnectOnStart,
    ConnectionTimeoutMs,
    RetryAttempts,
    MarketDataType,
    AllowDelayedFallback,
    MessageRate,
    LineBudget,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ProfileCredentials {
    Table,
    ProfileId,
    Username,
    Password,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    Name,
    Scope,
    Hash,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum ConnectionEvents {
    Table,
    Id,
    At,
    Profile,
    Kind,
    Code,
    Message,
}

#[derive(DeriveIden)]
enum ContractCache {
    Table,
    Key,
    ConId,
    Payload,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum KeyCheck {
    Table,
    Id,
    Salt,
    KdfMemoryKib,
    KdfIterations,
    KdfParallelism,
    CheckValue,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_profiles(manager).await?;
        create_credentials(manager).await?;
        create_api_keys(manager).await?;
        create_events(manager).await?;
        create_contract_cache(manager).await?;
        create_key_check(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children before parents, so the foreign key never dangles.
        for table in [
            ProfileCredentials::Table.into_iden(),
            SettingsProfiles::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            ConnectionEvents::Table.into_iden(),
            ContractCache::Table.into_iden(),
            KeyCheck::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        // A half-created schema would be worse than none, on every backend.
        Some(true)
    }
}

async fn create_profiles(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(SettingsProfiles::Table)
                .col(pk_auto(SettingsProfiles::Id))
                .col(string_uniq(SettingsProfiles::Name))
                .col(string(SettingsProfiles::Host))
                .col(integer(SettingsProfiles::Port))
                .col(integer(SettingsProfiles::ClientId))
                .col(string_null(SettingsProfiles::Account))
                .col(boolean(SettingsProfiles::Active))
                .col(boolean(SettingsProfiles::ConnectOnStart))
                .col(big_integer(SettingsProfiles::ConnectionTimeoutMs))
                .col(integer(SettingsProfiles::RetryAttempts))
                .col(integer(SettingsProfiles::MarketDataType))
                .col(boolean(SettingsProfiles::AllowDelayedFallback))
                .col(integer(SettingsProfiles::MessageRate))
                .col(integer(SettingsProfiles::LineBudget))
                .col(big_integer(SettingsProfiles::CreatedAt))
                .col(big_integer(SettingsProfiles::UpdatedAt))
                .to_owned(),
        )
        .await?;
    // At most one active profile, guarded by the database itself: a partial unique
    // index (same syntax on SQLite and PostgreSQL; sea-query cannot express it).
    manager
        .get_connection()
        .execute_unprepared(
            "CREATE UNIQUE INDEX idx_settings_profiles_one_active \
             ON settings_profiles (active) WHERE active",
        )
        .await?;
    Ok(())
}

async fn create_credentials(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(ProfileCredentials::Table)
                .col(integer(ProfileCredentials::ProfileId).primary_key())
                .col(blob(ProfileCredentials::Username))
                .col(blob(ProfileCredentials::Password))
                .col(big_integer(ProfileCredentials::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_profile_credentials_profile")
                        .from(ProfileCredentials::Table, ProfileCredentials::ProfileId)
                        .to(SettingsProfiles::Table, SettingsProfiles::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await
}

async fn create_api_keys(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(ApiKeys::Table)
                .col(string(ApiKeys::Id).primary_key())
                .col(string_null(ApiKeys::Name))
                .col(string(ApiKeys::Scope))
                .col(string(ApiKeys::Hash))
                .col(big_integer(ApiKeys::CreatedAt))
                .col(big_integer_null(ApiKeys::LastUsedAt))
                .col(big_integer_null(ApiKeys::RevokedAt))
                .to_owned(),
        )
        .await
}

async fn create_events(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(ConnectionEvents::Table)
                .col(big_pk_auto(ConnectionEvents::Id))
                .col(big_integer(ConnectionEvents::At))
                .col(string_null(ConnectionEvents::Profile))
                .col(string(ConnectionEvents::Kind))
                .col(integer_null(ConnectionEvents::Code))
                .col(text(ConnectionEvents::Message))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("idx_connection_events_at")
                .table(ConnectionEvents::Table)
                .col(ConnectionEvents::At)
                .to_owned(),
        )
        .await
}

async fn create_contract_cache(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(ContractCache::Table)
                .col(string(ContractCache::Key).primary_key())
                .col(big_integer(ContractCache::ConId))
                .col(blob(ContractCache::Payload))
                .col(big_integer(ContractCache::UpdatedAt))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("idx_contract_cache_con_id")
                .table(ContractCache::Table)
                .col(ContractCache::ConId)
                .to_owned(),
        )
        .await
}

async fn create_key_check(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(KeyCheck::Table)
                .col(integer(KeyCheck::Id).primary_key())
                .col(blob(KeyCheck::Salt))
                .col(integer(KeyCheck::KdfMemoryKib))
                .col(integer(KeyCheck::KdfIterations))
                .col(integer(KeyCheck::KdfParallelism))
                .col(blob(KeyCheck::CheckValue))
                .col(big_integer(KeyCheck::CreatedAt))
                .to_owned(),
        )
        .await
}
