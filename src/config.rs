//! Node configuration: addresses, data directory, Raft timings and client limits.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::NodeInfo;
use crate::raft::{Gid, NodeAddr, NodeId};

/// Raft timings. openraft 0.9 uses the heartbeat interval as the replication RPC timeout,
/// so it must not be too short on a loaded 2-core machine (DEPENDENCIES.md); the election
/// timeout is what bounds failover time after a leader dies.
#[derive(Clone, Debug)]
pub struct RaftTimings {
    pub heartbeat: Duration,
    pub election_min: Duration,
    pub election_max: Duration,
    /// Take a snapshot (and purge the log behind it) after this many applied entries.
    pub snapshot_logs: u64,
    /// Also take one once this many bytes were appended to the log since the last, or as
    /// many as the last snapshot's size if that is larger (see `shard::snapshots`).
    pub snapshot_log_bytes: u64,
    /// Log entries kept behind a snapshot, so a briefly lagging follower catches up from the
    /// log instead of a snapshot.
    pub keep_logs: u64,
}

impl Default for RaftTimings {
    fn default() -> Self {
        RaftTimings {
            heartbeat: Duration::from_millis(100),
            election_min: Duration::from_millis(250),
            election_max: Duration::from_millis(400),
            snapshot_logs: 20_000,
            snapshot_log_bytes: 64 * 1024 * 1024,
            keep_logs: 1000,
        }
    }
}

impl RaftTimings {
    pub fn openraft_config(&self, cluster: &str) -> openraft::Config {
        openraft::Config {
            cluster_name: cluster.to_string(),
            heartbeat_interval: self.heartbeat.as_millis() as u64,
            election_timeout_min: self.election_min.as_millis() as u64,
            election_timeout_max: self.election_max.as_millis() as u64,
            install_snapshot_timeout: 5_000,
            max_payload_entries: 1000,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_logs),
            max_in_snapshot_log_to_keep: self.keep_logs,
            // openraft purges only after a snapshot; waiting for 256 purgeable entries on
            // top would keep up to 256 entries (of up to 8 MiB each) that a snapshot covers.
            purge_batch_size: 1,
            ..Default::default()
        }
    }
}

/// Everything a node process needs to start.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    pub gid: Gid,
    /// Address the client and bus listeners bind to.
    pub bind: String,
    /// This node's advertised address (host, client port, bus port); port 0 binds an
    /// ephemeral port and advertises the one bound (tests).
    pub addr: NodeAddr,
    pub dir: PathBuf,
    /// Every initial member of the group, this node included.
    pub peers: BTreeMap<NodeId, NodeAddr>,
    pub timings: RaftTimings,
    pub maxclients: usize,
    /// How long a command waits for a leader before `-CLUSTERDOWN`.
    pub leader_wait: Duration,
    /// How long a write waits for its commit before giving up with an error.
    pub write_timeout: Duration,
    /// The controller group's nodes (id 0 where only the address is known). Empty: a
    /// standalone group that owns every slot. A controller node (group 0) uses its peers.
    pub controllers: Vec<NodeInfo>,
}

impl NodeConfig {
    pub fn new(
        id: NodeId,
        gid: Gid,
        addr: NodeAddr,
        dir: PathBuf,
        peers: BTreeMap<NodeId, NodeAddr>,
    ) -> Self {
        NodeConfig {
            id,
            gid,
            bind: addr.host.clone(),
            addr,
            dir,
            peers,
            timings: RaftTimings::default(),
            maxclients: 10_000,
            leader_wait: Duration::from_secs(2),
            write_timeout: Duration::from_secs(5),
            controllers: Vec::new(),
        }
    }

    /// Where this node reaches the controller: its own group for a controller node.
    pub fn controller_nodes(&self) -> Vec<NodeInfo> {
        if self.gid == 0 {
            self.peers
                .iter()
                .map(|(id, addr)| NodeInfo {
                    id: *id,
                    addr: addr.clone(),
                })
                .collect()
        } else {
            self.controllers.clone()
        }
    }

    /// Whether slots are assigned by a controller (otherwise this group owns them all).
    pub fn cluster_mode(&self) -> bool {
        self.gid == 0 || !self.controllers.is_empty()
    }

    /// What HELLO and INFO call the mode, as Redis does (`cluster` on a cluster node).
    pub fn redis_mode(&self) -> &'static str {
        if self.cluster_mode() {
            "cluster"
        } else {
            "standalone"
        }
    }
}
