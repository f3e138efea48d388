//! The `redraft` command line. Every flag can also be set as `REDRAFT_<FLAG>`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::bus::ANY_NODE;
use crate::cluster::NodeInfo;
use crate::config::{NodeConfig, RaftTimings};
use crate::raft::{NodeAddr, NodeId};

#[derive(Parser, Debug)]
#[command(
    name = "redraft",
    version,
    about = "A Redis-compatible key-value store replicated with Raft"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run one replica of one Raft group.
    Node(NodeArgs),
    /// Run a whole local deployment in one process, for a first try.
    Dev(DevArgs),
    /// Run a proxy: one RESP endpoint for plain Redis clients.
    Proxy(ProxyArgs),
}

#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// Client (RESP) port.
    #[arg(long, env = "REDRAFT_PORT", default_value_t = 6379)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, env = "REDRAFT_BIND", default_value = "127.0.0.1")]
    pub bind: String,
    /// Nodes to learn the cluster from, usually the controller's: `<host>:<port>,...`.
    #[arg(
        long,
        env = "REDRAFT_CONTROLLER",
        value_delimiter = ',',
        required = true
    )]
    pub controller: Vec<String>,
    /// Most client connections.
    #[arg(long, env = "REDRAFT_MAXCLIENTS", default_value_t = 10_000)]
    pub maxclients: usize,
    #[command(flatten)]
    pub proxy: ProxyTuning,
}

/// Proxy settings shared by `redraft proxy` and `redraft dev`.
#[derive(Args, Debug, Clone)]
pub struct ProxyTuning {
    /// How long the proxy retries a command through redirects, failovers and migrations
    /// before the client gets the last error, in milliseconds.
    #[arg(long, env = "REDRAFT_RETRY_MS", default_value_t = 5000)]
    pub retry_ms: u64,
    /// Pipelined connections from the proxy to each node. One carries every client's
    /// requests in the fewest, largest writes; more let a large reply hold up fewer
    /// clients, at the cost of more system calls per request.
    #[arg(long, env = "REDRAFT_BACKEND_CONNS", default_value_t = 1)]
    pub backend_conns: usize,
}

impl ProxyTuning {
    pub fn config(&self, seeds: Vec<String>, maxclients: usize) -> redraft_proxy::ProxyConfig {
        redraft_proxy::ProxyConfig {
            seeds,
            retry_window: std::time::Duration::from_millis(self.retry_ms),
            maxclients,
            backend_conns: self.backend_conns,
        }
    }
}

#[derive(Args, Debug)]
pub struct NodeArgs {
    /// This node's id, unique in the deployment.
    #[arg(long, env = "REDRAFT_ID")]
    pub id: NodeId,
    /// The Raft group this node is a replica of.
    #[arg(long, env = "REDRAFT_GROUP", default_value_t = 1)]
    pub group: u64,
    /// Client (RESP) port.
    #[arg(long, env = "REDRAFT_PORT")]
    pub port: u16,
    /// Bus port (Raft and node-to-node RPC); default: port + 10000.
    #[arg(long, env = "REDRAFT_BUS_PORT")]
    pub bus_port: Option<u16>,
    /// Address to bind.
    #[arg(long, env = "REDRAFT_BIND", default_value = "127.0.0.1")]
    pub bind: String,
    /// Data directory.
    #[arg(long, env = "REDRAFT_DIR")]
    pub dir: PathBuf,
    /// Every initial member of the group, itself included:
    /// `<id>=<host>:<client-port>[@<bus-port>],...`.
    #[arg(long, env = "REDRAFT_PEERS", value_parser = parse_peers)]
    pub peers: BTreeMap<NodeId, NodeAddr>,
    /// The controller group's nodes, `[<id>=]<host>:<client-port>[@<bus-port>],...`: the
    /// group then serves the slots the controller assigns it. Without it the group owns
    /// all 16384 slots.
    #[arg(long, env = "REDRAFT_CONTROLLER", value_parser = parse_controllers)]
    pub controller: Option<Controllers>,
    #[command(flatten)]
    pub tuning: Tuning,
}

