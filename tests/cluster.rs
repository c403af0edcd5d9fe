//! The cluster against a real NATS server with JetStream at 127.0.0.1:4222 (or
//! `IBSTREAM_TEST_NATS`). Each test uses its own bucket, removed afterwards; the tests of
//! whole nodes also need PostgreSQL at 127.0.0.1:5432.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check here should panic

#[path = "cluster/agree.rs"]
mod agree;
#[path = "store/backend.rs"]
#[allow(dead_code)] // the SQLite half serves the store tests
mod backend;
#[path = "cluster/bus.rs"]
mod bus;
#[path = "cluster/failover.rs"]
mod failover;
#[path = "support/http.rs"]
mod http;
#[path = "cluster/lease.rs"]
mod lease;
#[path = "cluster/node.rs"]
mod node;
#[path = "cluster/nodes.rs"]
mod nodes;
#[path = "cluster/served.rs"]
mod served;
