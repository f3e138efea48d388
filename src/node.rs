//! A node process: one fjall database, one bus endpoint, the hosted Raft group, and the
//! client listener. `Node::start` wires them together; `Node::stop` takes them down.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use futures::future::{BoxFuture, FutureExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::bus::{Bus, BusHandler, BusRequest, BusResponse, FaultTable, RaftRpcKind};
use crate::config::NodeConfig;
use crate::raft::log_store::LogStore;
use crate::raft::network::{self, Network};
use crate::raft::{Gid, NodeAddr, NodeId, ShardRaft};
use crate::shard::rejoin::{self, Quarantine};
use crate::shard::state_machine::ShardStateMachine;
use crate::shard::watchdog::LeaderContact;
use crate::shard::ShardGroup;
use crate::storage::Storage;

/// The Redis version redraft reports (HELLO, INFO): the command set it follows.
pub use redraft_proxy::wire::hello::REDIS_VERSION;

/// What connections and commands share: config, the group, the client registry.
pub struct NodeShared {
    pub config: NodeConfig,
    /// The advertised address, with the ports actually bound.
    pub addr: NodeAddr,
    pub group: ShardGroup,
    /// For calls to other groups (the controller, forwarded CLUSTER commands).
    pub bus: Bus,
    /// Other groups' leaders, for MOVED.
    pub leaders: Arc<crate::shard::hints::LeaderHints>,
    pub storage: Storage,
    pub clients: Arc<crate::resp::session::Clients>,
    pub maxclients: AtomicUsize,
    pub output_limit: crate::resp::output_limit::OutputLimit,
    pub started: Instant,
    pub run_id: String,
    /// The clients in MONITOR mode.
    pub monitors: redraft_proxy::wire::monitor::Monitors,
}

/// Routes bus requests to the hosted groups' Rafts.
#[derive(Default)]
pub struct GroupRegistry {
    groups: RwLock<BTreeMap<Gid, HostedGroup>>,
}

/// What the bus needs of a hosted group.
#[derive(Clone)]
pub struct HostedGroup {
    pub raft: ShardRaft,
    pub contact: LeaderContact,
    pub quarantine: Quarantine,
    /// Set once the group is started; cluster requests need it. Weak: the registry is
    /// reachable from the group itself (through Raft's network and the bus).
    pub shard: Arc<std::sync::OnceLock<crate::shard::WeakShardGroup>>,
}

impl GroupRegistry {
    pub fn insert(&self, gid: Gid, group: HostedGroup) {
        self.groups
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(gid, group);
    }
    fn get(&self, gid: Gid) -> Option<HostedGroup> {
        self.groups
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&gid)
            .cloned()
    }
}

impl BusHandler for GroupRegistry {
    fn handle(&self, _from: NodeId, req: BusRequest) -> BoxFuture<'static, BusResponse> {
        match req {
            BusRequest::Raft { gid, rpc, body } => match self.get(gid) {
                Some(g) if rpc == RaftRpcKind::Vote && g.quarantine.active() => {
                    Box::pin(async move {
                        BusResponse::Error(format!(
                            "group {gid}: catching up after a blank start, not voting"
                        ))
                    })
                }
                Some(g) => {
                    if rpc == RaftRpcKind::AppendEntries {
                        g.contact.touch();
                    }
                    Box::pin(async move { network::serve(&g.raft, rpc, &body).await })
                }
                None => Box::pin(async move {
                    BusResponse::Error(format!("group {gid} is not hosted here"))
                }),
            },
            BusRequest::Cluster { gid, req } => {
                match self.get(gid).and_then(|g| g.shard.get()?.upgrade()) {
                    Some(group) => Box::pin(async move {
                        BusResponse::Cluster(crate::shard::rpc::serve(&group, req).await)
                    }),
                    None => Box::pin(async move {
                        BusResponse::Error(format!("group {gid} is not hosted here"))
                    }),
                }
            }
            BusRequest::Status { gid } => match self.get(gid) {
                Some(g) => Box::pin(async move {
                    BusResponse::Status {
                        initialized: g.raft.is_initialized().await.unwrap_or(false),
                        last_log_index: g.raft.metrics().borrow().last_log_index,
                    }
                }),
                None => Box::pin(async move {
                    BusResponse::Status {
                        initialized: false,
                        last_log_index: None,
                    }
                }),
            },
        }
    }
}

/// A running node.
pub struct Node {
    pub shared: Arc<NodeShared>,
    raft: ShardRaft,
    bus: Bus,
    server: JoinHandle<()>,
    /// Resolves once the disk fails.
    failed: futures::future::Shared<BoxFuture<'static, String>>,
}

impl Node {
    /// Binds the configured ports and starts.
    pub async fn start(config: NodeConfig, faults: Arc<FaultTable>) -> anyhow::Result<Node> {
        let client = TcpListener::bind((config.bind.as_str(), config.addr.client_port)).await?;
        let bus = std::net::TcpListener::bind((config.bind.as_str(), config.addr.bus_port))?;
        Self::start_with(config, client, bus, faults).await
    }

