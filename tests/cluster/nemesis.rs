//! Jepsen-style: clients, half through the proxy and half straight to the nodes with a
//! cluster client, APPEND unique ids to and GET a few dozen keys spread over three groups,
//! recording every operation (invoke, completion, outcome), while a nemesis kills and
//! restarts leaders, followers and the controller's leader, cuts leaders off, moves slots
//! between groups and makes groups LEAVE and JOIN again. In-process nodes, or `redraft node`
//! processes killed with SIGKILL (`run_processes`). Then everything heals, each key is read once more, and
//! `redraft::verify::list_append` checks the history: one total order per key, real-time
//! order, no lost, duplicated or phantom append.
//!
//! Seeded: a failure prints the seed, and `REDRAFT_NEMESIS_SEED=<seed>` replays the same
//! choices (the timing of a real cluster still varies). The long run:
//! `compat/nemesis.sh --runs N --seconds S`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redraft::verify::history::{parse_list, History, Kind, Outcome};
use redraft::verify::list_append::check;
use redraft_proxy::wire::key_slot;

use crate::fixture::TestCluster;
use crate::processes::ProcessCluster;

const KEYS: u64 = 24;
const CLIENTS: u64 = 6;

/// xorshift64*: reproducible choices from a seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Fault {
    KillLeader,
    KillFollower,
    IsolateLeader,
    KillController,
    MoveSlot,
    /// A group LEAVEs (its slots migrate to the others) and JOINs back (they rebalance).
    LeaveJoin,
}

/// How a workload client reaches the cluster.
#[derive(Clone)]
enum Via {
    /// Through the proxy, which stamps writes for exactly-once retries.
    Proxy(String),
    /// Straight to the nodes with redis-rs's cluster client, seeded with every data node.
    /// It must not retry on its own: a write retried after a lost reply may apply twice,
    /// which only the proxy's stamps prevent.
    Cluster(Vec<String>),
}

