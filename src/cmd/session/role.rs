//! ROLE: the leader reports itself as a master with its followers, a follower as a replica
//! of the current leader.

use std::sync::Arc;

use crate::node::NodeShared;
use redraft_proxy::wire::Reply;

pub fn execute(node: &Arc<NodeShared>) -> Reply {
    let m = node.group.metrics();
    let applied = m.last_applied.map(|l| l.index).unwrap_or(0) as i64;
    if m.current_leader == Some(m.id) {
        // The master's offset is where its log ends, as a Redis master's is where its
        // replication stream ends; its replicas' offsets are how far they hold it.
        let end = m.last_log_index.unwrap_or(0) as i64;
        let replicas = super::followers(&m)
            .into_iter()
            .map(|(addr, offset)| {
                Reply::Array(vec![
                    Reply::bulk_str(&addr.host),
                    Reply::bulk_str(&addr.client_port.to_string()),
                    Reply::bulk_str(&offset.to_string()),
                ])
            })
            .collect();
        Reply::Array(vec![
            Reply::bulk_str("master"),
            Reply::Int(end),
            Reply::Array(replicas),
        ])
    } else {
        let leader = m.current_leader.and_then(|l| node.group.node_addr(l));
        let (host, port, state) = match leader {
            Some(a) => (a.host, a.client_port as i64, "connected"),
            None => (String::new(), 0, "connect"),
        };
        Reply::Array(vec![
            Reply::bulk_str("slave"),
            Reply::bulk_str(&host),
            Reply::Int(port),
            Reply::bulk_str(state),
            Reply::Int(applied),
        ])
    }
}
