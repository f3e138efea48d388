//! Who leads the other groups, as this node last heard: a `MOVED` for a slot owned by
//! another group then points at that group's leader, not at any of its nodes (which would
//! cost the client a second redirect). Refreshed in the background; a stale hint costs one
//! extra hop, never a wrong answer (the node reached redirects again).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::rpc::{call_group, ClusterReply, ClusterRequest};
use super::WeakShardGroup;
use crate::bus::Bus;
use crate::cluster::{Config, NodeInfo};
use crate::raft::Gid;

const REFRESH: Duration = Duration::from_millis(250);

#[derive(Default)]
pub struct LeaderHints(RwLock<HashMap<Gid, NodeInfo>>);

impl LeaderHints {
    /// The node to send a client to for group `gid` of `config`: its leader if known,
    /// else its first node.
    pub fn target<'a>(&self, config: &'a Config, gid: Gid) -> Option<NodeInfo> {
        let nodes: &'a [NodeInfo] = config.nodes(gid);
        let hint = self
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&gid)
            .cloned();
        hint.filter(|h| nodes.iter().any(|n| n.id == h.id))
            .or_else(|| nodes.first().cloned())
    }

    /// The last leader heard of for `gid`.
    pub fn leader(&self, gid: Gid) -> Option<NodeInfo> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&gid)
            .cloned()
    }

    fn set(&self, gid: Gid, leader: Option<NodeInfo>) {
        let mut m = self.0.write().unwrap_or_else(|e| e.into_inner());
        match leader {
            Some(l) => m.insert(gid, l),
            None => m.remove(&gid),
        };
    }
}

/// Refreshes `hints` for every other group of the latest configuration this node knows,
/// until the group is dropped.
pub async fn run(
    group: WeakShardGroup,
    bus: Bus,
    hints: Arc<LeaderHints>,
    controllers: Vec<NodeInfo>,
) {
    loop {
        tokio::time::sleep(REFRESH).await;
        let Some(g) = group.upgrade() else { return };
        let meta = g.reader().cluster();
        let config = match (g.gid(), meta.slots.as_ref()) {
            (0, _) => meta.ctl.latest_ref().cloned(),
            (_, Some(t)) => Some(t.config.clone()),
            _ => None,
        };
        let me = g.gid();
        drop(g);
        let Some(config) = config else { continue };
        let controller = (me != 0 && !controllers.is_empty()).then_some((&0, &controllers));
        let others = config.groups.iter().filter(|(gid, _)| **gid != me);
        for (gid, nodes) in controller.into_iter().chain(others) {
            let deadline = Instant::now() + REFRESH;
            if let Ok(ClusterReply::Leader(l)) =
                call_group(&bus, *gid, nodes, ClusterRequest::WhoLeads, deadline).await
            {
                hints.set(*gid, l);
            }
        }
    }
}
