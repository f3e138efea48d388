//! HELLO [protover [AUTH username password] [SETNAME clientname]]

use std::sync::Arc;

use crate::node::NodeShared;
use crate::resp::session::Session;
use redraft_proxy::wire::{hello, Reply};

pub fn execute(argv: &[bytes::Bytes], session: &mut Session, node: &Arc<NodeShared>) -> Reply {
    let (proto, name) = match hello::parse(argv, session.proto) {
        Ok(p) => p,
        Err(e) => return e,
    };
    session.proto = proto;
    if let Some(n) = name {
        session.client.state.update(|i| i.name = n);
    }
    let role = if node.group.is_leader() {
        "master"
    } else {
        "replica"
    };
    hello::reply(proto, session.id(), node.config.redis_mode(), role)
}
