//! Store, crypto and `ibstream keys` against real databases: every store test runs on
//! SQLite (a temporary file) and on PostgreSQL (a fresh database per test at
//! `postgres://postgres@127.0.0.1:5432/test`, dropped afterwards).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check here should panic

#[path = "store/backend.rs"]
mod backend;
#[path = "store/both.rs"]
#[macro_use]
mod both;

#[path = "store/api_keys.rs"]
mod api_keys;
#[path = "store/cli.rs"]
mod cli;
#[path = "store/events_contracts.rs"]
mod events_contracts;
#[path = "store/profiles.rs"]
mod profiles;
#[path = "store/secrets.rs"]
mod secrets;
