//! `on_both_backends!(name => body)`: a module `name` with one test on SQLite and one
//! on PostgreSQL, each calling `body(&TestDb)`.

macro_rules! on_both_backends {
    ($($name:ident => $body:ident;)*) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::backend::TestDb::sqlite();
                super::$body(&db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::backend::TestDb::postgres().await {
                    super::$body(&db).await;
                }
            }
        }
    )*};
}
