//! TestCluster: in-process nodes on ephemeral loopback ports that tests can kill, restart,
//! wipe and partition, plus helpers that wait on conditions (never on time). Either one
//! standalone Raft group (`start`) or a sharded deployment (`sharded`): a controller group
//! (gid 0) and data groups 1..=G, joined and balanced.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redraft::bus::FaultTable;
use redraft::cluster::NodeInfo;
use redraft::config::NodeConfig;
use redraft::db::{DbRead, Value};
use redraft::node::Node;
use redraft::raft::{Gid, NodeAddr, NodeId};

pub const GID: u64 = 1;

pub struct TestCluster {
    /// None only while dropping.
    dir: Option<tempfile::TempDir>,
    pub faults: Arc<FaultTable>,
    /// Every node's address, all groups.
    pub peers: BTreeMap<NodeId, NodeAddr>,
    /// Every node's group.
    pub gids: BTreeMap<NodeId, Gid>,
    pub nodes: BTreeMap<NodeId, Option<Node>>,
    tweak: fn(&mut NodeConfig),
}

/// SETs `<prefix><i>` to i for i < n on node `id`, one command per round trip (each its own
/// log entry), expecting every one acknowledged.
pub async fn set_many(c: &TestCluster, id: NodeId, prefix: &str, n: usize) {
    let mut con = c.client(id).await;
    for i in 0..n {
        let _: () = redis::cmd("SET")
            .arg(format!("{prefix}{i}"))
            .arg(i)
            .query_async(&mut con)
            .await
            .unwrap_or_else(|e| panic!("SET {prefix}{i} on node {id}: {e}"));
    }
}

