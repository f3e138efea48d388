//! HELLO [protover [AUTH username password] [SETNAME clientname]]

use std::sync::Arc;

use crate::node::NodeShared;
use crate::resp::session::Session;
use redraft_proxy::wire::{Protocol, Reply};

pub fn execute(argv: &[bytes::Bytes], session: &mut Session, node: &Arc<NodeShared>) -> Reply {
    let mut proto = session.proto;
    let mut name = None;
    if argv.len() >= 2 {
        proto = match redraft_proxy::wire::request::string2ll(&argv[1]) {
            Some(2) => Protocol::Resp2,
            Some(3) => Protocol::Resp3,
            Some(_) => return Reply::err("NOPROTO unsupported protocol version"),
            None => return Reply::err("ERR Protocol version is not an integer or out of range"),
        };
        let mut i = 2;
        while i < argv.len() {
            let opt = argv[i].to_ascii_lowercase();
            let more = argv.len() - i - 1;
            if opt == b"auth" && more >= 2 {
                if !argv[i + 1].eq_ignore_ascii_case(b"default") {
                    return Reply::err(
                        "WRONGPASS invalid username-password pair or user is disabled.",
                    );
                }
                i += 3;
            } else if opt == b"setname" && more >= 1 {
                if let Err(e) = super::client::check_name(&argv[i + 1]) {
                    return e;
                }
                name = Some(argv[i + 1].clone());
                i += 2;
            } else {
                return Reply::err(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&argv[i])
                ));
            }
        }
    }
    session.proto = proto;
    if let Some(n) = name {
        session.client.state.update(|i| i.name = n);
    }
    let leader = node.group.is_leader();
    Reply::Map(vec![
        (Reply::bulk_str("server"), Reply::bulk_str("redis")),
        (
            Reply::bulk_str("version"),
            Reply::bulk_str(crate::node::REDIS_VERSION),
        ),
        (
            Reply::bulk_str("proto"),
            Reply::Int(if proto == Protocol::Resp3 { 3 } else { 2 }),
        ),
        (Reply::bulk_str("id"), Reply::Int(session.id() as i64)),
        (Reply::bulk_str("mode"), Reply::bulk_str("standalone")),
        (
            Reply::bulk_str("role"),
            Reply::bulk_str(if leader { "master" } else { "replica" }),
        ),
        (Reply::bulk_str("modules"), Reply::Array(vec![])),
    ])
}
