//! redraft-proxy: one RESP endpoint for plain Redis clients in front of a redraft cluster.
//!
//! [`wire`] is the RESP layer the nodes share (request parsing with Redis's limits, reply
//! encoding and decoding, the command table, slots, globs). The proxy itself is stateless:
//! [`topology`] learns which node leads each slot, [`route`] decides per command whether to
//! answer, forward, split or fan out, [`forward`] sends over pipelined [`backend`]
//! connections and rides out redirects and failovers, stamping writes for exactly-once.
#![forbid(unsafe_code)]

pub mod backend;
pub mod client;
pub mod fanout;
pub mod forward;
pub mod hll;
pub mod multi;
pub mod requeue;
pub mod route;
pub mod save;
pub mod session;
pub mod topology;
pub mod wait;
pub mod wire;

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use forward::{Backends, Pool};
use topology::Topology;
use wire::clients::Clients;

/// How a proxy runs.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// host:port of nodes to learn the topology from (the controller's, or any).
    pub seeds: Vec<String>,
    /// How long a command may be retried (redirects, failovers, migrations) before the
    /// client gets the last error.
    pub retry_window: Duration,
    pub maxclients: usize,
    /// Pipelined connections per node (see `redraft proxy --backend-conns`).
    pub backend_conns: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            seeds: Vec::new(),
            retry_window: Duration::from_secs(5),
            maxclients: 10_000,
            backend_conns: 1,
        }
    }
}

/// What every client connection of a proxy shares.
pub struct Shared {
    pub backends: Backends,
    pub clients: Arc<Clients>,
    pub maxclients: usize,
    pub port: u16,
    pub started: Instant,
    /// The clients in MONITOR mode.
    pub monitors: wire::monitor::Monitors,
    /// Set when the proxy stops: client connections close.
    shutdown: tokio::sync::watch::Sender<bool>,
}

/// A running proxy.
pub struct Proxy {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Serves on `listener` until stopped.
    pub fn start(listener: TcpListener, config: ProxyConfig) -> std::io::Result<Proxy> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            backends: Backends {
                topo: Topology::start(config.seeds.clone()),
                pool: Pool::new(config.backend_conns),
                retry_window: config.retry_window,
            },
            clients: Arc::default(),
            maxclients: config.maxclients,
            port: addr.port(),
            started: Instant::now(),
            monitors: Default::default(),
            shutdown: tokio::sync::watch::channel(false).0,
        });
        let task = tokio::spawn(accept(listener, shared.clone()));
        Ok(Proxy { addr, shared, task })
    }

    /// Waits until the proxy knows an owner for every slot (or the timeout passes).
    pub async fn ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let topo = &self.shared.backends.topo;
            if (0..wire::SLOTS as u16).all(|s| topo.addr(s).is_some()) {
                return true;
            }
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            topo.refresh_and_wait(Duration::from_millis(200)).await;
        }
    }

    /// Stops accepting, closes every client connection and every connection to the
    /// nodes (a node that is shutting down waits for its connections to go).
    pub fn stop(self) {
        self.task.abort();
        self.shared.shutdown.send_replace(true);
        self.shared.backends.pool.clear();
    }
}

async fn accept(listener: TcpListener, sh: Arc<Shared>) {
    loop {
        let (mut stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let laddr = stream
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let fd = stream.as_raw_fd();
        let Some(guard) = sh
            .clients
            .register(peer.to_string(), laddr, fd, sh.maxclients)
        else {
            tokio::spawn(async move {
                let _ = stream
                    .write_all(b"-ERR max number of clients reached\r\n")
                    .await;
            });
            continue;
        };
        tokio::spawn(client::serve(stream, sh.clone(), guard));
    }
}
