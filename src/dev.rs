//! `redraft dev`: a whole local deployment in one process. Data groups 1..=G of R replicas
//! on consecutive client ports from the base port (7001–7009 by default), then the
//! controller's three replicas (7010–7012), the groups joined and the slots balanced.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::bus::FaultTable;
use crate::cli::Tuning;
use crate::cluster::{CtlOp, NodeInfo};
use crate::config::NodeConfig;
use crate::node::Node;
use crate::raft::{Gid, NodeAddr, NodeId};
use crate::shard::rpc::{call_group, ClusterReply, ClusterRequest};
use redraft_proxy::wire::Reply;

/// Replicas of the controller group.
const CONTROLLER_REPLICAS: u16 = 3;

/// Nodes started together in this process.
pub struct LocalCluster {
    pub nodes: Vec<Node>,
    /// The configuration the groups were joined into (0 with no groups).
    pub config: u64,
}

impl LocalCluster {
    pub async fn start(
        dir: PathBuf,
        base_port: u16,
        groups: u16,
        replicas: u16,
        tuning: &Tuning,
    ) -> anyhow::Result<LocalCluster> {
        let addr = |i: u16| -> anyhow::Result<NodeAddr> {
            let port = base_port
                .checked_add(i)
                .filter(|p| p.checked_add(10000).is_some())
                .ok_or_else(|| anyhow::anyhow!("--base-port too high for this many nodes"))?;
            Ok(NodeAddr {
                host: "127.0.0.1".into(),
                client_port: port,
                bus_port: port + 10000,
            })
        };
        // gid → id → address; node ids 1.. in port order.
        let mut layout: BTreeMap<Gid, BTreeMap<NodeId, NodeAddr>> = BTreeMap::new();
        let mut i = 0u16;
        for gid in (1..=u64::from(groups)).chain([0]) {
            let n = if gid == 0 {
                CONTROLLER_REPLICAS
            } else {
                replicas
            };
            for _ in 0..n {
                layout
                    .entry(gid)
                    .or_default()
                    .insert(u64::from(i) + 1, addr(i)?);
                i += 1;
            }
        }
        let infos = |gid: Gid| -> Vec<NodeInfo> {
            layout[&gid]
                .iter()
                .map(|(id, addr)| NodeInfo {
                    id: *id,
                    addr: addr.clone(),
                })
                .collect()
        };
        let controllers = infos(0);
        let faults = Arc::new(FaultTable::default());
        let mut nodes = Vec::new();
        for (gid, peers) in &layout {
            for (id, addr) in peers {
                let mut c = NodeConfig::new(
                    *id,
                    *gid,
                    addr.clone(),
                    dir.join(format!("node{id}")),
                    peers.clone(),
                );
                if *gid != 0 {
                    c.controllers = controllers.clone();
                }
                tuning.apply(&mut c);
                nodes.push(Node::start(c, faults.clone()).await?);
            }
        }
        let mut cluster = LocalCluster { nodes, config: 0 };
        if groups > 0 {
            let join: Vec<(Gid, Vec<NodeInfo>)> =
                (1..=u64::from(groups)).map(|g| (g, infos(g))).collect();
            cluster.config = cluster.join(&controllers, join).await?;
        }
        Ok(cluster)
    }

    /// Joins the groups unless a restarted deployment has them already; returns the
    /// configuration number that has them.
    async fn join(
        &self,
        controllers: &[NodeInfo],
        join: Vec<(Gid, Vec<NodeInfo>)>,
    ) -> anyhow::Result<u64> {
        let bus = &self.nodes[0].shared.bus;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let latest = call_group(bus, 0, controllers, ClusterRequest::Query(None), deadline)
            .await
            .map_err(|e| anyhow::anyhow!("controller: {e}"))?;
        if let ClusterReply::Config(Some(c)) = &latest {
            if c.num > 0 {
                return Ok(c.num);
            }
        }
        let req = ClusterRequest::Ctl(CtlOp::Join(join));
        match call_group(bus, 0, controllers, req, deadline).await {
            Ok(ClusterReply::Done(Reply::Int(n))) => Ok(n as u64),
            other => anyhow::bail!("joining the groups failed: {other:?}"),
        }
    }

    /// Waits until every data group serves configuration `num` with nothing in flight, and
    /// every replica has applied it: a follower that has not yet would answer `CLUSTERDOWN`
    /// to a cluster client that starts at it.
    pub async fn wait_settled(&self, num: u64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let data = || self.nodes.iter().filter(|n| n.group().gid() != 0);
            let applied = |n: &&Node, settled: bool| {
                let m = n.group().reader().cluster();
                m.slots
                    .as_ref()
                    .is_some_and(|t| t.config.num >= num && (!settled || t.settled()))
            };
            let groups = data()
                .map(|n| n.group().gid())
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            let leaders_settled = data()
                .filter(|n| n.group().is_leader())
                .filter(|n| applied(n, true))
                .count();
            if leaders_settled >= groups && data().all(|n| applied(&n, false)) {
                return true;
            }
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Each group's leader, once every group has one.
    pub async fn leaders(&self, timeout: Duration) -> BTreeMap<Gid, NodeAddr> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut out = BTreeMap::new();
            for n in &self.nodes {
                let g = n.group();
                if let Some(addr) = g.current_leader().and_then(|l| g.node_addr(l)) {
                    out.insert(g.gid(), addr);
                }
            }
            let groups: std::collections::BTreeSet<Gid> =
                self.nodes.iter().map(|n| n.group().gid()).collect();
            if out.len() == groups.len() || tokio::time::Instant::now() > deadline {
                return out;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The controller's client addresses (host:port), where a proxy learns the cluster.
    pub fn controller_addrs(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.group().gid() == 0)
            .map(|n| n.addr().client_addr())
            .collect()
    }

    /// Stops every node at once: one by one, each stop waits out Raft RPCs to peers
    /// already gone, which added up to half a minute.
    pub async fn stop(self) {
        futures::future::join_all(self.nodes.into_iter().map(Node::stop)).await;
    }
}
