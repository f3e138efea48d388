//! Whether this node may run a command on a slot, or where the client should go instead.

use crate::cluster::slots::Access;
use crate::cluster::Config;
use crate::node::NodeShared;
use crate::raft::Gid;
use crate::shard::apply::{self, ClusterMeta};
use redraft_proxy::wire::Reply;

/// The reply that replaces a command on `slot`, if this node must not run it, judged by
/// the group's committed cluster state.
pub fn refusal(node: &NodeShared, slot: u16) -> Option<Reply> {
    if !node.config.cluster_mode() {
        return None;
    }
    let reader = node.group.reader();
    if node.config.gid != 0 && reader.serves(slot) == Some(true) {
        return None;
    }
    refusal_at(node, &reader.cluster(), slot)
}

/// As [`refusal`], judged by `meta` (a read view's, so ownership and data agree).
pub fn refusal_at(node: &NodeShared, meta: &ClusterMeta, slot: u16) -> Option<Reply> {
    if !node.config.cluster_mode() {
        return None;
    }
    if node.config.gid == 0 {
        // A controller node holds no data: send the client to the slot's owner.
        return Some(match meta.ctl.latest_ref() {
            Some(c) => moved(node, c, slot, c.owner(slot)),
            None => not_served(),
        });
    }
    match meta.slots.as_ref() {
        // Started with a controller but no configuration applied yet.
        None => Some(not_served()),
        Some(t) => match t.access(slot) {
            Access::Serve => None,
            Access::TryAgain => apply::refusal(meta, slot),
            Access::Moved(gid) => Some(moved(node, &t.config, slot, gid)),
        },
    }
}

/// `MOVED` to the owner's leader when known (else one of its nodes).
fn moved(node: &NodeShared, config: &Config, slot: u16, gid: Gid) -> Reply {
    match node.leaders.target(config, gid).filter(|_| gid != 0) {
        Some(n) => Reply::err(format!("MOVED {slot} {}", n.addr.client_addr())),
        None => not_served(),
    }
}

fn not_served() -> Reply {
    Reply::err("CLUSTERDOWN Hash slot not served")
}
