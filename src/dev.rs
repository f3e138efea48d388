//! `redraft dev`: a whole local deployment in one process. For now: one group of three
//! replicas on consecutive ports (7001–7003 by default).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::bus::FaultTable;
use crate::cli::Tuning;
use crate::config::NodeConfig;
use crate::node::Node;
use crate::raft::{NodeAddr, NodeId};

/// Nodes started together in this process.
pub struct LocalCluster {
    pub nodes: Vec<Node>,
}

impl LocalCluster {
    pub async fn start(
        dir: PathBuf,
        base_port: u16,
        replicas: u16,
        tuning: &Tuning,
    ) -> anyhow::Result<LocalCluster> {
        let peers: BTreeMap<NodeId, NodeAddr> = (0..replicas)
            .map(|i| {
                let port = base_port + i;
                (
                    u64::from(i) + 1,
                    NodeAddr {
                        host: "127.0.0.1".into(),
                        client_port: port,
                        bus_port: port + 10000,
                    },
                )
            })
            .collect();
        let faults = Arc::new(FaultTable::default());
        let mut nodes = Vec::new();
        for (id, addr) in &peers {
            let mut c = NodeConfig::new(
                *id,
                1,
                addr.clone(),
                dir.join(format!("node{id}")),
                peers.clone(),
            );
            tuning.apply(&mut c);
            nodes.push(Node::start(c, faults.clone()).await?);
        }
        Ok(LocalCluster { nodes })
    }

    /// Waits until some node leads the group and returns its address.
    pub async fn wait_leader(&self, timeout: Duration) -> Option<NodeAddr> {
        let first = self.nodes.first()?;
        let m = first
            .group()
            .raft()
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "leader")
            .await
            .ok()?;
        m.current_leader.and_then(|l| first.group().node_addr(l))
    }

    pub async fn stop(self) {
        for n in self.nodes {
            n.stop().await;
        }
    }
}
