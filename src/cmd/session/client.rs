//! CLIENT: answered by `wire::clients`, which the proxy shares, for this connection and
//! the node's clients.

use std::sync::Arc;

use bytes::Bytes;

use crate::node::NodeShared;
use crate::resp::session::Session;
use redraft_proxy::wire::clients::{client, Conn};
use redraft_proxy::wire::Reply;

pub fn execute(argv: &[Bytes], session: &mut Session, node: &Arc<NodeShared>) -> Reply {
    let conn = Conn {
        me: &session.client.state,
        proto: session.proto,
        reply_mode: &mut session.reply_mode,
        quit: &mut session.quit,
    };
    client(argv, conn, &node.clients)
}