    /// Starts on listeners the caller bound (tests bind `:0` first to learn every port).
    pub async fn start_with(
        mut config: NodeConfig,
        client: TcpListener,
        bus_listener: std::net::TcpListener,
        faults: Arc<FaultTable>,
    ) -> anyhow::Result<Node> {
        config.addr.client_port = client.local_addr()?.port();
        config.addr.bus_port = bus_listener.local_addr()?.port();
        std::fs::create_dir_all(&config.dir)?;
        let storage = Storage::open(&config.dir, config.id)?;
        let log = LogStore::open(&storage, config.gid)?;
        let committed = log.committed_index();
        let appended = log.appended_bytes();
        let sm = ShardStateMachine::open(&storage.snapshot_dir(), config.gid)?;
        let failed = {
            let failed: BoxFuture<'static, String> = Box::pin(storage.failed());
            failed.shared()
        };
        let reader = sm.reader();

        let registry = Arc::new(GroupRegistry::default());
        bus_listener.set_nonblocking(true)?;
        let bus = Bus::start_with(
            config.id,
            tokio::net::TcpListener::from_std(bus_listener)?,
            registry.clone(),
            faults,
        )?;
        let net = Network::new(bus.clone(), config.gid);
        let raft_config = Arc::new(
            config
                .timings
                .openraft_config(&format!("redraft-g{}", config.gid))
                .validate()?,
        );
        let raft = openraft::Raft::new(config.id, raft_config, net, log, sm).await?;
        let contact = LeaderContact::default();
        let quarantine = Quarantine::default();
        let shard_slot = Arc::new(std::sync::OnceLock::new());
        registry.insert(
            config.gid,
            HostedGroup {
                raft: raft.clone(),
                contact: contact.clone(),
                quarantine: quarantine.clone(),
                shard: shard_slot.clone(),
            },
        );

        if !raft.is_initialized().await? {
            // A blank dir is a new group or a replaced disk; only the peers know which.
            let peers = rejoin::probe_peers(&bus, &config).await;
            if peers.max_last_index.is_some_and(|i| i >= 1) {
                // The group has done work: this replica may have helped commit it.
                rejoin::set_fence(&config.dir, config.gid, peers.max_last_index.unwrap_or(0))?;
            } else if config.peers.keys().next() == Some(&config.id) && !peers.any_initialized {
                match raft.initialize(config.peers.clone()).await {
                    Ok(()) => tracing::info!(gid = config.gid, "initialised a new group"),
                    Err(e) => tracing::debug!("initialize: {e}"),
                }
            }
        }
        rejoin::enforce(&config.dir, config.gid, &raft, &quarantine).await?;

        let group = ShardGroup::start(
            &config,
            raft.clone(),
            reader,
            committed,
            contact,
            quarantine,
        );
        let _ = shard_slot.set(group.downgrade_handle());
        tokio::spawn(crate::shard::snapshots::run(
            group.downgrade_handle(),
            appended,
            config.timings.snapshot_log_bytes,
        ));
        if config.gid != 0 && !config.controllers.is_empty() {
            tokio::spawn(crate::shard::follow::run(
                group.downgrade_handle(),
                bus.clone(),
                config.controllers.clone(),
            ));
        }
        let leaders = Arc::new(crate::shard::hints::LeaderHints::default());
        if config.cluster_mode() {
            tokio::spawn(crate::shard::hints::run(
                group.downgrade_handle(),
                bus.clone(),
                leaders.clone(),
                config.controllers.clone(),
            ));
        }
        let shared = Arc::new(NodeShared {
            monitors: Default::default(),
            leaders,
            bus: bus.clone(),
            addr: config.addr.clone(),
            maxclients: AtomicUsize::new(config.maxclients),
            output_limit: Default::default(),
            config,
            group,
            storage,
            clients: Arc::default(),
            started: Instant::now(),
            run_id: run_id(),
        });
        let server = tokio::spawn(crate::server::run(client, shared.clone()));
        tracing::info!(id = shared.config.id, addr = %shared.addr, "node started");
        Ok(Node {
            shared,
            raft,
            bus,
            server,
            failed,
        })
    }

    /// Resolves, with the error, once this node's disk has failed: its Raft group has then
    /// stopped here, and it acknowledges nothing more.
    pub fn failed(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        self.failed.clone()
    }

    pub fn addr(&self) -> &NodeAddr {
        &self.shared.addr
    }

    pub fn group(&self) -> &ShardGroup {
        &self.shared.group
    }

    /// Stops everything: client connections close, the bus goes silent, Raft stops.
    /// Nothing is flushed beyond what Raft already made durable, so tests use this as
    /// the in-process equivalent of kill -9.
    pub async fn stop(self) {
        self.server.abort();
        let _ = self.server.await;
        self.bus.shutdown().await;
        let _ = self.raft.shutdown().await;
        // Raft's background tasks may still hold the database for a moment: wait until it
        // is closed, so the directory is free for a restart (or a test that wipes it).
        let watch = self.shared.storage.watch();
        drop(self.shared);
        drop(self.raft);
        drop(self.bus);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !watch.released() {
            if tokio::time::Instant::now() > deadline {
                tracing::warn!("storage still open 10 s after stop");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}

/// 40 hex characters, as Redis's run_id.
fn run_id() -> String {
    let seed =
        crate::db::keys::fnv1a64(format!("{:?}{}", Instant::now(), std::process::id()).as_bytes());
    format!(
        "{:016x}{:016x}{:08x}",
        seed,
        seed.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15,
        seed as u32
    )
}
