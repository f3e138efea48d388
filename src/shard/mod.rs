//! A shard group as the rest of the node sees it: propose writes, run linearizable reads,
//! find the leader. This is the facade over openraft; nothing outside `raft/` and this
//! module names openraft types.
//!
//! - Writes are queued and a proposer task packs everything queued into one log entry
//!   (`ShardRequest`), with a bounded number of entries in flight: under load batches grow
//!   by themselves, an idle group proposes a single command at once.
//! - Reads share read barriers: every read that arrives while a barrier round is running
//!   waits for the next round, and one `ensure_linearizable` then serves all of them.

pub mod apply;
pub mod barrier;
pub mod expiry;
pub mod follow;
pub mod hints;
pub mod rejoin;
pub mod request;
pub mod rpc;
pub mod snapshot_file;
pub mod snapshots;
pub mod state_machine;
pub mod watchdog;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::cmd::WriteCmd;
use crate::raft::{Gid, NodeAddr, NodeId, ShardRaft};
use redraft_proxy::wire::Reply;
use request::ShardRequest;
use state_machine::ShardReader;

/// Most bytes of commands packed into one log entry (a single larger command gets an
/// entry of its own): entries must stay well under the bus frame limit to replicate.
const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// Most commands packed into one log entry.
const MAX_BATCH: usize = 4096;
/// Most log entries proposed and not yet applied; beyond it commands queue and batch.
/// Measured on 2 cores with 3 fsyncing replicas: 1–2 entries in flight give the largest
/// batches and the best throughput (SET -P1: 8.5k/s with 16, 19k/s with 2). Since writes
/// take less CPU (batched lookups), 1 does better than 2 through the proxy with 3 groups,
/// interleaved: SET -P16 134–143k/s against 123–144k/s, SET -P1 20–22.5k/s against
/// 17–19.8k/s, and less CPU per write in both.
const MAX_IN_FLIGHT: usize = 1;

/// Why a command could not run here.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Another node leads the group (None: no leader known within the wait).
    #[error("not leader")]
    NotLeader { leader: Option<NodeAddr> },
    /// The write was proposed but its outcome is unknown (commit timed out, leadership
    /// lost mid-way): it may or may not have been applied.
    #[error("write outcome unknown: {0}")]
    Unknown(String),
    #[error("raft stopped: {0}")]
    Fatal(String),
}

impl ShardError {
    /// The one mapping from shard errors to the redirects clients understand.
    pub fn to_reply(&self, slot: u16) -> Reply {
        match self {
            ShardError::NotLeader { leader: Some(addr) } => {
                Reply::err(format!("MOVED {slot} {}", addr.client_addr()))
            }
            ShardError::NotLeader { leader: None } => Reply::err("CLUSTERDOWN The cluster is down"),
            // Not CLUSTERDOWN/TRYAGAIN: cluster clients retry those by themselves, and a
            // retried INCR or APPEND whose first try did commit would apply twice.
            ShardError::Unknown(why) => Reply::err(format!(
                "ERR write outcome unknown ({why}): it may or may not have been applied"
            )),
            ShardError::Fatal(why) => {
                Reply::err(format!("CLUSTERDOWN The cluster is down ({why})"))
            }
        }
    }
}

type WriteResult = Result<Reply, ShardError>;

struct Proposal {
    cmd: WriteCmd,
    /// About how many bytes the command adds to its log entry.
    size: usize,
    tx: oneshot::Sender<WriteResult>,
}

/// See [`ShardGroup::downgrade_handle`].
#[derive(Clone)]
pub struct WeakShardGroup(std::sync::Weak<Inner>);

impl WeakShardGroup {
    pub fn upgrade(&self) -> Option<ShardGroup> {
        self.0.upgrade().map(|inner| ShardGroup { inner })
    }
}

/// Cheap-clone handle to one hosted shard group.
#[derive(Clone)]
pub struct ShardGroup {
    inner: Arc<Inner>,
}

struct Inner {
    gid: Gid,
    id: NodeId,
    raft: ShardRaft,
    reader: ShardReader,
    proposals: mpsc::UnboundedSender<Proposal>,
    barrier: barrier::ReadBarrier,
    leader_wait: Duration,
    committed: Arc<std::sync::atomic::AtomicU64>,
    proposed: Arc<std::sync::atomic::AtomicU64>,
}

