//! Requests one group makes of another over the bus: controller operations and queries,
//! and the two halves of a slot move (pull a frozen slot's data, then have the old owner
//! drop it). Served here on whichever node receives them; what needs the leader says so.

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::request::ClusterOp;
use super::{ShardError, ShardGroup};
use crate::bus::{Bus, BusError, BusRequest, BusResponse};
use crate::cluster::{Config, CtlOp, NodeInfo};
use crate::cmd::WriteCmd;
use crate::raft::Gid;
use redraft_proxy::wire::Reply;

/// A request to a group (the bus envelope names the group).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterRequest {
    /// Controller: run an operation through its log (leader only).
    Ctl(CtlOp),
    /// Controller: configuration `num` (None: the latest), read linearizably (leader only).
    Query(Option<u64>),
    /// Shard group: data of `slots` (ascending) as frozen when the group moved to
    /// configuration `num`, from storage key `after` in the first slot on. Any replica
    /// that has reached `num` can answer.
    Pull {
        num: u64,
        slots: Vec<u16>,
        after: Option<Bytes>,
        max_bytes: u32,
    },
    /// Shard group: the caller installed these slots of configuration `num`; delete them
    /// (leader only).
    Drop { num: u64, slots: Vec<u16> },
    /// Which node leads the group, as far as this node knows.
    WhoLeads,
}

/// The answer to a [`ClusterRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterReply {
    /// A controller operation's reply (the new configuration number, or an error).
    Done(Reply),
    Config(Option<Config>),
    /// See [`crate::shard::state_machine::SlotChunk`].
    Chunk {
        kvs: Vec<(Bytes, Bytes)>,
        dedup: Vec<(Bytes, Bytes)>,
        started: Vec<u16>,
        complete: Vec<u16>,
    },
    /// The group has not reached the configuration yet: ask again later.
    NotYet,
    /// Ask the leader (when one is known).
    NotLeader(Option<NodeInfo>),
    Dropped,
    Failed(String),
    /// Answer to [`ClusterRequest::WhoLeads`].
    Leader(Option<NodeInfo>),
}

/// Serves `req` on this node's replica of the group.
pub async fn serve(group: &ShardGroup, req: ClusterRequest) -> ClusterReply {
    match req {
        ClusterRequest::Ctl(op) => match group
            .write(WriteCmd::Cluster(ClusterOp::Ctl(op)), 512)
            .await
        {
            Ok(r) => ClusterReply::Done(r),
            Err(e) => from_shard_error(group, e),
        },
        ClusterRequest::Query(num) => match group.read().await {
            Ok(reader) => ClusterReply::Config(reader.cluster().ctl.query(num)),
            Err(e) => from_shard_error(group, e),
        },
        ClusterRequest::Pull {
            num,
            slots,
            after,
            max_bytes,
        } => {
            let view = group.reader().view();
            let meta = view.cluster();
            let Some(table) = meta.slots.as_ref() else {
                return ClusterReply::NotYet;
            };
            if table.config.num < num {
                return ClusterReply::NotYet;
            }
            if let Some(s) = slots
                .iter()
                .find(|s| table.config.num > num || !table.offloading.contains_key(s))
            {
                return ClusterReply::Failed(format!(
                    "slot {s} is not offloading at config {num} (here: config {})",
                    table.config.num
                ));
            }
            let source = view.slots_source(&slots);
            let chunk =
                crate::storage::idle(move || source.chunk(after.as_deref(), max_bytes as usize));
            ClusterReply::Chunk {
                kvs: chunk.kvs,
                dedup: chunk.dedup,
                started: chunk.started,
                complete: chunk.complete,
            }
        }
        ClusterRequest::WhoLeads => ClusterReply::Leader(leader_info(group)),
        ClusterRequest::Drop { num, slots } => {
            let reached = group
                .reader()
                .cluster()
                .slots
                .as_ref()
                .is_some_and(|t| t.config.num >= num);
            if !reached {
                return ClusterReply::NotYet;
            }
            let cmd = WriteCmd::Cluster(ClusterOp::Drop { num, slots });
            match group.write(cmd, 64).await {
                Ok(_) => ClusterReply::Dropped,
                Err(e) => from_shard_error(group, e),
            }
        }
    }
}

fn leader_info(group: &ShardGroup) -> Option<NodeInfo> {
    let id = group.current_leader()?;
    Some(NodeInfo {
        id,
        addr: group.node_addr(id)?,
    })
}

fn from_shard_error(group: &ShardGroup, e: ShardError) -> ClusterReply {
    match e {
        ShardError::NotLeader { .. } => ClusterReply::NotLeader(leader_info(group)),
        e => ClusterReply::Failed(e.to_string()),
    }
}

/// How long one bus call to another group may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// Calls group `gid` at `nodes`, following leader hints, until a reply that is not
/// `NotLeader` or `deadline` passes. `nodes` may be empty-id entries (id 0) when only
/// addresses are known (`--controller host:port`).
pub async fn call_group(
    bus: &Bus,
    gid: Gid,
    nodes: &[NodeInfo],
    req: ClusterRequest,
    deadline: tokio::time::Instant,
) -> Result<ClusterReply, String> {
    if nodes.is_empty() {
        return Err(format!("no known node of group {gid}"));
    }
    let mut last_err = String::from("no attempt");
    let mut hint: Option<NodeInfo> = None;
    let mut i = 0usize;
    let mut backoff = Duration::from_millis(20);
    loop {
        let target = hint
            .take()
            .unwrap_or_else(|| nodes[i % nodes.len()].clone());
        i += 1;
        let timeout =
            CALL_TIMEOUT.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        if timeout.is_zero() {
            return Err(last_err);
        }
        let r = bus
            .call(
                target.id,
                &target.addr.bus_addr(),
                BusRequest::Cluster {
                    gid,
                    req: req.clone(),
                },
                timeout,
            )
            .await;
        match r {
            Ok(BusResponse::Cluster(ClusterReply::NotLeader(h))) => {
                last_err = format!("node {} of group {gid} is not the leader", target.id);
                if let Some(h) = h.filter(|h| h.addr != target.addr) {
                    hint = Some(h);
                    continue;
                }
            }
            Ok(BusResponse::Cluster(reply)) => return Ok(reply),
            Ok(other) => last_err = format!("unexpected bus response {other:?}"),
            Err(BusError::Remote { message, .. }) => last_err = message,
            Err(e) => last_err = e.to_string(),
        }
        if i.is_multiple_of(nodes.len()) {
            if tokio::time::Instant::now() + backoff >= deadline {
                return Err(last_err);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }
}
