//! Schema migrations, applied at start-up on SQLite and PostgreSQL.