enum Conn {
    Proxy(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Via {
    async fn connect(&self) -> Option<Conn> {
        match self {
            Via::Proxy(addr) => {
                let c = redis::Client::open(format!("redis://{addr}/")).ok()?;
                let mut con = c.get_multiplexed_async_connection().await.ok()?;
                con.set_response_timeout(Duration::from_secs(20));
                Some(Conn::Proxy(con))
            }
            Via::Cluster(urls) => {
                let c = redis::cluster::ClusterClient::builder(urls.clone())
                    .retries(0)
                    .response_timeout(Duration::from_secs(20))
                    .build()
                    .ok()?;
                Some(Conn::Cluster(c.get_async_connection().await.ok()?))
            }
        }
    }
}

impl Conn {
    async fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        match self {
            Conn::Proxy(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => cmd.query_async(c).await,
        }
    }

    /// What a failed append tells: through the proxy any error may follow an attempt whose
    /// outcome is unknown; a node's MOVED or ASK is a definite refusal (it ran nothing).
    fn append_outcome(&self, e: &redis::RedisError) -> Outcome {
        match self {
            Conn::Cluster(_) if e.redirect_node().is_some() => Outcome::Fail,
            _ => Outcome::Info,
        }
    }

    /// A lost connection to the proxy is reopened; the cluster client reconnects itself.
    fn lost(&self, e: &redis::RedisError) -> bool {
        matches!(self, Conn::Proxy(_)) && (e.is_io_error() || e.is_timeout())
    }
}

/// One client: random appends and reads until told to stop.
async fn client(
    via: Via,
    process: u64,
    history: Arc<History>,
    next_id: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    let mut rng = Rng(seed ^ (process + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut con: Option<Conn> = None;
    while !stop.load(Ordering::Relaxed) {
        if con.is_none() {
            con = via.connect().await;
            if con.is_none() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        }
        let c = con.as_mut().unwrap();
        let key = format!("n:{}", rng.below(KEYS));
        let invoke = history.now();
        if rng.below(2) == 0 {
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            let r: redis::RedisResult<i64> = c
                .query(redis::cmd("APPEND").arg(&key).arg(format!("{id},")))
                .await;
            let outcome = match &r {
                Ok(_) => Outcome::Ok,
                Err(e) => c.append_outcome(e),
            };
            history.record(process, &key, Kind::Append(id), invoke, outcome);
            if r.as_ref().is_err_and(|e| c.lost(e)) {
                con = None;
            }
        } else {
            let r: redis::RedisResult<Option<Vec<u8>>> = c.query(redis::cmd("GET").arg(&key)).await;
            match r {
                Ok(v) => {
                    let ids = parse_list(&v.unwrap_or_default()).expect("a list-append value");
                    history.record(process, &key, Kind::Read(ids), invoke, Outcome::Ok);
                }
                Err(e) => {
                    if c.lost(&e) {
                        con = None;
                    }
                }
            }
        }
    }
}

/// What the nemesis needs of a cluster: in-process nodes or `redraft node` processes.
trait Target {
    /// The node of `gid` that leads, if one is running and says so.
    async fn leader(&self, gid: u64) -> Option<u64>;
    fn members(&self, gid: u64) -> Vec<u64>;
    /// Stops `id` abruptly: nothing more flushed (SIGKILL for a process).
    async fn kill(&mut self, id: u64);
    async fn restart(&mut self, id: u64);
    /// Cuts `id` off from every other node; false if this cluster cannot.
    fn isolate(&self, id: u64) -> bool;
    fn heal(&self);
    /// A controller command at a running controller node; None if none answered.
    async fn controller(&self, args: &[String]) -> Option<redis::Value>;
    fn join_args(&self, gids: &[u64]) -> Vec<String>;
}

impl Target for TestCluster {
    async fn leader(&self, gid: u64) -> Option<u64> {
        self.running()
            .filter(|n| n.group().gid() == gid)
            .find_map(|n| n.group().current_leader())
            .filter(|l| self.nodes.get(l).is_some_and(|n| n.is_some()))
    }
    fn members(&self, gid: u64) -> Vec<u64> {
        TestCluster::members(self, gid)
    }
    async fn kill(&mut self, id: u64) {
        TestCluster::kill(self, id).await
    }
    async fn restart(&mut self, id: u64) {
        TestCluster::restart(self, id).await
    }
    fn isolate(&self, id: u64) -> bool {
        self.faults.isolate(id);
        true
    }
    fn heal(&self) {
        self.faults.heal();
    }
    async fn controller(&self, args: &[String]) -> Option<redis::Value> {
        for id in TestCluster::members(self, 0) {
            if self.nodes[&id].is_none() {
                continue;
            }
            let mut con = self.client(id).await;
            let mut cmd = redis::cmd("CLUSTER");
            cmd.arg(args);
            if let Ok(v) = cmd.query_async(&mut con).await {
                return Some(v);
            }
        }
        None
    }
    fn join_args(&self, gids: &[u64]) -> Vec<String> {
        TestCluster::join_args(self, gids)
    }
}

impl Target for ProcessCluster {
    async fn leader(&self, gid: u64) -> Option<u64> {
        self.leader_of(gid).await
    }
    fn members(&self, gid: u64) -> Vec<u64> {
        ProcessCluster::members(self, gid)
    }
    async fn kill(&mut self, id: u64) {
        self.kill9(id);
    }
    async fn restart(&mut self, id: u64) {
        self.spawn(id);
    }
    /// The bus fault layer is in-process only.
    fn isolate(&self, _: u64) -> bool {
        false
    }
    fn heal(&self) {}
    async fn controller(&self, args: &[String]) -> Option<redis::Value> {
        self.cluster_cmd(args).await.and_then(Result::ok)
    }
    fn join_args(&self, gids: &[u64]) -> Vec<String> {
        ProcessCluster::join_args(self, gids)
    }
}

/// Runs one fault, then undoes it.
async fn strike(c: &mut impl Target, fault: Fault, rng: &mut Rng) -> String {
    let gid = 1 + rng.below(3);
    let pause = Duration::from_millis(500 + rng.below(1500));
    match fault {
        Fault::KillLeader | Fault::KillFollower | Fault::KillController => {
            let gid = if matches!(fault, Fault::KillController) {
                0
            } else {
                gid
            };
            let Some(leader) = c.leader(gid).await else {
                return format!("no leader in group {gid} to strike");
            };
            let victim = if matches!(fault, Fault::KillFollower) {
                let f: Vec<u64> = c
                    .members(gid)
                    .into_iter()
                    .filter(|id| *id != leader)
                    .collect();
                f[rng.below(f.len() as u64) as usize]
            } else {
                leader
            };
            c.kill(victim).await;
            tokio::time::sleep(pause).await;
            c.restart(victim).await;
            format!("{fault:?} node {victim} of group {gid} for {pause:?}")
        }
        Fault::IsolateLeader => {
            let Some(leader) = c.leader(gid).await else {
                return format!("no leader in group {gid} to isolate");
            };
            if !c.isolate(leader) {
                return "no partitions here".into();
            }
            tokio::time::sleep(pause).await;
            c.heal();
            format!("isolated node {leader} of group {gid} for {pause:?}")
        }
        Fault::MoveSlot => {
            let key = format!("n:{}", rng.below(KEYS));
            let slot = key_slot(key.as_bytes());
            let args = ["MOVE".to_string(), slot.to_string(), gid.to_string()];
            let r = c.controller(&args).await;
            format!("moved slot {slot} ({key}) to group {gid}: {r:?}")
        }
        Fault::LeaveJoin => {
            let leave = ["LEAVE".to_string(), gid.to_string()];
            let left = c.controller(&leave).await;
            tokio::time::sleep(pause).await;
            let join = c.join_args(&[gid]);
            let mut joined = None;
            for _ in 0..20 {
                joined = c.controller(&join).await;
                if matches!(joined, Some(redis::Value::Int(_))) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            format!("group {gid} left ({left:?}) and joined again ({joined:?}) after {pause:?}")
        }
    }
}

/// The clients of one run and the history they record.
pub struct Workload {
    history: Arc<History>,
    stop: Arc<AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<()>>,
    proxy: String,
}

impl Workload {
    /// Starts the clients: half through the proxy at `proxy`, half straight to `nodes`.
    pub fn start(proxy: String, nodes: Vec<String>, seed: u64) -> Workload {
        let history = Arc::new(History::default());
        let stop = Arc::new(AtomicBool::new(false));
        let ids = Arc::new(AtomicU64::new(1));
        let clients = (0..CLIENTS)
            .map(|p| {
                let via = match p % 2 {
                    0 => Via::Proxy(proxy.clone()),
                    _ => Via::Cluster(nodes.clone()),
                };
                tokio::spawn(client(
                    via,
                    p,
                    history.clone(),
                    ids.clone(),
                    stop.clone(),
                    seed,
                ))
            })
            .collect();
        Workload {
            history,
            stop,
            clients,
            proxy,
        }
    }

    /// Stops the clients, reads every key once more (retrying until the cluster answers)
    /// and checks the history. Returns the summary line, and what is wrong if anything is.
    pub async fn finish(self, seed: u64, faults: &[String]) -> (String, Option<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.clients {
            t.await.unwrap();
        }
        let client = redis::Client::open(format!("redis://{}/", self.proxy)).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        con.set_response_timeout(Duration::from_secs(20));
        let mut finals = BTreeMap::new();
        for k in 0..KEYS {
            let key = format!("n:{k}");
            // A local loop, not `wait_until`: a timeout must say why, and how to replay it.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            let v: Vec<u8> = loop {
                let r: redis::RedisResult<Option<Vec<u8>>> =
                    redis::cmd("GET").arg(&key).query_async(&mut con).await;
                match r {
                    Ok(v) => break v.unwrap_or_default(),
                    Err(e) if tokio::time::Instant::now() > deadline => panic!(
                        "final read of {key} still failing after 60s: {e}\nfaults: {faults:#?}\nreplay with REDRAFT_NEMESIS_SEED={seed}"
                    ),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        // A multiplexed connection does not reconnect by itself.
                        if let Ok(c) = client.get_multiplexed_async_connection().await {
                            con = c;
                            con.set_response_timeout(Duration::from_secs(20));
                        }
                    }
                }
            };
            finals.insert(key, parse_list(&v).expect("a list-append value"));
        }
        let ops = self.history.ops();
        let anomalies = check(&ops, &finals);
        let acked = ops
            .iter()
            .filter(|o| matches!(o.kind, Kind::Append(_)) && o.outcome == Outcome::Ok)
            .count();
        let unknown = ops.iter().filter(|o| o.outcome == Outcome::Info).count();
        let refused = ops.iter().filter(|o| o.outcome == Outcome::Fail).count();
        let reads = ops
            .iter()
            .filter(|o| matches!(o.kind, Kind::Read(_)))
            .count();
        let tally = |what: &str| faults.iter().filter(|f| f.contains(what)).count();
        let summary = format!(
            "seed {seed}: {} ops ({acked} appends acknowledged, {refused} refused, {unknown} unknown, {reads} reads), {} faults ({} kills, {} isolations, {} slot moves, {} leave+join), {} anomalies",
            ops.len(),
            faults.len(),
            tally("Kill"),
            tally("isolated"),
            tally("moved slot"),
            tally(" left ("),
            anomalies.len()
        );
        let wrong = if !anomalies.is_empty() {
            Some(format!(
                "{summary}\nfaults: {faults:#?}\nanomalies: {:#?}\nreplay with REDRAFT_NEMESIS_SEED={seed}",
                &anomalies[..anomalies.len().min(20)]
            ))
        } else if acked <= 100 {
            Some(format!("{summary}: the workload made too little progress"))
        } else {
            None
        };
        (summary, wrong)
    }
}

/// One seeded run of `secs` seconds with faults drawn from `faults`; panics with the
/// anomalies (and the seed) if the history is not linearizable.
pub async fn run(seed: u64, secs: u64, faults: &[Fault]) -> String {
    let mut c = TestCluster::sharded(3, 3, |cfg| cfg.write_timeout = Duration::from_secs(3)).await;
    c.join_all().await;
    let proxy = crate::proxy::start_proxy(&c, Duration::from_secs(8)).await;
    let nodes: Vec<String> = c
        .data_gids()
        .into_iter()
        .flat_map(|g| c.members(g))
        .map(|id| c.url(id))
        .collect();
    let workload = Workload::start(proxy.addr.to_string(), nodes, seed);

    let mut rng = Rng(seed | 1);
    let mut log = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200 + rng.below(800))).await;
        let fault = faults[rng.below(faults.len() as u64) as usize];
        log.push(strike(&mut c, fault, &mut rng).await);
    }
    // Heal, let the cluster settle on its last configuration, then check.
    c.faults.heal();
    let latest = c
        .running()
        .filter_map(|n| {
            n.group()
                .reader()
                .cluster()
                .slots
                .as_ref()
                .map(|t| t.config.num)
        })
        .max()
        .unwrap_or(0);
    c.settled(latest).await;
    let (summary, wrong) = workload.finish(seed, &log).await;
    proxy.stop();
    c.stop().await;
    if let Some(wrong) = wrong {
        panic!("{wrong}");
    }
    summary
}