/// Wall-clock unix milliseconds: what the leader stamps into entries and reads compare with.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl ShardGroup {
    /// Wraps a started Raft and spawns the proposer and expiry tasks (they end when the
    /// Raft shuts down or the last handle is dropped).
    pub fn start(
        config: &crate::config::NodeConfig,
        raft: ShardRaft,
        reader: ShardReader,
        committed: Arc<std::sync::atomic::AtomicU64>,
        contact: watchdog::LeaderContact,
        quarantine: rejoin::Quarantine,
    ) -> ShardGroup {
        let (gid, id, leader_wait, write_timeout) = (
            config.gid,
            config.id,
            config.leader_wait,
            config.write_timeout,
        );
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            gid,
            id,
            raft: raft.clone(),
            reader: reader.clone(),
            proposals: tx,
            barrier: barrier::ReadBarrier::new(raft.clone(), write_timeout),
            leader_wait,
            committed,
            proposed: Arc::default(),
        });
        tokio::spawn(propose_loop(
            raft,
            rx,
            inner.proposed.clone(),
            write_timeout,
        ));
        let group = ShardGroup { inner };
        tokio::spawn(expiry::run(group.downgrade(), reader));
        tokio::spawn(watchdog::run(
            group.downgrade(),
            contact,
            quarantine,
            config.timings.election_max,
        ));
        group
    }

    fn downgrade(&self) -> std::sync::Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    /// A handle that does not keep the group alive (for background tasks).
    pub fn downgrade_handle(&self) -> WeakShardGroup {
        WeakShardGroup(self.downgrade())
    }

    pub fn gid(&self) -> Gid {
        self.inner.gid
    }

    pub fn raft(&self) -> &ShardRaft {
        &self.inner.raft
    }

    pub fn reader(&self) -> &ShardReader {
        &self.inner.reader
    }

    /// Queues a write now (so a connection's pipelined writes keep their order) and
    /// returns where its reply will arrive. `size`: about how many bytes the command takes
    /// (its arguments), to keep log entries small enough to replicate.
    pub fn submit(&self, cmd: WriteCmd, size: usize) -> oneshot::Receiver<WriteResult> {
        let (tx, rx) = oneshot::channel();
        let proposal = Proposal { cmd, size, tx };
        if let Err(mpsc::error::SendError(p)) = self.inner.proposals.send(proposal) {
            let _ = p.tx.send(Err(ShardError::Fatal("group stopped".into())));
        }
        rx
    }

    pub async fn write(&self, cmd: WriteCmd, size: usize) -> WriteResult {
        self.submit(cmd, size)
            .await
            .unwrap_or_else(|_| Err(ShardError::Fatal("group stopped".into())))
    }

    /// Waits until this node may serve a linearizable read (it is the leader and has
    /// applied everything committed before the call), and returns the state to read.
    pub async fn read(&self) -> Result<&ShardReader, ShardError> {
        self.check_leader().await?;
        self.inner.barrier.wait().await?;
        Ok(&self.inner.reader)
    }

    /// Ok when this node is the leader; the leader's address otherwise, after waiting up to
    /// `leader_wait` for one to be elected.
    pub async fn check_leader(&self) -> Result<(), ShardError> {
        let leader = match self.current_leader() {
            Some(l) => Some(l),
            None => {
                let waited = self
                    .inner
                    .raft
                    .wait(Some(self.inner.leader_wait))
                    .metrics(|m| m.current_leader.is_some(), "leader")
                    .await;
                waited.ok().and_then(|m| m.current_leader)
            }
        };
        match leader {
            Some(l) if l == self.inner.id => Ok(()),
            Some(l) => Err(ShardError::NotLeader {
                leader: self.node_addr(l),
            }),
            None => Err(ShardError::NotLeader { leader: None }),
        }
    }

    pub fn current_leader(&self) -> Option<NodeId> {
        self.inner.raft.metrics().borrow().current_leader
    }

    /// Read-barrier rounds run so far; far fewer than reads when reads are concurrent.
    pub fn read_rounds(&self) -> u64 {
        self.inner.barrier.rounds()
    }

    /// Log entries proposed so far by this node (each may carry many commands).
    pub fn entries_proposed(&self) -> u64 {
        self.inner
            .proposed
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn is_leader(&self) -> bool {
        self.current_leader() == Some(self.inner.id)
    }

    /// A member's advertised address, from the current membership.
    pub fn node_addr(&self, id: NodeId) -> Option<NodeAddr> {
        let m = self.inner.raft.metrics();
        let m = m.borrow();
        m.membership_config.membership().get_node(&id).cloned()
    }

    pub fn metrics(&self) -> openraft::RaftMetrics<NodeId, NodeAddr> {
        self.inner.raft.metrics().borrow().clone()
    }
}

