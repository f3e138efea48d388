//! redraft: a Redis-protocol key-value store replicated with Raft.
//!
//! Data path of one write: `server` accepts → `resp::connection` reads a request →
//! `cmd::parse` → `shard` proposes a `WriteCmd` batch through `raft` (openraft) → the
//! entry is group-committed by `raft::log_store` on a quorum → `shard::state_machine`
//! applies it into fjall (`storage`) → the reply goes back in pipeline order.
#![forbid(unsafe_code)]

pub mod bus;
pub mod cluster;
pub mod cmd;
pub mod codec;
pub mod db;
pub mod raft;
pub mod shard;
pub mod storage;
pub mod verify;

pub mod cli;
pub mod config;
pub mod dev;
pub mod node;
pub mod resp;
pub mod server;