/// One seeded run against `redraft node` processes: leaders, followers and the
/// controller's leader are killed with SIGKILL and restarted, slots move meanwhile.
pub async fn run_processes(seed: u64, secs: u64) -> String {
    let mut c = ProcessCluster::sharded(3, 3);
    c.join_all().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = redraft_proxy::Proxy::start(
        listener,
        redraft_proxy::ProxyConfig {
            seeds: c.controller_addrs(),
            retry_window: Duration::from_secs(8),
            ..Default::default()
        },
    )
    .expect("proxy");
    assert!(
        proxy.ready(Duration::from_secs(60)).await,
        "proxy learned the slots"
    );
    let nodes: Vec<String> = (1..=3)
        .flat_map(|g| c.members(g))
        .map(|id| c.url(id))
        .collect();
    let workload = Workload::start(proxy.addr.to_string(), nodes, seed);
    let mut rng = Rng(seed | 1);
    let mut log = Vec::new();
    let faults = [
        Fault::KillLeader,
        Fault::KillFollower,
        Fault::KillController,
        Fault::MoveSlot,
        Fault::LeaveJoin,
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200 + rng.below(800))).await;
        let fault = faults[rng.below(faults.len() as u64) as usize];
        log.push(strike(&mut c, fault, &mut rng).await);
    }
    // Every process is running again; the final reads wait for the groups to answer.
    let (summary, wrong) = workload.finish(seed, &log).await;
    let kills = log.iter().filter(|l| l.starts_with("Kill")).count();
    let summary = format!("{summary} ({kills} kill -9 of real processes)");
    proxy.stop();
    if let Some(wrong) = wrong {
        c.keep();
        panic!("{wrong}");
    }
    summary
}