/// Polls `f` until it returns Some, panicking with `what` after `timeout`.
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl TestCluster {
    pub async fn start(n: u64) -> TestCluster {
        Self::start_with(n, |_| {}).await
    }

    /// Starts `n` replicas; `tweak` adjusts every node's config (e.g. snapshot frequency).
    pub async fn start_with(n: u64, tweak: fn(&mut NodeConfig)) -> TestCluster {
        Self::start_layout((1..=n).map(|id| (id, GID)).collect(), tweak).await
    }

    /// A controller (3 replicas, ids 1–3) and `groups` data groups of `replicas` each
    /// (ids 10·gid + 1…), not joined yet: see [`TestCluster::join_all`].
    pub async fn sharded(groups: u64, replicas: u64, tweak: fn(&mut NodeConfig)) -> TestCluster {
        let mut layout: BTreeMap<NodeId, Gid> = (1..=3).map(|id| (id, 0)).collect();
        for g in 1..=groups {
            for r in 1..=replicas {
                layout.insert(10 * g + r, g);
            }
        }
        Self::start_layout(layout, tweak).await
    }

    async fn start_layout(
        layout: BTreeMap<NodeId, Gid>,
        tweak: fn(&mut NodeConfig),
    ) -> TestCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut listeners = BTreeMap::new();
        let mut peers = BTreeMap::new();
        for &id in layout.keys() {
            let client = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let bus = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            peers.insert(
                id,
                NodeAddr {
                    host: "127.0.0.1".into(),
                    client_port: client.local_addr().expect("addr").port(),
                    bus_port: bus.local_addr().expect("addr").port(),
                },
            );
            listeners.insert(id, (client, bus));
        }
        let mut c = TestCluster {
            dir: Some(dir),
            faults: Arc::new(FaultTable::default()),
            peers,
            gids: layout,
            nodes: BTreeMap::new(),
            tweak,
        };
        for (id, (client, bus)) in listeners {
            let node = Node::start_with(c.config(id), client, bus, c.faults.clone())
                .await
                .expect("start node");
            c.nodes.insert(id, Some(node));
        }
        c
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.as_ref().expect("dir").path()
    }

    pub fn config(&self, id: NodeId) -> NodeConfig {
        let gid = self.gids[&id];
        let mut cfg = NodeConfig::new(
            id,
            gid,
            self.peers[&id].clone(),
            self.dir().join(format!("node{id}")),
            self.members(gid)
                .into_iter()
                .map(|m| (m, self.peers[&m].clone()))
                .collect(),
        );
        if gid != 0 {
            cfg.controllers = self.node_infos(0);
        }
        (self.tweak)(&mut cfg);
        cfg
    }

    /// The node ids of group `gid`.
    pub fn members(&self, gid: Gid) -> Vec<NodeId> {
        self.gids
            .iter()
            .filter(|(_, g)| **g == gid)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The data groups.
    pub fn data_gids(&self) -> Vec<Gid> {
        let mut g: Vec<Gid> = self.gids.values().copied().filter(|g| *g != 0).collect();
        g.dedup();
        g
    }

    pub fn node_infos(&self, gid: Gid) -> Vec<NodeInfo> {
        self.members(gid)
            .into_iter()
            .map(|id| NodeInfo {
                id,
                addr: self.peers[&id].clone(),
            })
            .collect()
    }

    /// `CLUSTER JOIN` arguments for the given groups.
    pub fn join_args(&self, gids: &[Gid]) -> Vec<String> {
        let mut args = vec!["JOIN".to_string()];
        for g in gids {
            args.push(g.to_string());
            for n in self.node_infos(*g) {
                args.push(format!("{}={}", n.id, n.addr));
            }
        }
        args
    }

    /// Runs `CLUSTER <args>` at a controller node; returns the reply.
    pub async fn cluster_cmd(&self, args: &[String]) -> redis::Value {
        let id = self.members(0)[0];
        let id = if self.nodes[&id].is_some() {
            id
        } else {
            *self
                .members(0)
                .iter()
                .find(|m| self.nodes[m].is_some())
                .expect("a controller node")
        };
        let mut con = self.client(id).await;
        let mut cmd = redis::cmd("CLUSTER");
        for a in args {
            cmd.arg(a);
        }
        cmd.query_async(&mut con).await.expect("CLUSTER command")
    }

    /// Joins every data group and waits until all have settled on the resulting config.
    pub async fn join_all(&self) -> u64 {
        let num = match self.cluster_cmd(&self.join_args(&self.data_gids())).await {
            redis::Value::Int(n) => n as u64,
            other => panic!("JOIN answered {other:?}"),
        };
        self.settled(num).await;
        num
    }

    /// Waits until no running data node still holds data of slots that left its group.
    pub async fn purged(&self) {
        wait_until(
            Duration::from_secs(60),
            "slots that left to be purged",
            || async {
                self.running()
                    .filter(|n| n.group().gid() != 0)
                    .all(|n| {
                        n.group()
                            .reader()
                            .cluster()
                            .slots
                            .as_ref()
                            .is_none_or(|t| t.purging.is_empty())
                    })
                    .then_some(())
            },
        )
        .await
    }

    /// Waits until every data group's leader has applied config `num` with nothing in flight.
    pub async fn settled(&self, num: u64) {
        wait_until(
            Duration::from_secs(60),
            &format!("all groups settled at config {num}"),
            || async {
                for gid in self.data_gids() {
                    let ok = self
                        .members(gid)
                        .iter()
                        .filter_map(|id| self.nodes[id].as_ref())
                        .any(|n| {
                            let g = n.group();
                            g.is_leader()
                                && g.reader()
                                    .cluster()
                                    .slots
                                    .as_ref()
                                    .is_some_and(|t| t.config.num >= num && t.settled())
                        });
                    if !ok {
                        return None;
                    }
                }
                Some(())
            },
        )
        .await
    }

    pub fn node(&self, id: NodeId) -> &Node {
        self.nodes[&id].as_ref().expect("node is running")
    }

    pub fn running(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values().flatten()
    }

    pub fn url(&self, id: NodeId) -> String {
        format!("redis://{}/", self.peers[&id].client_addr())
    }

    pub async fn client(&self, id: NodeId) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.url(id)).expect("client");
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        // redis-rs gives up after 500 ms by default; a loaded CI machine can be slower than
        // that without anything being wrong. Tests bound their waits themselves.
        con.set_response_timeout(Duration::from_secs(30));
        con
    }

    /// Waits until every running node of group 1 names the same leader, which is running.
    pub async fn leader(&self) -> NodeId {
        self.leader_of(GID).await
    }

    /// Waits until every running node of `gid` names the same leader, which is running.
    pub async fn leader_of(&self, gid: Gid) -> NodeId {
        wait_until(
            Duration::from_secs(10),
            "a leader all running nodes agree on",
            || async {
                let leaders: Vec<_> = self
                    .running()
                    .filter(|n| n.group().gid() == gid)
                    .map(|n| n.group().current_leader())
                    .collect();
                let l = leaders.first().copied().flatten()?;
                (leaders.iter().all(|x| *x == Some(l))
                    && self.nodes.get(&l).is_some_and(|n| n.is_some()))
                .then_some(l)
            },
        )
        .await
    }

    /// Stops a node abruptly: connections drop, nothing more is flushed.
    pub async fn kill(&mut self, id: NodeId) {
        if let Some(node) = self.nodes.get_mut(&id).and_then(Option::take) {
            node.stop().await;
        }
    }

    pub async fn restart(&mut self, id: NodeId) {
        assert!(self.nodes[&id].is_none(), "node {id} is running");
        let addr = &self.peers[&id];
        // The port was ours a moment ago; another process may briefly hold it on a busy box.
        let client = wait_until(Duration::from_secs(5), "client port free", || async {
            tokio::net::TcpListener::bind(("127.0.0.1", addr.client_port))
                .await
                .ok()
        })
        .await;
        let bus = wait_until(Duration::from_secs(5), "bus port free", || async {
            std::net::TcpListener::bind(("127.0.0.1", addr.bus_port)).ok()
        })
        .await;
        let node = Node::start_with(self.config(id), client, bus, self.faults.clone())
            .await
            .expect("restart node");
        self.nodes.insert(id, Some(node));
    }

    /// Deletes a (stopped) node's data directory: a replaced disk.
    pub fn wipe(&self, id: NodeId) {
        assert!(self.nodes[&id].is_none(), "stop node {id} first");
        std::fs::remove_dir_all(self.dir().join(format!("node{id}"))).expect("wipe");
    }

    /// Every key and value a node's state machine holds, in storage order.
    pub fn dump(&self, id: NodeId) -> Vec<(Bytes, Value)> {
        let reader = self.node(id).group().reader();
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let (page, next) = reader.scan(pos, 1000);
            out.extend(page);
            if next == 0 {
                return out;
            }
            pos = next;
        }
    }

    /// Waits until every running node has applied the leader's last log entry and all
    /// hold the same data.
    pub async fn converged(&self) -> Vec<(Bytes, Value)> {
        let leader = self.leader().await;
        wait_until(Duration::from_secs(20), "replicas to converge", || async {
            let target = self
                .node(leader)
                .group()
                .metrics()
                .last_log_index
                .unwrap_or(0);
            if self.running().filter(|n| n.group().gid() == GID).any(|n| {
                n.group()
                    .metrics()
                    .last_applied
                    .map(|l| l.index)
                    .unwrap_or(0)
                    < target
            }) {
                return None;
            }
            let first = self.dump(leader);
            self.nodes
                .keys()
                .filter(|id| self.nodes[id].is_some() && self.gids[id] == GID)
                .all(|id| self.dump(*id) == first)
                .then_some(first)
        })
        .await
    }

    pub async fn stop(mut self) {
        let ids: Vec<_> = self.nodes.keys().copied().collect();
        for id in ids {
            self.kill(id).await;
        }
    }
}

impl Drop for TestCluster {
    /// A test that panicked never called `stop`: its nodes' storage threads may still be
    /// running, and deleting their files under them would fail their fsyncs (and stop their
    /// groups). Keep the directory then (it also helps to look at what happened).
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            if self.nodes.values().any(Option::is_some) {
                let kept = dir.keep();
                eprintln!("test cluster data kept in {}", kept.display());
            }
        }
    }
}
