//! Real `redraft node` processes on loopback, for what in-process nodes cannot show: kill -9
//! (nothing flushed, nothing shut down, the OS reclaims everything) and per-process limits.
//! The same layout as `TestCluster::sharded`: controller ids 1–3, data nodes 10·gid + r.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use redraft::raft::{Gid, NodeId};

use crate::fixture::wait_until;

/// A port for a node process to bind, free now and handed out once per test run. Taken
/// below Linux's ephemeral range (32768 and up): a port the kernel picked for `:0` could
/// be handed to some connection's local end before the process binds it (a node of the
/// nemesis failed with `Address already in use` that way, and its group never formed).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    const FIRST: u16 = 20000;
    const SPAN: u16 = 12000;
    // Runs started together (CI and a developer's) begin at different places.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % u32::from(SPAN)) as u16;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = FIRST + (start + n % SPAN) % SPAN;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + SPAN);
}

pub struct Proc {
    pub gid: Gid,
    /// host:port of the client port.
    pub addr: String,
    /// `id=host:port@bus`, as JOIN takes it.
    entry: String,
    args: Vec<String>,
    child: Option<Child>,
}

pub struct ProcessCluster {
    /// None once kept (a failed test leaves its data and logs behind).
    dir: Option<tempfile::TempDir>,
    pub procs: BTreeMap<NodeId, Proc>,
}

impl ProcessCluster {
    /// One node owning every slot, with `extra` command-line flags.
    pub fn standalone(extra: &[&str]) -> ProcessCluster {
        let (port, bus) = (free_port(), free_port());
        let mut args = vec![format!("--peers=1=127.0.0.1:{port}@{bus}")];
        args.extend(extra.iter().map(|a| a.to_string()));
        let mut c = ProcessCluster::empty();
        c.add(1, 1, port, bus, args);
        c.spawn(1);
        c
    }

