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

/// The runtimes `redraft dev` runs on: one per thread, each with a single worker, the
/// proxy and the controller on the first and each data group, all its replicas together,
/// on the next in turn (group g on `g mod n`). A group's Raft traffic, log appends and
/// applies then stay on one thread, and no thread steals another's tasks. On one 2-core
/// runtime (tokio's work-stealing default) the tasks of all twelve nodes and the proxy
/// moved between the two workers, woke each other across them and lost their caches: a
/// proxied SET took 10.9–11.5 µs of CPU and a GET 2.6–2.7; on two single-worker runtimes,
/// 10.1–10.4 and 2.1–2.2 (interleaved runs, `benches/redis_benchmark.sh -x` load), and
/// throughput rose 4–6% and 10–25%. Straight at the nodes (`benches/cluster_benchmark.sh`),
/// GETs went from 749k/s (0.69× Redis Cluster) to 0.89–1.09M/s (0.93–1.04×).
///
/// A `redraft node` or `redraft proxy` process runs one role on tokio's default runtime.
pub struct Threads {
    /// The first thread's runtime, which runs `main`'s future (and so the proxy).
    pub main: tokio::runtime::Runtime,
    others: Vec<tokio::runtime::Runtime>,
}

impl Threads {
    pub fn new(n: usize) -> std::io::Result<Threads> {
        let runtime = |name: String| {
            tokio::runtime::Builder::new_multi_thread()
                // Multi-thread with one worker, not current-thread: fjall writes that may
                // wait hand their worker over (`storage::blocking`, block_in_place).
                .worker_threads(1)
                .thread_name(name)
                .enable_all()
                .build()
        };
        Ok(Threads {
            main: runtime("redraft-main".into())?,
            others: (1..n.max(1))
                .map(|i| runtime(format!("redraft-{i}")))
                .collect::<std::io::Result<_>>()?,
        })
    }

    /// One handle per thread, the main one first.
    pub fn handles(&self) -> Vec<tokio::runtime::Handle> {
        std::iter::once(&self.main)
            .chain(&self.others)
            .map(|r| r.handle().clone())
            .collect()
    }
}

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
        threads: &[tokio::runtime::Handle],
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
                // A node's tasks run on the runtime that starts it.
                let node = match threads.get(*gid as usize % threads.len().max(1)) {
                    Some(rt) => rt.spawn(Node::start(c, faults.clone())).await??,
                    None => Node::start(c, faults.clone()).await?,
                };
                nodes.push(node);
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
