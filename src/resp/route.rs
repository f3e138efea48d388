//! Whether this node may run a command on a slot, or where the client should go instead.

use crate::node::NodeShared;
use crate::shard::apply::{self, ClusterMeta};
use redraft_proxy::wire::Reply;

/// The reply that replaces a command on `slot`, if this node must not run it, judged by
/// the group's committed cluster state.
pub fn refusal(node: &NodeShared, slot: u16) -> Option<Reply> {
    if !node.config.cluster_mode() {
        return None;
    }
    refusal_at(node, &node.group.reader().cluster(), slot)
}

/// As [`refusal`], judged by `meta` (a read view's, so ownership and data agree).
pub fn refusal_at(node: &NodeShared, meta: &ClusterMeta, slot: u16) -> Option<Reply> {
    if !node.config.cluster_mode() {
        return None;
    }
    if node.config.gid == 0 {
        // A controller node holds no data: send the client to the slot's owner.
        let owner = meta.ctl.latest_ref().and_then(|c| {
            let gid = c.owner(slot);
            c.nodes(gid).first().filter(|_| gid != 0)
        });
        return Some(match owner {
            Some(n) => Reply::err(format!("MOVED {slot} {}", n.addr.client_addr())),
            None => Reply::err("CLUSTERDOWN Hash slot not served"),
        });
    }
    match meta.slots {
        // Started with a controller but no configuration applied yet.
        None => Some(Reply::err("CLUSTERDOWN Hash slot not served")),
        Some(_) => apply::refusal(meta, slot),
    }
}