#[derive(Args, Debug, Clone)]
pub struct Tuning {
    /// Raft heartbeat interval (ms); also openraft 0.9's replication RPC timeout.
    #[arg(long, env = "REDRAFT_HEARTBEAT_MS", default_value_t = 100)]
    pub heartbeat_ms: u64,
    /// Raft election timeout, lower bound (ms).
    #[arg(long, env = "REDRAFT_ELECTION_MIN_MS", default_value_t = 250)]
    pub election_min_ms: u64,
    /// Raft election timeout, upper bound (ms).
    #[arg(long, env = "REDRAFT_ELECTION_MAX_MS", default_value_t = 400)]
    pub election_max_ms: u64,
    /// Snapshot after this many log entries.
    #[arg(long, env = "REDRAFT_SNAPSHOT_LOGS", default_value_t = 20_000)]
    pub snapshot_logs: u64,
    /// Snapshot once the log grew by this many bytes, or by the last snapshot's size if
    /// larger (Redis's auto-aof-rewrite-min-size and -percentage 100).
    #[arg(long, env = "REDRAFT_SNAPSHOT_LOG_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub snapshot_log_bytes: u64,
    /// Most client connections.
    #[arg(long, env = "REDRAFT_MAXCLIENTS", default_value_t = 10_000)]
    pub maxclients: usize,
}

impl Tuning {
    pub fn apply(&self, c: &mut NodeConfig) {
        c.timings = RaftTimings {
            heartbeat: std::time::Duration::from_millis(self.heartbeat_ms),
            election_min: std::time::Duration::from_millis(self.election_min_ms),
            election_max: std::time::Duration::from_millis(self.election_max_ms),
            snapshot_logs: self.snapshot_logs,
            snapshot_log_bytes: self.snapshot_log_bytes,
            keep_logs: c.timings.keep_logs,
        };
        c.maxclients = self.maxclients;
    }
}

#[derive(Args, Debug)]
pub struct DevArgs {
    /// Data directory (default: a fresh temporary directory, removed on exit).
    #[arg(long, env = "REDRAFT_DIR")]
    pub dir: Option<PathBuf>,
    /// Client port of the first node; the others follow (data groups, then controller).
    #[arg(long, env = "REDRAFT_BASE_PORT", default_value_t = 7001)]
    pub base_port: u16,
    /// Data groups, each owning an even share of the slots.
    #[arg(long, env = "REDRAFT_GROUPS", default_value_t = 3)]
    pub groups: u16,
    /// Replicas in each data group.
    #[arg(long, env = "REDRAFT_REPLICAS", default_value_t = 3)]
    pub replicas: u16,
    /// The proxy's port (0: no proxy).
    #[arg(long, env = "REDRAFT_PROXY_PORT", default_value_t = 6379)]
    pub port: u16,
    /// Threads to run on, one runtime each (default: one per core); see `dev::Threads`.
    #[arg(long, env = "REDRAFT_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    #[command(flatten)]
    pub tuning: Tuning,
    #[command(flatten)]
    pub proxy: ProxyTuning,
}

impl NodeArgs {
    pub fn to_config(&self) -> anyhow::Result<NodeConfig> {
        let me = self
            .peers
            .get(&self.id)
            .ok_or_else(|| anyhow::anyhow!("--peers must include this node's id {}", self.id))?;
        let mut addr = me.clone();
        addr.client_port = self.port;
        addr.bus_port = self.bus_port.unwrap_or(me.bus_port);
        let mut c = NodeConfig::new(
            self.id,
            self.group,
            addr,
            self.dir.clone(),
            self.peers.clone(),
        );
        c.bind = self.bind.clone();
        c.controllers = self.controller.clone().map(|c| c.0).unwrap_or_default();
        if self.group == 0 && !c.controllers.is_empty() {
            anyhow::bail!("group 0 is the controller: its nodes take --peers, not --controller");
        }
        self.tuning.apply(&mut c);
        Ok(c)
    }
}

/// `<host>:<port>[@<bus-port>]`; the bus port defaults to port + 10000.
pub fn parse_addr(addr: &str) -> Result<NodeAddr, String> {
    let (hostport, bus) = match addr.split_once('@') {
        Some((hp, b)) => (
            hp,
            Some(
                b.parse::<u16>()
                    .map_err(|_| format!("'{addr}': bad bus port"))?,
            ),
        ),
        None => (addr, None),
    };
    let (host, port) = hostport
        .rsplit_once(':')
        .ok_or_else(|| format!("'{addr}': expected <host>:<port>"))?;
    let port: u16 = port.parse().map_err(|_| format!("'{addr}': bad port"))?;
    let bus_port = match bus {
        Some(b) => b,
        None => port
            .checked_add(10000)
            .ok_or_else(|| format!("'{addr}': port + 10000 overflows; give @<bus-port>"))?,
    };
    if host.is_empty() {
        return Err(format!("'{addr}': empty host"));
    }
    Ok(NodeAddr {
        host: host.to_string(),
        client_port: port,
        bus_port,
    })
}

