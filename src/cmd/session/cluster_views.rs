//! Redis Cluster's read-only CLUSTER subcommands (SLOTS, SHARDS, NODES, REPLICAS, SLAVES,
//! COUNT-FAILURE-REPORTS, INFO, MYID, MYSHARDID, KEYSLOT, COUNTKEYSINSLOT, GETKEYSINSLOT), FAILOVER, and the layout-changing
//! ones redraft replaces with its controller's commands.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::cluster::views::{node_hex_id, shard_hex_id, Topology};
use crate::cluster::{Config, NodeInfo, SLOTS};
use crate::cmd::args::parse_i64;
use crate::node::NodeShared;
use crate::raft::{Gid, NodeId};
use redraft_proxy::wire::{key_slot, Reply};

/// The reply for a view subcommand, or None when `sub` is not one.
pub async fn execute(sub: &[u8], argv: &[Bytes], node: &Arc<NodeShared>) -> Option<Reply> {
    let reply = match sub {
        b"slots" => view(node, |t| t.slots_reply()),
        b"shards" => view(node, |t| t.shards_reply()),
        b"nodes" => view(node, |t| Reply::Verbatim(Bytes::from(t.nodes_text()))),
        b"info" => view(node, |t| Reply::Verbatim(Bytes::from(t.info_text()))),
        b"replicas" | b"slaves" => view(node, |t| t.replicas_reply(&argv[2], false)),
        b"count-failure-reports" => view(node, |t| t.replicas_reply(&argv[2], true)),
        b"myid" => Reply::bulk(node_hex_id(node.config.id)),
        b"myshardid" => Reply::bulk(shard_hex_id(node.config.gid)),
        b"keyslot" => Reply::Int(i64::from(key_slot(&argv[2]))),
        b"countkeysinslot" => match parse_slot(&argv[2]) {
            Ok(slot) => Reply::Int(node.group.reader().slot_len(slot) as i64),
            Err(e) => e,
        },
        b"getkeysinslot" => match (parse_slot(&argv[2]), parse_i64(&argv[3])) {
            (Err(e), _) | (_, Err(e)) => e,
            (_, Ok(n)) if n < 0 => Reply::err("ERR Invalid number of keys"),
            (Ok(slot), Ok(n)) => {
                let keys = node.group.reader().slot_keys(slot, n as usize);
                Reply::Array(keys.into_iter().map(Reply::Bulk).collect())
            }
        },
        b"failover" => failover(node).await,
        b"addslots" | b"addslotsrange" | b"delslots" | b"delslotsrange" | b"setslot" | b"meet"
        | b"forget" | b"replicate" | b"reset" | b"flushslots" | b"saveconfig" | b"bumpepoch"
        | b"set-config-epoch" => Reply::err(format!(
            "ERR CLUSTER {} is not supported: redraft's controller assigns slots and \
             groups; use CLUSTER JOIN, CLUSTER LEAVE or CLUSTER MOVE",
            String::from_utf8_lossy(sub).to_uppercase()
        )),
        _ => return None,
    };
    Some(reply)
}

/// Redis's slot argument check (`ERR Invalid or out of range slot`).
fn parse_slot(a: &[u8]) -> Result<u16, Reply> {
    parse_i64(a)
        .ok()
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| usize::from(*s) < SLOTS)
        .ok_or_else(|| Reply::err("ERR Invalid or out of range slot"))
}

/// Renders a view from this node's configuration and the leaders it knows.
fn view(node: &NodeShared, f: impl FnOnce(&Topology<'_>) -> Reply) -> Reply {
    let meta = node.group.reader().cluster();
    let config: Config = if node.config.gid == 0 {
        meta.ctl.latest()
    } else {
        match meta.slots.as_ref() {
            Some(t) => t.config.clone(),
            // A standalone group: one shard owning every slot.
            None if !node.config.cluster_mode() => standalone(node),
            None => Config::empty(),
        }
    };
    let mut leaders: BTreeMap<Gid, NodeId> = BTreeMap::new();
    for gid in config.groups.keys().copied().chain([0]) {
        let leader = if gid == node.config.gid {
            node.group.current_leader()
        } else {
            node.leaders.leader(gid).map(|n| n.id)
        };
        if let Some(l) = leader {
            leaders.insert(gid, l);
        }
    }
    // Controller nodes known only by address can't be named: leave the controller out.
    let controller: Vec<NodeInfo> = node.config.controller_nodes();
    let controller = if controller.iter().any(|n| n.id == crate::bus::ANY_NODE) {
        Vec::new()
    } else {
        controller
    };
    f(&Topology {
        config: &config,
        leaders: &leaders,
        controller: &controller,
        myself: node.config.id,
    })
}

fn standalone(node: &NodeShared) -> Config {
    let mut c = Config::empty();
    c.slots = vec![node.config.gid; SLOTS];
    c.groups.insert(
        node.config.gid,
        node.config
            .peers
            .iter()
            .map(|(id, addr)| NodeInfo {
                id: *id,
                addr: addr.clone(),
            })
            .collect(),
    );
    c
}

/// CLUSTER FAILOVER at a follower: once it has everything the leader has committed, it
/// starts an election it wins (its log is up to date); the old leader steps down. No
/// acknowledged write is lost: Raft only elects a candidate holding every committed entry.
async fn failover(node: &NodeShared) -> Reply {
    let group = &node.group;
    if group.is_leader() {
        return Reply::err("ERR You should send CLUSTER FAILOVER to a replica");
    }
    let caught_up = group
        .raft()
        .wait(Some(Duration::from_secs(5)))
        .metrics(
            |m| m.last_applied.map(|l| l.index) == m.last_log_index,
            "applied everything logged",
        )
        .await;
    if caught_up.is_err() {
        return Reply::err("ERR failover aborted: this replica is not caught up");
    }
    if let Err(e) = group.raft().trigger().elect().await {
        return Reply::err(format!("ERR failover failed: {e}"));
    }
    let won = group
        .raft()
        .wait(Some(Duration::from_secs(5)))
        .metrics(|m| m.current_leader == Some(m.id), "leadership")
        .await;
    match won {
        Ok(_) => Reply::ok(),
        Err(_) => Reply::err("ERR failover did not complete: another node leads the group"),
    }
}