    /// A controller of 3 and `groups` data groups of `replicas`, all started, not joined.
    pub fn sharded(groups: u64, replicas: u64) -> ProcessCluster {
        let mut layout: BTreeMap<NodeId, Gid> = (1..=3).map(|id| (id, 0)).collect();
        for g in 1..=groups {
            for r in 1..=replicas {
                layout.insert(10 * g + r, g);
            }
        }
        let ports: BTreeMap<NodeId, (u16, u16)> = layout
            .keys()
            .map(|id| (*id, (free_port(), free_port())))
            .collect();
        let peers = |gid: Gid| -> String {
            layout
                .iter()
                .filter(|(_, g)| **g == gid)
                .map(|(id, _)| format!("{id}=127.0.0.1:{}@{}", ports[id].0, ports[id].1))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut c = ProcessCluster::empty();
        for (id, gid) in &layout {
            let mut args = vec![format!("--peers={}", peers(*gid))];
            if *gid != 0 {
                args.push(format!("--controller={}", peers(0)));
            }
            let (port, bus) = ports[id];
            c.add(*id, *gid, port, bus, args);
        }
        let ids: Vec<NodeId> = c.procs.keys().copied().collect();
        for id in ids {
            c.spawn(id);
        }
        c
    }

    fn empty() -> ProcessCluster {
        ProcessCluster {
            dir: Some(tempfile::tempdir().expect("tempdir")),
            procs: BTreeMap::new(),
        }
    }

    fn dir(&self) -> &std::path::Path {
        self.dir.as_ref().expect("dir").path()
    }

    fn add(&mut self, id: NodeId, gid: Gid, port: u16, bus: u16, flags: Vec<String>) {
        let dir = self.dir().join(format!("node{id}"));
        let mut args = vec![
            "node".into(),
            format!("--id={id}"),
            format!("--group={gid}"),
            format!("--port={port}"),
            format!("--bus-port={bus}"),
            format!("--dir={}", dir.display()),
        ];
        args.extend(flags);
        self.procs.insert(
            id,
            Proc {
                gid,
                addr: format!("127.0.0.1:{port}"),
                entry: format!("{id}=127.0.0.1:{port}@{bus}"),
                args,
                child: None,
            },
        );
    }

    /// Starts node `id`'s process (again), its output appended to `node<id>.log`.
    pub fn spawn(&mut self, id: NodeId) {
        let log_path = self.dir().join(format!("node{id}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("node log");
        let p = self.procs.get_mut(&id).expect("a node of the layout");
        assert!(p.child.is_none(), "node {id} is running");
        let child = Command::new(env!("CARGO_BIN_EXE_redraft"))
            .args(&p.args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start redraft node");
        p.child = Some(child);
    }

    /// SIGKILL: the process gets no chance to flush or say goodbye.
    pub fn kill9(&mut self, id: NodeId) {
        if let Some(mut child) = self.procs.get_mut(&id).and_then(|p| p.child.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for node `id`'s process to exit by itself; its exit status.
    pub async fn exited(&mut self, id: NodeId) -> std::process::ExitStatus {
        let p = self.procs.get_mut(&id).expect("a node of the layout");
        let child = p.child.as_mut().expect("node is running");
        let status = wait_until(Duration::from_secs(30), "the process to exit", || {
            let status = child.try_wait().expect("wait");
            async move { status }
        })
        .await;
        p.child = None;
        status
    }

    pub fn running(&self, id: NodeId) -> bool {
        self.procs[&id].child.is_some()
    }

    pub fn members(&self, gid: Gid) -> Vec<NodeId> {
        self.procs
            .iter()
            .filter(|(_, p)| p.gid == gid)
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn url(&self, id: NodeId) -> String {
        format!("redis://{}/", self.procs[&id].addr)
    }

    pub fn controller_addrs(&self) -> Vec<String> {
        self.members(0)
            .iter()
            .map(|id| self.procs[id].addr.clone())
            .collect()
    }

    async fn connect(&self, id: NodeId) -> Option<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url(id)).ok()?;
        let mut con = tokio::time::timeout(
            Duration::from_secs(2),
            client.get_multiplexed_async_connection(),
        )
        .await
        .ok()?
        .ok()?;
        con.set_response_timeout(Duration::from_secs(5));
        Some(con)
    }

    /// The running node of `gid` that says it leads (INFO replication), if any.
    pub async fn leader_of(&self, gid: Gid) -> Option<NodeId> {
        for id in self.members(gid) {
            if !self.running(id) {
                continue;
            }
            let Some(mut con) = self.connect(id).await else {
                continue;
            };
            let info: redis::RedisResult<String> = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut con)
                .await;
            if info.is_ok_and(|i| i.contains("role:master")) {
                return Some(id);
            }
        }
        None
    }

    /// `CLUSTER <args>` at the first running controller node that answers.
    pub async fn cluster_cmd(&self, args: &[String]) -> Option<redis::RedisResult<redis::Value>> {
        for id in self.members(0) {
            if !self.running(id) {
                continue;
            }
            if let Some(mut con) = self.connect(id).await {
                let mut cmd = redis::cmd("CLUSTER");
                cmd.arg(args);
                return Some(cmd.query_async(&mut con).await);
            }
        }
        None
    }

    /// `CLUSTER JOIN` arguments for the given groups.
    pub fn join_args(&self, gids: &[Gid]) -> Vec<String> {
        let mut args = vec!["JOIN".to_string()];
        for g in gids {
            args.push(g.to_string());
            args.extend(
                self.members(*g)
                    .iter()
                    .map(|id| self.procs[id].entry.clone()),
            );
        }
        args
    }

    /// Joins every data group once the controller can take it, and waits for each to
    /// elect a leader (a node that failed to start shows here, not as a wrong answer).
    pub async fn join_all(&self) {
        let gids: std::collections::BTreeSet<Gid> = self
            .procs
            .values()
            .map(|p| p.gid)
            .filter(|g| *g != 0)
            .collect();
        let args = self.join_args(&gids.iter().copied().collect::<Vec<_>>());
        wait_until(
            Duration::from_secs(60),
            "the controller to take JOIN",
            || async {
                match self.cluster_cmd(&args).await {
                    Some(Ok(redis::Value::Int(_))) => Some(()),
                    _ => None,
                }
            },
        )
        .await;
        for g in gids {
            wait_until(
                Duration::from_secs(60),
                &format!("group {g} to elect a leader (see the node logs)"),
                || self.leader_of(g),
            )
            .await;
        }
    }

    /// Keeps the data dir and logs (a failed test) instead of deleting them.
    pub fn keep(&mut self) {
        if let Some(dir) = self.dir.take() {
            eprintln!("node data and logs kept in {}", dir.keep().display());
        }
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        let ids: Vec<NodeId> = self.procs.keys().copied().collect();
        for id in ids {
            self.kill9(id);
        }
        if std::thread::panicking() {
            self.keep();
        }
    }
}

/// SHUTDOWN stops a `redraft node` process as SIGTERM does: the connection closes with no
/// reply (which clients take as success), the process exits 0, and a restart has every
/// acknowledged write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_node_process_which_restarts_with_its_data() {
    let mut c = ProcessCluster::standalone(&[]);
    let ready = |c: &ProcessCluster| {
        let url = c.url(1);
        wait_until(Duration::from_secs(30), "the node to serve", move || {
            let url = url.clone();
            async move {
                let mut con = redis::Client::open(url)
                    .ok()?
                    .get_multiplexed_async_connection()
                    .await
                    .ok()?;
                // A read answers once the node's group has a leader.
                let r: redis::RedisResult<Option<String>> =
                    redis::cmd("GET").arg("k").query_async(&mut con).await;
                r.ok().map(|v| (con, v))
            }
        })
    };
    let (mut con, before) = ready(&c).await;
    assert_eq!(before, None);
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut con)
        .await
        .unwrap();
    let abort: redis::RedisResult<()> = redis::cmd("SHUTDOWN")
        .arg("ABORT")
        .query_async(&mut con)
        .await;
    assert_eq!(
        abort.unwrap_err().detail(),
        Some("No shutdown in progress.")
    );
    let mut raw = crate::raw::Raw::connect(&c.procs[&1].addr).await;
    raw.send(&crate::raw::encode(&[b"SHUTDOWN", b"NOSAVE"]))
        .await;
    assert_eq!(raw.rest().await, b"", "no reply: the connection closes");
    assert!(c.exited(1).await.success(), "exit status 0");
    c.spawn(1);
    let (_, after) = ready(&c).await;
    assert_eq!(after.as_deref(), Some("v"));
}