/// Drains queued writes into log entries, at most `MAX_IN_FLIGHT` entries outstanding.
async fn propose_loop(
    raft: ShardRaft,
    mut rx: mpsc::UnboundedReceiver<Proposal>,
    proposed: Arc<std::sync::atomic::AtomicU64>,
    write_timeout: Duration,
) {
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut carry: Option<Proposal> = None;
    loop {
        let first = match carry.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => break,
            },
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let mut bytes = first.size;
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) if bytes + p.size > MAX_BATCH_BYTES => {
                    carry = Some(p);
                    break;
                }
                Ok(p) => {
                    bytes += p.size;
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let (cmds, txs): (Vec<_>, Vec<_>) = batch.drain(..).map(|p| (p.cmd, p.tx)).unzip();
        let not_leader = {
            let m = raft.metrics();
            let m = m.borrow();
            match m.current_leader {
                Some(l) if l != m.id => {
                    Some(m.membership_config.membership().get_node(&l).cloned())
                }
                None => Some(None),
                _ => None,
            }
        };
        if let Some(leader) = not_leader {
            // Known not to be the leader: nothing is proposed, a redirect is exact.
            drop(permit);
            fail_all(txs, ShardError::NotLeader { leader });
            continue;
        }
        let req = ShardRequest::new(now_ms(), cmds);
        proposed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let responder = match raft.client_write_ff(req).await {
            Ok(r) => r,
            Err(e) => {
                fail_all(txs, ShardError::Fatal(e.to_string()));
                break;
            }
        };
        tokio::spawn(async move {
            let _permit = permit;
            let outcome = tokio::time::timeout(write_timeout, responder).await;
            match outcome {
                Ok(Ok(Ok(resp))) => {
                    let mut replies = resp.data.into_iter();
                    for tx in txs {
                        let reply = replies
                            .next()
                            .unwrap_or_else(|| Reply::err("ERR internal: missing reply"));
                        let _ = tx.send(Ok(reply));
                    }
                }
                Ok(Ok(Err(ClientWriteError::ForwardToLeader(f)))) => {
                    // openraft answers this only for an entry it did not append (not the
                    // leader) or truncated (never committed): not applied, so redirecting
                    // is exact.
                    fail_all(
                        txs,
                        ShardError::NotLeader {
                            leader: f.leader_node,
                        },
                    )
                }
                Ok(Ok(Err(e))) => fail_all(txs, ShardError::Unknown(e.to_string())),
                Ok(Err(_)) => fail_all(
                    txs,
                    ShardError::Unknown("raft stopped before commit".into()),
                ),
                Err(_) => fail_all(txs, ShardError::Unknown("commit timed out".into())),
            }
        });
    }
}

fn fail_all(txs: Vec<oneshot::Sender<WriteResult>>, e: ShardError) {
    for tx in txs {
        let _ = tx.send(Err(e.clone()));
    }
}

/// Maps a read-barrier failure to a `ShardError`.
fn barrier_error(e: RaftError<NodeId, CheckIsLeaderError<NodeId, NodeAddr>>) -> ShardError {
    match e {
        RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)) => ShardError::NotLeader {
            leader: f.leader_node,
        },
        RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)) => {
            ShardError::NotLeader { leader: None }
        }
        RaftError::Fatal(f) => ShardError::Fatal(f.to_string()),
    }
}

impl ShardGroup {
    /// The highest log index known committed here (never below applied).
    pub fn committed_index(&self) -> u64 {
        let applied = self.metrics().last_applied.map(|l| l.index).unwrap_or(0);
        self.inner
            .committed
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(applied)
    }
}
