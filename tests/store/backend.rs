//! Test databases: a SQLite file in a temporary directory, or a PostgreSQL database
//! created for one test and dropped when it ends (even when it panics).

use std::time::Duration;

use ibstream::store::Store;
use rand::Rng;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};

/// The server and maintenance database the PostgreSQL tests use.
pub const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database for one test.
pub struct TestDb {
    /// The URL [`Store::open`] takes.
    pub url: String,
    /// The SQLite file's directory (kept alive for the test).
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database to drop at the end.
    postgres_name: Option<String>,
}

impl TestDb {
    /// A fresh SQLite file.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = ibstream::store::sqlite_url(&dir.path().join("ibstream.sqlite"));
        TestDb {
            url,
            _dir: Some(dir),
            postgres_name: None,
        }
    }

    /// A fresh PostgreSQL database, or `None` (after a loud warning) when the server is
    /// unreachable. Under `CI=true` an unreachable server fails the test instead.
    pub async fn postgres() -> Option<TestDb> {
        let admin = match admin_connection().await {
            Ok(admin) => admin,
            Err(err) => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable under CI: {err}");
                }
                eprintln!(
                    "\n!!!!!!!! WARNING: PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable \
                     ({err}); the PostgreSQL half of this store test is SKIPPED !!!!!!!!\n"
                );
                return None;
            }
        };
        let name = format!("ibstream_test_{:016x}", rand::rng().random::<u64>());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let _ = admin.close().await;
        Some(TestDb {
            url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
            _dir: None,
            postgres_name: Some(name),
        })
    }

    /// Opens the store (running migrations).
    pub async fn open(&self) -> Store {
        Store::open(&self.url).await.expect("open store")
    }

    /// A plain connection beside the store, to look at raw rows.
    pub async fn raw(&self) -> DatabaseConnection {
        Database::connect(self.url.as_str())
            .await
            .expect("raw connection")
    }

    /// Runs `sql` on a plain connection and returns every row.
    pub async fn query(&self, sql: &str) -> Vec<sea_orm::QueryResult> {
        let raw = self.raw().await;
        let rows = raw
            .query_all_raw(Statement::from_string(raw.get_database_backend(), sql))
            .await
            .expect("raw query");
        let _ = raw.close().await;
        rows
    }
}

async fn admin_connection() -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut options = ConnectOptions::new(POSTGRES_ADMIN_URL);
    options
        .connect_timeout(Duration::from_secs(3))
        .acquire_timeout(Duration::from_secs(3))
        .max_connections(1)
        .sqlx_logging(false);
    Database::connect(options).await
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot block on async work: use a
        // thread with its own runtime. FORCE ends connections the test left open.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let admin = admin_connection().await?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop a PostgreSQL test database");
        }
    }
}