fn seed() -> u64 {
    std::env::var("REDRAFT_NEMESIS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nemesis_kills() {
    let s = seed();
    println!(
        "{}",
        run(
            s,
            20,
            &[
                Fault::KillLeader,
                Fault::KillFollower,
                Fault::KillController
            ]
        )
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nemesis_partitions_and_moves() {
    let s = seed();
    println!(
        "{}",
        run(
            s,
            20,
            &[
                Fault::IsolateLeader,
                Fault::MoveSlot,
                Fault::LeaveJoin,
                Fault::KillLeader
            ]
        )
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nemesis_everything() {
    println!("{}", run(seed(), 20, &ALL).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nemesis_kill9_processes() {
    println!("{}", run_processes(seed(), 20).await);
}

const ALL: [Fault; 6] = [
    Fault::KillLeader,
    Fault::KillFollower,
    Fault::IsolateLeader,
    Fault::KillController,
    Fault::MoveSlot,
    Fault::LeaveJoin,
];

/// The long run: `REDRAFT_NEMESIS_RUNS` × `REDRAFT_NEMESIS_SECONDS` with every fault, on
/// processes if `REDRAFT_NEMESIS_PROCESSES=1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn nemesis_long() {
    let runs: u64 = std::env::var("REDRAFT_NEMESIS_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let secs: u64 = std::env::var("REDRAFT_NEMESIS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    // In-process nodes (every fault, partitions included), or `redraft node` processes
    // killed with SIGKILL.
    let processes = std::env::var("REDRAFT_NEMESIS_PROCESSES").is_ok_and(|v| v == "1");
    let first = seed();
    for i in 0..runs {
        let s = first.wrapping_add(i);
        let summary = match processes {
            true => run_processes(s, secs).await,
            false => run(s, secs, &ALL).await,
        };
        println!("run {}: {summary}", i + 1);
    }
}
