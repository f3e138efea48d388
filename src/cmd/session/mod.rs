//! Commands that need the connection or the node rather than the keyspace:
//! HELLO, QUIT, RESET, SHUTDOWN, MONITOR, CLIENT, CONFIG, INFO, LATENCY, SLOWLOG, ACL, ROLE, REPLICAOF, SAVE,
//! BGSAVE, LASTSAVE, CLUSTER, WAIT. `cmd::parse` has checked their arity already.

mod client;
mod cluster;
mod cluster_views;
mod config;
mod hello;
mod info;
mod role;
mod save;
mod wait;

use std::sync::Arc;

use bytes::Bytes;

use tokio::sync::oneshot;

use crate::node::NodeShared;
use crate::resp::session::Session;
use crate::shard::ShardError;
use redraft_proxy::wire::{acl, command_stats, shutdown, Reply};

pub use config::ConfigTable;

/// A session command's reply: most have it at once; WAIT's comes when enough replicas
/// catch up.
pub enum Answer {
    Now(Reply),
    Later(oneshot::Receiver<Result<Reply, ShardError>>),
}

pub async fn execute(argv: Vec<Bytes>, session: &mut Session, node: &Arc<NodeShared>) -> Answer {
    let name = argv[0].to_ascii_lowercase();
    Answer::Now(match name.as_slice() {
        b"hello" => hello::execute(&argv, session, node),
        b"quit" => {
            session.quit = true;
            Reply::ok()
        }
        b"shutdown" => shutdown::command(&argv).unwrap_or_else(|| {
            session.quit = true;
            session.reply_mode.mute();
            Reply::ok()
        }),
        b"monitor" => {
            session.monitor = true;
            Reply::ok()
        }
        b"reset" => {
            session.reset();
            Reply::status("RESET")
        }
        b"client" => client::execute(&argv, session, node),
        b"config" => config::execute(&argv, node),
        b"info" => info::execute(&argv, node),
        b"latency" => command_stats::latency(&argv, &node.clients.stats),
        b"slowlog" => node.clients.slowlog.command(&argv),
        b"acl" => acl::command(&argv),
        b"role" => role::execute(node),
        // A group's replicas are its Raft members: CLUSTER JOIN/LEAVE change them.
        b"replicaof" | b"slaveof" if node.config.cluster_mode() => {
            Reply::err("ERR REPLICAOF not allowed in cluster mode.")
        }
        b"replicaof" | b"slaveof" => Reply::err(
            "ERR REPLICAOF is not supported: a redraft group's replicas are the members of its Raft group",
        ),
        b"save" => save::save(node).await,
        b"bgsave" => save::bgsave(&argv, node).await,
        b"lastsave" => save::lastsave(node),
        b"cluster" => cluster::execute(&argv, node).await,
        b"wait" => return wait::execute(&argv, node, &session.hangup),
        b"migrate" => crate::cmd::keyspace::migrate::execute(&argv, node).await,
        _ => Reply::err(format!(
            "ERR unknown command '{}'",
            String::from_utf8_lossy(&argv[0])
        )),
    })
}

/// A `<CMD> HELP` reply.
fn help(lines: &[&'static str]) -> Reply {
    Reply::Array(lines.iter().map(|&s| Reply::status(s)).collect())
}

fn unknown_subcommand(container: &str, sub: &[u8]) -> Reply {
    use super::args::{cut, err_text};
    Reply::err(format!(
        "ERR unknown subcommand '{}'. Try {container} HELP.",
        err_text(cut(sub, 128))
    ))
}

/// The leader's followers with how far each has replicated (ROLE, INFO replication).
fn followers(
    m: &openraft::RaftMetrics<crate::raft::NodeId, crate::raft::NodeAddr>,
) -> Vec<(crate::raft::NodeAddr, u64)> {
    m.membership_config
        .membership()
        .nodes()
        .filter(|(id, _)| **id != m.id)
        .map(|(id, addr)| {
            let offset = m
                .replication
                .as_ref()
                .and_then(|r| r.get(id).cloned().flatten())
                .map(|l| l.index);
            (addr.clone(), offset.unwrap_or(0))
        })
        .collect()
}
