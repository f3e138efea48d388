//! openraft wiring: the type configuration of a shard group, node addresses, timings.
//!
//! Everything openraft-specific stays under `raft/` and `shard/mod.rs`, so a move to
//! openraft 0.10 (lease reads, write batching) touches few files.

pub mod log_store;
pub mod network;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::shard::request::{ShardRequest, ShardResponse};

/// A Raft node id, unique across the deployment.
pub type NodeId = u64;
/// A Raft group id: 0 is the controller, groups ≥ 1 hold data.
pub type Gid = u64;

/// Where a node listens: its client (RESP) port and its bus port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeAddr {
    pub host: String,
    pub client_port: u16,
    pub bus_port: u16,
}

impl NodeAddr {
    pub fn client_addr(&self) -> String {
        format!("{}:{}", self.host, self.client_port)
    }
    pub fn bus_addr(&self) -> String {
        format!("{}:{}", self.host, self.bus_port)
    }
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}@{}", self.host, self.client_port, self.bus_port)
    }
}

openraft::declare_raft_types!(
    /// Type configuration of a shard group.
    pub ShardTC:
        D = ShardRequest,
        R = ShardResponse,
        NodeId = NodeId,
        Node = NodeAddr,
        Entry = openraft::Entry<ShardTC>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type ShardRaft = openraft::Raft<ShardTC>;
