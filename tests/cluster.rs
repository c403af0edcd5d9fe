//! The cluster against a real NATS server with JetStream at 127.0.0.1:4222 (or
//! `IBSTREAM_TEST_NATS`). Each test uses its own bucket, removed afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check here should panic

#[path = "cluster/bus.rs"]
mod bus;
#[path = "cluster/lease.rs"]
mod lease;
#[path = "cluster/node.rs"]
mod node;