/// `<id>=<host>:<port>[@<bus-port>]`.
pub fn parse_node(part: &str) -> Result<NodeInfo, String> {
    let (id, addr) = part
        .split_once('=')
        .ok_or_else(|| format!("'{part}': expected <id>=<host>:<port>"))?;
    let id: NodeId = id
        .parse()
        .ok()
        .filter(|id| *id != ANY_NODE)
        .ok_or_else(|| format!("'{part}': bad node id (a positive integer)"))?;
    Ok(NodeInfo {
        id,
        addr: parse_addr(addr)?,
    })
}

/// `1=127.0.0.1:7001,2=127.0.0.1:7002@17002` → id → address.
pub fn parse_peers(s: &str) -> Result<BTreeMap<NodeId, NodeAddr>, String> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let n = parse_node(part).map_err(|e| format!("peer {e}"))?;
        if out.insert(n.id, n.addr).is_some() {
            return Err(format!("peer id {} given twice", n.id));
        }
    }
    if out.is_empty() {
        return Err("no peers".into());
    }
    Ok(out)
}

/// The controller nodes of `--controller`: one value holding a list (clap reads an
/// `Option<Vec<_>>` field as repeated values instead, and panics on the mismatch).
#[derive(Clone, Debug)]
pub struct Controllers(pub Vec<NodeInfo>);

/// `[<id>=]<host>:<port>[@<bus-port>],...`: controller nodes, ids optional.
pub fn parse_controllers(s: &str) -> Result<Controllers, String> {
    let out: Vec<NodeInfo> = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.contains('=') {
            true => parse_node(p),
            false => Ok(NodeInfo {
                id: ANY_NODE,
                addr: parse_addr(p)?,
            }),
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("controller {e}"))?;
    if out.is_empty() {
        return Err("no controller nodes".into());
    }
    Ok(Controllers(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse() {
        let p = parse_peers("1=127.0.0.1:7001,2=h:7002@9000").expect("valid");
        assert_eq!(
            p[&1],
            NodeAddr {
                host: "127.0.0.1".into(),
                client_port: 7001,
                bus_port: 17001
            }
        );
        assert_eq!(p[&2].bus_port, 9000);
        assert!(parse_peers("1=x").is_err());
        assert!(parse_peers("1=h:1,1=h:2").is_err());
        assert!(parse_peers("").is_err());
        assert!(parse_peers("0=h:1").is_err(), "id 0 means any node");
    }

    #[test]
    fn controllers_parse_with_or_without_ids() {
        let c = parse_controllers("h:7000,5=h:7001@9001").expect("valid").0;
        assert_eq!(c[0].id, ANY_NODE);
        assert_eq!(c[0].addr.bus_port, 17000);
        assert_eq!((c[1].id, c[1].addr.bus_port), (5, 9001));
        assert!(parse_controllers("h").is_err());
        assert!(parse_controllers(",").is_err());
    }

    /// The whole command line, as a process gets it: clap checks field types only when a
    /// value is read, so a definition mistake shows only here.
    #[test]
    fn node_command_line_parses_into_a_config() {
        use clap::Parser;
        let cli = Cli::try_parse_from([
            "redraft",
            "node",
            "--id=11",
            "--group=1",
            "--port=7011",
            "--dir=/tmp/x",
            "--peers=11=127.0.0.1:7011,12=127.0.0.1:7012",
            "--controller=127.0.0.1:7001,2=127.0.0.1:7002@9002",
        ])
        .expect("parses");
        let Cmd::Node(args) = cli.command else {
            panic!("not the node command");
        };
        let c = args.to_config().expect("a config");
        assert_eq!((c.id, c.gid, c.addr.client_port), (11, 1, 7011));
        assert_eq!(c.controllers.len(), 2);
        assert_eq!(c.controllers[1].addr.bus_port, 9002);
        assert_eq!(c.peers.len(), 2);
    }
}
