//! The one integration-test binary (one link on a 2-core machine): a real Raft group of
//! in-process nodes on loopback, driven through the `redis` crate and raw RESP bytes.

mod fixture;
mod raw;
mod router;

mod batching;
mod cluster_client;
mod commands;
mod dev;
mod disk_failure;
mod expiry;
mod failover;
mod limits;
mod migrate;
mod nemesis;
mod partition;
mod processes;
mod protocol;
mod proxy;
mod recovery;
mod sharding;
mod transactions;
